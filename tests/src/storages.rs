//! The two storages the storage-dependent tests run against with the same expectations:
//! sqlite-storage, and es-storage on an osmem-server the harness starts. A test takes a
//! [`Storage`] and [`on_both_storages!`](crate::on_both_storages) runs it once on each; it
//! reads what was stored through the storage plugin itself ([`open`]), as bonnie-api does.

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicBool},
};

use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};

use crate::{cluster::Cluster, paths, search_server::SearchServer, worker::WorkerLab};

/// Where a lab keeps its records and event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// sqlite-storage, `var/bonnie.db` (the labs' default).
    Sqlite,
    /// es-storage on a fresh osmem-server.
    Search,
}

/// The storage a lab runs on, kept as long as the lab: the search server, if any, stops when
/// this is dropped.
pub struct Archive {
    /// Which storage.
    pub storage: Storage,
    /// The search server of [`Storage::Search`].
    pub server: Option<SearchServer>,
}

/// The storage plugin configured in `config`, opened in-process as bonnie-api opens it.
pub fn open(config: &Path) -> StorageClient {
    let config = bonnie_core::Config::load(config).expect("the lab's configuration");
    let (_, storage) = bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)))
        .expect("opening the lab's storage");
    StorageClient::new(storage)
}

/// Puts the lab in `dir` (plugin directory `plugins`, configuration `config`) on `storage`:
/// for [`Storage::Search`], es-storage on a fresh osmem-server takes sqlite-storage's place.
fn switch(dir: &Path, config: &Path, storage: Storage) -> Archive {
    if storage == Storage::Sqlite {
        return Archive {
            storage,
            server: None,
        };
    }
    let server = SearchServer::start();
    let plugins = dir.join("plugins");
    let sqlite = paths::plugin("bonnie-sqlite-storage");
    std::fs::remove_file(plugins.join(sqlite.file_name().expect("a file name")))
        .expect("removing sqlite-storage from the plugin directory");
    let es = paths::plugin("bonnie-es-storage");
    std::fs::copy(&es, plugins.join(es.file_name().expect("a file name")))
        .expect("copying es-storage");
    let text = std::fs::read_to_string(config).expect("reading the configuration");
    let sqlite_table = "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n";
    assert!(text.contains(sqlite_table), "{text}");
    let es_table = format!(
        "[plugins.es-storage]\nurl = \"{}\"\ndead_letter = \"var/es-dead-letter.jsonl\"\n",
        server.url
    );
    std::fs::write(config, text.replace(sqlite_table, &es_table))
        .expect("writing the configuration");
    Archive {
        storage,
        server: Some(server),
    }
}

impl Archive {
    /// How many distinct jobs the event log holds.
    pub fn logged_jobs(&self, dir: &Path) -> usize {
        match &self.server {
            None => {
                let db = rusqlite::Connection::open(dir.join("var/bonnie.db"))
                    .expect("opening the archive");
                db.query_row("SELECT count(DISTINCT job_id) FROM log", [], |r| {
                    r.get::<_, i64>(0)
                })
                .expect("counting the log") as usize
            }
            Some(server) => {
                server.refresh();
                let (status, count) = server.request("GET", "/logstash-*/_count", None);
                assert_eq!(status, 200, "{count}");
                count["count"].as_u64().expect("a count") as usize
            }
        }
    }
}

impl Archive {
    /// The log entries of `event`: the `user` and `user_id` per-user queries read (SQLite's
    /// columns, the search documents' fields) and the record.
    pub fn logged_users(
        &self,
        dir: &Path,
        event: &str,
    ) -> Vec<(Option<String>, Option<String>, Value)> {
        match &self.server {
            None => {
                let db = rusqlite::Connection::open(dir.join("var/bonnie.db"))
                    .expect("opening the archive");
                let mut stmt = db
                    .prepare("SELECT user, user_id, record FROM log WHERE event = ?1")
                    .expect("the log");
                stmt.query_map([event], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .expect("reading the log")
                .map(|row| {
                    let (user, user_id, record) = row.expect("a log row");
                    (
                        user,
                        user_id,
                        serde_json::from_str(&record).expect("a JSON record"),
                    )
                })
                .collect()
            }
            Some(server) => {
                server.refresh();
                let query = json!({ "size": 10000, "query": { "term": { "event": event } } });
                let (status, found) = server.request("POST", "/logstash-*/_search", Some(&query));
                assert_eq!(status, 200, "{found}");
                found["hits"]["hits"]
                    .as_array()
                    .expect("hits")
                    .iter()
                    .map(|hit| {
                        let record = hit["_source"].clone();
                        let text = |field: &str| record[field].as_str().map(str::to_string);
                        (text("user"), text("user_id"), record)
                    })
                    .collect()
            }
        }
    }
}

impl Cluster {
    /// Puts the cluster on `storage` before any of its processes starts.
    pub fn use_storage(&self, storage: Storage) -> Archive {
        switch(self.path(), &self.config(), storage)
    }
}

impl WorkerLab {
    /// Puts the lab on `storage` before the worker runs (its configuration must still have
    /// the base `[plugins.sqlite-storage]` table).
    pub fn use_storage(&self, storage: Storage) -> Archive {
        switch(self.path(), &self.config(), storage)
    }
}

/// Runs each `fn $test(storage: Storage)` as two tests, `$test::sqlite` and `$test::search`.
#[macro_export]
macro_rules! on_both_storages {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[test]
            fn sqlite() {
                super::$test($crate::storages::Storage::Sqlite);
            }

            #[test]
            fn search() {
                super::$test($crate::storages::Storage::Search);
            }
        }
    )+};
}
