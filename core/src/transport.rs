//! The one module that talks ZeroMQ (the `zmq` crate, libzmq 4.3 vendored; see
//! docs/decisions.md): sockets set up the way bonnie uses them, multipart send and receive,
//! and polling. Nothing else in bonnie names the `zmq` crate.

use std::time::Duration;

pub use zmq::Error;

/// A ZeroMQ context; one per process.
pub type Context = zmq::Context;

/// A ZeroMQ socket.
pub type Socket = zmq::Socket;

/// A new context.
pub fn context() -> Context {
    zmq::Context::new()
}

/// A ROUTER bound to `endpoint`: unroutable sends fail instead of vanishing, a reconnecting
/// peer with the same identity takes over its old connection, and no message larger than
/// `max_message_bytes` is accepted.
pub fn router(ctx: &Context, endpoint: &str, max_message_bytes: i64) -> Result<Socket, Error> {
    let socket = ctx.socket(zmq::ROUTER)?;
    socket.set_linger(0)?;
    socket.set_router_mandatory(true)?;
    socket.set_router_handover(true)?;
    socket.set_sndhwm(100_000)?;
    socket.set_rcvhwm(100_000)?;
    socket.set_maxmsgsize(max_message_bytes)?;
    socket.bind(endpoint)?;
    Ok(socket)
}

/// A DEALER with `identity` connected to `endpoint`. `linger` is how long unsent messages
/// are kept when the socket closes.
pub fn dealer(
    ctx: &Context,
    endpoint: &str,
    identity: &[u8],
    linger: Duration,
) -> Result<Socket, Error> {
    let socket = ctx.socket(zmq::DEALER)?;
    socket.set_identity(identity)?;
    socket.set_linger(linger.as_millis().min(i32::MAX as u128) as i32)?;
    socket.set_sndhwm(100_000)?;
    socket.set_rcvhwm(100_000)?;
    socket.set_reconnect_ivl(100)?;
    socket.set_reconnect_ivl_max(1000)?;
    socket.connect(endpoint)?;
    Ok(socket)
}

/// A PUSH/PULL pair over `inproc://`, for waking a socket thread from other threads.
pub fn inproc_pair(ctx: &Context, name: &str) -> Result<(Socket, Socket), Error> {
    let pull = ctx.socket(zmq::PULL)?;
    pull.bind(&format!("inproc://{name}"))?;
    let push = ctx.socket(zmq::PUSH)?;
    push.set_linger(0)?;
    push.connect(&format!("inproc://{name}"))?;
    Ok((push, pull))
}

/// Sends a multipart message; `Err(EAGAIN)` if it would block, `Err(EHOSTUNREACH)` if a
/// ROUTER does not know the peer.
pub fn send(socket: &Socket, frames: &[Vec<u8>]) -> Result<(), Error> {
    socket.send_multipart(frames, zmq::DONTWAIT)
}

/// Sends a multipart message through a ROUTER to the peer with `identity`.
pub fn send_to(socket: &Socket, identity: &[u8], frames: &[Vec<u8>]) -> Result<(), Error> {
    socket.send(identity, zmq::SNDMORE | zmq::DONTWAIT)?;
    socket.send_multipart(frames, zmq::DONTWAIT)
}

/// Receives one multipart message if one is waiting.
pub fn try_recv(socket: &Socket) -> Result<Option<Vec<Vec<u8>>>, Error> {
    match socket.recv_multipart(zmq::DONTWAIT) {
        Ok(frames) => Ok(Some(frames)),
        Err(zmq::Error::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits until one of `sockets` is readable or `timeout` passes; which ones are readable.
pub fn poll(sockets: &[&Socket], timeout: Duration) -> Result<Vec<bool>, Error> {
    poll_with_fds(sockets, &[], timeout)
}

/// Waits until one of `sockets` or one of the plain file descriptors `fds` is readable (or
/// closed by its peer), or `timeout` passes; which ones are, sockets first.
pub fn poll_with_fds(
    sockets: &[&Socket],
    fds: &[std::os::fd::RawFd],
    timeout: Duration,
) -> Result<Vec<bool>, Error> {
    let mut items: Vec<zmq::PollItem<'_>> = sockets
        .iter()
        .map(|s| s.as_poll_item(zmq::POLLIN))
        .chain(
            fds.iter()
                .map(|&fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)),
        )
        .collect();
    zmq::poll(&mut items, whole_ms(timeout))?;
    Ok(items
        .iter()
        .map(|item| !(item.get_revents() & (zmq::POLLIN | zmq::POLLERR)).is_empty())
        .collect())
}

/// A poll timeout in whole milliseconds, rounded up: a wait shorter than a millisecond must
/// not turn into a busy loop.
fn whole_ms(timeout: Duration) -> i64 {
    timeout.as_micros().div_ceil(1000).min(i64::MAX as u128) as i64
}

/// True for the error a ROUTER gives when the peer is gone.
pub fn is_unreachable(e: &Error) -> bool {
    matches!(e, zmq::Error::EHOSTUNREACH)
}
