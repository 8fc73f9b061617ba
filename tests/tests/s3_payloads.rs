//! Payloads on object storage: sqlite-storage and es-storage (on an osmem-server) with
//! `payload_store = "s3"`, against moto's S3 server. Each payload is one object under its
//! digest path, holding the bytes a payload file holds; the same payload twice is one object;
//! a payload the collector handed over in its folder reaches the bucket; payloads an archive's
//! database kept before it moved to a bucket are still read; an object altered in the bucket
//! is refused as damaged, never returned; `bonnie verify` verifies an archive whose payloads
//! are in the bucket and names one altered there; a secret key file others may read and a
//! bucket that does not exist stop the worker at start, and a server that stops answering
//! fails the job instead of finishing it.

use std::{os::unix::fs::PermissionsExt, path::Path};

use bonnie_core::payload;
use bonnie_ledger::ArchiveKey;
use bonnie_tests::{
    lab::CyrusLab,
    moto::MotoServer,
    paths, process,
    search_server::SearchServer,
    storages::{self, Storage},
    worker::WorkerLab,
};
use serde_json::{Value, json};

/// The secret access key's file, relative to a lab's configuration.
const SECRET_FILE: &str = "s3.secret";

/// sqlite-storage's table in the labs' configurations, to which the store's keys are added.
const SQLITE_TABLE: &str = "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n";

/// Writes the secret access key's file into `dir` with `mode`.
fn write_secret(dir: &Path, mode: u32) {
    let file = dir.join(SECRET_FILE);
    std::fs::write(&file, "moto-takes-any-secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Adds `keys` to sqlite-storage's table of the configuration `config`.
fn add_to_sqlite_table(config: &Path, keys: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(SQLITE_TABLE), "{text}");
    std::fs::write(
        config,
        text.replace(SQLITE_TABLE, &format!("{SQLITE_TABLE}{keys}")),
    )
    .unwrap();
}

/// A worker lab on `storage` whose payloads are in `moto`'s bucket (more storage keys in
/// `keys`), running the MessageAppend handler; the search server of es-storage with it.
fn lab_on(storage: Storage, moto: &MotoServer, keys: &str) -> (WorkerLab, Option<SearchServer>) {
    let store = format!("{}{keys}", moto.store_keys(SECRET_FILE));
    let (lab, search) = match storage {
        Storage::Sqlite => {
            let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
            add_to_sqlite_table(&lab.config(), &store);
            (lab, None)
        }
        Storage::Search => {
            let search = SearchServer::start();
            let lab =
                WorkerLab::on_elasticsearch(&search.url, &["bonnie-messageappend"], "", &store, "");
            (lab, Some(search))
        }
    };
    write_secret(lab.path(), 0o600);
    (lab, search)
}

/// A MessageAppend of UID `uid` in `folder` carrying `content` as the collector sends it.
fn appended(folder: &str, uid: u64, content: Value) -> String {
    let mut n: Value = serde_json::from_str(&paths::cyrus_event("MessageAppend-1.json")).unwrap();
    n["uri"] = json!(format!(
        "imap://cyrus-lab.example.org/user/john.doe/{folder}%40example.org;UIDVALIDITY=7/;UID={uid}"
    ));
    n["messageContent"] = json!({ uid.to_string(): content });
    n.to_string()
}

/// A message as it travels in a job.
fn inline(message: &[u8]) -> Value {
    json!({
        "encoding": "utf-8", "data": std::str::from_utf8(message).unwrap(),
        "size": message.len(), "digest": payload::digest(message),
    })
}

fn message(subject: &str, body_lines: usize) -> Vec<u8> {
    let mut message =
        format!("From: Jane Doe <jane.doe@example.org>\r\nSubject: {subject}\r\n\r\n").into_bytes();
    for n in 0..body_lines {
        message.extend(format!("Line {n} of the quarterly figures, {subject}.\r\n").bytes());
    }
    message
}

/// The object key of a payload.
fn key(digest: &str) -> String {
    payload::relative_path(digest)
}

fn round_trip_once_per_digest_and_refuse_an_altered_object(storage: Storage) {
    let moto = MotoServer::start();
    let (lab, search) = lab_on(storage, &moto, "payload_dir = \"var/payloads\"\n");
    let twice = message("kept once", 20);
    let other = message("another one", 40);
    // Too large for a job: the collector wrote it into its payload folder.
    let handed_over = message("handed over", 20_000);
    let handed_over_digest = payload::write_file(&lab.path().join("var/payloads"), &handed_over)
        .expect("the collector's payload folder");
    lab.notifications(&[
        appended("Archive", 3, inline(&twice)),
        appended("Trash", 9, inline(&twice)),
        appended("INBOX", 4, inline(&other)),
        appended(
            "INBOX",
            5,
            json!({ "digest": handed_over_digest, "size": handed_over.len(), "in_store": true }),
        ),
    ]);
    lab.run();
    let messages = [&twice, &twice, &other, &handed_over];
    for (line, message) in (1..).zip(messages) {
        let record = lab.record(&format!("in.jsonl:{line}"));
        assert_eq!(
            record["payload_digest"],
            payload::digest(message),
            "{record}"
        );
        assert_eq!(lab.outcome(&format!("in.jsonl:{line}"))["outcome"], "done");
    }
    let digests: Vec<String> = [&twice, &other, &handed_over]
        .iter()
        .map(|m| payload::digest(m))
        .collect();
    let mut expected: Vec<String> = digests.iter().map(|d| key(d)).collect();
    expected.sort();
    assert_eq!(
        moto.keys(),
        expected,
        "one object per payload, under its digest path"
    );
    for (digest, message) in digests.iter().zip([&twice, &other, &handed_over]) {
        let object = moto.object(&key(digest)).unwrap();
        assert_eq!(
            payload::unpack(digest, &object).unwrap(),
            **message,
            "the object holds a payload file's bytes"
        );
    }
    assert!(
        !payload::file(&lab.path().join("var/payloads"), &handed_over_digest).exists(),
        "the handed-over file is removed once the bucket has it"
    );
    match &search {
        None => {
            let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
            let rows: i64 = db
                .query_row("SELECT count(*) FROM payloads", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 0, "no payload in the database");
        }
        Some(search) => {
            for digest in &digests {
                let (status, doc) =
                    search.request("GET", &format!("/bonnie-payloads/_doc/{digest}"), None);
                assert_eq!(status, 404, "no payload document: {doc}");
            }
        }
    }

    // Read back through the storage plugin, as bonnie-api and bonnie verify read them.
    let client = storages::open(&lab.config());
    for (digest, message) in digests.iter().zip([&twice, &other, &handed_over]) {
        assert_eq!(
            client.get_payload(digest).unwrap().as_deref(),
            Some(&message[..])
        );
    }
    assert_eq!(
        client.get_payload(&payload::digest(b"never kept")).unwrap(),
        None
    );
    // The same size and a valid frame, other bytes: refused, not returned.
    let mut forged = twice.clone();
    forged[30] ^= 0x01;
    moto.put_object(&key(&digests[0]), &payload::pack(&forged).unwrap());
    let refused = client.get_payload(&digests[0]).unwrap_err().to_string();
    assert!(
        refused.contains("damaged") && refused.contains(&digests[0]),
        "{refused}"
    );
    // An object claiming 2^60 bytes in a few bytes: refused without reserving them.
    let mut claim = (1u64 << 60).to_le_bytes().to_vec();
    claim.extend(b"tiny");
    moto.put_object(&key(&digests[1]), &claim);
    let refused = client.get_payload(&digests[1]).unwrap_err().to_string();
    assert!(refused.contains("damaged"), "{refused}");
    // A second write of a kept digest leaves the object as it is.
    assert_eq!(client.put_payload(&twice).unwrap(), digests[0]);
    assert_eq!(
        moto.object(&key(&digests[0])).unwrap(),
        payload::pack(&forged).unwrap()
    );
}

#[test]
fn sqlite_storage_keeps_payloads_in_the_bucket_once_per_digest_and_refuses_an_altered_one() {
    round_trip_once_per_digest_and_refuse_an_altered_object(Storage::Sqlite);
}

#[test]
fn es_storage_keeps_payloads_in_the_bucket_once_per_digest_and_refuses_an_altered_one() {
    round_trip_once_per_digest_and_refuse_an_altered_object(Storage::Search);
}

#[test]
fn an_archive_moved_to_a_bucket_still_reads_the_payloads_its_database_kept() {
    let moto = MotoServer::start();
    let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
    let before = message("kept in the database", 10);
    let after = message("kept in the bucket", 10);
    lab.notifications(&[appended("INBOX", 1, inline(&before))]);
    lab.run();
    add_to_sqlite_table(&lab.config(), &moto.store_keys(SECRET_FILE));
    write_secret(lab.path(), 0o600);
    let mut lines = std::fs::read_to_string(lab.path().join("in.jsonl")).unwrap();
    lines.push_str(&appended("INBOX", 2, inline(&after)));
    lines.push('\n');
    lab.write("in.jsonl", &lines);
    lab.run();
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");
    assert_eq!(
        moto.keys(),
        [key(&payload::digest(&after))],
        "only the new one"
    );
    let client = storages::open(&lab.config());
    for message in [&before, &after] {
        let digest = payload::digest(message);
        assert_eq!(
            client.get_payload(&digest).unwrap().as_deref(),
            Some(&message[..])
        );
    }
}

const JOHN: &str = "john.doe@example.org";

#[test]
fn bonnie_verify_passes_an_archive_whose_payloads_are_in_the_bucket_and_names_one_altered_there() {
    let moto = MotoServer::start();
    // The collector hands messages over 4 KiB over in its payload folder, which
    // sqlite-storage's payload_dir (default var/payloads) names too.
    let lab = CyrusLab::start_prepared(Storage::Sqlite, &[], &[JOHN], |cluster| {
        add_to_sqlite_table(&cluster.config(), &moto.store_keys(SECRET_FILE));
        write_secret(cluster.path(), 0o600);
        let config = std::fs::read_to_string(cluster.config()).unwrap();
        std::fs::write(
            cluster.config(),
            config.replacen(
                "[collector]\n",
                "[collector]\npayload_dir = \"var/payloads\"\nmax_inline_bytes = 4096\n",
                1,
            ),
        )
        .unwrap();
    });
    let mail = |subject: &str, lines: usize| {
        let mut mail = format!(
            "From: <{JOHN}>\r\nTo: <{JOHN}>\r\nSubject: {subject}\r\nMessage-ID: <{}@example.org>\r\n\r\n",
            subject.replace(' ', ".")
        );
        for n in 0..lines {
            mail.push_str(&format!("Line {n} of the evidence.\r\n"));
        }
        mail
    };
    let small = mail("kept as evidence", 3);
    let large = mail("handed over", 2000);
    lab.cyrus.lmtp(JOHN, &[JOHN], small.as_bytes());
    lab.cyrus.lmtp(JOHN, &[JOHN], large.as_bytes());
    lab.wait_until_archived();
    let cluster = &lab.cluster;
    let stored: Vec<String> = cluster
        .log_records()
        .iter()
        .filter_map(|r| r["payload_digest"].as_str().map(str::to_string))
        .collect();
    let [small_digest, large_digest] = [&small, &large].map(|m| {
        let body = m.split_once("\r\n\r\n").unwrap().1;
        stored
            .iter()
            .find(|d| {
                moto.object(&key(d)).is_some_and(|object| {
                    String::from_utf8(payload::unpack(d, &object).unwrap())
                        .unwrap()
                        .ends_with(body)
                })
            })
            .unwrap_or_else(|| panic!("no object holds the message: {stored:?} {:?}", moto.keys()))
            .clone()
    });
    let handed_over = payload::file(&cluster.path().join("var/payloads"), &large_digest);
    assert!(
        handed_over.parent().unwrap().is_dir() && !handed_over.exists(),
        "the collector wrote the large payload into its folder, and it left for the bucket"
    );

    // No [ledger] key: no checkpoints, the records are checked against the leaves alone.
    let public = ArchiveKey::generate(&cluster.path().join("verifier.key"), "verifier.test")
        .unwrap()
        .public();
    let public_path = cluster.path().join("verifier.pub");
    std::fs::write(&public_path, public.to_string()).unwrap();
    let verify = || {
        let output = cluster.bonnie(&[
            "verify",
            "--json",
            "--public-key",
            public_path.to_str().unwrap(),
        ]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("verify printed no JSON: {}", process::describe(&output)));
        (output.status.success(), report)
    };
    let (passed, report) = verify();
    assert!(passed, "the untouched archive: {report}");

    for digest in [&small_digest, &large_digest] {
        let kept = moto.object(&key(digest)).unwrap();
        let mut altered = kept.clone();
        let last = altered.len() - 1;
        altered[last] ^= 0x01;
        moto.put_object(&key(digest), &altered);
        let (passed, report) = verify();
        assert!(!passed, "an object altered in the bucket: {report}");
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{report}");
        assert_eq!(findings[0]["kind"], "payload altered", "{report}");
        moto.put_object(&key(digest), &kept);
    }
    let (passed, report) = verify();
    assert!(passed, "every object put back: {report}");
}

#[test]
fn a_secret_key_file_others_may_read_or_a_bucket_that_does_not_exist_stops_the_worker_at_start() {
    let moto = MotoServer::start();
    let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
    add_to_sqlite_table(&lab.config(), &moto.store_keys(SECRET_FILE));
    lab.notifications(&[appended("INBOX", 1, inline(&message("never kept", 3)))]);
    write_secret(lab.path(), 0o644);
    let refused = process::run("bonnie-worker", &mut lab.command(&[]));
    assert!(!refused.status.success(), "{}", process::describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("s3_secret_access_key_file") && stderr.contains("0644"),
        "{stderr}"
    );

    std::fs::set_permissions(
        lab.path().join(SECRET_FILE),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let config = std::fs::read_to_string(lab.config()).unwrap();
    let absent = format!("s3_bucket = \"{}\"", moto.bucket);
    lab.write(
        "bonnie.toml",
        &config.replace(&absent, "s3_bucket = \"absent\""),
    );
    let refused = process::run("bonnie-worker", &mut lab.command(&[]));
    assert!(!refused.status.success(), "{}", process::describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("\"absent\"") && stderr.contains(&moto.endpoint),
        "{stderr}"
    );
    assert!(lab.outcomes().is_empty(), "no job ran");
}

#[test]
fn a_bucket_that_stops_answering_fails_the_job_instead_of_finishing_it() {
    let mut moto = MotoServer::start();
    let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
    let config = std::fs::read_to_string(lab.config()).unwrap();
    lab.write(
        "bonnie.toml",
        &config.replace(
            "retry_delay_ms = 10\n",
            "retry_delay_ms = 10\nfollow = true\nmax_attempts = 2\n",
        ),
    );
    add_to_sqlite_table(&lab.config(), &moto.store_keys(SECRET_FILE));
    write_secret(lab.path(), 0o600);
    lab.notifications(&[appended("INBOX", 1, inline(&message("kept", 3)))]);
    let worker = lab.spawn();
    process::wait_until("the first job to be done", || {
        lab.outcomes_of("in.jsonl:1")
            .iter()
            .any(|o| o["outcome"] == "done")
    });
    moto.kill();
    let mut lines = std::fs::read_to_string(lab.path().join("in.jsonl")).unwrap();
    lines.push_str(&appended("INBOX", 2, inline(&message("never kept", 3))));
    lines.push('\n');
    lab.write("in.jsonl", &lines);
    process::wait_until("the second job to fail", || {
        lab.outcomes_of("in.jsonl:2")
            .iter()
            .any(|o| o["outcome"] == "failed")
    });
    let outcomes = lab.outcomes_of("in.jsonl:2");
    assert!(
        outcomes.iter().all(|o| o["outcome"] != "done"),
        "{outcomes:?}"
    );
    let last = outcomes.last().unwrap().to_string();
    assert!(
        last.contains(&moto.endpoint) && last.contains(&moto.bucket),
        "the failure names the bucket: {last}"
    );
    drop(worker);
}
