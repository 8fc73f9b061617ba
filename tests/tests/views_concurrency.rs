//! Derived views under concurrency: the Cyrus 3.6 scenario (`examples/cyrus-3.6-scenario.jsonl`,
//! captured from a real Cyrus, late MailboxModseq of renamed folders included) replayed 20
//! times by one worker of four threads reading the file, and 20 times through a broker and two
//! workers of four threads each on one SQLite store, and 20 times by four threads into
//! Elasticsearch (osmem-server). Every time, the folders' current views and the sessions are
//! those of a single-threaded replay and of what the scenario did: deletions, renames,
//! highest modseq and uidnext.

use std::collections::BTreeMap;

use bonnie_tests::{
    cluster::Cluster,
    paths, process,
    search_server::SearchServer,
    worker::{ARCHIVE_HANDLERS, WorkerLab},
};
use serde_json::{Value, json};

const REPLAYS: usize = 20;

fn scenario() -> Vec<String> {
    let text =
        std::fs::read_to_string(paths::repo_root().join("examples/cyrus-3.6-scenario.jsonl"))
            .expect("reading the scenario");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The derived views of a store: folder views by uniqueid, sessions by id (without the ids of
/// the jobs that wrote them, which differ from run to run).
fn views(db: &rusqlite::Connection) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let collection = |name: &str| -> BTreeMap<String, Value> {
        let mut stmt = db
            .prepare("SELECT key, body FROM records WHERE collection = ?1")
            .unwrap();
        stmt.query_map([name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
        .map(|row| {
            let (key, body) = row.unwrap();
            (key, without_jobs(serde_json::from_str(&body).unwrap()))
        })
        .collect()
    };
    (collection("folders-current"), collection("sessions"))
}

/// A view without the ids of the jobs that wrote it.
fn without_jobs(mut body: Value) -> Value {
    if let Some(body) = body.as_object_mut() {
        body.remove("login_job");
        body.remove("logout_job");
    }
    body
}

/// The same views kept by es-storage.
fn views_in(server: &SearchServer) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    server.refresh();
    let collection = |name: &str| -> BTreeMap<String, Value> {
        let query = json!({ "size": 1000 });
        let (status, found) =
            server.request("POST", &format!("/bonnie-{name}/_search"), Some(&query));
        assert_eq!(status, 200, "{found}");
        found["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| {
                let key = hit["_id"].as_str().unwrap().to_string();
                (key, without_jobs(hit["_source"]["body"].clone()))
            })
            .collect()
    };
    (collection("folders-current"), collection("sessions"))
}

/// What the scenario did to each folder: path, deleted, highest modseq and uidnext, and the
/// name it was renamed from.
fn check_truth(folders: &BTreeMap<String, Value>, sessions: &BTreeMap<String, Value>, run: &str) {
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
        assert_eq!(view["path"], path, "{ctx}");
        assert_eq!(view["deleted"], deleted, "{ctx}");
        assert_eq!(view["modseq_max"], modseq, "{ctx}");
        assert_eq!(view["uidnext_max"], uidnext, "{ctx}");
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

/// The views of a replay of the scenario by one worker with `threads` threads reading it from
/// a file.
fn replay_from_file(threads: usize) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    replay_lines(&scenario(), threads)
}

/// The views of a replay of `lines` by one worker with `threads` threads reading them from a
/// file.
fn replay_lines(
    lines: &[String],
    threads: usize,
) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let lab = WorkerLab::with_plugins(&ARCHIVE_HANDLERS, "");
    let config = std::fs::read_to_string(lab.config())
        .unwrap()
        .replace("threads = 2", &format!("threads = {threads}"));
    lab.write("bonnie.toml", &config);
    lab.notifications(lines);
    lab.run();
    views(&rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap())
}

#[test]
fn views_replayed_by_four_threads_match_a_single_threaded_replay_every_time() {
    let single = replay_from_file(1);
    check_truth(&single.0, &single.1, "single-threaded");
    for run in 0..REPLAYS {
        let replay = replay_from_file(4);
        let run = format!("replay {run} with 4 threads");
        check_truth(&replay.0, &replay.1, &run);
        assert_eq!(replay, single, "{run}");
    }
}

#[test]
fn the_captured_samples_replayed_by_four_threads_give_the_views_of_one_thread() {
    // The samples of /work/shared/reference/cyrus/events, in the order Cyrus sent them: two
    // renames followed by the old name's late MailboxModseq, a delete, ACL changes.
    let lines: Vec<String> = paths::cyrus_events().into_iter().map(|(_, t)| t).collect();
    let single = replay_lines(&lines, 1);
    let renamed = single
        .0
        .values()
        .filter(|v| v.get("renamed_from").is_some())
        .count();
    assert_eq!(renamed, 2, "{:?}", single.0);
    for run in 0..REPLAYS {
        assert_eq!(
            replay_lines(&lines, 4),
            single,
            "replay {run} with 4 threads"
        );
    }
}

#[test]
fn views_replayed_through_the_broker_by_two_workers_match_every_time() {
    let single = replay_from_file(1);
    let lines = scenario();
    for run in 0..REPLAYS {
        let cluster = Cluster::new(&ARCHIVE_HANDLERS, "");
        // Four threads each, and a small queue, so that both workers take part.
        let config = std::fs::read_to_string(cluster.config())
            .unwrap()
            .replace("threads = 2", "threads = 4\nqueue_depth = 8");
        std::fs::write(cluster.config(), config).unwrap();
        let _broker = cluster.start_broker();
        // Every notification waits in the broker before the workers start together.
        for line in &lines {
            let output = cluster.deal(line.as_bytes());
            assert!(output.status.success(), "{}", process::describe(&output));
        }
        // A dealer that timed out waiting for the broker's ACK (a loaded machine) spooled its
        // notification: forward every spool.
        let flushed = cluster.flush();
        assert!(flushed.status.success(), "{}", process::describe(&flushed));
        let _workers = cluster.start_workers(&["worker-a", "worker-b"]);
        process::wait_until("the scenario to be archived", || {
            cluster.archived() == lines.len() && cluster.idle()
        });
        let replay = views(&cluster.archive());
        let run = format!("replay {run} through two workers");
        check_truth(&replay.0, &replay.1, &run);
        assert_eq!(replay, single, "{run}");
    }
}

#[test]
fn views_kept_in_elasticsearch_by_four_threads_match_every_time() {
    let single = replay_from_file(1);
    for run in 0..REPLAYS {
        let server = SearchServer::start();
        let lab = WorkerLab::new();
        for name in ARCHIVE_HANDLERS.iter().chain(&[
            "bonnie-jsonl-input",
            "bonnie-jsonl-output",
            "bonnie-es-storage",
        ]) {
            lab.add_plugin(&paths::plugin(name));
        }
        lab.write(
            "bonnie.toml",
            &format!(
                "[worker]\nplugin_dir = \"plugins\"\nthreads = 4\n\n[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\n\
                 retry_delay_ms = 10\n\n[plugins.jsonl-output]\npath = \"var/output.jsonl\"\n\n\
                 [plugins.es-storage]\nurl = \"{}\"\n",
                server.url
            ),
        );
        lab.notifications(&scenario());
        lab.run();
        let replay = views_in(&server);
        let run = format!("replay {run} into Elasticsearch with 4 threads");
        check_truth(&replay.0, &replay.1, &run);
        assert_eq!(replay, single, "{run}");
    }
}
