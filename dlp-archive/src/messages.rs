//! A record's messages as far as the job or the archive holds them ([`read_messages`]): what
//! the dlp handler scans and `bonnie dlp scan` scans again.

use bonnie_model::{
    collect::{self, NEW_MESSAGE_EVENTS, kept_payloads},
    mail_history, record,
};
use bonnie_plugin_api::{PluginError, storage::StorageClient};
use serde_json::Value;

use crate::scan::MessageText;

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
        mail_history::payloads_by_trail(storage, record)?
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
