//! Asking the broker's admin socket: one request, one JSON answer, with a timeout and a
//! clear message when the broker is not there.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bonnie_core::{
    config::CurveConfig,
    keys::{self, Role},
    protocol::{AdminReply, AdminRequest},
    transport,
};

/// The broker's admin socket.
pub struct Admin {
    address: String,
    timeout: Duration,
    curve: CurveConfig,
}

impl Admin {
    /// The admin socket at `address`.
    pub fn new(address: &str, timeout: Duration, curve: &CurveConfig) -> Self {
        Self {
            address: address.to_string(),
            timeout,
            curve: curve.clone(),
        }
    }

    /// Sends a request and returns the broker's JSON answer.
    pub fn ask(&self, request: &AdminRequest) -> anyhow::Result<serde_json::Value> {
        let context = transport::context();
        let identity = format!("Admin-{}", std::process::id());
        let keys = keys::client_keys(&self.curve, Role::Admin)
            .context("cannot read this host's admin key (bonnie keys generate admin)")?;
        let socket = transport::dealer_with(
            &context,
            &self.address,
            identity.as_bytes(),
            Duration::ZERO,
            keys.as_ref(),
        )
        .with_context(|| format!("cannot connect to the broker at {}", self.address))?;
        transport::send(&socket, &request.frames()).context("cannot send the request")?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let hint = if keys.is_some() {
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
        match AdminReply::parse(&frames).context("the broker's answer is not understood")? {
            AdminReply::Ok(json) => {
                serde_json::from_str(&json).context("the broker's answer is not JSON")
            }
            AdminReply::Error(message) => bail!("the broker says: {message}"),
        }
    }
}
