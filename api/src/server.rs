//! The HTTP/1.1 server in front of [`Service`]: hyper on tokio (HTTPS through rustls when
//! configured), with the limits that keep hostile clients from holding it: head size, body
//! size (from `Content-Length`, before anything is read), time to send each, connections at
//! once. Connections are served asynchronously; calls run on tokio's bounded blocking pool.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bonnie_core::config::ApiConfig;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    Request, Response, StatusCode,
    body::{Body, Bytes},
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_rustls::TlsAcceptor;

use crate::service::{Answer, Incoming, Service};

/// hyper's smallest read buffer; the head limit below it is checked on the parsed head.
const MIN_READ_BUFFER: usize = 8192;

/// What one client may send and hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body, in bytes.
    pub max_body: u64,
    /// Largest head (request line and headers), in bytes.
    pub max_header: usize,
    /// Time to send a head (and to finish TLS).
    pub header_timeout: Duration,
    /// Time to send a body once the head is in.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits `[api]` sets.
    pub fn from_config(api: &ApiConfig) -> Self {
        Self {
            max_body: api.max_request_bytes as u64,
            max_header: api.max_header_bytes,
            header_timeout: Duration::from_millis(api.header_timeout_ms),
            body_timeout: Duration::from_millis(api.body_timeout_ms),
            max_connections: api.max_connections,
        }
    }
}

/// Why the server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket failed in a way that does not pass.
    #[error("the listening socket failed, bonnie-api can no longer serve: {0}")]
    Listener(#[source] std::io::Error),
}

/// Serves `listener` until `stopping` is set, then lets the requests in flight finish (for
/// at most a head and a body timeout). Every answered request is counted in the service's
/// metrics. An error when the listener fails for good.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Arc<Service>,
    limits: Limits,
    stopping: Arc<AtomicBool>,
) -> Result<(), ServeError> {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stopped(stopping));
    loop {
        // A connection is accepted only with a permit: beyond the limit, clients wait in the
        // listen backlog instead of costing memory here.
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if passes(&e) => {
                    tracing::warn!(error = %e, "Accepting a connection failed; trying again in 100 ms.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(ServeError::Listener(e)),
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            service: service.clone(),
            limits: limits.clone(),
            watcher: graceful.watcher(),
            _permit: permit,
        };
        tokio::spawn(connection.run(stream, tls.clone()));
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "Finishing the requests in flight.");
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.header_timeout + limits.body_timeout) => {
            tracing::warn!("Connections were still open when bonnie-api stopped.");
        }
    }
    Ok(())
}

/// Resolves once `flag` is set (by SIGTERM or SIGINT).
async fn stopped(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) {
        // This turns as long as the runtime does: systemd's watchdog pings stop with it.
        bonnie_core::systemd::watchdog();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bonnie_core::systemd::stopping();
}

/// Whether a failed `accept` passes: the peer left early, or descriptors or memory are short
/// for a while. Anything else means the listening socket itself is broken.
fn passes(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || e.raw_os_error().is_some_and(|code| {
        [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EPROTO,
            libc::EPERM,
            libc::ENETDOWN,
            libc::ENETUNREACH,
            libc::EHOSTUNREACH,
            libc::EHOSTDOWN,
            libc::EOPNOTSUPP,
        ]
        .contains(&code)
    })
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    service: Arc<Service>,
    limits: Arc<Limits>,
    watcher: Watcher,
    /// Held while the connection lives.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Completes TLS (within the head timeout) when configured, then serves HTTP/1.1.
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(stream).await;
        };
        match tokio::time::timeout(self.limits.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.serve(stream).await,
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed.");
                self.service
                    .audit_connection(&self.peer.to_string(), None, "tls_failed");
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "TLS handshake timed out.");
                self.service
                    .audit_connection(&self.peer.to_string(), None, "tls_timeout");
            }
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, service, limits) = (self.peer, self.service, self.limits.clone());
        let auditor = service.clone();
        let handler = service_fn(move |request: Request<hyper::body::Incoming>| {
            let (method, started, counting) =
                (request.method().clone(), Instant::now(), service.clone());
            let answered = answer(request, peer, service.clone(), limits.clone());
            async move {
                let response = answered.await?;
                counting
                    .metrics()
                    .answered(&method, response.status(), started.elapsed());
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.max_header.max(MIN_READ_BUFFER))
            .max_header_size(self.limits.max_header);
        let connection = builder.serve_connection(TokioIo::new(io), handler);
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!(peer = %peer, error = %e, "A connection ended with an error.");
            // What hyper refused itself, before a request reached `answer`: audited here.
            if let Some((status, error)) = head_refusal(&e) {
                auditor.audit_connection(&peer.to_string(), status, error);
            }
        }
    }
}

/// What hyper refused on its own before a request was whole (so `answer` never saw it):
/// the status it answered, if any, and a name for the audit log. `None` for a connection
/// that merely ended (the peer left, or shutdown).
fn head_refusal(e: &hyper::Error) -> Option<(Option<u16>, &'static str)> {
    if e.is_parse_too_large() {
        Some((Some(431), "head_too_large"))
    } else if e.is_parse() || e.is_parse_status() {
        Some((Some(400), "bad_head"))
    } else if e.is_timeout() {
        Some((None, "head_timeout"))
    } else if e.is_incomplete_message() {
        Some((None, "incomplete_head"))
    } else {
        None
    }
}

/// Answers one request: refusals before the body is read, then the body within its limits,
/// then the call on the blocking pool.
async fn answer(
    request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    service: Arc<Service>,
    limits: Arc<Limits>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let incoming = Incoming {
        method: request.method().as_str().to_string(),
        path: request.uri().path().to_string(),
        authorization: header("authorization"),
        user: header("x-request-user"),
        signature: header("x-request-sign"),
        peer: peer.to_string(),
    };
    // Refused before its body is read: the connection closes, so no unread body is left on
    // it to be taken for the next request.
    if let Some(refused) = service.check_route(&incoming) {
        return Ok(response(refused, true));
    }
    let too_large = || {
        let message = format!("bodies are limited to {} bytes", limits.max_body);
        service.refuse(&incoming, 413, "too_large", &message)
    };
    // hyper reads Content-Length into the size hint: an announced body over the limit is
    // refused before a byte of it is read, and the connection closed (its rest unread).
    if request.body().size_hint().lower() > limits.max_body {
        return Ok(response(too_large(), true));
    }
    let body = Limited::new(request.into_body(), limits.max_body as usize);
    let body = match tokio::time::timeout(limits.body_timeout, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(response(too_large(), true));
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %incoming.peer, error = %e, "Reading a request body failed.");
            let message = "the body could not be read";
            return Ok(response(
                service.refuse(&incoming, 400, "bad_request", message),
                true,
            ));
        }
        Err(_) => {
            let message = format!("the body must arrive within {:?}", limits.body_timeout);
            return Ok(response(
                service.refuse(&incoming, 408, "timeout", &message),
                true,
            ));
        }
    };
    let call = tokio::task::spawn_blocking(move || service.handle(&incoming, &body)).await;
    Ok(match call {
        Ok(answer) => response(answer, false),
        // Service::handle catches panics itself; this is a call cut short at shutdown.
        Err(e) => {
            tracing::error!(peer = %peer, error = %e, "A call did not finish.");
            response(
                Answer::error(503, "unavailable", "bonnie-api is stopping"),
                true,
            )
        }
    })
}

/// The HTTP response of an answer; `close` ends the connection after it.
fn response(answer: Answer, close: bool) -> Response<Full<Bytes>> {
    let body = answer
        .body
        .as_ref()
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if answer.body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if answer.challenge {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"bonnie\""),
        );
    }
    if let Some(seconds) = answer.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
