//! A record's messages as far as the job or the archive holds them ([`read_messages`]): what
//! the dlp handler scans and `bonnie dlp scan` scans again.

use bonnie_model::{collect, mail_history, record};
use bonnie_plugin_api::{PluginError, storage::StorageClient};
use serde_json::Value;

use crate::scan::MessageText;

/// The events that bring a message of their own.
const NEW_MESSAGE_EVENTS: [&str; 2] = ["MessageAppend", "MessageNew"];

/// Payloads a record names: (UID, digest).
pub type Kept = Vec<(Option<u64>, String)>;

/// The messages of a message event as far as the job or the archive holds them: the bytes
/// the collector fetched (`messageContent`), else the payloads the record names (those an
/// archive handler already took), else for a copy or move the payloads its trail leads back
/// to. `None` when they are not to be had without the collector.
pub fn read_messages(
    storage: &StorageClient,
    record: &record::Object,
) -> Result<Option<Vec<MessageText>>, PluginError> {
    let event = record
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(Value::Object(contents)) = record.get("messageContent") {
        let mut read = Vec::new();
        for (uid, content) in contents {
            let bytes = if content.get("in_store").and_then(Value::as_bool) == Some(true) {
                let digest = content
                    .get("digest")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match storage.get_payload(digest)? {
                    Some(bytes) => bytes,
                    // The archive handler fails this job loudly; nothing to scan here.
                    None => continue,
                }
            } else {
                collect::content_bytes(uid, content)?
            };
            read.push(MessageText::read(uid.parse().ok(), &bytes));
        }
        return Ok(Some(read));
    }
    let named = kept_payloads(record);
    let kept = if !named.is_empty() {
        Some(named)
    } else if NEW_MESSAGE_EVENTS.contains(&event) {
        None
    } else {
        archived_by_trail(storage, record)?
    };
    let Some(kept) = kept else {
        return Ok(None);
    };
    let mut read = Vec::new();
    for (uid, digest) in kept {
        match storage.get_payload(&digest)? {
            Some(bytes) => read.push(MessageText::read(uid, &bytes)),
            None => return Ok(None),
        }
    }
    Ok(Some(read))
}

/// A copied or moved message's payloads as the archive keeps them: for each UID, the append
/// or delivery its trail leads back to, and the payload its log entry names. `None` unless
/// every message is found.
fn archived_by_trail(
    storage: &StorageClient,
    record: &record::Object,
) -> Result<Option<Kept>, PluginError> {
    let Some(old_folder) = record.get("old_folder").and_then(Value::as_str) else {
        return Ok(None);
    };
    let (new_uids, old_uids) = (
        record::uid_list(record, "uids"),
        record::uid_list(record, "old_uids"),
    );
    if new_uids.is_empty() || new_uids.len() != old_uids.len() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for (uid, old_uid) in new_uids.into_iter().zip(old_uids) {
        let trail = mail_history::trail(storage, old_folder, old_uid)?;
        let Some(arrival) = trail
            .iter()
            .find(|e| NEW_MESSAGE_EVENTS.contains(&e.event.as_str()))
        else {
            return Ok(None);
        };
        let Some(entry) = storage.get("log", &arrival.job)? else {
            return Ok(None);
        };
        let Value::Object(logged) = entry.json()? else {
            return Ok(None);
        };
        let digest = kept_payloads(&logged)
            .into_iter()
            .find(|(u, _)| *u == Some(arrival.uid) || u.is_none())
            .map(|(_, digest)| digest);
        match digest {
            Some(digest) => found.push((Some(uid), digest)),
            None => return Ok(None),
        }
    }
    Ok(Some(found))
}

/// The payloads a record names: `payloads` (UID, digest), else `payload_digest`.
pub fn kept_payloads(record: &record::Object) -> Kept {
    let listed: Kept = record
        .get("payloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let digest = p.get("digest").and_then(Value::as_str)?;
            Some((p.get("uid").and_then(Value::as_u64), digest.to_string()))
        })
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    record
        .get("payload_digest")
        .and_then(Value::as_str)
        .map(|d| vec![(record.get("uid").and_then(Value::as_u64), d.to_string())])
        .unwrap_or_default()
}
