//! The meaning of a query on hand-built items: moved, expunged, in a renamed folder, asked
//! about before it existed, flags set and cleared over time; and the word rules the storages
//! are held to.

use std::cell::Cell;

use bonnie_plugin_api::items::{ItemType, TextField, TextMatch};

use super::*;
use crate::{
    item::FlagChange,
    query::{parse, tests::berlin},
};

const T: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;

fn doc() -> ItemDoc {
    ItemDoc {
        digest: "d1".into(),
        item_type: ItemType::Mail,
        message_id: Some("<m1@example.org>".into()),
        subject: "Quarterly budget".into(),
        from: vec!["Jane Doe <jane.doe@example.org>".into()],
        to: vec!["Иван <ivan@corp.example>".into()],
        cc: vec![],
        bcc: vec![],
        from_domains: vec!["example.org".into()],
        recipient_domains: vec!["corp.example".into()],
        date_ms: T,
        size: 2048,
        filenames: vec![],
        has_attachment: false,
        object_uid: None,
        text_truncated: false,
    }
}

fn place(user: &str, name: &str, from_ms: i64, until_ms: Option<i64>) -> Place {
    Place {
        user: user.into(),
        folder: format!("user/{user}/{name}"),
        name: name.into(),
        renamed_to: vec![],
        renamed_at_ms: vec![],
        uniqueid: None,
        uidvalidity: None,
        uid: 1,
        from_ms,
        until_ms,
        ended_by: until_ms.map(|_| "MessageExpunge".to_string()),
        ended_job: until_ms.map(|_| "expunge".to_string()),
        flags_on_arrival: vec![],
        job: "job".into(),
        backfilled: false,
        restored_by: None,
    }
}

fn item(places: Vec<Place>) -> Item {
    Item {
        doc: doc(),
        state: ItemState {
            places,
            flag_changes: vec![],
        },
    }
}

fn change(place: usize, time_ms: i64, set: bool, flags: &[&str]) -> FlagChange {
    FlagChange {
        place,
        time_ms,
        set,
        flags: flags.iter().map(|f| f.to_string()).collect(),
        login: None,
        job: "job".into(),
    }
}

fn no_text() -> ItemText {
    ItemText::default()
}

/// True if `item` matches the query `text` at `as_of`.
#[track_caller]
fn finds(item: &Item, text: &str, as_of: Option<i64>) -> bool {
    let ctx = berlin();
    let query = parse(text, &ctx).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    matches(&query, item, &mut no_text, &ctx, as_of)
}

#[test]
fn a_moved_message_was_in_both_folders_and_is_in_one_at_a_time() {
    let mut inbox = place("john.doe@example.org", "INBOX", T, Some(T + 10 * MINUTE));
    inbox.ended_by = Some("MessageMove".into());
    let moved = item(vec![
        inbox,
        place("john.doe@example.org", "Work", T + 10 * MINUTE, None),
    ]);
    // Its whole history: both.
    assert!(finds(&moved, "folder:INBOX folder:Work", None));
    assert!(finds(&moved, "folder:inbox", None));
    assert!(
        !finds(&moved, "folder:work", None),
        "other names keep their case"
    );
    // Before the move, only the INBOX; after it, only Work.
    assert!(finds(&moved, "folder:INBOX -folder:Work", Some(T + MINUTE)));
    assert!(finds(
        &moved,
        "folder:Work -folder:INBOX",
        Some(T + 10 * MINUTE)
    ));
    assert!(finds(&moved, "deleted:no", None));
    assert!(finds(&moved, "deleted:no", Some(T + 10 * MINUTE)));
    assert!(finds(
        &moved,
        "user:john.doe user:JOHN.DOE@EXAMPLE.ORG",
        None
    ));
    assert!(!finds(&moved, "user:john", None));
    assert!(!finds(&moved, "user:jane", None));
}

#[test]
fn an_expunged_message_is_deleted_from_its_expunge_on_and_nothing_before_it_arrived() {
    let expunged = item(vec![place("jane", "INBOX", T, Some(T + 5 * MINUTE))]);
    assert!(finds(&expunged, "deleted:yes", None));
    assert!(finds(&expunged, "deleted:yes", Some(T + 5 * MINUTE)));
    assert!(finds(
        &expunged,
        "deleted:no folder:INBOX",
        Some(T + 4 * MINUTE)
    ));
    assert!(!finds(&expunged, "folder:INBOX", Some(T + 5 * MINUTE)));
    // Without a time, where it ever was.
    assert!(finds(&expunged, "folder:INBOX", None));
    // Asked about before it arrived, nothing matches: not *, not a negation.
    for query in ["*", "-deleted:yes", "deleted:no", "-budget", "budget"] {
        assert!(!finds(&expunged, query, Some(T - 1)), "{query}");
    }
    // An item with no place at all is nothing the archive holds.
    assert!(!finds(&item(vec![]), "*", None));
}

#[test]
fn a_renamed_folder_answers_to_each_of_its_names_and_subfolders_only_with_slash_star() {
    let mut projects = place("john.doe@example.org", "Projects", T, None);
    projects.renamed_to = vec!["Archive/Projects".into(), "Работа/Проекты".into()];
    let renamed = item(vec![projects]);
    for query in [
        "folder:Projects",
        "folder:Archive/Projects",
        "folder:Archive/*",
        "folder:Работа/Проекты",
        "folder:Работа/*",
        "folder:Projects/*",
    ] {
        assert!(finds(&renamed, query, None), "{query}");
    }
    for query in [
        "folder:Archive",
        "folder:Работа",
        "folder:Arch/*",
        "folder:Proj",
    ] {
        assert!(!finds(&renamed, query, None), "{query}");
    }
    let sub = item(vec![place("jane", "inbox/Sub", T, None)]);
    assert!(finds(&sub, "folder:INBOX/*", None));
    assert!(finds(&sub, "folder:Inbox/Sub", None));
    assert!(!finds(&sub, "folder:INBOX", None));
}

#[test]
fn as_of_a_moment_a_renamed_folder_answers_to_the_name_it_had_then() {
    let mut projects = place("john.doe@example.org", "Projects", T, None);
    projects.renamed_to = vec!["Archive/Projects".into(), "Работа/Проекты".into()];
    projects.renamed_at_ms = vec![T + MINUTE, T + 2 * MINUTE];
    let renamed = item(vec![projects]);
    for (at, name) in [
        (T, "Projects"),
        (T + MINUTE - 1, "Projects"),
        (T + MINUTE, "Archive/Projects"),
        (T + 2 * MINUTE, "Работа/Проекты"),
    ] {
        for other in ["Projects", "Archive/Projects", "Работа/Проекты"] {
            let query = format!("folder:\"{other}\"");
            assert_eq!(
                finds(&renamed, &query, Some(at)),
                other == name,
                "{query} at T+{}",
                at - T
            );
        }
        assert_eq!(renamed.state.places[0].name_at(Some(at)), name);
    }
    assert_eq!(renamed.state.places[0].name_at(None), "Работа/Проекты");
    let then = renamed.state.places[0].known_at(Some(T + MINUTE));
    assert_eq!(then.renamed_to, ["Archive/Projects"]);
    assert_eq!(then.renamed_at_ms, [T + MINUTE]);
    assert_eq!(
        renamed.state.places[0].known_at(None),
        renamed.state.places[0]
    );
    let mut expunged = place("jane", "INBOX", T, Some(T + MINUTE));
    expunged.ended_by = Some("MessageExpunge".into());
    let before = expunged.known_at(Some(T + MINUTE - 1));
    assert_eq!(
        (before.until_ms, before.ended_by, before.ended_job),
        (None, None, None),
        "its end came later"
    );
    assert_eq!(expunged.known_at(Some(T + MINUTE)), expunged);
    assert!(
        finds(&renamed, "folder:Projects", None),
        "any name, without a time"
    );
}

#[test]
fn flags_set_and_cleared_over_time() {
    let mut flagged = item(vec![
        place("jane", "INBOX", T, None),
        place("jane", "Copy", T + 2 * MINUTE, None),
    ]);
    flagged.state.places[0].flags_on_arrival = vec!["$Label1".into()];
    flagged.state.flag_changes = vec![
        change(0, T + MINUTE, true, &["\\Seen"]),
        change(0, T + 3 * MINUTE, false, &["\\Seen", "$Label1"]),
        change(1, T + 4 * MINUTE, true, &["\\Flagged"]),
    ];
    assert!(finds(&flagged, "flag:$Label1", Some(T)));
    assert!(!finds(&flagged, "flag:seen", Some(T)));
    assert!(finds(&flagged, "flag:seen flag:$Label1", Some(T + MINUTE)));
    assert!(finds(&flagged, "flag:\\SEEN", Some(T + 2 * MINUTE)));
    assert!(
        !finds(&flagged, "flag:$label1", Some(T + MINUTE)),
        "keywords are exact"
    );
    assert!(!finds(&flagged, "flag:seen", Some(T + 3 * MINUTE)));
    assert!(!finds(&flagged, "flag:flagged", Some(T + 3 * MINUTE)));
    // Now: the flags now, in either place.
    assert!(finds(
        &flagged,
        "flag:flagged -flag:seen -flag:$Label1",
        None
    ));
}

#[test]
fn a_deleted_message_has_the_flags_its_places_had_when_they_ended() {
    let mut gone = item(vec![place("jane", "INBOX", T, Some(T + 5 * MINUTE))]);
    gone.state.flag_changes = vec![
        change(0, T + MINUTE, true, &["\\Seen"]),
        change(0, T + 5 * MINUTE, true, &["\\Deleted"]),
    ];
    assert!(finds(&gone, "flag:seen flag:deleted deleted:yes", None));
    assert!(finds(
        &gone,
        "flag:seen -flag:deleted",
        Some(T + 2 * MINUTE)
    ));
    // At its end no place holds it: at that time it has no flags at all.
    assert!(!finds(&gone, "flag:seen", Some(T + 5 * MINUTE)));
}

#[test]
fn the_text_is_read_once_and_only_for_body_and_bare_word_terms() {
    let ctx = berlin();
    let reads = Cell::new(0);
    let mut text = || {
        reads.set(reads.get() + 1);
        ItemText {
            body: "Die Grüße aus Köln".into(),
            attachments: "Straße 12".into(),
        }
    };
    let it = item(vec![place("jane", "INBOX", T, None)]);
    let query = parse("subject:budget from:jane folder:INBOX", &ctx).unwrap();
    assert!(matches(&query, &it, &mut text, &ctx, None));
    assert_eq!(reads.get(), 0);
    let query = parse("body:grusse koln body:strasse budget", &ctx).unwrap();
    assert!(matches(&query, &it, &mut text, &ctx, None));
    assert_eq!(reads.get(), 1);
}

#[test]
fn directions_by_the_local_domains() {
    let ctx = berlin(); // local: Example.org
    let with = |from: &[&str], to: &[&str]| ItemDoc {
        from_domains: from.iter().map(|d| d.to_string()).collect(),
        recipient_domains: to.iter().map(|d| d.to_string()).collect(),
        ..doc()
    };
    let direction = |doc: &ItemDoc| {
        [Direction::Inbound, Direction::Outbound, Direction::Internal]
            .into_iter()
            .filter(|d| direction_matches(*d, doc, &ctx))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        direction(&with(&["corp.example"], &["example.org"])),
        [Direction::Inbound]
    );
    assert_eq!(
        direction(&with(&[], &["example.org"])),
        [Direction::Inbound]
    );
    assert_eq!(
        direction(&with(&["example.org"], &["example.org", "corp.example"])),
        [Direction::Outbound]
    );
    assert_eq!(
        direction(&with(&["example.org"], &["example.org"])),
        [Direction::Internal]
    );
    // A local draft to no one goes nowhere.
    assert_eq!(direction(&with(&["example.org"], &[])), []);
}

fn finds_text(field: TextField, what: TextMatch, doc: &ItemDoc, text: &ItemText) -> bool {
    matches_item_query(&ItemQuery::Text { field, text: what }, doc, text)
}

#[test]
fn word_rules_folding_columns_phrases_and_prefixes() {
    let doc = ItemDoc {
        to: vec![
            "John Doe <john.doe@example.org>".into(),
            "Jane Roe <jane@example.org>".into(),
        ],
        filenames: vec!["Отчёт 2026.pdf".into()],
        ..doc()
    };
    let text = ItemText {
        body: "Viele Grüße aus der STRASSE".into(),
        attachments: "東京タワー の 写真".into(),
    };
    let words = |w: &str| TextMatch::Words(w.into());
    let phrase = |p: &str| TextMatch::Phrase(p.into());
    let prefix = |p: &str| TextMatch::Prefix(p.into());
    let cases = [
        (TextField::Body, words("grusse"), true),
        (TextField::Body, words("GRÜSSE straße"), true),
        (TextField::Body, words("東京タワー"), true),
        (TextField::Any, words("quarterly 写真 roe"), true),
        (TextField::To, phrase("org jane roe"), true),
        (TextField::Addr, phrase("jane.doe@example.org"), true),
        (TextField::Subject, phrase("QUARTERLY budget"), true),
        (TextField::Subject, prefix("budg"), true),
        (TextField::Filename, prefix("отч"), true),
        (TextField::Filename, words("ОТЧЁТ"), true),
        (TextField::Body, prefix("viele gru"), true),
        (TextField::Body, words("gru"), false),
        (TextField::Subject, words("grusse"), false),
        (TextField::Subject, phrase("budget quarterly"), false),
        // A phrase does not run from the subject into the body.
        (TextField::Any, phrase("budget viele"), false),
        (TextField::From, words("ivan"), false),
        (TextField::Body, words("..."), false),
        (TextField::Body, phrase(""), false),
        (TextField::Body, prefix(""), false),
        (TextField::Filename, words("pd"), false),
    ];
    for (field, what, found) in cases {
        assert_eq!(
            finds_text(field, what.clone(), &doc, &text),
            found,
            "{field:?} {what:?}"
        );
    }
}

#[test]
fn exact_fields_ranges_and_attachments() {
    let doc = ItemDoc {
        has_attachment: true,
        object_uid: Some("uid-1".into()),
        ..doc()
    };
    let exact = |field, value: &str| ItemQuery::Exact {
        field,
        value: value.into(),
    };
    let text = ItemText::default();
    let is = |q: ItemQuery| matches_item_query(&q, &doc, &text);
    assert!(is(exact(ExactField::MessageId, "<m1@example.org>")));
    assert!(!is(exact(ExactField::MessageId, "<M1@example.org>")));
    assert!(is(exact(ExactField::Type, "mail")));
    assert!(is(exact(ExactField::FromDomain, "example.org")));
    assert!(is(exact(ExactField::RecipientDomain, "corp.example")));
    assert!(is(exact(ExactField::ObjectUid, "uid-1")));
    assert!(is(exact(ExactField::Digest, "d1")));
    let size = |from, to| ItemQuery::Range {
        field: RangeField::Size,
        from,
        to,
    };
    assert!(is(size(Some(2048), Some(2049))));
    assert!(!is(size(None, Some(2048))));
    assert!(!is(size(Some(2049), None)));
    assert!(is(ItemQuery::HasAttachment));
    assert!(is(ItemQuery::Not(Box::new(ItemQuery::Nothing))));
    assert!(!is(ItemQuery::And(vec![
        ItemQuery::All,
        ItemQuery::Nothing
    ])));
}
