//! IMAP sessions, a derived view beside the append-only log: a Login opens a session record
//! (by `vnd.cmu.sessionId`); its Logout completes it with the logout time and the duration.
//! A Logout whose Login has not been stored yet looks again for up to 255 ms, then waits
//! (postpones) a few times, then is stored on its own. Each end writes only its own fields, atomically, so the two may be taken by
//! different threads or workers in either order and the session comes out the same.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

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

/// How long a Logout's first try looks again for its Login before it waits, in
/// milliseconds between looks (255 in all). A Login a moment before its Logout is most often
/// being handled on another thread, or queued at another worker, as the Logout is, and is
/// stored milliseconds later; waiting instead means the broker's postpone delay (5 s by
/// default), which held the shipped pipeline's benchmark for seconds after its last other job
/// (decision 96).
const LOGIN_PATIENCE_MS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// After a look that found nothing, Logouts of this process do not look again for this long
/// and postpone at once: when Logins will not come (sessions opened before bonnie ran, a mass
/// logout as Cyrus restarts), looking would hold up every handler thread for nothing. (Threads
/// that began looking before the miss still look, so in such a flood each thread sleeps up to
/// 255 ms in every 1.25 s or so, until it is over.)
const NO_LOOK_AFTER_MISS: std::time::Duration = std::time::Duration::from_secs(1);

/// When Logouts look again for their Logins: not within [`NO_LOOK_AFTER_MISS`] of a look
/// that found nothing. One for the process ([`PATIENCE`]); the tests of looking make their own.
#[derive(Default)]
struct Patience {
    /// Until when (ms after `since`) Logouts do not look again.
    no_look_until_ms: AtomicU64,
    since: std::sync::OnceLock<Instant>,
}

static PATIENCE: Patience = Patience {
    no_look_until_ms: AtomicU64::new(0),
    since: std::sync::OnceLock::new(),
};

impl Patience {
    fn now_ms(&self) -> u64 {
        self.since.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    /// True as soon as `known` says so, looking again after each of [`LOGIN_PATIENCE_MS`];
    /// false at once within [`NO_LOOK_AFTER_MISS`] of a look that found nothing.
    fn look_again(
        &self,
        known: impl Fn() -> Result<bool, PluginError>,
    ) -> Result<bool, PluginError> {
        if self.now_ms() < self.no_look_until_ms.load(Ordering::Acquire) {
            return Ok(false);
        }
        for pause in LOGIN_PATIENCE_MS {
            std::thread::sleep(std::time::Duration::from_millis(pause));
            if known()? {
                return Ok(true);
            }
        }
        let until = self.now_ms() + NO_LOOK_AFTER_MISS.as_millis() as u64;
        self.no_look_until_ms.fetch_max(until, Ordering::AcqRel);
        Ok(false)
    }
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
    logout_with(&PATIENCE, storage, record, job_id, max_waits, now_ms)
}

/// [`logout`], looking again for the Login as `patience` allows.
fn logout_with(
    patience: &Patience,
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
    let login_known = || -> Result<bool, PluginError> {
        Ok(storage
            .get(SESSIONS, &id)?
            .map(|r| r.json())
            .transpose()?
            .is_some_and(|s| s.get("login_ms").is_some()))
    };
    if !login_known()? {
        let waited = storage
            .get(LOGOUT_WAITS, job_id)?
            .map(|r| r.json())
            .transpose()?
            .and_then(|v| v.get("waits").and_then(Value::as_u64))
            .unwrap_or(0) as u32;
        if waited < max_waits && !(waited == 0 && patience.look_again(login_known)?) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, StorageClient) {
        let dir = tempfile::tempdir().unwrap();
        let store = bonnie_sqlite_storage::SqliteStorage::open(&dir.path().join("b.db"), 5000);
        let client = StorageClient::new(bonnie_plugin_api::plugin::storage_box(store.unwrap()));
        (dir, client)
    }

    fn event(event: &str, at: &str) -> Object {
        serde_json::from_value(json!({
            "event": event, "@timestamp": at,
            "user": "jürgen.weiß@example.org", "session_id": "imap-7-s1",
        }))
        .unwrap()
    }

    /// A storage on which the Login is stored by "another worker" (a second store on the same
    /// file) just after the Logout first looked for it: when the Logout reads how often it
    /// has waited.
    struct LoginArrives {
        store: bonnie_sqlite_storage::SqliteStorage,
        other_worker: StorageClient,
        login: Object,
    }

    impl bonnie_plugin_api::plugin::Storage for LoginArrives {
        fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
            if collection == LOGOUT_WAITS {
                login(&self.other_worker, &self.login, "job-login", 0)?;
            }
            self.store.get(collection, key)
        }
        fn put(&self, record: Record) -> Result<(), PluginError> {
            self.store.put(record)
        }
        fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
            self.store.delete(collection, key)
        }
        fn query(&self, query: bonnie_plugin_api::RecordQuery) -> Result<Vec<Record>, PluginError> {
            self.store.query(query)
        }
        fn append_log(
            &self,
            items: Vec<bonnie_plugin_api::OutputItem>,
        ) -> Result<Vec<bonnie_plugin_api::ItemStatus>, PluginError> {
            self.store.append_log(items)
        }
        fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
            self.store.put_if(record, expected)
        }
    }

    /// A storage on which the Login of `event`'s session arrives just after a Logout first
    /// looked for it.
    fn login_arrives(dir: &std::path::Path) -> StorageClient {
        let path = dir.join("b.db");
        let open = || bonnie_sqlite_storage::SqliteStorage::open(&path, 5000).unwrap();
        StorageClient::new(bonnie_plugin_api::plugin::storage_box(LoginArrives {
            store: open(),
            other_worker: StorageClient::new(bonnie_plugin_api::plugin::storage_box(open())),
            login: event("Login", "2026-12-03T09:00:00.000Z"),
        }))
    }

    /// The Login being handled elsewhere as its Logout is, and stored just after the Logout
    /// first looked: the Logout finds it by looking again, and is not postponed.
    #[test]
    fn a_logout_finds_a_login_stored_a_moment_later_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let storage = login_arrives(dir.path());
        let mut logout = event("Logout", "2026-12-03T09:30:00.000Z");
        let patience = Patience::default();
        let outcome = logout_with(&patience, &storage, &mut logout, "job-logout", 3, 0).unwrap();
        assert_eq!(outcome, Logout::Store);
        assert_eq!(logout["login_time"], "2026-12-03T09:00:00.000Z");
        assert_eq!(logout["duration"], 1800.0);
        assert!(storage.get(LOGOUT_WAITS, "job-logout").unwrap().is_none());
    }

    /// Right after a look that found nothing, the next Logout does not look (its Login would
    /// have come) but is postponed at once: Logins that never come hold no thread up.
    #[test]
    fn after_a_look_in_vain_logouts_are_postponed_without_looking() {
        let patience = Patience::default();
        let (_dir, lonely) = storage();
        let dir = tempfile::tempdir().unwrap();
        let storage = login_arrives(dir.path());
        let mut orphan = event("Logout", "2026-12-03T09:10:00.000Z");
        orphan.insert("session_id".into(), json!("imap-7-never-logged-in"));
        let outcome = logout_with(&patience, &lonely, &mut orphan, "job-orphan", 3, 0).unwrap();
        assert_eq!(outcome, Logout::Wait);
        // Within the second after the miss (the next call begins at once).
        let mut logout = event("Logout", "2026-12-03T09:30:00.000Z");
        let outcome = logout_with(&patience, &storage, &mut logout, "job-logout", 3, 0).unwrap();
        assert_eq!(outcome, Logout::Wait);
        assert!(storage.get(LOGOUT_WAITS, "job-logout").unwrap().is_some());
    }

    /// A Login that does not come within the look's few milliseconds is waited for by
    /// postponing, as many times as allowed, then the Logout is stored on its own.
    #[test]
    fn a_logout_whose_login_does_not_come_waits_then_is_stored_alone() {
        let (_dir, storage) = storage();
        let mut logout = event("Logout", "2026-12-03T09:30:00.000Z");
        for _ in 0..2 {
            assert_eq!(
                super::logout(&storage, &mut logout, "job-logout", 2, 0).unwrap(),
                Logout::Wait
            );
        }
        assert_eq!(
            super::logout(&storage, &mut logout, "job-logout", 2, 0).unwrap(),
            Logout::Store
        );
        assert_eq!(logout["login_missing"], true);
    }
}
