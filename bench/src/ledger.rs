//! The verifiable log's costs (`--only-ledger`): `bonnie verify` over archives made by the
//! shipped pipeline (broker, two workers with every archive handler, SQLite), once over
//! records alone and once over the body-text corpus delivered to a real Cyrus and collected
//! with its payloads, timed as the process an auditor runs; `bonnie retention apply` purging
//! every record of the first archive (each batch's purge record kept by the broker first);
//! and a checkpoint of a tree of ten million leaves in the broker's SQLite node store.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_ledger::{ArchiveKey, Checkpoint, Entry, LeafKind, SqliteStore};
use serde_json::{Value, json};

use crate::{chaos::ARCHIVE_HANDLERS, lab::Lab, round, storage};

/// The archive's signing key in a lab.
pub const LEDGER: &str = "\n[ledger]\nsigning_key = \"var/archive.key\"\n";

/// Every record of the bench's notifications (days old) expires: what the purge removes.
const RETENTION: &str = "\n[retention]\n[[retention.rule]]\nname = \"everything\"\nkeep = \"1d\"\n";

/// What to measure.
pub struct Settings {
    /// Records in the archive `bonnie verify` reads for the record rate.
    pub records: u64,
    /// Messages of the body-text corpus (with their payloads) in the archive it reads for the
    /// payload rate.
    pub messages: usize,
    /// Leaves in the tree a checkpoint is made of.
    pub checkpoint_leaves: u64,
}

/// Makes the lab's archive key.
pub fn init(lab: &Lab) -> anyhow::Result<()> {
    let init = lab
        .command("bonnie")
        .args(["ledger", "init", "--name", "bench.example.org/bonnie"])
        .status()?;
    if !init.success() {
        bail!("bonnie ledger init failed");
    }
    Ok(())
}

/// Asks the lab's broker (started for it) to sign a checkpoint of everything archived.
fn checkpoint(lab: &Lab) -> anyhow::Result<()> {
    let _broker = lab.broker()?;
    let checkpoint = lab.command("bonnie").args(["checkpoint"]).status()?;
    if !checkpoint.success() {
        bail!("bonnie checkpoint failed");
    }
    Ok(())
}

/// An archive of `count` notifications made by `make`, with a signed checkpoint, the broker
/// and workers stopped.
fn archive(count: u64, make: impl Fn(u64) -> Vec<u8>) -> anyhow::Result<Lab> {
    let libraries: Vec<&str> = ["libbonnie_zmq_input.so", "libbonnie_sqlite_storage.so"]
        .into_iter()
        .chain(ARCHIVE_HANDLERS)
        .collect();
    let lab = Lab::with(&libraries, &format!("{LEDGER}{RETENTION}"))?;
    init(&lab)?;
    let broker = lab.broker()?;
    let workers = [lab.worker()?, lab.worker()?];
    lab.submit(0..count, make)?;
    let started = Instant::now();
    while lab.archived() < count {
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("{} of {count} archived after 30 minutes", lab.archived());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every leaf is in once the broker has every DONE: wait until nothing is unfinished.
    loop {
        let output = lab
            .command("bonnie")
            .args(["status", "--json"])
            .stdout(Stdio::piped())
            .output()?;
        let status: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if status["jobs"]["DONE"].as_u64() >= Some(count) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop((workers, broker));
    checkpoint(&lab)?;
    Ok(lab)
}

/// Runs `bonnie verify --json` in `lab`; its wall-clock seconds and leaves.
fn timed_verify(lab: &Lab) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let output = lab
        .command("bonnie")
        .args(["verify", "--json"])
        .stdout(Stdio::piped())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    let report: Value = serde_json::from_slice(&output.stdout).context("verify's report")?;
    if !output.status.success() || report["verified"] != json!(true) {
        bail!("the archive did not verify: {report}");
    }
    Ok((seconds, report["leaves"].as_u64().unwrap_or(0)))
}

/// Runs `bonnie retention apply --yes --json` in `lab` (its broker started to keep the purge
/// records); its wall-clock seconds and the entries it purged.
fn timed_purge(lab: &Lab) -> anyhow::Result<(f64, u64)> {
    let _broker = lab.broker()?;
    let started = Instant::now();
    let output = lab
        .command("bonnie")
        .args(["retention", "apply", "--yes", "--json"])
        .stdout(Stdio::piped())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    let report: Value = serde_json::from_slice(&output.stdout).context("the purge's report")?;
    if !output.status.success() {
        bail!("the purge failed: {report}");
    }
    Ok((seconds, report["purged"].as_u64().unwrap_or(0)))
}

/// Payload bytes stored in a lab's archive (uncompressed sizes).
fn payload_bytes(lab: &Lab) -> anyhow::Result<u64> {
    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db"))?;
    Ok(
        db.query_row("SELECT coalesce(sum(size), 0) FROM payloads", [], |r| {
            r.get::<_, i64>(0)
        })? as u64,
    )
}

/// The cost of a checkpoint of a tree of `leaves` leaves, in a SQLite node store as the
/// broker keeps it: filled in transactions of 100,000, then a checkpoint with its consistency
/// proof from one 1,000 leaves smaller, signed.
fn checkpoint_cost(leaves: u64) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-ledger-")
        .tempdir_in(crate::lab::bench_root()?)?;
    let conn = rusqlite::Connection::open(dir.path().join("broker.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    SqliteStore::create_tables(&conn)?;
    let key = ArchiveKey::generate(&dir.path().join("archive.key"), "bench.example.org/bonnie")?;
    let started = Instant::now();
    let mut written = 0;
    while written < leaves {
        let batch = (leaves - written).min(100_000);
        let tx = conn.unchecked_transaction()?;
        let mut store = SqliteStore::new(&tx);
        bonnie_ledger::append(
            &mut store,
            (written..written + batch).map(|i| Entry {
                kind: LeafKind::Record,
                id: format!("bench-{i}"),
                record_digest: bonnie_ledger::merkle::leaf_hash(&i.to_be_bytes()),
                payload_digests: Vec::new(),
                refers_to: None,
            }),
        )?;
        tx.commit()?;
        written += batch;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let store = SqliteStore::new(&conn);
    let previous = leaves.saturating_sub(1000).max(1);
    let started = Instant::now();
    let checkpoint =
        Checkpoint::of_tree(&store, key.name(), Some(previous), jiff::Timestamp::now())?;
    let note = key.sign(&checkpoint)?;
    let checkpoint_ms = started.elapsed().as_secs_f64() * 1000.0;
    let file_mb = std::fs::metadata(dir.path().join("broker.db"))?.len() as f64 / 1e6
        + std::fs::metadata(dir.path().join("broker.db-wal")).map_or(0.0, |m| m.len() as f64 / 1e6);
    eprintln!(
        "checkpoint of {leaves} leaves: {checkpoint_ms:.2} ms (tree filled at {:.0} leaves/s, {file_mb:.0} MB)",
        leaves as f64 / fill_s
    );
    Ok(json!({
        "checkpoint_leaves": leaves,
        "checkpoint_ms": round(checkpoint_ms, 2),
        "checkpoint_consistency_hashes": checkpoint.consistency.len(),
        "checkpoint_note_bytes": note.len(),
        "tree_fill_leaves_per_s": round(leaves as f64 / fill_s, 0),
        "tree_store_mb": round(file_mb, 0),
    }))
}

/// Every figure of `--only-ledger`.
pub fn figures(settings: &Settings) -> anyhow::Result<Value> {
    let records = archive(settings.records, |n| storage::notification(n).into_bytes())?;
    let (records_s, record_leaves) = timed_verify(&records)?;
    eprintln!(
        "verify: {record_leaves} leaves in {records_s:.2} s ({:.0} records/s)",
        record_leaves as f64 / records_s
    );
    let (purge_s, purged) = timed_purge(&records)?;
    drop(records);
    eprintln!(
        "purge: {purged} entries in {purge_s:.2} s ({:.0} entries/s)",
        purged as f64 / purge_s
    );
    let (_, messages) = crate::payload::ingest_into(&crate::payload::Settings {
        messages: settings.messages,
        workers: 2,
        ledger: true,
        dlp: false,
    })?;
    checkpoint(&messages)?;
    let bytes = payload_bytes(&messages)?;
    let (payload_s, payload_leaves) = timed_verify(&messages)?;
    drop(messages);
    eprintln!(
        "verify: {payload_leaves} leaves with {:.1} MB of payloads in {payload_s:.2} s ({:.1} MB/s)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / payload_s
    );
    let checkpoint = checkpoint_cost(settings.checkpoint_leaves)?;
    Ok(json!({
        "pipeline": "broker + 2 workers, every archive handler, sqlite-storage (payloads: the body-text corpus delivered to Cyrus and collected); `bonnie verify` as a process",
        "verify_records": record_leaves,
        "verify_records_s": round(records_s, 2),
        "verify_records_per_s": round(record_leaves as f64 / records_s, 0),
        "purge_entries": purged,
        "purge_s": round(purge_s, 2),
        "purge_entries_per_s": round(purged as f64 / purge_s, 0),
        "verify_payload_messages": settings.messages,
        "verify_payload_mb": round(bytes as f64 / 1e6, 1),
        "verify_payload_s": round(payload_s, 2),
        "verify_payload_mb_per_s": round(bytes as f64 / 1e6 / payload_s, 1),
        "checkpoint": checkpoint,
    }))
}
