//! Folder records. A folder's state (name, path, owner, type, metadata, ACL with subjects
//! mapped to user ids) has an id that is a checksum of that state: a changed ACL, type or name
//! makes a new folder record, while `folder_uniqueid` (Cyrus's `mailboxID`) stays. Each event
//! also goes into the view of its folder's current state, kept by uniqueid (see
//! [`crate::folder_view`] for how events in any order merge into it).

use std::collections::BTreeMap;

use bonnie_plugin_api::{PluginError, Record, storage::StorageClient};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    cache,
    folder_view::{self, Facts, Place, Rename, Stamped},
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
/// folder, storing a new folder state when this is one, and merging what the event tells into
/// the folder's current view.
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
    let own_acl: Option<Object> = match (record.get("acl"), record.get("mailbox_acl")) {
        (Some(Value::Object(acl)), _) | (None, Some(Value::Object(acl))) => Some(acl.clone()),
        _ => None,
    };
    let acl = own_acl
        .clone()
        .or_else(|| from_current("acl"))
        .unwrap_or_default();
    let own_metadata: Option<Object> = match record.get("metadata") {
        Some(Value::Object(metadata)) => Some(metadata.clone()),
        _ => None,
    };
    let metadata = own_metadata.clone().or_else(|| from_current("metadata"));
    let mapped_acl = map_acl(storage, &acl, now_ms)?;
    let place = Place {
        path,
        name: record
            .get("folder_name")
            .and_then(Value::as_str)
            .map(str::to_string),
        owner: record
            .get("folder_owner")
            .and_then(Value::as_str)
            .map(str::to_string),
        server,
    };
    let at_ms = event_ms(record).unwrap_or(now_ms);
    let timestamp = record.get("@timestamp").cloned().unwrap_or(Value::Null);
    let (folder_id, kind) = store_state(
        storage,
        &uniqueid,
        &place,
        metadata.as_ref(),
        &mapped_acl,
        &acl,
        &timestamp,
        at_ms,
    )?;
    record.insert("folder_id".to_string(), json!(folder_id));
    if kind.is_some() {
        record.insert("folder_type".to_string(), json!(kind));
    }
    let number = |key: &str| record.get(key).and_then(Value::as_u64);
    let event = record
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let old_folder = record.get("old_folder").and_then(Value::as_str);
    let timestamp = timestamp.as_str().unwrap_or_default().to_string();
    let mut facts = Facts {
        acl_state: own_acl.map(|value| Stamped {
            at_ms,
            value,
            ids: Some(mapped_acl.clone().into_iter().collect()),
        }),
        metadata_state: own_metadata.map(|value| Stamped {
            at_ms,
            value,
            ids: None,
        }),
        modseq_max: number("modseq"),
        uidnext_max: number("uidnext"),
        uidvalidity: number("uidvalidity"),
        event_ms: at_ms,
        ..Facts::default()
    };
    match old_folder {
        Some(from) if event == "MailboxRename" => facts.renames.push(Rename {
            at_ms,
            at: timestamp.clone(),
            from: from.to_string(),
            from_name: record
                .get("old_folder_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            to: place,
        }),
        _ => facts.places = Facts::seen_at(at_ms, place).places,
    }
    if event == "MailboxDelete" {
        facts.deleted_ms = Some(at_ms);
        facts.deleted_at = Some(timestamp);
    }
    update_current(storage, &uniqueid, &facts, now_ms)
}

/// The ACL's subjects mapped to user ids (special subjects stay as they are).
fn map_acl(
    storage: &StorageClient,
    acl: &Object,
    now_ms: i64,
) -> Result<BTreeMap<String, Value>, PluginError> {
    let mut mapped = BTreeMap::new();
    for (subject, rights) in acl {
        let id = if users::is_special(subject) {
            subject.clone()
        } else {
            users::user_id(storage, subject, now_ms)?
        };
        mapped.insert(id, rights.clone());
    }
    Ok(mapped)
}

/// Stores a folder state unless it is stored already: its id (the checksum) and the folder
/// type its metadata gives.
#[allow(clippy::too_many_arguments)]
fn store_state(
    storage: &StorageClient,
    uniqueid: &str,
    place: &Place,
    metadata: Option<&Object>,
    mapped_acl: &BTreeMap<String, Value>,
    acl_subjects: &Object,
    timestamp: &Value,
    at_ms: i64,
) -> Result<(String, Option<String>), PluginError> {
    let state_metadata: BTreeMap<String, Value> = metadata
        .into_iter()
        .flatten()
        .filter(|(k, _)| !VOLATILE_METADATA.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let kind = metadata.map(|m| folder_type(m).unwrap_or_else(|| "mail".to_string()));
    let state = json!({
        "uniqueid": uniqueid,
        "server": place.server,
        "path": place.path,
        "name": place.name,
        "owner": place.owner,
        "type": kind,
        "metadata": state_metadata,
        "acl": mapped_acl,
    });
    // serde_json's maps are ordered by key, so the text (and the checksum) is canonical.
    let folder_id = hex_digest(state.to_string().as_bytes());
    if !cache::folder_state_stored(&folder_id) && storage.get(FOLDERS, &folder_id)?.is_none() {
        let mut body = state;
        body["folder_id"] = json!(folder_id);
        body["acl_subjects"] = Value::Object(acl_subjects.clone());
        body["@timestamp"] = timestamp.clone();
        let mut stored = Record::new(FOLDERS, &folder_id, &body)
            .at(at_ms)
            .indexed("uniqueid", uniqueid);
        if let Some(owner) = &place.owner {
            stored = stored.indexed("owner", owner);
        }
        storage.put(stored)?;
    }
    cache::remember_folder_state(&folder_id);
    Ok((folder_id, kind))
}

/// Merges one event's facts into the folder's current view, atomically (a view that already
/// holds them is not written again). The view's `folder_id` is the state the merged view is
/// in, stored like any other state.
fn update_current(
    storage: &StorageClient,
    uniqueid: &str,
    facts: &Facts,
    now_ms: i64,
) -> Result<(), PluginError> {
    storage.update(CURRENT, uniqueid, |stored| {
        let view = stored.map(|r| r.json()).transpose()?;
        let mut merged = match view.as_ref().and_then(Value::as_object) {
            Some(view) => Facts::of_view(view),
            None => Facts::default(),
        };
        let before = merged.clone();
        merged.merge(facts);
        if stored.is_some() && merged == before {
            return Ok(None);
        }
        let Some(place) = merged.place().cloned() else {
            return Ok(None);
        };
        let acl = merged
            .acl_state
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let mapped_acl = match merged.acl_state.as_ref().and_then(|a| a.ids.as_ref()) {
            Some(ids) => ids.clone().into_iter().collect(),
            None => map_acl(storage, &acl, now_ms)?,
        };
        let metadata = merged.metadata_state.as_ref().map(|m| &m.value);
        let timestamp = json!(bonnie_core::time::format_rfc3339_ms(merged.event_ms));
        let (folder_id, _) = store_state(
            storage,
            uniqueid,
            &place,
            metadata,
            &mapped_acl,
            &acl,
            &timestamp,
            merged.event_ms,
        )?;
        let view = folder_view::view(uniqueid, &merged, &folder_id);
        let mut record = Record::new(CURRENT, uniqueid, &Value::Object(view))
            .at(merged.event_ms)
            .indexed("name", place.name.as_deref().unwrap_or_default());
        if let Some(owner) = &place.owner {
            record = record.indexed("owner", owner);
        }
        Ok(Some(record))
    })?;
    Ok(())
}
