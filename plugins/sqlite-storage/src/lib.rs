//! Storage plugin `sqlite-storage`, bonnie's embedded default: one SQLite file in WAL mode
//! holding keyed records with their index terms, and the append-only, hash-chained event log.

mod connection;
mod held;
mod items;
pub mod log;
mod payloads;
mod records;
mod schema;
mod wal;

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use bonnie_payload_store::{HandedOver, LocalFolder, S3Bucket};
use bonnie_plugin_api::{items::ITEMS, prelude::*};
use rusqlite::Connection;
use serde::Deserialize;

pub use payloads::Payloads;

/// `[plugins.sqlite-storage]`, less the payload store's keys (`payload_store`, `s3_`,
/// `payload_key_file`: bonnie_payload_store::Settings).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The database file. Default: `var/bonnie.db`.
    #[serde(default = "default_path")]
    path: String,
    /// How long a write waits for a lock held by another process, in milliseconds.
    /// Default: 5000.
    #[serde(default = "default_busy_timeout_ms")]
    busy_timeout_ms: u64,
    /// Payloads too large to travel in a job are written here by the collector (files beside
    /// the database); payloads are looked up here after the database. With
    /// `payload_store = "s3"`, a payload found here is moved into the bucket. Default:
    /// `var/payloads`.
    #[serde(default = "default_payload_dir")]
    payload_dir: String,
    /// At most this many bytes of text of each message part (a body, an attachment) go into
    /// the log's full-text index; a message with a longer part is indexed in part and marked
    /// `text_truncated`. Default: 1048576 (1 MiB).
    #[serde(default = "default_max_indexed_text_bytes")]
    max_indexed_text_bytes: usize,
}

fn default_max_indexed_text_bytes() -> usize {
    bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES
}

fn default_payload_dir() -> String {
    "var/payloads".to_string()
}

fn default_path() -> String {
    "var/bonnie.db".to_string()
}

fn default_busy_timeout_ms() -> u64 {
    5000
}

/// The storage: one connection that writes, and a few that read.
pub struct SqliteStorage {
    /// The writing connection. SQLite does not sync its commits: [`Self::write`] syncs `wal`
    /// after those that must be durable, outside the write lock.
    writer: Mutex<Connection>,
    wal: wal::Wal,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    busy_timeout_ms: u64,
    payloads: Payloads,
    /// How the log's full-text index reads messages.
    text_index: log::TextIndex,
    /// The worker host's claim, and the record writes a sole worker holds until the next log
    /// append (`held`).
    claim: OnceLock<held::Claim>,
}

impl SqliteStorage {
    /// Opens (creating) the database named by the plugin's config, and the payload store:
    /// a bucket that does not answer is an error now, not at the first message.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        const PLUGIN: &str = "sqlite-storage";
        let mut table: serde_json::Map<String, serde_json::Value> = host.config()?;
        let store = bonnie_payload_store::Settings::take_from(PLUGIN, &mut table)
            .map_err(PluginError::config)?;
        let settings: Settings =
            serde_json::from_value(serde_json::Value::Object(table)).map_err(|e| {
                PluginError::config(format!("invalid configuration for plugin {PLUGIN}: {e}"))
            })?;
        let folder = LocalFolder::new(host.path(&settings.payload_dir));
        let sealer = store
            .sealer(PLUGIN, |p| host.path(p))
            .map_err(PluginError::config)?;
        let payloads = match store
            .s3_config(PLUGIN, |p| host.path(p))
            .map_err(PluginError::config)?
        {
            None => Payloads::in_database(folder, sealer),
            Some(config) => {
                let bucket = S3Bucket::connect(&config)
                    .map_err(|e| PluginError::config(format!("[plugins.{PLUGIN}] {e}")))?
                    .sealed_by(sealer.clone());
                Payloads::beyond(Arc::new(HandedOver::new(bucket, folder)), sealer)
            }
        };
        let path = host.path(&settings.path);
        let mut storage = Self::open(&path, settings.busy_timeout_ms)?;
        storage.text_index = log::TextIndex {
            max_part_bytes: settings.max_indexed_text_bytes,
            payloads: payloads.clone(),
        };
        host.info(
            "Storage opened.",
            &[
                ("path", &path.display()),
                ("payloads", &payloads.location()),
            ],
        );
        storage.payloads = payloads;
        Ok(storage)
    }

    /// Opens (creating) the database at `path`. A new database is created 0640 in folders
    /// created 0750 (it holds everyone's mail): SQLite gives its WAL and shared-memory files
    /// the database file's mode.
    pub fn open(path: &Path, busy_timeout_ms: u64) -> Result<Self, PluginError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| {
                    PluginError::config(format!(
                        "cannot create the folder of {}: {e}",
                        path.display()
                    ))
                })?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(PluginError::config(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        let mut writer = connect(path, busy_timeout_ms)?;
        schema::migrate(&mut writer).map_err(|e| {
            PluginError::config(format!(
                "cannot set up the database {}: {e}",
                path.display()
            ))
        })?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        let wal = wal::Wal::open(path).map_err(|e| {
            PluginError::config(format!(
                "cannot open the write-ahead log of {}: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            writer: Mutex::new(writer),
            wal,
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
            busy_timeout_ms,
            payloads: Payloads::default(),
            text_index: log::TextIndex::default(),
            claim: OnceLock::new(),
        })
    }

    /// Runs `f` on a reading connection, opening one if none is idle.
    fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, PluginError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, self.busy_timeout_ms)?,
        };
        let result = f(&conn).map_err(db_error);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        result
    }

    /// Runs `f` on the writing connection. Event-log appends are synced (`synced`): the WAL
    /// is synced once `f` has committed, after the connection is released, so that neither
    /// this worker's other threads nor another worker wait for the disk. Records are derived
    /// views that can be rebuilt from the log, so their commits are not: they reach the disk
    /// with the next synced commit, the log append of the job that wrote them.
    fn write<R>(
        &self,
        synced: bool,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, PluginError> {
        let result = {
            let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn).map_err(db_error)?
        };
        if synced {
            self.wal.sync().map_err(|e| {
                PluginError::transient(format!(
                    "cannot sync the write-ahead log {}: {e}",
                    self.wal.name().display()
                ))
            })?;
        }
        Ok(result)
    }

    /// The record writes held for the next log append, if this storage holds them (a sole
    /// worker's). Taken before the writing connection wherever both are.
    fn held(&self) -> Option<MutexGuard<'_, held::Writes>> {
        self.claim.get().and_then(held::Claim::held)
    }

    /// The same, for a write or read of `collection`: none for the collections written at
    /// once even by a sole worker ([`held::holds`]).
    fn held_for(&self, collection: &str) -> Option<MutexGuard<'_, held::Writes>> {
        held::holds(collection).then(|| self.held()).flatten()
    }

    /// The stored record, the held one first.
    fn current(
        &self,
        held: &held::Writes,
        collection: &str,
        key: &str,
    ) -> Result<Option<Record>, PluginError> {
        match held::lookup(held, collection, key) {
            Some(found) => Ok(found),
            None => self.write(false, |conn| records::get(conn, collection, key)),
        }
    }

    /// Writes the held records of `collection` (of every collection: `None`) in a
    /// transaction of their own: before a query of that collection, which must see them, and
    /// when the storage closes.
    fn write_held(
        &self,
        held: &mut held::Writes,
        collection: Option<&str>,
    ) -> Result<(), PluginError> {
        let chosen = |c: &String| collection.is_none_or(|wanted| c == wanted);
        if !held.keys().any(chosen) {
            return Ok(());
        }
        self.write(false, |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            held::write_all(&tx, held.iter().filter(|(c, _)| chosen(c)))?;
            tx.commit()
        })?;
        held.retain(|c, _| !chosen(c));
        Ok(())
    }
}

impl Drop for SqliteStorage {
    /// A sole worker stopping writes what it holds: the records of jobs not yet DONE, which
    /// would be written again when they are, but need not wait for it.
    fn drop(&mut self) {
        if let Some(mut held) = self.held() {
            let _ = self.write_held(&mut held, None);
        }
    }
}

/// WAL pages after which a commit checkpoints the WAL into the database file.
const WAL_CHECKPOINT_PAGES: i64 = 10_000;

fn connect(path: &Path, busy_timeout_ms: u64) -> Result<Connection, PluginError> {
    let mut conn = Connection::open(path).map_err(|e| {
        PluginError::config(format!("cannot open the database {}: {e}", path.display()))
    })?;
    connection::configure(&mut conn, std::time::Duration::from_millis(busy_timeout_ms))
        .map_err(db_error)?;
    // WAL lets readers (bonnie-api, the admin CLI) run beside the writer; FULL syncs every
    // commit, because an acknowledged job must survive a power loss (the storage's writer
    // syncs the WAL itself instead, see `wal`).
    // Switching a new file to WAL does not wait for the busy timeout when another worker
    // opens it at the same moment, so wait here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(busy_timeout_ms);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(db_error(e)),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_error)?;
    // Views are rewritten by every event, so the same few pages reach the WAL again and
    // again; a checkpoint copies each page once however often it was written, and syncs
    // twice. Every 1000 pages (SQLite's default) meant a checkpoint about every hundred
    // events; every WAL_CHECKPOINT_PAGES (40 MB of WAL at most) copies far fewer pages.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
        .map_err(db_error)?;
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Database errors are passing faults (busy, full disk): the job is retried.
fn db_error(e: rusqlite::Error) -> PluginError {
    PluginError::transient(format!("SQLite: {e}"))
}

impl Storage for SqliteStorage {
    fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
        // On the writing connection: its page cache stays warm across its own commits,
        // while a reading connection drops its cache whenever the file changed since its
        // last read, which between two handlers' writes is always. Handlers read a view
        // just before they write it back, and a point read is short beside the writes.
        if collection == log::COLLECTION {
            return self.write(false, |conn| log::entry(conn, key));
        }
        if let Some(held) = self.held_for(collection) {
            return self.current(&held, collection, key);
        }
        self.write(false, |conn| records::get(conn, collection, key))
    }

    /// Inserts or replaces a record; an item document (collection `items`) is indexed in
    /// the same transaction, its text from `extra` kept nowhere else.
    fn put(&self, record: Record) -> Result<(), PluginError> {
        let item = indexed_item(&record)?;
        if let Some(mut held) = self.held_for(&record.collection) {
            let (collection, key) = (record.collection.to_string(), record.key.to_string());
            held::hold(&mut held, &collection, &key, Some(record));
            return Ok(());
        }
        self.write(false, |conn| records::put(conn, &record, item.as_ref()))
    }

    /// Deletes a record; `log` and `payloads` are retention's: a log entry is purged in place
    /// (a tombstone keeps its place in the chain), a payload removed from the database and
    /// from wherever else this storage keeps payloads (true if the database had it).
    fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
        match collection {
            log::COLLECTION => self.write(true, |conn| log::purge(conn, key)),
            PAYLOADS => {
                let in_database = self.write(true, |conn| {
                    conn.execute("DELETE FROM payloads WHERE digest = ?1", [key])
                        .map(|n| n > 0)
                })?;
                self.payloads.remove(key).map_err(payload_error)?;
                Ok(in_database)
            }
            _ => {
                if let Some(mut held) = self.held_for(collection) {
                    let existed = self.current(&held, collection, key)?.is_some();
                    held::hold(&mut held, collection, key, None);
                    return Ok(existed);
                }
                self.write(false, |conn| records::delete(conn, collection, key))
            }
        }
    }

    fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
        let item = indexed_item(&record)?;
        if let Some(mut held) = self.held_for(&record.collection) {
            // The guard makes the comparison and the write one step for this process's
            // threads; no other process writes while a sole worker holds.
            let (collection, key) = (record.collection.as_str(), record.key.as_str());
            let stored = self.current(&held, collection, key)?;
            if stored.as_ref().map(|r| r.body.as_str()) != expected {
                return Ok(false);
            }
            let (collection, key) = (collection.to_string(), key.to_string());
            held::hold(&mut held, &collection, &key, Some(record));
            return Ok(true);
        }
        self.write(false, |conn| {
            records::put_if(conn, &record, item.as_ref(), expected)
        })
    }

    fn query(&self, query: RecordQuery) -> Result<Vec<Record>, PluginError> {
        // A query reads its collection alone (the log is never held).
        if let Some(mut held) = self.held() {
            self.write_held(&mut held, Some(&query.collection))?;
        }
        if query.collection == log::COLLECTION {
            return self.read(|conn| log::search(conn, &query));
        }
        if let Some(items) = query.item_query()? {
            return self.read(|conn| items::query(conn, &query, items));
        }
        self.read(|conn| records::query(conn, &query))
    }

    fn append_log(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        let prepared = self.read(|conn| Ok(log::prepare(conn, &items, &self.text_index)))?;
        if let Some(mut held) = self.held() {
            let statuses = self.write(true, |conn| {
                log::append(conn, &items, prepared, |tx| {
                    held::write_all(tx, held.iter())
                })
            })?;
            held.clear();
            return Ok(statuses);
        }
        self.write(true, |conn| log::append(conn, &items, prepared, |_| Ok(())))
    }

    /// A sole worker's claim makes this storage hold record writes (see `held`); any claim
    /// takes the lock beside the database that keeps a sole worker alone.
    fn claim_writer(&self, sole: bool) -> Result<(), PluginError> {
        let claim = held::Claim::take(&self.path, sole)?;
        self.claim
            .set(claim)
            .map_err(|_| PluginError::config("this storage was claimed twice"))
    }

    fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        if let Some(store) = self.payloads.store_beyond() {
            return store.put(bytes).map_err(payload_error);
        }
        let digest = bonnie_core::payload::digest(bytes);
        let data = self.payloads.row(&digest, bytes).map_err(payload_error)?;
        // Synced with the log entry that refers to it, which is written after.
        self.write(false, |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO payloads (digest, size, stored_ms, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![digest, bytes.len() as i64, bonnie_core::time::now_ms(), data])
            .map(|_| ())
        })?;
        Ok(digest)
    }

    fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        let stored: Option<(i64, Vec<u8>)> = self.read(|conn| {
            use rusqlite::OptionalExtension;
            conn.prepare_cached("SELECT size, data FROM payloads WHERE digest = ?1")?
                .query_row([digest], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })?;
        if let Some((size, data)) = stored {
            return self
                .payloads
                .open_row(digest, size, &data)
                .map(Some)
                .map_err(payload_error);
        }
        self.payloads.beyond_database(digest).map_err(payload_error)
    }
}

/// The indexed form of an item document, `None` for a record of another collection.
fn indexed_item(record: &Record) -> Result<Option<items::Indexed>, PluginError> {
    (record.collection.as_str() == ITEMS)
        .then(|| items::indexed(record))
        .transpose()
}

/// A payload store's failure: damage and a store that does not answer alike fail the job,
/// which is tried again (a payload is never recorded as kept when it could not be).
/// The collection name under which `delete` removes payloads.
const PAYLOADS: &str = "payloads";

fn payload_error(e: bonnie_payload_store::Error) -> PluginError {
    PluginError::transient(e.to_string())
}

bonnie_plugin_api::export_storage! {
    name: "sqlite-storage",
    description: "The embedded default: records and a hash-chained event log in one SQLite file.",
    new: SqliteStorage::new,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_by_many_threads_of_two_stores_on_one_file_lose_nothing() {
        use bonnie_plugin_api::{plugin::storage_box, storage::StorageClient};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bonnie.db");
        // Two stores on one file stand for two worker processes.
        let clients: Vec<StorageClient> = (0..2)
            .map(|_| StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap())))
            .collect();
        let increment = |client: &StorageClient| {
            client
                .update("counters", "c", |stored| {
                    let n = stored.map_or(0, |r| r.json().unwrap()["n"].as_u64().unwrap());
                    Ok(Some(Record::new(
                        "counters",
                        "c",
                        &serde_json::json!({ "n": n + 1 }),
                    )))
                })
                .unwrap();
        };
        std::thread::scope(|scope| {
            for client in clients.iter().cycle().take(8) {
                scope.spawn(move || (0..50).for_each(|_| increment(client)));
            }
        });
        let stored = clients[0].get("counters", "c").unwrap().unwrap();
        assert_eq!(stored.json().unwrap()["n"], 400);
        // A write that expects what is no longer there is refused.
        let stale = Record::new("counters", "c", &serde_json::json!({ "n": 0 }));
        assert!(
            !clients[1]
                .put_if(stale.clone(), Some(r#"{"n":399}"#))
                .unwrap()
        );
        assert!(!clients[1].put_if(stale.clone(), None).unwrap());
        assert!(clients[1].put_if(stale, Some(r#"{"n":400}"#)).unwrap());
    }

    /// Item documents written by many threads of two stores on one file, most of them in
    /// one second and some of them the same message twice: each item is indexed once, with
    /// an id of its own, and queries list them all in date order.
    #[test]
    fn items_written_by_many_threads_of_two_stores_are_each_indexed_once() {
        use bonnie_plugin_api::{
            RecordQuery,
            items::{ItemDoc, ItemQuery, TextField, TextMatch},
            plugin::storage_box,
            storage::StorageClient,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bonnie.db");
        let clients: Vec<StorageClient> = (0..2)
            .map(|_| StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap())))
            .collect();
        let item = |n: u64| {
            let doc = ItemDoc {
                digest: format!("d{n:03}"),
                subject: "Отчёт x".into(),
                // Three in four in one second, the others a second apart each.
                date_ms: match n % 4 {
                    0 => 1_700_000_000_000 + n as i64 * 1_000,
                    _ => 1_700_000_000_500 + n as i64 % 7,
                },
                size: 10,
                ..ItemDoc::default()
            };
            Record::new(
                ITEMS,
                &doc.digest.clone(),
                &serde_json::to_value(doc).unwrap(),
            )
        };
        std::thread::scope(|scope| {
            for (thread, client) in clients.iter().cycle().take(8).enumerate() {
                // Threads t and t + 4 write the same 50 messages, as two workers would.
                let first = (thread % 4) as u64 * 50;
                scope.spawn(move || {
                    for n in first..first + 50 {
                        client.put(item(n)).unwrap();
                    }
                });
            }
        });
        let x = ItemQuery::Text {
            field: TextField::Subject,
            text: TextMatch::Words("отчет".into()),
        };
        let listed = |limit: u32| -> Vec<(i64, String)> {
            let query = RecordQuery {
                collection: ITEMS.into(),
                items: Some(x.clone()),
                descending: true,
                limit,
                ..RecordQuery::default()
            };
            clients[1]
                .query(&query)
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.json().unwrap()["date_ms"].as_i64().unwrap(),
                        r.key.to_string(),
                    )
                })
                .collect()
        };
        let all = listed(1000);
        assert_eq!(all.len(), 200, "each message once");
        let mut expected = all.clone();
        expected.sort();
        expected.reverse();
        assert_eq!(all, expected, "newest first, then by digest");
        assert_eq!(listed(60), all[..60]);
        let ids: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(DISTINCT id) FROM items", [], |row| row.get(0))
            .unwrap();
        assert_eq!(ids, 200);
    }

    #[test]
    fn a_new_store_and_its_wal_are_private_to_bonnie_whatever_the_umask() {
        use bonnie_plugin_api::{plugin::storage_box, storage::StorageClient};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/bonnie.db");
        let client = StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap()));
        client
            .put(Record::new("t", "k", &serde_json::json!({})))
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for file in ["bonnie.db", "bonnie.db-wal", "bonnie.db-shm"] {
            let file = dir.path().join("var").join(file);
            let found = mode(&file);
            assert_eq!(found & 0o037, 0, "{}: {found:o}", file.display());
        }
        assert_eq!(mode(&dir.path().join("var")), 0o750);
    }

    #[test]
    fn workers_opening_a_new_store_at_once_all_succeed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bonnie.db");
            std::thread::scope(|scope| {
                let opened: Vec<_> = (0..6)
                    .map(|_| scope.spawn(|| SqliteStorage::open(&path, 5000).map(|_| ())))
                    .collect();
                for handle in opened {
                    handle.join().unwrap().unwrap();
                }
            });
        }
    }

    /// What another process sees of the file: a storage that claims nothing, as the API.
    fn body_in_file(path: &Path, collection: &str, key: &str) -> Option<String> {
        let conn = Connection::open(path).unwrap();
        records::get(&conn, collection, key)
            .unwrap()
            .map(|r| r.body.into_string())
    }

    /// A storage on a new file in `dir`, claimed by a sole worker.
    fn sole_worker(dir: &tempfile::TempDir) -> (SqliteStorage, std::path::PathBuf) {
        let path = dir.path().join("bonnie.db");
        let worker = SqliteStorage::open(&path, 5000).unwrap();
        worker.claim_writer(true).unwrap();
        (worker, path)
    }

    /// Logs one job's entry.
    fn log_job(storage: &SqliteStorage, job: &str) {
        let record = r#"{"event":"MessageAppend","timestamp":"2026-12-04T19:00:00.000+00:00"}"#;
        let logged = storage
            .append_log(vec![OutputItem::new(job, record)])
            .unwrap();
        assert_eq!(logged, vec![ItemStatus::Stored]);
    }

    fn counter(n: u64) -> Record {
        Record::new("counters", "c", &serde_json::json!({ "n": n }))
    }

    #[test]
    fn a_sole_workers_record_writes_are_seen_at_once_and_stored_with_the_next_log_append() {
        let dir = tempfile::tempdir().unwrap();
        let (worker, path) = sole_worker(&dir);
        worker.put(counter(1)).unwrap();
        assert!(worker.put_if(counter(2), Some(r#"{"n":1}"#)).unwrap());
        assert!(!worker.put_if(counter(3), Some(r#"{"n":1}"#)).unwrap());
        assert!(!worker.put_if(counter(3), None).unwrap());
        worker
            .put(Record::new(
                "folders",
                "Входящие",
                &serde_json::json!({ "uidnext": 7 }),
            ))
            .unwrap();
        assert!(worker.delete("folders", "Входящие").unwrap());
        assert!(!worker.delete("folders", "Входящие").unwrap());
        assert_eq!(
            worker.get("counters", "c").unwrap().unwrap().body.as_str(),
            r#"{"n":2}"#
        );
        assert_eq!(worker.get("folders", "Входящие").unwrap(), None);
        // Held: nothing is in the file yet.
        assert_eq!(body_in_file(&path, "counters", "c"), None);

        log_job(&worker, "job-1");
        assert_eq!(
            body_in_file(&path, "counters", "c").as_deref(),
            Some(r#"{"n":2}"#)
        );
        assert_eq!(body_in_file(&path, "folders", "Входящие"), None);
        // Written once, and not again by the next append.
        worker.put(counter(9)).unwrap();
        log_job(&worker, "job-2");
        assert_eq!(
            body_in_file(&path, "counters", "c").as_deref(),
            Some(r#"{"n":9}"#)
        );
    }

    #[test]
    fn a_sole_workers_query_writes_its_collection_and_the_rest_is_written_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let (worker, path) = sole_worker(&dir);
        worker
            .put(Record::new("folders", "a", &serde_json::json!({})).indexed("owner", "jürgen"))
            .unwrap();
        worker.put(counter(5)).unwrap();
        let found = worker
            .query(RecordQuery::all_with("folders", "owner", "jürgen"))
            .unwrap();
        assert_eq!(found.len(), 1);
        // The query wrote its own collection's held records, and only those.
        assert_eq!(body_in_file(&path, "folders", "a").as_deref(), Some("{}"));
        assert_eq!(body_in_file(&path, "counters", "c"), None);
        assert_eq!(worker.get("counters", "c").unwrap(), Some(counter(5)));
        drop(worker);
        assert_eq!(
            body_in_file(&path, "counters", "c").as_deref(),
            Some(r#"{"n":5}"#)
        );
    }

    #[test]
    fn a_sole_worker_writes_item_documents_and_the_dlp_outbox_at_once() {
        use bonnie_plugin_api::items::ItemDoc;
        let dir = tempfile::tempdir().unwrap();
        let (worker, path) = sole_worker(&dir);
        let doc = ItemDoc {
            digest: "d1".into(),
            subject: "Grüße aus Köln".into(),
            date_ms: 1_700_000_000_000,
            size: 10,
            ..ItemDoc::default()
        };
        worker
            .put(Record::new(
                ITEMS,
                "d1",
                &serde_json::to_value(doc).unwrap(),
            ))
            .unwrap();
        let claim = Record::new(
            "dlp-outbox",
            "alert-1",
            &serde_json::json!({ "state": "sent" }),
        );
        assert!(worker.put_if(claim, None).unwrap());
        assert!(body_in_file(&path, ITEMS, "d1").is_some());
        assert_eq!(
            body_in_file(&path, "dlp-outbox", "alert-1").as_deref(),
            Some(r#"{"state":"sent"}"#)
        );
        // Still one step against the file's: a second claim of the same alert is refused.
        let again = Record::new(
            "dlp-outbox",
            "alert-1",
            &serde_json::json!({ "state": "x" }),
        );
        assert!(!worker.put_if(again, None).unwrap());
    }

    #[test]
    fn updates_by_many_threads_of_a_sole_worker_lose_nothing() {
        use bonnie_plugin_api::{plugin::storage_box, storage::StorageClient};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bonnie.db");
        let storage = SqliteStorage::open(&path, 5000).unwrap();
        storage.claim_writer(true).unwrap();
        let client = StorageClient::new(storage_box(storage));
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let client = &client;
                scope.spawn(move || {
                    for n in 0..50 {
                        client
                            .update("counters", "c", |stored| {
                                let n =
                                    stored.map_or(0, |r| r.json().unwrap()["n"].as_u64().unwrap());
                                Ok(Some(counter(n + 1)))
                            })
                            .unwrap();
                        // Appends in between, as the writer thread's batches come.
                        if n % 10 == thread {
                            client
                                .query(&RecordQuery::all_with("counters", "x", "y"))
                                .unwrap();
                        }
                    }
                });
            }
        });
        let stored = client.get("counters", "c").unwrap().unwrap();
        assert_eq!(stored.json().unwrap()["n"], 400);
        drop(client);
        assert_eq!(
            body_in_file(&path, "counters", "c").as_deref(),
            Some(r#"{"n":400}"#)
        );
    }

    #[test]
    fn a_sole_worker_is_refused_beside_another_worker_and_another_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bonnie.db");
        let open = || SqliteStorage::open(&path, 5000).unwrap();
        // Workers that share the file share it with each other.
        let (first, second) = (open(), open());
        first.claim_writer(false).unwrap();
        second.claim_writer(false).unwrap();
        let refused = open().claim_writer(true).unwrap_err().to_string();
        assert!(refused.contains("another worker writes"), "{refused}");
        assert!(refused.contains("sole_writer"), "{refused}");
        drop((first, second));

        let sole = open();
        sole.claim_writer(true).unwrap();
        for claim in [false, true] {
            let refused = open().claim_writer(claim).unwrap_err().to_string();
            assert!(refused.contains("sole_writer"), "{claim}: {refused}");
        }
        assert!(sole.claim_writer(true).is_err(), "one claim per storage");
        // A storage that claims nothing (the API, the admin CLI) opens beside it and writes
        // at once.
        let api = open();
        api.put(counter(1)).unwrap();
        assert_eq!(
            body_in_file(&path, "counters", "c").as_deref(),
            Some(r#"{"n":1}"#)
        );
        drop(sole);
        open().claim_writer(true).unwrap();
    }
}
