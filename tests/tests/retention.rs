//! Retention plans and legal holds on the captured Cyrus scenario archived by a real broker
//! and worker, on SQLite and on Elasticsearch: the longest matching rule decides, a hold keeps
//! its custodian's entries out of what a purge would remove until it is released, a hold's
//! query narrows it, and every step is an audit record in the verifiable log.

use bonnie_tests::{
    cluster::Cluster,
    on_both_storages, process,
    retention::{LEDGER, archive_scenario, bonnie_json, counts, log_entries, plan},
    storages::{self, Archive, Storage},
    worker::ARCHIVE_HANDLERS,
};
use serde_json::{Value, json};

/// Sessions and flag changes are kept a day, the flag changes in John's INBOX forever (the
/// longest rule wins for them), everything else forever. The scenario is days old, so a day
/// has passed for all of it.
const RETENTION: &str = r#"
[retention]
default = "forever"

[[retention.rule]]
name = "sessions"
kinds = ["sessions"]
keep = "1d"

[[retention.rule]]
name = "flags"
kinds = ["flags"]
keep = "1 day"

[[retention.rule]]
name = "john-flags"
users = ["John.Doe@example.org"]
folders = ["INBOX"]
kinds = ["flags"]
keep = "forever"
"#;

/// The scenario's logins and logouts (the admin's, Jane's and John's).
const SESSIONS: u64 = 12;
/// Jane's and John's sessions.
const JANE_SESSIONS: u64 = 2;
/// Jane's flag change: she read an invitation in John's Calendar (so it is his entry too, as
/// the folder's owner). John's 14 in his INBOX are kept forever.
const JANE_FLAGS: u64 = 1;

/// The scenario archived on `storage` with the retention rules, its log signed.
fn archived(storage: Storage) -> (Cluster, Archive) {
    // With the changelog too, whose message trail the purge must clear; asked to collect
    // nothing, as no collector runs.
    let handlers: Vec<&str> = ARCHIVE_HANDLERS
        .iter()
        .chain(&["bonnie-changelog"])
        .copied()
        .collect();
    let cluster = Cluster::new(
        &handlers,
        &format!("{RETENTION}\n{LEDGER}\n[plugins.changelog]\ncollect = []\n"),
    );
    let archive = archive_scenario(&cluster, storage, "retention.test/bonnie");
    (cluster, archive)
}

/// Runs `bonnie` with `args`, asserting it succeeds; its standard output.
fn bonnie(cluster: &Cluster, args: &[&str]) -> String {
    let output = cluster.bonnie(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        process::describe(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn a_plan_follows_the_longest_rule_and_holds_keep_what_they_cover_until_released(storage: Storage) {
    let (cluster, _archive) = archived(storage);
    // Audit records need the broker.
    let _broker = cluster.start_broker();

    let before = plan(&cluster);
    assert_eq!(
        counts(&before, "sessions"),
        (SESSIONS, SESSIONS, 0),
        "{before}"
    );
    assert_eq!(
        counts(&before, "flags"),
        (JANE_FLAGS, JANE_FLAGS, 0),
        "{before}"
    );
    assert_eq!(
        counts(&before, "john-flags"),
        (0, 0, 0),
        "forever: {before}"
    );
    assert_eq!(counts(&before, "default"), (0, 0, 0), "{before}");
    assert_eq!(before["purged"].as_u64(), Some(SESSIONS + JANE_FLAGS));
    let sample = &before["rules"]["flags"]["sample"][0];
    assert_eq!(sample["event"], "MessageRead", "{sample}");
    assert_eq!(sample["users"][0], "jane.doe@example.org", "{sample}");

    // Jane's entries are held for a case; a second hold on John names words none of his
    // entries has, so it keeps none of them (not even Jane's read in his Calendar).
    bonnie(
        &cluster,
        &[
            "hold",
            "create",
            "Case 2026-17",
            "--custodian",
            "Jane.Doe@example.org",
            "--reason",
            "litigation hold: supplier dispute",
        ],
    );
    bonnie(
        &cluster,
        &[
            "hold",
            "create",
            "Audit-Ü",
            "--custodian",
            "john.doe@example.org",
            "--query",
            "quarterly overhaul",
            "--reason",
            "internal audit",
        ],
    );
    let again = cluster.bonnie(&[
        "hold",
        "create",
        "Case 2026-17",
        "--custodian",
        "x@example.org",
        "--reason",
        "again",
    ]);
    assert!(!again.status.success(), "a standing case placed twice");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("on hold already"),
        "{}",
        process::describe(&again)
    );
    // Two admins placing one case at the same moment: one hold, the other is told so.
    let racing: Vec<_> = (0..2)
        .map(|n| {
            cluster
                .command(
                    "bonnie",
                    &[
                        "hold",
                        "create",
                        "Race",
                        "--custodian",
                        "nobody@example.org",
                        "--reason",
                        &format!("admin {n}"),
                    ],
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let placed = racing
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .filter(|output| output.status.success())
        .count();
    assert_eq!(placed, 1, "one of two racing admins places the hold");
    let held = plan(&cluster);
    assert_eq!(held["holds"].as_u64(), Some(3), "{held}");
    assert_eq!(
        counts(&held, "sessions"),
        (SESSIONS, SESSIONS - JANE_SESSIONS, JANE_SESSIONS),
        "{held}"
    );
    assert_eq!(
        counts(&held, "flags"),
        (JANE_FLAGS, 0, JANE_FLAGS),
        "{held}"
    );
    let kept = &held["rules"]["flags"]["held_sample"][0];
    assert_eq!(kept["held_by"][0], "Case 2026-17", "{kept}");

    // Released, the hold keeps nothing; the plan is as before it.
    bonnie(
        &cluster,
        &["hold", "release", "Case 2026-17", "--reason", "settled"],
    );
    let released = plan(&cluster);
    assert_eq!(
        counts(&released, "sessions"),
        (SESSIONS, SESSIONS, 0),
        "{released}"
    );
    assert_eq!(
        counts(&released, "flags"),
        (JANE_FLAGS, JANE_FLAGS, 0),
        "{released}"
    );
    let holds = bonnie_json(&cluster, &["hold", "list", "--json"]);
    let case = holds
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["case"] == "Case 2026-17")
        .expect("the released hold is listed");
    assert_eq!(case["custodians"][0], "jane.doe@example.org", "{case}");
    assert_eq!(case["released"]["reason"], "settled", "{case}");
    let again = cluster.bonnie(&["hold", "release", "Case 2026-17", "--reason", "twice"]);
    assert!(!again.status.success(), "released twice");

    // Every step is in the audit log, placing and releasing with what was asked.
    let audit = bonnie_json(&cluster, &["audit", "--json"]);
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for wanted in ["hold create", "hold release", "hold list", "retention plan"] {
        assert!(
            actions.iter().any(|(a, _)| *a == wanted),
            "{wanted} not audited: {actions:?}"
        );
    }
    let create = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "hold create" && r["params"]["case"] == "Case 2026-17")
        .expect("the hold's creation, with its case");
    assert_eq!(
        create["params"]["reason"], "litigation hold: supplier dispute",
        "{create}"
    );
}

/// The log entries of `event` in the storage, as stored (tombstones included).
fn entries(cluster: &Cluster, event: &str) -> Vec<Value> {
    log_entries(cluster, event)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn apply_purges_what_expired_keeps_what_a_hold_covers_and_the_log_still_verifies(storage: Storage) {
    let (cluster, _archive) = archived(storage);
    let _broker = cluster.start_broker();
    bonnie(&cluster, &["checkpoint"]);
    bonnie(
        &cluster,
        &[
            "hold",
            "create",
            "Case 2026-17",
            "--custodian",
            "jane.doe@example.org",
            "--reason",
            "litigation hold",
        ],
    );

    let derived = |collection: &str, prefix: Option<String>| -> Vec<String> {
        let query = bonnie_plugin_api::RecordQuery {
            collection: collection.into(),
            key_prefix: prefix,
            all: true,
            ..Default::default()
        };
        storages::open(&cluster.config())
            .query(&query)
            .unwrap()
            .iter()
            .map(|r| r.key.to_string())
            .collect()
    };
    let sessions_before = derived("sessions", None).len();
    assert!(sessions_before > 1, "the scenario's sessions");
    let (janes_read, _) = log_entries(&cluster, "MessageRead")
        .into_iter()
        .find(|(_, r)| r["user"] == "jane.doe@example.org")
        .expect("Jane's read");
    let janes_trail = || derived("message-history", Some(format!("{janes_read}/")));
    assert!(
        !janes_trail().is_empty(),
        "her read is in the message's trail"
    );

    // Without --yes nothing goes.
    let asked = cluster.bonnie(&["retention", "apply"]);
    assert!(!asked.status.success(), "{}", process::describe(&asked));
    assert_eq!(
        counts(&plan(&cluster), "sessions").1,
        SESSIONS - JANE_SESSIONS
    );

    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(
        report["purged"].as_u64(),
        Some(SESSIONS - JANE_SESSIONS),
        "{report}"
    );
    assert_eq!(
        report["held"].as_u64(),
        Some(JANE_SESSIONS + JANE_FLAGS),
        "{report}"
    );
    assert!(report["derived_removed"].as_u64() > Some(0), "{report}");
    assert_eq!(
        derived("sessions", None).len(),
        1,
        "only Jane's session is left of {sessions_before}"
    );
    assert!(!janes_trail().is_empty(), "held: her trail entry stays");
    let after = plan(&cluster);
    assert_eq!(
        after["purged"].as_u64(),
        Some(0),
        "nothing left to purge: {after}"
    );
    assert_eq!(
        after["held"].as_u64(),
        Some(JANE_SESSIONS + JANE_FLAGS),
        "{after}"
    );

    // The purged logins are tombstones that name no one; Jane's is whole.
    let logins = entries(&cluster, "Login");
    let (purged, whole): (Vec<&Value>, Vec<&Value>) =
        logins.iter().partition(|r| r["purged"] == json!(true));
    assert_eq!(
        purged.len(),
        7,
        "the admin's four and John's three, not Jane's: {logins:?}"
    );
    assert!(
        purged
            .iter()
            .all(|r| r.get("user").is_none() && !r.to_string().contains("john.doe")),
        "{purged:?}"
    );
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(whole[0]["user"], "jane.doe@example.org");

    // The log verifies: each purged record is named by a purge record in the log with the
    // digest its leaf commits to.
    bonnie(&cluster, &["checkpoint"]);
    let (passed, verified) = cluster.verify(&[]);
    assert!(passed, "{verified}");
    assert_eq!(
        verified["purged"].as_u64(),
        Some(SESSIONS - JANE_SESSIONS),
        "{verified}"
    );

    // Released, the hold no longer keeps Jane's: the next run purges them.
    bonnie(
        &cluster,
        &["hold", "release", "Case 2026-17", "--reason", "settled"],
    );
    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(
        report["purged"].as_u64(),
        Some(JANE_SESSIONS + JANE_FLAGS),
        "{report}"
    );
    let (passed, verified) = cluster.verify(&[]);
    assert!(passed, "{verified}");
    assert_eq!(
        verified["purged"].as_u64(),
        Some(SESSIONS + JANE_FLAGS),
        "{verified}"
    );
    assert!(derived("sessions", None).is_empty(), "no session is left");
    assert!(
        janes_trail().is_empty(),
        "nor her read in the message's trail"
    );

    // Every run is audited: requested, each batch's purge record with the digests, done.
    let audit = bonnie_json(&cluster, &["audit", "--json"]);
    let records = audit.as_array().unwrap();
    let purges: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "retention purge")
        .collect();
    let named: usize = purges
        .iter()
        .map(|r| r["params"]["entries"].as_array().unwrap().len())
        .sum();
    assert_eq!(named as u64, SESSIONS + JANE_FLAGS, "{purges:?}");
    assert!(purges.iter().all(|r| {
        r["params"]["entries"].as_array().unwrap().iter().all(|e| {
            e["record_digest"].as_str().is_some_and(|d| d.len() == 64) && e["rule"].is_string()
        })
    }));
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "retention apply" && r["outcome"] == "requested"),
        "{records:?}"
    );

    // A record purged behind retention's back (no purge record names it) is still a finding.
    let (id, _) = log_entries(&cluster, "MailboxCreate").remove(0);
    assert!(
        storages::open(&cluster.config())
            .delete("log", &id)
            .unwrap()
    );
    let (passed, verified) = cluster.verify(&[]);
    assert!(!passed, "a purge without its record passed: {verified}");
    let finding = &verified["findings"][0];
    assert_eq!(finding["kind"], "changed", "{verified}");
    assert!(
        finding["detail"].as_str().unwrap().contains(&id),
        "{verified}"
    );
}

/// A message in Черновики (Russian drafts, kept a day) and the same message in the INBOX (kept
/// forever), and another only in Черновики: the purge removes both drafts and the payload only
/// they named, and keeps the payload the INBOX copy names. The folder's name is matched by the
/// rule as written and read from the URL as Cyrus writes it (percent-encoded UTF-8).
fn a_payload_another_kept_entry_names_survives_the_purge(storage: Storage) {
    let cluster = Cluster::new(
        &["bonnie-messageappend", "bonnie-jsonl-input"],
        "[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\njournal = \"var/jsonl-input/outcomes.jsonl\"\n\n\
         [retention]\n[[retention.rule]]\nname = \"drafts\"\nfolders = [\"Черновики\"]\nkeep = \"1d\"\n",
    );
    let _archive = cluster.use_storage(storage);
    let drafts = bonnie_tests::paths::url_encoded("/Черновики");
    let shared = b"From: a@example.org\r\nSubject: shared\r\n\r\nKept in the INBOX.\r\n".as_slice();
    let alone = b"From: a@example.org\r\nSubject: alone\r\n\r\nOnly a draft.\r\n".as_slice();
    let append = |folder: &str, uid: u64, message: &[u8]| {
        json!({
            "event": "MessageAppend",
            "timestamp": "2026-11-01T08:00:00.000Z",
            "uri": format!("imap://imap.example.org/user/anna%40example.org{folder};UIDVALIDITY=7/;UID={uid}"),
            "user": "anna@example.org",
            "messageContent": { uid.to_string(): { "data": String::from_utf8_lossy(message) } },
        })
        .to_string()
    };
    let lines = [
        append(&drafts, 1, shared),
        append("", 1, shared),
        append(&drafts, 2, alone),
    ];
    std::fs::write(cluster.path().join("in.jsonl"), lines.join("\n") + "\n").unwrap();
    let _broker = cluster.start_broker();
    let worker = cluster.start_worker("worker-1");
    process::wait_until("the three appends archived", || {
        entries(&cluster, "MessageAppend").len() == 3
    });
    drop(worker);
    let drafts_archived = entries(&cluster, "MessageAppend")
        .iter()
        .filter(|r| r["folder_name"] == "Черновики")
        .count();
    assert_eq!(drafts_archived, 2, "the folder's name read from its URL");
    let client = storages::open(&cluster.config());
    let digest = |m: &[u8]| bonnie_core::payload::digest(m);
    assert!(client.get_payload(&digest(alone)).unwrap().is_some());

    let report = bonnie_json(&cluster, &["retention", "apply", "--yes", "--json"]);
    assert_eq!(report["purged"].as_u64(), Some(2), "both drafts: {report}");
    assert_eq!(report["payloads_removed"].as_u64(), Some(1), "{report}");
    assert_eq!(report["payloads_kept"].as_u64(), Some(1), "{report}");
    let client = storages::open(&cluster.config());
    assert_eq!(
        client.get_payload(&digest(shared)).unwrap().as_deref(),
        Some(shared),
        "the INBOX copy's payload stays"
    );
    assert_eq!(
        client.get_payload(&digest(alone)).unwrap(),
        None,
        "the draft's alone is gone"
    );
    let appends = entries(&cluster, "MessageAppend");
    let whole: Vec<&Value> = appends
        .iter()
        .filter(|r| r["purged"] != json!(true))
        .collect();
    assert_eq!(whole.len(), 1, "{appends:?}");
    assert_eq!(whole[0]["folder_name"], "INBOX", "{whole:?}");
    let purged: Vec<&Value> = appends
        .iter()
        .filter(|r| r["purged"] == json!(true))
        .collect();
    assert_eq!(purged.len(), 2, "{appends:?}");
}

on_both_storages!(
    a_plan_follows_the_longest_rule_and_holds_keep_what_they_cover_until_released,
    apply_purges_what_expired_keeps_what_a_hold_covers_and_the_log_still_verifies,
    a_payload_another_kept_entry_names_survives_the_purge,
);

#[test]
fn a_retention_rule_that_does_not_parse_is_refused_naming_it() {
    let cluster = Cluster::new(
        &ARCHIVE_HANDLERS,
        "[retention]\n[[retention.rule]]\nname = \"mail\"\nkeep = \"seven years\"\n",
    );
    let output = cluster.bonnie(&["retention", "plan"]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("rule \"mail\""), "{error}");
}
