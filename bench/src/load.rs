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
    n: u64,
    stream: UnixStream,
    reply: Vec<u8>,
}

/// What to do when the daemon refuses a connection, drops it, or answers something else.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the run with the error: the daemon is expected to answer every request.
    Stop,
    /// Count that notification as not accepted and go on, as Cyrus does (it logs the
    /// failure and does not send the notification again).
    Count,
}

/// Sends notifications `0..total` (made by `notification`) with at most `connections` open
/// at once; notification `n` is not sent before `due(n)`. Returns when every one is answered,
/// with `accepted[n]` true for each one the daemon answered `OK NIL`.
pub fn drive(
    socket: &Path,
    total: u64,
    connections: usize,
    due: impl Fn(u64) -> Instant,
    notification: impl Fn(u64) -> String,
    on_failure: OnFailure,
) -> anyhow::Result<Vec<bool>> {
    let mut accepted = vec![false; total as usize];
    let mut open: Vec<Open> = Vec::with_capacity(connections);
    let mut next = 0u64;
    let mut answered = 0u64;
    while answered < total {
        let now = Instant::now();
        while open.len() < connections && next < total && due(next) <= now {
            let n = next;
            next += 1;
            let sent = UnixStream::connect(socket)
                .and_then(|mut stream| {
                    stream.write_all(&dlist_request(&notification(n)))?;
                    stream.set_nonblocking(true)?;
                    Ok(stream)
                })
                .with_context(|| format!("sending to {}", socket.display()));
            match sent {
                Ok(stream) => open.push(Open {
                    n,
                    stream,
                    reply: Vec::new(),
                }),
                Err(e) if on_failure == OnFailure::Stop => return Err(e),
                Err(_) => answered += 1,
            }
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
            if on_failure == OnFailure::Stop {
                bail!("the dealer daemon answered nothing for {ANSWER_WAIT:?}");
            }
            // Nothing came for the whole wait: every open request counts as not accepted.
            answered += open.len() as u64;
            open.clear();
        }
        for i in (0..open.len()).rev().filter(|&i| readable[i]) {
            match read_reply(&mut open[i]) {
                Ok(false) => continue,
                Ok(true) => accepted[open[i].n as usize] = true,
                Err(e) if on_failure == OnFailure::Stop => return Err(e),
                Err(_) => {}
            }
            open.swap_remove(i);
            answered += 1;
        }
    }
    Ok(accepted)
}

/// Reads what the daemon answered; true once the whole `OK NIL` is in.
fn read_reply(open: &mut Open) -> anyhow::Result<bool> {
    let mut chunk = [0u8; 64];
    loop {
        match open.stream.read(&mut chunk) {
            Ok(0) if open.reply.is_empty() => bail!("the dealer closed the connection unanswered"),
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
