//! Every notification a real Cyrus 3.6 produced, through the real worker and the real handler
//! plugins into SQLite and into a search server (es-storage on osmem-server), with the same
//! expectations: each yields a record whose fields are checked by value; sessions get their
//! duration; ACL changes make new folder states of the same folder; renames keep the folder's
//! uniqueid and both names.

use std::collections::BTreeMap;

use bonnie_plugin_api::storage::RecordQuery;
use bonnie_tests::{
    on_both_storages, paths,
    storages::{self, Archive, Storage},
    worker::WorkerLab,
};
use serde_json::{Value, json};

use bonnie_tests::worker::ARCHIVE_HANDLERS as HANDLERS;

/// The captured samples in the order Cyrus emitted them.
fn samples() -> Vec<(String, Value)> {
    paths::cyrus_events()
        .into_iter()
        .map(|(file, text)| (file, serde_json::from_str(&text).unwrap()))
        .collect()
}

on_both_storages!(
    every_captured_notification_becomes_a_record_checked_by_value,
    a_login_and_its_logout_make_one_session_with_its_duration,
    a_logout_without_its_login_waits_then_is_stored_on_its_own,
    an_acl_change_makes_a_new_folder_state_of_the_same_folder,
    a_rename_keeps_the_uniqueid_and_both_names,
    a_delivery_without_a_user_is_attributed_to_its_recipient,
    an_unknown_event_is_stored_as_received_and_flagged,
);

/// Runs the samples through a worker on `storage`; the lab, the records by sample file, and
/// the storage (kept as long as the lab).
fn archive_samples(
    storage: Storage,
    extra_lines: &[String],
) -> (WorkerLab, BTreeMap<String, Value>, Archive) {
    let lab = WorkerLab::with_plugins(&HANDLERS, "[plugins.sessions]\nlogout_waits = 2\n");
    let archive = lab.use_storage(storage);
    let config = std::fs::read_to_string(lab.config())
        .unwrap()
        .replace("threads = 2", "threads = 1");
    lab.write("bonnie.toml", &config);
    let samples = samples();
    let mut lines: Vec<String> = samples.iter().map(|(_, raw)| raw.to_string()).collect();
    lines.extend_from_slice(extra_lines);
    lab.notifications(&lines);
    lab.run();
    let records = samples
        .iter()
        .enumerate()
        .map(|(i, (file, _))| (file.clone(), lab.record(&format!("in.jsonl:{}", i + 1))))
        .collect();
    (lab, records, archive)
}

/// `a` or `a:b` expanded, the only forms in the samples.
fn uids(set: &str) -> Vec<u64> {
    match set.split_once(':') {
        Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect(),
        None => vec![set.parse().unwrap()],
    }
}

fn every_captured_notification_becomes_a_record_checked_by_value(storage: Storage) {
    let (lab, records, archive) = archive_samples(storage, &[]);
    for (file, raw) in samples() {
        let r = &records[&file];
        let ctx = format!("{file}: {r}");
        assert_eq!(r["event"], raw["event"], "{ctx}");
        assert_eq!(r["@timestamp"], raw["timestamp"], "{ctx}");
        assert_eq!(r["@version"], 1, "{ctx}");
        assert!(r.get("unknown_event").is_none(), "{ctx}");
        assert_eq!(r["session_id"], raw["vnd.cmu.sessionId"], "{ctx}");
        // Cyrus's own fields stay as they were.
        for (key, value) in raw.as_object().unwrap() {
            assert_eq!(&r[key], value, "{ctx}: field {key}");
        }
        if let Some(id) = raw.get("mailboxID") {
            assert_eq!(&r["folder_uniqueid"], id, "{ctx}");
            // Only an event that tells its folder's ACL names a folder state (a subscription
            // names its folder by uniqueid only).
            if raw.get("vnd.cmu.mailboxACL").is_some() {
                let folder_id = r["folder_id"].as_str().unwrap();
                assert!(
                    folder_id.len() == 32 && folder_id.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{ctx}"
                );
            } else {
                assert!(r.get("folder_id").is_none(), "{ctx}");
            }
            assert!(
                r["folder"].as_str().unwrap().ends_with("@example.org"),
                "{ctx}"
            );
            assert!(!r["folder"].as_str().unwrap().contains('%'), "{ctx}");
        }
        match raw.get("uidset").and_then(Value::as_str) {
            Some(set) => assert_eq!(r["uids"], json!(uids(set)), "{ctx}"),
            None if raw["uri"].as_str().is_some_and(|u| u.contains(";UID=")) => {
                assert_eq!(r["uids"], json!([r["uid"]]), "{ctx}")
            }
            None => assert!(r.get("uids").is_none(), "{ctx}"),
        }
        if let Some(Value::Array(midset)) = raw.get("vnd.cmu.midset") {
            let expected: Vec<&Value> = midset.iter().filter(|m| *m != "NIL").collect();
            if expected.is_empty() {
                assert!(r.get("message_ids").is_none(), "{ctx}");
            } else {
                assert_eq!(
                    r["message_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .collect::<Vec<_>>(),
                    expected,
                    "{ctx}"
                );
            }
        }
        if let Some(flags) = raw.get("flagNames").and_then(Value::as_str) {
            assert_eq!(
                r["flags"],
                json!(flags.split_whitespace().collect::<Vec<_>>()),
                "{ctx}"
            );
        }
        match raw["user"].as_str().unwrap() {
            "" | "cyrus" => assert!(r.get("user_id").is_none(), "{ctx}"),
            user => assert_eq!(
                r["user_id"],
                format!("login:{user}"),
                "{ctx}: unresolved until a collector asks LDAP"
            ),
        }
    }

    // Values of chosen samples.
    let calendar_event = &records["MessageAppend-3.json"];
    assert_eq!(
        calendar_event["folder"],
        "user/john.doe/Calendar@example.org"
    );
    assert_eq!(calendar_event["folder_name"], "Calendar");
    assert_eq!(calendar_event["folder_owner"], "john.doe@example.org");
    assert_eq!(calendar_event["uid"], 1);
    assert_eq!(calendar_event["uidvalidity"], 1_795_886_003u64);
    assert_eq!(calendar_event["message_size"], 2405);
    assert_eq!(
        calendar_event["mailbox_acl"],
        json!({ "john.doe@example.org": "lrswipkxtecdan", "jane.doe@example.org": "lrs" })
    );
    let plain = &records["MessageAppend-1.json"];
    assert_eq!(plain["folder_name"], "INBOX");
    assert_eq!(plain["subject"], "plain test 1");
    assert_eq!(plain["from"], json!(["Jane Doe <jane.doe@example.org>"]));
    assert_eq!(plain["to"], json!(["John Doe <john.doe@example.org>"]));
    assert_eq!(
        plain["message_ids"],
        json!(["<1795886016.212314.18789@example.org>"])
    );
    let flagged = &records["MessageAppend-2.json"];
    assert_eq!(flagged["flags"], json!(["\\seen", "$Label1"]));
    let moved = &records["vnd.cmu.MessageMove-1.json"];
    assert_eq!(moved["old_folder"], "user/john.doe@example.org");
    assert_eq!(moved["old_folder_name"], "INBOX");
    assert_eq!(moved["folder_name"], "Archive");
    assert_eq!(
        (moved["uids"].clone(), moved["old_uids"].clone()),
        (json!([2]), json!([2]))
    );
    let copied = &records["vnd.cmu.MessageCopy-1.json"];
    assert_eq!(
        (
            copied["old_folder_name"].clone(),
            copied["folder_name"].clone()
        ),
        (json!("INBOX"), json!("Archive"))
    );
    let both_flags = &records["FlagsSet-2.json"];
    assert_eq!(both_flags["uids"], json!([1, 2]));
    assert_eq!(both_flags["flags"], json!(["\\Answered", "$Important"]));
    let quota = &records["QuotaChange-1.json"];
    assert_eq!(
        (
            quota["disk_quota"].clone(),
            quota["disk_used"].clone(),
            quota["max_messages"].clone()
        ),
        (json!(200), json!(0), json!(-1))
    );
    assert_eq!(quota["quota_root"], "user/john.doe@example.org");
    assert!(
        quota.get("folder_id").is_none(),
        "a quota root is not a folder event"
    );
    let granted = &records["AclChange-1.json"];
    assert_eq!(
        (
            granted["acl_subject"].clone(),
            granted["acl_rights"].clone()
        ),
        (json!("jane.doe@example.org"), json!("lrs"))
    );
    let removed = &records["AclChange-3.json"];
    assert_eq!(
        (
            removed["acl_subject"].clone(),
            removed["acl_removed"].clone()
        ),
        (json!("jane.doe@example.org"), json!(true))
    );
    let expired = &records["MessageExpire-1.json"];
    assert_eq!(expired["service"], "cyr_expire");
    let login = &records["Login-2.json"];
    assert_eq!(
        (login["client_ip"].clone(), login["server"].clone()),
        (json!("127.0.0.1"), json!("cyrus-lab.example.org"))
    );

    // Everything reached the storage's log too, once.
    assert_eq!(archive.logged_jobs(lab.path()), samples().len());
}

fn a_login_and_its_logout_make_one_session_with_its_duration(storage: Storage) {
    let (lab, records, _archive) = archive_samples(storage, &[]);
    let logout = &records["Logout-2.json"];
    assert_eq!(logout["login_time"], "2026-11-28T17:13:21.544Z");
    assert_eq!(logout["duration"], 40.181);
    let store = storages::open(&lab.config());
    let session = store
        .get(
            "sessions",
            "cyrus-lab.example.org-1795886001-18849-1-733595124588318753",
        )
        .unwrap()
        .expect("the session")
        .json()
        .unwrap();
    assert_eq!(session["user"], "john.doe@example.org");
    assert_eq!(session["login_time"], "2026-11-28T17:13:21.544Z");
    assert_eq!(session["logout_time"], "2026-11-28T17:14:01.725Z");
    assert_eq!(session["duration"], 40.181);
    let sessions = store
        .query(&RecordQuery {
            collection: "sessions".into(),
            all: true,
            ..RecordQuery::default()
        })
        .unwrap();
    assert_eq!(sessions.len(), 8, "one per Login");
}

fn a_logout_without_its_login_waits_then_is_stored_on_its_own(storage: Storage) {
    let lonely = json!({
        "event": "Logout", "timestamp": "2026-11-28T18:00:00.000Z", "service": "imap",
        "user": "john.doe@example.org", "vnd.cmu.sessionId": "no-such-login-1"
    });
    let (lab, _, _archive) = archive_samples(storage, &[lonely.to_string()]);
    let job = format!("in.jsonl:{}", samples().len() + 1);
    let outcomes = lab.outcomes_of(&job);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o["outcome"] == "postponed")
            .count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.last().unwrap()["outcome"], "done");
    let record = lab.record(&job);
    assert_eq!(record["login_missing"], true);
    assert!(record.get("duration").is_none());
}

/// The folder's states, oldest first, read through the storage.
fn folder_states(lab: &WorkerLab, uniqueid: &str) -> Vec<Value> {
    storages::open(&lab.config())
        .query(&RecordQuery::all_with("folders", "uniqueid", uniqueid))
        .unwrap()
        .iter()
        .map(|r| r.json().unwrap())
        .collect()
}

fn current_folder(lab: &WorkerLab, uniqueid: &str) -> Value {
    storages::open(&lab.config())
        .get("folders-current", uniqueid)
        .unwrap()
        .expect("the folder's current view")
        .json()
        .unwrap()
}

fn an_acl_change_makes_a_new_folder_state_of_the_same_folder(storage: Storage) {
    let (lab, records, _archive) = archive_samples(storage, &[]);
    let calendar = "umlq6xbovdfdid2o1v10vpur";
    let created = &records["MailboxCreate-3.json"];
    let granted = &records["AclChange-1.json"];
    assert_eq!(created["folder_uniqueid"], calendar);
    assert_eq!(granted["folder_uniqueid"], calendar);
    assert_ne!(
        created["folder_id"], granted["folder_id"],
        "a new ACL is a new folder state"
    );
    let states = folder_states(&lab, calendar);
    let ids: Vec<&Value> = states.iter().map(|s| &s["folder_id"]).collect();
    assert!(
        ids.contains(&&created["folder_id"]) && ids.contains(&&granted["folder_id"]),
        "{ids:?}"
    );
    let granted_state = states
        .iter()
        .find(|s| s["folder_id"] == granted["folder_id"])
        .unwrap();
    assert_eq!(granted_state["acl_subjects"]["jane.doe@example.org"], "lrs");
    assert_eq!(
        granted_state["acl"]["login:jane.doe@example.org"], "lrs",
        "subjects mapped to user ids"
    );
    assert_eq!(granted_state["name"], "Calendar");
    // The final SETACL leaves jane with lrs again: the same state, the same id, as the first.
    assert_eq!(
        records["AclChange-4.json"]["folder_id"],
        granted["folder_id"]
    );
    let current = current_folder(&lab, calendar);
    assert_eq!(current["acl"]["jane.doe@example.org"], "lrs");
}

fn a_rename_keeps_the_uniqueid_and_both_names(storage: Storage) {
    let (lab, records, _archive) = archive_samples(storage, &[]);
    let renamed = &records["MailboxRename-1.json"];
    let uniqueid = renamed["folder_uniqueid"].as_str().unwrap();
    assert_eq!(records["MailboxCreate-7.json"]["folder_uniqueid"], uniqueid);
    assert_eq!(
        (
            renamed["old_folder_name"].clone(),
            renamed["folder_name"].clone()
        ),
        (json!("Tmp"), json!("Tmp2"))
    );
    let names: Vec<Value> = folder_states(&lab, uniqueid)
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert!(
        names.contains(&json!("Tmp")) && names.contains(&json!("Tmp2")),
        "{names:?}"
    );
    let current = current_folder(&lab, uniqueid);
    assert_eq!(current["name"], "Tmp2");
    assert_eq!(current["deleted"], true, "Tmp2 was deleted afterwards");
    let history: Vec<Value> = current["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].clone())
        .collect();
    assert!(history.contains(&json!("Tmp")), "{current}");
}

fn a_delivery_without_a_user_is_attributed_to_its_recipient(storage: Storage) {
    // An LMTP delivery as Cyrus 3.6 captured it, and the same naming no acting user (the
    // field missing, or empty as on Cyrus's MailboxModseq).
    let captured: Value = serde_json::from_str(&paths::cyrus_event("MessageNew-1.json")).unwrap();
    let mut missing = captured.clone();
    missing.as_object_mut().unwrap().remove("user");
    let mut empty = captured.clone();
    empty["user"] = json!("");
    let (lab, records, archive) =
        archive_samples(storage, &[missing.to_string(), empty.to_string()]);
    let john = "john.doe@example.org";
    let as_captured = &records["MessageNew-1.json"];
    assert_eq!(as_captured["delivery"], true);
    assert_eq!(as_captured["recipient"], john);
    assert!(
        as_captured.get("user_inferred").is_none(),
        "Cyrus named the user"
    );
    for line in [samples().len() + 1, samples().len() + 2] {
        let record = lab.record(&format!("in.jsonl:{line}"));
        assert_eq!(record["delivery"], true, "{record}");
        assert_eq!(record["user"], john, "{record}");
        assert_eq!(record["user_inferred"], true, "{record}");
        assert_eq!(record["user_id"], format!("login:{john}"), "{record}");
    }
    let empty = lab.record(&format!("in.jsonl:{}", samples().len() + 2));
    assert_eq!(empty["cyrus_user"], "", "what Cyrus sent stays as evidence");
    // The log's user and user_id, which per-user queries read, for every delivery.
    let rows = archive.logged_users(lab.path(), "MessageNew");
    assert_eq!(
        rows.len(),
        5,
        "three captured deliveries and two without a user"
    );
    for (user, user_id, record) in rows {
        let owner = record["folder_owner"].as_str().unwrap();
        assert_eq!(user.as_deref(), Some(owner), "{record}");
        assert_eq!(user_id, Some(format!("login:{owner}")), "{record}");
    }
}

fn an_unknown_event_is_stored_as_received_and_flagged(storage: Storage) {
    let alarm = json!({ "event": "CalendarAlarm", "timestamp": "2026-11-28T19:00:00.000Z", "user": "john.doe@example.org", "alarm": { "uid": "x" } });
    let (lab, _, _archive) = archive_samples(storage, &[alarm.to_string()]);
    let record = lab.record(&format!("in.jsonl:{}", samples().len() + 1));
    assert_eq!(record["unknown_event"], true);
    assert_eq!(record["alarm"], json!({ "uid": "x" }));
    assert_eq!(record["@timestamp"], "2026-11-28T19:00:00.000Z");
}
