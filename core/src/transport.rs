//! The one module that talks ZeroMQ (the `zmq` crate, libzmq 4.3 vendored; see
//! docs/decisions.md): sockets set up the way bonnie uses them, multipart send and receive,
//! and polling, CURVE keys and the ZAP handler that lets only listed keys in. Nothing else in
//! bonnie names the `zmq` crate.

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

/// True if this libzmq was built with CURVE (bonnie's build links libsodium for it).
pub fn has_curve() -> bool {
    zmq::has("curve") == Some(true)
}

/// A CURVE key pair, both halves in Z85 (40 characters each).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public key: it may be shown and copied anywhere.
    pub public: String,
    /// The secret key: it never leaves its host.
    pub secret: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A new CURVE key pair from libsodium's random source.
pub fn generate_keypair() -> Result<KeyPair, Error> {
    let pair = zmq::CurveKeyPair::new()?;
    let encode = |key: &[u8]| zmq::z85_encode(key).map_err(|_| Error::EINVAL);
    Ok(KeyPair {
        public: encode(&pair.public_key)?,
        secret: encode(&pair.secret_key)?,
    })
}

/// True if `key` is a CURVE key in Z85: 40 characters that decode to 32 bytes.
pub fn is_z85_key(key: &str) -> bool {
    key.len() == 40 && zmq::z85_decode(key).is_ok_and(|bytes| bytes.len() == 32)
}

/// How a ROUTER authenticates its peers.
#[derive(Debug, Clone)]
pub enum Auth<'a> {
    /// No authentication: for loopback and `ipc://` only.
    Null,
    /// CURVE with the broker's secret key; every connection is put to the ZAP handler under
    /// `domain`, which says which allow-list applies.
    Curve {
        /// The broker's secret key (Z85).
        secret: &'a str,
        /// The ZAP domain of this router.
        domain: &'a str,
    },
}

/// A ROUTER bound to `endpoint`: unroutable sends fail instead of vanishing, and no message
/// larger than `max_message_bytes` is accepted. Without authentication a reconnecting peer
/// with the same identity takes over its old connection; with CURVE an identity in use is
/// never handed over (a peer's reconnection after a dropped connection comes under a new
/// connection once the old one is gone, and bonnie's peers take a new identity when they
/// make a socket anew), so no one takes another's place.
pub fn router(ctx: &Context, endpoint: &str, max_message_bytes: i64) -> Result<Socket, Error> {
    router_with(ctx, endpoint, max_message_bytes, &Auth::Null)
}

/// [`router`] with the given authentication.
pub fn router_with(
    ctx: &Context,
    endpoint: &str,
    max_message_bytes: i64,
    auth: &Auth<'_>,
) -> Result<Socket, Error> {
    let socket = ctx.socket(zmq::ROUTER)?;
    socket.set_linger(0)?;
    socket.set_router_mandatory(true)?;
    socket.set_sndhwm(100_000)?;
    socket.set_rcvhwm(100_000)?;
    socket.set_maxmsgsize(max_message_bytes)?;
    match auth {
        Auth::Null => socket.set_router_handover(true)?,
        Auth::Curve { secret, domain } => {
            socket.set_router_handover(false)?;
            socket.set_curve_server(true)?;
            socket.set_curve_secretkey(secret.as_bytes())?;
            socket.set_zap_domain(domain)?;
        }
    }
    socket.bind(endpoint)?;
    Ok(socket)
}

/// A PAIR socket that hears of every failed handshake on `socket` (a peer without CURVE, a
/// wrong server key, a key the ZAP handler refused); read it with [`handshake_failures`].
pub fn handshake_monitor(ctx: &Context, socket: &Socket, name: &str) -> Result<Socket, Error> {
    let endpoint = format!("inproc://bonnie-monitor-{name}");
    let events = zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
        | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32;
    socket.monitor(&endpoint, events)?;
    let pair = ctx.socket(zmq::PAIR)?;
    pair.set_linger(0)?;
    pair.connect(&endpoint)?;
    Ok(pair)
}

/// The handshakes that failed since the last call, each as a short description.
pub fn handshake_failures(monitor: &Socket) -> Result<Vec<String>, Error> {
    let mut failures = Vec::new();
    while let Some(frames) = try_recv(monitor)? {
        let Some(head) = frames.first().filter(|f| f.len() >= 6) else {
            continue;
        };
        let event = zmq::SocketEvent::from_raw(u16::from_le_bytes([head[0], head[1]]));
        let value = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
        failures.push(match event {
            zmq::SocketEvent::HANDSHAKE_FAILED_AUTH => format!("authentication refused ({value})"),
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL => {
                format!("protocol error, such as a peer without CURVE (0x{value:x})")
            }
            _ => format!("handshake failed ({value})"),
        });
    }
    Ok(failures)
}

/// Where libzmq sends its ZAP requests (RFC 27), in every context.
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The ZAP handler's socket. Bind it before any CURVE router: a CURVE router whose context
/// has no handler lets every client in that knows the server's public key.
pub fn zap_handler(ctx: &Context) -> Result<Socket, Error> {
    let socket = ctx.socket(zmq::REP)?;
    socket.set_linger(0)?;
    socket.bind(ZAP_ENDPOINT)?;
    Ok(socket)
}

/// A connection waiting for the ZAP handler's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapRequest {
    /// The request's id, repeated in the reply.
    pub request_id: Vec<u8>,
    /// The router's ZAP domain.
    pub domain: String,
    /// The peer's address (IP), for the log.
    pub address: String,
    /// The mechanism: `CURVE`, or `NULL` on a router without CURVE.
    pub mechanism: String,
    /// The client's public key in Z85, for CURVE.
    pub public_key: Option<String>,
}

/// The next ZAP request, if one is waiting.
pub fn zap_next(socket: &Socket) -> Result<Option<ZapRequest>, Error> {
    let Some(frames) = try_recv(socket)? else {
        return Ok(None);
    };
    let text = |n: usize| {
        frames
            .get(n)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default()
    };
    let mechanism = text(5);
    let public_key = match (mechanism.as_str(), frames.get(6)) {
        ("CURVE", Some(key)) if key.len() == 32 => zmq::z85_encode(key).ok(),
        _ => None,
    };
    Ok(Some(ZapRequest {
        request_id: frames.get(1).cloned().unwrap_or_default(),
        domain: text(2),
        address: text(3),
        mechanism,
        public_key,
    }))
}

/// Answers a ZAP request: `Some(user_id)` lets the connection in, and every message from it
/// then carries `user_id` (see [`try_recv_from`]); `None` refuses it.
pub fn zap_reply(
    socket: &Socket,
    request: &ZapRequest,
    user_id: Option<&str>,
) -> Result<(), Error> {
    let (code, text) = match user_id {
        Some(_) => ("200", "OK"),
        None => ("400", "key not allowed here"),
    };
    let frames: Vec<Vec<u8>> = vec![
        b"1.0".to_vec(),
        request.request_id.clone(),
        code.as_bytes().to_vec(),
        text.as_bytes().to_vec(),
        user_id.unwrap_or("").as_bytes().to_vec(),
        Vec::new(),
    ];
    socket.send_multipart(frames, zmq::DONTWAIT)
}

/// A DEALER with `identity` connected to `endpoint`. `linger` is how long unsent messages
/// are kept when the socket closes.
pub fn dealer(
    ctx: &Context,
    endpoint: &str,
    identity: &[u8],
    linger: Duration,
) -> Result<Socket, Error> {
    dealer_with(ctx, endpoint, identity, linger, None)
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

/// A DEALER's CURVE keys: its own pair and the server's public key.
#[derive(Debug, Clone)]
pub struct ClientKeys {
    /// This peer's key pair.
    pub pair: KeyPair,
    /// The broker's public key (Z85).
    pub server_public: String,
}

/// [`dealer`] with CURVE when `keys` is given.
pub fn dealer_with(
    ctx: &Context,
    endpoint: &str,
    identity: &[u8],
    linger: Duration,
    keys: Option<&ClientKeys>,
) -> Result<Socket, Error> {
    let socket = ctx.socket(zmq::DEALER)?;
    if let Some(keys) = keys {
        socket.set_curve_serverkey(keys.server_public.as_bytes())?;
        socket.set_curve_publickey(keys.pair.public.as_bytes())?;
        socket.set_curve_secretkey(keys.pair.secret.as_bytes())?;
    }
    socket.set_identity(identity)?;
    socket.set_linger(linger.as_millis().min(i32::MAX as u128) as i32)?;
    socket.set_sndhwm(100_000)?;
    socket.set_rcvhwm(100_000)?;
    socket.set_reconnect_ivl(100)?;
    socket.set_reconnect_ivl_max(1000)?;
    socket.connect(endpoint)?;
    Ok(socket)
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

/// Receives one multipart message from a ROUTER if one is waiting, with the user id the ZAP
/// handler gave its connection (`None` on a router without authentication).
#[allow(clippy::type_complexity)]
pub fn try_recv_from(socket: &Socket) -> Result<Option<(Vec<Vec<u8>>, Option<String>)>, Error> {
    let mut frames = Vec::new();
    let mut user = None;
    loop {
        let mut message = match socket.recv_msg(zmq::DONTWAIT) {
            Ok(message) => message,
            Err(zmq::Error::EAGAIN) if frames.is_empty() => return Ok(None),
            Err(e) => return Err(e),
        };
        // The identity frame the ROUTER makes carries no metadata; the peer's frames do.
        if user.is_none() && !frames.is_empty() {
            user = message
                .gets("User-Id")
                .filter(|u| !u.is_empty())
                .map(str::to_string);
        }
        let more = message.get_more();
        frames.push(message.to_vec());
        if !more {
            return Ok(Some((frames, user)));
        }
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
