//! User records: keyed by the LDAP unique attribute once the collector has resolved the user
//! (GETUSERDATA), and until then by `login:<login>`, marked unresolved. Log entries reference
//! them by `user_id`.

use bonnie_plugin_api::{PluginError, Record, RecordQuery, storage::StorageClient};
use serde_json::json;

use crate::{cache, record::Object};

/// The collection of user records.
pub const USERS: &str = "users";

/// ACL subjects and actors that are not users of the directory.
pub fn is_special(subject: &str) -> bool {
    subject.is_empty()
        || matches!(subject, "anyone" | "anonymous" | "cyrus" | "admin")
        || subject.starts_with("group:")
        || subject.starts_with('-')
}

/// The key of the unresolved record of `login`.
pub fn unresolved_id(login: &str) -> String {
    format!("login:{login}")
}

/// The user id of `login`: the resolved record's key if there is one, else the unresolved
/// record's (created if missing).
pub fn user_id(storage: &StorageClient, login: &str, now_ms: i64) -> Result<String, PluginError> {
    if let Some(id) = cache::user_id(login) {
        return Ok(id);
    }
    let id = match resolved_id(storage, login)? {
        Some(id) => id,
        None => {
            let id = unresolved_id(login);
            if storage.get(USERS, &id)?.is_none() {
                let body = json!({ "user": login, "resolved": false });
                storage.put(
                    Record::new(USERS, &id, &body)
                        .at(now_ms)
                        .indexed("login", login),
                )?;
            }
            id
        }
    };
    cache::remember_user_id(login, &id);
    Ok(id)
}

/// The key of the resolved record of `login`, if the collector has resolved it.
pub fn resolved_id(storage: &StorageClient, login: &str) -> Result<Option<String>, PluginError> {
    let query = RecordQuery {
        collection: USERS.to_string(),
        index: Some(("login".to_string(), login.to_string())),
        descending: true,
        limit: 10,
        ..RecordQuery::default()
    };
    for record in storage.query(&query)? {
        if record.json()?.get("resolved").and_then(|r| r.as_bool()) == Some(true) {
            return Ok(Some(record.key.into_string()));
        }
    }
    Ok(None)
}

/// Stores what the collector found of a user (`user_data`: `dn`, `cn`, `id`, `groups`, the
/// `cn`s of its directory groups); its id.
pub fn store_resolved(
    storage: &StorageClient,
    login: &str,
    data: &Object,
    now_ms: i64,
) -> Result<Option<String>, PluginError> {
    let Some(id) = data
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    let mut body = json!({
        "user": login,
        "resolved": true,
        "dn": data.get("dn"),
        "cn": data.get("cn"),
        "unique_id": id,
    });
    if let Some(groups) = data.get("groups") {
        body["groups"] = json!(string_list(Some(groups)));
    }
    storage.put(
        Record::new(USERS, id, &body)
            .at(now_ms)
            .indexed("login", login),
    )?;
    cache::forget_user_id(login);
    Ok(Some(id.to_string()))
}

/// The `cn`s of the directory groups of `login` as its resolved record keeps them; none when
/// the collector has not resolved it (or the directory named none).
pub fn groups(storage: &StorageClient, login: &str) -> Result<Vec<String>, PluginError> {
    let Some(id) = resolved_id(storage, login)? else {
        return Ok(Vec::new());
    };
    let Some(record) = storage.get(USERS, &id)? else {
        return Ok(Vec::new());
    };
    Ok(string_list(record.json()?.get("groups")))
}

/// The strings of a JSON list; anything else in it (the job is hostile input) is left out.
fn string_list(value: Option<&serde_json::Value>) -> Vec<String> {
    value
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_string))
        .collect()
}

/// Sets the record's `user_id` for its acting `user` (none for an empty or special user).
pub fn resolve(
    storage: &StorageClient,
    record: &mut Object,
    now_ms: i64,
) -> Result<(), PluginError> {
    let Some(login) = record
        .get("user")
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Ok(());
    };
    if is_special(&login) {
        return Ok(());
    }
    let from_collector = match record.get("user_data") {
        Some(serde_json::Value::Object(data)) => store_resolved(storage, &login, data, now_ms)?,
        _ => None,
    };
    let id = match from_collector {
        Some(id) => id,
        None => user_id(storage, &login, now_ms)?,
    };
    record.insert("user_id".to_string(), json!(id));
    Ok(())
}
