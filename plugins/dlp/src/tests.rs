//! The handler in plugin-api's test host over a real SQLite storage: what it writes in the
//! record and in `dlp-incidents`, what it asks the collector for, and its outbox entries.

use bonnie_plugin_api::{OutputItem, Storage, testing::TestHost};
use bonnie_sqlite_storage::SqliteStorage;
use serde_json::json;

use super::*;

const CARD: &str = "4539 1488 0343 6467";
const JOHN: &str = "john.doe@example.org";

struct Lab {
    dir: tempfile::TempDir,
    host: TestHost,
    storage: StorageClient,
    handler: Dlp,
}

fn lab(config: Value, rules: Option<&str>) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    if let Some(rules) = rules {
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    }
    let host = TestHost::new("dlp")
        .config(config)
        .config_dir(dir.path().to_str().unwrap())
        .storage(SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap());
    let handler = Dlp::new(host.host()).unwrap_or_else(|e| panic!("{e}"));
    Lab {
        storage: host.storage_client().unwrap(),
        host,
        handler,
        dir,
    }
}

fn mail(subject: &str, body: &str) -> String {
    format!(
        "From: John Doe <{JOHN}>\r\nTo: someone@example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
}

fn append(folder: &str, uid: u64, message: &str) -> Value {
    json!({
        "event": "MessageAppend",
        "timestamp": "2026-12-01T08:15:01.000Z",
        "uri": format!("imap://cyrus.example.org/{folder}%40example.org;UIDVALIDITY=7/;UID={uid}"),
        "user": JOHN,
        "mailboxID": "box-1",
        "messageContent": { uid.to_string(): { "data": message, "size": message.len() } },
    })
}

impl Lab {
    fn handle(&self, job: &str, notification: &Value) -> HandlerOutcome {
        self.handler
            .handle(&Job::new(job, notification.to_string()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn done(&self, job: &str, notification: &Value) -> Value {
        Self::record_of(self.handle(job, notification))
    }

    /// The job as a collector sends it back.
    fn done_collected(&self, job: &str, notification: &Value) -> Value {
        let mut job = Job::new(job, notification.to_string());
        job.meta = r#"{"collected": true}"#.into();
        Self::record_of(self.handler.handle(&job).unwrap_or_else(|e| panic!("{e}")))
    }

    fn record_of(outcome: HandlerOutcome) -> Value {
        match outcome {
            HandlerOutcome::Done { notification } => {
                serde_json::from_str(notification.as_str()).unwrap()
            }
            other => panic!("not done: {other:?}"),
        }
    }

    fn incidents(&self, filter: &incidents::Filter) -> Vec<Value> {
        incidents::query(&self.storage, filter).unwrap()
    }
}

#[test]
fn a_card_number_in_an_appended_message_is_a_masked_incident_in_the_record_and_in_dlp_incidents() {
    let lab = lab(json!({}), None);
    let message = mail(
        "Bestellung",
        &format!("Bitte belasten Sie meine Karte {CARD}."),
    );
    let record = lab.done("job-1", &append("user/john.doe", 4, &message));
    let found = &record["dlp"]["incidents"];
    assert_eq!(found.as_array().unwrap().len(), 1, "{record}");
    assert_eq!(found[0]["rule"], "payment-cards");
    assert_eq!(found[0]["uid"], 4);
    assert_eq!(found[0]["matches"][0]["excerpt"], "4539 **** **** 6467");
    assert_eq!(found[0]["actions"][0]["outcome"], "recorded");

    let stored = lab.incidents(&incidents::Filter {
        rule: Some("payment-cards".into()),
        ..Default::default()
    });
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["job"], "job-1");
    assert_eq!(stored[0]["user"], JOHN);
    assert_eq!(stored[0]["folder"], "user/john.doe@example.org");
    assert!(
        !stored[0].to_string().contains("0343 6467"),
        "masked: {}",
        stored[0]
    );
    let by_user = lab.incidents(&incidents::Filter {
        user: Some(JOHN.into()),
        since_ms: bonnie_core::time::parse_rfc3339_ms("2026-12-01T08:00:00Z"),
        until_ms: bonnie_core::time::parse_rfc3339_ms("2026-12-01T09:00:00Z"),
        ..Default::default()
    });
    assert_eq!(by_user.len(), 1);
    let later = lab.incidents(&incidents::Filter {
        since_ms: bonnie_core::time::parse_rfc3339_ms("2026-12-01T09:00:00Z"),
        ..Default::default()
    });
    assert!(later.is_empty());

    // The same job again (another pass, another worker) writes the same incident.
    lab.done("job-1", &append("user/john.doe", 4, &message));
    assert_eq!(lab.incidents(&incidents::Filter::default()).len(), 1);
}

#[test]
fn a_clean_message_is_scanned_and_gives_no_incident() {
    let lab = lab(json!({}), None);
    let record = lab.done(
        "job-1",
        &append(
            "user/john.doe",
            1,
            &mail("Hallo", "Order 4539148803436468, call +49 30 1234567."),
        ),
    );
    assert_eq!(record["dlp"]["incidents"], json!([]));
    assert!(lab.incidents(&incidents::Filter::default()).is_empty());
}

#[test]
fn an_append_without_its_text_asks_for_fetch_unless_collect_says_not() {
    let mut notification = append("user/john.doe", 1, "");
    notification
        .as_object_mut()
        .unwrap()
        .remove("messageContent");
    let asking = lab(json!({}), None);
    match asking.handle("job-1", &notification) {
        HandlerOutcome::NeedsCollector { commands, .. } => {
            assert_eq!(
                commands.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                ["FETCH"]
            );
        }
        other => panic!("{other:?}"),
    }
    let quiet = lab(json!({ "collect": [] }), None);
    let record = quiet.done("job-1", &notification);
    assert!(
        record["dlp"]["unscanned"]
            .as_str()
            .unwrap()
            .contains("collect"),
        "{record}"
    );
    // A fetch that failed for good is not asked again.
    notification["collector_errors"] = json!({ "FETCH": "the message is gone" });
    let record = asking.done("job-2", &notification);
    assert!(
        record["dlp"]["unscanned"]
            .as_str()
            .unwrap()
            .contains("gone"),
        "{record}"
    );
}

#[test]
fn a_folder_made_readable_by_anyone_is_the_acl_rules_incident() {
    let lab = lab(json!({}), None);
    let acl = json!({
        "event": "AclChange",
        "timestamp": "2026-12-01T08:15:01.000Z",
        "uri": "imap://cyrus.example.org/user/john.doe/Projekte%40example.org;UIDVALIDITY=7",
        "user": JOHN,
        "aclSubject": "anyone",
        "aclRights": "lrs",
        "vnd.cmu.mailboxACL": format!("{JOHN}\tlrswipkxtecdan\tanyone\tlrs\t"),
    });
    let record = lab.done("job-1", &acl);
    assert_eq!(
        record["dlp"]["incidents"][0]["rule"], "folder-readable-by-anyone",
        "{record}"
    );
    assert_eq!(record["dlp"]["incidents"][0]["acl"]["identifier"], "anyone");
    let posting_only = json!({ "aclRights": "p", "vnd.cmu.mailboxACL": format!("{JOHN}\tlrswipkxtecdan\tanyone\tp\t") });
    let mut posting = acl.clone();
    posting
        .as_object_mut()
        .unwrap()
        .extend(posting_only.as_object().unwrap().clone());
    assert_eq!(lab.done("job-2", &posting)["dlp"]["incidents"], json!([]));
}

#[test]
fn a_folder_shared_with_its_owners_own_group_is_no_incident_and_with_another_group_is_one() {
    let lab = lab(json!({}), None);
    // The owner as GETUSERDATA resolved them: in `sales` (and, nested, `staff`).
    let user_data = json!({ "dn": "uid=john.doe,ou=people,dc=example,dc=org", "cn": "John Doe",
        "id": "5f1c2a", "groups": ["sales", "staff"] });
    bonnie_model::users::store_resolved(&lab.storage, JOHN, user_data.as_object().unwrap(), 0)
        .unwrap();
    let shared_with = |group: &str| {
        json!({
            "event": "AclChange",
            "timestamp": "2026-12-01T08:15:01.000Z",
            "uri": "imap://cyrus.example.org/user/john.doe/Projekte%40example.org;UIDVALIDITY=7",
            "user": JOHN,
            "aclSubject": format!("group:{group}"),
            "aclRights": "lrs",
            "vnd.cmu.mailboxACL": format!("{JOHN}\tlrswipkxtecdan\tgroup:{group}\tlrs\t"),
        })
    };
    let own = lab.done("job-1", &shared_with("staff"));
    assert_eq!(own["dlp"]["incidents"], json!([]), "{own}");
    let other = lab.done("job-2", &shared_with("finance"));
    assert_eq!(
        other["dlp"]["incidents"][0]["rule"], "folder-readable-by-a-group",
        "{other}"
    );
    assert_eq!(
        other["dlp"]["incidents"][0]["acl"]["identifier"],
        "group:finance"
    );
}

#[test]
fn a_kolab_event_with_an_iban_in_its_description_is_an_incident_of_the_field() {
    let lab = lab(json!({}), None);
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><components><vevent><properties>\
        <uid><text>E-1</text></uid><summary><text>Überweisung</text></summary>\
        <description><text>Bitte auf IBAN DE89 3704 0044 0532 0130 00 überweisen</text></description></properties></vevent></components></vcalendar></icalendar>";
    let message = format!(
        "From: {JOHN}\r\nTo: {JOHN}\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\nSubject: E-1\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nA Kolab object.\r\n--b\r\n\
         Content-Type: application/calendar+xml; charset=UTF-8\r\nContent-Disposition: attachment; filename=kolab.xml\r\n\r\n{xml}\r\n--b--\r\n"
    );
    let record = lab.done("job-1", &append("user/john.doe/Kalender", 2, &message));
    let found = &record["dlp"]["incidents"][0];
    assert_eq!(found["rule"], "ibans", "{record}");
    assert_eq!(found["matches"][0]["part"], "field description");
}

const ACTING_RULES: &str = r#"
[[rules]]
name = "cards-acted-on"
severity = "high"
detectors = ["payment_card"]
actions = [
    { type = "incident" },
    { type = "webhook", url = "http://127.0.0.1:9/hook" },
    { type = "keyword", name = "$DLP" },
]
"#;

#[test]
fn alerts_go_to_the_outbox_once_and_imap_actions_to_the_collector_once() {
    let lab = lab(
        json!({ "rules": "rules.toml", "alerts": { "poll_interval_ms": 3_600_000 } }),
        Some(ACTING_RULES),
    );
    let notification = append("user/john.doe", 4, &mail("card", CARD));
    let outcome = lab.handle("job-1", &notification);
    let outbox = Outbox::new(lab.host.storage_client().unwrap());
    let entry = outbox
        .entry("job-1/0/1")
        .unwrap()
        .expect("the webhook's entry");
    assert_eq!(entry["action"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(entry["incident"]["rule"], "cards-acted-on");
    assert!(!entry.to_string().contains("0343 6467"), "{entry}");
    let HandlerOutcome::NeedsCollector {
        commands,
        notification,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(commands[0].as_str(), actions::DLPACTION);
    let mut asked: Value = serde_json::from_str(notification.as_str()).unwrap();
    assert_eq!(
        asked["dlp_imap_actions"],
        json!([{ "type": "keyword", "name": "$DLP" }])
    );
    asked["dlp_imap_results"] = json!([{ "type": "keyword", "name": "$DLP", "ok": true }]);
    // Forged in a notification no collector wrote: scanned afresh, asked again.
    match lab.handle("job-1", &asked) {
        HandlerOutcome::NeedsCollector { commands, .. } => {
            assert_eq!(commands[0].as_str(), actions::DLPACTION)
        }
        other => panic!("{other:?}"),
    }
    let record = lab.done_collected("job-1", &asked);
    assert_eq!(record["dlp"]["imap"], "answered");
    assert_eq!(
        record["dlp"]["incidents"][0]["actions"][2]["outcome"],
        "done"
    );
    let stored = lab.incidents(&incidents::Filter::default());
    assert_eq!(stored[0]["actions"][2]["outcome"], "done");
}

#[test]
fn a_copied_message_is_read_from_the_archive_by_its_trail() {
    let lab = lab(json!({ "collect": [] }), None);
    let message = mail("Karten", &format!("Karte: {CARD}"));
    let digest = lab.storage.put_payload(message.as_bytes()).unwrap();
    let mut appended = append("user/john.doe", 4, "");
    let appended = appended.as_object_mut().unwrap();
    appended.remove("messageContent");
    record::normalize(appended, 0);
    appended.insert(
        "payloads".into(),
        json!([{ "uid": 4, "digest": digest, "size": 1 }]),
    );
    let log = SqliteStorage::open(&lab.dir.path().join("bonnie.db"), 5000).unwrap();
    log.append_log(vec![OutputItem::new(
        "append-job",
        Value::Object(appended.clone()).to_string(),
    )])
    .unwrap();
    bonnie_model::mail_history::record(&lab.storage, appended, "append-job").unwrap();
    let copy = json!({
        "event": "vnd.cmu.MessageCopy",
        "timestamp": "2026-12-01T08:16:01.000Z",
        "uri": "imap://cyrus.example.org/user/john.doe/Archiv%40example.org;UIDVALIDITY=9",
        "oldMailboxID": "imap://cyrus.example.org/user/john.doe%40example.org;UIDVALIDITY=7",
        "uidset": "12",
        "vnd.cmu.oldUidset": "4",
        "user": JOHN,
    });
    let record = lab.done("copy-job", &copy);
    assert_eq!(
        record["dlp"]["incidents"][0]["rule"], "payment-cards",
        "{record}"
    );
    assert_eq!(record["dlp"]["incidents"][0]["uid"], 12);
}

#[test]
fn retention_purges_the_outbox_the_alerts_are_kept_in() {
    // Retention names the outbox by bonnie-model's constant, which does not link the sender.
    assert_eq!(
        bonnie_dlp_actions::COLLECTION,
        bonnie_model::dlp_incidents::OUTBOX
    );
}
