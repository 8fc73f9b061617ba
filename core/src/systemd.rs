//! systemd's service notifications (sd_notify(3)) for every daemon: `READY=1` once it serves,
//! `WATCHDOG=1` from its main loop at half of `WATCHDOG_USEC`, `STOPPING=1` and `STATUS=`
//! lines. Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.
//!
//! The protocol is a datagram to a unix socket, which std sends itself: the `sd-notify` crate
//! (0.5) connects to the variable's value as a path, and so misses the abstract sockets
//! (`@name`) that a service manager in a container or a user session hands out.

use std::{
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixDatagram},
    },
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// Where the service manager listens, and how often it wants to hear from the main loop.
struct Manager {
    socket: UnixDatagram,
    address: SocketAddr,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    ping_every: Option<Duration>,
    /// When `WATCHDOG=1` was last sent.
    last_ping: Mutex<Instant>,
}

/// The service manager of this process, read from the environment once.
fn manager() -> Option<&'static Manager> {
    static MANAGER: OnceLock<Option<Manager>> = OnceLock::new();
    MANAGER
        .get_or_init(|| {
            let target = std::env::var_os("NOTIFY_SOCKET")?;
            let target = target.to_str()?;
            let address = match target.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
                None => SocketAddr::from_pathname(target),
            };
            let address = address
                .inspect_err(|e| {
                    tracing::warn!(socket = target, error = %e,
                    "NOTIFY_SOCKET is not a unix socket address; systemd is not told.")
                })
                .ok()?;
            let socket = UnixDatagram::unbound()
                .inspect_err(|e| {
                    tracing::warn!(error = %e,
                    "Cannot make the socket for systemd's notifications.")
                })
                .ok()?;
            Some(Manager {
                socket,
                address,
                ping_every: watchdog_interval().map(|interval| interval / 2),
                last_ping: Mutex::new(Instant::now()),
            })
        })
        .as_ref()
}

/// `WATCHDOG_USEC`, when it is meant for this process (`WATCHDOG_PID` unset or ours).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = match std::env::var("WATCHDOG_PID") {
        Ok(pid) => pid.parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    (for_us && usec > 0).then(|| Duration::from_micros(usec))
}

/// Sends one notification (newline-separated `KEY=value` lines). A manager that cannot be
/// reached is logged, never an error of the daemon: it keeps serving.
fn send(manager: &Manager, message: &str) {
    if let Err(e) = manager
        .socket
        .send_to_addr(message.as_bytes(), &manager.address)
    {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
}

/// Tells systemd the daemon serves (its sockets bound, its store open, its plugins loaded),
/// with `status` as the line `systemctl status` shows.
pub fn ready(status: &str) {
    if let Some(manager) = manager() {
        send(manager, &format!("READY=1\nSTATUS={status}\n"));
        *manager.last_ping.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// Called on every turn of the daemon's main loop: sends `WATCHDOG=1` when half of
/// `WATCHDOG_USEC` has passed since the last one, so that a loop that hangs stops the pings
/// and systemd restarts the daemon. The loop must turn at least that often.
pub fn watchdog() {
    let Some(manager) = manager() else { return };
    let Some(every) = manager.ping_every else {
        return;
    };
    let mut last = manager.last_ping.lock().unwrap_or_else(|e| e.into_inner());
    if last.elapsed() >= every {
        send(manager, "WATCHDOG=1\n");
        *last = Instant::now();
    }
}

/// Tells systemd the daemon is shutting down.
pub fn stopping() {
    if let Some(manager) = manager() {
        send(manager, "STOPPING=1\nSTATUS=stopping\n");
    }
}
