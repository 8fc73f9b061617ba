//! The event log and records in an Elasticsearch-compatible server (osmem-server, started by
//! the harness; or a real Elasticsearch 8 with BONNIE_TEST_ES_URL, opt-in): daily indices by
//! event date with the template's mappings, refused documents in the dead-letter store with
//! the server's reason, 429 answers retried, one document per job however often it is
//! delivered, es-storage keeping users, folders and sessions, and a server killed in the
//! middle of a run: no job done whose document it did not accept, all of them in once a
//! fresh one is back; es-storage's queries paging past a page in SQLite's order; and the
//! scenario replayed from two folders a day apart kept once.

use std::collections::{HashMap, HashSet};

use bonnie_tests::{
    paths, process,
    search_server::SearchServer,
    worker::{WorkerLab, read_json_lines},
};
use serde_json::{Value, json};

const HANDLERS: [&str; 4] = [
    "bonnie-sessions",
    "bonnie-mailboxes",
    "bonnie-messages",
    "bonnie-messageappend",
];

fn lab_with_es_output(server: &SearchServer, extra: &str) -> WorkerLab {
    let mut plugins = HANDLERS.to_vec();
    plugins.push("bonnie-es-output");
    WorkerLab::with_plugins(
        &plugins,
        &format!(
            "[plugins.es-output]\nurl = \"{}\"\ndead_letter = \"var/es-dead-letter.jsonl\"\nretries = 1\n{extra}",
            server.url
        ),
    )
}

/// The full job id of the JSON-lines input's line `line`.
fn job_id(lab: &WorkerLab, line: usize) -> String {
    lab.outcome(&format!("in.jsonl:{line}"))["job"]
        .as_str()
        .unwrap()
        .to_string()
}

fn moved_to(event: &str, timestamp: &str) -> String {
    let mut value: Value = serde_json::from_str(&paths::cyrus_event(event)).unwrap();
    value["timestamp"] = json!(timestamp);
    value.to_string()
}

/// A notification whose raw `uid` field the template's `long` mapping refuses.
fn refused_notification() -> String {
    json!({ "event": "MessageRead", "timestamp": "2026-11-28T17:20:00.000Z", "user": "john.doe@example.org", "uid": "not-a-number" })
        .to_string()
}

fn check_daily_indices_template_and_dead_letters(server: &SearchServer) {
    let lab = lab_with_es_output(server, "");
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        moved_to("MessageAppend-1.json", "2026-11-27T08:00:00.000Z"),
        refused_notification(),
        paths::cyrus_event("FlagsSet-2.json"),
    ]);
    lab.run();
    server.refresh();

    // Each event in the index of its own date.
    let login = job_id(&lab, 1);
    let (status, doc) = server.request("GET", &format!("/logstash-2026.11.28/_doc/{login}"), None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_source"]["event"], "Login");
    assert_eq!(doc["_source"]["@timestamp"], "2026-11-28T17:13:21.544Z");
    let append = job_id(&lab, 2);
    let (status, doc) = server.request("GET", &format!("/logstash-2026.11.27/_doc/{append}"), None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_source"]["subject"], "plain test 1");
    let flags = job_id(&lab, 4);
    assert_eq!(
        server
            .request("GET", &format!("/logstash-2026.11.28/_doc/{flags}"), None)
            .0,
        200
    );

    // The template's mappings apply.
    let (_, mapping) = server.request("GET", "/logstash-2026.11.28/_mapping", None);
    let properties = &mapping["logstash-2026.11.28"]["mappings"]["properties"];
    assert_eq!(properties["@timestamp"]["type"], "date", "{properties}");
    assert_eq!(properties["uids"]["type"], "long");
    assert_eq!(properties["folder_id"]["type"], "keyword");
    assert_eq!(properties["subject"]["type"], "text");
    assert_eq!(properties["mailbox_acl"]["enabled"], false);
    // And make the events searchable by their fields.
    let query = json!({ "query": { "bool": { "filter": [
        { "term": { "flags": "$Important" } },
        { "range": { "@timestamp": { "gte": "2026-11-28T00:00:00Z", "lt": "2026-11-29T00:00:00Z" } } }
    ] } } });
    let (_, found) = server.request("POST", "/logstash-*/_search", Some(&query));
    assert_eq!(found["hits"]["hits"][0]["_id"], flags, "{found}");

    // The refused document is in the dead-letter store with the server's reason; the others
    // of its batch were stored.
    let refused = job_id(&lab, 3);
    let dead = read_json_lines(&lab.path().join("var/es-dead-letter.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["job_id"], refused);
    assert_eq!(dead[0]["error"]["type"], "mapper_parsing_exception");
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("[uid]"),
        "{}",
        dead[0]
    );
    assert_eq!(dead[0]["record"]["uid"], "not-a-number");
    assert_eq!(
        server
            .request("GET", &format!("/logstash-2026.11.28/_doc/{refused}"), None)
            .0,
        404
    );
    assert_eq!(lab.outcome("in.jsonl:3")["outcome"], "rejected");
    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
}

#[test]
fn es_output_writes_daily_indices_with_the_template_and_dead_letters_what_is_refused() {
    check_daily_indices_template_and_dead_letters(&SearchServer::start());
}

#[test]
#[ignore = "opt-in: needs a real Elasticsearch 8; run with BONNIE_TEST_ES_URL=http://HOST:9200 cargo nextest run --run-ignored only -E 'test(real_elasticsearch)'"]
fn real_elasticsearch_8_takes_the_same_writes() {
    check_daily_indices_template_and_dead_letters(&SearchServer::external());
}

#[test]
fn the_same_job_delivered_twice_is_one_document_and_one_row() {
    let server = SearchServer::start();
    let lab = lab_with_es_output(&server, "");
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        paths::cyrus_event("MessageAppend-1.json"),
    ]);
    lab.run();
    // Forget the journal: both jobs are delivered again.
    std::fs::remove_file(lab.path().join("var/jsonl-input/outcomes.jsonl")).unwrap();
    lab.run();
    server.refresh();
    for line in [1, 2] {
        let id = job_id(&lab, line);
        let (status, doc) = server.request("GET", &format!("/logstash-2026.11.28/_doc/{id}"), None);
        assert_eq!(status, 200);
        assert_eq!(doc["_version"], 1, "created once, never overwritten: {doc}");
    }
    let (_, count) = server.request("GET", "/logstash-2026.11.28/_count", None);
    assert_eq!(count["count"], 2);
    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn documents_answered_429_are_retried_and_the_job_postponed_until_accepted() {
    let server = SearchServer::start();
    // The index exists and refuses writes with 429 (a flood-stage block).
    server.request("PUT", "/logstash-2026.11.28", None);
    let block = json!({ "index.blocks.read_only_allow_delete": true });
    assert_eq!(
        server
            .request("PUT", "/logstash-2026.11.28/_settings", Some(&block))
            .0,
        200
    );
    let lab = lab_with_es_output(&server, "");
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "retry_delay_ms = 10",
        "retry_delay_ms = 10\nmax_attempts = 2",
    );
    lab.write("bonnie.toml", &config);
    lab.notifications(&[paths::cyrus_event("Login-2.json")]);
    lab.run();
    let outcomes = lab.outcomes_of("in.jsonl:1");
    assert_eq!(outcomes[0]["outcome"], "postponed", "{outcomes:?}");
    assert!(
        outcomes[0]["reason"].as_str().unwrap().contains("429"),
        "{outcomes:?}"
    );
    assert!(
        read_json_lines(&lab.path().join("var/es-dead-letter.jsonl")).is_empty(),
        "429 is not a refusal"
    );

    // The block lifts; the job runs again and is accepted.
    let unblock = json!({ "index.blocks.read_only_allow_delete": null });
    server.request("PUT", "/logstash-2026.11.28/_settings", Some(&unblock));
    std::fs::remove_file(lab.path().join("var/jsonl-input/outcomes.jsonl")).unwrap();
    lab.run();
    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
    server.refresh();
    let id = job_id(&lab, 1);
    assert_eq!(
        server
            .request("GET", &format!("/logstash-2026.11.28/_doc/{id}"), None)
            .0,
        200
    );
}

/// The ids of every event-log document the server holds, once what it took settles.
fn stored_ids(server: &SearchServer) -> HashSet<String> {
    let query = json!({ "size": 10000, "_source": false, "query": { "match_all": {} } });
    let mut last: Option<HashSet<String>> = None;
    loop {
        server.refresh();
        let (status, found) = server.request("POST", "/logstash-*/_search", Some(&query));
        assert_eq!(status, 200, "{found}");
        let ids: HashSet<String> = found["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["_id"].as_str().unwrap().to_string())
            .collect();
        if last.as_ref() == Some(&ids) {
            return ids;
        }
        last = Some(ids);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn with_the_server_killed_mid_run_no_job_is_done_unaccepted_and_every_document_arrives_once_it_is_back()
 {
    const JOBS: usize = 3000;
    let mut server = SearchServer::start();
    let lab = lab_with_es_output(&server, "bulk_docs = 10\ntimeout_ms = 5000\n");
    // Postponed jobs come back every 50 ms, as often as it takes.
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "retry_delay_ms = 10",
        "retry_delay_ms = 50\nmax_attempts = 1000000",
    );
    lab.write("bonnie.toml", &config);
    let events = [
        "Login-2.json",
        "MessageAppend-1.json",
        "FlagsSet-2.json",
        "Logout-2.json",
    ];
    let lines: Vec<String> = (0..JOBS)
        .map(|n| paths::cyrus_event(events[n % events.len()]))
        .collect();
    lab.notifications(&lines);
    let worker = lab.spawn();
    process::wait_until("the first documents", || {
        server.refresh();
        server.request("GET", "/logstash-*/_count", None).1["count"]
            .as_u64()
            .is_some_and(|n| n >= 100)
    });

    // osmem-server keeps nothing on disk: hold the worker still to see what the server
    // accepted before it dies, then kill it while the worker goes on.
    worker.signal("STOP");
    let accepted_before = stored_ids(&server);
    server.kill();
    worker.signal("CONT");
    // (The sessions handler postpones a Logout that overtook its Login: not that.)
    process::wait_until(
        "es-output to postpone jobs while the server is away",
        || {
            lab.outcomes().iter().any(|o| {
                o["outcome"] == "postponed"
                    && o["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("es-output"))
            })
        },
    );
    server.start_again();
    lab.wait_ok(worker);
    assert!(
        accepted_before.len() < JOBS,
        "the server was killed after every document was in: kill it earlier"
    );

    let accepted_after = stored_ids(&server);
    // The last outcome of each job, by `in.jsonl:LINE`.
    let mut last: HashMap<String, Value> = HashMap::new();
    for outcome in lab.outcomes() {
        let job = outcome["job"].as_str().unwrap();
        let line = job.rsplit_once(':').unwrap().0.to_string();
        last.insert(line, outcome);
    }
    for line in 1..=JOBS {
        let outcome = &last[&format!("in.jsonl:{line}")];
        assert_eq!(outcome["outcome"], "done", "every job arrives: {outcome}");
        let id = outcome["job"].as_str().unwrap();
        assert!(
            accepted_before.contains(id) || accepted_after.contains(id),
            "job {id} is done, but no server accepted its document"
        );
    }
    assert!(
        accepted_after.len() >= JOBS - accepted_before.len(),
        "every document the dead server took with it was written again"
    );
    // The fresh server got the templates again before the first write.
    let (_, mapping) = server.request("GET", "/logstash-2026.11.28/_mapping", None);
    let properties = &mapping["logstash-2026.11.28"]["mappings"]["properties"];
    assert_eq!(
        properties["folder_id"]["type"], "keyword",
        "{}",
        properties["folder_id"]
    );
}

#[test]
fn es_storage_keeps_users_folders_sessions_and_the_log() {
    let server = SearchServer::start();
    let lab = WorkerLab::on_elasticsearch(&server.url, &HANDLERS, "threads = 1", "", "");
    lab.notifications(&[
        paths::cyrus_event("Login-2.json"),
        paths::cyrus_event("MailboxCreate-3.json"),
        paths::cyrus_event("AclChange-1.json"),
        paths::cyrus_event("Logout-2.json"),
    ]);
    lab.run();
    server.refresh();

    let session = "cyrus-lab.example.org-1795886001-18849-1-733595124588318753";
    let (status, doc) = server.request("GET", &format!("/bonnie-sessions/_doc/{session}"), None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_source"]["body"]["duration"], 40.181);
    let (status, user) =
        server.request("GET", "/bonnie-users/_doc/login:john.doe@example.org", None);
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        user["_source"]["terms"],
        json!(["login=john.doe@example.org"])
    );
    let query = json!({ "query": { "term": { "terms": "uniqueid=umlq6xbovdfdid2o1v10vpur" } } });
    let (_, folders) = server.request("POST", "/bonnie-folders/_search", Some(&query));
    assert_eq!(
        folders["hits"]["total"]["value"], 2,
        "two states of the Calendar folder: {folders}"
    );
    let logout = job_id(&lab, 4);
    let (status, log) = server.request("GET", &format!("/logstash-2026.11.28/_doc/{logout}"), None);
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["_source"]["duration"], 40.181);
}

#[test]
fn es_storage_keeps_each_payload_once_by_digest() {
    let server = SearchServer::start();
    let lab = WorkerLab::on_elasticsearch(&server.url, &["bonnie-messageappend"], "", "", "");
    let message =
        "From: Jane Doe <jane.doe@example.org>\r\nSubject: kept once\r\n\r\nGr\u{fc}\u{df}e\r\n";
    let digest = bonnie_core::payload::digest(message.as_bytes());
    // As the collector leaves them: the same message appended to two folders.
    let appended = |folder: &str, uid: u64| {
        let mut n: Value =
            serde_json::from_str(&paths::cyrus_event("MessageAppend-1.json")).unwrap();
        n["uri"] = json!(format!(
            "imap://cyrus-lab.example.org/user/john.doe/{folder}%40example.org;UIDVALIDITY=7/;UID={uid}"
        ));
        n["messageContent"] = json!({ uid.to_string(): { "encoding": "utf-8", "data": message, "size": message.len(), "digest": digest } });
        n.to_string()
    };
    lab.notifications(&[appended("Archive", 3), appended("Trash", 9)]);
    lab.run();
    for line in [1, 2] {
        let record = lab.record(&format!("in.jsonl:{line}"));
        assert_eq!(record["payload_digest"], digest.as_str());
        assert!(
            record.get("messageContent").is_none(),
            "the payload left the record"
        );
    }
    let (status, doc) = server.request("GET", &format!("/bonnie-payloads/_doc/{digest}"), None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_version"], 1, "kept once");
    assert_eq!(doc["_source"]["body"]["size"], message.len());
    let compressed =
        bonnie_core::b64::base64(doc["_source"]["body"]["zstd_base64"].as_str().unwrap()).unwrap();
    assert_eq!(
        bonnie_core::payload::decompress(&compressed, message.len()).unwrap(),
        message.as_bytes()
    );
}

/// Writes the scenario (every captured Cyrus sample, and a MessageRead without a timestamp
/// before and after the first Login) to `<folder>/events.jsonl`; the number of lines.
fn write_scenario(lab: &WorkerLab, folder: &str) -> usize {
    let mut lines: Vec<String> = bonnie_tests::paths::cyrus_events()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let mut untimed: Value =
        serde_json::from_str(&paths::cyrus_event("MessageRead-1.json")).unwrap();
    untimed.as_object_mut().unwrap().remove("timestamp");
    lines.insert(1, untimed.to_string());
    untimed["vnd.cmu.sessionId"] = json!("before-any-timestamp");
    lines.insert(0, untimed.to_string());
    lab.write(
        &format!("{folder}/events.jsonl"),
        &(lines.join("\n") + "\n"),
    );
    lines.len()
}

/// Points the JSON-lines input at `<folder>/events.jsonl` with a journal of its own, so the
/// run knows nothing of the other folder's.
fn replay_from(lab: &WorkerLab, server: &SearchServer, folder: &str) {
    let config = bonnie_tests::worker::BASE_CONFIG.replace(
        "files = [\"in.jsonl\"]",
        &format!("files = [\"{folder}/events.jsonl\"]\njournal = \"var/{folder}-journal.jsonl\""),
    );
    lab.write(
        "bonnie.toml",
        &format!(
            "{config}\n[plugins.es-output]\nurl = \"{}\"\ndead_letter = \"var/es-dead-letter.jsonl\"\n",
            server.url
        ),
    );
    lab.run();
}

#[test]
fn the_scenario_replayed_from_two_folders_a_day_apart_is_one_copy_in_elasticsearch_and_sqlite() {
    let server = SearchServer::start();
    let mut plugins = bonnie_tests::worker::ARCHIVE_HANDLERS.to_vec();
    plugins.push("bonnie-es-output");
    let lab = WorkerLab::with_plugins(&plugins, "");
    let lines = write_scenario(&lab, "first");
    assert_eq!(write_scenario(&lab, "second"), lines);
    replay_from(&lab, &server, "first");
    replay_from(&lab, &server, "second");
    server.refresh();

    let (status, count) = server.request("GET", "/logstash-*/_count", None);
    assert_eq!(status, 200, "{count}");
    assert_eq!(count["count"], lines, "one document per line: {count}");
    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, lines, "one row per line");
    // A notification without a timestamp has the time of the one before it in the file (at
    // the head of the file: of the first one after it), the same on every replay whatever day
    // it runs: not the day it was processed.
    let query = json!({ "query": { "term": { "timestamp_missing": true } } });
    let (_, found) = server.request("POST", "/logstash-*/_search", Some(&query));
    let hits = found["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{found}");
    let login: Value = serde_json::from_str(&bonnie_tests::paths::cyrus_events()[0].1).unwrap();
    let login_ms = bonnie_core::time::parse_rfc3339_ms(login["timestamp"].as_str().unwrap());
    let (year, month, day) = bonnie_core::time::utc_date(login_ms.unwrap());
    for hit in hits {
        let untimed_ms =
            bonnie_core::time::parse_rfc3339_ms(hit["_source"]["@timestamp"].as_str().unwrap());
        assert_eq!(untimed_ms, login_ms, "{hit}");
        assert_eq!(
            hit["_index"],
            format!("logstash-{year:04}.{month:02}.{day:02}")
        );
    }
}

#[test]
fn es_storage_pages_through_every_match_in_order_past_a_page() {
    use bonnie_plugin_api::{Record, RecordQuery};
    let server = SearchServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Pages of 3 records: 10 matches take four pages, with records without a time among them.
    let settings: bonnie_es::Settings =
        serde_json::from_value(json!({ "url": server.url, "page_size": 3 })).unwrap();
    let es = bonnie_es::Es::new(settings, &dir.path().join("dead-letter.jsonl")).unwrap();
    for n in 0..10i64 {
        let mut record =
            Record::new("paged", &format!("k{n:02}"), &json!({ "n": n })).indexed("group", "all");
        if n % 4 != 0 {
            record = record.at(1_000 + (n % 3));
        }
        es.put_record(&record).unwrap();
    }
    es.put_record(&Record::new("paged", "other", &json!({})).indexed("group", "none"))
        .unwrap();
    let keys = |query: RecordQuery| -> Vec<String> {
        es.query_records(&query)
            .unwrap()
            .iter()
            .map(|r| r.key.to_string())
            .collect()
    };
    let all = RecordQuery::all_with("paged", "group", "all");
    // As SQLite orders them: no time first, then by time, then by key.
    let ascending = [
        "k00", "k04", "k08", "k03", "k06", "k09", "k01", "k07", "k02", "k05",
    ];
    assert_eq!(keys(all.clone()), ascending);
    let mut descending: Vec<&str> = ascending.to_vec();
    descending.reverse();
    assert_eq!(
        keys(RecordQuery {
            descending: true,
            ..all.clone()
        }),
        descending
    );
    assert_eq!(
        keys(RecordQuery {
            all: false,
            limit: 5,
            ..all.clone()
        }),
        ascending[..5]
    );
    // Keys only: the same keys through the same pages, without the documents.
    let keys_only = RecordQuery {
        keys_only: true,
        ..all
    };
    let found = es.query_records(&keys_only).unwrap();
    let found_keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(found_keys, ascending);
    assert!(
        found.iter().all(|r| r.body == "null" && r.index.is_empty()),
        "{found:?}"
    );
}

#[test]
fn records_written_in_bulk_read_back_as_one_put_each_leaves_them_and_replace_them() {
    use bonnie_plugin_api::{Record, RecordQuery};
    let server = SearchServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Requests of 7 documents, 3 in flight: 250 records take 36 requests in several rounds.
    let settings: bonnie_es::Settings = serde_json::from_value(
        json!({ "url": server.url, "bulk_docs": 7, "concurrency": 3, "page_size": 50 }),
    )
    .unwrap();
    let es = bonnie_es::Es::new(settings, &dir.path().join("dead-letter.jsonl")).unwrap();
    let record = |collection: &str, n: i64, version: &str| {
        Record::new(
            collection,
            &format!("k{n:03}"),
            &json!({ "n": n, "version": version, "name": "Büro Рабочее 会議" }),
        )
        .indexed("group", if n % 2 == 0 { "even" } else { "odd" })
        .at(5_000 + n)
    };
    let first: Vec<Record> = (0..200)
        .map(|n| record("bulk-a", n, "1"))
        .chain((0..50).map(|n| record("bulk-b", n, "1")))
        .collect();
    es.put_records(&first).unwrap();
    // One put of the same record leaves the same document: the two read back alike.
    es.put_record(&record("bulk-c", 7, "1")).unwrap();
    let bulk = es.get_record("bulk-a", "k007").unwrap().unwrap();
    let single = es.get_record("bulk-c", "k007").unwrap().unwrap();
    assert_eq!(bulk.body, single.body);
    assert_eq!(bulk.index, single.index);
    assert_eq!(bulk.time_ms, single.time_ms);
    // Every record is found at once (the indices were refreshed), by its index term too.
    let even = es
        .query_records(&RecordQuery::all_with("bulk-a", "group", "even"))
        .unwrap();
    assert_eq!(even.len(), 100);
    assert!(
        even.iter()
            .all(|r| r.json().unwrap()["n"].as_i64().unwrap() % 2 == 0)
    );
    let b = es
        .query_records(&RecordQuery {
            collection: "bulk-b".into(),
            all: true,
            ..RecordQuery::default()
        })
        .unwrap();
    assert_eq!(b.len(), 50);
    // A second bulk write replaces what the first wrote.
    let second: Vec<Record> = (0..200).map(|n| record("bulk-a", n, "2")).collect();
    es.put_records(&second).unwrap();
    let all = es
        .query_records(&RecordQuery {
            collection: "bulk-a".into(),
            all: true,
            ..RecordQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), 200);
    assert!(all.iter().all(|r| r.json().unwrap()["version"] == "2"));
    // A collection that cannot name an index is refused before anything is sent.
    let refused = es
        .put_records(&[Record::new("Not An Index", "k", &json!({}))])
        .unwrap_err();
    assert!(
        refused.message.contains("cannot name an index"),
        "{refused:?}"
    );
}
