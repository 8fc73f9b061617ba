//! The e-discovery item documents of archived messages: one per payload, in collection
//! [`ITEMS`] keyed by the payload's digest, read from the message by bonnie-mail (decoded
//! subject and addresses, the Date, attachments' names, a Kolab object's type and UID), with
//! the body and attachment text handed to the storage's index and kept nowhere readable.
//!
//! Written when a handler moves a payload into the storage ([`store`], from
//! `collect::store_payloads`) and, for an archive made before items existed, from its log once
//! ([`index_logged`]). What changes with events (places, flags, deletion) is never in the
//! document: the searching side reads it from the log and trails.

use bonnie_core::{payload, time};
use bonnie_mail::{Address, Message};
use bonnie_plugin_api::{
    PluginError,
    items::{ExactField, INDEX_TEXT, ITEMS, IndexText, ItemDoc, ItemType},
    storage::{Record, StorageClient},
};
use serde_json::{Value, json};

use crate::objects;

/// The text of an item that its document does not keep (the storage indexes it and stores it
/// nowhere): what a search's body and bare-word terms look in, read again from the payload when
/// a term must be decided by the searching side rather than by the storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemText {
    /// The body text (every text part).
    pub body: String,
    /// The attachments' text.
    pub attachments: String,
}

/// The document and text of the message `bytes` (payload `digest`), first archived at
/// `first_seen_ms` (its date when it has no readable Date header). Never fails: what cannot be
/// read of a broken message is left out.
pub fn document(digest: &str, bytes: &[u8], first_seen_ms: i64) -> (ItemDoc, ItemText) {
    document_of(
        digest,
        &bonnie_mail::parse(bytes),
        bytes.len(),
        first_seen_ms,
    )
}

/// [`document`] of a message already read (`size`: its length in bytes).
pub fn document_of(
    digest: &str,
    message: &Message,
    size: usize,
    first_seen_ms: i64,
) -> (ItemDoc, ItemText) {
    let formatted = |list: &[Address]| -> Vec<String> {
        list.iter()
            .map(bonnie_mail::format_address)
            .filter(|a| !a.is_empty())
            .collect()
    };
    let mut from = formatted(&message.from);
    for sender in formatted(&message.sender) {
        if !from.contains(&sender) {
            from.push(sender);
        }
    }
    let from_domains = domains(message.from.iter().chain(&message.sender));
    let recipient_domains = domains(message.to.iter().chain(&message.cc).chain(&message.bcc));
    let kolab = objects::kolab_object(&message.header_map());
    let (body, attachments, text_truncated) = texts(message);
    let doc = ItemDoc {
        digest: digest.to_string(),
        item_type: kolab
            .as_ref()
            .map_or(ItemType::Mail, |(kind, _)| item_type(kind)),
        message_id: message.message_id.clone(),
        subject: message.subject.clone().unwrap_or_default(),
        from,
        to: formatted(&message.to),
        cc: formatted(&message.cc),
        bcc: formatted(&message.bcc),
        from_domains,
        recipient_domains,
        date_ms: message
            .date
            .as_deref()
            .and_then(time::parse_rfc3339_ms)
            .unwrap_or(first_seen_ms),
        size: size as u64,
        filenames: filenames(message),
        has_attachment: !message.attachments.is_empty(),
        object_uid: kolab.map(|(_, uid)| uid),
        text_truncated,
    };
    (doc, ItemText { body, attachments })
}

/// The item type of a Kolab type (`event`, `contact.distlist`...).
fn item_type(kolab_type: &str) -> ItemType {
    match kolab_type.split('.').next().unwrap_or_default() {
        "event" => ItemType::Event,
        "task" => ItemType::Task,
        "contact" | "distribution-list" => ItemType::Contact,
        "note" => ItemType::Note,
        "file" => ItemType::File,
        _ => ItemType::Other,
    }
}

/// The domains of these addresses, lower case, each once, in order.
fn domains<'a>(addresses: impl Iterator<Item = &'a Address>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for domain in addresses
        .filter_map(|a| a.address.as_deref())
        .filter_map(|a| a.rsplit_once('@'))
        .map(|(_, domain)| domain.trim().to_lowercase())
        .filter(|d| !d.is_empty())
    {
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    out
}

/// The attachments' names, those of attached messages' attachments included. An attached
/// message without a file name is named by bonnie-mail after its subject: that is no file
/// name, and stays out.
fn filenames(message: &Message) -> Vec<String> {
    let mut nested_subjects = message.messages.iter().map(|m| m.subject.as_deref());
    let mut out: Vec<String> = Vec::new();
    for attachment in &message.attachments {
        let subject = if attachment.media_type == "message/rfc822" {
            nested_subjects.next().flatten()
        } else {
            None
        };
        match attachment.name.as_deref() {
            Some(name) if !name.trim().is_empty() && Some(name) != subject => {
                out.push(name.to_string());
            }
            _ => {}
        }
    }
    out.extend(message.messages.iter().flat_map(filenames));
    out
}

/// The body text (the message's own text parts) and the attachments' text (text-like
/// attachments, and attached messages: their subject, addresses, bodies and attachments),
/// each part cut at bonnie-mail's indexing limit; true if a part was cut.
fn texts(message: &Message) -> (String, String, bool) {
    let limit = bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES;
    let body = Message {
        bodies: message.bodies.clone(),
        ..Message::default()
    }
    .search_text(limit);
    let attachments = Message {
        bodies: Vec::new(),
        ..unnamed(message)
    }
    .search_text(limit);
    (
        body.text,
        attachments.text,
        body.truncated || attachments.truncated,
    )
}

/// The parts of `message` search reads, its attachments (and those of its attached messages)
/// without their names: the names are the document's `filenames`, not attachment text.
fn unnamed(message: &Message) -> Message {
    Message {
        subject: message.subject.clone(),
        from: message.from.clone(),
        to: message.to.clone(),
        cc: message.cc.clone(),
        bodies: message.bodies.clone(),
        attachments: message
            .attachments
            .iter()
            .map(|a| bonnie_mail::Attachment {
                name: None,
                ..a.clone()
            })
            .collect(),
        messages: message.messages.iter().map(unnamed).collect(),
        ..Message::default()
    }
}

/// The record of an item document: keyed by digest, at its date, with its index terms and its
/// text to index (`extra.index_text`).
pub fn record(doc: &ItemDoc, text: &ItemText) -> Result<Record, PluginError> {
    let body = serde_json::to_value(doc).map_err(|e| {
        PluginError::transient(format!(
            "the item document of {} does not serialize: {e}",
            doc.digest
        ))
    })?;
    let type_name = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("mail")
        .to_string();
    let term = ExactField::index_field;
    let mut record = Record::new(ITEMS, &doc.digest, &body)
        .at(doc.date_ms)
        .indexed(term(ExactField::Type), &type_name);
    if let Some(id) = &doc.message_id {
        record = record.indexed(term(ExactField::MessageId), id);
    }
    for domain in &doc.from_domains {
        record = record.indexed(term(ExactField::FromDomain), domain);
    }
    for domain in &doc.recipient_domains {
        record = record.indexed(term(ExactField::RecipientDomain), domain);
    }
    if let Some(uid) = &doc.object_uid {
        record = record.indexed(term(ExactField::ObjectUid), uid);
    }
    let index_text = IndexText {
        body: text.body.clone(),
        attachments: text.attachments.clone(),
    };
    record.extra = json!({ INDEX_TEXT: index_text }).to_string().into();
    Ok(record)
}

/// Writes the item document of payload `digest` (the message `bytes`, first archived at
/// `first_seen_ms`) unless the storage has it already with the same or an earlier date (a
/// redelivered job, the same message archived again): the document of a message is the same
/// whenever it is read, but for a message without a Date, whose date is when it was first
/// archived.
pub fn store(
    storage: &StorageClient,
    digest: &str,
    bytes: &[u8],
    first_seen_ms: i64,
) -> Result<(), PluginError> {
    store_message(
        storage,
        digest,
        &bonnie_mail::parse(bytes),
        bytes.len(),
        first_seen_ms,
    )
}

/// [`store`] of a message already read (`size`: its length in bytes).
pub fn store_message(
    storage: &StorageClient,
    digest: &str,
    message: &Message,
    size: usize,
    first_seen_ms: i64,
) -> Result<(), PluginError> {
    let (doc, text) = document_of(digest, message, size, first_seen_ms);
    let stored_ms = storage
        .get(ITEMS, digest)?
        .and_then(|r| r.time_ms.into_option());
    if stored_ms.is_some_and(|stored| stored <= doc.date_ms) {
        return Ok(());
    }
    storage.put(record(&doc, &text)?)
}

/// Records read per page by [`index_logged`] (log entries) and [`reindex_all`] (documents).
const LOG_PAGE: u32 = 1000;

/// Writes the item documents of the payloads the log names that have none (an archive made
/// before items existed), walking the log oldest first, so that a document's first-seen time
/// is the first entry naming its payload. A payload no longer kept (purged) is passed over.
/// `progress` is told the log entries read after each page and at the end. How many documents
/// were written.
pub fn index_logged(
    storage: &StorageClient,
    mut progress: impl FnMut(u64),
) -> Result<u64, PluginError> {
    let mut written = 0u64;
    let visited = crate::log_pages::walk(
        storage,
        (None, None),
        LOG_PAGE,
        |entry| {
            let Ok(logged) = serde_json::from_str::<Value>(entry.body.as_str()) else {
                return Ok(());
            };
            let first_seen_ms = logged
                .as_object()
                .and_then(crate::record::event_ms)
                .or(entry.time_ms.into_option())
                .unwrap_or_else(time::now_ms);
            for digest in payload::digests_of_record(&logged) {
                if storage.get(ITEMS, &digest)?.is_some() {
                    continue;
                }
                let Some(bytes) = storage.get_payload(&digest)? else {
                    continue;
                };
                store(storage, &digest, &bytes, first_seen_ms)?;
                written += 1;
            }
            Ok::<_, PluginError>(())
        },
        |_, visited| progress(visited),
    )?;
    progress(visited);
    Ok(written)
}

/// Writes every item document again from its payload, as this bonnie reads and indexes
/// messages: after an upgrade that changed how (the release notes say when; decisions 89 and
/// 90). Walks the documents in date order, a page at a time, memory flat; a document keeps
/// its date (the Date header, else its first-seen time, which it carries). A document whose
/// payload is no longer kept (purged) stays as it is. `progress` is told the documents read
/// after each page and at the end.
pub fn reindex_all(
    storage: &StorageClient,
    mut progress: impl FnMut(u64),
) -> Result<Reindexed, PluginError> {
    let mut done = Reindexed::default();
    let read = crate::log_pages::walk_collection(
        storage,
        ITEMS,
        (None, None),
        LOG_PAGE,
        |record| {
            // The record's key is the digest and its time the document's date, whether or not
            // an older bonnie's document still reads as one.
            let digest = record.key.as_str();
            let Some(bytes) = storage.get_payload(digest)? else {
                done.payload_gone += 1;
                return Ok::<_, PluginError>(());
            };
            let first_seen_ms = record.time_ms.into_option().unwrap_or_else(time::now_ms);
            let (doc, text) = document_of(
                digest,
                &bonnie_mail::parse(&bytes),
                bytes.len(),
                first_seen_ms,
            );
            storage.put(self::record(&doc, &text)?)?;
            done.rewritten += 1;
            Ok(())
        },
        |_, read| progress(read),
    )?;
    progress(read);
    Ok(done)
}

/// What [`reindex_all`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reindexed {
    /// Documents written again.
    pub rewritten: u64,
    /// Documents left as they were: their payload is no longer kept.
    pub payload_gone: u64,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    use bonnie_plugin_api::{
        OutputItem, RecordQuery, Storage,
        items::{ItemQuery, TextField, TextMatch},
        plugin::storage_box,
    };
    use bonnie_sqlite_storage::SqliteStorage;

    use super::*;

    fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail")
    }

    /// The corpus's messages with what make.py wrote down of each.
    fn corpus() -> Vec<(Value, Vec<u8>)> {
        let expected: Vec<Value> =
            serde_json::from_slice(&std::fs::read(corpus_dir().join("expected.json")).unwrap())
                .unwrap();
        expected
            .into_iter()
            .map(|e| {
                let bytes = std::fs::read(corpus_dir().join(e["file"].as_str().unwrap())).unwrap();
                (e, bytes)
            })
            .collect()
    }

    fn strings(value: &Value) -> Vec<String> {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    fn folded_contains(text: &str, word: &str) -> bool {
        bonnie_mail::fold_for_search(text).contains(&bonnie_mail::fold_for_search(word))
    }

    #[test]
    fn every_message_of_the_corpus_gets_its_decoded_fields_and_its_words_in_the_right_text() {
        for (expected, bytes) in corpus() {
            let file = expected["file"].as_str().unwrap();
            let (doc, text) = document("d1", &bytes, 7);
            assert_eq!(doc.subject, expected["subject"], "{file}");
            assert_eq!(doc.from, strings(&expected["from"]), "{file}");
            assert_eq!(doc.to, strings(&expected["to"]), "{file}");
            assert_eq!(doc.cc, strings(&expected["cc"]), "{file}");
            assert_eq!(doc.message_id.as_deref(), expected["message_id"].as_str());
            let date = time::parse_rfc3339_ms(expected["date"].as_str().unwrap()).unwrap();
            assert_eq!(doc.date_ms, date, "{file}");
            assert_eq!(doc.size, bytes.len() as u64);
            assert_eq!(doc.item_type, ItemType::Mail);
            assert_eq!(doc.from_domains, ["example.org"], "{file}");
            assert_eq!(doc.recipient_domains, ["example.org"], "{file}");
            let word = expected["word"].as_str().unwrap();
            assert!(
                folded_contains(&text.body, word),
                "{file}: {word} in the body"
            );
            assert!(!folded_contains(&text.attachments, word), "{file}");
            let attachments = strings(&expected["attachments"]);
            // make.py lists no attachments of the damaged message (see the test below).
            if expected["damaged"] != true {
                assert_eq!(doc.filenames, attachments, "{file}");
                assert_eq!(doc.has_attachment, !attachments.is_empty(), "{file}");
            }
            if let Some(word) = expected["attachment_word"].as_str() {
                assert!(folded_contains(&text.attachments, word), "{file}: {word}");
                assert!(!folded_contains(&text.body, word), "{file}: {word}");
            }
            if let Some(word) = expected["nested_word"].as_str() {
                let subject = expected["nested_subject"].as_str().unwrap();
                assert!(folded_contains(&text.attachments, word), "{file}: {word}");
                assert!(folded_contains(&text.attachments, subject), "{file}");
            }
            assert!(!doc.text_truncated);
            // The file names are the document's, not attachment text.
            for name in &attachments {
                assert!(!text.attachments.contains(name.as_str()), "{file}: {name}");
            }
        }
    }

    #[test]
    fn a_broken_message_keeps_what_can_be_read() {
        let bytes = std::fs::read(corpus_dir().join("broken.eml")).unwrap();
        let (doc, text) = document("d", &bytes, 7);
        assert_eq!(doc.subject, "Kaputte Nachricht – damaged");
        assert!(folded_contains(&text.body, "Fledermausgrotte"));
        assert!(doc.has_attachment, "data.bin is still an attachment");
        assert_eq!(doc.filenames, ["data.bin"]);

        // Bytes that are no message at all: a document all the same, dated when first seen.
        let (doc, _) = document("d", b"\x00\xffnot a message: wombat", 1_234);
        assert_eq!(doc.date_ms, 1_234);
        assert_eq!(doc.size, 23);
        assert!(doc.from.is_empty() && doc.message_id.is_none());

        // Headers only, a Date that is no date, an address without a domain.
        let (doc, _) = document(
            "d",
            b"From: nobody\r\nTo: =?utf-8?q?J=C3=B6rg?= <JOERG@Example.ORG>\r\nDate: yesterday\r\n\r\n",
            99,
        );
        assert_eq!(doc.date_ms, 99);
        assert_eq!(doc.to, ["Jörg <JOERG@Example.ORG>"]);
        assert_eq!(doc.recipient_domains, ["example.org"]);
        assert!(doc.from_domains.is_empty());
    }

    /// A Kolab event as Roundcube's Kolab plugins store it (Subject = the object's UID).
    const KOLAB_EVENT: &str = "From: john.doe@example.org\r\n\
        To: john.doe@example.org\r\n\
        Date: Sat, 28 Nov 2026 17:13:37 +0000\r\n\
        Subject: 5A637BF7-D0A8-4AB3-91F3-6C7B4B6F6D3B\r\n\
        X-Kolab-Type: application/x-vnd.kolab.event\r\n\
        X-Kolab-Mime-Version: 3.0\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\
        \r\n\
        --=_b\r\n\
        Content-Type: text/plain; charset=ISO-8859-1\r\n\
        \r\n\
        This is a Kolab Groupware object.\r\n\
        --=_b\r\n\
        Content-Type: application/calendar+xml; charset=UTF-8; name=kolab.xml\r\n\
        Content-Disposition: attachment; filename=kolab.xml\r\n\
        \r\n\
        <icalendar><vcalendar><components><vevent><properties>\
        <summary><text>Quartalsbesprechung</text></summary>\
        </properties></vevent></components></vcalendar></icalendar>\r\n\
        --=_b--\r\n";

    #[test]
    fn a_kolab_object_is_an_item_of_its_type_with_its_uid() {
        let (doc, text) = document("d", KOLAB_EVENT.as_bytes(), 0);
        assert_eq!(doc.item_type, ItemType::Event);
        assert_eq!(
            doc.object_uid.as_deref(),
            Some("5A637BF7-D0A8-4AB3-91F3-6C7B4B6F6D3B")
        );
        assert_eq!(doc.filenames, ["kolab.xml"]);
        assert!(folded_contains(&text.attachments, "quartalsbesprechung"));
        assert!(folded_contains(&text.body, "groupware"));
        let task = KOLAB_EVENT.replace("kolab.event", "kolab.task");
        assert_eq!(
            document("d", task.as_bytes(), 0).0.item_type,
            ItemType::Task
        );
        let list = KOLAB_EVENT.replace("kolab.event", "kolab.contact.distlist");
        assert_eq!(
            document("d", list.as_bytes(), 0).0.item_type,
            ItemType::Contact
        );
        let journal = KOLAB_EVENT.replace("kolab.event", "kolab.journal");
        assert_eq!(
            document("d", journal.as_bytes(), 0).0.item_type,
            ItemType::Other
        );
    }

    #[test]
    fn a_part_beyond_the_indexing_limit_is_cut_and_the_cut_reported() {
        let limit = bonnie_mail::DEFAULT_MAX_INDEXED_TEXT_BYTES;
        let mut message =
            String::from("Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        // Two-byte characters, so the cut falls inside one and must step back.
        message.push('x');
        message.push_str(&"ä".repeat(limit));
        let (doc, text) = document("d", message.as_bytes(), 0);
        assert!(doc.text_truncated);
        assert!(text.body.len() <= limit && text.body.len() > limit - 2);
        let (small, _) = document("d", b"Subject: small\r\n\r\nsmall", 0);
        assert!(!small.text_truncated);
    }

    /// A real SQLite storage in a temporary folder: the client handlers use, and a second
    /// handle on the same file for appending to its log as the worker does.
    /// A new archive's storage and a second handle on its file (for the log).
    pub(crate) fn storage() -> (tempfile::TempDir, StorageClient, SqliteStorage) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let client = StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap()));
        let log = SqliteStorage::open(&path, 5000).unwrap();
        (dir, client, log)
    }

    fn terms(record: &Record) -> Vec<(String, String)> {
        let mut terms: Vec<(String, String)> = record
            .index
            .iter()
            .map(|t| (t.field.to_string(), t.value.to_string()))
            .collect();
        terms.sort();
        terms
    }

    /// The time of the stored item document of `digest`.
    fn stored_at(storage: &StorageClient, digest: &str) -> Option<i64> {
        let stored = storage.get(ITEMS, digest).unwrap();
        stored.and_then(|r| r.time_ms.into_option())
    }

    #[test]
    fn a_stored_document_is_found_by_its_index_terms_and_stored_once() {
        let (_dir, storage, _) = storage();
        let bytes = std::fs::read(corpus_dir().join("utf-8.eml")).unwrap();
        let digest = storage.put_payload(&bytes).unwrap();
        store(&storage, &digest, &bytes, 5).unwrap();
        let stored = storage.get(ITEMS, &digest).unwrap().unwrap();
        let (doc, text) = document(&digest, &bytes, 5);
        assert_eq!(stored.json().unwrap(), serde_json::to_value(&doc).unwrap());
        assert_eq!(stored.time_ms.into_option(), Some(doc.date_ms));
        assert_eq!(
            terms(&stored),
            [
                ("from_domain", "example.org"),
                ("message_id", "<utf-8@corpus.example.org>"),
                ("recipient_domain", "example.org"),
                ("type", "mail"),
            ]
            .map(|(f, v)| (f.to_string(), v.to_string()))
        );
        // The text goes to the index with the record, never into its body.
        let written = record(&doc, &text).unwrap();
        let extra: Value = serde_json::from_str(written.extra.as_str()).unwrap();
        assert!(folded_contains(
            extra[INDEX_TEXT]["body"].as_str().unwrap(),
            "quittungsbeleg"
        ));
        assert!(!stored.body.contains("Quittungsbeleg"));
        // ...and the storage finds the message by it, in the field it belongs to.
        let finds_it = |field, word: &str| {
            let query = RecordQuery {
                collection: ITEMS.to_string(),
                items: Some(ItemQuery::Text {
                    field,
                    text: TextMatch::Words(word.to_string()),
                }),
                ..Default::default()
            };
            let found = storage.query(&query).unwrap();
            let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
            keys == [digest.as_str()]
        };
        assert!(finds_it(TextField::Body, "QUITTUNGSBELEG"));
        assert!(finds_it(TextField::Body, "maulwurfshügel"));
        assert!(finds_it(TextField::Filename, "prüfbericht"));
        assert!(!finds_it(TextField::Body, "prüfbericht"));

        // A message without a Date keeps the first time it was seen, whatever comes after.
        let undated = b"Subject: undated\r\n\r\nno date";
        let digest = storage.put_payload(undated).unwrap();
        store(&storage, &digest, undated, 2_000).unwrap();
        store(&storage, &digest, undated, 3_000).unwrap();
        assert_eq!(stored_at(&storage, &digest), Some(2_000));
        store(&storage, &digest, undated, 1_000).unwrap();
        assert_eq!(
            stored_at(&storage, &digest),
            Some(1_000),
            "an earlier sighting is the first"
        );
    }

    #[test]
    fn the_payloads_a_handler_keeps_get_their_documents() {
        let (_dir, storage, _) = storage();
        let bytes = std::fs::read(corpus_dir().join("koi8-r.eml")).unwrap();
        let mut record: crate::record::Object = serde_json::from_value(json!({
            "event": "MessageAppend", "@timestamp": "2026-12-01T09:00:00.000Z",
            "messageContent": { "4": {
                "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes),
                "encoding": "base64", "size": bytes.len(),
            }},
        }))
        .unwrap();
        crate::collect::store_payloads(&storage, &mut record).unwrap();
        let digest = record["payload_digest"].as_str().unwrap();
        let stored = storage.get(ITEMS, digest).unwrap().unwrap().json().unwrap();
        assert_eq!(stored["subject"], "Отчёт за квартал");
        assert_eq!(stored["digest"], digest);
    }

    #[test]
    fn an_archive_made_before_items_gets_the_documents_of_its_logged_payloads_once() {
        let (_dir, storage, log) = storage();
        let dated = std::fs::read(corpus_dir().join("iso-8859-1.eml")).unwrap();
        let undated = b"Subject: undated\r\n\r\nno date".to_vec();
        let (a, b) = (
            storage.put_payload(&dated).unwrap(),
            storage.put_payload(&undated).unwrap(),
        );
        let gone = payload::digest(b"a payload retention purged");
        let entry = |job: &str, at: &str, digests: &[&str]| {
            let payloads: Vec<Value> = digests
                .iter()
                .enumerate()
                .map(|(i, d)| json!({ "uid": i + 1, "digest": d, "size": 1 }))
                .collect();
            let record =
                json!({ "event": "MessageAppend", "@timestamp": at, "payloads": payloads });
            OutputItem::new(job, record.to_string())
        };
        log.append_log(vec![
            entry("j1", "2026-12-01T10:00:00.000Z", &[&b, &gone]),
            entry("j2", "2026-12-01T11:00:00.000Z", &[&a, &b]),
            OutputItem::new(
                "j3",
                r#"{"event":"Login","@timestamp":"2026-12-01T12:00:00.000Z"}"#,
            ),
        ])
        .unwrap();
        let mut read = Vec::new();
        assert_eq!(index_logged(&storage, |n| read.push(n)).unwrap(), 2);
        assert_eq!(read, [3], "the entries read, told at the end of the walk");
        let first_seen = time::parse_rfc3339_ms("2026-12-01T10:00:00.000Z");
        assert_eq!(
            stored_at(&storage, &b),
            first_seen,
            "the first entry naming it"
        );
        assert_eq!(
            stored_at(&storage, &a),
            time::parse_rfc3339_ms("2026-12-01T08:15:00Z")
        );
        assert!(storage.get(ITEMS, &gone).unwrap().is_none());
        assert_eq!(index_logged(&storage, |_| {}).unwrap(), 0, "nothing more");
    }

    /// Documents an older bonnie indexed its own way are written again from their payloads,
    /// each once, keeping their dates; one whose payload was purged stays and is counted.
    #[test]
    fn every_item_document_is_written_again_from_its_payload() {
        let (_dir, storage, _log) = storage();
        let dated = std::fs::read(corpus_dir().join("iso-8859-1.eml")).unwrap();
        let undated = "Subject: Καλημέρα\r\n\r\nΟδός".as_bytes().to_vec();
        let first_seen = 1_780_000_000_123;
        let mut digests = Vec::new();
        for bytes in [&dated, &undated] {
            let digest = storage.put_payload(bytes).unwrap();
            store(&storage, &digest, bytes, first_seen).unwrap();
            digests.push(digest);
        }
        let stale = |digest: &str, date_ms: i64| {
            let (mut doc, _) = document(digest, b"Subject: stale\r\n\r\nveraltet", date_ms);
            doc.date_ms = date_ms;
            let text = ItemText {
                body: "veraltet".into(),
                attachments: String::new(),
            };
            storage.put(record(&doc, &text).unwrap()).unwrap();
        };
        let dates: Vec<Option<i64>> = digests.iter().map(|d| stored_at(&storage, d)).collect();
        for (digest, date) in digests.iter().zip(&dates) {
            stale(digest, date.unwrap());
        }
        let gone = payload::digest(b"purged");
        stale(&gone, 5);
        let found = |word: &str| -> Vec<String> {
            let items = ItemQuery::Text {
                field: TextField::Any,
                text: TextMatch::Words(word.into()),
            };
            let query = RecordQuery {
                collection: ITEMS.into(),
                items: Some(items),
                all: true,
                ..RecordQuery::default()
            };
            let mut keys: Vec<String> = storage
                .query(&query)
                .unwrap()
                .into_iter()
                .map(|r| r.key.to_string())
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(found("veraltet").len(), 3, "the stale index");
        let mut told = Vec::new();
        let done = reindex_all(&storage, |n| told.push(n)).unwrap();
        assert_eq!(
            done,
            Reindexed {
                rewritten: 2,
                payload_gone: 1
            }
        );
        assert_eq!(told.last(), Some(&3));
        assert_eq!(found("veraltet"), [gone]);
        assert_eq!(found("καλημερα"), [digests[1].clone()]);
        assert_eq!(found("οδοσ"), [digests[1].clone()]);
        let again: Vec<Option<i64>> = digests.iter().map(|d| stored_at(&storage, d)).collect();
        assert_eq!(again, dates, "each keeps its date");
        assert_eq!(
            dates[1],
            Some(first_seen),
            "the undated one its first-seen time"
        );
    }
}
