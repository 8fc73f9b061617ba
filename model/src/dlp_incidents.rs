//! DLP incidents as the archive keeps them: every rule hit of a job is in the job's record
//! (`dlp.incidents`, so it is part of the verifiable log) and a derived record in
//! [`COLLECTION`] keyed `<job id>/<n>` (so retention's purge of the job removes it too),
//! indexed by rule, user and severity, at the event's time. Both are computed from the record
//! alone: writing them again (another pass, another worker, a redelivered job) writes the same
//! thing. The DLP handler plugin writes them; `bonnie dlp incidents` and bonnie-api's
//! `dlp.incidents` read them through [`query`].

use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};
use serde_json::{Value, json};

use crate::record::{self, Object};

/// The incidents, by `<job id>/<n>`.
pub const COLLECTION: &str = "dlp-incidents";
/// The alerts outbox of bonnie-dlp-actions (its `COLLECTION`), keyed `<job id>/<hit>/<action>`:
/// an entry holds the job's masked incident, so retention's purge of the job removes it too.
pub const OUTBOX: &str = "dlp-outbox";
/// The record's field that holds what the DLP handler found.
pub const FIELD: &str = "dlp";
/// Index term: the rule that fired.
pub const RULE_FIELD: &str = "rule";
/// Index term: the user who acted.
pub const USER_FIELD: &str = "user";
/// Index term: the rule's severity.
pub const SEVERITY_FIELD: &str = "severity";

/// The record's fields an incident names its event by.
const EVENT_FIELDS: [&str; 8] = [
    "event",
    "@timestamp",
    "user",
    "folder",
    "folder_uniqueid",
    "server",
    "subject",
    "message_id",
];

/// The incident as the derived record holds it: the record's own plus the event it is about.
pub fn derived(record: &Object, job: &str, incident: &Value) -> Value {
    let mut body = incident.as_object().cloned().unwrap_or_default();
    for field in EVENT_FIELDS {
        if let Some(value) = record.get(field) {
            body.insert(field.to_string(), value.clone());
        }
    }
    body.insert("job".to_string(), json!(job));
    Value::Object(body)
}

/// Writes the record's incidents (`dlp.incidents`) to [`COLLECTION`]; how many.
pub fn store(storage: &StorageClient, record: &Object, job: &str) -> Result<usize, PluginError> {
    let incidents = record
        .get(FIELD)
        .and_then(|d| d.get("incidents"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let time_ms = record::event_ms(record).unwrap_or_else(bonnie_core::time::now_ms);
    for incident in &incidents {
        let n = incident.get("n").and_then(Value::as_u64).unwrap_or(0);
        let body = derived(record, job, incident);
        let text = |field: &str| body.get(field).and_then(Value::as_str).unwrap_or_default();
        let mut stored = Record::new(COLLECTION, &format!("{job}/{n}"), &body)
            .at(time_ms)
            .indexed(RULE_FIELD, text("rule"))
            .indexed(SEVERITY_FIELD, text("severity"));
        if !text("user").is_empty() {
            stored = stored.indexed(USER_FIELD, text("user"));
        }
        storage.put(stored)?;
    }
    Ok(incidents.len())
}

/// Which incidents a query asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Before (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Of this rule.
    pub rule: Option<String>,
    /// Of this user (login).
    pub user: Option<String>,
}

/// The incidents the filter asks for, oldest first, as stored.
pub fn query(storage: &StorageClient, filter: &Filter) -> Result<Vec<Value>, PluginError> {
    let index = match (&filter.rule, &filter.user) {
        (Some(rule), _) => Some((RULE_FIELD.to_string(), rule.clone())),
        (None, Some(user)) => Some((USER_FIELD.to_string(), user.clone())),
        (None, None) => None,
    };
    let query = RecordQuery {
        collection: COLLECTION.to_string(),
        index,
        from_ms: filter.since_ms,
        to_ms: filter.until_ms,
        all: true,
        ..RecordQuery::default()
    };
    let wanted = |body: &Value, field: &str, value: &Option<String>| {
        value
            .as_deref()
            .is_none_or(|v| body.get(field).and_then(Value::as_str) == Some(v))
    };
    storage
        .query(&query)?
        .iter()
        .map(Record::json)
        .filter(|body| {
            body.as_ref().map_or(true, |b| {
                wanted(b, RULE_FIELD, &filter.rule) && wanted(b, USER_FIELD, &filter.user)
            })
        })
        .collect()
}
