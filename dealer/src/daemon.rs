//! Daemon mode, for Cyrus's `notifysocket: dlist:<path>`: every imapd or lmtpd opens a
//! connection per event, sends one `NOTIFY` request and waits for `OK NIL`. The answer is
//! given only once the notification is acknowledged by the broker or synced to the spool.
//!
//! One thread serves every connection with non-blocking sockets and keeps all their
//! notifications in flight at once on one DEALER socket, so libzmq carries many per TCP
//! segment and the broker stores them with one sync; no thread hands work to another on the
//! way (decision 6). Notifications that must be spooled in one turn are synced together. A
//! forwarder thread empties the daemon's spool, in order, and the exec dealers' spools in
//! the same folder, whenever the broker answers again; after a failure it rests the broker
//! a second at most, and the first ACK ends the rest.

use std::{
    collections::{HashMap, VecDeque},
    io::{ErrorKind, Read, Write},
    os::{
        fd::AsRawFd,
        unix::{
            fs::PermissionsExt,
            net::{UnixListener, UnixStream},
        },
    },
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{config::DealerConfig, protocol, time::now_ms, transport};
use tracing::{debug, error, info, warn};

use crate::{
    backoff::{self, Backoff, Rest},
    dlist::{self, Parsed},
    folder,
    forward::{self, Forwarded, Outcome, Queue},
    metrics::DealerMetrics,
    rules::DropRules,
    spool::{Entry, Spool},
    submit::{self, Broker},
};

/// Largest request read before giving up on finding its end (Cyrus caps notifications far
/// below this).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// How often the forwarder looks at the spool.
const FORWARD_EVERY: Duration = Duration::from_millis(50);

/// How often the forwarder looks at the exec dealers' spools.
const OTHERS_EVERY: Duration = Duration::from_millis(500);

/// How long a daemon waits for the lock of its spool (another daemon's, or a flush's).
const SPOOL_WAIT: Duration = Duration::from_secs(5);

/// Longest the serving thread sleeps when nothing is due, so that it sees a shutdown.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// How long accepting pauses after it failed (out of file descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What the threads share.
struct Shared {
    config: DealerConfig,
    /// The daemon's own spool, `daemon/` in the spool folder.
    spool: Mutex<Spool>,
    own_dir: PathBuf,
    /// New notifications go to the spool: it holds some (their order must be kept), or the
    /// broker did not answer lately.
    spooling: AtomicBool,
    /// The forwarder does not try the broker before this.
    rest: Mutex<Rest>,
    backoff: Backoff,
    /// The serving thread had an ACK since the forwarder last looked.
    acked: AtomicBool,
    shutdown: Arc<AtomicBool>,
    metrics: DealerMetrics,
}

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the spool-bytes gauge from `spool`.
    fn measure(&self, spool: &Spool) {
        match spool.waiting_bytes() {
            Ok(bytes) => {
                let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                self.metrics.spool_bytes.set(bytes);
            }
            Err(e) => debug!(error = %e, "Cannot measure the spool."),
        }
    }

    fn rest(&self) -> std::sync::MutexGuard<'_, Rest> {
        self.rest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn folder(&self) -> &Path {
        &self.config.spool_dir
    }

    /// The broker failed to answer: rest it, unless a rest runs already (notifications sent
    /// before it began time out one after another: the same outage). Exec dealers on this
    /// host rest it too. True if a rest began.
    fn broker_failed(&self) -> bool {
        let next = {
            let mut rest = self.rest();
            let next = self.backoff.failed(*rest, now_ms());
            if next == *rest {
                return false;
            }
            *rest = next;
            next
        };
        warn!(rest_ms = next.backoff_ms, max_rest_ms = self.backoff.cap_ms(),
            broker = %self.config.broker_address,
            "The broker did not answer; new notifications are spooled and it is tried again after a rest.");
        if let Err(e) = backoff::note_failure(self.folder(), &Backoff::exec(&self.config)) {
            warn!(error = %e, "Cannot note in the spool folder that the broker is down.");
        }
        true
    }

    /// The broker answered: the rest ends, here and for the exec dealers.
    fn broker_answered(&self) {
        let was = std::mem::take(&mut *self.rest());
        if was != Rest::default() {
            info!("The broker answers again.");
        }
        if let Err(e) = backoff::note_answer(self.folder()) {
            warn!(error = %e, "Cannot note in the spool folder that the broker answers.");
        }
    }

    /// Takes what a forwarding run showed; false if the broker did not answer.
    fn forwarded(&self, outcome: Outcome) -> bool {
        if outcome.forwarded > 0 {
            self.broker_answered();
        }
        if outcome.result == Forwarded::BrokerDown {
            self.broker_failed();
            return false;
        }
        true
    }
}

/// The daemon's spool as the forwarder reads it: locked for each read and each advance only,
/// so that the serving thread spools while the forwarder waits for the broker.
struct Own<'a> {
    shared: &'a Shared,
    /// Where each entry of the last look ends: an advance past them takes them off the
    /// spool-records gauge.
    peeked: Vec<u64>,
}

impl<'a> Own<'a> {
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            peeked: Vec::new(),
        }
    }
}

impl Queue for Own<'_> {
    fn peek(&mut self, max: usize) -> std::io::Result<Vec<Entry>> {
        let mut spool = self.shared.spool();
        let entries = spool.peek(max)?;
        if entries.is_empty() {
            // Under the lock: no notification can be spooled between this look and this.
            self.shared.spooling.store(false, Ordering::SeqCst);
            self.shared.metrics.spool_records.set(0);
            self.shared.metrics.spool_bytes.set(0);
        }
        self.peeked = entries.iter().map(|e| e.end).collect();
        Ok(entries)
    }

    fn advance(&mut self, offset: u64) -> std::io::Result<()> {
        let mut spool = self.shared.spool();
        spool.advance(offset)?;
        let gone = self.peeked.iter().filter(|end| **end <= offset).count();
        self.peeked.retain(|end| *end > offset);
        self.shared.metrics.spool_records.dec_by(gone as i64);
        self.shared.measure(&spool);
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.shared.own_dir
    }
}

/// Serves the dlist socket until `shutdown` is set.
pub fn run(config: &DealerConfig, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let path = &config.socket;
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Made under bonnie's umask (0o027), yet Cyrus's imapd and lmtpd, maybe another user,
        // must reach the socket: its own mode (`socket_mode`) says who may connect.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e)
                .with_context(|| format!("cannot remove the old socket {}", path.display()));
        }
        _ => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listening socket non-blocking")?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.socket_mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    let own_dir = config.spool_dir.join(folder::DAEMON);
    let spool = match Spool::open_within(&own_dir, Some(SPOOL_WAIT)) {
        Ok(spool) => spool,
        Err(e) if e.kind() == ErrorKind::WouldBlock => anyhow::bail!(
            "the spool {} stays locked: another dealer daemon uses this spool folder",
            own_dir.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open the spool {}", own_dir.display()));
        }
    };
    let spooling = !spool.is_empty()? || backoff::load(&config.spool_dir).resting(now_ms());
    let mut registry = bonnie_metrics::Registry::default();
    let metrics = DealerMetrics::register(&mut registry);
    if !spool.is_empty()? {
        let records = spool
            .len()
            .with_context(|| format!("cannot read the spool {}", own_dir.display()))?;
        metrics
            .spool_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }
    let shared = Arc::new(Shared {
        config: config.clone(),
        spool: Mutex::new(spool),
        own_dir,
        spooling: AtomicBool::new(spooling),
        rest: Mutex::new(Rest::default()),
        backoff: Backoff::daemon(config),
        acked: AtomicBool::new(false),
        shutdown: shutdown.clone(),
        metrics,
    });
    shared.measure(&shared.spool());
    let context = submit::context();
    let host = config.host_name();
    let keys = submit::client_keys(config).context("cannot read the dealer's CURVE keys")?;
    let connect = |n: usize| {
        let identity = protocol::dealer_connection_identity(&host, std::process::id(), n);
        Broker::connect_as(context, &config.broker_address, &identity, keys.as_ref()).with_context(
            || {
                format!(
                    "cannot set up the connection to the broker at {}",
                    config.broker_address
                )
            },
        )
    };
    let mut server = Server {
        shared: &shared,
        rules: DropRules::new(config),
        listener: Some(listener),
        broker: connect(0)?,
        reading: Vec::new(),
        waiting: HashMap::new(),
        deadlines: VecDeque::new(),
        to_spool: Vec::new(),
        accept_after: Instant::now(),
    };
    let forwarder_broker = connect(1)?;
    let forwarder_shared = shared.clone();
    let forwarder = std::thread::Builder::new()
        .name("forwarder".to_string())
        .spawn(move || forward_loop(&forwarder_broker, &forwarder_shared))
        .context("cannot start the forwarder thread")?;
    bonnie_metrics::serve("[dealer] metrics_listen", &config.metrics_listen, registry)?;
    info!(socket = %path.display(), broker = %config.broker_address,
        max_connections = config.daemon_connections, "Dealer daemon listening.");
    bonnie_core::systemd::ready("serving the dlist socket");

    server.serve();
    forwarder
        .join()
        .map_err(|_| anyhow::anyhow!("the forwarder thread panicked"))?;
    Ok(())
}

/// A connection whose request is still being read.
struct Reading {
    stream: UnixStream,
    buffer: Vec<u8>,
    deadline: Instant,
}

/// A connection whose notification is with the broker, waiting for the ACK.
struct Waiting {
    stream: UnixStream,
    notification: Vec<u8>,
}

/// A notification to sync to the spool this turn, and the connection to answer after.
struct ToSpool {
    id: String,
    notification: Vec<u8>,
    stream: UnixStream,
}

/// The serving thread's state.
struct Server<'a> {
    shared: &'a Shared,
    rules: DropRules,
    /// `None` once shutting down: no new connections.
    listener: Option<UnixListener>,
    broker: Broker,
    reading: Vec<Reading>,
    /// By submission id.
    waiting: HashMap<String, Waiting>,
    /// When each submission stops waiting for its ACK, in the order they were sent.
    deadlines: VecDeque<(Instant, String)>,
    to_spool: Vec<ToSpool>,
    /// No accepting before this time (after accepting failed).
    accept_after: Instant,
}

impl Server<'_> {
    /// Serves until shutdown, then lets the open connections finish.
    fn serve(&mut self) {
        loop {
            bonnie_core::systemd::watchdog();
            if self.shared.shutdown.load(Ordering::Relaxed) && self.listener.is_some() {
                info!("Stopping: no new connections; the ones open finish.");
                bonnie_core::systemd::stopping();
                // No new connection can find the socket; the ones already queued on it are
                // taken and served, not reset.
                let _ = std::fs::remove_file(&self.shared.config.socket);
                self.accept(usize::MAX);
                self.listener = None;
            }
            if self.listener.is_none() && self.reading.is_empty() && self.waiting.is_empty() {
                return;
            }
            let accepting = self.listener.as_ref().filter(|_| {
                self.reading.len() + self.waiting.len() < self.shared.config.daemon_connections
                    && Instant::now() >= self.accept_after
            });
            let mut fds: Vec<_> = accepting.iter().map(|l| l.as_raw_fd()).collect();
            let accepting = !fds.is_empty();
            fds.extend(self.reading.iter().map(|r| r.stream.as_raw_fd()));
            let readable =
                match transport::poll_with_fds(&[self.broker.socket()], &fds, self.wait()) {
                    Ok(readable) => readable,
                    Err(transport::Error::EINTR) => continue,
                    Err(e) => {
                        error!(error = %e, "Polling failed.");
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
            if readable[0] {
                self.take_acks();
            }
            let (listener_ready, clients_ready) = readable[1..].split_at(usize::from(accepting));
            // Later entries first, so that removing one does not move the others.
            let ready: Vec<usize> = (0..clients_ready.len())
                .filter(|&i| clients_ready[i])
                .rev()
                .collect();
            for i in ready {
                let client = self.reading.swap_remove(i);
                self.read(client);
            }
            if listener_ready.first() == Some(&true) {
                self.accept(self.shared.config.daemon_connections);
            }
            self.expire();
            self.spool_pending();
        }
    }

    /// How long to sleep: until the next deadline, at most `IDLE_WAIT`.
    fn wait(&self) -> Duration {
        let now = Instant::now();
        let next_ack = self.deadlines.front().map(|(at, _)| *at);
        let next_read = self.reading.iter().map(|r| r.deadline).min();
        [next_ack, next_read]
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now))
            .fold(IDLE_WAIT, Duration::min)
    }

    /// Takes the queued connections while fewer than `limit` are open.
    fn accept(&mut self, limit: usize) {
        let Some(listener) = &self.listener else {
            return;
        };
        let mut accepted = Vec::new();
        while self.reading.len() + self.waiting.len() + accepted.len() < limit {
            match listener.accept() {
                Ok((stream, _)) => accepted.push(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors, say: the connections wait in the backlog
                    // meanwhile, and the loop does not spin on a listener it cannot empty.
                    warn!(error = %e, open = self.reading.len() + self.waiting.len(),
                        "Accepting a connection failed; trying again in 100 ms.");
                    self.accept_after = Instant::now() + ACCEPT_PAUSE;
                    break;
                }
            }
        }
        for stream in accepted {
            if let Err(e) = stream.set_nonblocking(true) {
                warn!(error = %e, "Cannot make a connection non-blocking; closed.");
                continue;
            }
            // Cyrus writes its request right after connecting: try it at once.
            self.read(Reading {
                stream,
                buffer: Vec::new(),
                deadline: Instant::now()
                    + Duration::from_millis(self.shared.config.request_timeout_ms),
            });
        }
    }

    /// Reads what a connection has sent; takes its notification once the request is whole.
    fn read(&mut self, mut client: Reading) {
        let mut chunk = [0u8; 8192];
        loop {
            match client.stream.read(&mut chunk) {
                Ok(0) if client.buffer.is_empty() => return,
                Ok(0) => {
                    warn!(
                        bytes = client.buffer.len(),
                        "Connection closed mid-request; forwarded as it is."
                    );
                    return self.take(client.stream, client.buffer);
                }
                Ok(n) => {
                    client.buffer.extend_from_slice(&chunk[..n]);
                    // A short read emptied the socket: look at what came before asking again.
                    if n < chunk.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, bytes = client.buffer.len(), "Reading a request failed.");
                    if !client.buffer.is_empty() {
                        self.take(client.stream, client.buffer);
                    }
                    return;
                }
            }
        }
        match dlist::parse(&client.buffer) {
            Parsed::Notify { message } => self.take(client.stream, message),
            Parsed::Invalid(why) => {
                // Not lost: the raw request goes to the broker, where it is kept as a
                // failed job that an administrator can inspect.
                warn!(reason = %why, bytes = client.buffer.len(), "Request not understood; forwarded as it is.");
                self.take(client.stream, client.buffer);
            }
            Parsed::Incomplete if client.buffer.len() > MAX_REQUEST => {
                warn!(
                    bytes = client.buffer.len(),
                    "Request too long without an end; forwarded as it is."
                );
                self.take(client.stream, client.buffer);
            }
            Parsed::Incomplete => self.reading.push(client),
        }
    }

    /// One notification read whole: dropped, sent to the broker, or put aside for the spool.
    fn take(&mut self, stream: UnixStream, notification: Vec<u8>) {
        if let Some(reason) = self.rules.drops(&notification) {
            debug!(reason = %reason, "Notification dropped by a drop rule.");
            self.shared.metrics.dropped.inc();
            return answer(stream, b"OK NIL\r\n");
        }
        let id = submit::new_id();
        if !self.shared.spooling.load(Ordering::SeqCst) {
            if self.broker.send(&id, &notification).is_ok() {
                let timeout = Duration::from_millis(self.shared.config.ack_timeout_ms);
                self.deadlines
                    .push_back((Instant::now() + timeout, id.clone()));
                self.waiting.insert(
                    id,
                    Waiting {
                        stream,
                        notification,
                    },
                );
                return;
            }
            warn!(id = %id, "The queue to the broker is full; spooling.");
            self.rest_broker();
        }
        self.to_spool.push(ToSpool {
            id,
            notification,
            stream,
        });
    }

    /// Answers the connections whose notifications the broker acknowledged.
    fn take_acks(&mut self) {
        let mut acked = false;
        for id in self.broker.take_acks() {
            acked = true;
            if let Some(waiting) = self.waiting.remove(&id) {
                self.shared.metrics.acknowledged.inc();
                answer(waiting.stream, b"OK NIL\r\n");
            }
        }
        if acked {
            self.shared.acked.store(true, Ordering::Relaxed);
        }
    }

    /// Notes that the broker did not answer; new notifications go to the spool. True if a
    /// rest began.
    fn rest_broker(&self) -> bool {
        self.shared.spooling.store(true, Ordering::SeqCst);
        self.shared.broker_failed()
    }

    /// Spools what waited for its ACK too long; forwards what waited too long for its end.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut late = 0usize;
        while let Some((at, _)) = self.deadlines.front() {
            if *at > now {
                break;
            }
            let Some((_, id)) = self.deadlines.pop_front() else {
                break;
            };
            if let Some(waiting) = self.waiting.remove(&id) {
                late += 1;
                self.to_spool.push(ToSpool {
                    id,
                    notification: waiting.notification,
                    stream: waiting.stream,
                });
            }
        }
        if late > 0 {
            if self.rest_broker() {
                warn!(notifications = late, broker = %self.shared.config.broker_address,
                    "The broker did not acknowledge in time; spooling.");
            } else {
                debug!(
                    notifications = late,
                    "More notifications were not acknowledged in time; spooling."
                );
            }
        }
        if self.reading.iter().all(|r| r.deadline > now) {
            return;
        }
        let (expired, reading): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reading)
            .into_iter()
            .partition(|r| r.deadline <= now);
        self.reading = reading;
        for client in expired {
            if client.buffer.is_empty() {
                continue;
            }
            warn!(
                bytes = client.buffer.len(),
                "No whole request within the read timeout; forwarded as it is."
            );
            self.take(client.stream, client.buffer);
        }
    }

    /// Syncs this turn's spooled notifications together, then answers their connections.
    fn spool_pending(&mut self) {
        if self.to_spool.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.to_spool);
        let entries: Vec<(&str, &[u8])> = pending
            .iter()
            .map(|p| (p.id.as_str(), p.notification.as_slice()))
            .collect();
        let metrics = &self.shared.metrics;
        let count = pending.len() as u64;
        let result = {
            let mut spool = self.shared.spool();
            self.shared.spooling.store(true, Ordering::SeqCst);
            let result = spool.append(&entries);
            // Under the lock, before the forwarder can take these records off again.
            if result.is_ok() {
                metrics.spool_records.inc_by(count as i64);
            }
            self.shared.measure(&spool);
            result
        };
        let reply: &[u8] = match &result {
            Ok(()) => {
                metrics.spooled.inc_by(count);
                b"OK NIL\r\n"
            }
            Err(e) => {
                metrics.refused.inc_by(count);
                error!(notifications = pending.len(), error = %e,
                    "Notifications could not be made durable; Cyrus is told so.");
                b"NO NIL\r\n"
            }
        };
        for p in pending {
            answer(p.stream, reply);
        }
    }
}

/// Writes the short answer and closes the connection. A fresh unix socket's buffer always
/// has room for it; a connection that cannot take it is gone already.
fn answer(mut stream: UnixStream, reply: &[u8]) {
    if let Err(e) = stream.write_all(reply) {
        debug!(error = %e, "Cannot answer a connection; its peer has gone.");
    }
}

/// Empties the daemon's spool whenever the broker is not resting, and the other spools of
/// the folder that no exec dealer holds.
fn forward_loop(broker: &Broker, shared: &Shared) {
    let budget = Duration::from_millis(shared.config.ack_timeout_ms);
    let mut next_others = Instant::now();
    while !shared.shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(FORWARD_EVERY);
        if shared.acked.swap(false, Ordering::Relaxed) {
            shared.broker_answered();
        }
        if shared.rest().resting(now_ms()) {
            continue;
        }
        if shared.spooling.load(Ordering::SeqCst) {
            match forward::forward(&mut Own::new(shared), broker, &shared.config, Some(budget)) {
                Ok(outcome) => {
                    shared.metrics.forwarded.inc_by(outcome.forwarded as u64);
                    if outcome.result == Forwarded::Emptied && outcome.forwarded > 0 {
                        info!("The broker is back; the spool is empty again.");
                    }
                    if !shared.forwarded(outcome) {
                        continue;
                    }
                }
                Err(e) => {
                    error!(error = %e, "Forwarding the spool failed.");
                    continue;
                }
            }
        }
        if Instant::now() >= next_others {
            next_others = Instant::now() + OTHERS_EVERY;
            let own = Some(shared.own_dir.as_path());
            match forward::forward_others(
                shared.folder(),
                own,
                broker,
                &shared.config,
                Some(budget),
            ) {
                Ok(outcome) => {
                    shared.metrics.forwarded.inc_by(outcome.forwarded as u64);
                    shared.forwarded(outcome);
                }
                Err(e) => error!(error = %e, "Forwarding the exec dealers' spools failed."),
            }
        }
    }
}
