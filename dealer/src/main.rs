//! `bonnie-dealer`: hands each Cyrus notification to the broker, or to a local spool when the
//! broker does not answer in time, so that nothing is lost and Cyrus is never stalled. Run by
//! notifyd once per event (exec mode), or as a daemon on Cyrus's dlist notify socket.
#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use bonnie_core::{Config, config::DealerConfig};
use bonnie_dealer::{daemon, exec};
use clap::Parser;

/// Where the notification goes when the configuration cannot be read, so it is not lost.
const FALLBACK_SPOOL: &str = "/var/spool/bonnie/dealer";

/// bonnie's dealer. Without options it reads one notification from stdin (Cyrus
/// `notify_external`); notifyd's own arguments (-c -p -u -m -f) are accepted and ignored.
#[derive(Parser)]
#[command(name = "bonnie-dealer", version)]
struct Args {
    /// Configuration file [default: $BONNIE_CONFIG, else /etc/bonnie/bonnie.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Serve Cyrus's `notifysocket: dlist:` unix socket ([dealer] socket) instead of stdin
    #[arg(long, conflicts_with = "flush")]
    daemon: bool,
    /// Forward the spool to the broker now, and exit non-zero if it is not emptied
    #[arg(long)]
    flush: bool,
    /// Log filter: error, warn, info, debug or trace ($BONNIE_LOG overrides it)
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    log_level: String,
    /// Append log lines to this file instead of standard error
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// notifyd's class argument; ignored
    #[arg(short = 'c', hide = true, allow_hyphen_values = true)]
    class: Option<String>,
    /// notifyd's priority argument; ignored
    #[arg(short = 'p', hide = true, allow_hyphen_values = true)]
    priority: Option<String>,
    /// notifyd's user argument; ignored
    #[arg(short = 'u', hide = true, allow_hyphen_values = true)]
    user: Option<String>,
    /// notifyd's mailbox argument; ignored
    #[arg(short = 'm', hide = true, allow_hyphen_values = true)]
    mailbox: Option<String>,
    /// notifyd's file argument, which notifyd passes without a value; ignored
    #[arg(short = 'f', hide = true, num_args = 0..=1, allow_hyphen_values = true)]
    file: Option<Option<String>>,
}

fn main() -> ExitCode {
    // Cyrus passes arguments the dealer does not need; whatever they are, the notification on
    // stdin must still be delivered, so a parse error falls back to exec mode.
    let (args, parse_error) = match Args::try_parse() {
        Ok(args) => (args, None),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => (Args::parse_from(["bonnie-dealer"]), Some(e.to_string())),
    };
    if let Err(e) = bonnie_core::logging::init(&args.log_level, args.log_file.as_deref()) {
        eprintln!("bonnie-dealer: cannot open the log file: {e}");
    }
    if let Some(e) = parse_error {
        tracing::warn!(error = %e.lines().next().unwrap_or_default(), "Arguments not understood; ignored.");
    }
    let config = match Config::load(&Config::locate(args.config.as_deref())) {
        Ok(config) => config.dealer,
        Err(e) => {
            tracing::error!(error = %e, fallback_spool = FALLBACK_SPOOL, "Configuration unusable.");
            if args.daemon || args.flush {
                return ExitCode::FAILURE;
            }
            // Keep the notification anyway: spool it where an administrator will find it.
            let fallback = DealerConfig {
                spool_dir: PathBuf::from(FALLBACK_SPOOL),
                ..DealerConfig::default()
            };
            return report(exec::deliver_stdin(&fallback))
                .map_or(ExitCode::FAILURE, |()| ExitCode::FAILURE);
        }
    };
    let result = if args.daemon {
        let shutdown = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            if let Err(e) = signal_hook::flag::register(signal, shutdown.clone()) {
                tracing::error!(error = %e, "Cannot install the signal handlers.");
                return ExitCode::FAILURE;
            }
        }
        daemon::run(&config, shutdown)
    } else if args.flush {
        exec::flush(&config)
    } else {
        exec::deliver_stdin(&config)
    };
    match report(result) {
        Some(()) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

fn report(result: anyhow::Result<()>) -> Option<()> {
    match result {
        Ok(()) => Some(()),
        Err(e) => {
            tracing::error!("{e:#}");
            None
        }
    }
}
