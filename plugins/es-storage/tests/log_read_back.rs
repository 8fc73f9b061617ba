//! es-storage reads a job's log entry back as it was appended, which the ledger's digest is
//! taken of: right after the bulk write that stored it (a worker's read back before DONE), and
//! from another process that did not write it (`bonnie verify`), on an osmem-server.

use bonnie_core::ledger::LeafReport;
use bonnie_es_storage::EsStorage;
use bonnie_plugin_api::{prelude::*, testing::TestHost};
use bonnie_tests::search_server::SearchServer;
use serde_json::{Value, json};

/// es-storage on `server`, as a worker or `bonnie verify` opens it.
fn storage(server: &SearchServer, dir: &tempfile::TempDir) -> EsStorage {
    let host = TestHost::new("es-storage")
        .config(json!({ "url": server.url }))
        .config_dir(dir.path().to_str().unwrap());
    EsStorage::new(host.host()).unwrap()
}

fn records() -> Vec<(String, Value)> {
    let record = |n: u32, day: u32| {
        json!({
            "event": "MessageNew",
            "@timestamp": format!("2026-11-{day:02}T10:00:00.000Z"),
            "subject": format!("Grüße {n}"),
            "vnd.cmu.sessionId": format!("session-{n}"),
            "mailbox_acl": { "john.doe@example.org": "lrswipkxtecdan" },
            "uids": [n],
        })
    };
    (0..6)
        .map(|n| (format!("job-{n}"), record(n, 27 + n % 3)))
        .collect()
}

fn digest(storage: &EsStorage, job: &str) -> Option<String> {
    let entry = storage.get("log", job).unwrap()?;
    assert_eq!(entry.key.as_str(), job);
    let body: Value = serde_json::from_str(entry.body.as_str()).unwrap();
    for added in ["search_text", "text_truncated"] {
        assert!(
            body.get(added).is_none(),
            "{added} is the storage's: {body}"
        );
    }
    Some(
        LeafReport::of_stored(job, entry.body.as_str())
            .unwrap()
            .record_digest,
    )
}

#[test]
fn a_log_entry_reads_back_as_appended_by_the_writer_and_by_another_process() {
    let server = SearchServer::start();
    let dir = tempfile::tempdir().unwrap();
    let writer = storage(&server, &dir);
    let records = records();
    let items = records
        .iter()
        .map(|(job, record)| OutputItem::new(job.as_str(), record.to_string()))
        .collect();
    writer.append_log(items).unwrap();
    // The daily indices' template keeps search_text out of the stored source, which makes
    // the server store the dotted names as objects: still the same record.
    let (status, stored) = server.request("GET", "/logstash-2026.11.27/_doc/job-0", None);
    assert_eq!(status, 200, "{stored}");
    assert!(
        stored["_source"]["vnd"]["cmu"]["sessionId"].is_string(),
        "{stored}"
    );

    let appended = |job: &str, record: &Value| {
        LeafReport::of_stored(job, &record.to_string())
            .unwrap()
            .record_digest
    };
    // Asked in another order than written.
    for (job, record) in records.iter().rev() {
        assert_eq!(
            digest(&writer, job).as_deref(),
            Some(appended(job, record).as_str())
        );
    }
    let verifier = storage(&server, &dir);
    for (job, record) in &records {
        assert_eq!(
            digest(&verifier, job).as_deref(),
            Some(appended(job, record).as_str())
        );
    }
    assert_eq!(digest(&verifier, "job-never-written"), None);
    assert_eq!(digest(&writer, "job-never-written"), None);

    // A job written again keeps its first record, and that is what is read back.
    let (job, first) = &records[0];
    let again = json!({ "event": "MessageNew", "@timestamp": first["@timestamp"], "subject": "changed since" });
    writer
        .append_log(vec![OutputItem::new(job.as_str(), again.to_string())])
        .unwrap();
    assert_eq!(
        digest(&writer, job).as_deref(),
        Some(appended(job, first).as_str())
    );
}
