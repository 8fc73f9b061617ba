//! Postfix log lines per second, three ways on the same generated log
//! ([`bonnie_maillog::sample::mail_log`], in `maillog_file`'s style): through intake
//! (bonnie-logd following the file, the broker, a worker with the `postfix` handler and
//! SQLite storage, until every batch is DONE), parsing and stitching in this process, and
//! Debian's `pflogsumm` summarising the file, as a reference.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_maillog::{Stitcher, SyslogParser, parse_line, sample};
use serde_json::{Value, json};

use crate::{lab::Lab, round};

/// What the worker loads: the Postfix handler, the broker input and the storage.
const PLUGINS: [&str; 3] = [
    "libbonnie_postfix.so",
    "libbonnie_zmq_input.so",
    "libbonnie_sqlite_storage.so",
];

/// Where Debian's package puts `pflogsumm`.
const PFLOGSUMM: &str = "/usr/sbin/pflogsumm";

/// `maillog_intake_lines_per_s`, `maillog_parse_stitch_lines_per_s` and
/// `pflogsumm_lines_per_s` for a log of `lines` lines.
pub fn figures(lines: usize) -> anyhow::Result<Value> {
    let log = sample::mail_log(lines);
    let parse_stitch = parse_stitch_per_s(&log);
    eprintln!("mail log, parsed and stitched in one thread: {parse_stitch:.0} lines/s");
    let lab = Lab::with(
        &PLUGINS,
        "\n[plugins.postfix]\nzone = \"UTC\"\n\n[logd]\nfiles = [\"log/mail.log\"]\n",
    )?;
    let file = lab.path().join("log/mail.log");
    std::fs::create_dir_all(lab.path().join("log"))?;
    let text: String = log.iter().flat_map(|l| [l.as_str(), "\n"]).collect();
    std::fs::write(&file, &text)?;
    let pflogsumm = pflogsumm_per_s(&file, lines)?;
    let (intake, queue_files) = intake_per_s(&lab, &file, lines)?;
    eprintln!("mail log through bonnie-logd, broker and worker: {intake:.0} lines/s");
    Ok(json!({
        "maillog_lines": lines,
        "maillog_bytes": text.len(),
        "maillog_queue_files_stored": queue_files,
        "maillog_intake_lines_per_s": round(intake, 0),
        "maillog_parse_stitch_lines_per_s": round(parse_stitch, 0),
        "pflogsumm_lines_per_s": pflogsumm.map(|rate| round(rate, 0)),
        "pflogsumm": if pflogsumm.is_some() { PFLOGSUMM } else { "missing: apt-get install pflogsumm (scripts/bench installs it)" },
    }))
}

/// Parsing every line, then stitching them all, in this thread.
fn parse_stitch_per_s(log: &[String]) -> f64 {
    let parser = SyslogParser::new(jiff::tz::TimeZone::UTC);
    let received: jiff::Timestamp = jiff::Timestamp::now();
    let started = Instant::now();
    let mut stitcher = Stitcher::new();
    for line in log {
        stitcher.ingest(&parse_line(&parser, line, received));
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::hint::black_box(stitcher.queues().len());
    log.len() as f64 / elapsed
}

/// `pflogsumm` over the whole file, its output discarded; `None` if it is not installed.
fn pflogsumm_per_s(file: &Path, lines: usize) -> anyhow::Result<Option<f64>> {
    if !Path::new(PFLOGSUMM).exists() {
        eprintln!("{PFLOGSUMM} is missing (apt-get install pflogsumm): no reference figure");
        return Ok(None);
    }
    let started = Instant::now();
    let status = Command::new(PFLOGSUMM)
        .arg(file)
        .stdout(Stdio::null())
        .status()
        .context("running pflogsumm")?;
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("pflogsumm failed on {}: {status}", file.display());
    }
    let rate = lines as f64 / elapsed;
    eprintln!("pflogsumm: {rate:.0} lines/s");
    Ok(Some(rate))
}

/// From bonnie-logd's start (broker and worker already up) until the file's end is handed
/// over and every batch is DONE; with the queue files the storage holds then.
fn intake_per_s(lab: &Lab, file: &Path, lines: usize) -> anyhow::Result<(f64, i64)> {
    let length = std::fs::metadata(file)?.len();
    let mut broker = lab.broker()?;
    let mut worker = lab.worker()?;
    let started = Instant::now();
    let mut logd = lab.spawn("bonnie-logd", &[])?;
    let mut last = (0, Instant::now());
    loop {
        for (name, process) in [
            ("broker", &mut broker),
            ("worker", &mut worker),
            ("bonnie-logd", &mut logd),
        ] {
            if !process.alive() {
                bail!(
                    "the {name} ended during the run; see its log in {}",
                    lab.path().display()
                );
            }
        }
        let (jobs, undone) = log_jobs(lab)?;
        if handed_over(lab)? >= length && jobs > 0 && undone == 0 {
            break;
        }
        if undone != last.0 {
            last = (undone, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(120) {
            bail!(
                "{undone} of {jobs} batches not DONE after {:?}",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored = stored_lines(lab)?;
    if stored != lines as i64 {
        bail!(
            "the broker holds {stored} lines of {lines}; see {}",
            lab.path().display()
        );
    }
    let archive = rusqlite::Connection::open_with_flags(
        lab.path().join("var/bonnie.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let queue_files = archive.query_row(
        "SELECT count(*) FROM records WHERE collection = 'postfix-queues'",
        [],
        |r| r.get(0),
    )?;
    Ok((lines as f64 / elapsed, queue_files))
}

/// The offset bonnie-logd has handed over up to (0 before its first position file).
fn handed_over(lab: &Lab) -> anyhow::Result<u64> {
    let Ok(entries) = std::fs::read_dir(lab.path().join("var/logd-state")) else {
        return Ok(0);
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let position: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(position["offset"].as_u64().unwrap_or(0));
        }
    }
    Ok(0)
}

/// The log batches the broker holds, and how many of them are not DONE.
fn log_jobs(lab: &Lab) -> anyhow::Result<(i64, i64)> {
    let Some(store) = job_store(lab)? else {
        return Ok((0, 0));
    };
    Ok(store.query_row(
        "SELECT count(*), count(*) FILTER (WHERE state != 'DONE') FROM jobs WHERE id LIKE 'log-%'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Every line of every stored batch, counted once at the end.
fn stored_lines(lab: &Lab) -> anyhow::Result<i64> {
    let store = job_store(lab)?.context("the broker's job store is missing")?;
    Ok(store.query_row(
        "SELECT coalesce(sum(json_array_length(CAST(notification AS TEXT), '$.lines')), 0)
         FROM jobs WHERE id LIKE 'log-%'",
        [],
        |r| r.get(0),
    )?)
}

fn job_store(lab: &Lab) -> anyhow::Result<Option<rusqlite::Connection>> {
    let path = lab.path().join("var/broker.db");
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?))
}
