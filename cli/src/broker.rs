//! Asking the broker's admin socket: one request, one JSON answer, with a timeout and a
//! clear message when the broker is not there.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bonnie_core::{
    protocol::{AdminReply, AdminRequest},
    transport,
};

/// The broker's admin socket.
pub struct Admin {
    address: String,
    timeout: Duration,
}

impl Admin {
    /// The admin socket at `address`.
    pub fn new(address: &str, timeout: Duration) -> Self {
        Self {
            address: address.to_string(),
            timeout,
        }
    }

    /// Sends a request and returns the broker's JSON answer.
    pub fn ask(&self, request: &AdminRequest) -> anyhow::Result<serde_json::Value> {
        let context = transport::context();
        let identity = format!("Admin-{}", std::process::id());
        let socket =
            transport::dealer(&context, &self.address, identity.as_bytes(), Duration::ZERO)
                .with_context(|| format!("cannot connect to the broker at {}", self.address))?;
        transport::send(&socket, &request.frames()).context("cannot send the request")?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "the broker at {} did not answer within {:?}; is bonnie-broker running?",
                    self.address,
                    self.timeout
                );
            }
            if transport::poll(&[&socket], left).context("waiting for the broker")?[0] {
                break;
            }
        }
        let frames = transport::try_recv(&socket)?.context("no answer")?;
        match AdminReply::parse(&frames).context("the broker's answer is not understood")? {
            AdminReply::Ok(json) => {
                serde_json::from_str(&json).context("the broker's answer is not JSON")
            }
            AdminReply::Error(message) => bail!("the broker says: {message}"),
        }
    }
}
