//! Daemon mode, for Cyrus's `notifysocket: dlist:<path>`: every imapd or lmtpd opens a
//! connection per event, sends one `NOTIFY` request and waits for `OK NIL`. The answer is
//! given only once the notification is acknowledged by the broker or synced to the spool.
//! A pool of threads serves connections, each with its own connection to the broker; a
//! forwarder thread empties the spool, in order, whenever the broker answers again.

use std::{
    io::{Read, Write},
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{config::DealerConfig, protocol};
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

/// How often the forwarder looks at the spool.
const FORWARD_EVERY: Duration = Duration::from_millis(50);

/// What the threads share.
struct Shared {
    config: DealerConfig,
    rules: DropRules,
    spool: Mutex<Spool>,
    /// New notifications go to the spool: it holds some (their order must be kept), or the
    /// broker did not answer lately.
    spooling: AtomicBool,
    shutdown: Arc<AtomicBool>,
}

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Syncs one notification to the spool; new ones follow it there until it is forwarded.
    fn spool_one(&self, id: &str, notification: &[u8]) -> std::io::Result<()> {
        let mut spool = self.spool();
        self.spooling.store(true, Ordering::SeqCst);
        spool.append(&[(id, notification)])
    }
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
    let spooling = !spool.is_empty()? || forward::broker_resting(&spool);
    let shared = Arc::new(Shared {
        config: config.clone(),
        rules: DropRules::new(config),
        spool: Mutex::new(spool),
        spooling: AtomicBool::new(spooling),
        shutdown: shutdown.clone(),
    });
    let context = submit::context();
    let host = config.host_name();
    info!(socket = %path.display(), broker = %config.broker_address, threads = config.daemon_threads,
        "Dealer daemon listening.");

    let mut threads = Vec::new();
    for n in 0..config.daemon_threads {
        let identity = protocol::dealer_connection_identity(&host, std::process::id(), n);
        let broker =
            Broker::connect_as(context, &config.broker_address, &identity).with_context(|| {
                format!(
                    "cannot set up the connection to the broker at {}",
                    config.broker_address
                )
            })?;
        let (listener, shared) = (listener.try_clone()?, shared.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("connection-{n}"))
                .spawn(move || accept_loop(&listener, &broker, &shared))
                .context("cannot start a connection thread")?,
        );
    }
    let identity =
        protocol::dealer_connection_identity(&host, std::process::id(), config.daemon_threads);
    let broker =
        Broker::connect_as(context, &config.broker_address, &identity).with_context(|| {
            format!(
                "cannot set up the connection to the broker at {}",
                config.broker_address
            )
        })?;
    let forwarder_shared = shared.clone();
    let forwarder = std::thread::Builder::new()
        .name("forwarder".to_string())
        .spawn(move || forward_loop(&broker, &forwarder_shared))
        .context("cannot start the forwarder thread")?;

    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    info!("Stopping: no new connections; the ones open finish.");
    // Each thread waiting in accept gets a connection that ends at once.
    for _ in 0..threads.len() {
        let _ = UnixStream::connect(path);
    }
    for thread in threads {
        let _ = thread.join();
    }
    let _ = std::fs::remove_file(path);
    forwarder
        .join()
        .map_err(|_| anyhow::anyhow!("the forwarder thread panicked"))?;
    Ok(())
}

fn accept_loop(listener: &UnixListener, broker: &Broker, shared: &Shared) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        match stream {
            Ok(stream) => serve(stream, broker, shared),
            Err(e) => {
                warn!(error = %e, "Accepting a connection failed.");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Reads one request; the notification it carries, or its raw bytes if it is not one.
fn read_request(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match dlist::parse(&buffer) {
            Parsed::Notify { message } => return Some(message),
            Parsed::Invalid(why) => {
                // Not lost: the raw request goes to the broker, where it is kept as a
                // failed job that an administrator can inspect.
                warn!(reason = %why, bytes = buffer.len(), "Request not understood; forwarded as it is.");
                return Some(buffer);
            }
            Parsed::Incomplete if buffer.len() > MAX_REQUEST => {
                warn!(
                    bytes = buffer.len(),
                    "Request too long without an end; forwarded as it is."
                );
                return Some(buffer);
            }
            Parsed::Incomplete => {}
        }
        match stream.read(&mut chunk) {
            Ok(0) if buffer.is_empty() => return None,
            Ok(0) => {
                warn!(
                    bytes = buffer.len(),
                    "Connection closed mid-request; forwarded as it is."
                );
                return Some(buffer);
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) => {
                warn!(error = %e, bytes = buffer.len(), "Reading a request failed.");
                return (!buffer.is_empty()).then_some(buffer);
            }
        }
    }
}

/// One connection: read the request, make the notification durable, answer.
fn serve(mut stream: UnixStream, broker: &Broker, shared: &Shared) {
    let Some(notification) = read_request(&mut stream) else {
        return;
    };
    if let Some(reason) = shared.rules.drops(&notification) {
        debug!(reason = %reason, "Notification dropped by a drop rule.");
        let _ = stream.write_all(b"OK NIL\r\n");
        return;
    }
    let id = submit::new_id();
    let timeout = Duration::from_millis(shared.config.ack_timeout_ms);
    if !shared.spooling.load(Ordering::SeqCst) {
        if broker.submit(&id, &notification, timeout) {
            let _ = stream.write_all(b"OK NIL\r\n");
            return;
        }
        warn!(id = %id, broker = %shared.config.broker_address, "The broker did not acknowledge in time; spooling.");
        forward::rest_broker(&shared.spool(), &shared.config);
    }
    match shared.spool_one(&id, &notification) {
        Ok(()) => {
            let _ = stream.write_all(b"OK NIL\r\n");
        }
        Err(e) => {
            error!(id = %id, error = %e, "A notification could not be made durable.");
            let _ = stream.write_all(b"NO NIL\r\n");
        }
    }
}

/// Empties the spool whenever the broker is not resting; moves side files in.
fn forward_loop(broker: &Broker, shared: &Shared) {
    let timeout = Duration::from_millis(shared.config.ack_timeout_ms);
    let mut next_sweep = Instant::now();
    while !shared.shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(FORWARD_EVERY);
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + Duration::from_millis(500);
            match shared.spool().sweep() {
                Ok(0) => {}
                Ok(_) => shared.spooling.store(true, Ordering::SeqCst),
                Err(e) => warn!(error = %e, "Cannot move side files into the spool."),
            }
        }
        if !shared.spooling.load(Ordering::SeqCst) {
            continue;
        }
        let mut spool = shared.spool();
        if forward::broker_resting(&spool) {
            continue;
        }
        match forward::forward(&mut spool, broker, &shared.config, Some(timeout)) {
            Ok(Forwarded::Emptied) => {
                // Still under the lock: no notification can be spooled between the last
                // forward and this.
                shared.spooling.store(false, Ordering::SeqCst);
                info!("The broker is back; the spool is empty again.");
            }
            Ok(_) => {}
            Err(e) => error!(error = %e, "Forwarding the spool failed."),
        }
    }
}
