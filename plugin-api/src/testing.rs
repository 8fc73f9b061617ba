//! A host for unit tests of plugins, without the worker (feature `testing`): a plugin's own
//! config table, an in-memory storage (or any other), captured log lines, and a handler run
//! through the same FFI objects and panic guards as in `bonnie-worker`.
//!
//! ```ignore
//! let host = TestHost::new("my-handler").config(serde_json::json!({ "limit": 3 }));
//! let handler = host.handler(MyHandler::new)?;
//! let outcome = handler.handle(r#"{"event":"Login","user":"john"}"#)?;
//! assert!(host.logs().iter().any(|l| l.message == "Seen."));
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RStr, RString},
};
use sha2::{Digest, Sha256};

use crate::{
    HandlerOutcome, Host, ItemStatus, Job, LogLevel, OutputItem, PluginError, Record, RecordQuery,
    handler::HandlerBox,
    host::{HostApi, HostApi_TO, HostBox, LogLevel_NE},
    plugin::{Handler, Storage, new_handler, storage_box},
    storage::{StorageBox, StorageClient},
};

/// A line a plugin logged through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level; `None` for a level this build does not know.
    pub level: Option<LogLevel>,
    /// The message.
    pub message: String,
    /// The key/value fields.
    pub fields: BTreeMap<String, String>,
}

struct State {
    plugin_name: String,
    config_json: String,
    config_dir: String,
    storage: Option<StorageBox>,
    logs: Mutex<Vec<LogLine>>,
    stopping: AtomicBool,
}

/// The host a plugin under test runs in. Cheap to clone; clones share the storage and logs.
#[derive(Clone)]
pub struct TestHost {
    state: Arc<State>,
}

impl TestHost {
    /// A host for the plugin `plugin_name`: config `{}`, config folder `.`, a fresh
    /// [`MemoryStorage`].
    pub fn new(plugin_name: &str) -> Self {
        Self {
            state: Arc::new(State {
                plugin_name: plugin_name.to_string(),
                config_json: "{}".to_string(),
                config_dir: ".".to_string(),
                storage: Some(storage_box(MemoryStorage::default())),
                logs: Mutex::new(Vec::new()),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut State)) -> Self {
        let mut state = match Arc::try_unwrap(self.state) {
            Ok(state) => state,
            Err(shared) => State {
                plugin_name: shared.plugin_name.clone(),
                config_json: shared.config_json.clone(),
                config_dir: shared.config_dir.clone(),
                storage: shared.storage.clone(),
                logs: Mutex::new(lock(&shared.logs).clone()),
                stopping: AtomicBool::new(shared.stopping.load(Ordering::SeqCst)),
            },
        };
        change(&mut state);
        Self {
            state: Arc::new(state),
        }
    }

    /// The plugin's table `[plugins.<name>]`, as the worker hands it over (JSON).
    pub fn config(self, table: serde_json::Value) -> Self {
        self.with(|s| s.config_json = table.to_string())
    }

    /// The configuration file's folder, against which [`Host::path`] resolves paths.
    pub fn config_dir(self, dir: impl Into<String>) -> Self {
        self.with(|s| s.config_dir = dir.into())
    }

    /// Another storage in place of the in-memory one (a real storage plugin's type, say).
    pub fn storage(self, storage: impl Storage) -> Self {
        self.with(|s| s.storage = Some(storage_box(storage)))
    }

    /// No storage at all, as in a worker configured without one.
    pub fn without_storage(self) -> Self {
        self.with(|s| s.storage = None)
    }

    /// The host object a plugin's constructor receives, to build the plugin directly:
    /// `MyHandler::new(test_host.host())`.
    pub fn host(&self) -> Host {
        Host::new(self.host_box())
    }

    fn host_box(&self) -> HostBox {
        HostApi_TO::from_value(
            TestHostApi {
                state: self.state.clone(),
            },
            TD_Opaque,
        )
    }

    /// Builds a handler through its FFI object, as the worker does: its calls run in the
    /// export macros' panic guards, so a panic comes back as a [`PluginError`] of kind
    /// panicked.
    pub fn handler<H: Handler>(
        &self,
        new: fn(Host) -> Result<H, PluginError>,
    ) -> Result<TestHandler, PluginError> {
        let handler = new_handler(self.host_box(), new).into_result()?;
        Ok(TestHandler {
            handler,
            jobs: AtomicU64::new(0),
        })
    }

    /// The storage the plugin sees, to prepare records or check what it kept.
    pub fn storage_client(&self) -> Option<StorageClient> {
        self.state.storage.clone().map(StorageClient::new)
    }

    /// Every line logged so far, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        lock(&self.state.logs).clone()
    }

    /// The lines logged at `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<LogLine> {
        self.logs()
            .into_iter()
            .filter(|l| l.level == Some(level))
            .collect()
    }

    /// From now on `Host::is_stopping` answers true.
    pub fn stop(&self) {
        self.state.stopping.store(true, Ordering::SeqCst);
    }
}

/// A handler built by [`TestHost::handler`].
pub struct TestHandler {
    handler: HandlerBox,
    jobs: AtomicU64,
}

impl TestHandler {
    /// The events it subscribes to.
    pub fn events(&self) -> Result<Vec<String>, PluginError> {
        self.handler
            .events()
            .into_result()
            .map(|events| events.into_iter().map(RString::into_string).collect())
    }

    /// Handles `notification` (JSON text) as a job of its own (`test-job-1`, `test-job-2`, ...).
    pub fn handle(&self, notification: &str) -> Result<HandlerOutcome, PluginError> {
        let n = self.jobs.fetch_add(1, Ordering::SeqCst) + 1;
        self.handle_job(&Job::new(format!("test-job-{n}"), notification))
    }

    /// Handles a job given whole (its id and meta data chosen by the test).
    pub fn handle_job(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let outcome = self.handler.handle(job).into_result()?;
        outcome.into_enum().map_err(|e| {
            PluginError::rejected(format!(
                "the handler answered outcome kind {}, unknown to this plugin-api",
                e.into_inner().get_discriminant()
            ))
        })
    }
}

struct TestHostApi {
    state: Arc<State>,
}

impl HostApi for TestHostApi {
    fn plugin_name(&self) -> RString {
        self.state.plugin_name.as_str().into()
    }

    fn config_json(&self) -> RString {
        self.state.config_json.as_str().into()
    }

    fn config_dir(&self) -> RString {
        self.state.config_dir.as_str().into()
    }

    fn log(&self, level: LogLevel_NE, message: RStr<'_>, fields: RStr<'_>) {
        let fields =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(fields.as_str())
                .map(|map| {
                    map.into_iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => (k, s),
                            other => (k, other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default();
        lock(&self.state.logs).push(LogLine {
            level: level.as_enum().ok().copied(),
            message: message.as_str().to_string(),
            fields,
        });
    }

    fn storage(&self) -> ROption<StorageBox> {
        self.state.storage.clone().into()
    }

    fn is_stopping(&self) -> bool {
        self.state.stopping.load(Ordering::SeqCst)
    }
}

/// The storage records and payloads are kept in, for as long as the test runs; it keeps the
/// event log too, idempotently by job id. Its `put_if` is a true compare-and-swap, so
/// [`StorageClient::update`] works as with the SQLite storage.
#[derive(Default, Clone)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Memory>>,
}

#[derive(Default)]
struct Memory {
    records: BTreeMap<(String, String), Record>,
    log: Vec<OutputItem>,
    payloads: HashMap<String, Vec<u8>>,
}

impl MemoryStorage {
    fn memory(&self) -> MutexGuard<'_, Memory> {
        lock(&self.inner)
    }

    /// The event log as appended so far, one item per job.
    pub fn log(&self) -> Vec<OutputItem> {
        self.memory().log.clone()
    }
}

fn key(collection: &str, key: &str) -> (String, String) {
    (collection.to_string(), key.to_string())
}

impl Storage for MemoryStorage {
    fn get(&self, collection: &str, key_: &str) -> Result<Option<Record>, PluginError> {
        Ok(self.memory().records.get(&key(collection, key_)).cloned())
    }

    fn put(&self, record: Record) -> Result<(), PluginError> {
        let k = key(&record.collection, &record.key);
        self.memory().records.insert(k, record);
        Ok(())
    }

    fn delete(&self, collection: &str, key_: &str) -> Result<bool, PluginError> {
        Ok(self
            .memory()
            .records
            .remove(&key(collection, key_))
            .is_some())
    }

    /// The records of a collection by index term, key prefix and time range. An e-discovery
    /// item query (`items`) is refused: this storage indexes no text, and answering it with
    /// every item would pass a test that should fail.
    fn query(&self, query: RecordQuery) -> Result<Vec<Record>, PluginError> {
        if query.items.is_some() {
            return Err(PluginError::config(
                "the in-memory test storage cannot answer an e-discovery item query \
                 (RecordQuery::items): test it against bonnie_sqlite_storage::SqliteStorage::open \
                 on a temporary file, or the es-storage plugin on osmem-server",
            ));
        }
        let memory = self.memory();
        let mut found: Vec<Record> = memory
            .records
            .values()
            .filter(|r| r.collection.as_str() == query.collection)
            .filter(|r| {
                query.index.as_ref().is_none_or(|(field, value)| {
                    r.index
                        .iter()
                        .any(|t| t.field.as_str() == field && t.value.as_str() == value)
                })
            })
            .filter(|r| {
                query
                    .key_prefix
                    .as_ref()
                    .is_none_or(|prefix| r.key.as_str().starts_with(prefix.as_str()))
            })
            .filter(|r| {
                let time = r.time_ms.into_option();
                query
                    .from_ms
                    .is_none_or(|from| time.is_some_and(|t| t >= from))
                    && query.to_ms.is_none_or(|to| time.is_some_and(|t| t < to))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (a.time_ms.into_option(), a.key.as_str())
                .cmp(&(b.time_ms.into_option(), b.key.as_str()))
        });
        if query.descending {
            found.reverse();
        }
        if let Some(limit) = query.max_records() {
            found.truncate(limit as usize);
        }
        if query.keys_only {
            // As a storage may answer: keys alone, so a caller that reads more fails its test.
            for record in &mut found {
                record.body = "null".into();
                record.time_ms = None.into();
                record.index = Default::default();
            }
        }
        Ok(found)
    }

    fn append_log(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        let mut memory = self.memory();
        let mut statuses = Vec::with_capacity(items.len());
        for item in items {
            if !memory.log.iter().any(|kept| kept.job_id == item.job_id) {
                memory.log.push(item);
            }
            statuses.push(ItemStatus::Stored);
        }
        Ok(statuses)
    }

    fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        let digest: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.memory()
            .payloads
            .entry(digest.clone())
            .or_insert_with(|| bytes.to_vec());
        Ok(digest)
    }

    fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(self.memory().payloads.get(digest).cloned())
    }

    fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
        let mut memory = self.memory();
        let k = key(&record.collection, &record.key);
        let stored = memory.records.get(&k).map(|r| r.body.as_str());
        if stored != expected {
            return Ok(false);
        }
        memory.records.insert(k, record);
        Ok(true)
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    struct Counter {
        host: Host,
    }

    impl Counter {
        fn new(host: Host) -> Result<Self, PluginError> {
            let config: serde_json::Value = host.config()?;
            if config.get("refuse").is_some() {
                return Err(PluginError::config("asked to refuse"));
            }
            Ok(Self { host })
        }
    }

    impl Handler for Counter {
        fn events(&self) -> Vec<String> {
            vec!["Login".into()]
        }

        fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
            if job.notification.as_str() == "panic" {
                panic!("asked to panic");
            }
            let storage = self.host.storage()?;
            let written = storage.update("counts", "logins", |stored| {
                let n = match stored {
                    Some(r) => r.json()?["n"].as_u64().unwrap_or(0),
                    None => 0,
                };
                Ok(Some(Record::new(
                    "counts",
                    "logins",
                    &serde_json::json!({ "n": n + 1 }),
                )))
            })?;
            self.host.info("Counted.", &[("job", &job.id)]);
            Ok(HandlerOutcome::done(
                written.map(|r| r.body.into_string()).unwrap_or_default(),
            ))
        }
    }

    #[test]
    fn a_handler_runs_with_storage_updates_and_captured_logs() {
        let host = TestHost::new("counter");
        let handler = host.handler(Counter::new).unwrap();
        assert_eq!(handler.events().unwrap(), ["Login"]);
        handler.handle("{}").unwrap();
        assert_eq!(
            handler.handle("{}").unwrap(),
            HandlerOutcome::done(r#"{"n":2}"#)
        );
        let logs = host.logs_at(LogLevel::Info);
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[1].message, "Counted.");
        assert_eq!(logs[1].fields["job"], "test-job-2");
        let stored = host.storage_client().unwrap().get("counts", "logins");
        assert_eq!(stored.unwrap().unwrap().body.as_str(), r#"{"n":2}"#);
    }

    #[test]
    fn a_panic_comes_back_as_an_error_and_config_errors_stop_the_constructor() {
        let host = TestHost::new("counter");
        let handler = host.handler(Counter::new).unwrap();
        let error = handler.handle("panic").unwrap_err();
        assert_eq!(error.kind(), Some(&ErrorKind::Panicked));
        assert!(error.message.contains("asked to panic"), "{error}");

        let refusing = TestHost::new("counter").config(serde_json::json!({ "refuse": true }));
        let error = refusing.handler(Counter::new).err().unwrap();
        assert_eq!(error.kind(), Some(&ErrorKind::Config));

        let error = TestHost::new("counter")
            .without_storage()
            .handler(Counter::new)
            .unwrap()
            .handle("{}")
            .unwrap_err();
        assert!(error.message.contains("needs storage"), "{error}");
    }

    #[test]
    fn memory_storage_refuses_an_item_query_naming_what_answers_one() {
        let storage = StorageClient::new(storage_box(MemoryStorage::default()));
        storage
            .put(Record::new(
                crate::items::ITEMS,
                "d1",
                &serde_json::json!({}),
            ))
            .unwrap();
        let query = RecordQuery {
            collection: crate::items::ITEMS.into(),
            items: Some(crate::items::ItemQuery::All),
            ..RecordQuery::default()
        };
        let error = storage.query(&query).unwrap_err().message;
        assert!(
            error.contains("RecordQuery::items") && error.contains("SqliteStorage::open"),
            "{error}"
        );
    }

    #[test]
    fn memory_storage_queries_by_index_and_time_and_swaps_only_what_it_expects() {
        let storage = StorageClient::new(storage_box(MemoryStorage::default()));
        for (key, time) in [("a", 3), ("b", 1), ("c", 2)] {
            storage
                .put(
                    Record::new("c", key, &serde_json::json!({ "k": key }))
                        .at(time)
                        .indexed("kind", if key == "c" { "other" } else { "x" }),
                )
                .unwrap();
        }
        let keys = |q: RecordQuery| -> Vec<String> {
            storage
                .query(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.key.into_string())
                .collect()
        };
        let all = RecordQuery {
            collection: "c".into(),
            ..RecordQuery::default()
        };
        assert_eq!(keys(all.clone()), ["b", "c", "a"]);
        assert_eq!(
            keys(RecordQuery {
                index: Some(("kind".into(), "x".into())),
                descending: true,
                ..all.clone()
            }),
            ["a", "b"]
        );
        assert_eq!(
            keys(RecordQuery {
                from_ms: Some(2),
                to_ms: Some(3),
                ..all.clone()
            }),
            ["c"]
        );
        assert_eq!(keys(RecordQuery { limit: 1, ..all }), ["b"]);

        let fresh = Record::new("c", "new", &serde_json::json!(1));
        assert!(storage.put_if(fresh.clone(), None).unwrap());
        assert!(!storage.put_if(fresh.clone(), None).unwrap());
        assert!(!storage.put_if(fresh.clone(), Some("2")).unwrap());
        assert!(storage.put_if(fresh, Some("1")).unwrap());

        let digest = storage.put_payload(b"abc").unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(storage.get_payload(&digest).unwrap().unwrap(), b"abc");
    }

    /// A storage built against plugin-api 1.2, whose query type has no `keys_only` and refuses
    /// unknown fields: its glue answers a 1.3 keys-only query with this configuration error.
    /// A stand-in (no storage of 1.2 is built here): only its refusal matters, the rest is
    /// the memory storage.
    struct StorageOf1_2 {
        memory: MemoryStorage,
        asked: Arc<Mutex<Vec<bool>>>,
    }

    impl Storage for StorageOf1_2 {
        fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
            self.memory.get(collection, key)
        }
        fn put(&self, record: Record) -> Result<(), PluginError> {
            self.memory.put(record)
        }
        fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
            self.memory.delete(collection, key)
        }
        fn query(&self, query: RecordQuery) -> Result<Vec<Record>, PluginError> {
            self.asked.lock().unwrap().push(query.keys_only);
            if query.keys_only {
                return Err(PluginError::config(
                    "this storage cannot run the query: unknown field `keys_only`, expected one \
                     of `collection`, `index`, `from_ms`, `to_ms`, `limit`, `descending`, \
                     `text`, `all`, `key_prefix`, `items`",
                ));
            }
            self.memory.query(query)
        }
        fn append_log(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
            self.memory.append_log(items)
        }
    }

    #[test]
    fn query_keys_answers_the_same_keys_from_a_storage_of_1_3_and_of_1_2() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let old = StorageOf1_2 {
            memory: MemoryStorage::default(),
            asked: asked.clone(),
        };
        let storages = [
            StorageClient::new(storage_box(MemoryStorage::default())),
            StorageClient::new(storage_box(old)),
        ];
        let query = RecordQuery::all_with("custodians", "custodian", "jöhn");
        for storage in &storages {
            for (key, owner) in [("b", "jöhn"), ("a", "jöhn"), ("c", "mary")] {
                let record = Record::new("custodians", key, &serde_json::json!({ "k": key }))
                    .at(1)
                    .indexed("custodian", owner);
                storage.put(record).unwrap();
            }
            assert_eq!(storage.query_keys(&query).unwrap(), ["a", "b"]);
        }
        // The memory storage answers keys alone to a keys-only query.
        let keys_only = RecordQuery {
            keys_only: true,
            ..query
        };
        let answered = storages[0].query(&keys_only).unwrap();
        assert!(
            answered
                .iter()
                .all(|r| r.body == "null" && r.index.is_empty())
        );
        // The old storage was asked for keys, refused, and was asked again for records.
        assert_eq!(*asked.lock().unwrap(), [true, false]);
        // A refusal that asking again cannot cure is the caller's error still.
        let unknown = RecordQuery {
            collection: "custodians".into(),
            items: Some(crate::items::ItemQuery::All),
            ..RecordQuery::default()
        };
        let error = storages[0].query_keys(&unknown).unwrap_err();
        assert!(
            error
                .message
                .contains("cannot answer an e-discovery item query"),
            "{error:?}"
        );
    }
}
