//! The query language's tests: every field and operator, precedence, dates and sizes, errors
//! with their columns, non-English values, hostile input, and the canonical text read back.
//! The query trees it generates serve the relax tests too.

use bonnie_plugin_api::items::{ExactField, RangeField, TextField, TextMatch};
use jiff::{Timestamp, tz::TimeZone};
use proptest::prelude::*;

use super::*;

pub(crate) fn berlin() -> Context {
    Context {
        zone: TimeZone::get("Europe/Berlin").expect("the tz database has Europe/Berlin"),
        local_domains: vec!["Example.org".to_string()],
    }
}

fn q(text: &str) -> Query {
    parse(text, &berlin()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> QueryError {
    match parse(text, &berlin()) {
        Ok(query) => panic!("{text:?} parsed as {query:?}"),
        Err(e) => e,
    }
}

fn text(field: TextField, matched: TextMatch) -> Query {
    Query::Term(Term::Text {
        field,
        text: matched,
    })
}

fn words(field: TextField, w: &str) -> Query {
    text(field, TextMatch::Words(w.to_string()))
}

fn word(w: &str) -> Query {
    words(TextField::Any, w)
}

fn phrase(field: TextField, p: &str) -> Query {
    text(field, TextMatch::Phrase(p.to_string()))
}

fn term(term: Term) -> Query {
    Query::Term(term)
}

fn not(query: Query) -> Query {
    Query::Not(Box::new(query))
}

fn utc(instant: &str) -> i64 {
    instant
        .parse::<Timestamp>()
        .expect("a test's instant")
        .as_millisecond()
}

fn dated(from: Option<&str>, to: Option<&str>) -> Query {
    term(Term::Range {
        field: RangeField::Date,
        from: from.map(utc),
        to: to.map(utc),
    })
}

fn sized(from: Option<i64>, to: Option<i64>) -> Query {
    term(Term::Range {
        field: RangeField::Size,
        from,
        to,
    })
}

#[test]
fn every_field_makes_its_term() {
    let cases = [
        ("budget", word("budget")),
        ("from:jane", words(TextField::From, "jane")),
        ("to:jane", words(TextField::To, "jane")),
        ("cc:jane", words(TextField::Cc, "jane")),
        ("bcc:jane", words(TextField::Bcc, "jane")),
        ("addr:jane", words(TextField::Addr, "jane")),
        ("subject:budget", words(TextField::Subject, "budget")),
        ("body:budget", words(TextField::Body, "budget")),
        ("filename:report", words(TextField::Filename, "report")),
        ("FROM:jane", words(TextField::From, "jane")),
        ("has:attachment", term(Term::HasAttachment)),
        ("has:Attachment", term(Term::HasAttachment)),
        ("larger:10M", sized(Some(10 * 1024 * 1024 + 1), None)),
        ("smaller:500k", sized(None, Some(500 * 1024))),
        ("larger:1G", sized(Some((1 << 30) + 1), None)),
        ("larger:0", sized(Some(1), None)),
        ("smaller:1234", sized(None, Some(1234))),
        (
            "after:2026-11-28",
            dated(Some("2026-11-27T23:00:00Z"), None),
        ),
        (
            "before:2026-11-28",
            dated(None, Some("2026-11-27T23:00:00Z")),
        ),
        ("folder:INBOX", term(Term::Folder("INBOX".into()))),
        ("folder:Work/*", term(Term::Folder("Work/*".into()))),
        (
            "folder:\"My Folder\"",
            term(Term::Folder("My Folder".into())),
        ),
        ("user:john.doe", term(Term::User("john.doe".into()))),
        (
            "message-id:<a.1@example.org>",
            term(Term::Exact {
                field: ExactField::MessageId,
                value: "<a.1@example.org>".into(),
            }),
        ),
        (
            "message-id:a.1@example.org",
            term(Term::Exact {
                field: ExactField::MessageId,
                value: "<a.1@example.org>".into(),
            }),
        ),
        ("flag:seen", term(Term::Flag("\\Seen".into()))),
        ("flag:\\Seen", term(Term::Flag("\\Seen".into()))),
        ("flag:FLAGGED", term(Term::Flag("\\Flagged".into()))),
        ("flag:$Label1", term(Term::Flag("$Label1".into()))),
        (
            "direction:inbound",
            term(Term::Direction(Direction::Inbound)),
        ),
        (
            "direction:Outbound",
            term(Term::Direction(Direction::Outbound)),
        ),
        (
            "direction:internal",
            term(Term::Direction(Direction::Internal)),
        ),
        ("deleted:yes", term(Term::Deleted(true))),
        ("deleted:true", term(Term::Deleted(true))),
        ("deleted:no", term(Term::Deleted(false))),
        ("deleted:FALSE", term(Term::Deleted(false))),
        (
            "type:event",
            term(Term::Exact {
                field: ExactField::Type,
                value: "event".into(),
            }),
        ),
        ("*", Query::All),
    ];
    for (text, expected) in cases {
        assert_eq!(q(text), expected, "{text}");
    }
    for name in ["mail", "event", "task", "contact", "note", "file", "other"] {
        assert_eq!(
            q(&format!("type:{}", name.to_uppercase())),
            term(Term::Exact {
                field: ExactField::Type,
                value: name.into()
            })
        );
    }
}

#[test]
fn or_binds_tighter_than_and_and_negation_tighter_still() {
    let (a, b, c) = (word("a"), word("b"), word("c"));
    let or = |x: &Query, y: &Query| Query::Or(vec![x.clone(), y.clone()]);
    let and = |x: Query, y: Query| Query::And(vec![x, y]);
    assert_eq!(q("a OR b c"), and(or(&a, &b), c.clone()));
    assert_eq!(q("a b OR c"), and(a.clone(), or(&b, &c)));
    assert_eq!(q("a AND b OR c"), and(a.clone(), or(&b, &c)));
    assert_eq!(
        q("(a b) OR c"),
        Query::Or(vec![and(a.clone(), b.clone()), c.clone()])
    );
    assert_eq!(
        q("a OR b OR c"),
        Query::Or(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(q("a b c"), q("a AND b AND c"));
    assert_eq!(
        q("a b c"),
        Query::And(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(q("-a OR b"), Query::Or(vec![not(a.clone()), b.clone()]));
    assert_eq!(q("NOT a OR b"), q("-a OR b"));
    assert_eq!(q("NOT a b"), and(not(a.clone()), b.clone()));
    // Lower case is a word.
    assert_eq!(
        q("a or b"),
        Query::And(vec![a.clone(), word("or"), b.clone()])
    );
    assert_eq!(
        q("from:jane OR from:john subject:budget"),
        and(
            Query::Or(vec![
                words(TextField::From, "jane"),
                words(TextField::From, "john")
            ]),
            words(TextField::Subject, "budget")
        )
    );
}

#[test]
fn negations_every_way() {
    let a = word("a");
    assert_eq!(q("-a"), not(a.clone()));
    assert_eq!(q("NOT a"), not(a.clone()));
    assert_eq!(q("NOT(a)"), not(a.clone()));
    assert_eq!(q("--a"), not(not(a.clone())));
    assert_eq!(q("NOT -a"), not(not(a.clone())));
    assert_eq!(q("-(a b)"), not(Query::And(vec![a.clone(), word("b")])));
    assert_eq!(q("-folder:Trash"), not(term(Term::Folder("Trash".into()))));
    assert_eq!(q("from:(-jane)"), not(words(TextField::From, "jane")));
    assert_eq!(q("-\"a b\""), not(phrase(TextField::Any, "a b")));
    assert_eq!(q("-*"), not(Query::All));
    // A - inside a word, or after a field's colon, is part of the value.
    assert_eq!(q("a-b"), phrase(TextField::Any, "a-b"));
    assert_eq!(q("subject:-x"), words(TextField::Subject, "-x"));
}

#[test]
fn quotes_prefixes_and_values_of_several_words() {
    assert_eq!(
        q("\"quarterly report\""),
        phrase(TextField::Any, "quarterly report")
    );
    assert_eq!(q("\"budget\""), phrase(TextField::Any, "budget"));
    assert_eq!(
        q("subject:\"say \\\"hi\\\" \\\\ there\""),
        phrase(TextField::Subject, "say \"hi\" \\ there")
    );
    assert_eq!(
        q("from:jane.doe@example.org"),
        phrase(TextField::From, "jane.doe@example.org")
    );
    assert_eq!(q("subject:foo-bar"), phrase(TextField::Subject, "foo-bar"));
    assert_eq!(
        q("jan*"),
        text(TextField::Any, TextMatch::Prefix("jan".into()))
    );
    assert_eq!(
        q("filename:rep*"),
        text(TextField::Filename, TextMatch::Prefix("rep".into()))
    );
    assert_eq!(
        q("from:(jane OR john)"),
        Query::Or(vec![
            words(TextField::From, "jane"),
            words(TextField::From, "john")
        ])
    );
    assert_eq!(
        q("subject:(budget 2026)"),
        Query::And(vec![
            words(TextField::Subject, "budget"),
            words(TextField::Subject, "2026")
        ])
    );
    assert_eq!(
        q("subject:(\"a b\" OR c*)"),
        Query::Or(vec![
            phrase(TextField::Subject, "a b"),
            text(TextField::Subject, TextMatch::Prefix("c".into()))
        ])
    );
    // Inside a field group, a colon is part of the value.
    assert_eq!(
        q("after:(2026-11-28T10:00 OR 2026-11-29)"),
        Query::Or(vec![
            dated(Some("2026-11-28T09:00:00Z"), None),
            dated(Some("2026-11-28T23:00:00Z"), None)
        ])
    );
    assert_eq!(
        q("folder:(INBOX OR Work/*)"),
        Query::Or(vec![
            term(Term::Folder("INBOX".into())),
            term(Term::Folder("Work/*".into()))
        ])
    );
    // Tabs and line breaks are space.
    assert_eq!(q("a\tb\r\nc"), q("a b c"));
}

#[test]
fn dates_are_read_in_the_zone_and_a_daylight_saving_day_is_23_hours() {
    assert_eq!(q("after:2026/11/28"), q("after:2026-11-28"));
    assert_eq!(
        q("after:2026-11-28T10:00"),
        dated(Some("2026-11-28T09:00:00Z"), None)
    );
    assert_eq!(
        q("after:2026-11-28T10:00:30"),
        dated(Some("2026-11-28T09:00:30Z"), None)
    );
    assert_eq!(
        q("after:2026-11-28T10:00:00+01:00"),
        dated(Some("2026-11-28T09:00:00Z"), None)
    );
    assert_eq!(
        q("before:2026-11-28T10:00:00-05:00"),
        dated(None, Some("2026-11-28T15:00:00Z"))
    );
    assert_eq!(
        q("after:2026-11-28T09:00:00Z"),
        dated(Some("2026-11-28T09:00:00Z"), None)
    );
    assert_eq!(
        q("after:2026-11-28T09:00:00.250Z"),
        dated(Some("2026-11-28T09:00:00.250Z"), None)
    );
    // Summer time: +02:00.
    assert_eq!(
        q("after:2026-07-01"),
        dated(Some("2026-06-30T22:00:00Z"), None)
    );
    // 29 March 2026: the clocks go from 02:00 to 03:00 in Berlin.
    let day = q("after:2026-03-29 before:2026-03-30");
    assert_eq!(
        day,
        Query::And(vec![
            dated(Some("2026-03-28T23:00:00Z"), None),
            dated(None, Some("2026-03-29T22:00:00Z"))
        ])
    );
    assert_eq!(
        utc("2026-03-29T22:00:00Z") - utc("2026-03-28T23:00:00Z"),
        23 * 3600 * 1000
    );
    // 02:30 does not exist that day: the same time after the gap, 03:30 CEST.
    assert_eq!(
        q("after:2026-03-29T02:30"),
        dated(Some("2026-03-29T01:30:00Z"), None)
    );
    // 25 October 2026: 02:30 happens twice; the first, still CEST.
    assert_eq!(
        q("after:2026-10-25T02:30"),
        dated(Some("2026-10-25T00:30:00Z"), None)
    );
    // Another zone reads the same text as another instant.
    let tokyo = Context {
        zone: TimeZone::get("Asia/Tokyo").unwrap(),
        local_domains: vec![],
    };
    assert_eq!(
        parse("after:2026-11-28", &tokyo).unwrap(),
        dated(Some("2026-11-27T15:00:00Z"), None)
    );
}

#[track_caller]
fn fails_at(text: &str, column: usize, says: &str) {
    let e = err(text);
    assert_eq!(e.column, column, "{text:?}: {e}");
    assert!(
        e.message.contains(says),
        "{text:?}: {e} (expected {says:?})"
    );
    assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
}

#[test]
fn errors_say_where_and_what() {
    let cases = [
        (
            "frm:jane",
            1,
            "unknown field \"frm\" (fields: from, to, cc, bcc, addr, subject",
        ),
        ("budget frm:jane", 8, "unknown field \"frm\""),
        (":jane", 1, "a : with no field before it"),
        ("(a b", 1, "unbalanced parentheses: this ( is never closed"),
        ("a (b (c)", 3, "this ( is never closed"),
        ("a b)", 4, "unbalanced parentheses: this ) closes no ("),
        ("()", 1, "empty parentheses"),
        ("a ( )", 3, "empty parentheses"),
        ("a OR", 3, "OR with nothing after it"),
        ("a OR )", 3, "OR with nothing after it"),
        ("(a OR) b", 4, "OR with nothing after it"),
        ("a OR OR b", 3, "OR with nothing after it"),
        ("OR a", 1, "OR with nothing before it"),
        ("a AND", 3, "AND with nothing after it"),
        ("AND a", 1, "AND with nothing before it"),
        ("a NOT", 3, "NOT with nothing after it"),
        ("a - b", 3, "a - with nothing after it"),
        ("-OR", 2, "OR where a term belongs"),
        ("from:", 1, "from: with no value"),
        ("a from: b", 3, "from: with no value"),
        ("from:\"\"", 6, "from: with an empty value"),
        ("subject:\"x", 9, "this quote is never closed"),
        ("\"a b\"c", 6, "a quoted value ends at its closing quote"),
        (
            "after:yesterday",
            7,
            "after:\"yesterday\" is no date (dates: 2026-11-28, 2026/11/28, 2026-11-28T10:00",
        ),
        ("before:2026-13-01", 8, "in Europe/Berlin"),
        ("after:2026-11-28T10:00[Europe/Paris]", 7, "is no date"),
        ("larger:10MB", 8, "larger:\"10MB\" is no size"),
        ("larger:-1", 8, "is no size"),
        ("larger:99999999999G", 8, "is no size"),
        ("smaller:0", 9, "smaller:0 matches no item"),
        (
            "after:2026-12-01 before:2026-11-01",
            18,
            "these ranges leave nothing",
        ),
        ("larger:10 smaller:11", 11, "these ranges leave nothing"),
        ("has:pdf", 5, "has:attachment is the one"),
        (
            "type:email",
            6,
            "(types: mail, event, task, contact, note, file, other)",
        ),
        ("deleted:maybe", 9, "neither yes nor no"),
        ("direction:sideways", 11, "(inbound, outbound, internal)"),
        ("flag:\\Important", 6, "is no system flag"),
        ("...", 1, "\"...\" has no word to look for"),
        ("subject:\"--\"", 9, "subject:\"--\" has no word"),
        ("foo-ba*", 1, "a prefix is one word"),
        ("a*b", 1, "a * only ends a word"),
        ("from:*", 6, "a * only ends a word"),
        ("folder:*", 8, "a * only ends a folder"),
        ("folder:/*", 8, "a * only ends a folder"),
        ("folder:Wo*rk/*", 8, "a * only ends a folder"),
        ("", 1, "the query is empty"),
        ("   ", 1, "the query is empty"),
    ];
    for (text, column, says) in cases {
        fails_at(text, column, says);
    }
    let no_domains = Context {
        zone: TimeZone::UTC,
        local_domains: vec![],
    };
    let e = parse("a direction:inbound", &no_domains).unwrap_err();
    assert_eq!(e.column, 13);
    assert!(
        e.message.contains("local domains, and none are configured"),
        "{e}"
    );
}

#[test]
fn non_english_values_and_columns_in_characters() {
    assert_eq!(q("from:Иван"), words(TextField::From, "Иван"));
    assert_eq!(q("subject:日本語"), words(TextField::Subject, "日本語"));
    assert_eq!(
        q("subject:\"東京 タワー\""),
        phrase(TextField::Subject, "東京 タワー")
    );
    assert_eq!(q("Straße"), word("Straße"));
    assert_eq!(
        q("grüße*"),
        text(TextField::Any, TextMatch::Prefix("grüße".into()))
    );
    assert_eq!(
        q("folder:Работа/Проекты"),
        term(Term::Folder("Работа/Проекты".into()))
    );
    assert_eq!(q("folder:Работа/*"), term(Term::Folder("Работа/*".into())));
    assert_eq!(q("user:иван"), term(Term::User("иван".into())));
    fails_at("Работа frm:x", 8, "unknown field \"frm\"");
    fails_at("日本語 (x", 5, "never closed");
}

#[test]
fn hostile_input_is_an_error_never_a_crash() {
    let huge = "a ".repeat(512 * 1024);
    fails_at(&huge, MAX_QUERY_BYTES + 1, "at most 16384 are accepted");
    let multibyte = "ж".repeat(MAX_QUERY_BYTES);
    fails_at(&multibyte, MAX_QUERY_BYTES / 2 + 1, "bytes long");
    let nested = format!("{}a", "(".repeat(10_000));
    fails_at(&nested, MAX_DEPTH + 1, "nests deeper than 64");
    let negated = format!("{}a", "-".repeat(10_000));
    fails_at(&negated, MAX_DEPTH + 1, "nests deeper than 64");
    let nots = "NOT ".repeat(1000) + "a";
    fails_at(&nots, 4 * MAX_DEPTH + 1, "nests deeper than 64");
    let groups = format!("{}a", "from:(".repeat(1000));
    assert!(err(&groups).message.contains("nests deeper"));
    // Just within the bound.
    let deep = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(q(&deep), word("a"));
    fails_at("a\0b", 2, "control character U+0000");
    fails_at("subject:\"x\u{1b}[31m\"", 11, "control character U+001B");
    fails_at("a\u{7f}", 2, "control character U+007F");
    let closers = ")".repeat(10_000);
    fails_at(&closers, 1, "closes no (");
    let ors = "a".to_string() + &" OR a".repeat(3000);
    assert!(matches!(q(&ors), Query::Or(parts) if parts.len() == 3001));
}

#[test]
fn the_canonical_text() {
    let cases = [
        ("from:jane.doe@example.org", "from:\"jane.doe@example.org\""),
        ("after:2026-11-28", "after:2026-11-27T23:00:00Z"),
        (
            "before:2026-11-28T10:00:00.5+01:00",
            "before:2026-11-28T09:00:00.5Z",
        ),
        ("larger:10K smaller:1M", "larger:10240 smaller:1048576"),
        ("flag:\\SEEN flag:Junk", "flag:seen flag:Junk"),
        ("message-id:a@b", "message-id:<a@b>"),
        ("folder:\"My \\\"Stuff\\\"\"", "folder:\"My \\\"Stuff\\\"\""),
        ("a OR b c", "a OR b c"),
        ("(a b) OR c", "(a b) OR c"),
        ("a (b c)", "a (b c)"),
        ("(a OR b) OR c", "(a OR b) OR c"),
        ("NOT (a OR b)", "-(a OR b)"),
        ("NOT NOT a", "--a"),
        ("a AND b", "a b"),
        ("from:(jane OR john)", "from:jane OR from:john"),
        ("x OR from:(jane john)", "x OR (from:jane from:john)"),
        (
            "has:ATTACHMENT Deleted:True type:Mail",
            "has:attachment deleted:yes type:mail",
        ),
        ("direction:Inbound", "direction:inbound"),
        ("OR* NOT* AND*", "OR* NOT* AND*"),
        ("*", "*"),
    ];
    for (text, canonical) in cases {
        let parsed = q(text);
        assert_eq!(parsed.to_string(), canonical, "{text}");
        assert_eq!(q(canonical), parsed, "{canonical}");
    }
    // Trees only code makes print as an equivalent query.
    assert_eq!(Query::And(vec![]).to_string(), "*");
    assert_eq!(Query::Or(vec![]).to_string(), "-*");
    assert_eq!(Query::And(vec![word("a")]).to_string(), "a");
    assert_eq!(
        not(Query::Or(vec![Query::And(vec![word("a"), word("b")])])).to_string(),
        "-(a b)"
    );
    assert_eq!(
        dated(Some("2026-01-01T00:00:00Z"), Some("2026-02-01T00:00:00Z")).to_string(),
        "(after:2026-01-01T00:00:00Z before:2026-02-01T00:00:00Z)"
    );
    assert_eq!(sized(None, None).to_string(), "*");
    assert_eq!(sized(Some(0), None).to_string(), "*");
    assert_eq!(sized(None, Some(0)).to_string(), "-*");
}

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(values).prop_map(str::to_string)
}

/// Words the generated queries and items share, so that terms find something.
pub(crate) const WORDS: &[&str] = &[
    "budget",
    "Müller",
    "straße",
    "Strasse",
    "Работа",
    "日本語",
    "q3",
    "jane",
    "or",
    "report",
];

/// Phrases: several words, quotes and backslashes.
const PHRASES: &[&str] = &[
    "quarterly report",
    "jane.doe@example.org",
    "say \"hi\"",
    "back\\slash",
    "budget q3",
    "Работа Проекты",
];

fn text_field() -> impl Strategy<Value = TextField> {
    prop::sample::select(
        &[
            TextField::Any,
            TextField::From,
            TextField::To,
            TextField::Cc,
            TextField::Bcc,
            TextField::Addr,
            TextField::Subject,
            TextField::Body,
            TextField::Filename,
        ][..],
    )
}

/// Instants: mostly in late 2026 (where the generated items are dated), some anywhere jiff
/// reads.
pub(crate) fn instant() -> impl Strategy<Value = i64> {
    let late_2026 = utc("2026-11-01T00:00:00Z");
    prop_oneof![
        4 => late_2026..late_2026 + 60 * 86_400_000,
        1 => Timestamp::MIN.as_millisecond() + 86_400_000..Timestamp::MAX.as_millisecond(),
    ]
}

/// Terms as the parser makes them.
fn term_strategy() -> impl Strategy<Value = Query> {
    let size = prop_oneof![1i64..100_000, 1..i64::MAX];
    prop_oneof![
        (text_field(), pick(WORDS)).prop_map(|(f, w)| text(f, TextMatch::Words(w))),
        (text_field(), pick(PHRASES)).prop_map(|(f, p)| text(f, TextMatch::Phrase(p))),
        (text_field(), pick(WORDS), 1usize..5).prop_map(|(f, w, n)| {
            let stem: String = w.chars().take(n).collect();
            text(f, TextMatch::Prefix(stem))
        }),
        // Stems that end words rather than begin them.
        (text_field(), pick(&["ort", "asse", "ße", "語", "ller"]))
            .prop_map(|(f, stem)| text(f, TextMatch::Prefix(stem))),
        pick(&["<a@example.org>", "<b c@example.com>", "<q3@x>"]).prop_map(|v| term(Term::Exact {
            field: ExactField::MessageId,
            value: v
        })),
        pick(&["mail", "event", "task", "contact", "note", "file", "other"]).prop_map(|v| term(
            Term::Exact {
                field: ExactField::Type,
                value: v
            }
        )),
        (instant(), any::<bool>()).prop_map(|(t, after)| term(Term::Range {
            field: RangeField::Date,
            from: after.then_some(t),
            to: (!after).then_some(t),
        })),
        (size, any::<bool>()).prop_map(|(n, larger)| term(Term::Range {
            field: RangeField::Size,
            from: larger.then_some(n),
            to: (!larger).then_some(n),
        })),
        Just(term(Term::HasAttachment)),
        prop::sample::select(&[Direction::Inbound, Direction::Outbound, Direction::Internal][..])
            .prop_map(|d| term(Term::Direction(d))),
        pick(&[
            "INBOX",
            "inbox",
            "Work",
            "Work/*",
            "Работа/Проекты",
            "Работа/*",
            "My \"Folder\""
        ])
        .prop_map(|f| term(Term::Folder(f))),
        pick(&["john.doe", "john.doe@example.org", "JANE", "shared"])
            .prop_map(|u| term(Term::User(u))),
        pick(&["\\Seen", "\\Flagged", "\\Deleted", "$Label1", "Junk"])
            .prop_map(|f| term(Term::Flag(f))),
        any::<bool>().prop_map(|d| term(Term::Deleted(d))),
        Just(Query::All),
    ]
}

/// Query trees as the parser makes them (an And or Or of two or more; ranges side by side
/// that leave something).
pub(crate) fn query_tree() -> impl Strategy<Value = Query> {
    term_strategy()
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Query::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Query::Or),
                inner.prop_map(|q| Query::Not(Box::new(q))),
            ]
        })
        .prop_filter("ranges side by side that leave nothing", |q| {
            !contradicts(q)
        })
}

fn contradicts(query: &Query) -> bool {
    match query {
        Query::And(parts) => {
            let placed: Vec<(usize, Query)> = parts.iter().cloned().map(|p| (0, p)).collect();
            parse::check_ranges(&placed).is_err() || parts.iter().any(contradicts)
        }
        Query::Or(parts) => parts.iter().any(contradicts),
        Query::Not(inner) => contradicts(inner),
        _ => false,
    }
}

/// Text made mostly of the language's own characters.
fn query_text() -> impl Strategy<Value = String> {
    let pieces = pick(&[
        " ",
        "(",
        ")",
        "\"",
        "-",
        "*",
        ":",
        "\\",
        "OR",
        "AND",
        "NOT",
        "from",
        "folder",
        "after",
        "larger",
        "a",
        "ж",
        "日",
        "2026-11-28",
        "10M",
        "\0",
        "\t",
        "/",
        "x.y@z",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn the_canonical_text_parses_back_to_the_same_tree(query in query_tree()) {
        let canonical = query.to_string();
        prop_assert_eq!(parse(&canonical, &berlin()), Ok(query), "{}", canonical);
    }

    #[test]
    fn any_text_parses_or_fails_and_what_parses_prints_back(text in query_text()) {
        if let Ok(query) = parse(&text, &berlin()) {
            let canonical = query.to_string();
            prop_assert_eq!(parse(&canonical, &berlin()), Ok(query), "{:?} -> {}", text, canonical);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse(&text, &berlin());
    }
}
