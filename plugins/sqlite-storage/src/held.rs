//! Record writes held in memory until the next log append, for a worker that is the only
//! worker writing its database (the worker host's `claim_writer(true)`, decision 97).
//!
//! Handlers read a view, merge an event into it and write it back, several views per event;
//! each write was a transaction of its own, which wrote every page it dirtied to the WAL, and
//! the next event's write of the same view wrote the same pages again. Held, a write is a map
//! entry that this process's reads see at once; the next log append writes every held record
//! once, in its own transaction, before the log's entries, and is synced with them. A job is
//! reported DONE only after its entry is appended, so what its handlers wrote is stored by
//! then, as before. A crash loses only the held writes of jobs not yet DONE, which the broker
//! gives out again and the handlers write again.
//!
//! Sound only while no other process writes these records: a held record is newer than the
//! file's, and another worker comparing with the file's (`put_if`) would overwrite it. So the
//! claim is a lock on a file beside the database, exclusive for a sole worker and shared for
//! the others, taken without waiting: a sole worker beside any other is refused at start-up.
//! The kernel releases it when the process ends, however it ends. Programs that read the
//! archive or write their own records (the API, the admin CLI) never claim and write at once;
//! they see a worker's records after its next append, a few milliseconds later.

use std::{
    collections::HashMap,
    fs::{File, TryLockError},
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use bonnie_plugin_api::{PluginError, Record};

/// The collections a sole worker writes at once all the same: item documents (written once
/// per message, each with its whole index text, and a write that fails must fail only its
/// message's job) and the DLP outbox (`dlp-outbox`, bonnie-dlp-actions: an alert's claim and
/// its sent mark must be stored when they are made, or a crash sends it again).
const WRITTEN_AT_ONCE: [&str; 2] = [bonnie_plugin_api::items::ITEMS, "dlp-outbox"];

/// Whether a sole worker holds its writes of `collection`.
pub fn holds(collection: &str) -> bool {
    !WRITTEN_AT_ONCE.contains(&collection)
}

/// A held write: the record, or `None` for a deletion.
pub type Write = Option<Record>;

/// Held writes by collection, then key.
pub type Writes = HashMap<String, HashMap<String, Write>>;

/// A worker's claim on the database, and the writes it holds when it is the only worker.
pub struct Claim {
    /// Holds the lock for as long as the storage is open.
    _lock: File,
    /// `Some` for a sole worker.
    held: Option<Mutex<Writes>>,
}

impl Claim {
    /// Takes the lock beside `db` (created 0640 if missing): exclusive if `sole`, shared
    /// otherwise; an error naming the conflict if another worker's claim excludes it.
    pub fn take(db: &Path, sole: bool) -> Result<Self, PluginError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = lock_path(db);
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(&path)
            .map_err(|e| {
                PluginError::config(format!("cannot open the lock {}: {e}", path.display()))
            })?;
        let taken = if sole {
            lock.try_lock()
        } else {
            lock.try_lock_shared()
        };
        match taken {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if sole => {
                return Err(PluginError::config(format!(
                    "another worker writes {} (it holds {}): a worker with sole_writer = true \
                     in [worker] must be the only worker on its storage file; stop the other, \
                     or set sole_writer = false in every worker's [worker] (slower)",
                    db.display(),
                    path.display()
                )));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(PluginError::config(format!(
                    "a worker with sole_writer = true in [worker] writes {} (it holds {}): \
                     stop it, or set sole_writer = false in every worker's [worker]",
                    db.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(PluginError::config(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        Ok(Self {
            _lock: lock,
            held: sole.then(|| Mutex::new(Writes::new())),
        })
    }

    /// The held writes, if this worker holds them.
    pub fn held(&self) -> Option<MutexGuard<'_, Writes>> {
        self.held
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The lock file of the database at `db`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-worker.lock");
    PathBuf::from(name)
}

/// The held record or deletion for this collection and key, if any: `Some(None)` for a held
/// deletion.
pub fn lookup(writes: &Writes, collection: &str, key: &str) -> Option<Option<Record>> {
    writes.get(collection)?.get(key).cloned()
}

/// Holds a write.
pub fn hold(writes: &mut Writes, collection: &str, key: &str, write: Write) {
    match writes.get_mut(collection) {
        Some(held) => {
            held.insert(key.to_string(), write);
        }
        None => {
            let held = HashMap::from([(key.to_string(), write)]);
            writes.insert(collection.to_string(), held);
        }
    }
}

/// Writes every held record of `collections` in `tx` (the caller forgets them once `tx`
/// committed).
pub fn write_all<'a>(
    tx: &rusqlite::Transaction<'_>,
    collections: impl Iterator<Item = (&'a String, &'a HashMap<String, Write>)>,
) -> rusqlite::Result<()> {
    for (collection, held) in collections {
        for (key, write) in held {
            match write {
                Some(record) => crate::records::write(tx, record, None)?,
                None => {
                    crate::records::delete_in(tx, collection, key)?;
                }
            }
        }
    }
    Ok(())
}
