//! Talking to the broker: a DEALER socket named after this host, `NOTIFY` messages out and
//! `ACK`s back. Several submissions may be in flight; they are acknowledged in any order.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use bonnie_core::{
    protocol::{self, DealerMsg},
    transport::{self, Context, Socket},
};

/// A connection to the broker.
pub struct Broker {
    socket: Socket,
    _context: Context,
}

impl Broker {
    /// Connects (in the background: sends queue until the connection is up).
    pub fn connect(address: &str, host: &str) -> Result<Self, transport::Error> {
        let context = transport::context();
        let identity = protocol::dealer_identity(host, std::process::id());
        let socket = transport::dealer(&context, address, &identity, Duration::ZERO)?;
        Ok(Self {
            socket,
            _context: context,
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
            while let Ok(Some(frames)) = transport::try_recv(&self.socket) {
                if let Ok(id) = protocol::parse_ack(&frames) {
                    if waiting.contains(&id) {
                        acked.insert(id);
                    }
                }
            }
        }
        acked
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

    /// The socket, for callers that poll it with other things.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

/// A new submission id: 128 random bits in hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        // No /dev/urandom (a chroot): time, process and a counter are still unique here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes()[..8]);
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        bytes[12..].copy_from_slice(&count.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
