//! Logging set-up shared by every binary: `tracing` to stderr or to a file, never to stdout
//! (for the dealer, stdout is Cyrus notifyd's unconnected socket).

use std::{fs::OpenOptions, path::Path, sync::Mutex};

use tracing_subscriber::EnvFilter;

/// The environment variable that overrides the log filter (`tracing` directive syntax).
pub const ENV_VAR: &str = "BONNIE_LOG";

/// Installs the global logger. `level` is a filter such as `info` or `bonnie=debug`;
/// `$BONNIE_LOG` overrides it. With `file`, lines are appended there instead of stderr.
pub fn init(level: &str, file: Option<&Path>) -> std::io::Result<()> {
    let filter = match std::env::var(ENV_VAR) {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match file {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests calling into a binary's main twice) keeps the first logger.
    let _ = result;
    Ok(())
}
