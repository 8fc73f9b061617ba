//! What retention tests share: the captured Cyrus scenario archived by a real broker and
//! workers with its log signed, and reading `bonnie retention plan --json` and the stored log.

use bonnie_plugin_api::RecordQuery;
use serde_json::Value;

use crate::{
    cluster::Cluster,
    paths, process,
    storages::{self, Archive, Storage},
};

/// The archive's signing key, relative to the configuration (`bonnie ledger init` makes it).
pub const LEDGER: &str = "[ledger]\nsigning_key = \"var/archive.key\"\n";

/// The scenario archived by `cluster` (whose configuration has [`LEDGER`]) on `storage`, its
/// log signed under `name`; the broker and workers are stopped again.
pub fn archive_scenario(cluster: &Cluster, storage: Storage, name: &str) -> Archive {
    let archive = cluster.use_storage(storage);
    let init = cluster.bonnie(&["ledger", "init", "--name", name]);
    assert!(init.status.success(), "{}", process::describe(&init));
    let broker = cluster.start_broker();
    for line in paths::scenario() {
        let dealt = cluster.deal(line.as_bytes());
        assert!(dealt.status.success(), "{}", process::describe(&dealt));
    }
    let workers = cluster.start_workers(&["worker-1", "worker-2"]);
    cluster.wait_until_drained();
    drop(workers);
    drop(broker);
    archive
}

/// Runs `bonnie` with `args`, asserting it succeeds; its standard output as JSON.
pub fn bonnie_json(cluster: &Cluster, args: &[&str]) -> Value {
    let output = cluster.bonnie(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        process::describe(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            process::describe(&output)
        )
    })
}

/// `bonnie retention plan --json`.
pub fn plan(cluster: &Cluster) -> Value {
    bonnie_json(cluster, &["retention", "plan", "--json"])
}

/// `(expired, to purge, held)` of a rule in a plan.
pub fn counts(plan: &Value, rule: &str) -> (u64, u64, u64) {
    let rule = &plan["rules"][rule];
    let n = |f: &str| rule[f].as_u64().unwrap_or_else(|| panic!("{f} of {rule}"));
    (n("expired"), n("purged"), n("held"))
}

/// The log entries of `event` in the cluster's storage, as stored (tombstones included), with
/// their job ids.
pub fn log_entries(cluster: &Cluster, event: &str) -> Vec<(String, Value)> {
    let storage = storages::open(&cluster.config());
    let query = RecordQuery {
        collection: "log".into(),
        all: true,
        ..RecordQuery::default()
    };
    storage
        .query(&query)
        .expect("reading the log")
        .iter()
        .map(|r| (r.key.to_string(), r.json().expect("a log record's JSON")))
        .filter(|(_, r)| r["event"] == event)
        .collect()
}
