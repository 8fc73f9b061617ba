//! Derived views under concurrency: the Cyrus 3.6 scenario (`examples/cyrus-3.6-scenario.jsonl`,
//! captured from a real Cyrus, late MailboxModseq of renamed folders included) replayed 20
//! times by one worker of four threads reading the file, and 20 times through a broker and two
//! workers of four threads each on one SQLite store, and 20 times by four threads into
//! Elasticsearch (osmem-server), with every archive handler and the changelog. Every time,
//! everything the store holds is that of a single-threaded replay (every derived collection:
//! folder states, folders' current views, sessions, users, object facts and pending facts,
//! message trails; and the log's records), ids of jobs aside, and the views are what the
//! scenario did: deletions, renames, highest modseq and uidnext.

use std::collections::BTreeMap;

use bonnie_tests::{
    cluster::Cluster,
    paths, process,
    search_server::SearchServer,
    worker::{ARCHIVE_HANDLERS, WorkerLab},
};
use serde_json::{Value, json};

const REPLAYS: usize = 20;

/// The handlers of the replays: every archive handler and the changelog (its collection
/// commands off: no collector runs here).
const HANDLERS: [&str; 7] = [
    ARCHIVE_HANDLERS[0],
    ARCHIVE_HANDLERS[1],
    ARCHIVE_HANDLERS[2],
    ARCHIVE_HANDLERS[3],
    ARCHIVE_HANDLERS[4],
    ARCHIVE_HANDLERS[5],
    "bonnie-changelog",
];

/// The settings of [`HANDLERS`] beside the lab's base configuration.
const HANDLER_CONFIG: &str = "[plugins.changelog]\ncollect = []\n";

/// What a store holds, by collection and key: every keyed record's body, and the log's
/// records as collection `log` (by job). Job ids (keys, fields such as `login_job`, the
/// prefixes of facts' keys) are replaced by `line <n>`, the input line whose notification the
/// job carried, so that stores written under different job ids compare.
type Archive = BTreeMap<String, BTreeMap<String, Value>>;

/// The [`Archive`] of a log (job id, record) and keyed records (collection, key, body) made
/// from `lines`.
fn archive(
    lines: &[String],
    log: Vec<(String, Value)>,
    records: Vec<(String, String, Value)>,
) -> Archive {
    let notifications: Vec<serde_json::Map<String, Value>> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a notification of the input"))
        .collect();
    let mut jobs = BTreeMap::new();
    for (job, record) in &log {
        // A record keeps every field of its notification as Cyrus sent it (Elasticsearch
        // gives fields with dots in their names back as objects).
        let line = notifications
            .iter()
            .position(|n| {
                n.iter()
                    .filter(|(k, _)| !k.contains('.'))
                    .all(|(k, v)| record.get(k) == Some(v))
            })
            .unwrap_or_else(|| panic!("job {job}: no line of the input has record {record}"));
        jobs.insert(job.clone(), format!("line {line}"));
    }
    let relabel = |text: &str| -> String {
        for (job, line) in &jobs {
            if let Some(rest) = text.strip_prefix(job.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{line}{rest}");
            }
        }
        text.to_string()
    };
    fn walk(value: &mut Value, relabel: &dyn Fn(&str) -> String) {
        match value {
            Value::String(text) => *text = relabel(text),
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, relabel)),
            Value::Object(fields) => fields.values_mut().for_each(|v| walk(v, relabel)),
            _ => {}
        }
    }
    let mut archive = Archive::new();
    let log = log
        .into_iter()
        .map(|(job, record)| ("log".to_string(), job, record));
    for (collection, key, mut body) in log.chain(records) {
        walk(&mut body, &relabel);
        archive
            .entry(collection)
            .or_default()
            .insert(relabel(&key), body);
    }
    archive
}

/// The [`Archive`] of a SQLite store made from `lines`.
fn archive_of(db: &rusqlite::Connection, lines: &[String]) -> Archive {
    let json = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let log = db
        .prepare("SELECT job_id, record FROM log")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|row| row.map(|(job, record)| (job, json(record))).unwrap())
        .collect();
    let records = db
        .prepare("SELECT collection, key, body FROM records")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(|row| row.map(|(c, k, body)| (c, k, json(body))).unwrap())
        .collect();
    archive(lines, log, records)
}

/// The [`Archive`] of what es-storage keeps (records in `bonnie-<collection>`, the log in
/// `logstash-<day>`, its `search_text` left out: SQLite indexes text apart from the record).
fn archive_in(server: &SearchServer, lines: &[String]) -> Archive {
    server.refresh();
    let hits = |pattern: &str| -> Vec<Value> {
        let query = json!({ "size": 10000 });
        let (status, found) = server.request("POST", &format!("/{pattern}/_search"), Some(&query));
        assert_eq!(status, 200, "{found}");
        found["hits"]["hits"].as_array().unwrap().clone()
    };
    let id = |hit: &Value| hit["_id"].as_str().unwrap().to_string();
    let log = hits("logstash-*")
        .iter()
        .map(|hit| {
            let mut record = hit["_source"].clone();
            let fields = record.as_object_mut().unwrap();
            fields.remove("search_text");
            fields.remove("text_truncated");
            (id(hit), record)
        })
        .collect();
    let records = hits("bonnie-*")
        .iter()
        .filter_map(|hit| {
            let collection = hit["_index"].as_str()?.strip_prefix("bonnie-")?;
            (collection != "payloads").then(|| {
                (
                    collection.to_string(),
                    id(hit),
                    hit["_source"]["body"].clone(),
                )
            })
        })
        .collect();
    archive(lines, log, records)
}

/// The records of `collection` (none when the store holds none).
fn of<'a>(archive: &'a Archive, collection: &str) -> &'a BTreeMap<String, Value> {
    static NONE: BTreeMap<String, Value> = BTreeMap::new();
    archive.get(collection).unwrap_or(&NONE)
}

/// Fails with the first differences between two archives, collection by collection.
fn assert_same(replay: &Archive, single: &Archive, run: &str) {
    let mut differences = Vec::new();
    let collections: std::collections::BTreeSet<&String> =
        replay.keys().chain(single.keys()).collect();
    for collection in collections {
        let (a, b) = (of(replay, collection), of(single, collection));
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            if a.get(key) != b.get(key) {
                differences.push(format!(
                    "{collection}/{key}:\n  this run: {}\n  one thread: {}",
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{run}: {} records differ from a single-threaded replay:\n{}",
        differences.len(),
        differences
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// What the scenario did to each folder: path, deleted, highest modseq and uidnext, and the
/// name it was renamed from; and that every folder state is one an event told, at the time of
/// the earliest event that told it.
fn check_truth(archive: &Archive, run: &str) {
    check_truth_named(archive, run, &|name| name.to_string());
}

/// [`check_truth`] for a replay whose folders were renamed: `named` gives a folder's name
/// (a path, or the bare name a rename came from) in that replay.
fn check_truth_named(archive: &Archive, run: &str, named: &dyn Fn(&str) -> String) {
    check_states(archive, run);
    let (folders, sessions) = (of(archive, "folders-current"), of(archive, "sessions"));
    let truth = [
        (
            "wrp915vo4ftuwc6ncu10wvjw",
            "user/john.doe@example.org",
            false,
            json!(25),
            json!(8),
            Value::Null,
        ),
        (
            "mufbbk6f428zy0l2sfjtsuso",
            "user/jane.doe@example.org",
            true,
            json!(2),
            json!(2),
            Value::Null,
        ),
        (
            "umlq6xbovdfdid2o1v10vpur",
            "user/john.doe/Calendar@example.org",
            false,
            json!(9),
            json!(2),
            Value::Null,
        ),
        (
            "r92wbyxr9mm06mxxqia4q893",
            "user/john.doe/Archive2@example.org",
            false,
            json!(4),
            json!(3),
            json!("Archive"),
        ),
        (
            "ay1a5rd12rf901bgnxt13cb8",
            "user/john.doe/Trash@example.org",
            false,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        (
            "qug85lfy3hpi65jilnfv4j7f",
            "user/john.doe/Junk@example.org",
            false,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        (
            "i5zjkdmh24n74587l3bkqq7v",
            "user/john.doe/Tmp2@example.org",
            true,
            Value::Null,
            Value::Null,
            json!("Tmp"),
        ),
        (
            "ufhlnvbv3o4w6ht7jew22v5h",
            "user/john.doe/Expire@example.org",
            false,
            json!(4),
            json!(2),
            Value::Null,
        ),
    ];
    assert_eq!(folders.len(), truth.len(), "{run}: {:?}", folders.keys());
    for (uniqueid, path, deleted, modseq, uidnext, renamed_from) in truth {
        let view = &folders[uniqueid];
        let ctx = format!("{run}: {uniqueid}: {view}");
        assert_eq!(view["path"], named(path).as_str(), "{ctx}");
        assert_eq!(view["deleted"], deleted, "{ctx}");
        assert_eq!(view["modseq_max"], modseq, "{ctx}");
        assert_eq!(view["uidnext_max"], uidnext, "{ctx}");
        let renamed_from = renamed_from
            .as_str()
            .map_or(Value::Null, |n| json!(named(n)));
        assert_eq!(
            view.get("renamed_from").cloned().unwrap_or(Value::Null),
            renamed_from,
            "{ctx}"
        );
    }
    assert_eq!(
        folders["umlq6xbovdfdid2o1v10vpur"]["acl"]["jane.doe@example.org"], "lrs",
        "{run}: the last SETACL"
    );
    assert_eq!(sessions.len(), 8, "{run}: one per Login");
    for (suffix, duration) in [
        ("18849-1-733595124588318753", 40.181),
        ("12648039356648362750", 2.634),
        ("18036418835763018091", 1.911),
        ("16510651734208348324", 57.786),
    ] {
        let (_, session) = sessions
            .iter()
            .find(|(id, _)| id.ends_with(suffix))
            .unwrap_or_else(|| panic!("{run}: no session {suffix}"));
        assert_eq!(session["duration"], duration, "{run}: {session}");
    }
}

/// Every folder state is named by a record of the log (an event told it; a view mints none),
/// and its time is the earliest of theirs; a record of an event that tells no ACL (a
/// MailboxSubscribe) names its folder by uniqueid only.
fn check_states(archive: &Archive, run: &str) {
    let log = of(archive, "log");
    for (folder_id, state) in of(archive, "folders") {
        let told: Vec<&str> = log
            .values()
            .filter(|r| r["folder_id"] == folder_id.as_str())
            .filter_map(|r| r["@timestamp"].as_str())
            .collect();
        let earliest = told.iter().min();
        assert!(earliest.is_some(), "{run}: no event told state {state}");
        assert_eq!(
            state["@timestamp"].as_str(),
            earliest.copied(),
            "{run}: the time of state {state}"
        );
    }
    for record in log.values() {
        let tells_acl = record.get("mailbox_acl").is_some() || record.get("acl").is_some();
        if record.get("folder").is_some() {
            assert_eq!(
                record.get("folder_id").is_some(),
                tells_acl,
                "{run}: a record names a folder state only if its event told it: {record}"
            );
        }
    }
}

/// The archive of a replay of the scenario by one worker with `threads` threads reading it
/// from a file.
fn replay_from_file(threads: usize) -> Archive {
    replay_lines(&paths::scenario(), threads)
}

/// The archive of a replay of `lines` by one worker with `threads` threads reading them from
/// a file.
fn replay_lines(lines: &[String], threads: usize) -> Archive {
    replay_lines_by(lines, threads, false)
}

/// The same by a worker that is its storage's sole writer (`sole`), holding its record writes
/// until each batch is logged, as the package runs it.
fn replay_lines_by(lines: &[String], threads: usize, sole: bool) -> Archive {
    let lab = WorkerLab::with_plugins(&HANDLERS, HANDLER_CONFIG);
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "threads = 2",
        &format!("threads = {threads}\nsole_writer = {sole}"),
    );
    lab.write("bonnie.toml", &config);
    lab.notifications(lines);
    lab.run();
    archive_of(
        &rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap(),
        lines,
    )
}

/// The archive of `lines` dealt to a broker and archived by two workers of four threads each.
fn replay_through_two_workers(lines: &[String]) -> Archive {
    replay_through_workers(lines, &["worker-a", "worker-b"])
}

/// The archive of `lines` dealt to a broker and archived by `workers` of four threads each;
/// one worker alone is its storage's sole writer, as the package runs it.
fn replay_through_workers(lines: &[String], workers: &[&str]) -> Archive {
    let cluster = Cluster::new(&HANDLERS, HANDLER_CONFIG);
    // Four threads each, and a small queue, so that every worker takes part.
    let sole = workers.len() == 1;
    let config = std::fs::read_to_string(cluster.config()).unwrap().replace(
        "threads = 2",
        &format!("threads = 4\nqueue_depth = 8\nsole_writer = {sole}"),
    );
    std::fs::write(cluster.config(), config).unwrap();
    let _broker = cluster.start_broker();
    // Every notification waits in the broker before the workers start together.
    for line in lines {
        let output = cluster.deal(line.as_bytes());
        assert!(output.status.success(), "{}", process::describe(&output));
    }
    // A dealer that timed out waiting for the broker's ACK (a loaded machine) spooled its
    // notification: forward every spool.
    let flushed = cluster.flush();
    assert!(flushed.status.success(), "{}", process::describe(&flushed));
    let _workers = cluster.start_workers(workers);
    process::wait_until("the scenario to be archived", || {
        cluster.archived() == lines.len() && cluster.idle()
    });
    archive_of(&cluster.archive(), lines)
}

#[test]
fn views_replayed_by_four_threads_match_a_single_threaded_replay_every_time() {
    let single = replay_from_file(1);
    check_truth(&single, "single-threaded");
    for run in 0..REPLAYS {
        let replay = replay_from_file(4);
        let run = format!("replay {run} with 4 threads");
        check_truth(&replay, &run);
        assert_same(&replay, &single, &run);
    }
}

#[test]
fn the_captured_samples_replayed_by_four_threads_give_the_views_of_one_thread() {
    // The samples of /work/shared/reference/cyrus/events, in the order Cyrus sent them: two
    // renames followed by the old name's late MailboxModseq, a delete, ACL changes.
    let lines: Vec<String> = paths::cyrus_events().into_iter().map(|(_, t)| t).collect();
    let single = replay_lines(&lines, 1);
    check_states(&single, "single-threaded");
    let renamed = of(&single, "folders-current")
        .values()
        .filter(|v| v.get("renamed_from").is_some())
        .count();
    assert_eq!(renamed, 2, "{:?}", single["folders-current"]);
    for run in 0..REPLAYS {
        let replay = replay_lines(&lines, 4);
        let run = format!("replay {run} with 4 threads");
        check_states(&replay, &run);
        assert_same(&replay, &single, &run);
    }
}

#[test]
fn views_replayed_through_the_broker_by_two_workers_match_every_time() {
    let single = replay_from_file(1);
    let lines = paths::scenario();
    for run in 0..REPLAYS {
        let replay = replay_through_two_workers(&lines);
        let run = format!("replay {run} through two workers");
        check_truth(&replay, &run);
        assert_same(&replay, &single, &run);
    }
}

#[test]
fn views_replayed_by_a_sole_worker_holding_its_writes_match_every_time() {
    // Read from a file by one worker of four threads, and through the broker by one worker
    // of four threads: each its storage's sole writer, whose views and sessions live in
    // memory between two logged batches.
    let single = replay_from_file(1);
    let lines = paths::scenario();
    for run in 0..REPLAYS / 2 {
        let replay = replay_lines_by(&lines, 4, true);
        let run = format!("replay {run} with 4 threads of a sole worker");
        check_truth(&replay, &run);
        assert_same(&replay, &single, &run);
    }
    for run in 0..REPLAYS / 2 {
        let replay = replay_through_workers(&lines, &["worker-sole"]);
        let run = format!("replay {run} through the broker by a sole worker");
        check_truth(&replay, &run);
        assert_same(&replay, &single, &run);
    }
}

/// The scenario's folders under other names, in Cyrillic, Greek, Japanese and German.
const TRANSLATED: [(&str, &str); 4] = [
    ("Archive", "Архив"),
    ("Calendar", "Kalender-Büro"),
    ("Tmp", "日本語"),
    ("Expire", "Λήξη"),
];

/// A folder path or bare name of the scenario as [`TRANSLATED`] names it.
fn translated(name: &str) -> String {
    TRANSLATED
        .iter()
        .fold(name.to_string(), |name, (from, to)| {
            if name == *from {
                to.to_string()
            } else {
                name.replace(&format!("/{from}"), &format!("/{to}"))
            }
        })
}

/// The scenario with its folders renamed as [`TRANSLATED`] says, their names in its IMAP URLs
/// percent-encoded UTF-8 as Cyrus writes them.
fn translated_scenario() -> Vec<String> {
    let encoded = |name: &str| -> String {
        name.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    paths::scenario()
        .into_iter()
        .map(|line| {
            TRANSLATED.iter().fold(line, |line, (from, to)| {
                ["%40", "2%40"].iter().fold(line, |line, tail| {
                    line.replace(
                        &format!("/{from}{tail}"),
                        &format!("/{}{tail}", encoded(to)),
                    )
                })
            })
        })
        .collect()
}

#[test]
fn folders_named_in_any_language_give_the_same_views_with_four_threads_and_two_workers() {
    let lines = translated_scenario();
    assert_ne!(
        lines,
        paths::scenario(),
        "the scenario has folders to rename"
    );
    let single = replay_lines(&lines, 1);
    check_truth_named(&single, "single-threaded", &translated);
    for run in 0..REPLAYS / 4 {
        let replay = replay_lines(&lines, 4);
        let run = format!("replay {run} with 4 threads");
        check_truth_named(&replay, &run, &translated);
        assert_same(&replay, &single, &run);
    }
    for run in 0..REPLAYS / 4 {
        let replay = replay_through_two_workers(&lines);
        let run = format!("replay {run} through two workers");
        check_truth_named(&replay, &run, &translated);
        assert_same(&replay, &single, &run);
    }
}

#[test]
fn views_kept_in_elasticsearch_by_four_threads_match_every_time() {
    let lines = paths::scenario();
    let replay_into_elasticsearch = |threads: usize| {
        let server = SearchServer::start();
        let lab = WorkerLab::on_elasticsearch(
            &server.url,
            &HANDLERS,
            &format!("threads = {threads}"),
            "",
            HANDLER_CONFIG,
        );
        lab.notifications(&lines);
        lab.run();
        archive_in(&server, &lines)
    };
    // Elasticsearch gives the log's records back with fields named with dots as objects: its
    // log is compared with its own single-threaded replay, the rest with SQLite's.
    let without_log = |archive: &Archive| {
        let mut archive = archive.clone();
        archive.remove("log");
        archive
    };
    let single = replay_into_elasticsearch(1);
    assert_same(
        &without_log(&single),
        &without_log(&replay_from_file(1)),
        "single-threaded into Elasticsearch",
    );
    for run in 0..REPLAYS {
        let replay = replay_into_elasticsearch(4);
        let run = format!("replay {run} into Elasticsearch with 4 threads");
        check_truth(&replay, &run);
        assert_same(&replay, &single, &run);
    }
}
