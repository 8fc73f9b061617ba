//! `bonnie-api`: serves the archive's groupware history to Kolab clients over JSON-RPC 2.0 at
//! `POST /api/rpc`, until SIGTERM/SIGINT.
#![forbid(unsafe_code)]

use std::{
    process::ExitCode,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::Context;
use bonnie_api::{
    clients::Clients,
    service::{Incoming, Service},
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
    let (storage_name, storage) = bonnie_host::open_storage(config, stopping.clone())?;
    let service = Arc::new(Service::new(
        StorageClient::new(storage),
        clients,
        api.admin_clients.clone(),
        &api.audit_log,
        api.max_request_bytes,
    )?);
    let (server, scheme) = match (&api.tls_certificate, &api.tls_key) {
        (Some(certificate), Some(key)) => {
            let read = |path: &std::path::Path, what: &str| {
                std::fs::read(path)
                    .with_context(|| format!("reading the TLS {what} {}", path.display()))
            };
            let ssl = tiny_http::SslConfig {
                certificate: read(certificate, "certificate")?,
                private_key: read(key, "key")?,
            };
            let server = tiny_http::Server::https(&api.listen, ssl).map_err(|e| {
                anyhow::anyhow!(
                    "cannot serve HTTPS on {} with {}: {e}",
                    api.listen,
                    certificate.display()
                )
            })?;
            (server, "https")
        }
        _ => {
            let server = tiny_http::Server::http(&api.listen)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", api.listen))?;
            (server, "http")
        }
    };
    let server = Arc::new(server);
    tracing::info!(listen = %api.listen, scheme, storage = %storage_name, threads = api.threads, "bonnie-api serving POST /api/rpc.");
    let threads: Vec<_> = (0..api.threads)
        .map(|_| {
            let (server, service, stopping) = (server.clone(), service.clone(), stopping.clone());
            std::thread::spawn(move || serve(&server, &service, &stopping))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    tracing::info!("bonnie-api stopped.");
    Ok(ExitCode::SUCCESS)
}

fn serve(server: &tiny_http::Server, service: &Service, stopping: &std::sync::atomic::AtomicBool) {
    while !stopping.load(Ordering::Relaxed) {
        let mut request = match server.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "Receiving a request failed.");
                continue;
            }
        };
        let header = |name: &'static str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.equiv(name))
                .map(|h| h.value.as_str().to_string())
        };
        let (authorization, user, signature) = (
            header("Authorization"),
            header("X-Request-User"),
            header("X-Request-Sign"),
        );
        let method = request.method().as_str().to_string();
        let url = request.url().to_string();
        let path = url.split('?').next().unwrap_or_default().to_string();
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let incoming = Incoming {
            method: &method,
            path: &path,
            authorization: authorization.as_deref(),
            user: user.as_deref(),
            signature: signature.as_deref(),
            peer,
        };
        let answer = service.handle(&incoming, request.as_reader());
        let mut response = tiny_http::Response::from_string(answer.body.to_string())
            .with_status_code(answer.status)
            .with_header(
                tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("a valid header"),
            );
        if answer.challenge {
            response = response.with_header(
                tiny_http::Header::from_bytes("WWW-Authenticate", "Basic realm=\"bonnie\"")
                    .expect("a valid header"),
            );
        }
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "The client left before the answer.");
        }
    }
}
