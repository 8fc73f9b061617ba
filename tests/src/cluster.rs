//! A whole bonnie on loopback in a temporary folder: a broker, workers that take jobs from it
//! through the zmq-input plugin into one SQLite store, dealers in exec or daemon mode, and
//! the admin command line, each a real process on free ports.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;
use tempfile::TempDir;

use crate::{
    cyrus::{ADMIN, Cyrus},
    ldap::{SERVICE_DN, SERVICE_PASSWORD, Slapd},
    paths,
    process::{self, ChildGuard},
    worker::ARCHIVE_HANDLERS,
};

/// Ports below the kernel's ephemeral range (32768 and up on Linux), from which
/// [`free_port`] hands out ports.
const RESERVED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Lock files of the ports this test process holds, kept open until it exits.
static HELD_PORTS: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// A free TCP port on loopback, held by this test process until it exits.
///
/// The kernel's own choice (binding port 0) comes from its ephemeral range, which every
/// outgoing connection draws from too: with hundreds of tests at once, a connection to Cyrus
/// or the search server could take the port between this answer and the server's bind. So
/// the port comes from below that range, and a lock file shared by every test process keeps
/// two of them from choosing the same one.
pub fn free_port() -> u16 {
    let folder = std::env::temp_dir().join("bonnie-test-ports");
    std::fs::create_dir_all(&folder).expect("creating the port lock folder");
    let span = u32::from(RESERVED_PORTS.end - RESERVED_PORTS.start);
    let start = std::process::id().wrapping_mul(7919) % span;
    for offset in 0..span {
        let port = RESERVED_PORTS.start + ((start + offset) % span) as u16;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(folder.join(format!("{port}.lock")))
            .expect("opening a port lock file");
        if file.try_lock().is_err() || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        HELD_PORTS.lock().expect("the held ports").push(file);
        return port;
    }
    panic!("no free port in {RESERVED_PORTS:?}");
}

/// The folder, configuration and ports of one bonnie.
pub struct Cluster {
    /// The broker [`Cluster::run_api`] started because no test had (bonnie-api serves no call
    /// without a broker to keep its audit records); dropped before the folder.
    api_broker: std::sync::Mutex<Option<ChildGuard>>,
    /// Whether a broker was started for this cluster.
    broker_started: std::sync::atomic::AtomicBool,
    dir: TempDir,
}

impl Cluster {
    /// A cluster whose workers run the given workspace plugins besides zmq-input and
    /// sqlite-storage; `extra` is appended to the configuration (new tables only).
    pub fn new(plugins: &[&str], extra: &str) -> Self {
        Self::with_collector(plugins, "", extra)
    }

    /// A bonnie wired to this Cyrus and this directory: every archive handler and the
    /// `groupware` plugins (such as `bonnie-changelog`) with their defaults, the handlers asking
    /// the collector for everything, the collector reading Cyrus's spool, IMAP as the admin
    /// and LDAP; the collector's own admin logins are dropped by the dealer.
    pub fn for_cyrus(cyrus: &Cyrus, ldap: &Slapd, groupware: &[&str]) -> Self {
        // The passwords live in files only bonnie can read: the configuration itself stays
        // readable by user cyrus, who runs the exec dealer.
        let collector = format!(
            "imap_address = \"{}\"\nimap_admin = \"{ADMIN}\"\nimap_password_file = \"imap-password\"\npartitions = [\"{}\"]\n\n\
             [collector.ldap]\nurl = \"{}\"\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"ldap-password\"\n\
             base = \"ou=People,dc=example,dc=org\"\nunique_attribute = \"entryUUID\"\n",
            cyrus.imap_address(),
            cyrus.spool().display(),
            ldap.url
        );
        let collect =
            "collect = [\"FETCH\", \"HEADER\", \"GETMETADATA\", \"GETACL\", \"GETUSERDATA\"]\n";
        let tables: String = ARCHIVE_HANDLERS
            .iter()
            .map(|h| format!("[plugins.{}]\n{collect}\n", h.trim_start_matches("bonnie-")))
            .collect();
        let plugins: Vec<&str> = ARCHIVE_HANDLERS.iter().chain(groupware).copied().collect();
        let cluster = Self::with_collector(&plugins, &collector, &tables);
        cluster.write_secret("imap-password", "secret");
        cluster.write_secret("ldap-password", SERVICE_PASSWORD);
        cluster.add_dealer_keys(r#"drop_event_users = ["Login cyrus", "Logout cyrus"]"#);
        cluster
    }

    /// Like [`Cluster::new`], with `collector` added to the `[collector]` table (whose broker
    /// address and heartbeats are set already).
    pub fn with_collector(plugins: &[&str], collector_keys: &str, extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bonnie-cluster-")
            .tempdir()
            .expect("a temporary folder");
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("creating the plugin directory");
        for name in ["bonnie-zmq-input", "bonnie-sqlite-storage"]
            .iter()
            .chain(plugins)
        {
            let library = paths::plugin(name);
            std::fs::copy(
                &library,
                plugin_dir.join(library.file_name().expect("a file name")),
            )
            .expect("copying a plugin");
        }
        let [dealer, collector, worker, controller, admin] = [
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        ];
        let config = format!(
            r#"
[worker]
plugin_dir = "plugins"
threads = 2

[broker]
dealer_address = "tcp://127.0.0.1:{dealer}"
collector_address = "tcp://127.0.0.1:{collector}"
worker_address = "tcp://127.0.0.1:{worker}"
controller_address = "tcp://127.0.0.1:{controller}"
admin_address = "tcp://127.0.0.1:{admin}"
database = "var/broker.db"
heartbeat_ms = 200
heartbeat_liveness = 3
postpone_delay_s = 1

[collector]
broker_address = "tcp://127.0.0.1:{collector}"
heartbeat_ms = 200
heartbeat_liveness = 3
{collector_keys}

[dealer]
broker_address = "tcp://127.0.0.1:{dealer}"
spool_dir = "var/dealer-spool"
socket = "var/dealer.sock"
socket_mode = 0o666

[plugins.zmq-input]
worker_address = "tcp://127.0.0.1:{worker}"
controller_address = "tcp://127.0.0.1:{controller}"
heartbeat_ms = 200
heartbeat_liveness = 3
curve = false

# Loopback only, no CURVE (Cluster::enable_curve turns it on, with keys).
[curve]
enabled = false
keys_dir = "keys"

[plugins.sqlite-storage]
path = "var/bonnie.db"
{extra}
"#
        );
        std::fs::write(dir.path().join("bonnie.toml"), config).expect("writing the configuration");
        // Cyrus runs the exec dealer as user cyrus: it must read the configuration and write
        // the spool.
        std::fs::create_dir_all(dir.path().join("var/dealer-spool")).expect("creating the spool");
        let _ = std::process::Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .arg(dir.path().join("var"))
            .status();
        let _ = std::process::Command::new("chmod")
            .arg("644")
            .arg(dir.path().join("bonnie.toml"))
            .status();
        let _ = std::process::Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(dir.path().join("var/dealer-spool"))
            .status();
        Self {
            api_broker: std::sync::Mutex::new(None),
            broker_started: std::sync::atomic::AtomicBool::new(false),
            dir,
        }
    }

    /// Turns CURVE on (before the broker starts) with keys made by `bonnie keys generate`: the
    /// broker's, and one for each role on this host, the dealer's and the collector's for
    /// IMAP host `host` (which `[dealer] host` and `[collector] host` are set to).
    pub fn enable_curve(&self, host: &str) {
        let config = std::fs::read_to_string(self.config()).expect("reading the configuration");
        let config = config
            .replacen("curve = false\n", "curve = true\n", 1)
            .replacen("[curve]\nenabled = false\n", "[curve]\nenabled = true\n", 1);
        std::fs::write(self.config(), config).expect("writing the configuration");
        self.add_keys("dealer", &format!("host = {host:?}"));
        self.add_keys("collector", &format!("host = {host:?}"));
        for args in [
            &["keys", "generate", "broker"][..],
            &["keys", "generate", "admin", "ops"],
            &["keys", "generate", "dealer", host],
            &["keys", "generate", "worker", "worker1"],
            &["keys", "generate", "collector", host],
        ] {
            let output = self.bonnie(args);
            assert!(
                output.status.success(),
                "bonnie {args:?} failed:\n{}",
                process::describe(&output)
            );
        }
    }

    /// Writes a secret's file (mode 0600) into the cluster's folder.
    pub fn write_secret(&self, name: &str, secret: &str) {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.path().join(name))
            .expect("creating a secret's file");
        file.write_all(secret.as_bytes())
            .expect("writing a secret's file");
    }

    /// The cluster's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.path().join("bonnie.toml")
    }

    /// A workspace binary with `--config` of this cluster and `args`, its output discarded.
    pub fn command(&self, binary: &str, args: &[&str]) -> Command {
        let mut command = Command::new(paths::bin(binary));
        command
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("BONNIE_LOG")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn log_file(&self, name: &str) -> String {
        self.path()
            .join(format!("{name}.log"))
            .to_string_lossy()
            .into_owned()
    }

    /// Starts the broker and waits until it answers `bonnie status`.
    pub fn start_broker(&self) -> ChildGuard {
        self.broker_started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let log = self.log_file("broker");
        let mut broker = ChildGuard::spawn(
            "bonnie-broker",
            &mut self.command("bonnie-broker", &["--log-file", &log]),
        );
        process::wait_until("the broker to answer", || {
            assert!(
                broker.is_running(),
                "the broker exited; its log:\n{}",
                self.log("broker")
            );
            self.try_status().is_some()
        });
        broker
    }

    /// Starts a broker kept by the cluster, unless one was started for it already.
    pub fn ensure_broker(&self) {
        if !self
            .broker_started
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            let broker = self.start_broker();
            *self.api_broker.lock().expect("the cluster's broker") = Some(broker);
        }
    }

    /// Starts a worker (logging to `<name>.log`) and waits until the broker lists it.
    pub fn start_worker(&self, name: &str) -> ChildGuard {
        self.start_workers(&[name])
            .pop()
            .expect("the worker just started")
    }

    /// Starts workers all at once (each logging to `<name>.log`) and waits until the broker
    /// lists every one of them, so that none has a head start on jobs already waiting.
    pub fn start_workers(&self, names: &[&str]) -> Vec<ChildGuard> {
        // By identity, not by count: a dead worker may be dropped while these join.
        let identities = || -> Vec<Value> {
            self.status()["workers"]
                .as_array()
                .map(|w| w.iter().map(|w| w["identity"].clone()).collect())
                .unwrap_or_default()
        };
        let before = identities();
        let workers = names
            .iter()
            .map(|name| {
                let log = self.log_file(name);
                ChildGuard::spawn(
                    name,
                    &mut self.command("bonnie-worker", &["--log-file", &log]),
                )
            })
            .collect();
        process::wait_until("every worker to connect", || {
            identities()
                .iter()
                .filter(|id| !before.contains(id))
                .count()
                >= names.len()
        });
        workers
    }

    /// Starts a collector (logging to `<name>.log`) and waits until the broker lists it.
    pub fn start_collector(&self, name: &str) -> ChildGuard {
        let log = self.log_file(name);
        let collector = ChildGuard::spawn(
            name,
            &mut self.command("bonnie-collector", &["--log-file", &log]),
        );
        process::wait_until("the collector to connect", || {
            self.status()["collectors"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["credit"].as_u64().unwrap_or(0) > 0))
        });
        collector
    }

    /// True when the broker holds no unfinished job.
    pub fn idle(&self) -> bool {
        let status = self.status();
        let jobs = &status["jobs"];
        ["PENDING", "ALLOC", "POSTPONED"]
            .iter()
            .all(|s| jobs[s] == 0)
    }

    /// Waits until the broker holds no unfinished job and none waits for a collector.
    pub fn wait_until_drained(&self) {
        process::wait_until("every job finished", || {
            self.idle() && self.status()["waiting_for_collectors"] == 0
        });
    }

    /// Every record of the archive's event log, in the order stored.
    pub fn log_records(&self) -> Vec<Value> {
        let db = self.archive();
        let mut stmt = db
            .prepare("SELECT record FROM log ORDER BY seq")
            .expect("the archive's log");
        stmt.query_map([], |r| r.get::<_, String>(0))
            .expect("reading the archive's log")
            .map(|r| serde_json::from_str(&r.expect("a log row")).expect("a JSON record"))
            .filter(|record: &Value| !is_probe(record))
            .collect()
    }

    /// Starts the dealer daemon and waits for its socket.
    pub fn start_dealer_daemon(&self) -> ChildGuard {
        let log = self.log_file("dealer-daemon");
        let daemon = ChildGuard::spawn(
            "bonnie-dealer --daemon",
            &mut self.command(
                "bonnie-dealer",
                &["--daemon", "--log-file", &log, "--log-level", "info"],
            ),
        );
        // The socket file appears at bind(), a moment before listen(): wait until it answers.
        process::wait_until("the dealer socket", || {
            std::os::unix::net::UnixStream::connect(self.dealer_socket()).is_ok()
        });
        daemon
    }

    /// The dealer daemon's socket.
    pub fn dealer_socket(&self) -> PathBuf {
        self.path().join("var/dealer.sock")
    }

    /// Adds `keys` (TOML lines) to the configuration's `[dealer]` table.
    pub fn add_dealer_keys(&self, keys: &str) {
        self.add_keys("dealer", keys);
    }

    /// Adds `keys` (TOML lines) to the configuration's table `[table]` (which it has already,
    /// such as `broker` or `collector`).
    pub fn add_keys(&self, table: &str, keys: &str) {
        let header = format!("[{table}]\n");
        let config = std::fs::read_to_string(self.config()).expect("reading the configuration");
        assert!(
            config.contains(&header),
            "the configuration has no [{table}]"
        );
        let config = config.replacen(&header, &format!("{header}{keys}\n"), 1);
        std::fs::write(self.config(), config).expect("writing the configuration");
    }

    /// The dealers' spool folder: `daemon/` and `exec-<n>/` spools, each with its `queue`.
    pub fn spool_dir(&self) -> PathBuf {
        self.path().join("var/dealer-spool")
    }

    /// Every spool's `queue` file in the spool folder, by spool name (`daemon`, `exec-0`, ...).
    pub fn spool_queues(&self) -> Vec<(String, Vec<u8>)> {
        let mut queues: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.spool_dir())
            .expect("the spool folder")
            .filter_map(Result::ok)
            .filter_map(|e| {
                let queue = std::fs::read(e.path().join("queue")).ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), queue))
            })
            .collect();
        queues.sort();
        queues
    }

    /// True if some spool's queue holds `bytes`.
    pub fn spooled(&self, bytes: &[u8]) -> bool {
        self.spool_queues()
            .iter()
            .any(|(_, queue)| queue.windows(bytes.len()).any(|w| w == bytes))
    }

    /// What a component logged so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_file(name)).unwrap_or_default()
    }

    /// Runs the dealer the way Cyrus's notifyd does, with the notification on stdin and
    /// notifyd's arguments, stdout an unconnected datagram socket as in notifyd.
    pub fn deal(&self, notification: &[u8]) -> Output {
        let mut command = self.command(
            "bonnie-dealer",
            &["-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f"],
        );
        let stdout = std::os::unix::net::UnixDatagram::unbound().expect("a datagram socket");
        command
            .stdin(Stdio::piped())
            .stdout(std::os::fd::OwnedFd::from(stdout))
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting bonnie-dealer");
        let mut stdin = child.stdin.take().expect("the dealer's stdin");
        stdin
            .write_all(notification)
            .expect("writing the notification");
        stdin.write_all(b"\n").expect("writing the notification");
        drop(stdin);
        child.wait_with_output().expect("waiting for bonnie-dealer")
    }

    /// The payload kept in the SQLite store under this digest, decompressed.
    pub fn payload(&self, digest: &str) -> Vec<u8> {
        let (size, data): (i64, Vec<u8>) = self
            .archive()
            .query_row(
                "SELECT size, data FROM payloads WHERE digest = ?1",
                [digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("no payload {digest}: {e}"));
        bonnie_core::payload::decompress(&data, size as usize).expect("a payload that decompresses")
    }

    /// Runs `bonnie-dealer --flush`.
    pub fn flush(&self) -> Output {
        let mut command = self.command("bonnie-dealer", &["--flush"]);
        process::run("bonnie-dealer --flush", &mut command)
    }

    /// Runs the admin command line with `args`.
    pub fn bonnie(&self, args: &[&str]) -> Output {
        process::run("bonnie", &mut self.command("bonnie", args))
    }

    /// `bonnie verify --json` with `args`: whether it passed, and its report.
    pub fn verify(&self, args: &[&str]) -> (bool, Value) {
        let output = self.bonnie(&[&["verify", "--json"], args].concat());
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("verify printed no JSON: {}", process::describe(&output)));
        (output.status.success(), report)
    }

    fn try_status(&self) -> Option<Value> {
        let output = self.bonnie(&["status", "--json", "--timeout", "1"]);
        output
            .status
            .success()
            .then(|| serde_json::from_slice(&output.stdout).ok())
            .flatten()
    }

    /// `bonnie status --json`.
    pub fn status(&self) -> Value {
        let output = self.bonnie(&["status", "--json"]);
        assert!(
            output.status.success(),
            "bonnie status failed:\n{}",
            process::describe(&output)
        );
        serde_json::from_slice(&output.stdout).expect("status is JSON")
    }

    /// The audit records of the verifiable log, as `bonnie audit --json` lists them.
    pub fn audit_records(&self) -> Vec<Value> {
        let output = self.bonnie(&["audit", "--json"]);
        assert!(
            output.status.success(),
            "bonnie audit failed:\n{}",
            process::describe(&output)
        );
        serde_json::from_slice(&output.stdout).expect("bonnie audit --json prints JSON")
    }

    /// The archive (the workers' SQLite store).
    pub fn archive(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("var/bonnie.db")).expect("opening the archive")
    }

    /// The bodies of the archive's records of `collection` (`object-facts`...).
    pub fn archived_bodies(&self, collection: &str) -> Vec<String> {
        let db = self.archive();
        let mut stmt = db
            .prepare("SELECT body FROM records WHERE collection = ?1 ORDER BY key")
            .expect("querying the archive");
        stmt.query_map([collection], |r| r.get::<_, String>(0))
            .expect("querying the archive")
            .map(|body| body.expect("a record's body"))
            .collect()
    }

    /// The number of entries in the archive's event log, 0 before it exists.
    pub fn archived(&self) -> usize {
        if !self.path().join("var/bonnie.db").exists() {
            return 0;
        }
        self.archive()
            .query_row("SELECT count(*) FROM log", [], |row| row.get::<_, i64>(0))
            .map_or(0, |n| n as usize)
    }

    /// The broker's job store.
    pub fn job_store(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("var/broker.db"))
            .expect("opening the job store")
    }
}

/// True for a record of the folder [`crate::cyrus::PROBE`], the harness's own.
fn is_probe(record: &Value) -> bool {
    let probe = format!("/{}", crate::cyrus::PROBE);
    record["uri"]
        .as_str()
        .is_some_and(|uri| uri.contains(&format!("{probe};")) || uri.ends_with(&probe))
}

/// The dlist request Cyrus's notifyd sends the dealer daemon for one notification.
pub fn dlist_request(json: &str) -> Vec<u8> {
    dlist_request_bytes(json.as_bytes())
}

/// The dlist request for a notification's bytes as they are, UTF-8 or not.
pub fn dlist_request_bytes(notification: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "NOTIFY %(METHOD external CLASS EVENT PRIORITY NIL USER NIL MAILBOX NIL OPTIONS () MESSAGE {{{}+}}\r\n",
        notification.len()
    )
    .into_bytes();
    request.extend_from_slice(notification);
    request.extend_from_slice(b" FILEPATH NIL)\r\n");
    request
}
