//! bonnie-logd in a test cluster: its `[logd]` table, starting it, and the lines the broker
//! holds from it (every batch job in the job store, each line as often as stored).

use std::path::Path;

use serde_json::Value;

use crate::{
    cluster::Cluster,
    paths,
    process::{self, ChildGuard},
};

/// The `[logd]` table for a cluster: `sources` (keys such as `files = [...]`) and small
/// batches waiting briefly, so that tests see lines soon.
pub fn table(sources: &str) -> String {
    format!("\n[logd]\n{sources}\nbatch_wait_ms = 50\npoll_ms = 50\n")
}

/// Starts `bonnie-logd` (logging to `logd.log`) and waits until it says it started.
pub fn start(cluster: &Cluster) -> ChildGuard {
    let before = cluster.log("logd").matches("bonnie-logd started.").count();
    let log = cluster.path().join("logd.log");
    let mut logd = ChildGuard::spawn(
        "bonnie-logd",
        &mut cluster.command(
            "bonnie-logd",
            &["--log-level", "debug", "--log-file", &log.to_string_lossy()],
        ),
    );
    process::wait_until("bonnie-logd to start", || {
        assert!(
            logd.is_running(),
            "bonnie-logd exited; its log:\n{}",
            cluster.log("logd")
        );
        cluster.log("logd").matches("bonnie-logd started.").count() > before
    });
    logd
}

/// Every batch of log lines the broker stored, as its JSON.
pub fn batches(cluster: &Cluster) -> Vec<Value> {
    if !cluster.path().join("var/broker.db").exists() {
        return Vec::new();
    }
    let store = cluster.job_store();
    let Ok(mut statement) =
        store.prepare("SELECT notification FROM jobs WHERE id LIKE 'log-%' ORDER BY rowid")
    else {
        return Vec::new();
    };
    statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .expect("reading the job store")
        .filter_map(Result::ok)
        .map(|bytes| serde_json::from_slice(&bytes).expect("a batch is JSON"))
        .collect()
}

/// Every line of every stored batch, in the order stored.
pub fn lines(cluster: &Cluster) -> Vec<String> {
    batches(cluster)
        .iter()
        .flat_map(|batch| batch["lines"].as_array().cloned().unwrap_or_default())
        .filter_map(|line| line.as_str().map(str::to_string))
        .collect()
}

/// Waits until the broker holds at least `count` lines; they, in the order stored.
pub fn wait_for_lines(cluster: &Cluster, count: usize) -> Vec<String> {
    let mut found = Vec::new();
    process::wait_until(&format!("{count} log lines at the broker"), || {
        found = lines(cluster);
        found.len() >= count
    });
    found
}

/// Appends `lines` to the file at `path` (made if missing), each with its newline.
pub fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("opening a log file");
    let text: String = lines.into_iter().map(|l| l + "\n").collect();
    file.write_all(text.as_bytes()).expect("writing a log file");
}

/// The lines of bonnie-maillog's test logs (`maillog/tests/data`: three hosts and instances,
/// every stamp style, long and short queue IDs), in one list.
pub fn maillog_test_lines() -> Vec<String> {
    [
        "edge-rfc3339.log",
        "mx1-syslog.log",
        "mx1-relay-maillog_file.log",
    ]
    .iter()
    .flat_map(|name| {
        let path = paths::repo_root().join("maillog/tests/data").join(name);
        std::fs::read_to_string(path)
            .expect("reading a test log")
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    })
    .collect()
}
