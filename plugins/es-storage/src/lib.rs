//! Storage plugin `es-storage`: the records handlers keep (users, folders, sessions, ...) and
//! the event log, in an Elasticsearch 7+/8 or OpenSearch server, for deployments that
//! outgrow one machine. The same indices and templates as es-output.

use bonnie_es::Es;
use bonnie_plugin_api::prelude::*;

/// The storage.
pub struct EsStorage {
    es: Es,
}

impl EsStorage {
    /// Reads `[plugins.es-storage]`; installs the index templates if the server answers.
    /// Log entries are read back by job id (the ledger's digest is of what was kept).
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let es = Es::for_plugin(&host, "es-storage")?.reading_back_log();
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

    fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError> {
        self.es.delete_record(collection, key)
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
