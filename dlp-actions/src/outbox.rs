//! The outbox in the storage: entries written once per key (a redelivered job's second
//! enqueue changes nothing), found by their `state` index term and their time (the next
//! attempt's), and moved from state to state only by `put_if` against the body last read, so
//! that of two writers one wins and the other sees it.

use bonnie_dlp::Action;
use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};
use serde_json::{Value, json};

/// The storage collection of the outbox.
pub const COLLECTION: &str = "dlp-outbox";

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// To be sent (or being sent, when claimed).
    Pending,
    /// Delivered.
    Sent,
    /// Given up after the last attempt; `last_error` says why.
    Failed,
}

impl EntryState {
    /// The state's name in the entry and its index term.
    pub fn name(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Sent => "sent",
            EntryState::Failed => "failed",
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The record of entry `key` with `body`: its time is the next attempt's while pending, the
/// time it was sent or failed after.
pub(crate) fn record(key: &str, body: &Value) -> Record {
    let state = body["state"].as_str().unwrap_or("pending");
    let time = match state {
        "sent" => body["sent_ms"].as_i64(),
        "failed" => body["failed_ms"].as_i64(),
        _ => body["next_attempt_ms"].as_i64(),
    };
    Record::new(COLLECTION, key, body)
        .at(time.unwrap_or_else(now_ms))
        .indexed("state", state)
}

/// The DLP handler's side of the outbox.
pub struct Outbox {
    storage: StorageClient,
}

impl Outbox {
    /// The outbox in `storage`.
    pub fn new(storage: StorageClient) -> Self {
        Self { storage }
    }

    /// Puts an alert in the outbox under `key` (the handler's `<job id>/<hit n>/<action n>`),
    /// due now; true if it was new, false if the key was there already (whatever its state:
    /// sent alerts are not sent again). `incident` is what the alert tells, and must hold
    /// only masked excerpts. Only syslog, webhook and e-mail actions are alerts: any other is
    /// refused with a config error (incidents need nothing here; keywords and quarantine are
    /// the collector's `DLPACTION`).
    pub fn enqueue(
        &self,
        key: &str,
        action: &Action,
        incident: &Value,
    ) -> Result<bool, PluginError> {
        match action {
            Action::Syslog {} | Action::Webhook { .. } | Action::Email { .. } => {}
            other => {
                return Err(PluginError::config(format!(
                    "DLP outbox entry {key}: {other:?} is not an alert (only syslog, webhook and email are sent through the outbox)"
                )));
            }
        }
        if key.is_empty() {
            return Err(PluginError::config("a DLP outbox entry needs a key"));
        }
        let now = now_ms();
        let body = json!({
            "action": action,
            "incident": incident,
            "state": EntryState::Pending.name(),
            "attempts": 0,
            "next_attempt_ms": now,
            "enqueued_ms": now,
        });
        self.storage.put_if(record(key, &body), None)
    }

    /// The entry `key`, as stored.
    pub fn entry(&self, key: &str) -> Result<Option<Value>, PluginError> {
        self.storage
            .get(COLLECTION, key)?
            .map(|r| r.json())
            .transpose()
    }

    /// Every entry in `state`, oldest first, as `(key, body)`.
    pub fn entries(&self, state: EntryState) -> Result<Vec<(String, Value)>, PluginError> {
        let query = RecordQuery::all_with(COLLECTION, "state", state.name());
        self.storage
            .query(&query)?
            .into_iter()
            .map(|r| Ok((r.key.to_string(), r.json()?)))
            .collect()
    }
}
