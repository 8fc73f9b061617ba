//! Daemon mode, for Cyrus's `notifysocket: dlist:<path>`: every imapd or lmtpd opens a
//! connection per event, sends one `NOTIFY` request and waits for `OK NIL`. The answer is
//! given only once the notification is acknowledged by the broker or synced to the spool.
//! One thread owns the broker connection and the spool; connection threads hand it their
//! notifications and wait for the verdict.

use std::{
    collections::HashMap,
    io::{Read, Write},
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{config::DealerConfig, transport};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use tracing::{debug, error, info, warn};

use crate::{
    dlist::{self, Parsed},
    forward::{self, Forwarded},
    rules::DropRules,
    spool::Spool,
    submit::{self, Broker},
};

/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request read before giving up on finding its end (Cyrus caps notifications far
/// below this).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Where a notification ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// The broker acknowledged it.
    Acked,
    /// It is synced to the local spool.
    Spooled,
}

/// A notification handed to the submitter thread.
struct Request {
    id: String,
    notification: Vec<u8>,
    reply: Sender<Result<Durable, String>>,
}

/// Serves the dlist socket until `shutdown` is set.
pub fn run(config: &DealerConfig, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let path = &config.socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e)
                .with_context(|| format!("cannot remove the old socket {}", path.display()));
        }
        _ => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.socket_mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    let spool = Spool::open(&config.spool_dir)
        .with_context(|| format!("cannot open the spool {}", config.spool_dir.display()))?;
    let broker =
        Broker::connect(&config.broker_address, &config.host_name()).with_context(|| {
            format!(
                "cannot set up the connection to the broker at {}",
                config.broker_address
            )
        })?;
    let (wake_reader, wake_writer) =
        UnixStream::pair().context("cannot create the wake-up pipe")?;
    wake_reader.set_nonblocking(true)?;
    let wake_writer = Arc::new(wake_writer);
    let (requests_tx, requests_rx) = unbounded::<Request>();
    info!(socket = %path.display(), broker = %config.broker_address, "Dealer daemon listening.");

    let open_connections = Arc::new(AtomicUsize::new(0));
    let submitter_config = config.clone();
    let submitter_stop = shutdown.clone();
    let submitter_open = open_connections.clone();
    let submitter = std::thread::Builder::new()
        .name("submitter".to_string())
        .spawn(move || {
            Submitter::new(submitter_config, broker, spool, wake_reader).run(
                &requests_rx,
                &submitter_stop,
                &submitter_open,
            )
        })
        .context("cannot start the submitter thread")?;

    let rules = Arc::new(DropRules::new(config));
    let acceptor_stop = shutdown.clone();
    let acceptor_path = path.clone();
    std::thread::Builder::new()
        .name("acceptor".to_string())
        .spawn(move || {
            for stream in listener.incoming() {
                if acceptor_stop.load(Ordering::Relaxed) {
                    break;
                }
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(e) => {
                        warn!(error = %e, "Accepting a connection failed.");
                        continue;
                    }
                };
                let (requests, wake, rules, open) = (
                    requests_tx.clone(),
                    wake_writer.clone(),
                    rules.clone(),
                    open_connections.clone(),
                );
                open.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("connection".to_string())
                    .spawn(move || {
                        serve(stream, &requests, &wake, &rules);
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    error!(error = %e, "Cannot start a thread for a connection.");
                }
            }
            debug!(socket = %acceptor_path.display(), "Acceptor stopped.");
        })
        .context("cannot start the acceptor thread")?;

    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    info!("Stopping: no new connections; the ones open finish.");
    // Wake the acceptor so it sees the flag.
    let _ = UnixStream::connect(path);
    let _ = std::fs::remove_file(path);
    submitter
        .join()
        .map_err(|_| anyhow::anyhow!("the submitter thread panicked"))?
}

/// One connection: read the request, hand the notification over, answer.
fn serve(mut stream: UnixStream, requests: &Sender<Request>, wake: &UnixStream, rules: &DropRules) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 65536];
    let notification = loop {
        match dlist::parse(&buffer) {
            Parsed::Notify { message } => break message,
            Parsed::Invalid(why) => {
                // Not lost: the raw request goes to the broker, where it is kept as a
                // failed job that an administrator can inspect.
                warn!(reason = %why, bytes = buffer.len(), "Request not understood; forwarded as it is.");
                break std::mem::take(&mut buffer);
            }
            Parsed::Incomplete if buffer.len() > MAX_REQUEST => {
                warn!(
                    bytes = buffer.len(),
                    "Request too long without an end; forwarded as it is."
                );
                break std::mem::take(&mut buffer);
            }
            Parsed::Incomplete => {}
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                if !buffer.is_empty() {
                    warn!(
                        bytes = buffer.len(),
                        "Connection closed mid-request; forwarded as it is."
                    );
                    break std::mem::take(&mut buffer);
                }
                return;
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) => {
                warn!(error = %e, bytes = buffer.len(), "Reading a request failed.");
                if buffer.is_empty() {
                    return;
                }
                break std::mem::take(&mut buffer);
            }
        }
    };
    if let Some(reason) = rules.drops(&notification) {
        debug!(reason = %reason, "Notification dropped by a drop rule.");
        let _ = stream.write_all(b"OK NIL\r\n");
        return;
    }
    let (reply_tx, reply_rx) = bounded(1);
    let request = Request {
        id: submit::new_id(),
        notification,
        reply: reply_tx,
    };
    if requests.send(request).is_err() {
        let _ = stream.write_all(b"NO NIL\r\n");
        return;
    }
    let _ = (&*wake).write(&[1]);
    let answer: &[u8] = match reply_rx.recv() {
        Ok(Ok(_)) => b"OK NIL\r\n",
        Ok(Err(e)) => {
            error!(error = %e, "A notification could not be made durable.");
            b"NO NIL\r\n"
        }
        Err(_) => b"NO NIL\r\n",
    };
    let _ = stream.write_all(answer);
}

/// A submission waiting for its ACK.
struct Pending {
    notification: Vec<u8>,
    reply: Sender<Result<Durable, String>>,
    deadline: Instant,
}

/// The thread that owns the broker connection and the spool.
struct Submitter {
    config: DealerConfig,
    broker: Broker,
    spool: Spool,
    wake: UnixStream,
    pending: HashMap<String, Pending>,
}

impl Submitter {
    fn new(config: DealerConfig, broker: Broker, spool: Spool, wake: UnixStream) -> Self {
        Self {
            config,
            broker,
            spool,
            wake,
            pending: HashMap::new(),
        }
    }

    fn run(
        mut self,
        requests: &Receiver<Request>,
        shutdown: &AtomicBool,
        open: &AtomicUsize,
    ) -> anyhow::Result<()> {
        use std::os::fd::AsRawFd;
        let ack_timeout = Duration::from_millis(self.config.ack_timeout_ms);
        loop {
            // On shutdown, connections already open still get their answer.
            let stopping = shutdown.load(Ordering::Relaxed);
            if stopping
                && open.load(Ordering::SeqCst) == 0
                && self.pending.is_empty()
                && requests.is_empty()
            {
                return Ok(());
            }
            let next_deadline = self.pending.values().map(|p| p.deadline).min();
            let wait = next_deadline
                .map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(100));
            let _ =
                transport::poll_with_fds(&[self.broker.socket()], &[self.wake.as_raw_fd()], wait);
            let mut drain = [0u8; 4096];
            while matches!((&self.wake).read(&mut drain), Ok(n) if n > 0) {}

            if let Err(e) = self.spool.sweep() {
                warn!(error = %e, "Cannot move side files into the spool.");
            }
            let mut to_spool: Vec<(String, Pending)> = Vec::new();
            let direct =
                self.spool.is_empty().unwrap_or(false) && !forward::broker_resting(&self.spool);
            while let Ok(request) = requests.try_recv() {
                let pending = Pending {
                    notification: request.notification,
                    reply: request.reply,
                    deadline: Instant::now() + ack_timeout,
                };
                if direct && self.broker.send(&request.id, &pending.notification).is_ok() {
                    self.pending.insert(request.id, pending);
                } else {
                    to_spool.push((request.id, pending));
                }
            }
            while let Ok(Some(frames)) = transport::try_recv(self.broker.socket()) {
                if let Ok(id) = bonnie_core::protocol::parse_ack(&frames) {
                    if let Some(done) = self.pending.remove(&id) {
                        let _ = done.reply.send(Ok(Durable::Acked));
                    }
                }
            }
            let now = Instant::now();
            let late: Vec<String> = self
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(id, _)| id.clone())
                .collect();
            if !late.is_empty() {
                warn!(notifications = late.len(), broker = %self.config.broker_address,
                    "The broker did not acknowledge in time; spooling.");
                forward::rest_broker(&self.spool, &self.config);
                for id in late {
                    if let Some(p) = self.pending.remove(&id) {
                        to_spool.push((id, p));
                    }
                }
            }
            self.spool_all(to_spool);
            if self.pending.is_empty()
                && !forward::broker_resting(&self.spool)
                && !self.spool.is_empty().unwrap_or(true)
            {
                match forward::forward(
                    &mut self.spool,
                    &self.broker,
                    &self.config,
                    Some(ack_timeout),
                ) {
                    Ok(Forwarded::Emptied) => {
                        info!("The broker is back; the spool is empty again.")
                    }
                    Ok(_) => {}
                    Err(e) => error!(error = %e, "Forwarding the spool failed."),
                }
            }
        }
    }

    /// Syncs notifications to the spool in one write, then answers their connections.
    fn spool_all(&mut self, entries: Vec<(String, Pending)>) {
        if entries.is_empty() {
            return;
        }
        let records: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(id, p)| (id.as_str(), p.notification.as_slice()))
            .collect();
        let result = self
            .spool
            .append(&records)
            .map(|()| Durable::Spooled)
            .map_err(|e| format!("cannot write to the spool: {e}"));
        for (_, pending) in entries {
            let _ = pending.reply.send(result.clone());
        }
    }
}
