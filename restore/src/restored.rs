//! The places a restore filed messages in (`restored-places`, keyed as `message-places` is:
//! folder uniqueid, UIDVALIDITY, UID), with the run and the archived message each is a copy
//! of. A restore writes one when Cyrus tells it where the message went (APPENDUID); the
//! snapshot of a message leaves these places out, so that a message restored somewhere and
//! expunged from its own folder is still found deleted there, not alive in its copy.

use bonnie_model::message_places::place_key;
use bonnie_plugin_api::{
    PluginError,
    storage::{Record, StorageClient},
};
use serde_json::json;

/// The places restores filed messages in.
pub const RESTORED: &str = "restored-places";

/// Where a restore filed a message, and what it is a copy of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed<'a> {
    /// The target folder's uniqueid.
    pub uniqueid: &'a str,
    /// Its UIDVALIDITY.
    pub uidvalidity: u64,
    /// The new message's UID.
    pub uid: u64,
    /// The restore's run.
    pub run: &'a str,
    /// The payload's digest.
    pub digest: &'a str,
    /// The message's UID in the archived folder it was restored from.
    pub old_uid: u64,
}

/// Records a message a restore filed.
pub fn record(storage: &StorageClient, filed: &Filed<'_>) -> Result<(), PluginError> {
    let body = json!({ "run": filed.run, "digest": filed.digest, "old_uid": filed.old_uid });
    storage.put(Record::new(
        RESTORED,
        &place_key(filed.uniqueid, filed.uidvalidity, filed.uid),
        &body,
    ))
}

/// Whether a restore filed the message at this place.
pub fn is_restored(
    storage: &StorageClient,
    uniqueid: &str,
    uidvalidity: u64,
    uid: u64,
) -> Result<bool, PluginError> {
    Ok(storage
        .get(RESTORED, &place_key(uniqueid, uidvalidity, uid))?
        .is_some())
}
