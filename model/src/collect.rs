//! What a handler asks the collector for, and what it does with the answer. Payloads when
//! messages arrive (FETCH), headers when messages are copied, moved or deleted (HEADER), folder
//! metadata and ACL on every folder event (Cyrus sends no event for SETMETADATA) or when the
//! folder's state is unknown, and the user's directory entry while the user is unresolved.
//! A command the collector reports failed for good (`collector_errors`: the message was
//! expunged before the fetch, the folder is gone) is not asked again: the record is stored
//! without it. Transient failures never reach here; the broker retries those jobs.

use bonnie_plugin_api::{PluginError, storage::StorageClient};
use serde_json::{Value, json};

use crate::{
    folders, items,
    record::{self, Object},
    users,
};

/// Events whose folder may have changed state.
const FOLDER_EVENTS: [&str; 6] = [
    "MailboxCreate",
    "MailboxRename",
    "MailboxModseq",
    "AclChange",
    "MailboxSubscribe",
    "MailboxUnSubscribe",
];

/// Events that bring a message (FETCH).
pub const NEW_MESSAGE_EVENTS: [&str; 2] = ["MessageAppend", "MessageNew"];

/// Events about existing messages whose headers a changelog needs (HEADER).
const MESSAGE_EVENTS: [&str; 7] = [
    "vnd.cmu.MessageCopy",
    "vnd.cmu.MessageMove",
    "MessageCopy",
    "MessageMove",
    "MessageTrash",
    "MessageExpunge",
    "MessageExpire",
];

fn failed_before(record: &Object, command: &str) -> bool {
    record
        .get("collector_errors")
        .and_then(|e| e.get(command))
        .is_some()
}

/// The collector commands this record still needs, of those `enabled`.
pub fn wanted(
    storage: &StorageClient,
    record: &Object,
    enabled: &[String],
) -> Result<Vec<String>, PluginError> {
    let event = record
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let on =
        |command: &str| enabled.iter().any(|c| c == command) && !failed_before(record, command);
    let mut wanted = Vec::new();
    if on("FETCH") && NEW_MESSAGE_EVENTS.contains(&event) && !record.contains_key("messageContent")
    {
        wanted.push("FETCH");
    }
    if on("HEADER") && MESSAGE_EVENTS.contains(&event) && !record.contains_key("messageHeaders") {
        wanted.push("HEADER");
    }
    if record.contains_key("folder") && event != "MailboxDelete" {
        let state_unknown = || -> Result<bool, PluginError> {
            let uniqueid = record
                .get("folder_uniqueid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let current = storage
                .get(folders::CURRENT, uniqueid)?
                .map(|r| r.json())
                .transpose()?;
            Ok(current.is_none_or(|c| c.get("metadata").is_none()))
        };
        let check = FOLDER_EVENTS.contains(&event)
            || ((on("GETMETADATA") || on("GETACL")) && state_unknown()?);
        if check && on("GETMETADATA") && !record.contains_key("metadata") {
            wanted.push("GETMETADATA");
        }
        if check && on("GETACL") && !record.contains_key("acl") {
            wanted.push("GETACL");
        }
    }
    if on("GETUSERDATA")
        && !record.contains_key("user_data")
        && let Some(login) = record
            .get("user")
            .and_then(Value::as_str)
            .filter(|u| !users::is_special(u))
        && users::resolved_id(storage, login)?.is_none()
    {
        wanted.push("GETUSERDATA");
    }
    Ok(wanted.into_iter().map(str::to_string).collect())
}

/// The digest of message `uid` when the payload store already keeps it: written there by the
/// collector (`messageContent.<uid>` with `in_store`, too large for the job) or moved there by
/// an earlier handler (`payloads`).
pub fn kept_digest(record: &Object, uid: u64) -> Option<String> {
    let in_store = record
        .get("messageContent")
        .and_then(|c| c.get(uid.to_string()))
        .filter(|c| c.get("in_store").and_then(Value::as_bool) == Some(true))
        .and_then(|c| c.get("digest"));
    let from_payloads = || {
        record
            .get("payloads")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("uid").and_then(Value::as_u64) == Some(uid))
            .and_then(|p| p.get("digest"))
    };
    in_store
        .or_else(from_payloads)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The bytes of one message the collector fetched (`messageContent.<uid>`: `data`, as text or
/// base64 by `encoding`).
pub fn content_bytes(uid: &str, content: &Value) -> Result<Vec<u8>, PluginError> {
    let data = content
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match content.get("encoding").and_then(Value::as_str) {
        Some("base64") => base64::Engine::decode(&bonnie_core::b64::LENIENT, data).map_err(|_| {
            PluginError::rejected(format!("the payload of UID {uid} is not valid base64"))
        }),
        _ => Ok(data.as_bytes().to_vec()),
    }
}

/// What the record says of a message's structure, read by bonnie-mail: its attachments
/// (UID, section, name, media type, size, SHA-256) and, when a part could not be read as the
/// message says, the warnings (`message_damaged`).
fn describe(
    uid: &str,
    message: &bonnie_mail::Message,
    attachments: &mut Vec<Value>,
    warnings: &mut Vec<Value>,
) {
    let uid = uid.parse::<u64>().ok();
    fn walk(
        uid: Option<u64>,
        prefix: &str,
        message: &bonnie_mail::Message,
        attachments: &mut Vec<Value>,
        warnings: &mut Vec<Value>,
    ) {
        for a in &message.attachments {
            attachments.push(json!({
                "uid": uid, "part": format!("{prefix}{}", a.part), "name": a.name,
                "media_type": a.media_type, "size": a.size, "sha256": a.sha256,
            }));
        }
        for w in &message.warnings {
            warnings.push(json!({ "uid": uid, "warning": w }));
        }
        // Attached messages are attachments too; theirs are numbered inside them.
        let nested = message
            .attachments
            .iter()
            .filter(|a| a.media_type == "message/rfc822");
        for (inner, a) in message.messages.iter().zip(nested) {
            walk(
                uid,
                &format!("{prefix}{}.", a.part),
                inner,
                attachments,
                warnings,
            );
        }
    }
    walk(uid, "", message, attachments, warnings);
}

/// The field of a fetched message (`messageContent.<uid>`) and of its `payloads` entry that
/// holds its INTERNALDATE, ms since the epoch.
pub const INTERNALDATE_FIELD: &str = "internaldate_ms";

/// Moves the payloads the collector fetched into the storage (once per content), leaving in
/// the record their digests: `payloads` (UID, digest, size, INTERNALDATE when the collector
/// read it) and, for one message,
/// `payload_digest`; and what the messages hold (`attachments`, `message_damaged` with
/// `message_warnings`). Each message's e-discovery item document is written beside its payload
/// ([`items::store_message`]), first seen at the record's event time.
pub fn store_payloads(storage: &StorageClient, record: &mut Object) -> Result<(), PluginError> {
    let Some(Value::Object(contents)) = record.remove("messageContent") else {
        return Ok(());
    };
    let mut payloads = Vec::new();
    let (mut attachments, mut warnings) = (Vec::new(), Vec::new());
    let first_seen_ms = record::event_ms(record).unwrap_or_else(bonnie_core::time::now_ms);
    for (uid, content) in contents {
        let size = content.get("size").and_then(Value::as_u64).unwrap_or(0);
        let (digest, bytes) = if content.get("in_store").and_then(Value::as_bool) == Some(true) {
            // Written to the payload store by the collector itself (too large for the job).
            let digest = content
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // A payload the collector says it handed over but the store does not have: the job
            // waits for it (the folder may be shared and slow) and fails loudly in the end,
            // never archived without its message.
            let Some(bytes) = storage.get_payload(&digest)? else {
                return Err(PluginError::transient(format!(
                    "the message of UID {uid} (payload {digest}) was handed over by the collector but is not in the payload store: is [collector] payload_dir the storage's payload_dir?"
                )));
            };
            (digest, bytes)
        } else {
            let bytes = content_bytes(&uid, &content)?;
            let digest = storage.put_payload(&bytes)?;
            if let Some(expected) = content.get("digest").and_then(Value::as_str)
                && expected != digest
            {
                return Err(PluginError::rejected(format!(
                    "the payload of UID {uid} does not match its digest ({expected} from the collector, {digest} here)"
                )));
            }
            (digest, bytes)
        };
        let message = bonnie_mail::parse(&bytes);
        describe(&uid, &message, &mut attachments, &mut warnings);
        items::store_message(storage, &digest, &message, bytes.len(), first_seen_ms)?;
        let mut payload = json!({ "uid": uid.parse::<u64>().ok(), "digest": digest, "size": size });
        // The message's INTERNALDATE as Cyrus kept it, for a restore to put it back with it.
        if let Some(ms) = content.get(INTERNALDATE_FIELD).and_then(Value::as_i64) {
            payload[INTERNALDATE_FIELD] = json!(ms);
        }
        payloads.push(payload);
    }
    if let [only] = payloads.as_slice() {
        record.insert("payload_digest".to_string(), only["digest"].clone());
    }
    record.insert("payloads".to_string(), Value::Array(payloads));
    if !attachments.is_empty() {
        record.insert("attachments".to_string(), Value::Array(attachments));
    }
    if !warnings.is_empty() {
        record.insert("message_damaged".to_string(), json!(true));
        record.insert("message_warnings".to_string(), Value::Array(warnings));
    }
    Ok(())
}

/// Payloads a record names: (UID, digest).
pub type Kept = Vec<(Option<u64>, String)>;

/// The payloads a record names: `payloads` (UID, digest), else `payload_digest`.
pub fn kept_payloads(record: &Object) -> Kept {
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
