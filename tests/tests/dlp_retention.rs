//! DLP incidents are derived from their job alone (`dlp-incidents`, keyed `<job id>/<n>`):
//! retention's purge of a job removes its incidents with it, on SQLite and Elasticsearch. A
//! draft with a card number in Черновики (kept a day) and a message with an IBAN in the INBOX
//! (kept forever) are each an incident and an alert in the outbox (a webhook nobody answers);
//! the purge takes the draft's incident and alert and keeps the others.

use bonnie_plugin_api::RecordQuery;
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
         [plugins.dlp]\nrules = \"dlp-rules.toml\"\n\n\
         [retention]\n[[retention.rule]]\nname = \"drafts\"\nfolders = [\"Черновики\"]\nkeep = \"1d\"\n",
    );
    // Port 9 (discard) on loopback refuses: the alerts stay in the outbox, pending a retry.
    let webhook = "actions = [{ type = \"incident\" }, { type = \"webhook\", url = \"http://127.0.0.1:9/dlp\" }]";
    std::fs::write(
        cluster.path().join("dlp-rules.toml"),
        format!(
            "[[rules]]\nname = \"payment-cards\"\nseverity = \"high\"\ndetectors = [\"payment_card\"]\n{webhook}\n\n\
             [[rules]]\nname = \"ibans\"\nseverity = \"medium\"\ndetectors = [\"iban\"]\n{webhook}\n"
        ),
    )
    .unwrap();
    let _archive = cluster.use_storage(storage);
    let drafts = bonnie_tests::paths::url_encoded("/Черновики");
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
    let alerts = || -> Vec<String> {
        let storage = bonnie_tests::storages::open(&cluster.config());
        let mut keys: Vec<String> = storage
            .query(&RecordQuery {
                collection: bonnie_model::dlp_incidents::OUTBOX.to_string(),
                all: true,
                ..RecordQuery::default()
            })
            .unwrap()
            .iter()
            .map(|r| r.key.to_string())
            .collect();
        keys.sort();
        keys
    };
    let before = alerts();
    assert_eq!(before.len(), 2, "an alert per incident: {before:?}");

    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(1), "the draft: {report}");
    assert!(report["derived_removed"].as_u64() >= Some(1), "{report}");
    let left = incidents(&cluster);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["rule"], "ibans");
    let kept_job = left[0]["job"].as_str().expect("the incident names its job");
    let after = alerts();
    assert_eq!(after.len(), 1, "the draft's alert went with it: {after:?}");
    assert!(
        after[0].starts_with(&format!("{kept_job}/")),
        "the IBAN's alert stays: {after:?} {left:#?}"
    );
}

#[test]
fn a_purged_jobs_incidents_go_with_it_on_sqlite() {
    a_purged_jobs_incidents_go_with_it(Storage::Sqlite);
}

#[test]
fn a_purged_jobs_incidents_go_with_it_on_elasticsearch() {
    a_purged_jobs_incidents_go_with_it(Storage::Search);
}
