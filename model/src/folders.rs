//! Folder records. A folder's state (name, path, owner, type, metadata, ACL with subjects
//! mapped to user ids) has an id that is a checksum of that state: a changed ACL, type or name
//! makes a new folder record, while `folder_uniqueid` (Cyrus's `mailboxID`) stays. Only an
//! event that tells its folder's ACL (Cyrus 3.6 sends it with every folder event but
//! MailboxSubscribe and MailboxUnSubscribe; the collector's GETACL adds it) names a state, and
//! a state's time is the earliest of the events that told it, so the states and the records'
//! `folder_id` do not depend on the order events are taken in. Each event also goes into the
//! view of its folder's current state, kept by uniqueid (see [`crate::folder_view`] for how
//! events in any order merge into it).

use std::collections::BTreeMap;

use bonnie_plugin_api::{PluginError, Record, storage::StorageClient};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    cache,
    folder_view::{self, Facts, Place, Rename, Stamped, StateSeen},
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

/// Sets `folder_uniqueid` (when Cyrus gave none) on a record that names a folder and, when the
/// event tells the folder's ACL, `folder_id`, storing the state it tells unless it is stored
/// (with an earlier time); merges what the event tells into the folder's current view.
///
/// An event that tells no ACL names its folder by uniqueid only: the state in force at its
/// time may be told by an event not taken yet (another thread or worker has it, or it comes
/// later), so the view as it stands now could only give a state that depends on the order.
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
    let stored_current = storage.get(CURRENT, &uniqueid)?;
    // Parsed only by the events that need it (an ACL told without metadata): most events
    // are appends and flags, and update_current parses the view again anyway.
    let from_current = |key: &str| -> Result<Option<Object>, PluginError> {
        let Some(stored) = &stored_current else {
            return Ok(None);
        };
        let current = stored.json()?;
        Ok(current.get(key).and_then(Value::as_object).cloned())
    };

    // What this event tells of the ACL and metadata, else what was known.
    let own_acl: Option<Object> = match (record.get("acl"), record.get("mailbox_acl")) {
        (Some(Value::Object(acl)), _) | (None, Some(Value::Object(acl))) => Some(acl.clone()),
        _ => None,
    };
    let own_metadata: Option<Object> = match record.get("metadata") {
        Some(Value::Object(metadata)) => Some(metadata.clone()),
        _ => None,
    };
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
    let mut mapped_ids = None;
    let mut state = None;
    let mut kind = own_metadata
        .as_ref()
        .map(|m| folder_type(m).unwrap_or_else(|| "mail".to_string()));
    if let Some(acl) = &own_acl {
        // Cyrus sends no event for SETMETADATA: metadata is what the collector last read.
        let metadata = match &own_metadata {
            Some(own) => Some(own.clone()),
            None => from_current("metadata")?,
        };
        let mapped_acl = map_acl(storage, acl, now_ms)?;
        let (folder_id, state_kind) = store_state(
            storage,
            &uniqueid,
            &place,
            metadata.as_ref(),
            &mapped_acl,
            acl,
            &timestamp,
            at_ms,
        )?;
        record.insert("folder_id".to_string(), json!(folder_id));
        kind = state_kind;
        mapped_ids = Some(mapped_acl.into_iter().collect());
        state = Some(StateSeen { at_ms, folder_id });
    }
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
            ids: mapped_ids,
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
    if let Some(state) = state {
        facts.states.insert(place.path.clone(), state);
    }
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
    update_current(storage, &uniqueid, stored_current, &facts)
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

/// Stores a folder state unless it is stored already with the same or an earlier time (its
/// time is the earliest of the events that told it, whatever the order they are taken in):
/// its id (the checksum) and the folder type its metadata gives.
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
    if cache::folder_state_since(&folder_id).is_none_or(|known| known > at_ms) {
        let mut body = state;
        body["folder_id"] = json!(folder_id);
        body["acl_subjects"] = Value::Object(acl_subjects.clone());
        body["@timestamp"] = timestamp.clone();
        let mut record = Record::new(FOLDERS, &folder_id, &body)
            .at(at_ms)
            .indexed("uniqueid", uniqueid);
        if let Some(owner) = &place.owner {
            record = record.indexed("owner", owner);
        }
        let mut since = at_ms;
        storage.update(FOLDERS, &folder_id, |stored| {
            let stored_ms = stored.and_then(|r| r.time_ms.into_option());
            match stored_ms {
                Some(stored_ms) if stored_ms <= at_ms => {
                    since = stored_ms;
                    Ok(None)
                }
                _ => {
                    since = at_ms;
                    Ok(Some(record.clone()))
                }
            }
        })?;
        cache::remember_folder_state(&folder_id, since);
    }
    Ok((folder_id, kind))
}

/// Merges one event's facts into the folder's current view (`stored`, as just read),
/// atomically (a view that already holds them is not written again). The view's `folder_id`
/// is the latest state an event told at the folder's current path; the view stores no state
/// of its own.
fn update_current(
    storage: &StorageClient,
    uniqueid: &str,
    stored: Option<Record>,
    facts: &Facts,
) -> Result<(), PluginError> {
    storage.update_from(CURRENT, uniqueid, stored, |stored| {
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
        let view = folder_view::view(uniqueid, &merged);
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
