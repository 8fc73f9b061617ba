//! The syslog receivers: UDP and unix datagram sockets (one message per datagram, as RFC
//! 5426 and `/dev/log` send), TCP with RFC 6587 framing, and the batcher that gathers
//! their lines per receiver into batches of at most `max_batch_lines` lines and
//! `max_batch_bytes` bytes, handed over at the latest `batch_wait_ms` after their first
//! line. Syslog has no acknowledgement: lines still gathering when the process is killed
//! are lost, as with any syslog receiver; a clean stop hands them over first.

use std::{
    collections::BTreeMap,
    io::{ErrorKind, Read},
    net::{TcpListener, TcpStream, UdpSocket},
    os::unix::{fs::PermissionsExt, net::UnixDatagram},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use jiff::Timestamp;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::{
    batch::Lines,
    config::LogdConfig,
    framing::Decoder,
    handover::{self, Handover},
};

/// How often blocked receivers look at the shutdown flag.
const WAKE_EVERY: Duration = Duration::from_millis(200);

/// Lines waiting for the batcher; receivers wait (UDP: the kernel drops) beyond that.
const QUEUE_LINES: usize = 65_536;

/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_536;

/// One receiver, as the batches name it.
#[derive(Debug, Clone)]
struct Receiver_ {
    kind: &'static str,
    address: String,
}

/// A line from receiver number `receiver`, already cut to at most `max_line_bytes + 1`.
struct Received {
    receiver: usize,
    line: Vec<u8>,
}

/// Binds every configured receiver and starts them and their batcher; the threads end once
/// `shutdown` is set, the batcher after handing over what it gathered.
pub fn start(
    config: &LogdConfig,
    host: &str,
    handover: Handover,
    shutdown: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut receivers = Vec::new();
    let mut threads = Vec::new();
    let (lines, incoming) = crossbeam_channel::bounded(QUEUE_LINES);
    let max = config.max_line_bytes;
    for address in &config.udp {
        let socket =
            UdpSocket::bind(address).with_context(|| format!("cannot listen on UDP {address}"))?;
        socket.set_read_timeout(Some(WAKE_EVERY))?;
        let receiver = receivers.len();
        receivers.push(Receiver_ {
            kind: "udp",
            address: address.clone(),
        });
        info!(udp = %address, "Receiving syslog over UDP.");
        let (lines, shutdown) = (lines.clone(), shutdown.clone());
        threads.push(spawn("udp", move || {
            datagrams(|buf| socket.recv(buf), receiver, max, &lines, &shutdown)
        })?);
    }
    for path in &config.unix {
        let socket = bind_unix(path, config.unix_mode)?;
        let receiver = receivers.len();
        receivers.push(Receiver_ {
            kind: "unix",
            address: path.display().to_string(),
        });
        info!(unix = %path.display(), "Receiving syslog on a unix socket.");
        let (lines, shutdown) = (lines.clone(), shutdown.clone());
        threads.push(spawn("unix", move || {
            datagrams(|buf| socket.recv(buf), receiver, max, &lines, &shutdown)
        })?);
    }
    for address in &config.tcp {
        let listener = TcpListener::bind(address)
            .with_context(|| format!("cannot listen on TCP {address}"))?;
        listener.set_nonblocking(true)?;
        let receiver = receivers.len();
        receivers.push(Receiver_ {
            kind: "tcp",
            address: address.clone(),
        });
        info!(tcp = %address, "Receiving syslog over TCP.");
        let (lines, shutdown) = (lines.clone(), shutdown.clone());
        let max_connections = config.max_connections;
        threads.push(spawn("tcp", move || {
            accept(&listener, receiver, max, max_connections, &lines, &shutdown)
        })?);
    }
    drop(lines);
    if !receivers.is_empty() {
        let batcher = Batcher {
            receivers,
            host: host.to_string(),
            start: format!("{}\n{}", Timestamp::now(), std::process::id()),
            sequence: 0,
            max_line: max,
            max_lines: config.max_batch_lines,
            max_bytes: config.max_batch_bytes,
            wait: Duration::from_millis(config.batch_wait_ms),
            handover,
            shutdown: shutdown.clone(),
        };
        threads.push(spawn("batcher", move || batcher.run(&incoming))?);
    }
    Ok(threads)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .with_context(|| format!("cannot start the {name} thread"))
}

fn bind_unix(path: &Path, mode: u32) -> anyhow::Result<UnixDatagram> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e)
                .with_context(|| format!("cannot remove the old socket {}", path.display()));
        }
        _ => {}
    }
    let socket =
        UnixDatagram::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    socket.set_read_timeout(Some(WAKE_EVERY))?;
    Ok(socket)
}

/// Reads datagrams with `recv` until shutdown; each line of one is a message.
fn datagrams(
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    receiver: usize,
    max: usize,
    lines: &Sender<Received>,
    shutdown: &AtomicBool,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    while !shutdown.load(Ordering::SeqCst) {
        let length = match recv(&mut buffer) {
            Ok(length) => length,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                warn!(error = %e, "Cannot receive a datagram.");
                std::thread::sleep(WAKE_EVERY);
                continue;
            }
        };
        for line in buffer[..length].split(|&b| b == b'\n') {
            let line = line[..line.len().min(max + 1)].to_vec();
            if lines.send(Received { receiver, line }).is_err() {
                return;
            }
        }
    }
}

/// Accepts TCP connections until shutdown, at most `max_connections` at once.
fn accept(
    listener: &TcpListener,
    receiver: usize,
    max: usize,
    max_connections: usize,
    lines: &Sender<Received>,
    shutdown: &Arc<AtomicBool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !shutdown.load(Ordering::SeqCst) {
        if open.load(Ordering::SeqCst) >= max_connections {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                debug!(peer = %peer, "A syslog connection.");
                open.fetch_add(1, Ordering::SeqCst);
                let (lines, shutdown, open) = (lines.clone(), shutdown.clone(), open.clone());
                let started = spawn("tcp-connection", move || {
                    connection(stream, receiver, max, &lines, &shutdown);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = started {
                    warn!(error = %e, "Cannot serve a syslog connection.");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                warn!(error = %e, "Cannot accept a syslog connection.");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads one TCP connection's messages until it closes or shutdown.
fn connection(
    mut stream: TcpStream,
    receiver: usize,
    max: usize,
    lines: &Sender<Received>,
    shutdown: &AtomicBool,
) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(WAKE_EVERY)).is_err()
    {
        return;
    }
    let mut decoder = Decoder::new(max);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut messages = Vec::new();
    loop {
        let closed = match stream.read(&mut buffer) {
            Ok(0) => true,
            Ok(length) => {
                decoder.feed(&buffer[..length], &mut messages);
                false
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                shutdown.load(Ordering::SeqCst)
            }
            Err(e) => {
                debug!(error = %e, "A syslog connection failed.");
                true
            }
        };
        if closed {
            decoder.finish(&mut messages);
        }
        for line in messages.drain(..) {
            if lines.send(Received { receiver, line }).is_err() {
                return;
            }
        }
        if closed {
            return;
        }
    }
}

/// Gathers received lines into batches, per receiver.
struct Batcher {
    receivers: Vec<Receiver_>,
    host: String,
    /// This process's start: with the sequence number, what sets its batch ids apart.
    start: String,
    sequence: u64,
    max_line: usize,
    max_lines: usize,
    max_bytes: usize,
    wait: Duration,
    handover: Handover,
    shutdown: Arc<AtomicBool>,
}

impl Batcher {
    fn run(mut self, incoming: &Receiver<Received>) {
        let mut gathering: BTreeMap<usize, (Instant, Lines)> = BTreeMap::new();
        loop {
            let due = gathering
                .values()
                .map(|(first, _)| *first + self.wait)
                .min();
            let timeout = due.map_or(WAKE_EVERY, |due| {
                due.saturating_duration_since(Instant::now())
            });
            match incoming.recv_timeout(timeout) {
                Ok(received) => {
                    let receiver = received.receiver;
                    let entry = gathering
                        .entry(receiver)
                        .or_insert_with(|| (Instant::now(), Lines::default()));
                    if entry.1.bytes + received.line.len().min(self.max_line) > self.max_bytes {
                        let (_, full) =
                            std::mem::replace(entry, (Instant::now(), Lines::default()));
                        self.hand(receiver, full);
                    }
                    entry.1.push(&received.line, self.max_line);
                    if entry.1.lines.len() >= self.max_lines {
                        let (_, full) =
                            std::mem::replace(entry, (Instant::now(), Lines::default()));
                        self.hand(receiver, full);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            let ready: Vec<usize> = gathering
                .iter()
                .filter(|(_, (first, _))| *first + self.wait <= now)
                .map(|(receiver, _)| *receiver)
                .collect();
            for receiver in ready {
                if let Some((_, lines)) = gathering.remove(&receiver) {
                    self.hand(receiver, lines);
                }
            }
        }
        for (receiver, (_, lines)) in std::mem::take(&mut gathering) {
            self.hand(receiver, lines);
        }
    }

    fn hand(&mut self, receiver: usize, lines: Lines) {
        if lines.is_empty() {
            return;
        }
        self.sequence += 1;
        let Receiver_ { kind, address } = &self.receivers[receiver];
        let identity = format!(
            "{kind}\n{}\n{address}\n{}\n{}",
            self.host, self.start, self.sequence
        );
        let source = json!({"kind": kind, "address": address, "sequence": self.sequence});
        let count = lines.lines.len();
        let batch = lines.into_batch(&self.host, source, &identity, Timestamp::now());
        if handover::hand_until_done(&self.handover, kind, batch, &self.shutdown) {
            debug!(receiver = %address, lines = count, "Received lines handed over.");
        } else {
            warn!(receiver = %address, lines = count, "Received lines not handed over: stopping.");
        }
    }
}
