//! Small in-process memories that spare the storage a read for facts that do not change
//! (a folder state that exists) or change rarely (a login's user id, kept for a minute).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries kept at most; a full cache is emptied and starts over.
const CAPACITY: usize = 100_000;

/// How long a login's user id is trusted without asking the storage.
const USER_TTL: Duration = Duration::from_secs(60);

static USER_IDS: Mutex<Option<HashMap<String, (String, Instant)>>> = Mutex::new(None);
static FOLDER_STATES: Mutex<Option<HashSet<String>>> = Mutex::new(None);

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

/// True if this folder state is known to be stored.
pub fn folder_state_stored(folder_id: &str) -> bool {
    FOLDER_STATES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(folder_id))
}

/// Remembers that this folder state is stored.
pub fn remember_folder_state(folder_id: &str) {
    let mut guard = FOLDER_STATES.lock().unwrap_or_else(|p| p.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    if set.len() >= CAPACITY {
        set.clear();
    }
    set.insert(folder_id.to_string());
}
