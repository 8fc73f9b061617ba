//! The mail corpus of tests/fixtures/mail (one message per legacy charset: ISO-8859-1/-2/-15,
//! windows-1251/-1252, KOI8-R, ISO-2022-JP, Shift_JIS, GB2312, Big5, UTF-8; RFC 2231 file
//! names, a nested message, broken MIME) appended to a real Cyrus IMAP 3.6, into folders with
//! non-ASCII names too ("Büro", "Входящие", "日本語"), one of them also delivered over LMTP
//! and copied. The archive must hold every subject, address, date and Message-ID decoded as
//! make.py wrote them down (not Cyrus's ENVELOPE, which masks 8-bit bytes), and the storage's
//! full-text search must find each message by a word of its body, however it is spelled.

use std::{collections::BTreeMap, path::PathBuf};

use base64::Engine;
use bonnie_core::payload;
use bonnie_imap::quote;
use bonnie_plugin_api::{RecordQuery, Storage};
use bonnie_sqlite_storage::SqliteStorage;
use bonnie_tests::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    paths,
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 section 5.1.3): printable ASCII as it
/// is (`&` as `&-`), every other run as `&` + base64 of its UTF-16 (`,` for `/`) + `-`.
fn utf7_imap(name: &str) -> String {
    bonnie_imap::utf7::encode(name)
}

#[test]
fn modified_utf7_names_are_encoded_as_rfc_3501_says() {
    assert_eq!(utf7_imap("Büro"), "B&APw-ro");
    assert_eq!(utf7_imap("日本語"), "&ZeVnLIqe-");
    assert_eq!(utf7_imap("A&B"), "A&-B");
    assert_eq!(utf7_imap("INBOX"), "INBOX");
}

struct Entry {
    expected: Value,
    bytes: Vec<u8>,
}

fn corpus() -> Vec<Entry> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail");
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    expected
        .into_iter()
        .map(|expected| {
            let bytes = std::fs::read(dir.join(expected["file"].as_str().unwrap())).unwrap();
            Entry { expected, bytes }
        })
        .collect()
}

/// The log entries the storage's full-text search finds for `text`, as records.
fn search(storage: &SqliteStorage, text: &str) -> Vec<Value> {
    let query = RecordQuery {
        collection: "log".to_string(),
        text: Some(text.to_string()),
        ..RecordQuery::default()
    };
    storage
        .query(query)
        .unwrap()
        .iter()
        .map(|r| r.json().unwrap())
        .collect()
}

#[test]
fn a_corpus_in_every_charset_is_archived_decoded_and_found_by_a_word_of_its_body() {
    let corpus = corpus();
    let ldap = Slapd::start();
    let mut cyrus = Cyrus::new();
    let cluster = Cluster::for_cyrus(&cyrus, &ldap, &[]);
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let (dealer, config) = (paths::bin("bonnie-dealer"), cluster.config());
    cyrus.start(Notify::Exec {
        dealer: &dealer,
        config: &config,
    });
    let _collector = cluster.start_collector("collector");

    let mut admin = cyrus.login(ADMIN);
    admin
        .run(&format!("CREATE {}", quote(&format!("user/{JOHN}"))), &[])
        .unwrap();
    admin.logout().unwrap();
    let mut john = cyrus.login(JOHN);
    let folders: std::collections::BTreeSet<&str> = corpus
        .iter()
        .map(|e| e.expected["folder"].as_str().unwrap())
        .collect();
    for folder in folders.iter().filter(|f| **f != "INBOX") {
        john.run(&format!("CREATE {}", quote(&utf7_imap(folder))), &[])
            .unwrap_or_else(|e| panic!("CREATE {folder}: {e}"));
    }
    for entry in &corpus {
        let folder = entry.expected["folder"].as_str().unwrap();
        john.append(folder, &Default::default(), &entry.bytes)
            .unwrap_or_else(|e| panic!("APPEND {}: {e}", entry.expected["file"]));
    }
    // A copy (HEADER) of the folder's messages, and the KOI8-R one delivered over LMTP
    // (MessageNew).
    let koi8 = corpus
        .iter()
        .find(|e| e.expected["file"] == "koi8-r.eml")
        .unwrap();
    john.select("Входящие").unwrap();
    john.run(&format!("UID COPY 1:* {}", quote(&utf7_imap("Büro"))), &[])
        .unwrap();
    john.logout().unwrap();
    cyrus.lmtp("sergey@example.org", &[JOHN], &koi8.bytes);

    cyrus.wait_until_archived(&cluster);

    let events = cluster.log_records();
    let by_event_and_digest = |event: &str, digest: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["event"] == event && e["payload_digest"] == digest)
            .collect()
    };
    let storage = SqliteStorage::open(&cluster.path().join("var/bonnie.db"), 5000).unwrap();
    let mut found_by_word = BTreeMap::new();
    for entry in &corpus {
        let e = &entry.expected;
        let file = e["file"].as_str().unwrap();
        let digest = payload::digest(&entry.bytes);
        let mut records = by_event_and_digest("MessageAppend", &digest);
        if file == "koi8-r.eml" {
            // LMTP adds its own header fields: the delivery is a message of its own bytes.
            records.extend(
                events
                    .iter()
                    .filter(|r| r["event"] == "MessageNew" && r["message_id"] == e["message_id"]),
            );
            assert_eq!(records.len(), 2, "{file}: the append and the delivery");
        }
        assert!(!records.is_empty(), "{file}: not archived");
        for record in records {
            assert_eq!(record["message_fields_from"], "message", "{file}: {record}");
            assert_eq!(record["subject"], e["subject"], "{file}");
            for field in ["from", "to", "message_id", "date"] {
                assert_eq!(record[field], e[field], "{file}: {field}");
            }
            let cc = record.get("cc").cloned().unwrap_or(Value::Array(vec![]));
            assert_eq!(cc, e["cc"], "{file}: cc");
            assert!(
                record["vnd.cmu.envelope"].is_string(),
                "{file}: Cyrus's envelope stays beside"
            );
            // Broken MIME is read as far as it goes, and the record says so.
            assert_eq!(
                record.get("message_damaged").is_some(),
                e["damaged"] == true,
                "{file}: {:?}",
                record.get("message_warnings")
            );
            if let Some(names) = e["attachments"].as_array() {
                let recorded: Vec<&Value> = record["attachments"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{file}: no attachments in {record}"))
                    .iter()
                    .map(|a| &a["name"])
                    .collect();
                for name in names {
                    assert!(
                        recorded.contains(&name),
                        "{file}: {name} not in {recorded:?}"
                    );
                }
            }
        }
        // Found by a word of its body, as written and folded.
        let word = e["word"].as_str().unwrap();
        for spelling in [
            word.to_string(),
            word.to_uppercase(),
            bonnie_mail::fold_for_search(word),
        ] {
            let hits = search(&storage, &spelling);
            assert!(
                hits.iter().any(|h| h["payload_digest"] == digest.as_str()),
                "{file}: {spelling:?} finds {:?}",
                hits.iter().map(|h| &h["subject"]).collect::<Vec<_>>()
            );
        }
        for key in ["attachment_word", "nested_word"] {
            if let Some(word) = e[key].as_str() {
                assert!(
                    search(&storage, word)
                        .iter()
                        .any(|h| h["payload_digest"] == digest.as_str()),
                    "{file}: {key} {word:?}"
                );
            }
        }
        if let Some(names) = e["attachments"].as_array() {
            for name in names {
                assert!(
                    search(&storage, name.as_str().unwrap())
                        .iter()
                        .any(|h| h["payload_digest"] == digest.as_str()),
                    "{file}: attachment name {name}"
                );
            }
        }
        found_by_word.insert(file, word);
    }
    assert_eq!(found_by_word.len(), corpus.len());

    // "grusse", "Grüße" and "GRÜSSE" find the same message (ISO-8859-1, quoted-printable).
    let latin1 = payload::digest(&corpus[0].bytes);
    for spelling in ["grusse", "Grüße", "GRÜSSE", "GRÜẞE"] {
        assert!(
            search(&storage, spelling)
                .iter()
                .any(|h| h["payload_digest"] == latin1.as_str()),
            "{spelling}"
        );
    }

    // The copy of both messages of "Входящие" (windows-1251, KOI8-R): each one's headers
    // decoded (HEADER), the record's fields those of its first message.
    let copy = events
        .iter()
        .find(|e| e["event"] == "vnd.cmu.MessageCopy")
        .expect("the copy's record");
    let copied: Vec<&Entry> = corpus
        .iter()
        .filter(|c| c.expected["folder"] == "Входящие")
        .collect();
    let subjects: std::collections::BTreeSet<&str> = copy["messageHeaders"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|h| h["Subject"].as_str())
        .collect();
    assert_eq!(
        subjects,
        copied
            .iter()
            .filter_map(|c| c.expected["subject"].as_str())
            .collect(),
        "{copy}"
    );
    let first = copied
        .iter()
        .find(|c| c.expected["message_id"] == copy["message_id"])
        .expect("the copy's first message");
    assert_eq!(copy["subject"], first.expected["subject"], "{copy}");
    assert_eq!(copy["from"], first.expected["from"]);
    assert_eq!(copy["message_fields_from"], "message");

    // The folders with non-ASCII names hold their messages.
    for folder in ["Büro", "Входящие", "日本語"] {
        let n = events
            .iter()
            .filter(|e| {
                e["event"] == "MessageAppend"
                    && e["folder"]
                        .as_str()
                        .is_some_and(|f| f.contains(folder) || f.contains(&utf7_imap(folder)))
            })
            .count();
        let expected = corpus
            .iter()
            .filter(|c| c.expected["folder"] == folder)
            .count();
        assert_eq!(n, expected, "{folder}");
    }
}

/// The same corpus through es-storage (osmem-server): each log document carries the folded
/// text of its message, and the storage's search finds each message by a word of its body in
/// any spelling; a part over `max_indexed_text_bytes` is indexed in part and marked.
#[test]
fn es_storage_finds_the_corpus_by_a_word_of_each_body() {
    use bonnie_tests::{search_server::SearchServer, worker::WorkerLab};
    let corpus = corpus();
    let server = SearchServer::start();
    let lab = WorkerLab::on_elasticsearch(
        &server.url,
        &["bonnie-messageappend"],
        "",
        "max_indexed_text_bytes = 4096",
        "",
    );
    // As the collector leaves them: each message fetched, as base64.
    let huge = {
        let mut bytes =
            b"Subject: huge\r\nMessage-ID: <huge@corpus.example.org>\r\n\r\nAnfangswort ".to_vec();
        bytes.extend(std::iter::repeat_n(b"x ".as_slice(), 4096).flatten());
        bytes.extend_from_slice(b"Schlusswort\r\n");
        bytes
    };
    let messages: Vec<&[u8]> = corpus
        .iter()
        .map(|e| e.bytes.as_slice())
        .chain([huge.as_slice()])
        .collect();
    let notifications: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let uid = i + 1;
            serde_json::json!({
                "event": "MessageAppend",
                "timestamp": "2026-12-01T08:15:01.000Z",
                "uri": format!("imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=7/;UID={uid}"),
                "user": JOHN,
                "messageContent": { uid.to_string(): {
                    "encoding": "base64",
                    "data": base64::engine::general_purpose::STANDARD.encode(bytes),
                    "size": bytes.len(),
                    "digest": payload::digest(bytes),
                } },
            })
            .to_string()
        })
        .collect();
    lab.notifications(&notifications);
    lab.run();
    let settings: bonnie_es::Settings =
        serde_json::from_value(serde_json::json!({ "url": server.url })).unwrap();
    let es = bonnie_es::Es::new(settings, &lab.path().join("var/dead.jsonl")).unwrap();
    let search = |text: &str| -> Vec<(Value, String)> {
        let query = RecordQuery {
            collection: "log".to_string(),
            text: Some(text.to_string()),
            ..RecordQuery::default()
        };
        es.search_log(&query)
            .unwrap()
            .iter()
            .map(|r| (r.json().unwrap(), r.extra.to_string()))
            .collect()
    };
    for entry in &corpus {
        let digest = payload::digest(&entry.bytes);
        let word = entry.expected["word"].as_str().unwrap();
        for spelling in [word.to_string(), word.to_uppercase()] {
            assert!(
                search(&spelling)
                    .iter()
                    .any(|(h, _)| h["payload_digest"] == digest.as_str()),
                "{}: {spelling:?}",
                entry.expected["file"]
            );
        }
    }
    for spelling in ["grusse", "Grüße", "GRÜSSE"] {
        let digest = payload::digest(&corpus[0].bytes);
        assert!(
            search(spelling)
                .iter()
                .any(|(h, _)| h["payload_digest"] == digest.as_str()),
            "{spelling}"
        );
    }
    let cut = search("anfangswort");
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].1, r#"{"text_truncated":true}"#);
    assert!(search("schlusswort").is_empty(), "beyond the limit");
}
