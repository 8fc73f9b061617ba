//! `bonnie-logd`: the log intake. Receives syslog (UDP, TCP, a unix socket) and follows log
//! files across rotation, and hands the lines in batches to the broker, as the dealer hands
//! notifications: acknowledged by the broker, else synced to a spool of its own and
//! forwarded later. A followed file's position moves only once its batch is handed over, so
//! a restart neither reads a line twice into the archive nor skips one.
#![forbid(unsafe_code)]

mod batch;
mod config;
mod follow;
mod framing;
mod handover;
mod listen;
mod metrics;
mod position;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::Context as _;
use bonnie_core::Config;
use clap::Parser;
use tracing::{error, info};

use crate::{config::LogdConfig, follow::Follower, handover::Handover, metrics::LogdMetrics};

/// bonnie's log intake: syslog over UDP, TCP (octet counting or newline framing) and unix
/// sockets, and log files followed across rotation, handed to the broker in durable batches
/// (`[logd]` in the configuration; the broker connection is `[dealer]`'s).
#[derive(Parser)]
#[command(name = "bonnie-logd", version)]
struct Args {
    /// Configuration file [default: $BONNIE_CONFIG, else /etc/bonnie/bonnie.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log filter: error, warn, info, debug or trace ($BONNIE_LOG overrides it)
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
    /// Append log lines to this file instead of standard error
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = bonnie_core::logging::init(&args.log_level, args.log_file.as_deref()) {
        eprintln!("bonnie-logd: cannot open the log file: {e}");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&Config::locate(args.config.as_deref()))?;
    let logd = LogdConfig::from(&config)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, shutdown.clone())
            .context("cannot install the signal handlers")?;
    }
    let host = config.dealer.host_name();
    let mut registry = bonnie_metrics::Registry::default();
    let metrics = Arc::new(LogdMetrics::register(&mut registry));
    bonnie_metrics::serve("[logd] metrics_listen", &logd.metrics_listen, registry)?;
    let (handover, handover_thread) = Handover::start(&config.dealer, &logd.spool_dir, metrics)?;
    let mut threads = listen::start(&logd, &host, handover.clone(), &shutdown)?;
    for path in &logd.files {
        let follower = Follower::new(path, &logd, &host, handover.clone(), shutdown.clone())?;
        threads.push(
            std::thread::Builder::new()
                .name("follow".into())
                .spawn(move || follower.run())
                .context("cannot start a file follower")?,
        );
    }
    drop(handover);
    info!(host = %host, broker = %config.dealer.broker_address, "bonnie-logd started.");
    for thread in threads {
        let _ = thread.join();
    }
    let _ = handover_thread.join();
    info!("bonnie-logd stopped.");
    Ok(())
}
