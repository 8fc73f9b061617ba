//! What every bonnie daemon does around its work: the common options (`--config`,
//! `--log-level`, `--log-file`), logging set-up, files private to bonnie (umask 0o027), loading
//! the configuration (refused when others can read its secrets), shutdown on SIGTERM/SIGINT,
//! and reporting a failure both in the log and on standard error.

use std::{
    fmt::Display,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use crate::Config;

/// The options every daemon takes.
#[derive(clap::Args, Debug, Clone)]
pub struct DaemonArgs {
    /// Configuration file [default: $BONNIE_CONFIG, else /etc/bonnie/bonnie.toml]
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log filter: error, warn, info, debug or trace ($BONNIE_LOG overrides it)
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
    /// Append log lines to this file instead of standard error
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// Sets up logging, loads the configuration and runs `body` with it. A failure is logged and
/// printed on standard error, prefixed with the program's `name`, and exits with status 1.
pub fn run<E: Display>(
    name: &str,
    args: &DaemonArgs,
    body: impl FnOnce(Config) -> Result<ExitCode, E>,
) -> ExitCode {
    if let Err(e) = crate::logging::init(&args.log_level, args.log_file.as_deref()) {
        eprintln!("{name}: cannot open the log file: {e}");
        return ExitCode::FAILURE;
    }
    let result = Config::load(&Config::locate(args.config.as_deref()))
        .and_then(|mut config| config.load_secrets().map(|()| config))
        .map_err(|e| e.to_string())
        .and_then(|config| body(config).map_err(|e| e.to_string()));
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The umask every bonnie process sets before it creates anything: files 0640 and folders
/// 0750 at most (stores, job store, spool, logs, payloads), never readable or writable by
/// others, whatever umask the process was started with. Files that hold mail or secrets
/// are also created with an explicit, narrower mode where they are made.
pub const UMASK: u32 = 0o027;

/// Sets the process's umask to [`UMASK`] (adding to it, never taking bits away).
pub fn private_files() {
    use rustix::fs::Mode;
    let previous = rustix::process::umask(Mode::from_raw_mode(UMASK));
    rustix::process::umask(previous | Mode::from_raw_mode(UMASK));
}

/// A flag that SIGTERM and SIGINT set; a second signal, while the work winds down, exits at
/// once with status 1.
pub fn shutdown_flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}

/// The message a caught panic carried, for the job or request it fails (pool and serving
/// threads catch panics so that one bad input cannot take a thread away).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
