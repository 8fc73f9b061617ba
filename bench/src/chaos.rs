//! The chaos run: the captured Cyrus 3.6 scenario, copied for as many tenants (their own
//! domain, folders and sessions) as make up the notifications asked for, goes through
//! exec-mode dealers and the dealer daemon into the shipped archive (every archive handler,
//! SQLite, JSON-lines output, a collector reading payloads from a spool) while the broker, the
//! workers, the daemon and the collector are SIGKILLed at random and started again. Then it
//! checks what bonnie promises: every notification a dealer acknowledged is stored exactly
//! once, and the derived views equal those of a single-threaded replay of what was stored.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::{
    lab::{Lab, Running},
    load,
};

/// The archive handlers the shipped configuration enables, by library file.
pub const ARCHIVE_HANDLERS: [&str; 6] = [
    "libbonnie_sessions.so",
    "libbonnie_mailboxes.so",
    "libbonnie_messages.so",
    "libbonnie_messageappend.so",
    "libbonnie_quota.so",
    "libbonnie_unknown_events.so",
];

/// The record collections that are views derived from the log, compared with the replay.
const VIEWS: [&str; 4] = ["folders", "folders-current", "sessions", "users"];

/// How the run is set up.
pub struct Settings {
    /// Notifications in all.
    pub events: u64,
    /// Offered load, notifications per second over both lanes.
    pub rate: u64,
    /// Every how many tenants one goes through exec-mode dealers (the others through the daemon).
    pub exec_every: u64,
    /// Exec-mode dealers running at once.
    pub exec_parallel: usize,
    /// Daemon connections open at once.
    pub connections: usize,
    /// Shortest and longest pause between two kills, in seconds.
    pub kill_every_s: (u64, u64),
}

/// The Cyrus 3.6 scenario, one notification a line.
fn scenario() -> anyhow::Result<Vec<String>> {
    let path = bonnie_tests::paths::repo_root().join("examples/cyrus-3.6-scenario.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Every value of the scenario that must differ between tenants: folder ids and session ids.
fn tenant_specific(lines: &[String]) -> anyhow::Result<BTreeSet<String>> {
    let mut values = BTreeSet::new();
    for line in lines {
        let notification: Value = serde_json::from_str(line)?;
        for key in ["mailboxID", "vnd.cmu.sessionId"] {
            if let Some(value) = notification.get(key).and_then(Value::as_str) {
                values.insert(value.to_string());
            }
        }
    }
    Ok(values)
}

/// Tenant `tenant`'s copy of a scenario line, marked with its number `n` in the run.
fn tenant_copy(line: &str, specific: &BTreeSet<String>, tenant: u64, n: u64) -> String {
    let mut copy = line
        .replace("cyrus-lab.example.org", "\u{0}")
        .replace("example.org", &format!("t{tenant}.example.org"))
        .replace('\u{0}', "cyrus-lab.example.org");
    for value in specific {
        copy = copy.replace(value.as_str(), &format!("{value}t{tenant}"));
    }
    format!("{{\"chaosSeq\":{n},{}", &copy[1..])
}

/// The run's notifications, in the order Cyrus produced them per tenant.
pub(crate) fn notifications(events: u64) -> anyhow::Result<Vec<String>> {
    let lines = scenario()?;
    let specific = tenant_specific(&lines)?;
    Ok((0..events)
        .map(|n| {
            let (tenant, i) = (n / lines.len() as u64, n % lines.len() as u64);
            tenant_copy(&lines[i as usize], &specific, tenant, n)
        })
        .collect())
}

/// Writes the message file Cyrus would hold for every appended or delivered message, so the
/// collector reads payloads from the spool as it does on an IMAP host.
fn write_spool(partition: &Path, notifications: &[String]) -> anyhow::Result<u64> {
    let mut written = 0;
    for line in notifications {
        let notification: Value = serde_json::from_str(line)?;
        let event = notification["event"].as_str().unwrap_or_default();
        if event != "MessageAppend" && event != "MessageNew" {
            continue;
        }
        let (Some(id), Some(uri)) = (
            notification["mailboxID"].as_str(),
            notification["uri"].as_str(),
        ) else {
            continue;
        };
        let Some(uid) = uri.rsplit_once(";UID=").map(|(_, uid)| uid) else {
            continue;
        };
        let mut chars = id.chars();
        let (Some(a), Some(b)) = (chars.next(), chars.next()) else {
            continue;
        };
        let folder = partition
            .join("uuid")
            .join(a.to_string())
            .join(b.to_string())
            .join(id);
        std::fs::create_dir_all(&folder)?;
        let message = format!(
            "From: Jürgen Groß <juergen@example.org>\r\nTo: Zoë <zoe@example.org>\r\n\
             Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_{n}?=\r\nMessage-ID: <chaos-{n}@example.org>\r\n\
             Date: Sat, 28 Nov 2026 17:13:36 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Viele Grüße aus dem Büro, Nachricht {n}.\r\n",
            n = notification["chaosSeq"]
        );
        std::fs::write(folder.join(format!("{uid}.")), message)?;
        written += 1;
    }
    Ok(written)
}

/// A small pseudo-random sequence (xorshift64*), enough to pick kill times and victims.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// The processes under fire, by name.
struct Fleet {
    lab: Arc<Lab>,
    running: BTreeMap<&'static str, Running>,
}

/// The processes the run kills, in the order they are started.
const PROCESSES: [&str; 5] = [
    "broker",
    "collector",
    "worker_1",
    "worker_2",
    "dealer_daemon",
];

impl Fleet {
    fn start(lab: &Arc<Lab>, name: &str) -> anyhow::Result<Running> {
        match name {
            "broker" => lab.broker(),
            "collector" => lab.spawn("bonnie-collector", &[]),
            "dealer_daemon" => {
                let daemon = lab.spawn("bonnie-dealer", &["--daemon"])?;
                wait_connectable(&lab.path().join("var/dealer.sock"))?;
                Ok(daemon)
            }
            _ => lab.worker(),
        }
    }

    fn new(lab: &Arc<Lab>) -> anyhow::Result<Self> {
        let mut running = BTreeMap::new();
        for name in PROCESSES {
            running.insert(name, Self::start(lab, name)?);
        }
        Ok(Self {
            lab: lab.clone(),
            running,
        })
    }

    /// SIGKILLs `name` and starts it again.
    fn kill_and_restart(&mut self, name: &'static str) -> anyhow::Result<()> {
        if let Some(mut process) = self.running.remove(name) {
            process.kill();
        }
        self.running.insert(name, Self::start(&self.lab, name)?);
        Ok(())
    }

    /// Starts again any process that ended by itself, naming it.
    fn revive(&mut self) -> anyhow::Result<Vec<&'static str>> {
        let mut ended = Vec::new();
        for name in PROCESSES {
            let alive = self.running.get_mut(name).is_some_and(Running::alive);
            if !alive {
                ended.push(name);
                self.running.insert(name, Self::start(&self.lab, name)?);
            }
        }
        Ok(ended)
    }
}

/// Waits until the daemon's socket takes connections (a killed daemon leaves its file).
fn wait_connectable(socket: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the dealer daemon did not take connections on {}",
                socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Runs exec-mode dealers for `lane` (indices into `notifications`), `parallel` at once,
/// paced by `due`; true for each one that exited 0 (what Cyrus's notifyd takes as delivered).
fn exec_lane(
    lab: &Lab,
    notifications: &[String],
    lane: &[u64],
    parallel: usize,
    due: impl Fn(u64) -> Instant,
) -> anyhow::Result<Vec<bool>> {
    let mut accepted = vec![false; lane.len()];
    let mut running: Vec<(usize, std::process::Child)> = Vec::new();
    let mut next = 0usize;
    while next < lane.len() || !running.is_empty() {
        while running.len() < parallel && next < lane.len() && due(next as u64) <= Instant::now() {
            let mut child = lab
                .command("bonnie-dealer")
                .args(["-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f"])
                .stdin(Stdio::piped())
                .spawn()
                .context("starting bonnie-dealer")?;
            let mut stdin = child.stdin.take().context("the dealer's stdin")?;
            // A dealer that dies before reading its stdin is a failure of that notification.
            let _ = stdin.write_all(notifications[lane[next] as usize].as_bytes());
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            running.push((next, child));
            next += 1;
        }
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                accepted[running[i].0] = status.success();
                running.swap_remove(i);
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(accepted)
}

/// How often each run number is in the archive's log, and in the JSON-lines output.
fn stored_counts(lab: &Lab) -> anyhow::Result<(BTreeMap<u64, u64>, BTreeMap<u64, u64>)> {
    let db = rusqlite::Connection::open_with_flags(
        lab.path().join("var/bonnie.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    db.busy_timeout(Duration::from_secs(30))?;
    let mut stmt = db.prepare(
        "SELECT json_extract(record, '$.chaosSeq'), count(*) FROM log \
         WHERE json_extract(record, '$.chaosSeq') IS NOT NULL GROUP BY 1",
    )?;
    let log = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let mut output = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(lab.path().join("var/output.jsonl")) {
        for line in text.lines() {
            // A line cut by a kill has no run number to count.
            if let Some(n) = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("chaosSeq").and_then(Value::as_u64))
            {
                *output.entry(n).or_insert(0) += 1;
            }
        }
    }
    Ok((log, output))
}

/// The broker's job counts, if it answers.
fn broker_jobs(lab: &Lab) -> Option<Value> {
    let out = lab
        .command("bonnie")
        .args(["status", "--json", "--timeout", "5"])
        .stdout(Stdio::piped())
        .output()
        .ok()?;
    let status: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(json!({
        "jobs": status["jobs"],
        "waiting_for_collectors": status["waiting_for_collectors"],
    }))
}

fn idle(jobs: &Value) -> bool {
    let count = |state: &str| jobs["jobs"][state].as_u64().unwrap_or(u64::MAX);
    count("PENDING") == 0
        && count("ALLOC") == 0
        && count("POSTPONED") == 0
        && jobs["waiting_for_collectors"].as_u64() == Some(0)
}

/// Waits until every accepted notification is stored and the broker has nothing left, the
/// spools flushed; gives up after `limit` without progress.
fn drain(lab: &Lab, accepted: &BTreeSet<u64>, limit: Duration) -> anyhow::Result<()> {
    let mut last = (usize::MAX, Instant::now());
    loop {
        let (log, _) = stored_counts(lab)?;
        let missing = accepted.iter().filter(|n| !log.contains_key(n)).count();
        if missing == 0 && broker_jobs(lab).is_some_and(|j| idle(&j)) {
            // What the spools still hold goes to the broker; then wait for that too.
            let flushed = lab
                .command("bonnie-dealer")
                .arg("--flush")
                .status()
                .context("running bonnie-dealer --flush")?;
            if !flushed.success() {
                bail!("bonnie-dealer --flush failed: {flushed}");
            }
            std::thread::sleep(Duration::from_millis(500));
            if broker_jobs(lab).is_some_and(|j| idle(&j)) {
                return Ok(());
            }
        }
        if missing != last.0 {
            last = (missing, Instant::now());
        } else if last.1.elapsed() > limit {
            bail!(
                "{missing} acknowledged notifications still not stored after {limit:?} without progress (broker: {})",
                broker_jobs(lab).unwrap_or(Value::Null)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The derived views of the store at `db`: each view's rows by key, bodies as stored but for
/// the ids of the jobs that made them (`login_job`, ...), which differ between any two runs.
fn views(db: &Path) -> anyhow::Result<BTreeMap<(String, String), Value>> {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut rows = BTreeMap::new();
    for view in VIEWS {
        let mut stmt = db.prepare("SELECT key, body FROM records WHERE collection = ?1")?;
        for row in stmt.query_map([view], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (key, body) = row?;
            let mut body: Value = serde_json::from_str(&body)?;
            if let Some(fields) = body.as_object_mut() {
                fields.retain(|field, _| !field.ends_with("_job"));
            }
            rows.insert((view.to_string(), key), body);
        }
    }
    Ok(rows)
}

/// Replays `lines` through one worker with one thread into a new store, with the same
/// handlers (no collector: payloads are not part of the views), and returns its database.
fn replay_single_threaded(
    bin: &Path,
    root: &Path,
    lines: &[&String],
) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-replay-")
        .disable_cleanup(std::env::var_os("BONNIE_BENCH_KEEP").is_some())
        .tempdir_in(root)?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for library in ARCHIVE_HANDLERS
        .iter()
        .chain(&["libbonnie_jsonl_input.so", "libbonnie_sqlite_storage.so"])
    {
        std::fs::copy(bin.join(library), plugins.join(library))
            .with_context(|| format!("copying {library}"))?;
    }
    std::fs::write(
        dir.path().join("bonnie.toml"),
        "[worker]\nplugin_dir = \"plugins\"\nthreads = 1\n\n[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\n\n\
         [plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
    )?;
    crate::storage::replay(bin, dir.path(), lines.iter())?;
    let db = dir.path().join("var/bonnie.db");
    Ok((dir, db))
}

/// The chaos run; its figures and verdict as JSON. Fails when anything acknowledged was lost
/// or stored twice, or a view differs from the single-threaded replay.
pub fn run(bin: &Path, settings: &Settings) -> anyhow::Result<Value> {
    let notifications = notifications(settings.events)?;
    let lab = Arc::new(Lab::with(
        &ARCHIVE_HANDLERS
            .iter()
            .copied()
            .chain([
                "libbonnie_zmq_input.so",
                "libbonnie_sqlite_storage.so",
                "libbonnie_jsonl_output.so",
            ])
            .collect::<Vec<_>>(),
        r#"
commands = ["FETCH"]
partitions = ["var/partition"]
# Nothing listens here: every payload must come from the spool.
imap_address = "127.0.0.1:9"
imap_timeout_ms = 1000

[plugins.messageappend]
collect = ["FETCH"]

[plugins.jsonl-output]
path = "var/output.jsonl"
"#,
    )?);
    let payloads = write_spool(&lab.path().join("var/partition"), &notifications)?;
    let scenario_len = scenario()?.len() as u64;
    let (exec, daemon): (Vec<u64>, Vec<u64>) =
        (0..settings.events).partition(|n| (n / scenario_len).is_multiple_of(settings.exec_every));
    eprintln!(
        "chaos: {} notifications ({} through exec dealers, {} through the daemon), {payloads} payloads in the spool",
        settings.events,
        exec.len(),
        daemon.len()
    );

    let fleet = Arc::new(Mutex::new(Fleet::new(&lab)?));
    let stop = Arc::new(AtomicBool::new(false));
    let kills: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let killer = {
        let (fleet, stop, kills) = (fleet.clone(), stop.clone(), kills.clone());
        let (low, high) = settings.kill_every_s;
        let started = Instant::now();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ bonnie_core::time::now_ms() as u64);
            let mut deck: Vec<&'static str> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let pause = Duration::from_secs(low)
                    + Duration::from_millis(dice.below((high - low) * 1000));
                let until = Instant::now() + pause;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Victims come in rounds, each round every process once in a random order, so
                // that every kind of process is killed in a run of a few rounds.
                if deck.is_empty() {
                    deck = PROCESSES.to_vec();
                    for i in (1..deck.len()).rev() {
                        deck.swap(i, dice.below(i as u64 + 1) as usize);
                    }
                }
                let Some(victim) = deck.pop() else { break };
                fleet
                    .lock()
                    .map_err(|_| anyhow::anyhow!("the fleet's lock is poisoned"))?
                    .kill_and_restart(victim)?;
                *kills
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .entry(victim)
                    .or_insert(0) += 1;
                eprintln!(
                    "chaos: killed and restarted {victim} at {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        })
    };

    let started = Instant::now();
    let share = |lane: &[u64]| lane.len() as f64 / settings.events.max(1) as f64;
    let exec_interval =
        Duration::from_secs_f64(1.0 / (settings.rate as f64 * share(&exec)).max(1e-9));
    let daemon_interval =
        Duration::from_secs_f64(1.0 / (settings.rate as f64 * share(&daemon)).max(1e-9));
    let exec_accepted = {
        let lab = lab.clone();
        let notifications = notifications.clone();
        let exec = exec.clone();
        let parallel = settings.exec_parallel;
        std::thread::spawn(move || {
            exec_lane(&lab, &notifications, &exec, parallel, |j| {
                started + exec_interval.mul_f64(j as f64)
            })
        })
    };
    let daemon_accepted = load::drive(
        &lab.path().join("var/dealer.sock"),
        daemon.len() as u64,
        settings.connections,
        |j| started + daemon_interval.mul_f64(j as f64),
        |j| notifications[daemon[j as usize] as usize].clone(),
        load::OnFailure::Count,
    )?;
    let exec_accepted = exec_accepted
        .join()
        .map_err(|_| anyhow::anyhow!("the exec lane panicked"))??;
    let load_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    killer
        .join()
        .map_err(|_| anyhow::anyhow!("the killer thread panicked"))??;
    let ended_by_themselves = fleet
        .lock()
        .map_err(|_| anyhow::anyhow!("the fleet's lock is poisoned"))?
        .revive()?;

    let accepted: BTreeSet<u64> = exec
        .iter()
        .zip(&exec_accepted)
        .chain(daemon.iter().zip(&daemon_accepted))
        .filter(|(_, ok)| **ok)
        .map(|(n, _)| *n)
        .collect();
    let drain_started = Instant::now();
    drain(&lab, &accepted, Duration::from_secs(120))?;
    let drain_s = drain_started.elapsed().as_secs_f64();
    let (log, output) = stored_counts(&lab)?;
    drop(fleet);

    let lost: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|n| !log.contains_key(n))
        .collect();
    let duplicated: Vec<u64> = log
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    let output_duplicated = output.values().filter(|c| **c > 1).count();
    let stored_unacknowledged = log.keys().filter(|n| !accepted.contains(n)).count();

    // The same notifications, as stored, replayed in Cyrus's order by one thread.
    let stored_lines: Vec<&String> = log.keys().map(|n| &notifications[*n as usize]).collect();
    let (_replay_dir, replay_db) =
        replay_single_threaded(bin, &crate::lab::bench_root()?, &stored_lines)?;
    let chaos_views = views(&lab.path().join("var/bonnie.db"))?;
    let replay_views = views(&replay_db)?;
    let keys: BTreeSet<&(String, String)> = chaos_views.keys().chain(replay_views.keys()).collect();
    let differing: Vec<Value> = keys
        .iter()
        .filter(|k| chaos_views.get(**k) != replay_views.get(**k))
        .map(|k| json!({ "view": k.0, "key": k.1, "chaos": chaos_views.get(*k), "replay": replay_views.get(*k) }))
        .collect();

    let report = json!({
        "events": settings.events,
        "offered_per_s": settings.rate,
        "accepted": accepted.len(),
        "accepted_exec": exec_accepted.iter().filter(|a| **a).count(),
        "accepted_daemon": daemon_accepted.iter().filter(|a| **a).count(),
        "not_accepted": settings.events as usize - accepted.len(),
        "stored": log.len(),
        "stored_unacknowledged": stored_unacknowledged,
        "lost": lost.len(),
        "duplicated": duplicated.len(),
        "output_duplicated": output_duplicated,
        "kills": *kills.lock().map_err(|_| anyhow::anyhow!("poisoned"))?,
        "ended_by_themselves": ended_by_themselves,
        "load_s": crate::round(load_s, 1),
        "drain_s": crate::round(drain_s, 1),
        "view_rows": keys.len(),
        "view_rows_differing": differing.len(),
        "view_differences_sample": differing.iter().take(5).collect::<Vec<_>>(),
        "lost_sample": lost.iter().take(10).collect::<Vec<_>>(),
        "duplicated_sample": duplicated.iter().take(10).collect::<Vec<_>>(),
    });
    if !lost.is_empty() || !duplicated.is_empty() || output_duplicated > 0 || !differing.is_empty()
    {
        bail!(
            "the chaos run broke bonnie's promise (lab kept at {}): {report:#}",
            lab.path().display()
        );
    }
    Ok(report)
}
