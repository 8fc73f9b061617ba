//! Cyrus-style load on the dealer daemon's socket: a connection per notification, each
//! carrying one dlist `NOTIFY` and waiting for `OK NIL`, with many open at once. One thread
//! drives them all with non-blocking sockets, as a load generator such as wrk does, so that
//! the load costs the two cores as little as possible and the figures are bonnie's.

use std::{
    io::{ErrorKind, Read, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_core::transport;
use bonnie_tests::cluster::dlist_request;

/// Longest wait for an answer when every connection is open.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// One open request.
struct Open {
    stream: UnixStream,
    reply: Vec<u8>,
}

/// Sends notifications `0..total` (made by `notification`) with at most `connections` open
/// at once; notification `n` is not sent before `due(n)`. Returns when every one is answered.
pub fn drive(
    socket: &Path,
    total: u64,
    connections: usize,
    due: impl Fn(u64) -> Instant,
    notification: impl Fn(u64) -> String,
) -> anyhow::Result<()> {
    let mut open: Vec<Open> = Vec::with_capacity(connections);
    let mut next = 0u64;
    let mut answered = 0u64;
    while answered < total {
        let now = Instant::now();
        while open.len() < connections && next < total && due(next) <= now {
            let mut stream = UnixStream::connect(socket)
                .with_context(|| format!("connecting to {}", socket.display()))?;
            stream.write_all(&dlist_request(&notification(next)))?;
            stream.set_nonblocking(true)?;
            open.push(Open {
                stream,
                reply: Vec::new(),
            });
            next += 1;
        }
        let sending = open.len() < connections && next < total;
        let wait = if sending {
            due(next).saturating_duration_since(Instant::now())
        } else {
            ANSWER_WAIT
        };
        let fds: Vec<_> = open.iter().map(|o| o.stream.as_raw_fd()).collect();
        let readable = transport::poll_with_fds(&[], &fds, wait)?;
        if !sending && !readable.contains(&true) {
            bail!("the dealer daemon answered nothing for {ANSWER_WAIT:?}");
        }
        for i in (0..open.len()).rev().filter(|&i| readable[i]) {
            if read_reply(&mut open[i])? {
                open.swap_remove(i);
                answered += 1;
            }
        }
    }
    Ok(())
}

/// Reads what the daemon answered; true once the whole `OK NIL` is in.
fn read_reply(open: &mut Open) -> anyhow::Result<bool> {
    let mut chunk = [0u8; 64];
    loop {
        match open.stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => open.reply.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the daemon's answer"),
        }
        if open.reply.ends_with(b"\r\n") {
            break;
        }
    }
    if open.reply != b"OK NIL\r\n" {
        bail!(
            "the dealer answered {:?}",
            String::from_utf8_lossy(&open.reply)
        );
    }
    Ok(true)
}
