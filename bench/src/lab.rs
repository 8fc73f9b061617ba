//! The benchmark's bonnie: a temporary folder with a configuration on free ports, and the real
//! binaries and plugins started from the folder this benchmark was built into.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_core::{
    protocol::{self, DealerMsg},
    transport,
};

/// A free TCP port on loopback.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process, killed on drop.
pub struct Running(Child);

impl Running {
    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// CPU time used so far (user and system), in seconds.
    pub fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).ok()?;
        let after_name = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    /// [`Running::cpu_s`], or an error naming the process (`what`).
    pub fn cpu_time(&self, what: &str) -> anyhow::Result<f64> {
        self.cpu_s()
            .with_context(|| format!("reading the CPU time of the {what}"))
    }

    /// Peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// Bytes the process has caused to be written to storage so far (`write_bytes` of
    /// `/proc/<pid>/io`: counted when it dirties a page, so the kernel's later writeback of
    /// it is the process's too).
    pub fn written_bytes(&self, what: &str) -> anyhow::Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.0.id()))
            .with_context(|| format!("reading the I/O counters of the {what}"))?;
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no write_bytes in the I/O counters of the {what}"))
    }

    /// A field of `/proc/<pid>/status` given in KiB.
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Running {
    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl From<Child> for Running {
    fn from(child: Child) -> Self {
        Self(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One bonnie in a temporary folder.
pub struct Lab {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The broker's dealer address.
    pub dealer_address: String,
}

impl Lab {
    /// A fresh folder and configuration, with the broker input and SQLite storage.
    pub fn new() -> anyhow::Result<Self> {
        Self::with(
            &["libbonnie_zmq_input.so", "libbonnie_sqlite_storage.so"],
            "",
        )
    }

    /// A fresh folder whose plugin folder holds `libraries` (file names from the build folder),
    /// with `extra` appended to the configuration. The configuration ends with the `[collector]`
    /// table, so keys of `extra` before its first table header are the collector's.
    pub fn with(libraries: &[&str], extra: &str) -> anyhow::Result<Self> {
        Self::with_storage(
            libraries,
            "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
            extra,
        )
    }

    /// Like [`Lab::with`], with `storage` (a plugin table) in place of SQLite's.
    pub fn with_storage(libraries: &[&str], storage: &str, extra: &str) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("bonnie-bench-")
            .disable_cleanup(std::env::var_os("BONNIE_BENCH_KEEP").is_some())
            .tempdir_in(bench_root()?)?;
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        for &library in libraries {
            let source = bin.join(library);
            if !source.exists() {
                bail!(
                    "{} is missing: build the workspace first (scripts/bench does)",
                    source.display()
                );
            }
            std::fs::copy(&source, dir.path().join("plugins").join(library))?;
        }
        let [dealer, collector, worker, controller, admin] = [
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        ];
        let config = format!(
            r#"
[worker]
plugin_dir = "plugins"
threads = 2
sole_writer = false

[broker]
dealer_address = "tcp://127.0.0.1:{dealer}"
collector_address = "tcp://127.0.0.1:{collector}"
worker_address = "tcp://127.0.0.1:{worker}"
controller_address = "tcp://127.0.0.1:{controller}"
admin_address = "tcp://127.0.0.1:{admin}"
database = "var/broker.db"

[dealer]
broker_address = "tcp://127.0.0.1:{dealer}"
spool_dir = "var/dealer-spool"
socket = "var/dealer.sock"
# Cyrus's imapd and lmtpd run as user cyrus and must connect to the socket.
socket_mode = 0o666
ack_timeout_ms = 2000

[plugins.zmq-input]
worker_address = "tcp://127.0.0.1:{worker}"
controller_address = "tcp://127.0.0.1:{controller}"
curve = false

# The benchmark measures bonnie's own work on loopback, without CURVE.
[curve]
enabled = false

{storage}
[collector]
broker_address = "tcp://127.0.0.1:{collector}"
{extra}"#
        );
        std::fs::write(dir.path().join("bonnie.toml"), config)?;
        Ok(Self {
            dir,
            bin,
            dealer_address: format!("tcp://127.0.0.1:{dealer}"),
        })
    }

    /// Sets the handler threads of the workers started from now on (the lab starts with 2).
    pub fn set_worker_threads(&self, threads: usize) -> anyhow::Result<()> {
        self.set_worker_key("threads", &threads.to_string())
    }

    /// Makes the workers started from now on their storage's only worker, or not (the lab
    /// starts with several allowed): one worker alone holds its record writes for each
    /// logged batch.
    pub fn set_sole_writer(&self, sole: bool) -> anyhow::Result<()> {
        self.set_worker_key("sole_writer", &sole.to_string())
    }

    /// Sets `key = value` in the configuration's `[worker]` table, whose keys are the
    /// configuration's only lines starting with those names.
    fn set_worker_key(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let path = self.path().join("bonnie.toml");
        let config = std::fs::read_to_string(&path)?;
        let prefix = format!("{key} = ");
        let lines: Vec<String> = config
            .lines()
            .map(|line| match line.starts_with(&prefix) {
                true => format!("{prefix}{value}"),
                false => line.to_string(),
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(())
    }

    /// The lab's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command for one of bonnie's binaries with this lab's configuration.
    pub fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(self.bin.join(binary));
        command
            .arg("--config")
            .arg(self.path().join("bonnie.toml"))
            .env_remove("BONNIE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Starts one of bonnie's binaries with `args`, logging warnings to its own file.
    pub fn spawn(&self, binary: &str, args: &[&str]) -> anyhow::Result<Running> {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.path().join(format!("{binary}-{n}.log"));
        let child = self
            .command(binary)
            .args(args)
            .arg("--log-level")
            .arg("warn")
            .arg("--log-file")
            .arg(log)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        Ok(Running(child))
    }

    /// Starts the broker and waits until its admin socket answers.
    pub fn broker(&self) -> anyhow::Result<Running> {
        let broker = self.spawn("bonnie-broker", &[])?;
        let started = Instant::now();
        loop {
            let status = self
                .command("bonnie")
                .args(["status", "--json", "--timeout", "1"])
                .status()?;
            if status.success() {
                return Ok(broker);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the broker did not come up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a worker.
    pub fn worker(&self) -> anyhow::Result<Running> {
        self.spawn("bonnie-worker", &[])
    }

    /// Starts the dealer daemon and waits for its socket.
    pub fn dealer_daemon(&self) -> anyhow::Result<Running> {
        let daemon = self.spawn("bonnie-dealer", &["--daemon"])?;
        let started = Instant::now();
        while !self.path().join("var/dealer.sock").exists() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the dealer daemon did not come up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// Submits notifications `numbers` (made by `notification`, job ids `bench-<number>`, so
    /// that numbers never used before make jobs the archive has not seen) to the broker as
    /// dealers do, from 16 connections with up to 64 submissions in flight each; returns once
    /// every one is acknowledged (stored and synced), with the submissions per second.
    pub fn submit(
        &self,
        numbers: std::ops::Range<u64>,
        notification: impl Fn(u64) -> Vec<u8>,
    ) -> anyhow::Result<f64> {
        let total = (numbers.end - numbers.start) as usize;
        const SOCKETS: usize = 16;
        const WINDOW: usize = 64;
        let context = transport::context();
        let sockets: Vec<_> = (0..SOCKETS)
            .map(|i| {
                let identity = protocol::dealer_identity("bench", 1_000_000 + i as u32);
                transport::dealer(&context, &self.dealer_address, &identity, Duration::ZERO)
            })
            .collect::<Result<_, _>>()?;
        let mut sent = 0usize;
        let mut acked = 0usize;
        let mut in_flight = [0usize; SOCKETS];
        let started = Instant::now();
        while acked < total {
            for (i, socket) in sockets.iter().enumerate() {
                while in_flight[i] < WINDOW && sent < total {
                    let n = numbers.start + sent as u64;
                    let message = DealerMsg::Notify {
                        id: format!("bench-{n}"),
                        notification: notification(n),
                    };
                    transport::send(socket, &message.frames())?;
                    in_flight[i] += 1;
                    sent += 1;
                }
            }
            let refs: Vec<&transport::Socket> = sockets.iter().collect();
            let readable = transport::poll(&refs, Duration::from_secs(10))?;
            if !readable.iter().any(|r| *r) {
                bail!("the broker stopped acknowledging after {acked} submissions");
            }
            for (i, socket) in sockets.iter().enumerate() {
                while let Some(frames) = transport::try_recv(socket)? {
                    if protocol::parse_ack(&frames).is_ok() {
                        in_flight[i] -= 1;
                        acked += 1;
                    }
                }
            }
        }
        Ok(total as f64 / started.elapsed().as_secs_f64())
    }

    /// Records in the archive's event log.
    pub fn archived(&self) -> u64 {
        let path = self.path().join("var/bonnie.db");
        let Ok(db) = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return 0;
        };
        // The log's sequence numbers start at 1 without gaps in a fresh lab, so the highest
        // is the count; reading it costs one B-tree descent, where count(*) scans the table
        // and would take CPU from the run it measures.
        db.query_row("SELECT coalesce(max(seq), 0) FROM log", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_or(0, |n| n as u64)
    }

    /// Milliseconds from `sent_ms` in each record to its storage, for every record.
    pub fn latencies_ms(&self) -> anyhow::Result<Vec<f64>> {
        let db = rusqlite::Connection::open(self.path().join("var/bonnie.db"))?;
        let mut stmt =
            db.prepare("SELECT stored_ms - json_extract(record, '$.sent_ms') FROM log")?;
        let rows = stmt.query_map([], |r| r.get::<_, f64>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The folder of the benchmark's binary, where the build put bonnie's binaries and plugins.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .context("the benchmark's folder")?
        .to_path_buf())
}

/// Where labs are made: `$BONNIE_BENCH_DIR`, else the system's temporary folder.
pub fn bench_root() -> anyhow::Result<PathBuf> {
    let root = std::env::var_os("BONNIE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&root)?;
    Ok(root)
}
