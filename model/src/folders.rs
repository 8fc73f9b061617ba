//! Folder records. A folder's state (name, path, owner, type, metadata, ACL with subjects
//! mapped to user ids) has an id that is a checksum of that state: a changed ACL, type or name
//! makes a new folder record, while `folder_uniqueid` (Cyrus's `mailboxID`) stays. The view of
//! each folder's current state, kept by uniqueid, links the names a folder had and tracks the
//! highest modseq, uidnext and uidvalidity seen, for a later reconciler.

use std::collections::BTreeMap;

use bonnie_plugin_api::{PluginError, Record, storage::StorageClient};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    cache,
    record::{Object, event_ms},
    users,
};

/// Folder states, by folder id.
pub const FOLDERS: &str = "folders";

/// Each folder's current state, by uniqueid (a derived view: rebuilt from the log if lost).
pub const CURRENT: &str = "folders-current";

/// Metadata that changes with every message, not part of a folder's state.
const VOLATILE_METADATA: [&str; 3] = [
    "/shared/vendor/cmu/cyrus-imapd/lastupdate",
    "/shared/vendor/cmu/cyrus-imapd/pop3newuidl",
    "/shared/vendor/cmu/cyrus-imapd/size",
];

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Kolab folder type in metadata (`event` for `event.default`), if set.
pub fn folder_type(metadata: &Object) -> Option<String> {
    [
        "/shared/vendor/kolab/folder-type",
        "/private/vendor/kolab/folder-type",
    ]
    .iter()
    .find_map(|key| metadata.get(*key).and_then(Value::as_str))
    .map(|t| t.split('.').next().unwrap_or(t).to_string())
}

/// Sets `folder_id` (and `folder_uniqueid` when Cyrus gave none) on a record that names a
/// folder, storing a new folder state when this is one, and updating the current view.
pub fn resolve(
    storage: &StorageClient,
    record: &mut Object,
    now_ms: i64,
) -> Result<(), PluginError> {
    let Some(path) = record
        .get("folder")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(());
    };
    let server = record
        .get("server")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uniqueid = match record.get("folder_uniqueid").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => {
            // The older Kolab events carry no mailboxID: the path stands in for it.
            let id = format!(
                "path:{}",
                hex_digest(format!("{server}\n{path}").as_bytes())
            );
            record.insert("folder_uniqueid".to_string(), json!(id));
            id
        }
    };
    let current = storage
        .get(CURRENT, &uniqueid)?
        .map(|r| r.json())
        .transpose()?;
    let current = current.as_ref().and_then(Value::as_object);
    let from_current = |key: &str| {
        current
            .and_then(|c| c.get(key))
            .and_then(Value::as_object)
            .cloned()
    };

    // What this event tells of the ACL and metadata, else what was known.
    let acl: Object = match (record.get("acl"), record.get("mailbox_acl")) {
        (Some(Value::Object(acl)), _) | (None, Some(Value::Object(acl))) => acl.clone(),
        _ => from_current("acl").unwrap_or_default(),
    };
    let metadata: Option<Object> = match record.get("metadata") {
        Some(Value::Object(metadata)) => Some(metadata.clone()),
        _ => from_current("metadata"),
    };
    let state_metadata: BTreeMap<String, Value> = metadata
        .iter()
        .flatten()
        .filter(|(k, _)| !VOLATILE_METADATA.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let kind = metadata
        .as_ref()
        .map(|m| folder_type(m).unwrap_or_else(|| "mail".to_string()));
    let mut mapped_acl = BTreeMap::new();
    for (subject, rights) in &acl {
        let id = if users::is_special(subject) {
            subject.clone()
        } else {
            users::user_id(storage, subject, now_ms)?
        };
        mapped_acl.insert(id, rights.clone());
    }
    let name = record.get("folder_name").cloned().unwrap_or(Value::Null);
    let owner = record.get("folder_owner").cloned().unwrap_or(Value::Null);
    let state = json!({
        "uniqueid": uniqueid,
        "server": server,
        "path": path,
        "name": name,
        "owner": owner,
        "type": kind,
        "metadata": state_metadata,
        "acl": mapped_acl,
    });
    // serde_json's maps are ordered by key, so the text (and the checksum) is canonical.
    let folder_id = hex_digest(state.to_string().as_bytes());
    if !cache::folder_state_stored(&folder_id) && storage.get(FOLDERS, &folder_id)?.is_none() {
        let mut body = state.clone();
        body["folder_id"] = json!(folder_id);
        body["acl_subjects"] = Value::Object(acl.clone());
        body["@timestamp"] = record.get("@timestamp").cloned().unwrap_or(Value::Null);
        let mut stored = Record::new(FOLDERS, &folder_id, &body)
            .at(event_ms(record).unwrap_or(now_ms))
            .indexed("uniqueid", &uniqueid);
        if let Some(owner) = owner.as_str() {
            stored = stored.indexed("owner", owner);
        }
        storage.put(stored)?;
    }
    cache::remember_folder_state(&folder_id);
    record.insert("folder_id".to_string(), json!(folder_id));
    if kind.is_some() {
        record.insert("folder_type".to_string(), json!(kind));
    }
    update_current(
        storage, record, current, &uniqueid, &folder_id, &state, &acl, now_ms,
    )
}

/// Updates the folder's current view, unless it already reflects a later event.
#[allow(clippy::too_many_arguments)]
fn update_current(
    storage: &StorageClient,
    record: &Object,
    current: Option<&Object>,
    uniqueid: &str,
    folder_id: &str,
    state: &Value,
    acl: &Object,
    now_ms: i64,
) -> Result<(), PluginError> {
    let event_time = event_ms(record).unwrap_or(now_ms);
    let number = |key: &str| record.get(key).and_then(Value::as_u64);
    let mut view = current.cloned().unwrap_or_default();
    let newer = view
        .get("event_ms")
        .and_then(Value::as_i64)
        .is_none_or(|seen| event_time >= seen);
    // Highest figures seen are kept whatever the order events arrive in.
    for key in ["modseq", "uidnext"] {
        if let Some(value) = number(key) {
            let seen = view
                .get(&format!("{key}_max"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            view.insert(format!("{key}_max"), json!(value.max(seen)));
        }
    }
    if newer {
        let previous = view
            .get("folder_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let previous_name = view.get("name").cloned();
        if previous.as_deref().is_some_and(|p| p != folder_id) {
            let mut history = view
                .get("history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            history.push(json!({ "folder_id": previous, "name": previous_name, "until": record.get("@timestamp") }));
            view.insert("history".to_string(), Value::Array(history));
        }
        if previous_name
            .as_ref()
            .is_some_and(|n| Some(n) != state.get("name"))
        {
            view.insert(
                "renamed_from".to_string(),
                previous_name.unwrap_or(Value::Null),
            );
        }
        for key in ["name", "path", "owner", "type", "server"] {
            view.insert(
                key.to_string(),
                state.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        view.insert("folder_id".to_string(), json!(folder_id));
        view.insert("acl".to_string(), Value::Object(acl.clone()));
        if let Some(Value::Object(metadata)) = record.get("metadata") {
            view.insert("metadata".to_string(), Value::Object(metadata.clone()));
        }
        if let Some(v) = number("uidvalidity") {
            view.insert("uidvalidity".to_string(), json!(v));
        }
        view.insert("event_ms".to_string(), json!(event_time));
    }
    // Cyrus never reuses a uniqueid, and may report a last MailboxModseq after the delete:
    // deleted stays deleted, whatever the order.
    let deleted = view
        .get("deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if record.get("event").and_then(Value::as_str) == Some("MailboxDelete") {
        view.insert(
            "deleted_at".to_string(),
            record.get("@timestamp").cloned().unwrap_or(Value::Null),
        );
        view.insert("deleted".to_string(), json!(true));
    } else {
        view.insert("deleted".to_string(), json!(deleted));
    }
    view.insert("uniqueid".to_string(), json!(uniqueid));
    let name = view
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let owner = view
        .get("owner")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // When only the counters moved and they were written less than a second ago, the write
    // waits for a later event: a busy folder is not rewritten on every message.
    let unchanged_but_counters = current.is_some_and(|old| {
        let strip = |v: &Object| {
            let mut v = v.clone();
            for key in ["modseq_max", "uidnext_max", "counters_ms"] {
                v.remove(key);
            }
            v
        };
        strip(old) == strip(&view)
    });
    let counters_ms = view.get("counters_ms").and_then(Value::as_i64).unwrap_or(0);
    if unchanged_but_counters && now_ms - counters_ms < 1000 {
        return Ok(());
    }
    view.insert("counters_ms".to_string(), json!(now_ms));
    let mut stored = Record::new(CURRENT, uniqueid, &Value::Object(view))
        .at(event_time)
        .indexed("name", &name);
    if !owner.is_empty() {
        stored = stored.indexed("owner", &owner);
    }
    storage.put(stored)
}
