//! Payloads sealed at rest, on SQLite and on Elasticsearch (es-storage on an osmem-server),
//! by real workers: with `payload_key_file` in the storage's table, what is stored of a message
//! (sqlite-storage's `payloads.data`, es-storage's payload document, the payload file the
//! collector handed over) holds neither its text nor its zstd frame, only a sealed frame that
//! names its key; the storage reads it back as it was, and reads what it stored plain before
//! the key was configured; after a rotation (a second key appended to the file) old and new
//! payloads read, a key file without the old key names the key it lacks, and a sealed byte
//! changed is refused as damage. With `payload_store = "s3"` the bucket's objects are sealed,
//! the collector's handed-over file among them. `bonnie verify` passes a sealed archive and
//! names a payload whose sealed bytes were changed by one byte; a key file others may read,
//! or a malformed one, stops the worker at start naming the file.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use bonnie_core::payload;
use bonnie_ledger::{ArchiveKey, LeafData, LeafKind, SqliteStore};
use bonnie_tests::{
    cluster::Cluster,
    lab::CyrusLab,
    moto::MotoServer,
    on_both_storages, paths, process,
    search_server::SearchServer,
    storages::{self, Storage},
    worker::WorkerLab,
};
use serde_json::{Value, json};

/// The key file, relative to a lab's configuration.
const KEY_FILE: &str = "payload.keys";

/// The storage key naming it.
const KEY_SETTING: &str = "payload_key_file = \"payload.keys\"\n";

/// The first key, then the one a rotation adds.
const KEY_1: &str = "2026-01 8f0c1a6e5d4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a392817f6e5d4c3b2a1";
const KEY_2: &str = "2026-07 00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

/// sqlite-storage's table in the labs' configurations.
const SQLITE_TABLE: &str = "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n";

/// The first bytes of a sealed frame.
const SEALED_MAGIC: &[u8] = b"BNS1";

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Writes the key file of `keys` (lines) into `dir` with `mode`.
fn write_keys(dir: &Path, keys: &[&str], mode: u32) {
    let file = dir.join(KEY_FILE);
    std::fs::write(&file, format!("# payload keys\n{}\n", keys.join("\n"))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Adds `keys` to sqlite-storage's table of the configuration `config` (before a switch to
/// es-storage, which keeps them in its table).
fn add_to_storage_table(config: &Path, keys: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(SQLITE_TABLE), "{text}");
    let text = text.replace(SQLITE_TABLE, &format!("{SQLITE_TABLE}{keys}"));
    std::fs::write(config, text).unwrap();
}

/// A message whose body says `secret` on each of its lines.
fn message(secret: &str, lines: usize) -> Vec<u8> {
    message_with(
        "From: <jane.doe@example.org>\r\nSubject: figures\r\n",
        secret,
        lines,
    )
}

/// A message of `headers` (CRLF-terminated lines) whose body says `secret` on each of its
/// `lines`.
fn message_with(headers: &str, secret: &str, lines: usize) -> Vec<u8> {
    let mut message = format!("{headers}\r\n").into_bytes();
    for n in 0..lines {
        message.extend(format!("Line {n}: {secret}.\r\n").bytes());
    }
    message
}

/// A MessageAppend of UID `uid` whose `messageContent` is `content`, as the collector sends it.
fn appended_with(uid: u64, content: Value) -> String {
    let mut n: Value = serde_json::from_str(&paths::cyrus_event("MessageAppend-1.json")).unwrap();
    n["uri"] = json!(format!(
        "imap://cyrus-lab.example.org/user/john.doe/INBOX%40example.org;UIDVALIDITY=7/;UID={uid}"
    ));
    n["messageContent"] = json!({ uid.to_string(): content });
    n.to_string()
}

/// A MessageAppend of UID `uid` carrying `message` in the job.
fn appended(uid: u64, message: &[u8]) -> String {
    let content = json!({
        "encoding": "utf-8", "data": std::str::from_utf8(message).unwrap(),
        "size": message.len(), "digest": payload::digest(message),
    });
    appended_with(uid, content)
}

/// Whether `haystack` holds `needle`.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that `kept` (what a store kept of `message`, a frame) is sealed with key `id` and
/// holds neither the message's secret nor its zstd frame.
fn assert_sealed(kept: &[u8], id: &str, message: &[u8], secret: &str) {
    assert!(kept.starts_with(SEALED_MAGIC), "{:?}", &kept[..8]);
    assert_eq!(usize::from(kept[4]), id.len());
    assert_eq!(&kept[5..5 + id.len()], id.as_bytes(), "the key's id");
    assert!(!holds(kept, secret.as_bytes()), "the text is not kept");
    assert!(!holds(kept, ZSTD_MAGIC), "nor a zstd frame");
    assert!(!holds(kept, &payload::compress(message).unwrap()[4..]));
}

/// What a storage keeps of payloads, as an operator with access to it could read and change
/// it: the SQLite file's `payloads` rows, or the search server's payload documents.
enum Kept<'a> {
    Sqlite(PathBuf),
    Search(&'a SearchServer),
}

impl Kept<'_> {
    /// The frame kept under `digest` (decoded from base64 on the search server).
    fn frame(&self, digest: &str) -> Vec<u8> {
        match self {
            Kept::Sqlite(db) => rusqlite::Connection::open(db)
                .unwrap()
                .query_row(
                    "SELECT data FROM payloads WHERE digest = ?1",
                    [digest],
                    |r| r.get(0),
                )
                .unwrap_or_else(|e| panic!("no payload row {digest}: {e}")),
            Kept::Search(server) => {
                let body = Self::document(server, digest)["body"].clone();
                let field = body["sealed_base64"]
                    .as_str()
                    .or(body["zstd_base64"].as_str())
                    .unwrap_or_else(|| panic!("no payload data: {body}"));
                bonnie_core::b64::base64(field).unwrap()
            }
        }
    }

    fn document(server: &SearchServer, digest: &str) -> Value {
        let (status, doc) = server.request("GET", &format!("/bonnie-payloads/_doc/{digest}"), None);
        assert_eq!(status, 200, "{doc}");
        doc["_source"].clone()
    }

    /// Replaces the sealed frame kept under `digest` with `frame`.
    fn set_sealed(&self, digest: &str, frame: &[u8]) {
        match self {
            Kept::Sqlite(db) => {
                let changed = rusqlite::Connection::open(db)
                    .unwrap()
                    .execute(
                        "UPDATE payloads SET data = ?2 WHERE digest = ?1",
                        rusqlite::params![digest, frame],
                    )
                    .unwrap();
                assert_eq!(changed, 1);
            }
            Kept::Search(server) => {
                let mut source = Self::document(server, digest);
                source["body"]["sealed_base64"] = json!(bonnie_core::b64::encode_base64(frame));
                let path = format!("/bonnie-payloads/_doc/{digest}?refresh=true");
                let (status, answer) = server.request("PUT", &path, Some(&source));
                assert_eq!(status, 200, "{answer}");
            }
        }
    }
}

/// `frame` with its last byte (in the tag) changed.
fn one_byte_changed(frame: &[u8]) -> Vec<u8> {
    let mut changed = frame.to_vec();
    *changed.last_mut().unwrap() ^= 0x01;
    changed
}

/// A worker lab on `storage` running the MessageAppend handler, its storage's table given
/// `keys`; the search server of es-storage with it.
fn lab_on(storage: Storage, keys: &str) -> (WorkerLab, Option<SearchServer>) {
    match storage {
        Storage::Sqlite => {
            let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
            add_to_storage_table(&lab.config(), keys);
            (lab, None)
        }
        Storage::Search => {
            let search = SearchServer::start();
            let lab =
                WorkerLab::on_elasticsearch(&search.url, &["bonnie-messageappend"], "", keys, "");
            (lab, Some(search))
        }
    }
}

/// Appends `lines` to the lab's input and runs the worker over it; asserts that jobs
/// `first..` are done.
fn run_more(lab: &WorkerLab, first: usize, lines: &[String]) {
    let mut input = std::fs::read_to_string(lab.path().join("in.jsonl")).unwrap_or_default();
    for line in lines {
        input.push_str(line);
        input.push('\n');
    }
    lab.write("in.jsonl", &input);
    lab.run();
    for n in first..first + lines.len() {
        let outcome = lab.outcome(&format!("in.jsonl:{n}"));
        assert_eq!(outcome["outcome"], "done", "{outcome}");
    }
}

fn payloads_are_sealed_at_rest_read_back_and_survive_a_key_rotation(storage: Storage) {
    let (lab, search) = lab_on(storage, "");
    let kept = match &search {
        None => Kept::Sqlite(lab.path().join("var/bonnie.db")),
        Some(server) => Kept::Search(server),
    };
    // Stored before a key was configured: plain, and it stays so.
    let legacy = message("kept before the key", 10);
    run_more(&lab, 1, &[appended(1, &legacy)]);
    let legacy_digest = payload::digest(&legacy);
    assert_eq!(
        kept.frame(&legacy_digest),
        payload::compress(&legacy).unwrap()
    );

    // Key 1 configured: new payloads are sealed with it.
    let config = std::fs::read_to_string(lab.config()).unwrap();
    let table = match storage {
        Storage::Sqlite => SQLITE_TABLE.to_string(),
        Storage::Search => "[plugins.es-storage]\n".to_string(),
    };
    lab.write(
        "bonnie.toml",
        &config.replacen(&table, &format!("{table}{KEY_SETTING}"), 1),
    );
    write_keys(lab.path(), &[KEY_1], 0o600);
    let first = message("the merger closes on Friday", 30);
    let mut lines = vec![appended(2, &first)];
    // Too large for a job (sqlite-storage): the collector wrote it plain into its folder.
    let handed_over = message("the handed-over contract", 5000);
    let folder = lab.path().join("var/payloads");
    if storage == Storage::Sqlite {
        let digest = payload::write_file(&folder, &handed_over).unwrap();
        let size = handed_over.len();
        lines.push(appended_with(
            3,
            json!({ "digest": digest, "size": size, "in_store": true }),
        ));
    }
    run_more(&lab, 2, &lines);
    let first_digest = payload::digest(&first);
    assert_sealed(
        &kept.frame(&first_digest),
        "2026-01",
        &first,
        "the merger closes",
    );
    let handed_over_digest = payload::digest(&handed_over);
    if storage == Storage::Sqlite {
        let file = std::fs::read(payload::file(&folder, &handed_over_digest)).unwrap();
        assert_eq!(file[..8], (handed_over.len() as u64).to_le_bytes());
        assert_sealed(
            &file[8..],
            "2026-01",
            &handed_over,
            "the handed-over contract",
        );
    } else {
        let document = Kept::document(search.as_ref().unwrap(), &first_digest);
        assert!(document["body"].get("zstd_base64").is_none(), "{document}");
    }

    // Key 2 appended: it seals from now on, key 1 still opens.
    write_keys(lab.path(), &[KEY_1, KEY_2], 0o600);
    let second = message("the second quarter is lost", 30);
    run_more(&lab, lines.len() + 2, &[appended(4, &second)]);
    let second_digest = payload::digest(&second);
    assert_sealed(
        &kept.frame(&second_digest),
        "2026-07",
        &second,
        "second quarter",
    );
    let client = storages::open(&lab.config());
    let mut read = vec![(&legacy_digest, &legacy), (&first_digest, &first)];
    read.push((&second_digest, &second));
    if storage == Storage::Sqlite {
        read.push((&handed_over_digest, &handed_over));
    }
    for (digest, message) in &read {
        let bytes = client.get_payload(digest).unwrap();
        assert_eq!(bytes.as_deref(), Some(&message[..]), "{digest}");
    }
    // The log's full-text index read the sealed bodies.
    for word in ["merger", "quarter", "kept before"] {
        let query = bonnie_plugin_api::RecordQuery {
            collection: "log".to_string(),
            text: Some(word.to_string()),
            ..Default::default()
        };
        assert_eq!(client.query(&query).unwrap().len(), 1, "{word}");
    }
    drop(client);

    // A key file without key 1: the payload it sealed names the key it lacks.
    write_keys(lab.path(), &[KEY_2], 0o600);
    let client = storages::open(&lab.config());
    let lacking = client.get_payload(&first_digest).unwrap_err().message;
    assert!(
        lacking.contains("\"2026-01\"") && lacking.contains(&first_digest),
        "{lacking}"
    );
    assert_eq!(
        client.get_payload(&second_digest).unwrap().as_deref(),
        Some(&second[..])
    );
    drop(client);

    // One sealed byte changed: refused as damage, never returned.
    write_keys(lab.path(), &[KEY_1, KEY_2], 0o600);
    let sealed = kept.frame(&second_digest);
    kept.set_sealed(&second_digest, &one_byte_changed(&sealed));
    let client = storages::open(&lab.config());
    let refused = client.get_payload(&second_digest).unwrap_err().message;
    assert!(
        refused.contains("damaged")
            && refused.contains("authentication")
            && refused.contains(&second_digest),
        "{refused}"
    );
    assert_eq!(
        client.get_payload(&first_digest).unwrap().as_deref(),
        Some(&first[..])
    );
}

on_both_storages!(payloads_are_sealed_at_rest_read_back_and_survive_a_key_rotation);

#[test]
fn a_bucket_keeps_sealed_objects_and_a_handed_over_file_reaches_it_sealed() {
    let moto = MotoServer::start();
    let secret_file = "s3.secret";
    let store = format!("{}{KEY_SETTING}", moto.store_keys(secret_file));
    let (lab, _) = lab_on(Storage::Sqlite, &store);
    write_keys(lab.path(), &[KEY_1], 0o600);
    std::fs::write(lab.path().join(secret_file), "moto-takes-any-secret\n").unwrap();
    let mode = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(lab.path().join(secret_file), mode).unwrap();
    let inline = message("kept in the bucket", 30);
    let handed_over = message("handed over to the bucket", 5000);
    let folder = lab.path().join("var/payloads");
    let handed_over_digest = payload::write_file(&folder, &handed_over).unwrap();
    let size = handed_over.len();
    let content = json!({ "digest": handed_over_digest, "size": size, "in_store": true });
    run_more(&lab, 1, &[appended(1, &inline), appended_with(2, content)]);
    for (message, secret) in [
        (&inline, "kept in the bucket"),
        (&handed_over, "handed over to the bucket"),
    ] {
        let digest = payload::digest(message);
        let object = moto.object(&payload::relative_path(&digest)).unwrap();
        assert_eq!(object[..8], (message.len() as u64).to_le_bytes());
        assert_sealed(&object[8..], "2026-01", message, secret);
    }
    assert!(
        !payload::file(&folder, &handed_over_digest).exists(),
        "moved"
    );
    let client = storages::open(&lab.config());
    for message in [&inline, &handed_over] {
        let bytes = client.get_payload(&payload::digest(message)).unwrap();
        assert_eq!(bytes.as_deref(), Some(&message[..]));
    }
}

#[test]
fn a_key_file_others_may_read_or_a_malformed_one_stops_the_worker_at_start_naming_it() {
    let (lab, _) = lab_on(Storage::Sqlite, KEY_SETTING);
    lab.notifications(&[appended(1, &message("never kept", 3))]);
    let key_file = lab.path().join(KEY_FILE).display().to_string();
    let refused = |what: &str, expected: &[&str]| {
        let output = process::run("bonnie-worker", &mut lab.command(&[]));
        assert!(
            !output.status.success(),
            "{what}: {}",
            process::describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        for text in expected {
            assert!(stderr.contains(text), "{what}: no {text:?} in {stderr}");
        }
    };
    refused("no key file", &["payload_key_file", &key_file]);
    write_keys(lab.path(), &[KEY_1], 0o644);
    refused("a 0644 key file", &["payload_key_file", &key_file, "0644"]);
    write_keys(lab.path(), &["2026-01 00ff"], 0o600);
    refused("a short key", &["payload_key_file", &key_file, "64 hex"]);
    assert!(lab.outcomes().is_empty(), "no job ran");
    write_keys(lab.path(), &[KEY_1], 0o640);
    lab.run();
    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
}

const JOHN: &str = "john.doe@example.org";

/// The leaves of archived records, in order.
fn record_leaves(cluster: &Cluster) -> Vec<LeafData> {
    let conn = cluster.job_store();
    SqliteStore::new(&conn)
        .leaves()
        .map(|leaf| LeafData::decode(&leaf.unwrap().1).unwrap())
        .filter(|leaf| leaf.entry.kind == LeafKind::Record)
        .collect()
}

/// The payload digests the records' leaves name, hex.
fn payload_digests(leaf: &LeafData) -> Vec<String> {
    leaf.entry
        .payload_digests
        .iter()
        .map(|digest| bonnie_core::ledger::hex(digest))
        .collect()
}

/// Mail delivered to a real Cyrus, fetched by the collector and archived sealed; `bonnie
/// verify` passes the archive, then names the record whose payload's sealed bytes changed.
fn bonnie_verify_passes_a_sealed_archive_and_names_a_payload_changed_by_one_byte(storage: Storage) {
    let lab = CyrusLab::start_prepared(storage, &[], &[JOHN], |cluster| {
        add_to_storage_table(&cluster.config(), KEY_SETTING);
        write_keys(cluster.path(), &[KEY_1], 0o600);
        if storage == Storage::Sqlite {
            // Messages over 4 KiB are handed over in the folder sqlite-storage reads.
            cluster.add_keys(
                "collector",
                "payload_dir = \"var/payloads\"\nmax_inline_bytes = 4096",
            );
        }
    });
    let mail = |secret: &str, lines: usize| {
        let headers = format!(
            "From: <{JOHN}>\r\nTo: <{JOHN}>\r\nSubject: evidence\r\nMessage-ID: <{lines}@example.org>\r\n"
        );
        String::from_utf8(message_with(&headers, secret, lines)).unwrap()
    };
    let small = mail("the small secret", 3);
    let large = mail("the large secret", 2000);
    lab.cyrus.lmtp(JOHN, &[JOHN], small.as_bytes());
    lab.cyrus.lmtp(JOHN, &[JOHN], large.as_bytes());
    lab.wait_until_archived();
    let cluster = &lab.cluster;
    let client = storages::open(&cluster.config());
    let leaves = record_leaves(cluster);
    let stored: Vec<String> = leaves.iter().flat_map(payload_digests).collect();
    let [small_digest, large_digest] = [&small, &large].map(|m| {
        let body = m.split_once("\r\n\r\n").unwrap().1;
        stored
            .iter()
            .find(|d| {
                client
                    .get_payload(d)
                    .unwrap()
                    .is_some_and(|bytes| bytes.ends_with(body.as_bytes()))
            })
            .unwrap_or_else(|| panic!("no payload holds the message: {stored:?}"))
            .clone()
    });
    drop(client);
    let kept = match &lab.archive().server {
        None => Kept::Sqlite(cluster.path().join("var/bonnie.db")),
        Some(server) => Kept::Search(server),
    };
    let sealed = kept.frame(&small_digest);
    assert_sealed(&sealed, "2026-01", small.as_bytes(), "the small secret");
    let large_file = payload::file(&cluster.path().join("var/payloads"), &large_digest);
    if storage == Storage::Sqlite {
        let file = std::fs::read(&large_file).unwrap();
        assert_sealed(&file[8..], "2026-01", large.as_bytes(), "the large secret");
    } else {
        assert_sealed(
            &kept.frame(&large_digest),
            "2026-01",
            large.as_bytes(),
            "the large secret",
        );
    }

    // No [ledger] key: no checkpoints, the records are checked against the leaves alone.
    let public_key = cluster.path().join("verifier.pub");
    let verifier = ArchiveKey::generate(&cluster.path().join("verifier.key"), "verifier.test");
    std::fs::write(&public_key, verifier.unwrap().public().to_string()).unwrap();
    let verify = || {
        let public_key = public_key.to_str().unwrap();
        let output = cluster.bonnie(&["verify", "--json", "--public-key", public_key]);
        let report = serde_json::from_slice::<Value>(&output.stdout);
        let report = report.unwrap_or_else(|_| panic!("no JSON: {}", process::describe(&output)));
        (output.status.success(), report)
    };
    let (passed, report) = verify();
    assert!(passed, "the untouched sealed archive: {report}");

    kept.set_sealed(&small_digest, &one_byte_changed(&sealed));
    let (passed, report) = verify();
    assert!(!passed, "a sealed byte changed: {report}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "payload altered", "{report}");
    let seq = leaves
        .iter()
        .find(|leaf| payload_digests(leaf).contains(&small_digest))
        .map(|leaf| leaf.seq);
    assert_eq!(findings[0]["seq"].as_u64(), seq, "{report}");
    kept.set_sealed(&small_digest, &sealed);
    let (passed, report) = verify();
    assert!(passed, "the sealed bytes put back: {report}");
}

on_both_storages!(bonnie_verify_passes_a_sealed_archive_and_names_a_payload_changed_by_one_byte);
