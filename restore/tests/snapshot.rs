//! Snapshots of the golden scenario archive (tests/fixtures/scenario-records/archive.json: what
//! a real Cyrus 3.6 sent for appends, flag changes, a copy, a move, expunges, an expiry, folder
//! renames and deletions, as the handlers recorded it), fed into a real SQLite storage with a
//! payload per fetched message kept as `collect::store_payloads` leaves it (its INTERNALDATE
//! in its payload entry): the folders and messages a restore puts back at several moments.

use std::{collections::BTreeMap, path::Path};

use bonnie_plugin_api::{
    IndexTerm, OutputItem, Record, Storage, plugin::storage_box, storage::StorageClient,
};
use bonnie_restore::{
    RestoreError,
    snapshot::{Selector, Snapshot, snapshot},
};
use bonnie_sqlite_storage::SqliteStorage;
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";

/// The scenario in a real SQLite storage, and each fetched message's digest by Subject.
struct Archive {
    _dir: tempfile::TempDir,
    storage: StorageClient,
    digests: BTreeMap<String, String>,
}

/// The INTERNALDATE the collector is taken to have read for each message: a day before its
/// append, so that it is never the arrival's time.
fn internaldate_ms(arrival_ms: i64) -> i64 {
    arrival_ms - 86_400_000
}

fn archive() -> Archive {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/scenario-records/archive.json");
    let scenario: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bonnie.db");
    let log = SqliteStorage::open(&path, 5000).unwrap();
    let storage = StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap()));

    let mut digests = BTreeMap::new();
    let mut items = Vec::new();
    for (job, entry) in scenario["log"].as_object().unwrap() {
        let mut record = entry["record"].clone();
        if matches!(
            record["event"].as_str(),
            Some("MessageAppend" | "MessageNew")
        ) {
            let subject = record["subject"].as_str().unwrap_or_default().to_string();
            let bytes = format!("Subject: {subject}\r\n\r\nThe scenario's message.\r\n");
            let digest = storage.put_payload(bytes.as_bytes()).unwrap();
            let arrival = entry["time_ms"].as_i64().unwrap();
            record["payloads"] = json!([{
                "uid": record["uid"], "digest": digest, "size": bytes.len(),
                "internaldate_ms": internaldate_ms(arrival),
            }]);
            record["payload_digest"] = json!(digest);
            digests.entry(subject).or_insert(digest);
        }
        items.push(OutputItem::new(job.as_str(), record.to_string()));
    }
    log.append_log(items).unwrap();

    let index = scenario["record_index"].as_array().unwrap();
    for collection in [
        "message-history",
        "folders-current",
        "folders",
        "message-places",
    ] {
        for (key, stored) in scenario["records"][collection].as_object().unwrap() {
            let terms: Vec<IndexTerm> = index
                .iter()
                .filter(|t| t[0] == collection && t[3] == key.as_str())
                .map(|t| IndexTerm {
                    field: t[1].as_str().unwrap().into(),
                    value: t[2].as_str().unwrap().into(),
                })
                .collect();
            let mut record = Record::new(collection, key, &stored["body"]);
            record.time_ms = stored["time_ms"].as_i64().into();
            record.index = terms.into();
            storage.put(record).unwrap();
        }
    }
    Archive {
        _dir: dir,
        storage,
        digests,
    }
}

/// A message as a test names it: Subject, UID, flags.
type Held = (String, u64, Vec<String>);

fn ms(at: &str) -> i64 {
    bonnie_core::time::parse_rfc3339_ms(at).unwrap()
}

fn folder(name: &str, recursive: bool) -> Selector {
    Selector::Folder {
        name: name.into(),
        recursive,
    }
}

impl Archive {
    fn at(&self, selector: &Selector, at: Option<&str>) -> Snapshot {
        snapshot(&self.storage, JOHN, selector, at.map(ms)).unwrap()
    }

    /// Each folder's messages as (Subject, UID, flags), by folder name.
    fn contents(&self, snapshot: &Snapshot) -> Vec<(String, Vec<Held>)> {
        let subject = |digest: &str| {
            self.digests
                .iter()
                .find(|(_, d)| d.as_str() == digest)
                .map(|(s, _)| s.clone())
                .unwrap()
        };
        snapshot
            .folders
            .iter()
            .map(|f| {
                let messages = f
                    .messages
                    .iter()
                    .map(|m| (subject(&m.digest), m.uid, m.flags.clone()))
                    .collect();
                (f.name.clone(), messages)
            })
            .collect()
    }
}

fn message(subject: &str, uid: u64, flags: &[&str]) -> Held {
    (
        subject.to_string(),
        uid,
        flags.iter().map(|f| f.to_string()).collect(),
    )
}

#[test]
fn the_inbox_is_read_with_each_messages_flags_at_each_moment() {
    let archive = archive();
    let inbox = folder("INBOX", false);
    // After the flag dance on message 1 and the keywords of message 2.
    let early = archive.at(&inbox, Some("2026-11-28T17:13:45.000Z"));
    assert_eq!(
        archive.contents(&early),
        vec![(
            "INBOX".to_string(),
            vec![
                message("plain test 1", 1, &["\\Flagged", "\\Seen"]),
                message(
                    "plain test 2",
                    2,
                    &["$Important", "$Label1", "\\Answered", "\\Seen"]
                ),
            ]
        )]
    );
    // Message 2 moved out, 3 and 4 appended; 1 still there (its copy is in Archive).
    let later = archive.at(&inbox, Some("2026-11-28T17:13:48.500Z"));
    assert_eq!(
        archive.contents(&later),
        vec![(
            "INBOX".to_string(),
            vec![
                message("plain test 1", 1, &["\\Flagged", "\\Seen"]),
                message("plain test 3", 3, &[]),
                message("plain test 4", 4, &[]),
            ]
        )]
    );
    // Each message keeps the INTERNALDATE its arrival recorded.
    let first = &later.folders[0].messages[0];
    assert!(first.internaldate_kept);
    assert_eq!(
        first.internaldate_ms,
        internaldate_ms(ms("2026-11-28T17:13:36.258Z"))
    );
}

#[test]
fn a_renamed_folder_is_found_by_its_name_then_with_what_was_copied_and_moved_into_it() {
    let archive = archive();
    let before_rename = Some("2026-11-28T17:13:48.500Z");
    let then = archive.at(&folder("Archive", false), before_rename);
    assert_eq!(
        archive.contents(&then),
        vec![(
            "Archive".to_string(),
            vec![
                message("plain test 1", 1, &["\\Flagged", "\\Seen"]),
                message(
                    "plain test 2",
                    2,
                    &["$Important", "$Label1", "\\Answered", "\\Seen"]
                ),
            ]
        )]
    );
    // Now it is Archive2; under its old name it is no longer there.
    let now = archive.at(&folder("Archive2", false), None);
    assert_eq!(now.folders[0].uniqueid, then.folders[0].uniqueid);
    assert!(matches!(
        snapshot(&archive.storage, JOHN, &folder("Archive", false), None),
        Err(RestoreError::NotFound(_))
    ));
}

#[test]
fn a_deleted_folder_is_read_just_before_its_deletion_by_default() {
    let archive = archive();
    let deleted = archive.at(&folder("Tmp2", false), None);
    assert_eq!(deleted.as_of_ms, ms("2026-11-28T17:13:30.665Z") - 1);
    assert_eq!(
        archive.contents(&deleted),
        vec![("Tmp2".to_string(), vec![])]
    );
    // Before its rename it was Tmp; before its creation it was not there.
    let renamed = archive.at(&folder("Tmp", false), Some("2026-11-28T17:13:29.500Z"));
    assert_eq!(renamed.folders[0].uniqueid, deleted.folders[0].uniqueid);
    assert!(matches!(
        snapshot(
            &archive.storage,
            JOHN,
            &folder("Tmp", false),
            Some(ms("2026-11-28T17:13:29.000Z"))
        ),
        Err(RestoreError::NotFound(_))
    ));
}

#[test]
fn an_expunged_message_is_restored_to_its_folder_as_it_was_just_before() {
    let archive = archive();
    let digest = archive.digests["plain test 3"].clone();
    let before = archive.at(&Selector::Message(digest), None);
    assert_eq!(before.as_of_ms, ms("2026-11-28T17:13:51.741Z") - 1);
    assert_eq!(
        archive.contents(&before),
        vec![(
            "INBOX".to_string(),
            vec![message("plain test 3", 3, &["\\Deleted"])]
        )]
    );
    assert_eq!(before.root, "INBOX");
}

#[test]
fn an_expired_message_is_in_its_folder_only_until_its_expiry() {
    let archive = archive();
    let expire = folder("Expire", false);
    let held = archive.at(&expire, Some("2026-11-28T17:13:56.000Z"));
    assert_eq!(
        archive.contents(&held),
        vec![("Expire".to_string(), vec![message("old", 1, &[])])]
    );
    let after = archive.at(&expire, Some("2026-11-28T17:13:58.000Z"));
    assert_eq!(
        archive.contents(&after),
        vec![("Expire".to_string(), vec![])]
    );
}
