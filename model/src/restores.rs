//! A restore's own writes into Cyrus, recognized when they come back as notifications. Before
//! each APPEND, a restore (bonnie-restore) records what it is about to file: the target
//! folder's uniqueid and the payload's digest, with its run, its moment and the archived
//! folder and UID the message is a copy of (`restores-intended`). The handler that archives
//! the MessageAppend Cyrus then sends finds that record by the same two keys and marks the
//! record `restored_by`, so the archive shows a restore there, not new user activity.
//!
//! Written before the APPEND, the record is there whichever comes first, the worker's record
//! or the restore's next step. The bytes are appended unchanged (no header added), so the
//! digest is the only mark: the same bytes appended again into the same folder by a client
//! would be taken for the restore's too.

use bonnie_plugin_api::{
    PluginError,
    storage::{Record, StorageClient},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::record::{Object, uid_list};

/// The messages restores are about to append, keyed by [`intent_key`].
pub const INTENDED: &str = "restores-intended";

/// What a restore is about to append, and what it is a copy of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredBy {
    /// The restore's run.
    pub run: String,
    /// The moment restored (RFC 3339).
    pub as_of: String,
    /// The archived place the message is a copy of.
    pub from: RestoredFrom,
}

/// The archived place a restored message is a copy of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredFrom {
    /// The folder's name (as its owner saw it) at the moment.
    pub folder: String,
    /// The message's UID there.
    pub uid: u64,
}

/// The key of an intended append: `<target folder uniqueid>\u{1f}<payload digest>`.
pub fn intent_key(uniqueid: &str, digest: &str) -> String {
    format!("{uniqueid}\u{1f}{digest}")
}

/// Records that a restore is about to append payload `digest` into the folder `uniqueid`.
pub fn intend(
    storage: &StorageClient,
    uniqueid: &str,
    digest: &str,
    by: &RestoredBy,
) -> Result<(), PluginError> {
    let body = json!({
        "run": by.run, "as_of": by.as_of,
        "from": { "folder": by.from.folder, "uid": by.from.uid },
    });
    storage.put(Record::new(INTENDED, &intent_key(uniqueid, digest), &body))
}

/// Marks a MessageAppend of one message a restore intended (`restored_by`); true if it was.
/// Restores append one message at a time, so a record of several appends it has not.
pub fn mark(storage: &StorageClient, record: &mut Object) -> Result<bool, PluginError> {
    if record.get("event").and_then(Value::as_str) != Some("MessageAppend") {
        return Ok(false);
    }
    let Some(uniqueid) = record.get("folder_uniqueid").and_then(Value::as_str) else {
        return Ok(false);
    };
    let uid = match uid_list(record, "uids").as_slice() {
        [only] => *only,
        [] => match record.get("uid").and_then(Value::as_u64) {
            Some(uid) => uid,
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    let Some(digest) = crate::collect::kept_digest(record, uid) else {
        return Ok(false);
    };
    let Some(intended) = storage.get(INTENDED, &intent_key(uniqueid, &digest))? else {
        return Ok(false);
    };
    let by: Value = serde_json::from_str(intended.body.as_str()).map_err(|e| {
        PluginError::transient(format!(
            "the storage's {INTENDED} record of folder {uniqueid}, payload {digest} is not JSON: {e}"
        ))
    })?;
    record.insert("restored_by".to_string(), by);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::plugin::storage_box;
    use bonnie_sqlite_storage::SqliteStorage;
    use serde_json::json;

    use super::*;

    fn append(uids: Value, digest: &str) -> Object {
        let Value::Object(record) = json!({
            "event": "MessageAppend", "folder_uniqueid": "f-1", "uidvalidity": 7,
            "uids": uids, "payloads": [{ "uid": 3, "digest": digest }],
        }) else {
            unreachable!()
        };
        record
    }

    #[test]
    fn only_the_append_a_restore_intended_is_marked_as_the_restores() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open(&dir.path().join("b.db"), 5000).unwrap();
        let storage = StorageClient::new(storage_box(store));
        let by = RestoredBy {
            run: "restore-1".into(),
            as_of: "2026-11-28T10:00:00.000Z".into(),
            from: RestoredFrom {
                folder: "Projekte".into(),
                uid: 12,
            },
        };
        intend(&storage, "f-1", "d1", &by).unwrap();
        let mut restored = append(json!([3]), "d1");
        assert!(mark(&storage, &mut restored).unwrap());
        let marked: RestoredBy = serde_json::from_value(restored["restored_by"].clone()).unwrap();
        assert_eq!(marked, by);
        // Other bytes, another folder, several appends at once: the user's.
        let mut other = append(json!([3]), "d2");
        assert!(!mark(&storage, &mut other).unwrap());
        let mut elsewhere = append(json!([3]), "d1");
        elsewhere.insert("folder_uniqueid".into(), json!("f-2"));
        assert!(!mark(&storage, &mut elsewhere).unwrap());
        let mut several = append(json!([3, 4]), "d1");
        assert!(!mark(&storage, &mut several).unwrap());
        assert!(!other.contains_key("restored_by") && !several.contains_key("restored_by"));
    }
}
