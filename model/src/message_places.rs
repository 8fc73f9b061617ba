//! Where each archived message is: one record per message place (folder uniqueid,
//! UIDVALIDITY, UID) an append, delivery, copy or move put it in, with the job that archived it
//! and the payload's digest when known. Back-fill and reconciliation ask it whether the archive
//! already holds a message Cyrus reports, so a message archived live is never stored again.
//! An archive whose entries were logged before the places were kept has them recorded from its
//! log once ([`place_logged`]).

use bonnie_plugin_api::{
    PluginError,
    storage::{Record, StorageClient},
};
use serde_json::{Value, json};

use crate::{collect, record::Object};

/// The message places, keyed by [`place_key`].
pub const PLACES: &str = "message-places";

/// The events that put a message in a place.
pub const PLACING_EVENTS: [&str; 6] = [
    "MessageAppend",
    "MessageNew",
    "MessageCopy",
    "vnd.cmu.MessageCopy",
    "MessageMove",
    "vnd.cmu.MessageMove",
];

/// The key of a message place: `<folder uniqueid>\u{1f}<UIDVALIDITY>\u{1f}<UID>`.
pub fn place_key(uniqueid: &str, uidvalidity: u64, uid: u64) -> String {
    format!("{uniqueid}\u{1f}{uidvalidity}\u{1f}{uid}")
}

/// Records the places a normalized record put messages in; how many. A record without a
/// folder uniqueid or UIDVALIDITY (not a Cyrus 3 notification) places nothing.
pub fn record(storage: &StorageClient, record: &Object, job: &str) -> Result<usize, PluginError> {
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    if !text("event").is_some_and(|e| PLACING_EVENTS.contains(&e)) {
        return Ok(0);
    }
    let (Some(uniqueid), Some(uidvalidity)) = (
        text("folder_uniqueid"),
        record.get("uidvalidity").and_then(Value::as_u64),
    ) else {
        return Ok(0);
    };
    let mut uids = crate::record::uid_list(record, "uids");
    if uids.is_empty() {
        uids.extend(record.get("uid").and_then(Value::as_u64));
    }
    for &uid in &uids {
        let digest = collect::kept_digest(record, uid);
        let body = json!({ "job": job, "folder": text("folder"), "digest": digest });
        storage.put(Record::new(
            PLACES,
            &place_key(uniqueid, uidvalidity, uid),
            &body,
        ))?;
    }
    Ok(uids.len())
}

/// Whether the archive holds the message at this place.
pub fn archived(
    storage: &StorageClient,
    uniqueid: &str,
    uidvalidity: u64,
    uid: u64,
) -> Result<bool, PluginError> {
    Ok(storage
        .get(PLACES, &place_key(uniqueid, uidvalidity, uid))?
        .is_some())
}

/// Log entries read per page by [`place_logged`].
const LOG_PAGE: u32 = 1000;

/// Records the places of every log entry from `from_ms` on, oldest first: for an archive
/// whose entries were logged before handlers kept message places. `progress` is told the time
/// reached after each page (to resume from) and how many entries were read. How many places
/// were recorded.
pub fn place_logged(
    storage: &StorageClient,
    from_ms: Option<i64>,
    mut progress: impl FnMut(i64, u64),
) -> Result<u64, PluginError> {
    let mut placed = 0u64;
    crate::log_pages::walk(
        storage,
        (from_ms, None),
        LOG_PAGE,
        |entry| {
            if let Ok(Value::Object(logged)) = serde_json::from_str(entry.body.as_str()) {
                placed += record(storage, &logged, entry.key.as_str())? as u64;
            }
            Ok::<_, PluginError>(())
        },
        &mut progress,
    )?;
    Ok(placed)
}
