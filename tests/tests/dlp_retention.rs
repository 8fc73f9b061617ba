//! DLP incidents are derived from their job alone (`dlp-incidents`, keyed `<job id>/<n>`):
//! retention's purge of a job removes its incidents with it, on SQLite and Elasticsearch. A
//! draft with a card number in Черновики (kept a day) and a message with an IBAN in the INBOX
//! (kept forever) are each an incident; the purge takes the draft's and keeps the other.

use bonnie_tests::{
    cluster::Cluster,
    process,
    retention::{bonnie_json, log_entries},
    storages::Storage,
};
use serde_json::{Value, json};

fn incidents(cluster: &Cluster) -> Vec<Value> {
    bonnie_json(cluster, &["dlp", "incidents", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn a_purged_jobs_incidents_go_with_it(storage: Storage) {
    let cluster = Cluster::new(
        &[
            "bonnie-messageappend",
            "bonnie-jsonl-input",
            "bonnie-dlp-plugin",
        ],
        "[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\njournal = \"var/jsonl-input/outcomes.jsonl\"\n\n\
         [retention]\n[[retention.rule]]\nname = \"drafts\"\nfolders = [\"Черновики\"]\nkeep = \"1d\"\n",
    );
    let _archive = cluster.use_storage(storage);
    let drafts: String = "/Черновики"
        .bytes()
        .map(|b| match b {
            b'/' => "/".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    let append = |folder: &str, uid: u64, body: &str| {
        let message = format!("From: anna@example.org\r\nSubject: s{uid}\r\n\r\n{body}\r\n");
        json!({
            "event": "MessageAppend",
            "timestamp": "2026-11-01T08:00:00.000Z",
            "uri": format!("imap://imap.example.org/user/anna%40example.org{folder};UIDVALIDITY=7/;UID={uid}"),
            "user": "anna@example.org",
            "messageContent": { uid.to_string(): { "data": message } },
        })
        .to_string()
    };
    let lines = [
        append(&drafts, 1, "Karte 4539 1488 0343 6467"),
        append("", 2, "IBAN DE89 3704 0044 0532 0130 00"),
    ];
    std::fs::write(cluster.path().join("in.jsonl"), lines.join("\n") + "\n").unwrap();
    let _broker = cluster.start_broker();
    let worker = cluster.start_worker("worker-1");
    process::wait_until("the two appends archived", || {
        log_entries(&cluster, "MessageAppend").len() == 2
    });
    drop(worker);
    let rules: Vec<Value> = incidents(&cluster)
        .iter()
        .map(|i| i["rule"].clone())
        .collect();
    assert_eq!(rules, [json!("payment-cards"), json!("ibans")]);

    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(1), "the draft: {report}");
    assert!(report["derived_removed"].as_u64() >= Some(1), "{report}");
    let left = incidents(&cluster);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["rule"], "ibans");
}

#[test]
fn a_purged_jobs_incidents_go_with_it_on_sqlite() {
    a_purged_jobs_incidents_go_with_it(Storage::Sqlite);
}

#[test]
fn a_purged_jobs_incidents_go_with_it_on_elasticsearch() {
    a_purged_jobs_incidents_go_with_it(Storage::Search);
}
