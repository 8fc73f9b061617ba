//! Audit of the auditors, with a real broker, bonnie-api and command line: every call of a
//! Roundcube method (single, batched, a notification, a badly signed one) is an audit record in
//! the verifiable log, listed by `bonnie audit --json` with its client, user, method,
//! parameters and count of items; with the broker stopped bonnie-api answers no data (503), and
//! serves again once it is back; an admin's command is audited with the OS user, and refused
//! when its record cannot be written; an audit record changed or deleted in the job store is
//! named by `bonnie verify` and by `bonnie audit`.

use bonnie_core::imap::uri::Mailbox;
use bonnie_tests::{
    api::ApiClient,
    cluster::Cluster,
    process::{self, ChildGuard},
    storages,
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";

/// The archive's signing key, relative to the configuration.
const LEDGER: &str = "[ledger]\nsigning_key = \"var/archive.key\"\n";

/// A cluster with a signing key, whose archive holds the three-entry trail of John's INBOX
/// message 7 (an append, a flag set, a flag cleared), with its broker and bonnie-api running.
fn cluster_with_a_trail() -> (Cluster, ChildGuard, ChildGuard, ApiClient) {
    let cluster = Cluster::new(&[], LEDGER);
    std::fs::create_dir_all(cluster.path().join("var")).unwrap();
    let init = cluster.bonnie(&["ledger", "init", "--name", "archive.test/bonnie"]);
    assert!(
        process::succeeded(&init.status),
        "{}",
        process::describe(&init)
    );
    let store = storages::open(&cluster.config());
    let inbox = Mailbox::of_user(JOHN, "INBOX").path;
    for (n, event) in ["MessageAppend", "FlagsSet", "FlagsClear"]
        .iter()
        .enumerate()
    {
        let record = json!({
            "event": event,
            "@timestamp": bonnie_core::time::format_rfc3339_ms(1_795_000_000_000 + n as i64 * 1000),
            "user": JOHN,
            "folder": inbox,
            "uids": [7],
            "flags": ["\\Flagged"],
        });
        bonnie_model::mail_history::record(
            &store,
            record.as_object().unwrap(),
            &format!("fill-{n}"),
        )
        .unwrap();
    }
    drop(store);
    let broker = cluster.start_broker();
    let (api, client) = cluster.start_api(&[]);
    (cluster, broker, api, client)
}

/// `bonnie audit --json` with `args`: the records it lists (it must succeed).
fn audit(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    let output = cluster.bonnie(&[&["audit", "--json"], args].concat());
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", process::describe(&output)))
}

/// The records of bonnie-api.
fn api_records(cluster: &Cluster) -> Vec<Value> {
    audit(cluster, &[])
        .into_iter()
        .filter(|r| r["source"] == "api")
        .collect()
}

/// The OS user these tests run as, by name.
fn os_user() -> String {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn every_roundcube_call_is_an_audit_record_with_client_user_method_params_and_count() {
    let (cluster, _broker, _api, client) = cluster_with_a_trail();
    let trail = json!({ "mailbox": "INBOX", "msguid": 7 });
    let changes = client.call(JOHN, "mail.changelog", trail.clone());
    assert_eq!(changes["changes"].as_array().map(Vec::len), Some(3));
    let batch = json!([
        { "jsonrpc": "2.0", "method": "event.changelog", "params": { "uid": "nothing-here", "folder": "Calendar" }, "id": 1 },
        { "jsonrpc": "2.0", "method": "system.keygen" },
    ]);
    let answer = client.post_signed(JOHN, batch.to_string().as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
    let refused = client.call_badly_signed(JOHN, "mail.changelog", trail.clone());
    assert_eq!(refused.status, 200, "a JSON-RPC error: {refused:?}");

    let records = api_records(&cluster);
    assert_eq!(records.len(), 4, "one record per call: {records:#?}");
    let first = &records[0];
    assert_eq!(first["client"], "roundcube");
    assert_eq!(first["user"], JOHN);
    assert_eq!(first["action"], "mail.changelog");
    assert_eq!(first["params"], trail);
    assert_eq!(first["count"], 3, "the trail's three entries");
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["verified"], true, "{first}");
    assert!(first["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(records[1]["action"], "event.changelog");
    assert_eq!(records[1]["params"]["uid"], "nothing-here");
    assert_eq!(records[1]["count"], 0, "nothing found");
    assert_eq!(
        records[2]["action"], "system.keygen",
        "the notification too"
    );
    assert_eq!(records[3]["action"], "mail.changelog", "asked, not run");
    assert_eq!(records[3]["outcome"], "error");
    assert!(
        records[3]["error"].as_str().unwrap().contains("Signature"),
        "{}",
        records[3]
    );
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in log order: {seqs:?}"
    );

    assert_eq!(audit(&cluster, &["--user", JOHN]).len(), 4);
    assert!(audit(&cluster, &["--user", "jane.doe@example.org"]).is_empty());
    assert!(audit(&cluster, &["--since", "2999-01-01"]).is_empty());
    assert!(audit(&cluster, &["--since", "1h"]).len() >= 4);
}

#[test]
fn with_the_broker_stopped_the_api_answers_no_data_and_serves_again_once_it_is_back() {
    let (cluster, broker, _api, client) = cluster_with_a_trail();
    let trail = json!({ "mailbox": "INBOX", "msguid": 7 });
    client.call(JOHN, "mail.changelog", trail.clone());
    drop(broker);

    let answer = client.call_raw(JOHN, "mail.changelog", trail.clone());
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.get("result").is_none(), "no data unaudited");
    assert!(!answer.body.to_string().contains("APPEND"), "{answer:?}");
    let batch = json!([{ "jsonrpc": "2.0", "method": "mail.changelog", "params": trail, "id": 1 }]);
    let answer = client.post_signed(JOHN, batch.to_string().as_bytes());
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        cluster
            .log("api")
            .contains("The broker did not keep a call's audit record")
    );

    let _broker = cluster.start_broker();
    let changes = client.call(JOHN, "mail.changelog", trail);
    assert_eq!(changes["changes"].as_array().map(Vec::len), Some(3));
    let counts: Vec<u64> = api_records(&cluster)
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [3, 3],
        "the refused calls left no record: {counts:?}"
    );
}

#[test]
fn an_admin_command_is_audited_with_the_os_user_and_refused_when_it_cannot_be() {
    let (cluster, broker, _api, _client) = cluster_with_a_trail();
    let added = cluster.bonnie(&["api-client", "add", "console"]);
    assert!(
        process::succeeded(&added.status),
        "{}",
        process::describe(&added)
    );
    let user = os_user();
    let records = audit(&cluster, &["--user", &user]);
    let add = records
        .iter()
        .find(|r| r["action"] == "api-client add" && r["params"]["name"] == "console")
        .unwrap_or_else(|| panic!("no record of api-client add: {records:#?}"));
    assert_eq!(add["source"], "cli");
    assert_eq!(add["outcome"], "requested");
    assert_eq!(add["count"], 1);
    assert!(
        !add.to_string().contains("password"),
        "no secret in the record: {add}"
    );

    drop(broker);
    // The broker's port still answers nothing: a read of the archive shows nothing unaudited.
    let trace = cluster.bonnie(&["trace", "john.doe@example.org", "--timeout", "1"]);
    assert!(!process::succeeded(&trace.status));
    assert!(
        String::from_utf8_lossy(&trace.stderr).contains("its audit record cannot be written"),
        "{}",
        process::describe(&trace)
    );
    assert!(trace.stdout.is_empty(), "{}", process::describe(&trace));
}

#[test]
fn an_audit_record_changed_or_deleted_in_the_job_store_is_named_by_verify() {
    let (cluster, broker, api, client) = cluster_with_a_trail();
    let trail = json!({ "mailbox": "INBOX", "msguid": 7 });
    for _ in 0..3 {
        client.call(JOHN, "mail.changelog", trail.clone());
    }
    let checkpoint = cluster.bonnie(&["checkpoint", "--json"]);
    assert!(
        process::succeeded(&checkpoint.status),
        "{}",
        process::describe(&checkpoint)
    );
    drop(api);
    drop(broker);
    let verify = || {
        let output = cluster.bonnie(&["verify", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{}", process::describe(&output)));
        (process::succeeded(&output.status), report)
    };
    let (clean, report) = verify();
    assert!(clean, "the untouched log verifies: {report}");
    let records = api_records(&cluster);
    let (changed, deleted) = (
        records[1]["seq"].as_u64().unwrap(),
        records[2]["seq"].as_u64().unwrap(),
    );

    let store = cluster.job_store();
    let kept: Vec<u8> = store
        .query_row(
            "SELECT record FROM audit_records WHERE seq = ?1",
            [changed as i64],
            |r| r.get(0),
        )
        .unwrap();
    // The count of items read, lowered after the fact.
    let lowered = String::from_utf8(kept)
        .unwrap()
        .replace("\"count\":3", "\"count\":0");
    store
        .execute(
            "UPDATE audit_records SET record = ?1 WHERE seq = ?2",
            rusqlite::params![lowered.as_bytes(), changed as i64],
        )
        .unwrap();
    let (clean, report) = verify();
    assert!(!clean, "{report}");
    assert_eq!(report["first_bad_seq"].as_u64(), Some(changed), "{report}");
    assert_eq!(report["findings"][0]["kind"], "changed", "{report}");
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("an audit record"),
        "{report}"
    );
    let listed = cluster.bonnie(&["audit", "--json"]);
    assert!(
        !process::succeeded(&listed.status),
        "bonnie audit fails too"
    );
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains(&changed.to_string()),
        "{}",
        process::describe(&listed)
    );

    store
        .execute("DELETE FROM audit_records WHERE seq = ?1", [deleted as i64])
        .unwrap();
    let (_, report) = verify();
    let missing: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "missing")
        .collect();
    assert_eq!(missing.len(), 1, "{report}");
    assert_eq!(missing[0]["seq"].as_u64(), Some(deleted), "{report}");
}
