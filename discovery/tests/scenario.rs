//! Items of the golden scenario archive (tests/fixtures/scenario-records/archive.json: what a
//! real Cyrus 3.6 sent for two users' appends, deliveries, flag changes, a copy, a move,
//! expunges, an expiry, folder renames and a deleted INBOX, as the handlers recorded it), fed
//! into a real SQLite storage with a payload and an item document for each message the archive
//! fetched: every place each message lived, its flags there and its end, read back by `state`;
//! and searches over them, which must give what the reference evaluator gives on every item,
//! however the storage's pages fall.

use std::path::Path;

use bonnie_discovery::{
    evaluate,
    item::{Item, ItemState},
    query::{Context, Query, parse},
    search::{SearchOptions, search},
    state::state,
};
use bonnie_model::custodians;
use bonnie_plugin_api::{
    IndexTerm, OutputItem, Record, Storage,
    items::{ITEMS, ItemDoc},
    plugin::storage_box,
    storage::StorageClient,
};
use bonnie_sqlite_storage::SqliteStorage;
use serde_json::{Value, json};

/// The scenario's archive in a real SQLite storage.
struct Archive {
    _dir: tempfile::TempDir,
    storage: StorageClient,
    /// The same database, for appending to its log as the worker does.
    log: SqliteStorage,
    /// The payload digest of each fetched message, by Subject.
    digests: Vec<(String, String)>,
}

impl Archive {
    fn digest(&self, subject: &str) -> &str {
        self.digests
            .iter()
            .find(|(s, _)| s == subject)
            .map(|(_, d)| d.as_str())
            .unwrap_or_else(|| panic!("no message {subject:?} in the scenario"))
    }

    fn state(&self, subject: &str) -> ItemState {
        state(&self.storage, self.digest(subject)).unwrap()
    }
}

/// The message a record of the scenario announced, as bytes: its headers as the record has
/// them (one LMTP delivery to two users is one message, so one payload).
fn message(record: &Value) -> Vec<u8> {
    let list = |field: &str| {
        record[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut bytes = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\n",
        list("from"),
        list("to"),
        record["subject"].as_str().unwrap_or_default(),
        record["date"].as_str().unwrap_or_default(),
    );
    if let Some(id) = record["message_id"].as_str() {
        bytes.push_str(&format!("Message-ID: {id}\r\n"));
    }
    bytes.push_str("\r\nThe scenario's message.\r\n");
    bytes.into_bytes()
}

/// A real SQLite storage in a temporary folder: a handle for appending to its log as the
/// worker does, and the client handlers and searches use.
fn database() -> (tempfile::TempDir, SqliteStorage, StorageClient) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bonnie.db");
    let log = SqliteStorage::open(&path, 5000).unwrap();
    let storage = StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap()));
    (dir, log, storage)
}

/// Loads the scenario: its log (each fetched message's payload kept and named by its entry,
/// as `collect::store_payloads` leaves it) and its trails and folder views.
fn archive() -> Archive {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/scenario-records/archive.json");
    let scenario: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let (dir, log, storage) = database();

    let mut digests = Vec::new();
    let mut items = Vec::new();
    for (job, entry) in scenario["log"].as_object().unwrap() {
        let mut record = entry["record"].clone();
        let event = record["event"].as_str().unwrap_or_default();
        if matches!(event, "MessageAppend" | "MessageNew") {
            let bytes = message(&record);
            let digest = storage.put_payload(&bytes).unwrap();
            let first_seen = entry["time_ms"].as_i64().unwrap();
            bonnie_model::items::store(&storage, &digest, &bytes, first_seen).unwrap();
            let uid = record["uid"].clone();
            record["payloads"] = json!([{ "uid": uid, "digest": digest, "size": bytes.len() }]);
            record["payload_digest"] = json!(digest);
            let subject = record["subject"].as_str().unwrap_or_default().to_string();
            if !digests.iter().any(|(s, _)| *s == subject) {
                digests.push((subject, digest));
            }
        }
        items.push(OutputItem::new(job.as_str(), record.to_string()));
    }
    log.append_log(items).unwrap();

    let index = scenario["record_index"].as_array().unwrap();
    for collection in ["message-history", "folders-current"] {
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
        log,
        digests,
    }
}

/// A trail entry of an event the scenario does not have, recorded as the changelog handler
/// records one.
fn trail_event(
    archive: &Archive,
    job: &str,
    event: &str,
    at: &str,
    folder: &str,
    uid: u64,
    flags: &[&str],
) {
    let record = json!({
        "event": event, "@timestamp": at, "folder": folder, "uids": [uid], "flags": flags,
        "user": "john.doe@example.org",
    });
    bonnie_model::mail_history::record(&archive.storage, record.as_object().unwrap(), job).unwrap();
}

fn ms(at: &str) -> i64 {
    bonnie_core::time::parse_rfc3339_ms(at).unwrap()
}

fn flags(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|f| f.to_string()).collect()
}

const INBOX: &str = "user/john.doe@example.org";
const ARCHIVE: &str = "user/john.doe/Archive@example.org";

#[test]
fn a_copied_message_lives_in_both_folders_with_its_flags_and_the_first_place_ends_at_its_expunge() {
    let archive = archive();
    let state = archive.state("plain test 1");
    assert_eq!(state.places.len(), 2, "{state:#?}");
    let (inbox, copy) = (&state.places[0], &state.places[1]);
    assert_eq!(
        (
            inbox.folder.as_str(),
            inbox.name.as_str(),
            inbox.uid,
            inbox.user.as_str()
        ),
        (INBOX, "INBOX", 1, "john.doe@example.org")
    );
    assert_eq!(inbox.uniqueid.as_deref(), Some("wrp915vo4ftuwc6ncu10wvjw"));
    assert_eq!(inbox.uidvalidity, Some(1795885999));
    assert_eq!(inbox.job, "line 031");
    assert!(!inbox.backfilled);
    assert_eq!(inbox.from_ms, ms("2026-11-28T17:13:36.258Z"));
    assert_eq!(inbox.until_ms, Some(ms("2026-11-28T17:13:50.315Z")));
    assert_eq!(inbox.ended_by.as_deref(), Some("MessageExpunge"));
    assert!(inbox.renamed_to.is_empty());

    // The copy: in Archive since the copy, renamed Archive2 later, still there.
    assert_eq!(
        (copy.folder.as_str(), copy.name.as_str(), copy.uid),
        (ARCHIVE, "Archive", 1)
    );
    assert_eq!(copy.uniqueid.as_deref(), Some("r92wbyxr9mm06mxxqia4q893"));
    assert_eq!(copy.uidvalidity, Some(1795886005));
    assert_eq!(copy.job, "line 057");
    assert_eq!(copy.from_ms, ms("2026-11-28T17:13:46.734Z"));
    assert_eq!((copy.until_ms, copy.ended_by.as_deref()), (None, None));
    assert_eq!(copy.renamed_to, ["Archive2"]);
    assert_eq!(
        copy.folder_names().collect::<Vec<_>>(),
        ["Archive", "Archive2"]
    );
    // It came with the flags the message had in INBOX when it was copied.
    assert_eq!(copy.flags_on_arrival, ["\\Flagged", "\\Seen"]);

    // INBOX's flags as they stood along the way: read, unread, read, flagged...
    let along: [(&str, &[&str]); 7] = [
        ("17:13:40.000", &[]),
        ("17:13:40.360", &["\\Seen"]),
        ("17:13:41.066", &[]),
        ("17:13:42.486", &["\\Seen", "\\Flagged"]),
        ("17:13:43.903", &["\\Seen", "\\Answered", "$Important"]),
        ("17:13:44.613", &["\\Seen", "\\Flagged"]),
        ("17:13:49.606", &["\\Seen", "\\Flagged", "\\Deleted"]),
    ];
    for (at, expected) in along {
        let when = ms(&format!("2026-11-28T{at}Z"));
        assert_eq!(state.flags_at(0, Some(when)), flags(expected), "at {at}");
    }
    let trashed = state
        .flag_changes
        .iter()
        .find(|c| c.job == "line 066")
        .unwrap();
    assert_eq!((trashed.place, trashed.set), (0, true));
    assert_eq!(trashed.login.as_deref(), Some("john.doe@example.org"));
    assert!(
        state.flag_changes.iter().all(|c| c.place == 0),
        "none in Archive"
    );
    assert!(
        state
            .flag_changes
            .windows(2)
            .all(|w| w[0].time_ms <= w[1].time_ms)
    );

    // Never deleted: the copy is still there; before the copy, only INBOX held it.
    assert_eq!(state.deleted_at(None), None);
    assert_eq!(state.places_at(None).count(), 1);
    assert_eq!(
        state
            .places_at(Some(ms("2026-11-28T17:13:45.000Z")))
            .count(),
        1
    );
    assert_eq!(
        state
            .places_at(Some(ms("2026-11-28T17:13:47.000Z")))
            .count(),
        2
    );
    assert!(!state.existed_at(Some(ms("2026-11-28T17:13:36.000Z"))));
}

#[test]
fn a_moved_message_ends_where_it_left_and_goes_on_after_its_folder_is_renamed() {
    let archive = archive();
    // After the rename, the trail goes on at Archive2; the old path is another folder's.
    trail_event(
        &archive,
        "extra 1",
        "FlagsSet",
        "2026-11-28T17:14:02.000Z",
        "user/john.doe/Archive2@example.org",
        2,
        &["\\Flagged"],
    );
    trail_event(
        &archive,
        "extra 2",
        "FlagsSet",
        "2026-11-28T17:14:02.500Z",
        ARCHIVE,
        2,
        &["$Junk"],
    );
    let state = archive.state("plain test 2");
    assert_eq!(state.places.len(), 2, "{state:#?}");
    let (inbox, moved) = (&state.places[0], &state.places[1]);
    assert_eq!((inbox.folder.as_str(), inbox.uid), (INBOX, 2));
    // Appended with `\seen`: one spelling for each system flag.
    assert_eq!(inbox.flags_on_arrival, ["\\Seen", "$Label1"]);
    assert_eq!(inbox.until_ms, Some(ms("2026-11-28T17:13:47.451Z")));
    assert_eq!(inbox.ended_by.as_deref(), Some("vnd.cmu.MessageMove"));

    assert_eq!(
        (moved.folder.as_str(), moved.uid, moved.job.as_str()),
        (ARCHIVE, 2, "line 059")
    );
    assert_eq!(moved.until_ms, None);
    assert_eq!(moved.renamed_to, ["Archive2"]);
    assert_eq!(
        state.flags_at(1, Some(ms("2026-11-28T17:13:50.000Z"))),
        flags(&["\\Seen", "$Label1", "\\Answered", "$Important"])
    );
    assert_eq!(
        state.flags_at(1, None),
        flags(&["\\Seen", "$Label1", "\\Answered", "$Important", "\\Flagged"])
    );
    assert!(state.flag_changes.iter().all(|c| c.job != "extra 2"));
    // Trashed and undeleted in INBOX before the move.
    let inbox_changes: Vec<_> = state
        .flag_changes
        .iter()
        .filter(|c| c.place == 0)
        .map(|c| (c.job.as_str(), c.set))
        .collect();
    assert_eq!(
        inbox_changes,
        [
            ("line 046", true),
            ("line 051", true),
            ("line 052", true),
            ("line 054", false)
        ]
    );
}

#[test]
fn one_delivery_to_two_users_is_one_item_in_both_mailboxes_and_a_deleted_inbox_ends_its_place() {
    let archive = archive();
    let state = archive.state("delivered via lmtp");
    let places: Vec<_> = state
        .places
        .iter()
        .map(|p| {
            (
                p.user.as_str(),
                p.name.as_str(),
                p.uid,
                p.ended_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            ("john.doe@example.org", "INBOX", 5, None),
            ("jane.doe@example.org", "INBOX", 1, Some("MailboxDelete")),
        ]
    );
    assert_eq!(
        state.places[1].until_ms,
        Some(ms("2026-11-28T17:14:03.746Z"))
    );
    // Trashed in john's INBOX, still there: not deleted, and flagged \Deleted.
    assert_eq!(state.deleted_at(None), None);
    assert_eq!(state.flags_at(0, None), flags(&["\\Deleted"]));
    assert_eq!(
        state.places_at(None).map(|(i, _)| i).collect::<Vec<_>>(),
        [0]
    );
}

#[test]
fn an_expired_or_expunged_message_is_deleted_from_then_on() {
    let archive = archive();
    let expired = archive.state("old");
    assert_eq!(expired.places.len(), 1);
    assert_eq!(expired.places[0].ended_by.as_deref(), Some("MessageExpire"));
    let at = ms("2026-11-28T17:13:57.002Z");
    assert_eq!(expired.deleted_at(None), Some(at));
    assert_eq!(expired.deleted_at(Some(at - 1)), None);
    assert_eq!(expired.deleted_at(Some(at)), Some(at));

    let expunged = archive.state("plain test 3");
    assert_eq!(
        expunged.places[0].ended_by.as_deref(),
        Some("MessageExpunge")
    );
    assert_eq!(
        expunged.deleted_at(None),
        Some(ms("2026-11-28T17:13:51.741Z"))
    );

    // A payload the log never named has no places.
    let unknown = state(&archive.storage, &"0".repeat(64)).unwrap();
    assert_eq!(unknown, ItemState::default());
}

#[test]
fn a_back_filled_message_is_marked_and_without_a_trail_has_its_arrival_alone() {
    let archive = archive();
    let bytes = b"Subject: found by back-fill\r\n\r\nIt was there before bonnie.\r\n";
    let digest = archive.storage.put_payload(bytes).unwrap();
    let record = json!({
        "event": "MessageAppend", "@timestamp": "2026-11-28T18:00:00.000Z",
        "folder": "shared/Team@example.org", "folder_uniqueid": "team-1", "uidvalidity": 9,
        "uid": 12, "uids": [12], "flags": ["\\seen", "\\ANSWERED"],
        "payloads": [{ "uid": 12, "digest": digest, "size": bytes.len() }],
        "payload_digest": digest,
        "vnd.bonnie.backfill": { "observed": "2026-11-28T18:00:00.000Z" },
    });
    archive
        .log
        .append_log(vec![OutputItem::new("backfill 1", record.to_string())])
        .unwrap();
    let state = state(&archive.storage, &digest).unwrap();
    let [place] = state.places.as_slice() else {
        panic!("one place: {state:#?}");
    };
    assert!(place.backfilled);
    // A shared folder's custodian is its path's first segment.
    assert_eq!(
        (place.user.as_str(), place.name.as_str()),
        ("shared", "shared/Team")
    );
    assert_eq!(
        (place.uniqueid.as_deref(), place.uidvalidity, place.uid),
        (Some("team-1"), Some(9), 12)
    );
    assert_eq!(place.flags_on_arrival, ["\\Seen", "\\Answered"]);
    assert_eq!((place.until_ms, state.flag_changes.len()), (None, 0));
}

fn context() -> Context {
    Context {
        zone: jiff::tz::TimeZone::UTC,
        local_domains: vec!["example.org".to_string()],
    }
}

/// What the reference evaluator says `query` finds at `as_of`, trying every item of the
/// archive, in date order then digest.
fn reference(archive: &Archive, query: &Query, as_of: Option<i64>) -> Vec<String> {
    let mut found: Vec<(i64, String)> = Vec::new();
    for (_, digest) in &archive.digests {
        let stored = archive.storage.get(ITEMS, digest).unwrap().unwrap();
        let doc: ItemDoc = serde_json::from_str(stored.body.as_str()).unwrap();
        let item = Item {
            state: state(&archive.storage, digest).unwrap(),
            doc,
        };
        let bytes = archive.storage.get_payload(digest).unwrap().unwrap();
        let mut text = || bonnie_model::items::document(digest, &bytes, 0).1;
        if evaluate::matches(query, &item, &mut text, &context(), as_of) {
            found.push((item.doc.date_ms, digest.clone()));
        }
    }
    found.sort();
    found.into_iter().map(|(_, d)| d).collect()
}

fn subjects(archive: &Archive, digests: &[String]) -> Vec<String> {
    digests
        .iter()
        .map(|d| {
            let (subject, _) = archive.digests.iter().find(|(_, x)| x == d).unwrap();
            subject.clone()
        })
        .collect()
}

fn searched(archive: &Archive, query: &Query, options: &SearchOptions) -> Vec<String> {
    search(&archive.storage, query, &context(), options)
        .unwrap()
        .into_iter()
        .map(|item| item.doc.digest)
        .collect()
}

#[test]
fn searches_find_what_the_reference_finds_with_any_limit_in_either_order() {
    let archive = archive();
    let before_deletion = ms("2026-11-28T17:14:00.000Z");
    let cases: [(&str, Option<i64>, &[&str]); 9] = [
        ("*", None, &[]),
        ("subject:\"plain test\"", None, &[]),
        ("folder:Archive2", None, &["plain test 1", "plain test 2"]),
        (
            "deleted:yes",
            None,
            &["old", "plain test 3", "plain test 4"],
        ),
        (
            "deleted:yes",
            Some(ms("2026-11-28T17:13:52.000Z")),
            &["plain test 3", "plain test 4"],
        ),
        (
            "user:jane.doe",
            Some(before_deletion),
            &["delivered via lmtp"],
        ),
        ("flag:\\Flagged subject:plain", None, &["plain test 1"]),
        (
            "scenario -folder:INBOX",
            None,
            &["old", "5A637BF7-D0A8-4AB3-91F3-6C7B4B6F6D3B"],
        ),
        (
            "subject:\"plain test\" deleted:yes",
            None,
            &["plain test 3", "plain test 4"],
        ),
    ];
    let everything = reference(&archive, &parse("*", &context()).unwrap(), None);
    assert_eq!(
        everything.len(),
        archive.digests.len(),
        "every message is an item"
    );
    for (text, as_of, expected) in cases {
        let query = parse(text, &context()).unwrap();
        let all = reference(&archive, &query, as_of);
        if !expected.is_empty() {
            let mut wanted: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            let mut got = subjects(&archive, &all);
            wanted.sort();
            got.sort();
            assert_eq!(got, wanted, "the reference for {text:?}");
        }
        let options = |limit, descending| SearchOptions {
            as_of,
            limit,
            descending,
        };
        assert_eq!(
            searched(&archive, &query, &options(None, false)),
            all,
            "{text:?}"
        );
        let reversed: Vec<String> = all.iter().rev().cloned().collect();
        assert_eq!(
            searched(&archive, &query, &options(None, true)),
            reversed,
            "{text:?}"
        );
        for limit in 1..=all.len() + 1 {
            let first = searched(&archive, &query, &options(Some(limit), false));
            assert_eq!(first, all[..limit.min(all.len())], "{text:?} limit {limit}");
            let last = searched(&archive, &query, &options(Some(limit), true));
            assert_eq!(
                last,
                reversed[..limit.min(all.len())],
                "{text:?} limit {limit} newest first"
            );
        }
        assert!(searched(&archive, &query, &options(Some(0), false)).is_empty());
    }
}

#[test]
fn a_searched_item_has_its_document_and_its_state() {
    let archive = archive();
    let query = parse(
        "message-id:<1795886032.479214.18789@example.org>",
        &context(),
    )
    .unwrap();
    let found = search(
        &archive.storage,
        &query,
        &context(),
        &SearchOptions::default(),
    )
    .unwrap();
    let [item] = found.as_slice() else {
        panic!("one item: {found:#?}");
    };
    assert_eq!(item.doc.subject, "delivered via lmtp");
    assert_eq!(item.doc.from, ["Jane Doe <jane.doe@example.org>"]);
    assert_eq!(
        item.state,
        state(&archive.storage, &item.doc.digest).unwrap()
    );
    assert_eq!(item.state.places.len(), 2);
}

#[test]
fn pages_that_fall_among_many_items_of_one_date_miss_none_and_repeat_none() {
    // 25 messages with one Date, appended alternately to Keep and Drop: a search for the
    // folder gets pages full of one date, most of whose candidates the residual drops.
    let (_dir, log, storage) = database();
    let mut digests = Vec::new();
    let mut entries = Vec::new();
    for n in 0..25u64 {
        let bytes = format!(
            "Subject: report {n}\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\nQuarterly figures.\r\n"
        );
        let digest = storage.put_payload(bytes.as_bytes()).unwrap();
        bonnie_model::items::store(&storage, &digest, bytes.as_bytes(), 0).unwrap();
        let folder = if n % 3 == 0 { "Keep" } else { "Drop" };
        let record = json!({
            "event": "MessageAppend", "@timestamp": format!("2026-12-01T10:00:{n:02}.000Z"),
            "folder": format!("user/john.doe/{folder}@example.org"), "folder_name": folder,
            "folder_owner": "john.doe@example.org", "uid": n + 1, "uids": [n + 1],
            "payloads": [{ "uid": n + 1, "digest": digest, "size": bytes.len() }],
            "payload_digest": digest,
        });
        entries.push(OutputItem::new(format!("job {n}"), record.to_string()));
        if folder == "Keep" {
            digests.push(digest);
        }
    }
    log.append_log(entries).unwrap();
    // Items of one date come in digest order.
    digests.sort();
    let reversed: Vec<String> = digests.iter().rev().cloned().collect();
    for text in ["folder:Keep", "quarterly folder:Keep"] {
        let query = parse(text, &context()).unwrap();
        for limit in 1..=digests.len() + 1 {
            for (descending, expected) in [(false, &digests), (true, &reversed)] {
                let options = SearchOptions {
                    limit: Some(limit),
                    descending,
                    ..SearchOptions::default()
                };
                let found: Vec<String> = search(&storage, &query, &context(), &options)
                    .unwrap()
                    .into_iter()
                    .map(|item| item.doc.digest)
                    .collect();
                let wanted = &expected[..limit.min(expected.len())];
                assert_eq!(
                    found, wanted,
                    "{text} limit {limit} descending {descending}"
                );
            }
        }
    }
}

#[test]
fn a_subfolder_renamed_with_its_parent_is_followed_to_its_new_path() {
    // Cyrus notifies the rename of Projects, not the implied one of Projects/Alpha: the
    // message's later trail is at Old/Alpha, and the old path is a new folder's by then.
    let (_dir, log, storage) = database();
    let bytes = b"Subject: alpha plan\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\n\r\nPlan.\r\n";
    let digest = storage.put_payload(bytes).unwrap();
    let alpha = "user/john.doe/Projects/Alpha@example.org";
    let moved = "user/john.doe/Old/Alpha@example.org";
    let event = |event: &str, at: &str, folder: &str, uniqueid: &str, extra: Value| {
        let name = bonnie_core::imap::uri::Mailbox::from_path(folder).name;
        let mut record = json!({
            "event": event, "@timestamp": format!("2026-12-01T{at}Z"), "server": "imap.example.org",
            "folder": folder, "folder_name": name, "folder_owner": "john.doe@example.org",
            "folder_uniqueid": uniqueid, "uidvalidity": 7, "user": "john.doe@example.org",
        });
        record
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        record
    };
    let uid = |flags: &[&str]| json!({ "uid": 1, "uids": [1], "flags": flags });
    let appended = {
        let mut record = event("MessageAppend", "10:01:00.000", alpha, "alpha-1", uid(&[]));
        record["payloads"] = json!([{ "uid": 1, "digest": digest, "size": bytes.len() }]);
        record["payload_digest"] = json!(digest);
        record
    };
    let records = [
        event("MailboxCreate", "10:00:00.000", alpha, "alpha-1", json!({})),
        appended,
        event(
            "MailboxRename",
            "10:02:00.000",
            "user/john.doe/Old@example.org",
            "projects-1",
            json!({ "old_folder": "user/john.doe/Projects@example.org" }),
        ),
        event("MailboxCreate", "10:02:30.000", alpha, "alpha-2", json!({})),
        event(
            "FlagsSet",
            "10:03:00.000",
            moved,
            "alpha-1",
            uid(&["\\Flagged"]),
        ),
        event(
            "FlagsSet",
            "10:03:30.000",
            alpha,
            "alpha-2",
            uid(&["$Decoy"]),
        ),
        event("MessageExpunge", "10:04:00.000", moved, "alpha-1", uid(&[])),
    ];
    let mut entries = Vec::new();
    for (n, record) in records.into_iter().enumerate() {
        let job = format!("job {n}");
        let mut record = record.as_object().unwrap().clone();
        bonnie_model::folders::resolve(&storage, &mut record, 0).unwrap();
        bonnie_model::mail_history::record(&storage, &record, &job).unwrap();
        entries.push(OutputItem::new(job, Value::Object(record).to_string()));
    }
    log.append_log(entries).unwrap();

    let state = state(&storage, &digest).unwrap();
    let [place] = state.places.as_slice() else {
        panic!("one place: {state:#?}");
    };
    assert_eq!(place.name, "Projects/Alpha");
    assert_eq!(place.renamed_to, ["Old/Alpha"]);
    assert_eq!(place.ended_by.as_deref(), Some("MessageExpunge"));
    assert_eq!(place.until_ms, Some(ms("2026-12-01T10:04:00.000Z")));
    let changes: Vec<_> = state.flag_changes.iter().map(|c| c.flags.clone()).collect();
    assert_eq!(
        changes,
        [vec!["\\Flagged".to_string()]],
        "not the new folder's"
    );
}

/// A search of a custodian's mail reads only the payloads their custodian records name once
/// the records are complete (`bonnie_model::custodians`), and finds what the reference finds
/// on the scenario's appends, deliveries to two users, copy, move and renames.
#[test]
fn a_custodian_s_search_is_narrowed_to_their_payloads_and_finds_what_the_reference_finds() {
    let archive = archive();
    assert_eq!(
        custodians::digests(&archive.storage, "john.doe").unwrap(),
        None
    );
    assert!(custodians::fill_logged(&archive.storage, |_| {}).unwrap() > 0);
    let johns = custodians::digests(&archive.storage, "john.doe").unwrap();
    assert!(
        johns.is_some_and(|d| !d.is_empty()),
        "the scenario's records say"
    );
    for text in [
        "user:jane.doe",
        "user:JOHN.DOE@example.org",
        "user:john.doe OR user:jane.doe",
        "user:john.doe folder:INBOX",
        "plain user:john.doe",
        "user:nobody",
    ] {
        let query = parse(text, &context()).unwrap();
        let all = reference(&archive, &query, None);
        for limit in [None, Some(1), Some(2), Some(100)] {
            let options = SearchOptions {
                limit,
                ..SearchOptions::default()
            };
            let wanted = &all[..limit.unwrap_or(all.len()).min(all.len())];
            assert_eq!(
                searched(&archive, &query, &options),
                wanted,
                "{text:?} {limit:?}"
            );
        }
    }
}

/// The records decide a custodian's candidates: a payload of theirs without a record is not
/// found (which is why they must be complete), and one message of theirs the records cannot
/// name (unknown) makes the search judge every item again.
#[test]
fn a_custodian_s_candidates_are_the_payloads_their_records_name_unless_one_is_unknown() {
    let (_dir, log, storage) = database();
    assert!(custodians::begin(&storage).unwrap());
    let arrival = |n: u64, digest: &str| {
        json!({
            "event": "MessageAppend", "@timestamp": format!("2026-12-01T10:00:0{n}.000Z"),
            "folder": "user/jörg@example.org", "folder_name": "INBOX",
            "folder_owner": "jörg@example.org", "uid": n, "uids": [n],
            "payloads": [{ "uid": n, "digest": digest }], "payload_digest": digest,
        })
    };
    let mut digests = Vec::new();
    let mut entries = Vec::new();
    for n in 1..=2u64 {
        let bytes = format!("Subject: Bericht {n}\r\n\r\nÜbersicht.\r\n");
        let digest = storage.put_payload(bytes.as_bytes()).unwrap();
        bonnie_model::items::store(&storage, &digest, bytes.as_bytes(), n as i64).unwrap();
        entries.push(OutputItem::new(
            format!("j{n}"),
            arrival(n, &digest).to_string(),
        ));
        digests.push(digest);
    }
    log.append_log(entries).unwrap();
    // Only the first arrival's record, as if the second had been archived by an older bonnie.
    let Value::Object(first) = arrival(1, &digests[0]) else {
        unreachable!()
    };
    custodians::record(&storage, &first).unwrap();
    let query = parse("user:JÖRG übersicht", &context()).unwrap();
    let found = |storage: &StorageClient| -> Vec<String> {
        search(storage, &query, &context(), &SearchOptions::default())
            .unwrap()
            .into_iter()
            .map(|item| item.doc.digest)
            .collect()
    };
    assert_eq!(found(&storage), [digests[0].clone()]);
    // A copy into his folder whose source the archive cannot name.
    let copy = json!({
        "event": "vnd.cmu.MessageCopy", "@timestamp": "2026-12-01T10:01:00.000Z",
        "folder": "user/jörg@example.org", "folder_owner": "jörg@example.org",
        "old_folder": "user/eve@example.org", "uids": [3], "old_uids": [9],
    });
    let Value::Object(copy) = copy else {
        unreachable!()
    };
    assert_eq!(custodians::record(&storage, &copy).unwrap(), 1);
    let mut both = digests.clone();
    both.sort_by_key(|d| {
        storage
            .get(ITEMS, d)
            .unwrap()
            .unwrap()
            .time_ms
            .into_option()
    });
    assert_eq!(found(&storage), both, "every item judged again");
}
