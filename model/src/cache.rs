//! Small in-process memories that spare the storage a read for facts that only move one way
//! (a folder state that exists, and the earliest event time it is stored with) or change
//! rarely (a login's user id, kept for a minute).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries kept at most; a full cache is emptied and starts over.
const CAPACITY: usize = 100_000;

/// How long a login's user id is trusted without asking the storage.
const USER_TTL: Duration = Duration::from_secs(60);

static USER_IDS: Mutex<Option<HashMap<String, (String, Instant)>>> = Mutex::new(None);
static FOLDER_STATES: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);

/// The cached user id of `login`, if fresh.
pub fn user_id(login: &str) -> Option<String> {
    let guard = USER_IDS.lock().unwrap_or_else(|p| p.into_inner());
    let (id, at) = guard.as_ref()?.get(login)?;
    (at.elapsed() < USER_TTL).then(|| id.clone())
}

/// Remembers the user id of `login`.
pub fn remember_user_id(login: &str, id: &str) {
    let mut guard = USER_IDS.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(login.to_string(), (id.to_string(), Instant::now()));
}

/// Forgets the user id of `login` (it was just resolved).
pub fn forget_user_id(login: &str) {
    if let Some(map) = USER_IDS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        map.remove(login);
    }
}

/// The event time (ms) this folder state is known to be stored with, if it is known to be
/// stored: the stored time is that or earlier.
pub fn folder_state_since(folder_id: &str) -> Option<i64> {
    FOLDER_STATES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|s| s.get(folder_id).copied())
}

/// Remembers that this folder state is stored with an event time of `at_ms` or earlier.
pub fn remember_folder_state(folder_id: &str, at_ms: i64) {
    let mut guard = FOLDER_STATES.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= CAPACITY {
        map.clear();
    }
    let known = map.entry(folder_id.to_string()).or_insert(at_ms);
    *known = (*known).min(at_ms);
}
