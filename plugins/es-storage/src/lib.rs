//! Storage plugin `es-storage`: the records handlers keep (users, folders, sessions, ...) and
//! the event log, in an Elasticsearch 7+/8 or OpenSearch server, for deployments that
//! outgrow one machine. The same indices and templates as es-output.

use std::sync::Arc;

use bonnie_es::Es;
use bonnie_payload_store::{HandedOver, LocalFolder, PayloadStore, S3Bucket};
use bonnie_plugin_api::prelude::*;

/// The storage.
pub struct EsStorage {
    es: Es,
}

/// The key of `[plugins.es-storage]` naming the collector's payload folder (`[collector]
/// payload_dir`), read with `payload_store = "s3"`: payloads the collector leaves there are
/// moved into the bucket. Without a bucket payloads are documents of the server, and the
/// collector must send every payload in its job (no `payload_dir`).
const PAYLOAD_DIR: &str = "payload_dir";

impl EsStorage {
    /// Reads `[plugins.es-storage]`: the server's keys (bonnie_es::Settings), the payload
    /// store's (bonnie_payload_store::Settings) and `payload_dir`; connects to the bucket if
    /// payloads are kept in one (a bucket that does not answer is an error now); installs the
    /// index templates if the server answers. Log entries are read back by job id (the
    /// ledger's digest is of what was kept).
    pub fn new(host: Host) -> Result<Self, PluginError> {
        const PLUGIN: &str = "es-storage";
        let invalid = |e: String| {
            PluginError::config(format!("invalid configuration for plugin {PLUGIN}: {e}"))
        };
        let mut table: serde_json::Map<String, serde_json::Value> = host.config()?;
        let store = bonnie_payload_store::Settings::take_from(PLUGIN, &mut table)
            .map_err(PluginError::config)?;
        let payload_dir = match table.remove(PAYLOAD_DIR) {
            None => None,
            Some(serde_json::Value::String(dir)) => Some(host.path(&dir)),
            Some(other) => {
                return Err(invalid(format!(
                    "{PAYLOAD_DIR} must be a path, not {other}"
                )));
            }
        };
        let settings: bonnie_es::Settings =
            serde_json::from_value(serde_json::Value::Object(table))
                .map_err(|e| invalid(e.to_string()))?;
        let sealer = store
            .sealer(PLUGIN, |p| host.path(p))
            .map_err(PluginError::config)?;
        let bucket = match store
            .s3_config(PLUGIN, |p| host.path(p))
            .map_err(PluginError::config)?
        {
            Some(config) => Some(
                S3Bucket::connect(&config)
                    .map_err(|e| PluginError::config(format!("[plugins.{PLUGIN}] {e}")))?
                    .sealed_by(sealer.clone()),
            ),
            None if payload_dir.is_some() => {
                return Err(PluginError::config(format!(
                    "[plugins.{PLUGIN}] {PAYLOAD_DIR} is read only with payload_store = \"s3\" (payloads are documents of the server otherwise): remove it, and [collector] payload_dir"
                )));
            }
            None => None,
        };
        let mut es = Es::for_plugin_with(&host, PLUGIN, settings)?
            .reading_back_log()
            .with_payload_sealer(sealer);
        if let Some(bucket) = bucket {
            let store: Arc<dyn PayloadStore> = match payload_dir {
                Some(dir) => Arc::new(HandedOver::new(bucket, LocalFolder::new(dir))),
                None => Arc::new(bucket),
            };
            es = es.with_payload_store(store);
        }
        host.info(
            "Payload store opened.",
            &[("payloads", &es.payload_location())],
        );
        Ok(Self { es })
    }
}

impl Storage for EsStorage {
    fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError> {
        if collection == "log" {
            return self.es.get_log_entry(key);
        }
        self.es.get_record(collection, key)
    }

    fn put(&self, record: Record) -> Result<(), PluginError> {
        self.es.put_record(&record)
    }

    /// Deletes a record; `log` and `payloads` are retention's: a log document is purged in
    /// place (a tombstone), a payload removed with its object in the payload store.
    fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
        match collection {
            "log" => self.es.purge_log_entry(key),
            "payloads" => self.es.remove_payload(key),
            _ => self.es.delete_record(collection, key),
        }
    }

    fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
        self.es.put_record_if(&record, expected)
    }

    fn query(&self, query: RecordQuery) -> Result<Vec<Record>, PluginError> {
        if query.collection == "log" {
            return self.es.search_log(&query);
        }
        self.es.query_records(&query)
    }

    fn append_log(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        self.es.write_log(&items)
    }

    fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        self.es.put_payload(bytes)
    }

    fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        self.es.get_payload(digest)
    }
}

bonnie_plugin_api::export_storage! {
    name: "es-storage",
    description: "Records and the event log in Elasticsearch or OpenSearch.",
    new: EsStorage::new,
}
