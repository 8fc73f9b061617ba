//! E-discovery item queries answered alike by sqlite-storage and by es-storage on
//! osmem-server, each loaded from a plugin directory as the worker loads it: a corpus of item
//! documents in German, Russian, Japanese, Greek and English (addresses with display names,
//! attachment names, dates and sizes across a range) and one of hostile text (FTS5 syntax, a
//! 100 KB word), then every kind of [`ItemQuery`] (nested And/Or/Not, words, phrases,
//! prefixes, each text field, exact fields, ranges with open bounds) gets the digests written
//! here, in the same order, from both and from the reference evaluator
//! (`bonnie_discovery::evaluate::matches_item_query`); a replaced item is found by its new
//! text only, a deleted one not at all.

use std::path::Path;

use bonnie_discovery::{evaluate::matches_item_query, item::ItemText};
use bonnie_plugin_api::{
    Record,
    items::{
        ExactField, INDEX_TEXT, ITEMS, ItemDoc, ItemQuery, ItemType, RangeField, TextField,
        TextMatch,
    },
    storage::{RecordQuery, StorageClient},
};
use bonnie_tests::{paths, search_server::SearchServer, storages};
use serde_json::json;

/// 2025-01-01T00:00:00Z.
const JAN_2025: i64 = 1_735_689_600_000;
const DAY: i64 = 86_400_000;

/// Item `n`'s digest: sorted by `n`.
fn digest(n: usize) -> String {
    format!("{n:02}{}", "ab".repeat(31))
}

fn addresses(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

fn domains(list: &[&str]) -> Vec<String> {
    list.iter()
        .map(|a| {
            let address = a.rsplit('<').next().unwrap().trim_end_matches('>');
            address.rsplit('@').next().unwrap().to_lowercase()
        })
        .collect()
}

struct Item {
    n: usize,
    item_type: ItemType,
    subject: &'static str,
    from: &'static [&'static str],
    to: &'static [&'static str],
    cc: &'static [&'static str],
    bcc: &'static [&'static str],
    date_ms: i64,
    size: u64,
    filenames: &'static [&'static str],
    body: String,
    attachments: &'static str,
    object_uid: Option<&'static str>,
}

/// The 100 KB word of item 7's body.
fn long_word() -> String {
    "x".repeat(100_000)
}

fn corpus() -> Vec<Item> {
    let item = |n, subject, date_ms, size| Item {
        n,
        item_type: ItemType::Mail,
        subject,
        from: &[],
        to: &[],
        cc: &[],
        bcc: &[],
        date_ms,
        size,
        filenames: &[],
        body: String::new(),
        attachments: "",
        object_uid: None,
    };
    vec![
        Item {
            from: &["Jörg Weiß <joerg@Beispiel.de>"],
            to: &["Anna Schmidt <anna@example.org>"],
            filenames: &["Rechnung-März.pdf"],
            body: "Die Straße ist gesperrt. Schöne Grüße aus Bayern".into(),
            attachments: "Rechnung Nummer 4711",
            ..item(1, "Grüße aus München", JAN_2025, 12_000)
        },
        Item {
            from: &["Иван Петров <ivan@example.ru>"],
            to: &["Bob <bob@example.org>"],
            body: "Привет! Отчёт готов, смотри приложение.".into(),
            ..item(2, "Отчёт за квартал", JAN_2025 + DAY, 3_000)
        },
        Item {
            from: &["田中 太郎 <tanaka@example.jp>"],
            to: &["bob@example.org"],
            filenames: &["議事録.docx"],
            body: "明日の会議は東京で行います".into(),
            attachments: "議事録 第三四半期",
            ..item(3, "会議の議事録", JAN_2025 + 2 * DAY, 50_000)
        },
        Item {
            from: &["Νίκος Παπαδόπουλος <nikos@example.gr>"],
            cc: &["anna@example.org"],
            body: "Η συνάντηση είναι αύριο".into(),
            ..item(4, "Καλημέρα από την Αθήνα", JAN_2025 + 3 * DAY, 800)
        },
        Item {
            from: &["Bob <bob@example.org>"],
            to: &["Alice <alice@corp.example>"],
            bcc: &["audit@corp.example"],
            filenames: &["report.xlsx"],
            body: "Please review the report before Friday. NEAR OR AND".into(),
            attachments: "Revenue Q3 report",
            ..item(5, "Quarterly report draft", JAN_2025 + 4 * DAY, 2_000_000)
        },
        Item {
            item_type: ItemType::Event,
            from: &["Bob <bob@example.org>"],
            body: "Meeting in room 4".into(),
            object_uid: Some("uid-1"),
            // The same date as item 5: ordered by digest.
            ..item(6, "Team meeting", JAN_2025 + 4 * DAY, 900)
        },
        Item {
            from: &["\"*\" <star@evil.invalid>"],
            body: format!("{} end", long_word()),
            ..item(
                7,
                "say \"hi\" * NEAR(a b) OR -x ^start col:val {subject}",
                JAN_2025 + 5 * DAY,
                150_000,
            )
        },
        Item {
            from: &["old@example.org"],
            ..item(8, "From the last century", 631_152_000_000, 0)
        },
    ]
}

/// The document of an item and its text to index.
fn document(item: &Item) -> (ItemDoc, ItemText) {
    let doc = ItemDoc {
        digest: digest(item.n),
        item_type: item.item_type,
        message_id: Some(format!("<m{}@example.org>", item.n)),
        subject: item.subject.into(),
        from: addresses(item.from),
        to: addresses(item.to),
        cc: addresses(item.cc),
        bcc: addresses(item.bcc),
        from_domains: domains(item.from),
        recipient_domains: domains(&[item.to, item.cc, item.bcc].concat()),
        date_ms: item.date_ms,
        size: item.size,
        filenames: addresses(item.filenames),
        has_attachment: !item.filenames.is_empty(),
        object_uid: item.object_uid.map(str::to_string),
        text_truncated: false,
    };
    let text = ItemText {
        body: item.body.clone(),
        attachments: item.attachments.into(),
    };
    (doc, text)
}

/// The record of an item as the e-discovery indexer writes it (model/src/items.rs).
fn record(item: &Item) -> Record {
    let (doc, text) = document(item);
    let type_name = serde_json::to_value(doc.item_type).unwrap();
    let mut record = Record::new(ITEMS, &doc.digest, &serde_json::to_value(&doc).unwrap())
        .at(doc.date_ms)
        .indexed("type", type_name.as_str().unwrap());
    record = record.indexed("message_id", doc.message_id.as_deref().unwrap());
    for domain in &doc.from_domains {
        record = record.indexed("from_domain", domain);
    }
    for domain in &doc.recipient_domains {
        record = record.indexed("recipient_domain", domain);
    }
    if let Some(uid) = &doc.object_uid {
        record = record.indexed("object_uid", uid);
    }
    let text = json!({ "body": text.body, "attachments": text.attachments });
    record.extra = json!({ INDEX_TEXT: text }).to_string().into();
    record
}

fn text(field: TextField, text: TextMatch) -> ItemQuery {
    ItemQuery::Text { field, text }
}

fn words(field: TextField, words: &str) -> ItemQuery {
    text(field, TextMatch::Words(words.into()))
}

fn phrase(field: TextField, phrase: &str) -> ItemQuery {
    text(field, TextMatch::Phrase(phrase.into()))
}

fn prefix(field: TextField, prefix: &str) -> ItemQuery {
    text(field, TextMatch::Prefix(prefix.into()))
}

fn exact(field: ExactField, value: &str) -> ItemQuery {
    ItemQuery::Exact {
        field,
        value: value.into(),
    }
}

fn range(field: RangeField, from: Option<i64>, to: Option<i64>) -> ItemQuery {
    ItemQuery::Range { field, from, to }
}

fn not(query: ItemQuery) -> ItemQuery {
    ItemQuery::Not(Box::new(query))
}

/// Every query and the items it finds, oldest first.
fn cases() -> Vec<(&'static str, ItemQuery, Vec<usize>)> {
    use TextField::*;
    let all = vec![8, 1, 2, 3, 4, 5, 6, 7];
    let long = long_word();
    vec![
        ("all", ItemQuery::All, all.clone()),
        ("nothing", ItemQuery::Nothing, vec![]),
        ("an empty and", ItemQuery::And(vec![]), all.clone()),
        ("an empty or", ItemQuery::Or(vec![]), vec![]),
        // Folding: case, diacritics, ß as ss, in every field of a bare word.
        ("grüße", words(Any, "grüße"), vec![1]),
        ("GRUSSE", words(Any, "GRUSSE"), vec![1]),
        ("strasse in the body", words(Body, "STRASSE"), vec![1]),
        ("munchen in the subject", words(Subject, "munchen"), vec![1]),
        ("munchen not in the body", words(Body, "münchen"), vec![]),
        (
            "every word, any order",
            words(Any, "bayern straße"),
            vec![1],
        ),
        (
            "every word, one missing",
            words(Any, "bayern paris"),
            vec![],
        ),
        // Case goes; Greek loses its accents, Russian ё is е (bonnie_mail::fold_for_search).
        ("ОТЧЁТ", words(Subject, "ОТЧЁТ"), vec![2]),
        ("отчет without its diaeresis", words(Any, "отчет"), vec![2]),
        ("привет in the body", words(Body, "ПРИВЕТ"), vec![2]),
        ("καλημέρα", words(Subject, "ΚΑΛΗΜΈΡΑ"), vec![4]),
        ("αθηνα without its tonos", words(Subject, "αθηνα"), vec![4]),
        ("ΑΘΗΝΑ in capitals", words(Subject, "ΑΘΗΝΑ"), vec![4]),
        // Japanese has no spaces: a run of letters is one word, found by a prefix.
        (
            "a whole japanese run",
            words(Body, "明日の会議は東京で行います"),
            vec![3],
        ),
        ("a word inside a run", words(Body, "東京"), vec![]),
        ("a japanese prefix", prefix(Body, "明日の"), vec![3]),
        ("attachment text", words(Body, "第三四半期"), vec![3]),
        ("a japanese file name", words(Filename, "議事録"), vec![3]),
        // Phrases: consecutive words in this order, within one field.
        ("a phrase", phrase(Body, "schöne GRÜSSE"), vec![1]),
        ("a phrase reversed", phrase(Body, "grüsse schöne"), vec![]),
        (
            "a phrase with a gap",
            phrase(Body, "straße gesperrt"),
            vec![],
        ),
        (
            "a phrase in attachments",
            phrase(Body, "revenue q3"),
            vec![5],
        ),
        (
            "a phrase across fields",
            phrase(Any, "report revenue"),
            vec![],
        ),
        // Prefixes.
        ("rech*", prefix(Any, "rech"), vec![1]),
        ("rech* in file names", prefix(Filename, "RECH"), vec![1]),
        ("rech* not in the subject", prefix(Subject, "rech"), vec![]),
        ("marz* in a file name", prefix(Filename, "mar"), vec![1]),
        ("rep*", prefix(Any, "rep"), vec![5]),
        (
            "a prefix after words",
            prefix(Subject, "quarterly rep"),
            vec![5],
        ),
        // Addresses, display names and domains.
        ("from a display name", words(From, "JORG"), vec![1]),
        ("from an address", words(From, "joerg"), vec![1]),
        ("from a cyrillic name", words(From, "петров"), vec![2]),
        ("from a greek name", words(From, "Νίκος"), vec![4]),
        ("to", words(To, "bob"), vec![2, 3]),
        ("cc", words(Cc, "anna"), vec![4]),
        ("bcc", words(Bcc, "audit"), vec![5]),
        ("bcc only in bcc", words(To, "audit"), vec![]),
        ("any address", words(Addr, "anna"), vec![1, 4]),
        (
            "an address's words",
            words(Addr, "example org"),
            vec![8, 1, 2, 3, 4, 5, 6],
        ),
        (
            "addresses are not the subject",
            words(Addr, "report"),
            vec![],
        ),
        // Exact fields.
        (
            "message-id",
            exact(ExactField::MessageId, "<m5@example.org>"),
            vec![5],
        ),
        (
            "message-id exactly",
            exact(ExactField::MessageId, "m5@example.org"),
            vec![],
        ),
        ("type event", exact(ExactField::Type, "event"), vec![6]),
        (
            "type mail",
            exact(ExactField::Type, "mail"),
            vec![8, 1, 2, 3, 4, 5, 7],
        ),
        (
            "from domain",
            exact(ExactField::FromDomain, "beispiel.de"),
            vec![1],
        ),
        (
            "recipient domain",
            exact(ExactField::RecipientDomain, "corp.example"),
            vec![5],
        ),
        ("object uid", exact(ExactField::ObjectUid, "uid-1"), vec![6]),
        ("digest", exact(ExactField::Digest, &digest(3)), vec![3]),
        (
            "a list of exact values",
            ItemQuery::Or(vec![
                exact(ExactField::MessageId, "<m2@example.org>"),
                exact(ExactField::MessageId, "<m4@example.org>"),
                exact(ExactField::MessageId, "<m9@example.org>"),
            ]),
            vec![2, 4],
        ),
        (
            "a list of three thousand message-ids",
            ItemQuery::Or(
                (0..3000)
                    .map(|n| exact(ExactField::MessageId, &format!("<m{}@example.org>", n * 2)))
                    .chain([words(TextField::Subject, "meeting")])
                    .collect(),
            ),
            vec![8, 2, 4, 6],
        ),
        (
            "not in a list of digests",
            not(ItemQuery::Or(
                [1, 3, 5, 7]
                    .map(|n| exact(ExactField::Digest, &digest(n)))
                    .to_vec(),
            )),
            vec![8, 2, 4, 6],
        ),
        // Ranges: from inclusive, to exclusive, either open.
        (
            "dates",
            range(
                RangeField::Date,
                Some(JAN_2025 + DAY),
                Some(JAN_2025 + 4 * DAY),
            ),
            vec![2, 3, 4],
        ),
        (
            "before",
            range(RangeField::Date, None, Some(JAN_2025 + DAY)),
            vec![8, 1],
        ),
        (
            "after",
            range(RangeField::Date, Some(JAN_2025 + 4 * DAY), None),
            vec![5, 6, 7],
        ),
        (
            "larger",
            range(RangeField::Size, Some(100_000), None),
            vec![5, 7],
        ),
        (
            "smaller",
            range(RangeField::Size, None, Some(1_000)),
            vec![8, 4, 6],
        ),
        (
            "an open range",
            range(RangeField::Size, None, None),
            all.clone(),
        ),
        ("has:attachment", ItemQuery::HasAttachment, vec![1, 3, 5]),
        (
            "no attachment",
            not(ItemQuery::HasAttachment),
            vec![8, 2, 4, 6, 7],
        ),
        // Nested.
        (
            "or inside and, with not",
            ItemQuery::And(vec![
                ItemQuery::Or(vec![words(Any, "report"), exact(ExactField::Type, "event")]),
                not(range(RangeField::Size, Some(1_000_000), None)),
            ]),
            vec![6],
        ),
        ("not not", not(not(words(Subject, "meeting"))), vec![6]),
        (
            "not of an or",
            not(ItemQuery::Or(vec![
                words(From, "bob"),
                ItemQuery::HasAttachment,
                range(RangeField::Date, None, Some(JAN_2025)),
            ])),
            vec![2, 4, 7],
        ),
        (
            "and of nots",
            ItemQuery::And(vec![not(words(Addr, "example")), not(ItemQuery::Nothing)]),
            vec![7],
        ),
        // Hostile text: never FTS5 syntax, never an error.
        ("a quote", words(Any, "\""), vec![]),
        ("a star", words(Any, "*"), vec![]),
        ("a star prefix", prefix(Any, "*"), vec![]),
        ("an empty phrase", phrase(Any, "\" \""), vec![]),
        ("near", words(Any, "NEAR"), vec![5, 7]),
        ("or", words(Any, "OR"), vec![5, 7]),
        ("and", words(Subject, "AND"), vec![]),
        ("minus", words(Subject, "-x"), vec![7]),
        ("caret", words(Any, "^start"), vec![7]),
        ("a column filter", words(Any, "col:val"), vec![7]),
        ("braces", words(Any, "{subject}"), vec![7]),
        (
            "braces as a column filter",
            words(Any, "{subject} : meeting"),
            vec![],
        ),
        ("a near group", phrase(Subject, "NEAR(a b)"), vec![7]),
        ("a quoted or", phrase(Any, "\") OR (\""), vec![5, 7]),
        (
            "quotes and operators",
            words(Any, "\"hi\" AND \"nothere\""),
            vec![],
        ),
        ("the 100 KB word", words(Body, &long), vec![7]),
        (
            "a 100 KB word unlike it",
            words(Body, &format!("{}y", &long[1..])),
            vec![],
        ),
        (
            "a prefix of the 100 KB word",
            prefix(Body, &long[..100]),
            vec![7],
        ),
        ("x is not the 100 KB word", words(Body, "x"), vec![]),
        ("x in the subject", words(Subject, "x"), vec![7]),
    ]
}

/// A plugin directory holding `plugin` and a configuration for it, in `dir`.
fn storage_dir(dir: &Path, plugin: &str, table: &str) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = paths::plugin(plugin);
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let config = dir.join("bonnie.toml");
    std::fs::write(
        &config,
        format!("[worker]\nplugin_dir = \"plugins\"\n\n{table}"),
    )
    .unwrap();
    config
}

fn digests_of(storage: &StorageClient, query: &RecordQuery) -> Vec<String> {
    storage
        .query(query)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.key.into_string())
        .collect()
}

fn items_query(items: ItemQuery) -> RecordQuery {
    RecordQuery {
        collection: ITEMS.into(),
        items: Some(items),
        all: true,
        ..RecordQuery::default()
    }
}

/// The items the reference evaluator (bonnie_discovery::evaluate) finds, in date order.
fn evaluated(query: &ItemQuery) -> Vec<String> {
    let mut found: Vec<(i64, String)> = corpus()
        .iter()
        .map(document)
        .filter(|(doc, text)| matches_item_query(query, doc, text))
        .map(|(doc, _)| (doc.date_ms, doc.digest))
        .collect();
    found.sort();
    found.into_iter().map(|(_, digest)| digest).collect()
}

/// Every case's digests on `storage`, ascending and descending; checked against the
/// expectation and the reference evaluator, and returned to compare the storages.
fn answers(name: &str, storage: &StorageClient) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (case, query, expected) in cases() {
        let ascending = digests_of(storage, &items_query(query.clone()));
        let expected: Vec<String> = expected.into_iter().map(digest).collect();
        let shown: String = format!("{query:?}").chars().take(400).collect();
        assert_eq!(
            evaluated(&query),
            expected,
            "the evaluator, {case}: {shown}"
        );
        assert_eq!(ascending, expected, "{name}, {case}: {shown}");
        let descending = digests_of(
            storage,
            &RecordQuery {
                descending: true,
                ..items_query(query)
            },
        );
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(descending, reversed, "{name}, {case}, descending");
        found.push(ascending);
    }
    found
}

/// The corpus put into `storage`, every case answered as written; a limit keeps the first
/// items; the stored record reads back without its text; a replaced item is found by its new
/// text only and a deleted one no more.
fn check(name: &str, storage: &StorageClient) -> Vec<Vec<String>> {
    for item in corpus() {
        storage.put(record(&item)).unwrap();
    }
    let found = answers(name, storage);

    let first_three = RecordQuery {
        limit: 3,
        all: false,
        ..items_query(ItemQuery::All)
    };
    assert_eq!(digests_of(storage, &first_three), [8, 1, 2].map(digest));
    let newest_two = RecordQuery {
        limit: 2,
        all: false,
        descending: true,
        ..items_query(not(ItemQuery::HasAttachment))
    };
    assert_eq!(digests_of(storage, &newest_two), [7, 6].map(digest));

    let stored = storage.get(ITEMS, &digest(1)).unwrap().expect("item 1");
    let doc: ItemDoc = serde_json::from_str(stored.body.as_str()).unwrap();
    assert_eq!(doc.subject, "Grüße aus München");
    assert!(
        !stored.body.as_str().contains("gesperrt") && !stored.extra.as_str().contains("gesperrt"),
        "{name}: the indexed text is stored readable: {stored:?}"
    );

    let mut replaced = corpus().remove(0);
    replaced.subject = "Neuer Betreff";
    replaced.body = "Nur noch Neues".into();
    storage.put(record(&replaced)).unwrap();
    let find = |q: ItemQuery| digests_of(storage, &items_query(q));
    assert_eq!(
        find(words(TextField::Subject, "münchen")),
        Vec::<String>::new()
    );
    assert_eq!(
        find(words(TextField::Body, "gesperrt")),
        Vec::<String>::new()
    );
    assert_eq!(find(words(TextField::Any, "neues betreff")), [digest(1)]);
    assert!(storage.delete(ITEMS, &digest(2)).unwrap());
    assert_eq!(find(words(TextField::Any, "отчёт")), Vec::<String>::new());
    assert_eq!(find(ItemQuery::All), [8, 1, 3, 4, 5, 6, 7].map(digest));
    found
}

#[test]
fn sqlite_and_elasticsearch_answer_every_item_query_alike() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = storages::open(&storage_dir(
        sqlite_dir.path(),
        "bonnie-sqlite-storage",
        "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
    ));
    let on_sqlite = check("sqlite-storage", &sqlite);

    let server = SearchServer::start();
    let es_dir = tempfile::tempdir().unwrap();
    // Pages of two hits: every answer of more than two items is read in pages.
    let es = storages::open(&storage_dir(
        es_dir.path(),
        "bonnie-es-storage",
        &format!(
            "[plugins.es-storage]\nurl = \"{}\"\ndead_letter = \"var/es-dead-letter.jsonl\"\npage_size = 2\n",
            server.url
        ),
    ));
    let on_es = check("es-storage", &es);
    assert_eq!(on_sqlite, on_es);

    // The server keeps the words indexed, not readable: item 3's body is in no field of its
    // document, and the items index has the mapping es-storage gave it.
    let (status, stored) =
        server.request("GET", &format!("/bonnie-items/_doc/{}", digest(3)), None);
    assert_eq!(status, 200, "{stored}");
    assert!(!stored.to_string().contains("東京"), "{stored}");
    assert_eq!(stored["_source"]["body"]["subject"], "会議の議事録");
    let (_, mapping) = server.request("GET", "/bonnie-items/_mapping", None);
    let properties = &mapping["bonnie-items"]["mappings"]["properties"];
    assert_eq!(
        properties["text_body"]["analyzer"], "bonnie_words",
        "{mapping}"
    );
    assert_eq!(properties["date_ms"]["type"], "long", "{mapping}");
    assert_eq!(properties["has_attachment"]["type"], "boolean", "{mapping}");
    assert_eq!(properties["terms"]["type"], "keyword", "{mapping}");
}

#[test]
fn an_item_query_of_another_collection_or_with_terms_beside_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = storages::open(&storage_dir(
        dir.path(),
        "bonnie-sqlite-storage",
        "[plugins.sqlite-storage]\npath = \"var/bonnie.db\"\n",
    ));
    let of_users = RecordQuery {
        collection: "users".into(),
        ..items_query(ItemQuery::All)
    };
    let error = sqlite.query(&of_users).unwrap_err().to_string();
    assert!(error.contains("collection items"), "{error}");
    // A time range beside it would be ignored: refused, naming where it goes.
    let with_a_range = RecordQuery {
        from_ms: Some(JAN_2025),
        ..items_query(ItemQuery::All)
    };
    let error = sqlite.query(&with_a_range).unwrap_err().to_string();
    assert!(
        error.contains("from_ms") && error.contains("Range"),
        "{error}"
    );
}
