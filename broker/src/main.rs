//! `bonnie-broker`: the ZeroMQ routers for dealers, workers, collectors and the admin
//! command line, in front of the durable job store.
#![forbid(unsafe_code)]

mod audit;
mod counters;
mod jobs;
mod ledger;
mod metrics;
mod server;
mod status;
mod store;

use std::process::ExitCode;

use bonnie_core::daemon::{self, DaemonArgs};
use clap::Parser;

/// bonnie's broker: stores every notification the dealers submit before acknowledging it,
/// and schedules jobs onto workers and collectors.
#[derive(Parser)]
#[command(name = "bonnie-broker", version)]
struct Args {
    #[command(flatten)]
    common: DaemonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::run(
        "bonnie-broker",
        &args.common,
        |config| -> anyhow::Result<ExitCode> {
            let shutdown = daemon::shutdown_flag()?;
            // SIGHUP: read the allowed keys again.
            let reload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())?;
            let mut registry = bonnie_metrics::Registry::default();
            let metrics = metrics::BrokerMetrics::register(&mut registry);
            let metrics_listen = config.broker.metrics_listen.clone();
            let mut server = server::Server::start(
                config.broker,
                &config.curve,
                &config.ledger,
                reload,
                metrics,
            )?;
            bonnie_metrics::serve("[broker] metrics_listen", &metrics_listen, registry)?;
            // The routers are bound and the job store is open: peers can be served.
            bonnie_core::systemd::ready("serving dealers, workers and collectors");
            server.run(&shutdown)?;
            Ok(ExitCode::SUCCESS)
        },
    )
}
