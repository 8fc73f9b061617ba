//! The verifiable log end to end: the captured Cyrus scenario archived by a real broker and
//! workers into SQLite, a signed checkpoint, then `bonnie verify` on the untouched archive and
//! on copies tampered with in each way an operator could (a record's byte changed, a record
//! deleted, two swapped, the log truncated after a checkpoint, the tree replaced by one
//! recomputed without the signing key), each named by its kind and sequence number; and a
//! message delivered to a real Cyrus whose stored payload is changed by one byte.

use std::path::{Path, PathBuf};

use bonnie_ledger::{ArchiveKey, Entry, LeafData, SqliteStore};
use bonnie_tests::{cluster::Cluster, lab::CyrusLab, paths, process, worker::ARCHIVE_HANDLERS};
use rusqlite::{Connection, params};
use serde_json::Value;

/// The archive's signing key, relative to the configuration.
const LEDGER: &str = "[ledger]\nsigning_key = \"var/archive.key\"\n";

fn scenario() -> Vec<String> {
    let path = paths::repo_root().join("examples/cyrus-3.6-scenario.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The scenario archived by `workers`, with a checkpoint signed after it; broker and workers
/// stopped, their stores checkpointed into their main files (so that copies are whole).
fn archived(workers: &[&str]) -> Cluster {
    let cluster = Cluster::new(&ARCHIVE_HANDLERS, LEDGER);
    let init = cluster.bonnie(&["ledger", "init", "--name", "archive.test/bonnie"]);
    assert!(init.status.success(), "{}", process::describe(&init));
    let broker = cluster.start_broker();
    for line in scenario() {
        let dealt = cluster.deal(line.as_bytes());
        assert!(dealt.status.success(), "{}", process::describe(&dealt));
    }
    let running = cluster.start_workers(workers);
    cluster.wait_until_drained();
    let checkpoint = cluster.bonnie(&["checkpoint", "--json"]);
    assert!(
        checkpoint.status.success(),
        "{}",
        process::describe(&checkpoint)
    );
    let made: Value = serde_json::from_slice(&checkpoint.stdout).unwrap();
    assert_eq!(made["size"].as_u64(), Some(leaves(&cluster).len() as u64));
    drop(running);
    drop(broker);
    for db in [archive_path(&cluster), job_store_path(&cluster)] {
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    cluster
}

fn archive_path(cluster: &Cluster) -> PathBuf {
    cluster.path().join("var/bonnie.db")
}

fn job_store_path(cluster: &Cluster) -> PathBuf {
    cluster.path().join("var/broker.db")
}

/// The log's leaves, in order.
fn leaves(cluster: &Cluster) -> Vec<LeafData> {
    let conn = cluster.job_store();
    SqliteStore::new(&conn)
        .leaves()
        .map(|leaf| LeafData::decode(&leaf.unwrap().1).unwrap())
        .collect()
}

/// `bonnie verify --json`: whether it passed, and its report.
fn verify(cluster: &Cluster) -> (bool, Value) {
    verify_with(cluster, &[])
}

/// `bonnie verify --json` with more arguments.
fn verify_with(cluster: &Cluster, args: &[&str]) -> (bool, Value) {
    let output = cluster.bonnie(&[&["verify", "--json"], args].concat());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("verify printed no JSON: {}", process::describe(&output)));
    (output.status.success(), report)
}

/// Asserts that verify fails and that its first finding is `kind` at `seq`.
fn assert_named(cluster: &Cluster, kind: &str, seq: u64, what: &str) {
    assert_named_with(cluster, &[], kind, seq, what);
}

fn assert_named_with(cluster: &Cluster, args: &[&str], kind: &str, seq: u64, what: &str) {
    let (passed, report) = verify_with(cluster, args);
    assert!(!passed, "{what}: verify passed: {report}");
    let first = &report["findings"][0];
    assert_eq!(first["kind"], kind, "{what}: {report}");
    assert_eq!(first["seq"].as_u64(), Some(seq), "{what}: {report}");
    assert_eq!(
        report["first_bad_seq"].as_u64(),
        Some(seq),
        "{what}: {report}"
    );
}

/// Keeps copies of both stores, to put them back after each tampering.
struct Pristine {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Pristine {
    fn of(cluster: &Cluster) -> Self {
        let files = [archive_path(cluster), job_store_path(cluster)]
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        Self { files }
    }

    fn restore(&self) {
        for (path, bytes) in &self.files {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            std::fs::write(path, bytes).unwrap();
        }
    }
}

fn record_of(archive: &Connection, job: &str) -> String {
    archive
        .query_row("SELECT record FROM log WHERE job_id = ?1", [job], |r| {
            r.get(0)
        })
        .unwrap()
}

fn set_record(archive: &Connection, job: &str, record: &str) {
    let changed = archive
        .execute(
            "UPDATE log SET record = ?2 WHERE job_id = ?1",
            params![job, record],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// The record with one byte changed: the first letter of its event name in the other case.
fn one_byte_changed(record: &str) -> String {
    let at = record
        .find("\"event\":\"")
        .expect("a record names its event")
        + 9;
    let mut bytes = record.as_bytes().to_vec();
    assert!(
        bytes[at].is_ascii_alphabetic(),
        "an event name starts with a letter"
    );
    bytes[at] ^= 0x20;
    String::from_utf8(bytes).unwrap()
}

/// A store opened as an operator with the file could: the archive's guards against updates
/// and deletes (triggers) dropped first.
fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for trigger in triggers {
        conn.execute_batch(&format!("DROP TRIGGER \"{trigger}\""))
            .unwrap();
    }
    conn
}

#[test]
fn bonnie_verify_passes_an_untouched_archive_and_names_each_kind_of_tampering() {
    let cluster = archived(&["worker"]);
    let log = leaves(&cluster);
    assert_eq!(
        log.len(),
        cluster.archived(),
        "one leaf per archived record"
    );
    let (passed, report) = verify(&cluster);
    assert!(passed, "the untouched archive: {report}");
    assert_eq!(report["checkpoints"], 1);
    let pristine = Pristine::of(&cluster);
    let (first, second) = (&log[40], &log[41]);

    // One byte of a record.
    let archive = open(&archive_path(&cluster));
    let record = record_of(&archive, &first.entry.id);
    set_record(&archive, &first.entry.id, &one_byte_changed(&record));
    drop(archive);
    assert_named(&cluster, "changed", first.seq, "a record's byte changed");
    pristine.restore();

    // A record deleted.
    let archive = open(&archive_path(&cluster));
    archive
        .execute("DELETE FROM log WHERE job_id = ?1", [&first.entry.id])
        .unwrap();
    drop(archive);
    assert_named(&cluster, "missing", first.seq, "a record deleted");
    pristine.restore();

    // Two records swapped.
    let archive = open(&archive_path(&cluster));
    let (a, b) = (
        record_of(&archive, &first.entry.id),
        record_of(&archive, &second.entry.id),
    );
    set_record(&archive, &first.entry.id, &b);
    set_record(&archive, &second.entry.id, &a);
    drop(archive);
    assert_named(&cluster, "reordered", first.seq, "two records swapped");
    pristine.restore();

    // The log truncated after the checkpoint: its last leaves and their nodes removed.
    let keep = log.len() as u64 - 5;
    let store = open(&job_store_path(&cluster));
    store
        .execute("DELETE FROM ledger_leaves WHERE seq >= ?1", [keep as i64])
        .unwrap();
    drop(store);
    assert_named(
        &cluster,
        "truncated after a checkpoint",
        keep,
        "the log truncated",
    );
    pristine.restore();

    // A record changed, and the tree replaced by one recomputed over it without the key: the
    // signed checkpoint's root no longer matches.
    let archive = open(&archive_path(&cluster));
    let record = one_byte_changed(&record_of(&archive, &first.entry.id));
    set_record(&archive, &first.entry.id, &record);
    drop(archive);
    let forged = bonnie_core::ledger::LeafReport::of_stored(&first.entry.id, &record).unwrap();
    let store = open(&job_store_path(&cluster));
    store
        .execute_batch("DELETE FROM ledger_leaves; DELETE FROM ledger_nodes;")
        .unwrap();
    let entries: Vec<Entry> = log
        .iter()
        .map(|leaf| match leaf.seq == first.seq {
            true => Entry {
                record_digest: forged.digests().unwrap().0,
                ..leaf.entry.clone()
            },
            false => leaf.entry.clone(),
        })
        .collect();
    bonnie_ledger::append(&mut SqliteStore::new(&store), entries).unwrap();
    drop(store);
    let (passed, report) = verify(&cluster);
    assert!(!passed, "a recomputed tree passed: {report}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["inconsistent with a checkpoint"],
        "the records match the forged tree, its root not the signed one: {report}"
    );
    pristine.restore();

    let (passed, report) = verify(&cluster);
    assert!(passed, "the archive put back: {report}");
}

#[test]
fn the_leaves_of_two_workers_are_one_log_in_done_order_that_verifies() {
    let cluster = archived(&["worker-1", "worker-2"]);
    let log = leaves(&cluster);
    assert_eq!(
        log.len(),
        cluster.archived(),
        "one leaf per archived record"
    );
    let unattested = log
        .iter()
        .filter(|leaf| leaf.entry.record_digest == [0; 32])
        .count();
    assert_eq!(unattested, 0, "every worker reported its leaves");
    let (passed, report) = verify(&cluster);
    assert!(passed, "{report}");
    assert_eq!(report["leaves"].as_u64(), Some(log.len() as u64));
}

const JOHN: &str = "john.doe@example.org";

/// A message delivered over LMTP to a real Cyrus, its payload fetched by the collector, then
/// changed by one byte in the archive: verify names the payload of that record.
#[test]
fn bonnie_verify_names_a_payload_changed_by_one_byte() {
    let lab = CyrusLab::start(&[], &[JOHN]);
    let mail = format!(
        "From: <{JOHN}>\r\nTo: <{JOHN}>\r\nSubject: kept as evidence\r\nMessage-ID: <evidence@example.org>\r\n\r\nThe body.\r\n"
    );
    lab.cyrus.lmtp(JOHN, &[JOHN], mail.as_bytes());
    lab.wait_until_archived();
    let cluster = &lab.cluster;
    // No [ledger] key: no checkpoints, the records are checked against the leaves alone.
    let key_path = cluster.path().join("verifier.key");
    let public = ArchiveKey::generate(&key_path, "verifier.test")
        .unwrap()
        .public();
    let public_path = cluster.path().join("verifier.pub");
    std::fs::write(&public_path, public.to_string()).unwrap();
    let args = ["--public-key", public_path.to_str().unwrap()];
    let (passed, report) = verify_with(cluster, &args);
    assert!(passed, "the untouched archive: {report}");
    let log = leaves(cluster);
    let with_payload = log
        .iter()
        .find(|leaf| !leaf.entry.payload_digests.is_empty())
        .expect("the delivery's record names its payload");
    let digest = bonnie_core::ledger::hex(&with_payload.entry.payload_digests[0]);
    let mut bytes = cluster.payload(&digest);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    let compressed = bonnie_core::payload::compress(&bytes).unwrap();
    let changed = open(&archive_path(cluster))
        .execute(
            "UPDATE payloads SET data = ?2 WHERE digest = ?1",
            params![digest, compressed],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_named_with(
        cluster,
        &args,
        "payload altered",
        with_payload.seq,
        "a payload's byte changed",
    );
}
