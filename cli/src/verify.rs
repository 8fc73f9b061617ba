//! `bonnie verify`: checks the verifiable log. The leaves and signed checkpoints are read from
//! the broker's job store (read-only: the file on the broker's host, or a copy an auditor was
//! given); each record leaf's record and payloads are read through the storage plugin, as the
//! workers wrote them, each audit leaf's record from the job store's audit table, and their
//! leaf recomputed; `bonnie_ledger::verify` compares the two and checks the roots, signatures
//! and consistency proofs. Prints the first bad sequence number and what is wrong; any finding
//! is a failure. The check is itself audited when the broker answers (see `audit`).

use std::{
    collections::HashMap,
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::{Context as _, bail};
use bonnie_core::{Config, ledger::LeafReport, payload};
use bonnie_ledger::{
    ArchiveKey, Entry, Hash, LeafData, LeafKind, PublicKey, Report, SqliteStore,
    verify::FindingKind,
};
use bonnie_plugin_api::storage::StorageClient;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// What `bonnie verify` was asked.
pub struct VerifyArgs<'a> {
    /// The first sequence number whose record is read back (the tree is always checked whole).
    pub from: Option<u64>,
    /// The sequence number after the last whose record is read back.
    pub to: Option<u64>,
    /// The archive's public key file (`<name>+<id>+<key>`); default: the one of `[ledger]
    /// signing_key`.
    pub public_key: Option<&'a Path>,
    /// The job store to read the log from; default `[broker] database`.
    pub job_store: Option<&'a Path>,
    /// JSON instead of text.
    pub json: bool,
}

/// The record digest the broker gives a job whose worker reported no leaf.
const UNATTESTED: Hash = [0; 32];

/// Runs the check and prints its report; an error when anything is wrong.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &VerifyArgs<'_>,
) -> anyhow::Result<()> {
    let key = public_key(config, args.public_key)?;
    let path = args
        .job_store
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.broker.database.clone());
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(
        || {
            format!(
                "cannot open the job store {} to read the log",
                path.display()
            )
        },
    )?;
    let store = SqliteStore::new(&conn);
    let checkpoints = store
        .checkpoints()
        .with_context(|| format!("cannot read the checkpoints in {}", path.display()))?;
    let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
    let storage = StorageClient::new(storage);
    let range = args.from.unwrap_or(0)..args.to.unwrap_or(u64::MAX);
    let found = read_back(&conn, &store, &storage, &range)?;
    let notes = Notes {
        unattested: found.unattested.iter().copied().collect(),
        audits: found.audits.iter().copied().collect(),
        purged: found.purged.len() as u64,
    };
    let recomputed = found.recomputed(&store)?;
    let report = bonnie_ledger::verify(&key, &checkpoints, store.leaves(), recomputed)
        .context("cannot read the log's leaves")?;
    let params = json!({
        "from": args.from,
        "to": args.to,
        "public_key": args.public_key,
        "job_store": args.job_store,
    });
    let outcome = report.first().map(|first| {
        format!(
            "{} finding(s), the first: {}",
            report.findings.len(),
            first.detail
        )
    });
    auditor.read_offline("verify", params, report.leaves, outcome);
    print_report(&report, &notes, args.json);
    if !report.is_clean() {
        bail!(
            "the archive does not verify: {} finding{}",
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// The public key: the file given, else the signing key's.
fn public_key(config: &Config, given: Option<&Path>) -> anyhow::Result<PublicKey> {
    if let Some(path) = given {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the public key {}", path.display()))?;
        return Ok(PublicKey::parse(&text)?);
    }
    let Some(path) = &config.ledger.signing_key else {
        bail!("no --public-key, and no [ledger] signing_key to take it from");
    };
    Ok(ArchiveKey::read(path)
        .with_context(|| format!("cannot read the archive's key {}", path.display()))?
        .public())
}

/// What storage gave back, by sequence number, where it differs from the log.
struct ReadBack {
    /// Leaves whose record is not in storage.
    missing: Vec<u64>,
    /// Leaves whose recomputed entry differs from the log's: what storage has there.
    differing: HashMap<u64, Entry>,
    /// Leaves the broker logged without a worker's digest.
    unattested: Vec<u64>,
    /// Audit leaves.
    audits: Vec<u64>,
    /// Record leaves a purge record says retention purged, whose record storage holds purged.
    purged: Vec<u64>,
}

/// What the report says beside a finding at a sequence number.
struct Notes {
    /// Leaves the broker logged without a worker's digest.
    unattested: std::collections::HashSet<u64>,
    /// Audit leaves, whose records are in the job store.
    audits: std::collections::HashSet<u64>,
    /// Record leaves retention purged (their records gone, as purge records in the log say).
    purged: u64,
}

/// Reads back the record and payloads of every leaf in `range` (an audit leaf's record from
/// the job store `conn`); a progress line on a terminal.
fn read_back(
    conn: &Connection,
    store: &SqliteStore<'_>,
    storage: &StorageClient,
    range: &std::ops::Range<u64>,
) -> anyhow::Result<ReadBack> {
    let total = bonnie_ledger::NodeReader::size(store)?;
    let progress = std::io::stderr().is_terminal();
    let mut back = ReadBack {
        missing: Vec::new(),
        differing: HashMap::new(),
        unattested: Vec::new(),
        audits: Vec::new(),
        purged: Vec::new(),
    };
    let purges = purged_by_retention(conn)?;
    // The log's entries that storage disagrees with, by record digest: a record found under
    // another leaf's id was moved there (two records swapped), not changed.
    let mut logged_digests: HashMap<Hash, Entry> = HashMap::new();
    for leaf in store.leaves() {
        let (seq, bytes) = leaf?;
        if !range.contains(&seq) {
            continue;
        }
        if progress && (seq % 1000 == 0 || seq + 1 == total) {
            eprint!("\rbonnie verify: record {} of {total}", seq + 1);
            let _ = std::io::stderr().flush();
        }
        let Ok(logged) = LeafData::decode(&bytes) else {
            // The verifier names an unreadable leaf itself.
            continue;
        };
        let found = if logged.entry.kind == LeafKind::Audit {
            back.audits.push(seq);
            recompute_audit(conn, seq)?
        } else {
            if logged.entry.record_digest == UNATTESTED {
                back.unattested.push(seq);
            }
            // A record retention purged (a purge record in the log names it with the digest
            // its leaf commits to) is as its leaf says once storage holds it purged.
            if purges.get(&logged.entry.id) == Some(&logged.entry.record_digest)
                && held_purged(storage, &logged.entry.id)?
            {
                back.purged.push(seq);
                Some(logged.entry.clone())
            } else {
                recompute(storage, &logged.entry.id)?
            }
        };
        match found {
            None => back.missing.push(seq),
            Some(found) if found == logged.entry => {}
            Some(found) => {
                logged_digests.insert(logged.entry.record_digest, logged.entry.clone());
                back.differing.insert(seq, found);
            }
        }
    }
    if progress {
        eprintln!();
    }
    for found in back.differing.values_mut() {
        if let Some(moved) = logged_digests.get(&found.record_digest)
            && moved.id != found.id
        {
            *found = moved.clone();
        }
    }
    Ok(back)
}

impl ReadBack {
    /// The recomputed leaves in sequence order: the log's own entry where storage agrees (or
    /// outside the range read), storage's where it differs, none where the record is gone.
    fn recomputed<'s>(
        self,
        store: &'s SqliteStore<'s>,
    ) -> anyhow::Result<impl Iterator<Item = LeafData> + 's> {
        let ReadBack {
            missing,
            mut differing,
            ..
        } = self;
        let missing: std::collections::HashSet<u64> = missing.into_iter().collect();
        Ok(store.leaves().filter_map(move |leaf| {
            let (seq, bytes) = leaf.ok()?;
            if missing.contains(&seq) {
                return None;
            }
            let entry = match differing.remove(&seq) {
                Some(found) => found,
                None => LeafData::decode(&bytes).ok()?.entry,
            };
            Some(LeafData { seq, entry })
        }))
    }
}

/// The record digest of every entry the job store's purge records (audit records of
/// `retention purge`) name, by job id. Each purge record is itself a leaf of the log, checked
/// with the others.
fn purged_by_retention(conn: &Connection) -> anyhow::Result<HashMap<String, Hash>> {
    let mut purged = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT record FROM audit_records ORDER BY seq")
        .context("cannot read the audit records in the job store")?;
    let rows = stmt
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .context("cannot read the audit records in the job store")?;
    for bytes in rows {
        let bytes = bytes.context("cannot read an audit record")?;
        let Ok(record) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if record["action"] != "retention purge" || record["outcome"] != "ok" {
            continue;
        }
        // Kept as canonical bytes: nested fields at their dotted paths.
        for entry in record["params.entries"].as_array().into_iter().flatten() {
            if let (Some(id), Some(digest)) = (
                entry["job_id"].as_str(),
                entry["record_digest"]
                    .as_str()
                    .and_then(bonnie_core::ledger::from_hex),
            ) {
                purged.insert(id.to_string(), digest);
            }
        }
    }
    Ok(purged)
}

/// True if storage holds job `id`'s log record purged: gone, or its tombstone.
fn held_purged(storage: &StorageClient, id: &str) -> anyhow::Result<bool> {
    let record = storage
        .get("log", id)
        .map_err(|e| anyhow::anyhow!("cannot read job {id}'s log record: {}", e.message))?;
    Ok(record.is_none_or(|r| {
        serde_json::from_str::<Value>(r.body.as_str())
            .is_ok_and(|body| bonnie_retention::plan::is_tombstone(&body))
    }))
}

/// The entry of job `id` as storage holds it: its log record's digest and the digest of each
/// payload it names as read back (a payload that is gone is left out); `None` when storage has
/// no log record for the job.
fn recompute(storage: &StorageClient, id: &str) -> anyhow::Result<Option<Entry>> {
    let Some(record) = storage
        .get("log", id)
        .map_err(|e| anyhow::anyhow!("cannot read job {id}'s log record: {}", e.message))?
    else {
        return Ok(None);
    };
    let leaf = LeafReport::of_stored(id, record.body.as_str()).map_err(anyhow::Error::msg)?;
    let (record_digest, _) = leaf.digests().map_err(anyhow::Error::msg)?;
    let mut payload_digests = Vec::new();
    for named in &leaf.payload_digests {
        // A payload storage cannot give back (gone, or damaged past reading) is not there.
        if let Ok(Some(bytes)) = storage.get_payload(named)
            && let Some(digest) = bonnie_core::ledger::from_hex(&payload::digest(&bytes))
        {
            payload_digests.push(digest);
        }
    }
    payload_digests.sort_unstable();
    payload_digests.dedup();
    Ok(Some(Entry {
        kind: bonnie_ledger::LeafKind::Record,
        id: id.to_string(),
        record_digest,
        payload_digests,
        refers_to: None,
    }))
}

/// The entry of audit leaf `seq` as the job store's audit table holds it: the digest of the
/// record's bytes, under the id they name; `None` when the table has no record there.
fn recompute_audit(conn: &Connection, seq: u64) -> anyhow::Result<Option<Entry>> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT record FROM audit_records WHERE seq = ?1",
            [seq as i64],
            |row| row.get(0),
        )
        .optional()
        .with_context(|| format!("cannot read audit record {seq} from the job store"))?;
    Ok(bytes.map(|bytes| {
        let id = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|record| record["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        Entry {
            kind: LeafKind::Audit,
            id,
            record_digest: Sha256::digest(&bytes).into(),
            payload_digests: Vec::new(),
            refers_to: None,
        }
    }))
}

fn kind_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Changed => "changed",
        FindingKind::Missing => "missing",
        FindingKind::Reordered => "reordered",
        FindingKind::TruncatedAfterCheckpoint => "truncated after a checkpoint",
        FindingKind::PayloadAltered => "payload altered",
        FindingKind::BadSignature => "bad signature",
        FindingKind::Inconsistent => "inconsistent with a checkpoint",
    }
}

fn print_report(report: &Report, notes: &Notes, json: bool) {
    let note = |seq: Option<u64>| match seq {
        Some(s) if notes.unattested.contains(&s) => {
            " (unattested: its worker reported no digest of what it stored)"
        }
        Some(s) if notes.audits.contains(&s) => " (an audit record: the job store's audit_records)",
        _ => "",
    };
    if json {
        let findings: Vec<Value> = report
            .findings
            .iter()
            .map(|f| {
                json!({
                    "kind": kind_name(f.kind),
                    "seq": f.seq,
                    "checkpoint": f.checkpoint,
                    "detail": format!("{}{}", f.detail, note(f.seq)),
                })
            })
            .collect();
        let first_bad = report.first().and_then(|f| f.seq);
        println!(
            "{}",
            json!({
                "leaves": report.leaves,
                "purged": notes.purged,
                "checkpoints": report.checkpoints,
                "verified": report.is_clean(),
                "first_bad_seq": first_bad,
                "findings": findings,
            })
        );
        return;
    }
    match report.first() {
        None => println!(
            "The log verifies: {} leaves ({} records purged by retention, as purge records in the log say), {} signed checkpoint{}.",
            report.leaves,
            notes.purged,
            report.checkpoints,
            if report.checkpoints == 1 { "" } else { "s" }
        ),
        Some(first) => {
            let at = first.seq.map_or_else(
                || "a checkpoint".to_string(),
                |s| format!("sequence number {s}"),
            );
            println!(
                "The log does not verify. First bad: {at}: {}: {}{}",
                kind_name(first.kind),
                first.detail,
                note(first.seq)
            );
            for finding in &report.findings[1..] {
                let at = finding
                    .seq
                    .map_or_else(|| "-".to_string(), |s| s.to_string());
                println!(
                    "  {at}: {}: {}{}",
                    kind_name(finding.kind),
                    finding.detail,
                    note(finding.seq)
                );
            }
        }
    }
}

/// The public key's file beside the signing key: `<key>.pub`.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    let mut name = signing_key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}
