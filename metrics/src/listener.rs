//! The `/metrics` listener: a small HTTP/1.1 server (hyper on a current-thread tokio runtime,
//! on a thread of its own, so a daemon's own loop neither runs it nor waits on it).
//!
//! It answers `GET /metrics` and nothing else (404 for another path, 405 for another
//! method), reads no request body, closes every connection after one answer, and bounds what
//! a client may hold: the head's size, the time to send it, the connection's whole life, and
//! the connections served at once (more wait in the listen backlog).

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::Bytes,
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{encoding::prometheus_text, registry::Registry};
use tokio::{net::TcpListener, sync::Semaphore};

/// hyper's smallest read buffer, which also bounds a request's head.
const MAX_HEAD_BYTES: usize = 8192;

/// What one scraper may send and hold.
#[derive(Debug, Clone)]
struct Limits {
    /// Time to send the request's head, from the connection's start.
    header_timeout: Duration,
    /// Longest a connection lives, answer included.
    connection_timeout: Duration,
    /// Connections served at once.
    max_connections: usize,
}

impl Default for Limits {
    /// 5 s for the head, 30 s in all, 8 connections: a Prometheus server scrapes with one
    /// connection at a time, and a page is written in well under a millisecond.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
            max_connections: 8,
        }
    }
}

/// Why the listener could not start; each names the configuration key at fault.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The configured value is not `address:port`.
    #[error("{key} = {address:?} is not an address and port, such as \"127.0.0.1:9431\"")]
    Address {
        /// The key, such as `[broker] metrics_listen`.
        key: String,
        /// Its value.
        address: String,
    },
    /// The address cannot be listened on (the port is in use, the address is not this
    /// host's, the port is privileged).
    #[error("{key} = {address:?}: cannot listen for metrics scrapes: {source}")]
    Bind {
        /// The key.
        key: String,
        /// Its value.
        address: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The listener's thread or runtime could not be made.
    #[error("{key}: cannot start the metrics listener: {source}")]
    Start {
        /// The key.
        key: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A running `/metrics` listener. It serves as long as the process lives; dropping this
/// handle does not stop it.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// The address it listens on (the port chosen when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Serves `registry` on `address` (the value of `key`, for error messages) within the
/// default limits (5 s for a request's head, 30 s for a connection, 8 connections at once).
/// `None` when `address` is empty: metrics are off. The socket is bound before this returns,
/// so a bad address or a port in use fails the daemon's start-up.
pub fn serve(
    key: &str,
    address: &str,
    registry: Registry,
) -> Result<Option<MetricsServer>, MetricsError> {
    serve_within(key, address, registry, Limits::default())
}

/// [`serve`] within `limits`.
fn serve_within(
    key: &str,
    address: &str,
    registry: Registry,
    limits: Limits,
) -> Result<Option<MetricsServer>, MetricsError> {
    if address.is_empty() {
        return Ok(None);
    }
    let socket: SocketAddr = address.parse().map_err(|_| MetricsError::Address {
        key: key.to_string(),
        address: address.to_string(),
    })?;
    let bind_error = |source| MetricsError::Bind {
        key: key.to_string(),
        address: address.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(socket).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let start_error = |source| MetricsError::Start {
        key: key.to_string(),
        source,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(start_error)?;
    let registry = Arc::new(registry);
    std::thread::Builder::new()
        .name("metrics".to_string())
        .spawn(move || runtime.block_on(accept(listener, registry, limits)))
        .map_err(start_error)?;
    tracing::info!(address = %local_addr, "Serving metrics at /metrics.");
    Ok(Some(MetricsServer { local_addr }))
}

/// Accepts connections for ever, each with a permit of `limits.max_connections`.
async fn accept(listener: std::net::TcpListener, registry: Arc<Registry>, limits: Limits) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "The metrics listener cannot use its socket; no metrics are served.");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // A peer that left early, descriptors short for a while: try again shortly.
                tracing::debug!(error = %e, "Accepting a metrics connection failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |request| {
                let page = answer(&request, &registry);
                async move { Ok::<_, Infallible>(page) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), handler);
            match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "A metrics connection failed."),
                Err(_) => tracing::debug!("A metrics connection outlived its time; closed."),
            }
            drop(permit);
        });
    }
}

/// The answer to one request; its body is never read.
fn answer<B>(request: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let mut page = String::new();
    if let Err(e) = prometheus_text::encode(&mut page, registry) {
        tracing::error!(error = %e, "Cannot encode the metrics.");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
    );
    response
}

/// A short plain-text answer.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::{Counter, Registry};

    /// A listener on a free loopback port serving one counter at 3.
    fn listening(limits: Limits) -> SocketAddr {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register(
            "bonnie_test_events",
            "Events seen by the test",
            counter.clone(),
        );
        counter.inc_by(3);
        serve_within("[test] metrics_listen", "127.0.0.1:0", registry, limits)
            .expect("listening")
            .expect("on")
            .local_addr()
    }

    /// Sends `request` as it is and reads until the server closes the connection.
    fn exchange(address: SocketAddr, request: &[u8]) -> String {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.write_all(request).expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[test]
    fn get_metrics_answers_the_prometheus_text_format() {
        let address = listening(Limits::default());
        let answer = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\nbonnie_test_events_total 3\n"),
            "{answer}"
        );
        assert!(!answer.contains("# EOF"), "{answer}");
    }

    #[test]
    fn other_paths_are_not_found_and_other_methods_not_allowed() {
        let address = listening(Limits::default());
        let answer = exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
        let answer = exchange(address, b"GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
        for method in ["POST", "PUT", "DELETE", "HEAD"] {
            let request =
                format!("{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
            let answer = exchange(address, request.as_bytes());
            assert!(answer.starts_with("HTTP/1.1 405 "), "{method}: {answer}");
            assert!(answer.contains("allow: GET\r\n"), "{method}: {answer}");
        }
    }

    #[test]
    fn a_request_body_is_not_read_and_the_connection_is_closed_after_one_answer() {
        let address = listening(Limits::default());
        // The body announced is never sent: an answer that waited for it would never come.
        let answer = exchange(
            address,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        // Two requests on one connection get one answer: the connection closes after it.
        let answer = exchange(
            address,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 1, "{answer}");
    }

    #[test]
    fn an_oversized_head_is_refused() {
        let address = listening(Limits::default());
        let filler = "a".repeat(2 * MAX_HEAD_BYTES);
        let request = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        // The server may close before it has read everything; what it answered counts.
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    }

    #[test]
    fn a_client_that_never_sends_its_head_is_dropped() {
        let address = listening(Limits {
            header_timeout: Duration::from_millis(50),
            ..Limits::default()
        });
        // Half a head, then silence: the server closes the connection on its own.
        let answer = exchange(address, b"GET /metrics HTTP/1.1\r\n");
        assert!(!answer.contains("200 OK"), "{answer}");
    }

    #[test]
    fn connections_beyond_the_limit_wait_for_a_free_one() {
        let address = listening(Limits {
            max_connections: 1,
            ..Limits::default()
        });
        // The one permit is held by a connection that sends nothing yet.
        let mut holder = std::net::TcpStream::connect(address).expect("connect");
        let waiting = std::thread::spawn(move || {
            exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        });
        holder
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut first = Vec::new();
        holder.read_to_end(&mut first).expect("read");
        assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200 OK"));
        let second = waiting.join().expect("second client");
        assert!(second.starts_with("HTTP/1.1 200 OK"), "{second}");
    }

    #[test]
    fn an_address_that_is_not_one_or_is_taken_names_the_key() {
        let err = serve("[broker] metrics_listen", "localhost", Registry::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[broker] metrics_listen = \"localhost\""),
            "{err}"
        );
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("address").to_string();
        let err = serve("[broker] metrics_listen", &address, Registry::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[broker] metrics_listen") && err.contains("cannot listen"),
            "{err}"
        );
        assert!(
            serve("[broker] metrics_listen", "", Registry::default())
                .expect("off")
                .is_none()
        );
    }
}
