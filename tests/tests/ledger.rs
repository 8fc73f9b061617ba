//! The verifiable log end to end, on SQLite and on Elasticsearch (es-storage on an
//! osmem-server): the captured Cyrus scenario archived by a real broker and workers, a signed
//! checkpoint, then `bonnie verify` on the untouched archive and on copies tampered with in
//! each way an operator could (a record's byte changed, a record deleted, two swapped, the log
//! truncated after a checkpoint, the tree replaced by one recomputed without the signing key),
//! each named by its kind and sequence number; the same record digests on both storages; and
//! a message delivered to a real Cyrus whose stored payload is changed by one byte.

use std::path::{Path, PathBuf};

use bonnie_ledger::{ArchiveKey, Entry, LeafData, LeafKind, SqliteStore};
use bonnie_tests::{
    cluster::Cluster,
    lab::CyrusLab,
    on_both_storages, paths, process,
    search_server::SearchServer,
    storages::{Archive, Storage},
    worker::ARCHIVE_HANDLERS,
};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// The archive's signing key, relative to the configuration.
const LEDGER: &str = "[ledger]\nsigning_key = \"var/archive.key\"\n";

/// The scenario archived on `storage` by `workers`, with a checkpoint signed after it; broker
/// and workers stopped, their SQLite stores checkpointed into their main files (so that
/// copies are whole).
fn archived(storage: Storage, workers: &[&str]) -> (Cluster, Archive) {
    let cluster = Cluster::new(&ARCHIVE_HANDLERS, LEDGER);
    let archive = cluster.use_storage(storage);
    let init = cluster.bonnie(&["ledger", "init", "--name", "archive.test/bonnie"]);
    assert!(init.status.success(), "{}", process::describe(&init));
    let broker = cluster.start_broker();
    for line in paths::scenario() {
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
    let mut stores = vec![job_store_path(&cluster)];
    if storage == Storage::Sqlite {
        stores.push(archive_path(&cluster));
    }
    for db in stores {
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    (cluster, archive)
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

/// The leaves of archived records (the log also holds audit records of admin actions).
fn record_leaves(cluster: &Cluster) -> Vec<LeafData> {
    leaves(cluster)
        .into_iter()
        .filter(|leaf| leaf.entry.kind == LeafKind::Record)
        .collect()
}

/// `bonnie verify --json`: whether it passed, and its report.
fn verify(cluster: &Cluster) -> (bool, Value) {
    verify_with(cluster, &[])
}

/// `bonnie verify --json` with more arguments.
fn verify_with(cluster: &Cluster, args: &[&str]) -> (bool, Value) {
    cluster.verify(args)
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

/// The stored event log and payloads, as an operator with access to the storage could change
/// them: the SQLite file with its guards against updates and deletes (triggers) dropped, or
/// the search server's documents.
enum Stored<'a> {
    /// The SQLite file, opened for each change and closed after it, as the tests put the file
    /// back whole in between.
    Sqlite(PathBuf),
    Search(&'a SearchServer),
}

impl<'a> Stored<'a> {
    fn of(cluster: &Cluster, archive: &'a Archive) -> Self {
        match &archive.server {
            Some(server) => Stored::Search(server),
            None => Stored::Sqlite(archive_path(cluster)),
        }
    }

    /// The log document of job `job` (on the search server: its index and source).
    fn document(server: &SearchServer, job: &str) -> (String, Value) {
        let query = json!({ "query": { "ids": { "values": [job] } } });
        let (status, found) = server.request("POST", "/logstash-*/_search", Some(&query));
        assert_eq!(status, 200, "{found}");
        let hit = &found["hits"]["hits"][0];
        let index = hit["_index"].as_str().expect("the job's log document");
        (index.to_string(), hit["_source"].clone())
    }

    /// Job `job`'s record as stored (JSON text).
    fn record(&self, job: &str) -> String {
        match self {
            Stored::Sqlite(path) => without_guards(path)
                .query_row("SELECT record FROM log WHERE job_id = ?1", [job], |r| {
                    r.get(0)
                })
                .unwrap(),
            Stored::Search(server) => Self::document(server, job).1.to_string(),
        }
    }

    fn set_record(&self, job: &str, record: &str) {
        match self {
            Stored::Sqlite(path) => change_one_row(
                path,
                "UPDATE log SET record = ?2 WHERE job_id = ?1",
                params![job, record],
            ),
            Stored::Search(server) => {
                let (index, _) = Self::document(server, job);
                let source: Value = serde_json::from_str(record).unwrap();
                let path = format!("/{index}/_doc/{job}?refresh=true");
                let (status, answer) = server.request("PUT", &path, Some(&source));
                assert_eq!(status, 200, "{answer}");
            }
        }
    }

    fn delete_record(&self, job: &str) {
        match self {
            Stored::Sqlite(path) => {
                change_one_row(path, "DELETE FROM log WHERE job_id = ?1", params![job])
            }
            Stored::Search(server) => {
                let (index, _) = Self::document(server, job);
                let path = format!("/{index}/_doc/{job}?refresh=true");
                let (status, answer) = server.request("DELETE", &path, None);
                assert_eq!(status, 200, "{answer}");
            }
        }
    }

    /// The payload kept under `digest`, decompressed.
    fn payload(&self, cluster: &Cluster, digest: &str) -> Vec<u8> {
        match self {
            Stored::Sqlite(_) => cluster.payload(digest),
            Stored::Search(server) => {
                let path = format!("/bonnie-payloads/_doc/{digest}");
                let (status, doc) = server.request("GET", &path, None);
                assert_eq!(status, 200, "{doc}");
                let body = &doc["_source"]["body"];
                let compressed =
                    bonnie_core::b64::base64(body["zstd_base64"].as_str().unwrap()).unwrap();
                let size = body["size"].as_u64().unwrap() as usize;
                bonnie_core::payload::decompress(&compressed, size).unwrap()
            }
        }
    }

    /// Replaces the bytes kept under `digest`.
    fn set_payload(&self, digest: &str, bytes: &[u8]) {
        let compressed = bonnie_core::payload::compress(bytes).unwrap();
        match self {
            Stored::Sqlite(path) => change_one_row(
                path,
                "UPDATE payloads SET data = ?2 WHERE digest = ?1",
                params![digest, compressed],
            ),
            Stored::Search(server) => {
                let path = format!("/bonnie-payloads/_doc/{digest}");
                let (_, mut doc) = server.request("GET", &path, None);
                doc["_source"]["body"]["zstd_base64"] =
                    json!(bonnie_core::b64::encode_base64(&compressed));
                let (status, answer) = server.request(
                    "PUT",
                    &format!("{path}?refresh=true"),
                    Some(&doc["_source"]),
                );
                assert_eq!(status, 200, "{answer}");
            }
        }
    }
}

/// Runs `sql` on the SQLite file at `path`, unguarded, and asserts that it changed one row.
fn change_one_row(path: &Path, sql: &str, params: impl rusqlite::Params) {
    let changed = without_guards(path).execute(sql, params).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

/// Keeps copies of the job store and the event log, to put them back after each tampering.
struct Pristine<'a> {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// On the search server: every log document, by job id.
    documents: Vec<(String, Value)>,
    stored: Stored<'a>,
}

impl<'a> Pristine<'a> {
    fn of(cluster: &Cluster, archive: &'a Archive, log: &[LeafData]) -> Self {
        let mut paths = vec![job_store_path(cluster)];
        if archive.server.is_none() {
            paths.push(archive_path(cluster));
        }
        let files = paths
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        let stored = Stored::of(cluster, archive);
        let documents = match &stored {
            Stored::Sqlite(_) => Vec::new(),
            Stored::Search(_) => log
                .iter()
                .map(|leaf| (leaf.entry.id.clone(), stored.record(&leaf.entry.id)))
                .map(|(id, record)| (id, serde_json::from_str(&record).unwrap()))
                .collect(),
        };
        Self {
            files,
            documents,
            stored,
        }
    }

    fn restore(&self) {
        for (path, bytes) in &self.files {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            std::fs::write(path, bytes).unwrap();
        }
        if let Stored::Search(server) = &self.stored {
            for (job, source) in &self.documents {
                let index = log_index(source);
                let path = format!("/{index}/_doc/{job}?refresh=true");
                let (status, answer) = server.request("PUT", &path, Some(source));
                assert!(status == 200 || status == 201, "{answer}");
            }
        }
    }
}

/// The daily index es-storage puts a log document in: that of its event's date.
fn log_index(source: &Value) -> String {
    let ms = bonnie_core::time::parse_rfc3339_ms(source["@timestamp"].as_str().unwrap()).unwrap();
    let (year, month, day) = bonnie_core::time::utc_date(ms);
    format!("logstash-{year:04}.{month:02}.{day:02}")
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
fn without_guards(path: &Path) -> Connection {
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

fn bonnie_verify_passes_an_untouched_archive_and_names_each_kind_of_tampering(storage: Storage) {
    let (cluster, archive) = archived(storage, &["worker"]);
    let records = record_leaves(&cluster);
    assert_eq!(
        records.len(),
        archive.logged_jobs(cluster.path()),
        "one leaf per archived record"
    );
    let (passed, report) = verify(&cluster);
    assert!(passed, "the untouched archive: {report}");
    assert_eq!(report["checkpoints"], 1);
    let pristine = Pristine::of(&cluster, &archive, &records);
    let (first, second) = (&records[40], &records[41]);
    let log = leaves(&cluster);
    let stored = Stored::of(&cluster, &archive);

    // One byte of a record.
    let record = stored.record(&first.entry.id);
    stored.set_record(&first.entry.id, &one_byte_changed(&record));
    assert_named(&cluster, "changed", first.seq, "a record's byte changed");
    pristine.restore();

    // A record deleted.
    stored.delete_record(&first.entry.id);
    assert_named(&cluster, "missing", first.seq, "a record deleted");
    pristine.restore();

    // Two records swapped.
    let (a, b) = (
        stored.record(&first.entry.id),
        stored.record(&second.entry.id),
    );
    stored.set_record(&first.entry.id, &b);
    stored.set_record(&second.entry.id, &a);
    assert_named(&cluster, "reordered", first.seq, "two records swapped");
    pristine.restore();

    // The log truncated after the checkpoint: its last leaves and their nodes removed.
    let keep = log.len() as u64 - 5;
    let store = without_guards(&job_store_path(&cluster));
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
    let record = one_byte_changed(&stored.record(&first.entry.id));
    stored.set_record(&first.entry.id, &record);
    let forged =
        bonnie_core::ledger::LeafReport::of_stored(&first.entry.id, &without_added(&record))
            .unwrap();
    let store = without_guards(&job_store_path(&cluster));
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

/// A stored log document's record: without the fields es-storage adds for search.
fn without_added(document: &str) -> String {
    let mut record: Value = serde_json::from_str(document).unwrap();
    for added in ["search_text", "text_truncated", "bonnie_job_id"] {
        record.as_object_mut().unwrap().remove(added);
    }
    record.to_string()
}

fn the_leaves_of_two_workers_are_one_log_in_done_order_that_verifies(storage: Storage) {
    let (cluster, archive) = archived(storage, &["worker-1", "worker-2"]);
    let records = record_leaves(&cluster);
    assert_eq!(
        records.len(),
        archive.logged_jobs(cluster.path()),
        "one leaf per archived record"
    );
    let log = leaves(&cluster);
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
fn bonnie_verify_names_a_payload_changed_by_one_byte(storage: Storage) {
    let lab = CyrusLab::start_on(storage, &[], &[JOHN]);
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
    let with_payload = record_leaves(cluster)
        .into_iter()
        .find(|leaf| !leaf.entry.payload_digests.is_empty())
        .expect("the delivery's record names its payload");
    let digest = bonnie_core::ledger::hex(&with_payload.entry.payload_digests[0]);
    let stored = Stored::of(cluster, lab.archive());
    let mut bytes = stored.payload(cluster, &digest);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    stored.set_payload(&digest, &bytes);
    assert_named_with(
        cluster,
        &args,
        "payload altered",
        with_payload.seq,
        "a payload's byte changed",
    );
}

on_both_storages!(
    bonnie_verify_passes_an_untouched_archive_and_names_each_kind_of_tampering,
    the_leaves_of_two_workers_are_one_log_in_done_order_that_verifies,
    bonnie_verify_names_a_payload_changed_by_one_byte,
);

/// What Elasticsearch hands back is one record with what SQLite keeps: the scenario archived
/// on each gives the same record digests, though SQLite keeps Cyrus's dotted field names
/// (`vnd.cmu.sessionId`) as they came and the log indices' template, which keeps
/// `search_text` out of the stored source, makes the server store them as nested objects.
#[test]
fn the_scenario_has_the_same_record_digests_on_sqlite_and_elasticsearch() {
    let digests = |cluster: &Cluster| -> Vec<([u8; 32], Vec<[u8; 32]>)> {
        let mut all: Vec<_> = record_leaves(cluster)
            .into_iter()
            .map(|leaf| (leaf.entry.record_digest, leaf.entry.payload_digests))
            .collect();
        all.sort();
        all
    };
    let (sqlite, _) = archived(Storage::Sqlite, &["worker"]);
    let (search, archive) = archived(Storage::Search, &["worker"]);
    assert_eq!(digests(&sqlite), digests(&search));

    let dotted = |record: &Value| {
        record
            .as_object()
            .unwrap()
            .keys()
            .any(|name| name.starts_with("vnd.cmu."))
    };
    let kept_dotted = sqlite.log_records().iter().filter(|r| dotted(r)).count();
    assert!(kept_dotted > 0, "SQLite keeps the dotted names");
    let server = archive.server.as_ref().expect("the search server");
    let documents: Vec<Value> = record_leaves(&search)
        .iter()
        .map(|leaf| Stored::document(server, &leaf.entry.id).1)
        .collect();
    assert!(
        documents.iter().all(|d| !dotted(d)),
        "the server hands dotted names back as objects"
    );
    let nested = documents
        .iter()
        .filter(|d| d["vnd"]["cmu"].is_object())
        .count();
    assert_eq!(nested, kept_dotted);
}
