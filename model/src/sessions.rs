//! IMAP sessions, a derived view beside the append-only log: a Login opens a session record
//! (by `vnd.cmu.sessionId`); its Logout completes it with the logout time and the duration.
//! A Logout whose Login has not been stored yet waits (postpones) a few times, then is stored
//! on its own.

use bonnie_plugin_api::{PluginError, Record, storage::StorageClient};
use serde_json::{Value, json};

use crate::record::{Object, event_ms};

/// Sessions, by session id.
pub const SESSIONS: &str = "sessions";

/// How often each Logout waited for its Login, by job id.
pub const LOGOUT_WAITS: &str = "logout-waits";

/// What to do with a Logout.
#[derive(Debug, PartialEq, Eq)]
pub enum Logout {
    /// Store it (completed, or on its own).
    Store,
    /// Its Login is not there yet: ask again later.
    Wait,
}

fn session_id(record: &Object) -> Option<String> {
    record
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Records the Login of a session (and completes the session if its Logout came first).
pub fn login(
    storage: &StorageClient,
    record: &Object,
    job_id: &str,
    now_ms: i64,
) -> Result<(), PluginError> {
    let Some(id) = session_id(record) else {
        return Ok(());
    };
    let login_ms = event_ms(record).unwrap_or(now_ms);
    let mut session = match storage.get(SESSIONS, &id)? {
        Some(existing) => existing.json()?.as_object().cloned().unwrap_or_default(),
        None => Object::new(),
    };
    session.insert("session_id".to_string(), json!(id));
    session.insert(
        "login_time".to_string(),
        record.get("@timestamp").cloned().unwrap_or(Value::Null),
    );
    session.insert("login_ms".to_string(), json!(login_ms));
    session.insert("login_job".to_string(), json!(job_id));
    for key in ["user", "user_id", "client_ip", "service", "server"] {
        if let Some(value) = record.get(key) {
            session.insert(key.to_string(), value.clone());
        }
    }
    if let Some(logout_ms) = session.get("logout_ms").and_then(Value::as_i64) {
        session.insert(
            "duration".to_string(),
            json!((logout_ms - login_ms) as f64 / 1000.0),
        );
    }
    put(storage, &id, session, login_ms)
}

/// Completes the session of a Logout and adds `login_time` and `duration` to its record; or
/// says to wait, up to `max_waits` times, for a Login not stored yet.
pub fn logout(
    storage: &StorageClient,
    record: &mut Object,
    job_id: &str,
    max_waits: u32,
    now_ms: i64,
) -> Result<Logout, PluginError> {
    let Some(id) = session_id(record) else {
        return Ok(Logout::Store);
    };
    let logout_ms = event_ms(record).unwrap_or(now_ms);
    let existing = storage.get(SESSIONS, &id)?.map(|r| r.json()).transpose()?;
    let mut session = existing
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    match session.get("login_ms").and_then(Value::as_i64) {
        Some(login_ms) => {
            let duration = (logout_ms - login_ms) as f64 / 1000.0;
            record.insert(
                "login_time".to_string(),
                session.get("login_time").cloned().unwrap_or(Value::Null),
            );
            record.insert("duration".to_string(), json!(duration));
            session.insert("duration".to_string(), json!(duration));
            storage.delete(LOGOUT_WAITS, job_id)?;
        }
        None => {
            let waited = storage
                .get(LOGOUT_WAITS, job_id)?
                .map(|r| r.json())
                .transpose()?
                .and_then(|v| v.get("waits").and_then(Value::as_u64))
                .unwrap_or(0) as u32;
            if waited < max_waits {
                let body = json!({ "waits": waited + 1, "session_id": id });
                storage.put(Record::new(LOGOUT_WAITS, job_id, &body).at(now_ms))?;
                return Ok(Logout::Wait);
            }
            record.insert("login_missing".to_string(), json!(true));
            storage.delete(LOGOUT_WAITS, job_id)?;
        }
    }
    session.insert("session_id".to_string(), json!(id));
    session.insert(
        "logout_time".to_string(),
        record.get("@timestamp").cloned().unwrap_or(Value::Null),
    );
    session.insert("logout_ms".to_string(), json!(logout_ms));
    session.insert("logout_job".to_string(), json!(job_id));
    for key in ["user", "user_id"] {
        if let (Some(value), false) = (record.get(key), session.contains_key(key)) {
            session.insert(key.to_string(), value.clone());
        }
    }
    put(storage, &id, session, logout_ms)?;
    Ok(Logout::Store)
}

/// Stores a session; its time is its login's, else the given one.
fn put(
    storage: &StorageClient,
    id: &str,
    session: Object,
    time_ms: i64,
) -> Result<(), PluginError> {
    let time_ms = session
        .get("login_ms")
        .and_then(Value::as_i64)
        .unwrap_or(time_ms);
    let user = session
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut record = Record::new(SESSIONS, id, &Value::Object(session)).at(time_ms);
    if !user.is_empty() {
        record = record.indexed("user", &user);
    }
    storage.put(record)
}
