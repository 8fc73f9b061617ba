//! Every daemon speaks systemd's notification protocol when started with `NOTIFY_SOCKET`, as a
//! `Type=notify` unit with `WatchdogSec=` starts it: `READY=1` only once it serves, then
//! `WATCHDOG=1` from its main loop for as long as the loop turns (not while the process is
//! stopped), and `STOPPING=1` on SIGTERM.

use std::{
    net::TcpStream,
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixDatagram, UnixStream},
    },
    process::Command,
    time::Duration,
};

use bonnie_tests::{
    cluster::Cluster,
    process::{self, ChildGuard, HANG_GUARD},
};

/// The watchdog interval the daemons are given: they ping every 100 ms.
const WATCHDOG_USEC: &str = "200000";

/// The service manager's end: a datagram socket the daemon is pointed to.
struct Manager {
    socket: UnixDatagram,
    /// The value of `NOTIFY_SOCKET`.
    address: String,
    _dir: tempfile::TempDir,
}

impl Manager {
    /// A socket at a path, as systemd's own `/run/systemd/notify`.
    fn at_path() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
        Self::with(socket, path.to_string_lossy().into_owned(), dir)
    }

    /// An abstract socket (`@name`), as a service manager in a container hands out.
    fn abstract_name() -> Self {
        let name = format!("bonnie-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract name");
        let socket = UnixDatagram::bind_addr(&address).expect("binding the abstract socket");
        Self::with(
            socket,
            format!("@{name}"),
            tempfile::tempdir().expect("a folder"),
        )
    }

    fn with(socket: UnixDatagram, address: String, dir: tempfile::TempDir) -> Self {
        socket
            .set_read_timeout(Some(HANG_GUARD))
            .expect("a read timeout");
        Self {
            socket,
            address,
            _dir: dir,
        }
    }

    /// Points `command` at this socket with the watchdog on.
    fn configure<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("NOTIFY_SOCKET", &self.address)
            .env("WATCHDOG_USEC", WATCHDOG_USEC)
            .env_remove("WATCHDOG_PID")
    }

    /// The next notification; fails the test if none comes.
    fn next(&self, waiting_for: &str) -> String {
        let mut buffer = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buffer)
            .unwrap_or_else(|e| panic!("no notification while waiting for {waiting_for}: {e}"));
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    /// Reads notifications until one has the line `line`.
    fn until(&self, line: &str) -> String {
        loop {
            let message = self.next(line);
            if message.lines().any(|l| l == line) {
                return message;
            }
        }
    }

    /// Throws away what is queued already.
    fn drain(&self) {
        self.socket.set_nonblocking(true).expect("non-blocking");
        let mut buffer = [0u8; 4096];
        while self.socket.recv(&mut buffer).is_ok() {}
        self.socket.set_nonblocking(false).expect("blocking");
    }

    /// Whether a notification comes within `wait`.
    fn arrives_within(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).expect("a timeout");
        let mut buffer = [0u8; 4096];
        let got = self
            .socket
            .recv(&mut buffer)
            .ok()
            .map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned());
        self.socket
            .set_read_timeout(Some(HANG_GUARD))
            .expect("a read timeout");
        got
    }
}

/// The process state letter of /proc/<pid>/stat (`T` once stopped).
fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    let after_name = stat.rsplit_once(") ").expect("a stat line").1;
    after_name.chars().next().expect("a state")
}

/// Starts `command` (already pointed at `manager`), checks that its first notification is
/// READY=1 and that `serves` holds at that moment, that WATCHDOG=1 keeps coming, stops while
/// the process is stopped and comes back when it continues, and that SIGTERM sends
/// STOPPING=1.
fn check_daemon(
    name: &str,
    manager: &Manager,
    command: &mut Command,
    serves: impl FnOnce() -> bool,
) {
    let daemon = ChildGuard::spawn(name, command);
    let first = manager.next("READY=1");
    assert!(
        first.lines().any(|l| l == "READY=1"),
        "{name}'s first notification is not READY=1: {first:?}"
    );
    assert!(
        first.lines().any(|l| l.starts_with("STATUS=")),
        "{name} says no STATUS with READY=1: {first:?}"
    );
    assert!(serves(), "{name} said READY=1 before it served");
    for _ in 0..3 {
        manager.until("WATCHDOG=1");
    }

    daemon.signal("STOP");
    process::wait_until("the daemon to stop", || state(daemon.pid()) == 'T');
    manager.drain();
    // Ten watchdog intervals without a ping: a hung loop would be restarted by now.
    let during_stop = manager.arrives_within(Duration::from_secs(2));
    assert_eq!(
        during_stop, None,
        "{name} sent a notification while stopped"
    );
    daemon.signal("CONT");
    manager.until("WATCHDOG=1");

    daemon.signal("TERM");
    manager.until("STOPPING=1");
    assert!(
        process::succeeded(&daemon.wait().status),
        "{name} did not stop cleanly"
    );
}

#[test]
fn broker_is_ready_once_it_answers_status_and_pings_an_abstract_socket() {
    let cluster = Cluster::new(&[], "");
    let manager = Manager::abstract_name();
    let mut command = cluster.command("bonnie-broker", &[]);
    check_daemon(
        "bonnie-broker",
        &manager,
        manager.configure(&mut command),
        || {
            let status = cluster.bonnie(&["status", "--json", "--timeout", "1"]);
            status.status.success()
        },
    );
}

#[test]
fn dealer_daemon_is_ready_once_its_socket_takes_connections() {
    let cluster = Cluster::new(&[], "");
    let manager = Manager::at_path();
    let mut command = cluster.command("bonnie-dealer", &["--daemon"]);
    check_daemon(
        "bonnie-dealer --daemon",
        &manager,
        manager.configure(&mut command),
        || UnixStream::connect(cluster.dealer_socket()).is_ok(),
    );
}

#[test]
fn collector_is_ready_once_its_threads_run() {
    check_ready_once_logged("bonnie-collector", &["Collector running."]);
}

#[test]
fn worker_is_ready_once_its_plugins_are_loaded_and_started() {
    check_ready_once_logged("bonnie-worker", &["Plugin loaded.", "Worker running."]);
}

/// [`check_daemon`] for a daemon of a broker's that serves nothing itself: at READY=1 its
/// log must have every one of `lines` (it logs them once it is set up).
fn check_ready_once_logged(binary: &str, lines: &[&str]) {
    let cluster = Cluster::new(&[], "");
    let _broker = cluster.start_broker();
    let manager = Manager::at_path();
    let log = cluster
        .path()
        .join(format!("{binary}.log"))
        .to_string_lossy()
        .into_owned();
    let mut command = cluster.command(binary, &["--log-file", &log]);
    check_daemon(binary, &manager, manager.configure(&mut command), || {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        lines.iter().all(|line| logged.contains(line))
    });
}

#[test]
fn api_is_ready_once_it_listens() {
    let cluster = Cluster::new(&[], "");
    let port = cluster.configure_api(&[]);
    cluster.ensure_broker();
    let manager = Manager::at_path();
    let mut command = cluster.command("bonnie-api", &[]);
    check_daemon(
        "bonnie-api",
        &manager,
        manager.configure(&mut command),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}
