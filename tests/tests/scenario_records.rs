//! What the archive keeps of the captured Cyrus 3.6 scenario (`examples/cyrus-3.6-scenario.jsonl`)
//! through the shipped handler set (every archive handler, the changelog and free/busy, their
//! collection commands off: no collector runs here) into SQLite is the committed golden file
//! `tests/fixtures/scenario-records/archive.json`: every log entry (its columns and record),
//! the log's message-id index, every record of every collection and the record index. A change
//! made for speed that alters what is archived fails here, by one thread, by four threads and
//! through the dealer daemon and the broker by two workers alike.
//!
//! Normalised, because they differ between two runs that archive the same thing: job ids
//! (the broker's are the dealers' random submission ids), written as `line NNN`, the scenario
//! line whose notification the job carried; times at which something was stored (a user's or
//! time zone's record is dated when it was first seen), written as `stored during the run`;
//! the log's sequence numbers, storage times and hash chain, which follow the order jobs
//! finish in.
//!
//! After a change that is meant to alter the archive, regenerate the golden file and review
//! its diff: `BONNIE_UPDATE_GOLDEN=1 cargo nextest run -p bonnie-tests --test scenario_records
//! -E 'test(one_thread)'`.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::PathBuf,
};

use bonnie_tests::{
    cluster::{Cluster, dlist_request},
    paths, process,
    worker::{ARCHIVE_HANDLERS, WorkerLab},
};
use serde_json::{Map, Value, json};

/// The handlers `etc/bonnie.toml` ships (every archive handler), with the changelog and
/// free/busy, which run without a collector when asked for nothing.
fn handlers() -> Vec<&'static str> {
    ARCHIVE_HANDLERS
        .iter()
        .chain(&["bonnie-changelog", "bonnie-freebusy"])
        .copied()
        .collect()
}

/// The settings of [`handlers`]: no collection commands, since no collector runs.
const HANDLER_CONFIG: &str =
    "[plugins.changelog]\ncollect = []\n\n[plugins.freebusy]\ncollect = []\n";

/// The value that stands for a time at which something was stored during the run.
const STORED: &str = "stored during the run";

fn golden_path() -> PathBuf {
    paths::repo_root().join("tests/fixtures/scenario-records/archive.json")
}

/// The label of scenario line `index` (from 0): `line 001` for the first, so labels sort in
/// the scenario's order.
fn line_label(index: usize) -> String {
    format!("line {:03}", index + 1)
}

/// Job id → the label of the scenario line whose notification the job's record holds (every
/// field of the notification, as Cyrus sent it, is in its record).
fn job_labels(db: &rusqlite::Connection, lines: &[String]) -> BTreeMap<String, String> {
    let notifications: Vec<Map<String, Value>> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a notification of the scenario"))
        .collect();
    let mut stmt = db.prepare("SELECT job_id, record FROM log").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    let mut labels = BTreeMap::new();
    for row in rows {
        let (job, record) = row.unwrap();
        let record: Map<String, Value> = serde_json::from_str(&record).unwrap();
        let matching: Vec<usize> = (0..notifications.len())
            .filter(|&i| {
                notifications[i]
                    .iter()
                    .all(|(field, value)| record.get(field) == Some(value))
            })
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "job {job}: its record should hold the notification of exactly one scenario line: {record:?}"
        );
        labels.insert(job, line_label(matching[0]));
    }
    labels
}

/// `value` with every job id replaced by its label and every time in `stored` (the run's
/// span, in Unix milliseconds) by [`STORED`].
fn normalised(
    value: Value,
    labels: &BTreeMap<String, String>,
    stored: &std::ops::RangeInclusive<i64>,
) -> Value {
    match value {
        Value::String(text) => Value::String(relabelled(text, labels)),
        Value::Number(n) if n.as_i64().is_some_and(|n| stored.contains(&n)) => json!(STORED),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| normalised(v, labels, stored))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (relabelled(k, labels), normalised(v, labels, stored)))
                .collect(),
        ),
        other => other,
    }
}

/// `text` with every job id in it replaced by its label (keys such as
/// `message|<folder><uid>|<job>/<folder><uid>` hold them inside).
fn relabelled(mut text: String, labels: &BTreeMap<String, String>) -> String {
    for (job, label) in labels {
        if text.contains(job.as_str()) {
            text = text.replace(job.as_str(), label);
        }
    }
    text
}

/// Everything the SQLite store at `db` holds of the scenario, normalised (see the file's
/// comment), as one JSON document.
fn archive(
    db: &rusqlite::Connection,
    lines: &[String],
    stored: std::ops::RangeInclusive<i64>,
) -> Value {
    let labels = job_labels(db, lines);
    let rows = |sql: &str| -> Vec<Vec<Value>> {
        let mut stmt = db.prepare(sql).unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |r| {
            (0..columns)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => json!(n),
                        rusqlite::types::ValueRef::Text(t) => {
                            let text = String::from_utf8_lossy(t);
                            // Bodies and records are JSON: compared as values, not as text.
                            serde_json::from_str::<Value>(&text)
                                .ok()
                                .filter(|v| v.is_object())
                                .unwrap_or_else(|| json!(text))
                        }
                        other => json!(format!("{other:?}")),
                    })
                })
                .collect()
        })
        .unwrap()
        .map(|row| normalised(Value::Array(row.unwrap()), &labels, &stored))
        .map(|row| match row {
            Value::Array(columns) => columns,
            _ => unreachable!("a row is an array"),
        })
        .collect()
    };
    let mut log = Map::new();
    for row in rows(
        "SELECT job_id, event, time_ms, user, user_id, folder_uniqueid, folder_id, text_truncated, record FROM log",
    ) {
        let names = [
            "event",
            "time_ms",
            "user",
            "user_id",
            "folder_uniqueid",
            "folder_id",
            "text_truncated",
            "record",
        ];
        let entry: Map<String, Value> = names
            .iter()
            .map(|n| n.to_string())
            .zip(row[1..].iter().cloned())
            .collect();
        log.insert(row[0].as_str().unwrap().to_string(), Value::Object(entry));
    }
    let mut records: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for row in rows("SELECT collection, key, time_ms, body FROM records") {
        records
            .entry(row[0].as_str().unwrap().to_string())
            .or_default()
            .insert(
                row[1].as_str().unwrap().to_string(),
                json!({ "time_ms": row[2], "body": row[3] }),
            );
    }
    let sorted = |sql: &str| {
        let mut all = rows(sql);
        all.sort_by_key(|row| Value::Array(row.clone()).to_string());
        all
    };
    json!({
        "log": log,
        "log_message_ids": sorted(
            "SELECT m.message_id, l.job_id FROM log_message_ids m JOIN log l ON l.seq = m.seq"
        ),
        "records": records,
        "record_index": sorted("SELECT collection, field, value, key FROM record_index"),
    })
}

/// The paths (`records/users/login:...`) at which `actual` differs from `expected`.
fn differences(expected: &Value, actual: &Value, path: &str, found: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let (a, b) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                differences(a, b, &format!("{path}/{key}"), found);
            }
        }
        (a, b) if a != b => found.push(format!("{path}:\n  golden: {a}\n  this run: {b}")),
        _ => {}
    }
}

/// Compares `actual` with the golden file, or writes it there when `BONNIE_UPDATE_GOLDEN=1`
/// and `may_update` (only the single-threaded run writes it).
fn assert_golden(actual: &Value, run: &str, may_update: bool) {
    let path = golden_path();
    if may_update && std::env::var("BONNIE_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BONNIE_UPDATE_GOLDEN=1 makes it)", path.display()));
    let golden: Value = serde_json::from_str(&text).expect("the golden file is JSON");
    let mut found = Vec::new();
    differences(&golden, actual, "", &mut found);
    assert!(
        found.is_empty(),
        "{run}: {} things archived differ from {}:\n{}",
        found.len(),
        path.display(),
        found
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The archive of the scenario replayed from a file by one worker with `threads` threads.
fn replayed_by_one_worker(threads: usize) -> Value {
    let lines = paths::scenario();
    let lab = WorkerLab::with_plugins(&handlers(), HANDLER_CONFIG);
    let config = std::fs::read_to_string(lab.config()).unwrap().replacen(
        "threads = 2",
        &format!("threads = {threads}"),
        1,
    );
    lab.write("bonnie.toml", &config);
    lab.notifications(&lines);
    let started = bonnie_core::time::now_ms();
    lab.run();
    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    archive(&db, &lines, started..=bonnie_core::time::now_ms())
}

#[test]
fn the_scenario_archived_by_one_thread_is_the_golden_archive() {
    assert_golden(&replayed_by_one_worker(1), "one thread", true);
}

#[test]
fn the_scenario_archived_by_four_threads_is_the_golden_archive() {
    assert_golden(&replayed_by_one_worker(4), "four threads", false);
}

#[test]
fn the_scenario_archived_through_the_broker_by_two_workers_is_the_golden_archive() {
    let lines = paths::scenario();
    let cluster = Cluster::new(&handlers(), HANDLER_CONFIG);
    // Four threads each and a small queue, so that both workers take part.
    let config = std::fs::read_to_string(cluster.config()).unwrap().replacen(
        "threads = 2",
        "threads = 4\nqueue_depth = 8",
        1,
    );
    std::fs::write(cluster.config(), config).unwrap();
    let started = bonnie_core::time::now_ms();
    let _broker = cluster.start_broker();
    let _daemon = cluster.start_dealer_daemon();
    // As Cyrus's notifyd sends them, one dlist request each, in Cyrus's order; they wait in
    // the broker (or the daemon's spool) until the workers start together.
    for line in &lines {
        let mut stream = UnixStream::connect(cluster.dealer_socket()).unwrap();
        stream.write_all(&dlist_request(line)).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "OK NIL\r\n", "the daemon's answer to {line}");
    }
    let _workers = cluster.start_workers(&["worker-a", "worker-b"]);
    process::wait_until("the scenario to be archived", || {
        cluster.archived() == lines.len() && cluster.idle()
    });
    let archived = archive(
        &cluster.archive(),
        &lines,
        started..=bonnie_core::time::now_ms(),
    );
    assert_golden(&archived, "two workers through the broker", false);
}
