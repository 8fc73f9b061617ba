//! Storage plugins: keyed records that handlers keep between events (users, folders, open
//! sessions, object revisions), queries over them, and the append-only event log.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, ROption, RResult, RSlice, RStr, RString, RVec},
};
use serde::{Deserialize, Serialize};

use crate::{
    PluginError,
    host::HostBox,
    output::{ItemStatus_NE, OutputItem},
    plugin::{BuildInfo, PluginInfo},
};

/// One index entry of a record: queries can find the record by `field = value`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct IndexTerm {
    /// The indexed field's name. (since 1.0)
    pub field: RString,
    /// The value the record has for it. (since 1.0)
    pub value: RString,
}

/// A keyed record in a collection. Putting a record with an existing key replaces it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Record {
    /// The collection, such as `users`, `folders`, `sessions`. (since 1.0)
    pub collection: RString,
    /// The record's key, unique within the collection. (since 1.0)
    pub key: RString,
    /// The record's time in milliseconds since the Unix epoch (UTC), for time-range queries.
    /// (since 1.0)
    pub time_ms: ROption<i64>,
    /// The record itself, a JSON object. (since 1.0)
    pub body: RString,
    /// The fields queries can find this record by. (since 1.0)
    pub index: RVec<IndexTerm>,
    /// Facts added in later minor versions, as a JSON object; empty when none. (since 1.0)
    pub extra: RString,
}

impl Record {
    /// A record without time or index terms.
    pub fn new(collection: &str, key: &str, body: &serde_json::Value) -> Self {
        Self {
            collection: collection.into(),
            key: key.into(),
            time_ms: ROption::RNone,
            body: body.to_string().into(),
            index: RVec::new(),
            extra: RString::new(),
        }
    }

    /// Sets the record's time.
    pub fn at(mut self, time_ms: i64) -> Self {
        self.time_ms = ROption::RSome(time_ms);
        self
    }

    /// Adds an index term.
    pub fn indexed(mut self, field: &str, value: &str) -> Self {
        self.index.push(IndexTerm {
            field: field.into(),
            value: value.into(),
        });
        self
    }

    /// The body, parsed.
    pub fn json(&self) -> Result<serde_json::Value, PluginError> {
        serde_json::from_str(self.body.as_str()).map_err(|e| {
            PluginError::transient(format!(
                "stored record {}/{} is not valid JSON: {e}",
                self.collection, self.key
            ))
        })
    }
}

/// A query over one collection; it crosses the boundary as JSON, so fields can be added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// The collection to search.
    pub collection: String,
    /// Only records with this index term: `(field, value)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<(String, String)>,
    /// Only records whose time is at or after this (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// Only records whose time is before this (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// At most this many records; 0 means the storage's default ([`DEFAULT_QUERY_LIMIT`]).
    #[serde(default)]
    pub limit: u32,
    /// Newest first instead of oldest first (by time, then key).
    #[serde(default)]
    pub descending: bool,
    /// Full-text search of the event log (collection `log`): only entries whose text holds
    /// every word of this, folded as `bonnie_mail::fold_for_search` folds (case, diacritics,
    /// ß as ss). The records found are the log entries, keyed by job id. Storages without
    /// full-text search answer nothing. A query of the log without it lists the entries in
    /// time order, then job id. (since 1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Every matching record, however many: `limit` is ignored, and a storage whose server
    /// answers in pages (Elasticsearch) pages through them all. A storage built against 1.0
    /// cannot read the field and answers with an error, never with a silently cut list.
    /// (since 1.1)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Only records whose key begins with this (records of other collections than `log`):
    /// the records a job derived, keyed `<job id>/...`, which retention's purge removes with
    /// the job's entry. A storage built before it cannot read the field and answers with an
    /// error. (since 1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Only the item documents (collection [`crate::items::ITEMS`]) this e-discovery query
    /// matches, in `date_ms` order then digest (newest first with `descending`), `limit` and
    /// `all` as for any query; the records are keyed by payload digest. A storage built before
    /// it cannot read the field and answers with an error, never with every item. (since 1.2)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<crate::items::ItemQuery>,
    /// Only the keys are wanted: the storage may answer each record with its collection and
    /// key alone (body `null`, no time, no index terms) and in key order (reversed with
    /// `descending`) instead of time order, so a `limit` may then keep other
    /// records than the time order would. Answering whole records in time order is right
    /// too. SQLite answers a query by one index term from the index alone, without reading a
    /// record. A storage built before it cannot read the field and answers with an error;
    /// [`StorageClient::query_keys`] then asks again without it. (since 1.3)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keys_only: bool,
}

/// The records a query returns when it sets neither `limit` nor `all`.
pub const DEFAULT_QUERY_LIMIT: u32 = 1000;

impl RecordQuery {
    /// Every record of `collection` with the index term `field = value`, however many.
    pub fn all_with(collection: &str, field: &str, value: &str) -> Self {
        Self {
            collection: collection.to_string(),
            index: Some((field.to_string(), value.to_string())),
            all: true,
            ..Self::default()
        }
    }

    /// The item query this query asks, if any; refused when it is not of collection
    /// [`crate::items::ITEMS`] or also sets what an item query says inside itself (an index
    /// term, a time range, a key prefix, log text), which a storage would otherwise ignore.
    pub fn item_query(&self) -> Result<Option<&crate::items::ItemQuery>, PluginError> {
        let Some(items) = &self.items else {
            return Ok(None);
        };
        if self.collection != crate::items::ITEMS {
            return Err(PluginError::rejected(format!(
                "an item query (items) is a query of collection {}, not {:?}",
                crate::items::ITEMS,
                self.collection
            )));
        }
        let beside = [
            ("index", self.index.is_some()),
            ("from_ms", self.from_ms.is_some()),
            ("to_ms", self.to_ms.is_some()),
            ("key_prefix", self.key_prefix.is_some()),
            ("text", self.text.is_some()),
        ];
        if let Some((field, _)) = beside.iter().find(|(_, set)| *set) {
            return Err(PluginError::rejected(format!(
                "an item query (items) says its terms inside itself, not in {field}: put a \
                 Range, Exact or Text term in items instead"
            )));
        }
        Ok(Some(items))
    }

    /// At most how many records the query returns: `None` with `all`, else `limit` or
    /// [`DEFAULT_QUERY_LIMIT`] when it is 0.
    pub fn max_records(&self) -> Option<u32> {
        match (self.all, self.limit) {
            (true, _) => None,
            (false, 0) => Some(DEFAULT_QUERY_LIMIT),
            (false, n) => Some(n),
        }
    }
}

/// A storage backend. Implemented by storage plugins, called by the host and by handlers,
/// who share it through clones of one reference-counted object (so methods added later reach
/// handlers without the host in between). Methods may only be added at the end, with a
/// default body.
#[sabi_trait]
pub trait FfiStorage: Send + Sync + Clone {
    /// The record with this key, if any. (since 1.0) Collection `log` is the event log keyed
    /// by job id: a job's entry with its record as it was appended, nothing a storage added
    /// (a storage that cannot read its log back answers `None`; the worker then reports the
    /// job's leaf in the ledger as unattested).
    fn get(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<ROption<Record>, PluginError>;

    /// Inserts or replaces a record. (since 1.0)
    fn put(&self, record: Record) -> RResult<(), PluginError>;

    /// Deletes a record; true if it existed. The one place deletion happens. (since 1.0)
    fn delete(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<bool, PluginError>;

    /// The records matching a [`RecordQuery`] given as JSON. (since 1.0)
    fn query(&self, query: RStr<'_>) -> RResult<RVec<Record>, PluginError>;

    /// Appends processed jobs to the event log, idempotently by job id; one status per item,
    /// in order. (since 1.0)
    #[sabi(last_prefix_field)]
    fn append_log(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError>;

    /// Keeps a message payload once, content-addressed: returns its SHA-256 (lowercase hex).
    /// Keeping a payload already kept changes nothing. (since 1.0; added after the prefix, so
    /// a storage without payloads answers with the default.)
    fn put_payload(&self, bytes: RSlice<'_, u8>) -> RResult<RString, PluginError> {
        let _ = bytes;
        RResult::RErr(PluginError::config(
            "this storage keeps no message payloads",
        ))
    }

    /// The payload with this SHA-256, if kept. (since 1.0)
    fn get_payload(&self, digest: RStr<'_>) -> RResult<ROption<RVec<u8>>, PluginError> {
        let _ = digest;
        RResult::RErr(PluginError::config(
            "this storage keeps no message payloads",
        ))
    }

    /// Inserts or replaces `record` only if the stored record's body is still `expected`
    /// (`RNone`: only if there is no such record), as one atomic step against every other
    /// writer, threads and processes alike; true if written, false if the record had changed.
    /// Derived views are read, merged and written back with it, so no update is lost.
    /// (since 1.1; added after the prefix, so a storage built against 1.0 answers with the
    /// default: an error, and a view is never updated without it.)
    fn put_if(&self, record: Record, expected: ROption<RString>) -> RResult<bool, PluginError> {
        let _ = (record, expected);
        RResult::RErr(PluginError::config(
            "this storage cannot replace a record conditionally (put_if)",
        ))
    }

    /// Called by the worker host once, at start-up, before any job: `sole` if this worker
    /// is the only worker process writing this storage. A storage may then hold the writes of
    /// records (`put`, `put_if`, `delete` of collections other than `log` and `payloads`) in
    /// memory, visible at once to this process's `get`, and write them in the commit of the
    /// next `append_log` (before the log's entries) or before a `query`; a job is only
    /// reported DONE after its log entry, so everything it wrote is then stored. A claim that
    /// conflicts with another live worker's (a sole one beside any other) is an error that
    /// names the conflict; other programs (the API, the admin CLI) never claim and always
    /// write at once. (since 1.4; added after the prefix, so a storage built before 1.4
    /// answers with the default: granted, nothing held.)
    fn claim_writer(&self, sole: bool) -> RResult<(), PluginError> {
        let _ = sole;
        RResult::ROk(())
    }
}

/// The FFI trait object for [`FfiStorage`].
pub type StorageBox = FfiStorage_TO<'static, RArc<()>>;

/// The root module of a storage plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = StorageModRef)))]
pub struct StorageMod {
    /// The plugin's name and description. (since 1.0)
    pub info: extern "C" fn() -> PluginInfo,
    /// Creates the storage from its host context. (since 1.0)
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(host: HostBox) -> RResult<StorageBox, PluginError>,
    /// How the library was built; absent in plugins built against 1.0. (since 1.1)
    pub build: BuildInfo,
}

impl RootModule for StorageModRef {
    declare_root_module_statics! {StorageModRef}
    const BASE_NAME: &'static str = crate::kind::STORAGE;
    const NAME: &'static str = crate::kind::STORAGE;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// How often [`StorageClient::update`] tries before it gives up with a transient error (the
/// job is then retried later).
const UPDATE_ATTEMPTS: u32 = 32;

/// A handler's typed access to the storage, obtained with [`crate::Host::storage`].
pub struct StorageClient {
    inner: StorageBox,
}

impl StorageClient {
    /// Wraps a storage object.
    pub fn new(inner: StorageBox) -> Self {
        Self { inner }
    }

    /// The record with this key, if any.
    pub fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
        self.inner
            .get(collection.into(), key.into())
            .into_result()
            .map(ROption::into_option)
    }

    /// Inserts or replaces a record.
    pub fn put(&self, record: Record) -> Result<(), PluginError> {
        self.inner.put(record).into_result()
    }

    /// Deletes a record; true if it existed.
    pub fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
        self.inner
            .delete(collection.into(), key.into())
            .into_result()
    }

    /// Keeps a message payload once; its SHA-256.
    pub fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        self.inner
            .put_payload(bytes.into())
            .into_result()
            .map(RString::into_string)
    }

    /// The payload with this SHA-256, if kept.
    pub fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        self.inner
            .get_payload(digest.into())
            .into_result()
            .map(|p| p.into_option().map(RVec::into_vec))
    }

    /// Inserts or replaces `record` only if the stored body is still `expected` (`None`: only
    /// if absent), atomically; true if written.
    pub fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
        self.inner
            .put_if(record, expected.map(RString::from).into())
            .into_result()
    }

    /// The worker host's claim on the storage (see [`FfiStorage::claim_writer`]).
    pub fn claim_writer(&self, sole: bool) -> Result<(), PluginError> {
        self.inner.claim_writer(sole).into_result()
    }

    /// Reads, changes and writes back one record as one atomic step: `change` is given the
    /// stored record (if any) and returns the record to write, or `None` to leave it as it is.
    /// When another writer got in between, `change` runs again on what is stored now, so it
    /// must be a function of what it is given. The record written, if any.
    pub fn update(
        &self,
        collection: &str,
        key: &str,
        change: impl FnMut(Option<&Record>) -> Result<Option<Record>, PluginError>,
    ) -> Result<Option<Record>, PluginError> {
        let stored = self.get(collection, key)?;
        self.update_from(collection, key, stored, change)
    }

    /// [`StorageClient::update`] of a record the caller has just read (`stored`), sparing a
    /// read: when it is no longer what is stored, the write is refused and `change` runs again
    /// on what is.
    pub fn update_from(
        &self,
        collection: &str,
        key: &str,
        mut stored: Option<Record>,
        mut change: impl FnMut(Option<&Record>) -> Result<Option<Record>, PluginError>,
    ) -> Result<Option<Record>, PluginError> {
        for attempt in 0..UPDATE_ATTEMPTS {
            let Some(record) = change(stored.as_ref())? else {
                return Ok(None);
            };
            let expected = stored.as_ref().map(|r| r.body.as_str());
            if self.put_if(record.clone(), expected)? {
                return Ok(Some(record));
            }
            if attempt > 4 {
                std::thread::sleep(std::time::Duration::from_millis(1 << attempt.min(6)));
            }
            stored = self.get(collection, key)?;
        }
        Err(PluginError::transient(format!(
            "record {collection}/{key} kept changing during {UPDATE_ATTEMPTS} updates"
        )))
    }

    /// The keys of the records matching a query, in the order the storage answers
    /// [`RecordQuery::keys_only`] (key or time order). A storage built before 1.3 cannot read
    /// that field and refuses the query as one it cannot run (a configuration error): it is
    /// then asked again for the whole records, so the answer is the same with every storage.
    pub fn query_keys(&self, query: &RecordQuery) -> Result<Vec<String>, PluginError> {
        let keys_only = RecordQuery {
            keys_only: true,
            ..query.clone()
        };
        let records = match self.query(&keys_only) {
            Err(e) if e.kind() == Some(&crate::ErrorKind::Config) => {
                let whole = RecordQuery {
                    keys_only: false,
                    ..query.clone()
                };
                self.query(&whole)?
            }
            answer => answer?,
        };
        Ok(records.into_iter().map(|r| r.key.into_string()).collect())
    }

    /// The records matching a query.
    pub fn query(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        let json = serde_json::to_string(query)
            .map_err(|e| PluginError::rejected(format!("unserializable query: {e}")))?;
        self.inner
            .query(json.as_str().into())
            .into_result()
            .map(RVec::into_vec)
    }
}
