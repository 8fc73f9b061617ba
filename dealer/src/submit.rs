//! Talking to the broker: a DEALER socket named after this host, `NOTIFY` messages out and
//! `ACK`s back. Several submissions may be in flight; they are acknowledged in any order.
//! With `[curve]` on, the socket authenticates with this host's dealer key, which is what the
//! broker attributes the submissions to.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use bonnie_core::{
    config::DealerConfig,
    keys::{self, Role},
    protocol::{self, DealerMsg},
    transport::{self, ClientKeys, Context, Socket},
};

/// A connection to the broker.
pub struct Broker {
    socket: Socket,
}

/// Why the connection to the broker could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The dealer's CURVE keys cannot be read.
    #[error("the dealer's CURVE keys: {0}")]
    Keys(#[from] keys::KeyError),
    /// The socket could not be made.
    #[error(transparent)]
    Socket(#[from] transport::Error),
}

/// This host's dealer keys, when `[curve]` is on.
pub fn client_keys(config: &DealerConfig) -> Result<Option<ClientKeys>, keys::KeyError> {
    keys::client_keys(&config.curve, Role::Dealer)
}

/// The process's ZeroMQ context. It is never terminated: terminating waits for libzmq's
/// threads to close every socket politely, which would keep Cyrus waiting after the ACK.
pub fn context() -> &'static Context {
    static CONTEXT: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(transport::context)
}

impl Broker {
    /// Connects (in the background: sends queue until the connection is up) as the
    /// configuration says: its broker address, host name and keys.
    pub fn connect(config: &DealerConfig) -> Result<Self, ConnectError> {
        let identity = protocol::dealer_identity(&config.host_name(), std::process::id());
        let keys = client_keys(config)?;
        Ok(Self::connect_as(
            context(),
            &config.broker_address,
            &identity,
            keys.as_ref(),
        )?)
    }

    /// Connects with a given identity in a given context.
    pub fn connect_as(
        context: &Context,
        address: &str,
        identity: &[u8],
        keys: Option<&ClientKeys>,
    ) -> Result<Self, transport::Error> {
        Ok(Self {
            socket: transport::dealer_with(context, address, identity, Duration::ZERO, keys)?,
        })
    }

    /// Sends one submission without waiting.
    pub fn send(&self, id: &str, notification: &[u8]) -> Result<(), transport::Error> {
        let message = DealerMsg::Notify {
            id: id.to_string(),
            notification: notification.to_vec(),
        };
        transport::send(&self.socket, &message.frames())
    }

    /// The ids acknowledged before `deadline`; returns as soon as all of `waiting` are.
    pub fn acks(&self, waiting: &HashSet<String>, deadline: Instant) -> HashSet<String> {
        let mut acked = HashSet::new();
        while acked.len() < waiting.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match transport::poll(&[&self.socket], left) {
                Ok(readable) if readable.first() == Some(&true) => {}
                Ok(_) if left.is_zero() => break,
                Ok(_) => continue,
                Err(transport::Error::EINTR) => continue,
                Err(_) => break,
            }
            acked.extend(
                self.take_acks()
                    .into_iter()
                    .filter(|id| waiting.contains(id)),
            );
        }
        acked
    }

    /// The ids of the ACKs that have arrived, without waiting.
    pub fn take_acks(&self) -> Vec<String> {
        let mut acked = Vec::new();
        while let Ok(Some(frames)) = transport::try_recv(&self.socket) {
            if let Ok(id) = protocol::parse_ack(&frames) {
                acked.push(id);
            }
        }
        acked
    }

    /// The socket, for polling together with other files.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Submits one notification; true if the broker acknowledged it within `timeout`.
    pub fn submit(&self, id: &str, notification: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if self.send(id, notification).is_err() {
            return false;
        }
        let waiting: HashSet<String> = [id.to_string()].into();
        self.acks(&waiting, deadline).contains(id)
    }
}

/// A new submission id: 128 bits in hex, unique across processes and restarts: 64 random
/// bits drawn once per process, then the time and a counter.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
        if random.is_err() {
            // No /dev/urandom (a chroot): the process id and start time still set it apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes = ((nanos as u64) ^ (u64::from(std::process::id()) << 40)).to_le_bytes();
        }
        u64::from_le_bytes(bytes)
    });
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:016x}{:08x}{count:08x}", micros as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_printable() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| super::new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
