//! `bonnie-broker`: the ZeroMQ routers for dealers, workers, collectors and the admin
//! command line, in front of the durable job store.
#![forbid(unsafe_code)]

mod counters;
mod jobs;
mod server;
mod status;
mod store;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::Context;
use bonnie_core::Config;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};

/// bonnie's broker: stores every notification the dealers submit before acknowledging it,
/// and schedules jobs onto workers and collectors.
#[derive(Parser)]
#[command(name = "bonnie-broker", version)]
struct Args {
    /// Configuration file [default: $BONNIE_CONFIG, else /etc/bonnie/bonnie.toml]
    #[arg(short, long, value_name = "PATH")]
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
        eprintln!("bonnie-broker: cannot open the log file: {e}");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("bonnie-broker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&Config::locate(args.config.as_deref()))?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register(signal, shutdown.clone())
            .context("installing the signal handlers")?;
    }
    let mut server = server::Server::start(config.broker)?;
    server.run(&shutdown)
}
