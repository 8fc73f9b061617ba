//! `bonnie-collector`: runs on the IMAP host and adds to jobs what only the backend knows:
//! message payloads and headers (from the Cyrus spool, else IMAP), folder metadata and ACLs
//! (IMAP as an admin), and users' directory entries (LDAP); and carries out DLP rules' IMAP
//! actions (a keyword, a move to quarantine) on the job's message.
#![forbid(unsafe_code)]

mod commands;
mod dlp_actions;
mod failure;
mod ldap;
mod metrics;
mod session;

use std::process::ExitCode;

use bonnie_core::daemon::{self, DaemonArgs};
use clap::Parser;

/// bonnie's collector: serves the broker's collector jobs on the IMAP host.
#[derive(Parser)]
#[command(name = "bonnie-collector", version)]
struct Args {
    #[command(flatten)]
    common: DaemonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::run(
        "bonnie-collector",
        &args.common,
        |config| -> anyhow::Result<ExitCode> {
            let shutdown = daemon::shutdown_flag()?;
            let mut registry = bonnie_metrics::Registry::default();
            let metrics = std::sync::Arc::new(metrics::CollectorMetrics::register(&mut registry));
            bonnie_metrics::serve(
                "[collector] metrics_listen",
                &config.collector.metrics_listen,
                registry,
            )?;
            session::run(&config.collector, &shutdown, metrics)?;
            Ok(ExitCode::SUCCESS)
        },
    )
}
