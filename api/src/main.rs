//! `bonnie-api`: serves the archive's groupware history to Kolab clients over JSON-RPC 2.0 at
//! `POST /api/rpc`, until SIGTERM/SIGINT; exits non-zero when it can no longer serve.
#![forbid(unsafe_code)]

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use bonnie_api::{
    admin::Admin,
    clients::Clients,
    metrics::ApiMetrics,
    server::{self, Limits},
    service::{LoginLimits, Service},
    tls,
};
use bonnie_core::{
    Config,
    daemon::{self, DaemonArgs},
};
use bonnie_plugin_api::storage::StorageClient;
use clap::Parser;

/// bonnie's JSON-RPC API for Kolab clients: object changelogs, old revisions, diffs and
/// free/busy, read from the archive the workers write ([api] in the configuration file).
#[derive(Parser)]
#[command(name = "bonnie-api", version)]
struct Args {
    #[command(flatten)]
    common: DaemonArgs,
}

/// How long a call waits for the broker to keep its audit record before it is refused (503):
/// the broker answers after one commit of the job store, milliseconds when it is well.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = Args::parse();
    daemon::run("bonnie-api", &args.common, |config| run(&config))
}

fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let stopping = daemon::shutdown_flag().context("installing the signal handlers")?;
    let api = &config.api;
    let clients = Clients::load(&api.clients)?;
    if clients.clients.is_empty() {
        tracing::warn!(file = %api.clients.display(), "No API clients yet: every call is refused until `bonnie api-client add <name>` makes one.");
    }
    for admin in &api.admin_clients {
        if !clients.clients.contains_key(admin) {
            tracing::warn!(client = %admin, "[api] admin_clients names a client that does not exist.");
        }
    }
    let mut registry = bonnie_metrics::Registry::default();
    let metrics = Arc::new(ApiMetrics::register(&mut registry));
    bonnie_metrics::serve("[api] metrics_listen", &api.metrics_listen, registry)?;
    let discovery = bonnie_discovery::config::DiscoveryConfig::from_table(&config.discovery)
        .and_then(|d| d.context())
        .with_context(|| format!("in {}", config.path.display()))?;
    let (storage_name, storage) = bonnie_host::open_storage(config, stopping.clone())?;
    let service = Arc::new(
        Service::new(
            StorageClient::new(storage),
            clients,
            api.admin_clients.clone(),
            &api.audit_log,
            Box::new(Admin::new(
                &config.broker.admin_address,
                AUDIT_TIMEOUT,
                &config.curve,
            )),
            api.max_batch_calls,
        )?
        .with_login_limits(LoginLimits::from_config(api))
        .with_metrics(metrics)
        .with_discovery(discovery)
        .with_restores(config.clone()),
    );
    let acceptor = match (&api.tls_certificate, &api.tls_key) {
        (Some(certificate), Some(key)) => Some(tls::acceptor(certificate, key)?),
        _ => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    // Calls (storage queries, argon2) block: they run on at most `threads` blocking threads,
    // while the runtime's own threads only move bytes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(api.threads)
        .thread_name("bonnie-api")
        .build()
        .context("starting the runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&api.listen)
            .await
            .with_context(|| format!("cannot listen on {}", api.listen))?;
        tracing::info!(listen = %api.listen, scheme, storage = %storage_name, threads = api.threads, max_connections = api.max_connections, "bonnie-api serving POST /api/rpc.");
        bonnie_core::systemd::ready("serving POST /api/rpc");
        let limits = Limits::from_config(api);
        server::serve(listener, acceptor, service, limits, stopping)
            .await
            .map_err(anyhow::Error::from)
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    served?;
    tracing::info!("bonnie-api stopped.");
    Ok(ExitCode::SUCCESS)
}
