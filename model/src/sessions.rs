//! IMAP sessions, a derived view beside the append-only log: a Login opens a session record
//! (by `vnd.cmu.sessionId`); its Logout completes it with the logout time and the duration.
//! A Logout whose Login has not been stored yet waits (postpones) a few times, then is stored
//! on its own. Each end writes only its own fields, atomically, so the two may be taken by
//! different threads or workers in either order and the session comes out the same.

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
    update(storage, &id, |session| {
        session.insert(
            "login_time".to_string(),
            record.get("@timestamp").cloned().unwrap_or(Value::Null),
        );
        session.insert("login_ms".to_string(), json!(login_ms));
        session.insert("login_job".to_string(), json!(job_id));
        // The Login's user is the session's, whoever wrote first.
        for key in ["user", "user_id", "client_ip", "service", "server"] {
            if let Some(value) = record.get(key) {
                session.insert(key.to_string(), value.clone());
            }
        }
    })?;
    Ok(())
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
    let login_known = storage
        .get(SESSIONS, &id)?
        .map(|r| r.json())
        .transpose()?
        .is_some_and(|s| s.get("login_ms").is_some());
    if !login_known {
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
    }
    let logout_user: Vec<(&str, Value)> = ["user", "user_id"]
        .into_iter()
        .filter_map(|key| record.get(key).map(|v| (key, v.clone())))
        .collect();
    let timestamp = record.get("@timestamp").cloned().unwrap_or(Value::Null);
    let session = update(storage, &id, |session| {
        session.insert("logout_time".to_string(), timestamp.clone());
        session.insert("logout_ms".to_string(), json!(logout_ms));
        session.insert("logout_job".to_string(), json!(job_id));
        for (key, value) in &logout_user {
            if !session.contains_key(*key) {
                session.insert(key.to_string(), value.clone());
            }
        }
    })?;
    match session.get("login_ms") {
        Some(_) => {
            record.insert(
                "login_time".to_string(),
                session.get("login_time").cloned().unwrap_or(Value::Null),
            );
            record.insert(
                "duration".to_string(),
                session.get("duration").cloned().unwrap_or(Value::Null),
            );
        }
        None => {
            record.insert("login_missing".to_string(), json!(true));
        }
    }
    storage.delete(LOGOUT_WAITS, job_id)?;
    Ok(Logout::Store)
}

/// Changes a session atomically with `change` (which sets what its event knows), adds the
/// duration once both ends are known, and stores it; its time is its login's, else its
/// logout's. The session as stored.
fn update(
    storage: &StorageClient,
    id: &str,
    change: impl Fn(&mut Object),
) -> Result<Object, PluginError> {
    let mut written = Object::new();
    storage.update(SESSIONS, id, |stored| {
        let mut session = match stored.map(|r| r.json()).transpose()? {
            Some(Value::Object(session)) => session,
            _ => Object::new(),
        };
        let before = session.clone();
        session.insert("session_id".to_string(), json!(id));
        change(&mut session);
        let ms = |session: &Object, key: &str| session.get(key).and_then(Value::as_i64);
        let (login_ms, logout_ms) = (ms(&session, "login_ms"), ms(&session, "logout_ms"));
        if let (Some(login_ms), Some(logout_ms)) = (login_ms, logout_ms) {
            session.insert(
                "duration".to_string(),
                json!((logout_ms - login_ms) as f64 / 1000.0),
            );
        }
        written = session.clone();
        if stored.is_some() && session == before {
            return Ok(None);
        }
        let time_ms = login_ms.or(logout_ms).unwrap_or_default();
        let user = session
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut record = Record::new(SESSIONS, id, &Value::Object(session)).at(time_ms);
        if !user.is_empty() {
            record = record.indexed("user", &user);
        }
        Ok(Some(record))
    })?;
    Ok(written)
}
