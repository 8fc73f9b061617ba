//! A client of the broker's admin socket, shared by bonnie-api (its audit records) and the
//! `bonnie` command line: one request, one JSON answer within a timeout, and a clear message
//! when the broker is not there. Connections are kept for the next request; one that timed out
//! is dropped, so that a late answer is never taken for the answer to another request.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_core::{
    config::CurveConfig,
    keys::{self, Role},
    protocol::{AdminReply, AdminRequest},
    transport::{self, Socket},
};

/// The broker's admin socket.
pub struct Admin {
    address: String,
    timeout: Duration,
    curve: CurveConfig,
    /// Made at the first request: a command that never asks the broker starts no ZeroMQ.
    context: std::sync::OnceLock<transport::Context>,
    /// Connections that answered and are free again.
    idle: Mutex<Vec<Socket>>,
    /// Connections made, for unique identities within the process.
    made: AtomicUsize,
}

impl Admin {
    /// The admin socket at `address`; each answer is awaited for at most `timeout`.
    pub fn new(address: &str, timeout: Duration, curve: &CurveConfig) -> Self {
        Self {
            address: address.to_string(),
            timeout,
            curve: curve.clone(),
            context: std::sync::OnceLock::new(),
            idle: Mutex::new(Vec::new()),
            made: AtomicUsize::new(0),
        }
    }

    /// The address asked.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends a request and returns the broker's JSON answer; an error when the broker does not
    /// answer in time or answers `ERROR`.
    pub fn ask(&self, request: &AdminRequest) -> anyhow::Result<serde_json::Value> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (socket, secured) = match idle {
            Some(socket) => (socket, self.curve.enabled),
            None => self.connect()?,
        };
        transport::send(&socket, &request.frames()).context("cannot send the request")?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let hint = if secured {
                    " and is this host's admin key allowed there (bonnie keys list)"
                } else {
                    ""
                };
                bail!(
                    "the broker at {} did not answer within {:?}; is bonnie-broker running{hint}?",
                    self.address,
                    self.timeout
                );
            }
            if transport::poll(&[&socket], left).context("waiting for the broker")?[0] {
                break;
            }
        }
        let frames = transport::try_recv(&socket)?.context("no answer")?;
        let reply = AdminReply::parse(&frames).context("the broker's answer is not understood");
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(socket);
        match reply? {
            AdminReply::Ok(json) => {
                serde_json::from_str(&json).context("the broker's answer is not JSON")
            }
            AdminReply::Error(message) => bail!("the broker says: {message}"),
        }
    }

    /// A new connection, and whether it uses CURVE.
    fn connect(&self) -> anyhow::Result<(Socket, bool)> {
        let context = self.context.get_or_init(transport::context);
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let identity = format!("Admin-{}-{n}", std::process::id());
        let keys = keys::client_keys(&self.curve, Role::Admin)
            .context("cannot read this host's admin key (bonnie keys generate admin)")?;
        let socket = transport::dealer_with(
            context,
            &self.address,
            identity.as_bytes(),
            Duration::ZERO,
            keys.as_ref(),
        )
        .with_context(|| format!("cannot connect to the broker at {}", self.address))?;
        Ok((socket, keys.is_some()))
    }
}
