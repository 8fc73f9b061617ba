//! The mail corpus of tests/fixtures/mail (one message per legacy charset, RFC 2231 names,
//! nested and broken MIME), read by bonnie-mail and compared with what make.py wrote down.

use std::path::PathBuf;

use bonnie_mail::{Message, fold_for_search, format_address, parse};
use serde_json::Value;

fn corpus() -> Vec<(Value, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail");
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    expected
        .into_iter()
        .map(|e| {
            let bytes = std::fs::read(dir.join(e["file"].as_str().unwrap())).unwrap();
            (e, bytes)
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn formatted(list: &[bonnie_mail::Address]) -> Vec<String> {
    list.iter().map(format_address).collect()
}

fn all_text(message: &Message) -> String {
    fold_for_search(&message.search_text(usize::MAX).text)
}

#[test]
fn every_message_of_the_corpus_reads_as_written() {
    let corpus = corpus();
    assert!(corpus.len() >= 13, "{}", corpus.len());
    for (expected, bytes) in corpus {
        let file = expected["file"].as_str().unwrap();
        let message = parse(&bytes);
        assert_eq!(
            message.subject.as_deref(),
            expected["subject"].as_str(),
            "{file}"
        );
        assert_eq!(
            formatted(&message.from),
            strings(&expected["from"]),
            "{file}"
        );
        assert_eq!(formatted(&message.to), strings(&expected["to"]), "{file}");
        assert_eq!(formatted(&message.cc), strings(&expected["cc"]), "{file}");
        assert_eq!(message.date.as_deref(), expected["date"].as_str(), "{file}");
        assert_eq!(
            message.message_id.as_deref(),
            expected["message_id"].as_str(),
            "{file}"
        );
        let text = all_text(&message);
        let word = fold_for_search(expected["word"].as_str().unwrap());
        assert!(
            text.split(|c: char| !c.is_alphanumeric())
                .any(|w| w == word),
            "{file}: {word:?} not in {text:?}"
        );
        for key in ["attachment_word", "nested_word"] {
            if let Some(w) = expected[key].as_str() {
                assert!(
                    text.contains(&fold_for_search(w)),
                    "{file}: {w} not in {text:?}"
                );
            }
        }
        if let Some(names) = expected.get("attachments") {
            let mut all: Vec<String> = message
                .attachments
                .iter()
                .filter_map(|a| a.name.clone())
                .collect();
            for nested in &message.messages {
                all.extend(nested.attachments.iter().filter_map(|a| a.name.clone()));
            }
            for name in strings(names) {
                assert!(all.contains(&name), "{file}: {name} not in {all:?}");
            }
        }
        assert_eq!(
            message.damaged(),
            expected["damaged"].as_bool().unwrap_or(false),
            "{file}: {:?}",
            message.warnings
        );
    }
}

fn fixture(name: &str) -> Message {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail");
    parse(&std::fs::read(dir.join(name)).unwrap())
}

#[test]
fn every_header_stays_in_order_with_groups_and_repeats() {
    let message = fixture("utf-8.eml");
    let names: Vec<&str> = message.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Received",
            "Received",
            "Content-Type",
            "MIME-Version",
            "Subject",
            "From",
            "To",
            "To",
            "Cc",
            "Date",
            "Message-ID"
        ]
    );
    assert!(
        message.headers[1].value.starts_with("from mx1.example.org"),
        "{:?}",
        message.headers[1]
    );
    assert_eq!(
        message.headers[6].value,
        "John Doe <john.doe@example.org>, Jane Doe <jane.doe@example.org>"
    );
    assert_eq!(message.to[0].group.as_deref(), Some("Projekt"));
    assert_eq!(message.to[2].group, None);
    let map = message.header_map();
    assert_eq!(
        map["To"].as_array().unwrap().len(),
        3,
        "both To fields: {map:?}"
    );
    assert_eq!(map["Received"].as_array().unwrap().len(), 2);
    assert_eq!(map["Subject"], "Übersicht für März ✓");
    assert_eq!(map["Content-Type"], "multipart/mixed");
    assert_eq!(map["Date"], "2026-12-01T08:15:00Z");
    assert_eq!(map["Message-ID"], "<utf-8@corpus.example.org>");
}

#[test]
fn html_is_reduced_to_text_and_alternatives_count_once() {
    let message = fixture("utf-8.eml");
    assert_eq!(message.bodies.len(), 1, "{:?}", message.bodies);
    assert_eq!(message.bodies[0].media_type, "text/plain");
    let attachments: Vec<_> = message
        .attachments
        .iter()
        .map(|a| (a.name.as_deref(), a.media_type.as_str(), a.size))
        .collect();
    assert_eq!(
        attachments,
        [
            (Some("Übersicht März.txt"), "text/plain", 53),
            (Some("Prüfbericht Größe.pdf"), "application/pdf", 28)
        ]
    );
    assert_eq!(
        message.attachments[1].sha256,
        "10fe2cbc232202d1683335efe375a129db5ba84082dcef8fa3c95ff0b90e0f4e"
    );
    assert!(message.attachments[1].text.is_none());
    let html = parse(
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<html><head><style>.x{color:red}</style></head><body><p>Gr\xfc&szlig;e &amp; mehr</p></body></html>",
    );
    assert_eq!(html.bodies[0].text.trim(), "Grüße & mehr");
}

#[test]
fn a_nested_message_is_read_with_its_own_attachments() {
    let message = fixture("nested.eml");
    assert_eq!(message.messages.len(), 1);
    let inner = &message.messages[0];
    assert_eq!(inner.subject.as_deref(), Some("Пересланное сообщение"));
    assert_eq!(
        format_address(&inner.from[0]),
        "Сергей Иванов <sergey@example.org>"
    );
    assert!(inner.bodies[0].text.contains("матрёшка"));
    assert_eq!(inner.attachments[0].name.as_deref(), Some("Счёт.txt"));
    assert_eq!(message.attachments[0].media_type, "message/rfc822");
}

#[test]
fn broken_mime_keeps_what_can_be_read_and_says_so() {
    let message = fixture("broken.eml");
    assert!(
        message
            .bodies
            .iter()
            .any(|b| b.text.contains("Fledermausgrotte")),
        "{:?}",
        message.bodies
    );
    assert!(
        message.bodies.iter().any(|b| b.text.contains("kangaroo")),
        "{:?}",
        message.bodies
    );
    let warnings = message.warnings.join("\n");
    assert!(warnings.contains("closing boundary"), "{warnings}");
    assert!(warnings.contains("x-no-such-charset"), "{warnings}");
    // Not a message at all.
    let garbage = parse(b"");
    assert!(garbage.damaged());
}

fn b_word(label: &str, text: &str) -> String {
    use base64::Engine;
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{label}: {text}");
    format!(
        "=?{label}?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    )
}

#[test]
fn encoded_words_decode_in_every_charset() {
    for (label, text) in [
        ("ISO-8859-1", "Grüße aus Köln"),
        ("ISO-8859-2", "Zażółć gęślą jaźń"),
        ("ISO-8859-15", "Preis 100 € œuvre"),
        ("windows-1251", "Привет из Москвы"),
        ("windows-1252", "“Café” – €"),
        ("KOI8-R", "Отчёт за квартал"),
        ("ISO-2022-JP", "会議の議事録"),
        ("Shift_JIS", "見積書の送付"),
        ("GB2312", "你好世界"),
        ("GBK", "你好世界"),
        ("Big5", "繁體中文"),
        ("UTF-8", "Übersicht ✓ 日本"),
    ] {
        let word = b_word(label, text);
        assert_eq!(bonnie_mail::decode_words(&word), text, "{label}: {word}");
        assert_eq!(
            bonnie_mail::decode_words(&format!("Re: {word} {word}")),
            format!("Re: {text}{text}"),
            "{label}: whitespace between two words goes"
        );
    }
    assert_eq!(
        bonnie_mail::decode_words("=?ISO-8859-15?Q?100_=A4?="),
        "100 €"
    );
    assert_eq!(bonnie_mail::decode_words("plain"), "plain");
}

#[test]
fn eight_bit_header_bytes_that_are_not_utf8_are_flagged() {
    let message = parse(b"Subject: Gr\xfc\xdfe\r\nFrom: a@example.org\r\n\r\nbody\r\n");
    assert!(message.damaged(), "{:?}", message.warnings);
    assert!(
        message.warnings[0].contains("Subject"),
        "{:?}",
        message.warnings
    );
    let utf8 = parse("Subject: Grüße\r\nFrom: a@example.org\r\n\r\nbody\r\n".as_bytes());
    assert_eq!(utf8.subject.as_deref(), Some("Grüße"));
    assert!(!utf8.damaged(), "{:?}", utf8.warnings);
}
