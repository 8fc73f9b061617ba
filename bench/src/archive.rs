//! The headline figure: notifications per second through the archive bonnie ships. The
//! captured Cyrus 3.6 scenario, copied for as many tenants as make up the notifications asked
//! for (the chaos run's copies: same mix of logins, appends, flags, moves, expunges and folder
//! events), goes as dlist requests to the dealer daemon, then the broker and the workers
//! (as shipped: one, its storage's sole writer, a handler thread per core) with every archive
//! handler, the changelog, free/busy, SQLite and the JSON-lines output, CURVE on; from the
//! first request to the broker's last job DONE (every record synced before it), with each
//! process's CPU time and bytes written per notification.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};

use crate::{
    chaos::ARCHIVE_HANDLERS,
    lab::{Lab, Running},
    load, round,
};

/// What the workers load besides the archive handlers: the groupware handlers, the broker
/// input, the storage and the output `etc/bonnie.toml` ships.
const PLUGINS: [&str; 5] = [
    "libbonnie_changelog.so",
    "libbonnie_freebusy.so",
    "libbonnie_zmq_input.so",
    "libbonnie_sqlite_storage.so",
    "libbonnie_jsonl_output.so",
];

/// Their settings. The changelog and free/busy ask a collector for payloads by default; none
/// runs here (the notifications' events are not groupware objects' anyway), so they ask for
/// nothing and do the rest of their work, the changelog's message trail included.
const PLUGIN_CONFIG: &str = r#"
[plugins.changelog]
collect = []

[plugins.freebusy]
collect = []

[plugins.jsonl-output]
path = "var/output.jsonl"
"#;

/// The name of the host the lab's dealer and keys are for.
const HOST: &str = "bench";

/// `e2e_archive_events_per_s`, `e2e_archive_events` and `e2e_archive_processes` (each
/// process's CPU per notification and peak memory), for `total` notifications with
/// `connections` dlist connections open at once, through `shape`'s workers; beside them when
/// the dealer had accepted every notification (`e2e_archive_accepted_s`), when the last job
/// was DONE (`e2e_archive_elapsed_s`) and how many jobs were postponed on the way.
pub fn figures(total: u64, connections: usize, shape: Shape) -> anyhow::Result<Map<String, Value>> {
    let notifications = crate::chaos::notifications(total)?;
    let libraries: Vec<&str> = ARCHIVE_HANDLERS.iter().chain(&PLUGINS).copied().collect();
    let lab = Lab::with(&libraries, PLUGIN_CONFIG)?;
    enable_curve(&lab)?;
    lab.set_worker_threads(shape.threads)?;
    lab.set_sole_writer(shape.sole)?;
    let names: Vec<String> = (1..=shape.workers).map(|n| format!("worker_{n}")).collect();
    let mut processes = vec![
        ("broker", lab.broker()?),
        ("dealer_daemon", lab.dealer_daemon()?),
    ];
    for name in &names {
        processes.push((name.as_str(), lab.worker()?));
    }
    wait_for_workers(&lab, shape.workers)?;
    let cpu_before: Vec<f64> = processes
        .iter()
        .map(|(name, p)| p.cpu_time(name))
        .collect::<anyhow::Result<_>>()?;
    let written_before: Vec<u64> = processes
        .iter()
        .map(|(name, p)| p.written_bytes(name))
        .collect::<anyhow::Result<_>>()?;

    let started = Instant::now();
    load::drive(
        &lab.path().join("var/dealer.sock"),
        total,
        connections,
        |_| started,
        |n| notifications[n as usize].clone(),
        load::OnFailure::Stop,
    )?;
    let sent = started.elapsed().as_secs_f64();
    wait_done(&lab, total, started, &mut processes)?;
    let elapsed = started.elapsed().as_secs_f64();

    let archived = lab.archived();
    if archived != total {
        bail!(
            "{archived} records in the log for {total} notifications; see {}",
            lab.path().display()
        );
    }
    let mut per_process = Map::new();
    for (((name, process), before), written) in processes.iter().zip(cpu_before).zip(written_before)
    {
        let after = process.cpu_time(name)?;
        let written = process.written_bytes(name)?.saturating_sub(written);
        per_process.insert(
            name.to_string(),
            json!({
                "cpu_us_per_event": crate::us_per_event(after - before, total),
                "kb_written_per_event": round(written as f64 / 1000.0 / total as f64, 1),
                "peak_rss_kib": process.peak_rss_kib(),
            }),
        );
    }
    let handlers: Vec<&str> = libraries
        .iter()
        .map(|l| l.trim_start_matches("libbonnie_").trim_end_matches(".so"))
        .collect();
    let rate = total as f64 / elapsed;
    eprintln!("end to end through the shipped archive: {rate:.0}/s");
    let mut report = Map::new();
    report.insert("e2e_archive_events_per_s".into(), json!(round(rate, 0)));
    report.insert("e2e_archive_events".into(), json!(total));
    report.insert("e2e_archive_accepted_s".into(), json!(round(sent, 2)));
    report.insert("e2e_archive_elapsed_s".into(), json!(round(elapsed, 2)));
    report.insert(
        "e2e_archive_postponed_jobs".into(),
        json!(postponed_jobs(&lab)?),
    );
    report.insert("e2e_archive_plugins".into(), json!(handlers));
    report.insert(
        "e2e_archive_workers".into(),
        json!({ "workers": shape.workers, "threads_each": shape.threads, "sole_writer": shape.sole }),
    );
    report.insert("e2e_archive_processes".into(), Value::Object(per_process));
    Ok(report)
}

/// The jobs of the run that were postponed at least once (each came back only after the
/// broker's postpone delay, 5 s, so even one holds the run's end that long).
fn postponed_jobs(lab: &Lab) -> anyhow::Result<i64> {
    let path = lab.path().join("var/broker.db");
    let db =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", path.display()))?;
    Ok(
        db.query_row("SELECT count(*) FROM jobs WHERE attempts > 0", [], |r| {
            r.get(0)
        })?,
    )
}

/// How many workers the run starts, and the handler threads of each (0: one per core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub workers: usize,
    pub threads: usize,
    /// One worker is its storage's sole writer (holding its record writes for each logged
    /// batch, as the package runs it) unless the shape says `-shared`.
    pub sole: bool,
}

/// `WORKERSxTHREADS`, such as `1x4`, or `1x4-shared` for one worker that is not its
/// storage's sole writer (several workers never are).
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    let (text, shared) = match text.strip_suffix("-shared") {
        Some(shape) => (shape, true),
        None => (text, false),
    };
    let (workers, threads) = text
        .split_once('x')
        .ok_or_else(|| format!("{text:?} is not WORKERSxTHREADS, such as 1x4"))?;
    let number = |n: &str| n.trim().parse::<usize>().map_err(|e| format!("{n:?}: {e}"));
    let workers = number(workers)?;
    if workers == 0 {
        return Err("the run needs at least one worker".into());
    }
    Ok(Shape {
        workers,
        threads: number(threads)?,
        sole: workers == 1 && !shared,
    })
}

/// Turns CURVE on as `etc/bonnie.toml` ships it, with the keys `bonnie keys generate` makes
/// for the broker and for this host's dealer, workers and admin command line.
fn enable_curve(lab: &Lab) -> anyhow::Result<()> {
    let path = lab.path().join("bonnie.toml");
    let config = std::fs::read_to_string(&path)?;
    let on = config
        .replacen("curve = false\n", "curve = true\n", 1)
        .replacen("[curve]\nenabled = false\n", "[curve]\nenabled = true\n", 1)
        .replacen("[dealer]\n", &format!("[dealer]\nhost = {HOST:?}\n"), 1);
    if on.matches("curve = true\n").count() != 1 || !on.contains("[curve]\nenabled = true\n") {
        bail!(
            "the lab's configuration no longer has CURVE off where this expects it: {}",
            path.display()
        );
    }
    std::fs::write(&path, on)?;
    for role in ["broker", "admin", "dealer", "worker"] {
        let mut command = lab.command("bonnie");
        command.args(["keys", "generate", role]);
        if role != "broker" {
            command.arg(HOST);
        }
        let status = command.status().context("running bonnie keys generate")?;
        if !status.success() {
            bail!("bonnie keys generate {role} failed: {status}");
        }
    }
    Ok(())
}

/// `bonnie status --json`.
fn status(lab: &Lab) -> anyhow::Result<Value> {
    let output = lab
        .command("bonnie")
        .args(["status", "--json", "--timeout", "5"])
        .stdout(Stdio::piped())
        .output()
        .context("running bonnie status")?;
    if !output.status.success() {
        bail!("bonnie status failed: {}", output.status);
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Waits until the broker lists `count` workers, so that none has a head start.
fn wait_for_workers(lab: &Lab, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    while status(lab)?["workers"].as_array().map_or(0, Vec::len) < count {
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the workers did not connect; see their logs in {}",
                lab.path().display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until the log holds `total` records (polling the archive, not the broker: the
/// broker's status counts its jobs, a scan of the job store that would slow the run it
/// measures), then until the broker has them all DONE; fails on a FAILED job or a process
/// that ended.
fn wait_done(
    lab: &Lab,
    total: u64,
    started: Instant,
    processes: &mut [(&str, Running)],
) -> anyhow::Result<()> {
    let archived = crate::wait_archived(lab, total, started);
    for (name, process) in processes.iter_mut() {
        if !process.alive() {
            bail!(
                "the {name} process ended during the run; see its log in {}",
                lab.path().display()
            );
        }
    }
    archived?;
    let waited = Instant::now();
    loop {
        let status = status(lab)?;
        let count = |state: &str| status["jobs"][state].as_u64().unwrap_or(0);
        if count("FAILED") > 0 {
            bail!("{} jobs FAILED: {}", count("FAILED"), status["jobs"]);
        }
        if count("DONE") >= total {
            return Ok(());
        }
        if waited.elapsed() > Duration::from_secs(60) {
            bail!("not every stored job is DONE: {}", status["jobs"]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
