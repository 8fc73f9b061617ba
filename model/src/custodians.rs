//! Whose each archived message has been: one record per custodian and payload, written when a
//! message arrives in a custodian's folder or is copied or moved into one, so that a search
//! for a custodian's mail (`user:`) reads that custodian's payloads first instead of judging
//! the state of every item a word matches (docs/decisions.md 91).
//!
//! A custodian is the owner of a place the message's state has, as e-discovery's state names
//! it ([`owner_of`]). The records are a superset that may only be trusted whole:
//! - an archive whose log began before them is not complete until
//!   `bonnie reprocess --handler items` has walked its log ([`fill_logged`]); until then, and
//!   for an archive that is not marked complete ([`is_complete`]), nothing narrows;
//! - a copy or move into another custodian's folder whose source the archive cannot name yet
//!   (the source's arrival still in flight on another worker, or no trails kept) and a folder
//!   renamed into another custodian's namespace write that custodian's *unknown* record: that
//!   custodian is never narrowed.
//!
//! Every write is a put of its own key: idempotent, no read-modify-write, so any number of
//! workers and threads write them in any order.

use bonnie_core::imap::uri::Mailbox;
use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};
use serde_json::{Value, json};

use crate::{
    collect::kept_payloads,
    log_pages, mail_history,
    message_places::PLACING_EVENTS,
    record::{self, Object},
};

/// The custodian records, keyed `<login in lower case>\u{1f}<digest>` (or `…\u{1f}?`).
pub const CUSTODIANS: &str = "item-custodians";
/// Their index term: the login in lower case and, for a login with a domain, its local part.
pub const CUSTODIAN_FIELD: &str = "custodian";
/// The key of the record saying the records are complete.
const COMPLETE: &str = "\u{1f}complete";
/// The digest of an unknown record.
const UNKNOWN: &str = "?";
/// The most payloads a custodian's search is narrowed to; one with more is searched whole.
pub const MOST: usize = 50_000;
/// Log entries read per page by [`fill_logged`].
const LOG_PAGE: u32 = 1000;

/// The custodian of a place in `folder`, as e-discovery's item state names it: the folder's
/// owner as its record (`logged`, when there is one) says, else as its path says, else the
/// path's first segment (`shared` for a shared folder).
pub fn owner_of(folder: &str, logged: Option<&Object>) -> String {
    let named = logged
        .and_then(|l| l.get("folder_owner"))
        .and_then(Value::as_str)
        .map(str::to_string);
    named.unwrap_or_else(|| {
        let mailbox = Mailbox::from_path(folder);
        mailbox.owner.unwrap_or_else(|| {
            let first = mailbox.name.split('/').next().unwrap_or_default();
            first.to_string()
        })
    })
}

/// The index values a custodian's records are found by.
fn terms(login: &str) -> Vec<String> {
    let login = login.to_lowercase();
    let local = login.split_once('@').map(|(local, _)| local.to_string());
    std::iter::once(login).chain(local).collect()
}

/// Records that `login` holds (or held) the message of payload `digest`; [`UNKNOWN`] for a
/// message the archive cannot name.
fn put(storage: &StorageClient, login: &str, digest: &str) -> Result<(), PluginError> {
    let key = format!("{}\u{1f}{digest}", login.to_lowercase());
    let body = json!({ "login": login, "digest": digest });
    let mut stored = Record::new(CUSTODIANS, &key, &body);
    for term in terms(login) {
        stored = stored.indexed(CUSTODIAN_FIELD, &term);
    }
    storage.put(stored)
}

/// Records the custodians a normalized record gives its messages; how many records it wrote.
/// An append or delivery: the folder's owner, for each payload it names. A copy or move into
/// a folder of another owner: that owner, for the payloads it names or its trail leads back
/// to, else unknown. A folder renamed into another owner's namespace: the new owner, unknown.
pub fn record(storage: &StorageClient, record: &Object) -> Result<usize, PluginError> {
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    let (Some(event), Some(folder)) = (text("event"), text("folder")) else {
        return Ok(0);
    };
    let owner = owner_of(folder, Some(record));
    let moved_in = || text("old_folder").map(|old| owner_of(old, None) != owner);
    if event == "MailboxRename" {
        if moved_in() != Some(true) {
            return Ok(0);
        }
        put(storage, &owner, UNKNOWN)?;
        return Ok(1);
    }
    if !PLACING_EVENTS.contains(&event) {
        return Ok(0);
    }
    let mut named = kept_payloads(record);
    if named.is_empty() {
        // A copy or move within one owner's folders: the source's place has the custodian.
        if moved_in() != Some(true) {
            return Ok(0);
        }
        match mail_history::payloads_by_trail(storage, record)? {
            Some(found) => named = found,
            None => {
                put(storage, &owner, UNKNOWN)?;
                return Ok(1);
            }
        }
    }
    let mut digests: Vec<String> = named.into_iter().map(|(_, digest)| digest).collect();
    digests.sort();
    digests.dedup();
    for digest in &digests {
        put(storage, &owner, digest)?;
    }
    Ok(digests.len())
}

/// True if the archive's custodian records are complete (see the module documentation).
pub fn is_complete(storage: &StorageClient) -> Result<bool, PluginError> {
    Ok(storage.get(CUSTODIANS, COMPLETE)?.is_some())
}

/// Marks the custodian records complete, by `how` (`new archive`, `reprocess`).
pub fn mark_complete(storage: &StorageClient, how: &str) -> Result<(), PluginError> {
    let body = json!({ "complete": how });
    storage.put(Record::new(CUSTODIANS, COMPLETE, &body))
}

/// Marks the custodian records of a new archive (nothing logged yet) complete: every handler
/// from now on writes them. True if the archive's records are complete.
pub fn begin(storage: &StorageClient) -> Result<bool, PluginError> {
    if is_complete(storage)? {
        return Ok(true);
    }
    let first = RecordQuery {
        collection: "log".to_string(),
        limit: 1,
        ..RecordQuery::default()
    };
    if !storage.query(&first)?.is_empty() {
        return Ok(false);
    }
    mark_complete(storage, "new archive")?;
    Ok(true)
}

/// The payloads of the custodian `user:` names (a login or its local part, in any case), at
/// most [`MOST`]; `None` when the records cannot say (not complete, a message of theirs
/// unknown, or more than [`MOST`]).
pub fn digests(storage: &StorageClient, user: &str) -> Result<Option<Vec<String>>, PluginError> {
    if !is_complete(storage)? {
        return Ok(None);
    }
    let query = RecordQuery {
        collection: CUSTODIANS.to_string(),
        index: Some((CUSTODIAN_FIELD.to_string(), user.to_lowercase())),
        limit: MOST as u32 + 1,
        ..RecordQuery::default()
    };
    // The keys alone: the digest is the end of each, and reading the records too (and
    // sorting them by time) took 30 times as long at a million messages (decision 93).
    let keys = storage.query_keys(&query)?;
    if keys.len() > MOST {
        return Ok(None);
    }
    let mut digests = Vec::with_capacity(keys.len());
    for key in &keys {
        // The key ends with the digest (a login never holds the separator at its end).
        match key.rsplit_once('\u{1f}') {
            Some((_, UNKNOWN)) | None => return Ok(None),
            Some((_, digest)) => digests.push(digest.to_string()),
        }
    }
    digests.sort();
    digests.dedup();
    Ok(Some(digests))
}

/// Writes the custodian records of every log entry, oldest first, then marks them complete:
/// for an archive logged before they were kept (`bonnie reprocess --handler items`). Workers
/// of this version write them for whatever they archive meanwhile. `progress` is told the
/// entries read after each page and at the end. How many records were written.
pub fn fill_logged(
    storage: &StorageClient,
    mut progress: impl FnMut(u64),
) -> Result<u64, PluginError> {
    let mut written = 0u64;
    let visited = log_pages::walk(
        storage,
        (None, None),
        LOG_PAGE,
        |entry| {
            let Ok(Value::Object(mut logged)) = serde_json::from_str(entry.body.as_str()) else {
                return Ok(());
            };
            // Normalizing is idempotent; an entry an older bonnie logged gains the fields.
            let time_ms = entry.time_ms.into_option().unwrap_or_default();
            record::normalize(&mut logged, time_ms);
            written += self::record(storage, &logged)? as u64;
            Ok::<_, PluginError>(())
        },
        |_, visited| progress(visited),
    )?;
    progress(visited);
    mark_complete(storage, "reprocess")?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::{OutputItem, Storage, plugin::storage_box};
    use bonnie_sqlite_storage::SqliteStorage;

    use super::*;
    use crate::items::tests::storage;

    /// A notification as the handler has it: normalized.
    fn normalized(notification: &str) -> Object {
        let mut record: Object = serde_json::from_str(notification).unwrap();
        record::normalize(&mut record, 0);
        record
    }

    /// An append of `uid` into `folder` (a URI path) keeping payload `digest`, normalized.
    fn append(folder: &str, uid: u64, digest: &str) -> Object {
        let mut record = normalized(
            &json!({
                "event": "MessageAppend",
                "timestamp": "2026-11-28T17:13:40.000Z",
                "uri": format!("imap://cyrus-lab.example.org/{folder};UIDVALIDITY=7;UID={uid}"),
                "uidset": uid.to_string(),
            })
            .to_string(),
        );
        record.insert("payloads".into(), json!([{ "uid": uid, "digest": digest }]));
        record
    }

    /// Cyrus's own copy notification (captured from Cyrus 3.6) with its destination changed.
    fn copy_into(folder: &str, event: &str) -> Object {
        let captured = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/reference/cyrus/events/vnd.cmu.MessageCopy-1.json"),
        )
        .unwrap()
        .replace("user/john.doe/Archive%40example.org", folder)
        .replace("vnd.cmu.MessageCopy", event);
        normalized(&captured)
    }

    fn found(storage: &StorageClient, user: &str) -> Option<Vec<String>> {
        digests(storage, user).unwrap()
    }

    #[test]
    fn a_message_s_custodians_are_the_owners_of_the_folders_it_came_to() {
        let (_dir, storage, log) = storage();
        assert!(begin(&storage).unwrap(), "a new archive is complete");
        let arrival = append("user/john.doe%40example.org", 1, "d1");
        assert_eq!(record(&storage, &arrival).unwrap(), 1);
        for user in ["john.doe", "JOHN.DOE@example.org", "john.doe@EXAMPLE.org"] {
            assert_eq!(
                found(&storage, user),
                Some(vec!["d1".to_string()]),
                "{user}"
            );
        }
        assert_eq!(
            found(&storage, "john"),
            Some(vec![]),
            "a login is found whole"
        );

        // Copied and moved within his own folders: no record, his arrival has the custodian.
        let within = copy_into("user/john.doe/Archive%40example.org", "vnd.cmu.MessageMove");
        assert_eq!(record(&storage, &within).unwrap(), 0);

        // Into another custodian's folder, named in Greek: the payload the trail leads to.
        mail_history::record(&storage, &arrival, "j1").unwrap();
        log.append_log(vec![OutputItem::new(
            "j1",
            Value::Object(arrival.clone()).to_string(),
        )])
        .unwrap();
        let shared = copy_into(
            "user/j%C3%B6rg/%CE%91%CF%81%CF%87%CE%B5%CE%AF%CE%BF%40example.org",
            "vnd.cmu.MessageCopy",
        );
        assert_eq!(shared["folder_owner"], "jörg@example.org");
        assert_eq!(record(&storage, &shared).unwrap(), 1);
        assert_eq!(found(&storage, "JÖRG"), Some(vec!["d1".to_string()]));

        // A copy whose source the archive cannot name: that custodian is not narrowed.
        let mut unknown = copy_into("user/eve%40example.org", "vnd.cmu.MessageMove");
        unknown.insert("old_uids".into(), json!([99]));
        assert_eq!(record(&storage, &unknown).unwrap(), 1);
        assert_eq!(found(&storage, "eve"), None);
        assert_eq!(found(&storage, "john.doe").map(|d| d.len()), Some(1));

        // A folder renamed into another custodian's namespace: neither is its place's user
        // told by the path any more, so the new owner is not narrowed.
        let renamed = normalized(
            &json!({
                "event": "MailboxRename",
                "timestamp": "2026-11-28T17:14:00.000Z",
                "oldMailboxID": "imap://h/user/john.doe/Projekt%40example.org;UIDVALIDITY=9",
                "uri": "imap://h/user/mallory/Projekt%40example.org;UIDVALIDITY=9",
            })
            .to_string(),
        );
        assert_eq!(found(&storage, "mallory"), Some(vec![]));
        assert_eq!(record(&storage, &renamed).unwrap(), 1);
        assert_eq!(found(&storage, "mallory"), None);
    }

    #[test]
    fn an_archive_logged_before_custodians_narrows_nothing_until_its_log_is_walked() {
        let (_dir, storage, log) = storage();
        let entries: Vec<OutputItem> = (1..=3)
            .map(|n| {
                let folder = match n {
                    3 => "user/ana%40example.org",
                    _ => "user/john.doe%40example.org",
                };
                let arrival = append(folder, n, &format!("d{n}"));
                OutputItem::new(format!("j{n}"), Value::Object(arrival).to_string())
            })
            .collect();
        log.append_log(entries).unwrap();
        assert!(
            !begin(&storage).unwrap(),
            "its log began before the records"
        );
        assert_eq!(found(&storage, "john.doe"), None);
        let mut told = Vec::new();
        assert_eq!(fill_logged(&storage, |n| told.push(n)).unwrap(), 3);
        assert_eq!(told.last(), Some(&3));
        assert!(is_complete(&storage).unwrap());
        assert_eq!(
            found(&storage, "john.doe"),
            Some(vec!["d1".to_string(), "d2".to_string()])
        );
        assert_eq!(found(&storage, "ana"), Some(vec!["d3".to_string()]));
    }

    /// Eight threads of two stores on one file write arrivals for one custodian, each twice:
    /// every payload is listed once.
    #[test]
    fn records_written_by_many_threads_are_each_listed_once() {
        let (dir, storage, _log) = storage();
        begin(&storage).unwrap();
        let other = StorageClient::new(storage_box(
            SqliteStorage::open(&dir.path().join("b.db"), 5000).unwrap(),
        ));
        std::thread::scope(|scope| {
            for thread in 0..8u64 {
                let storage = if thread % 2 == 0 { &storage } else { &other };
                scope.spawn(move || {
                    for n in 0..50u64 {
                        let uid = n * 4 + thread % 4 + 1;
                        let arrival =
                            append("user/%D0%B8%D0%B2%D0%B0%D0%BD", uid, &format!("d{uid:03}"));
                        record(storage, &arrival).unwrap();
                    }
                });
            }
        });
        let listed = found(&storage, "иван").unwrap();
        assert_eq!(listed.len(), 200);
        assert_eq!(listed.first().map(String::as_str), Some("d001"));
    }
}
