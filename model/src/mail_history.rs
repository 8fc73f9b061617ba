//! Each message's audit trail: every event that touched it (appended, read, flags set or
//! cleared, copied, moved, deleted, expunged), who did it and when, kept per message place
//! (`folder`, UID) in `message-history`. A copied or moved message's trail continues from
//! where it came from.

use bonnie_core::time;
use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    collect::{Kept, NEW_MESSAGE_EVENTS, kept_payloads},
    record::{self, Object},
};

/// The trail entries, indexed by [`MESSAGE_FIELD`].
pub const HISTORY: &str = "message-history";
/// The index term: `<folder path>\u{1f}<UID>`.
pub const MESSAGE_FIELD: &str = "message";
/// The index term of a copy or move: the place it came from, as [`MESSAGE_FIELD`] spells
/// it, so a trail is followed onward from where a message arrived.
pub const FROM_FIELD: &str = "from";
/// How far back through copies and moves a trail is followed.
const MAX_HOPS: usize = 32;

/// The events of a message's trail.
pub const EVENTS: [&str; 12] = [
    "MessageAppend",
    "MessageNew",
    "MessageCopy",
    "vnd.cmu.MessageCopy",
    "MessageMove",
    "vnd.cmu.MessageMove",
    "MessageRead",
    "MessageTrash",
    "MessageExpunge",
    "MessageExpire",
    "FlagsSet",
    "FlagsClear",
];

/// One event of a message's trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The Cyrus event.
    pub event: String,
    /// The event's own time (ms since the epoch).
    pub time_ms: i64,
    /// Who, by login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The folder (full path).
    pub folder: String,
    /// The message's UID there.
    pub uid: u64,
    /// The flags the event names (set, cleared, or the message's at append).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Where a copied or moved message came from: folder and UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<(String, u64)>,
    /// The job it came from.
    pub job: String,
}

/// The index value of a message place.
pub fn message_key(folder: &str, uid: u64) -> String {
    format!("{folder}\u{1f}{uid}")
}

/// Records the trail entries a normalized message event gives.
pub fn record(storage: &StorageClient, record: &Object, job: &str) -> Result<usize, PluginError> {
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    let Some(event) = text("event").filter(|e| EVENTS.contains(e)) else {
        return Ok(0);
    };
    let Some(folder) = text("folder") else {
        return Ok(0);
    };
    let (new_uids, old_uids) = (
        record::uid_list(record, "uids"),
        record::uid_list(record, "old_uids"),
    );
    let old_folder = text("old_folder");
    let time_ms = text("@timestamp")
        .and_then(time::parse_rfc3339_ms)
        .unwrap_or_else(time::now_ms);
    let flags: Vec<String> = record
        .get("flags")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for (i, uid) in new_uids.iter().copied().enumerate() {
        let entry = Entry {
            event: event.to_string(),
            time_ms,
            login: text("user").map(str::to_string),
            folder: folder.to_string(),
            uid,
            flags: flags.clone(),
            from: old_folder
                .zip(old_uids.get(i))
                .map(|(f, u)| (f.to_string(), *u)),
            job: job.to_string(),
        };
        let body = serde_json::to_value(&entry).map_err(|e| {
            PluginError::transient(format!("a trail entry does not serialize: {e}"))
        })?;
        let key = message_key(folder, uid);
        let mut stored = Record::new(HISTORY, &format!("{job}/{key}"), &body)
            .at(time_ms)
            .indexed(MESSAGE_FIELD, &key);
        if let Some((from_folder, from_uid)) = &entry.from {
            stored = stored.indexed(FROM_FIELD, &message_key(from_folder, *from_uid));
        }
        storage.put(stored)?;
    }
    Ok(new_uids.len())
}

fn entries_at(storage: &StorageClient, folder: &str, uid: u64) -> Result<Vec<Entry>, PluginError> {
    entries_with(storage, MESSAGE_FIELD, folder, uid)
}

/// The entries whose index term `field` ([`MESSAGE_FIELD`] or [`FROM_FIELD`]) names
/// `folder`/`uid`, in the storage's order.
pub fn entries_with(
    storage: &StorageClient,
    field: &str,
    folder: &str,
    uid: u64,
) -> Result<Vec<Entry>, PluginError> {
    // Every entry, however long the trail: the storage pages through them.
    let query = RecordQuery::all_with(HISTORY, field, &message_key(folder, uid));
    storage
        .query(&query)?
        .iter()
        .map(|r| {
            serde_json::from_str(r.body.as_str()).map_err(|e| {
                PluginError::transient(format!("stored trail entry {} is not readable: {e}", r.key))
            })
        })
        .collect()
}

/// The trail of the message now at `folder`/`uid`, oldest first, through the copies and
/// moves that brought it there.
pub fn trail(storage: &StorageClient, folder: &str, uid: u64) -> Result<Vec<Entry>, PluginError> {
    let mut trail = Vec::new();
    let mut place = (folder.to_string(), uid);
    let mut before = i64::MAX;
    for _ in 0..MAX_HOPS {
        let here: Vec<Entry> = entries_at(storage, &place.0, place.1)?
            .into_iter()
            .filter(|e| e.time_ms <= before)
            .collect();
        // The copy or move that brought the message here, if the trail knows it.
        let arrival = here.iter().find(|e| e.from.is_some()).cloned();
        trail.extend(here);
        match arrival.and_then(|a| a.from.map(|from| (from, a.time_ms))) {
            Some((from, time_ms)) => {
                place = from;
                before = time_ms;
            }
            None => break,
        }
    }
    Ok(in_order(trail))
}

/// What happened to the message that arrived at `folder`/`uid` at `since_ms`, oldest first:
/// its events there from then on and, through the copies and moves that took it elsewhere,
/// its events at each place it went (what a trace of its delivery shows).
pub fn onward(
    storage: &StorageClient,
    folder: &str,
    uid: u64,
    since_ms: i64,
) -> Result<Vec<Entry>, PluginError> {
    let mut trail = Vec::new();
    let mut places = std::collections::VecDeque::from([(folder.to_string(), uid, since_ms)]);
    for _ in 0..MAX_HOPS {
        let Some((folder, uid, since)) = places.pop_front() else {
            break;
        };
        trail.extend(
            entries_at(storage, &folder, uid)?
                .into_iter()
                .filter(|e| e.time_ms >= since),
        );
        for went in entries_with(storage, FROM_FIELD, &folder, uid)? {
            if went.time_ms >= since {
                places.push_back((went.folder, went.uid, went.time_ms));
            }
        }
    }
    Ok(in_order(trail))
}

/// A copied or moved message's payloads as the archive keeps them: for each UID, the append
/// or delivery its trail leads back to, and the payload its log entry names. `None` unless
/// every message is found (the trail or the arrival's log entry not written yet, or never:
/// an archive without the changelog handler keeps no trails).
pub fn payloads_by_trail(
    storage: &StorageClient,
    record: &Object,
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
        let trail = trail(storage, old_folder, old_uid)?;
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

/// Oldest first, each entry once.
fn in_order(mut trail: Vec<Entry>) -> Vec<Entry> {
    trail.sort_by(|a, b| (a.time_ms, &a.job).cmp(&(b.time_ms, &b.job)));
    trail.dedup_by(|a, b| a == b);
    trail
}
