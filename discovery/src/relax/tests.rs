//! The plan of a query: what the storage gets and what is left, on examples; and, for random
//! queries and random items, that the storage's answer holds every item the query matches and
//! that it with the residual is exactly the query; and that a real SQLite storage answers the
//! storage's part as the reference does.

use std::collections::BTreeSet;

use bonnie_model::items::record;
use bonnie_plugin_api::{
    items::{ITEMS, ItemDoc, ItemType, TextField, TextMatch},
    plugin::storage_box,
    storage::{RecordQuery, StorageClient},
};
use bonnie_sqlite_storage::SqliteStorage;
use proptest::prelude::*;

use super::*;
use crate::{
    evaluate::{matches, matches_item_query},
    item::{FlagChange, Item, ItemState, ItemText, Place},
    query::{
        parse,
        tests::{WORDS, berlin, instant, query_tree},
    },
};

fn planned(text: &str) -> Plan {
    plan(&parse(text, &berlin()).unwrap(), &berlin())
}

fn q(text: &str) -> Query {
    parse(text, &berlin()).unwrap()
}

fn words(field: TextField, w: &str) -> ItemQuery {
    ItemQuery::Text {
        field,
        text: TextMatch::Words(w.into()),
    }
}

fn domain(field: ExactField) -> ItemQuery {
    ItemQuery::Exact {
        field,
        value: "example.org".into(),
    }
}

#[test]
fn exact_conjuncts_go_to_the_storage_and_only_the_rest_is_left() {
    let p = planned("budget folder:Work");
    assert_eq!(p.storage, words(TextField::Any, "budget"));
    assert_eq!(p.residual, Some(q("folder:Work")));
    assert!(!p.needs_text);

    let p = planned("(budget folder:Work) subject:q3 -deleted:yes");
    assert_eq!(
        p.storage,
        ItemQuery::And(vec![
            words(TextField::Any, "budget"),
            words(TextField::Subject, "q3")
        ])
    );
    assert_eq!(p.residual, Some(q("folder:Work -deleted:yes")));

    let p = planned("from:jane subject:q3 direction:inbound");
    assert_eq!(
        p.storage,
        ItemQuery::And(vec![
            words(TextField::From, "jane"),
            words(TextField::Subject, "q3"),
            ItemQuery::Not(Box::new(domain(ExactField::FromDomain))),
        ])
    );
    assert_eq!(p.residual, None);
    assert!(!p.needs_text);
}

#[test]
fn terms_the_storage_cannot_decide_become_all_by_polarity() {
    let p = planned("folder:Work OR body:budget");
    assert_eq!(p.storage, ItemQuery::All);
    assert_eq!(p.residual, Some(q("folder:Work OR body:budget")));
    assert!(p.needs_text);

    let p = planned("-folder:Trash");
    assert_eq!(p.storage, ItemQuery::All);
    assert!(!p.needs_text);

    // Under a negation a log term is bounded below: NOT (x AND folder) >= NOT x.
    let p = planned("-(subject:q3 folder:Work)");
    assert_eq!(p.storage, ItemQuery::All);
    let p = planned("-(subject:q3 OR folder:Work)");
    assert_eq!(
        p.storage,
        ItemQuery::Not(Box::new(words(TextField::Subject, "q3")))
    );
    assert!(p.residual.is_some());

    let p = planned("direction:internal");
    assert_eq!(
        p.storage,
        ItemQuery::And(vec![
            domain(ExactField::FromDomain),
            domain(ExactField::RecipientDomain)
        ])
    );
    assert_eq!(p.residual, Some(q("direction:internal")));
    assert_eq!(
        planned("direction:outbound").storage,
        domain(ExactField::FromDomain)
    );
    assert_eq!(planned("-direction:outbound").storage, ItemQuery::All);
}

#[test]
fn the_storage_query_is_simplified() {
    assert_eq!(planned("--budget").storage, words(TextField::Any, "budget"));
    assert_eq!(planned("* budget").storage, words(TextField::Any, "budget"));
    assert_eq!(planned("*").storage, ItemQuery::All);
    assert_eq!(planned("-*").storage, ItemQuery::Nothing);
    assert_eq!(planned("budget OR *").storage, ItemQuery::All);
    assert_eq!(planned("budget -*").storage, ItemQuery::Nothing);
    assert_eq!(
        planned("a OR (b OR c)").storage,
        ItemQuery::Or(vec![
            words(TextField::Any, "a"),
            words(TextField::Any, "b"),
            words(TextField::Any, "c")
        ])
    );
    assert_eq!(planned("-*").residual, None);
}

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(values).prop_map(str::to_string)
}

/// Addresses at local and foreign domains, with their domain.
const ADDRESSES: &[(&str, &str)] = &[
    ("Jane Doe <jane.doe@example.org>", "example.org"),
    ("john.doe@example.org", "example.org"),
    ("Иван Петров <ivan@corp.example>", "corp.example"),
    ("Müller <q3@straße.example>", "straße.example"),
];

fn addresses() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    prop::collection::vec(prop::sample::select(ADDRESSES), 0..3)
}

fn sentence() -> impl Strategy<Value = String> {
    prop::collection::vec(pick(WORDS), 0..5).prop_map(|w| w.join(" "))
}

fn domains(lists: &[&[(&str, &str)]]) -> Vec<String> {
    let mut domains: Vec<String> = lists
        .iter()
        .flat_map(|l| l.iter().map(|(_, d)| d.to_string()))
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

fn item_doc() -> impl Strategy<Value = ItemDoc> {
    let types = prop::sample::select(
        &[
            ItemType::Mail,
            ItemType::Event,
            ItemType::Task,
            ItemType::Contact,
            ItemType::Note,
            ItemType::File,
            ItemType::Other,
        ][..],
    );
    let message_id = prop::option::of(pick(&["<a@example.org>", "<b c@example.com>", "<q3@x>"]));
    let filenames = prop::collection::vec(
        pick(&["report.pdf", "Müller budget.xlsx", "日本語.txt"]),
        0..2,
    );
    (
        (types, message_id, sentence()),
        (addresses(), addresses(), addresses(), addresses()),
        (
            instant(),
            prop_oneof![0u64..100_000, any::<u64>()],
            filenames,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (item_type, message_id, subject),
                (from, to, cc, bcc),
                (date_ms, size, filenames, attached),
            )| {
                let names = |l: &[(&str, &str)]| l.iter().map(|(a, _)| a.to_string()).collect();
                ItemDoc {
                    digest: "d".into(),
                    item_type,
                    message_id,
                    subject,
                    from: names(&from),
                    to: names(&to),
                    cc: names(&cc),
                    bcc: names(&bcc),
                    from_domains: domains(&[&from]),
                    recipient_domains: domains(&[&to, &cc, &bcc]),
                    date_ms,
                    size,
                    has_attachment: attached || !filenames.is_empty(),
                    filenames,
                    object_uid: None,
                    text_truncated: false,
                }
            },
        )
}

const FLAGS: &[&str] = &["\\Seen", "\\Flagged", "\\Deleted", "$Label1", "Junk"];

fn flags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(pick(FLAGS), 0..3)
}

fn item_state() -> impl Strategy<Value = ItemState> {
    let place = (
        pick(&["john.doe@example.org", "jane@example.org", "shared"]),
        pick(&["INBOX", "Work", "Work/2026", "Работа/Проекты", "Trash"]),
        prop::collection::vec(pick(&["Archive/Work", "Работа"]), 0..2),
        instant(),
        prop::option::of(0i64..30 * 86_400_000),
        flags(),
    )
        .prop_map(
            |(user, name, renamed_to, from_ms, stay, flags_on_arrival)| Place {
                folder: format!("user/{user}/{name}"),
                user,
                name,
                renamed_to,
                renamed_at_ms: vec![],
                uniqueid: None,
                uidvalidity: None,
                uid: 1,
                from_ms,
                until_ms: stay.map(|s| from_ms + s),
                ended_by: stay.map(|_| "MessageExpunge".to_string()),
                ended_job: stay.map(|_| "expunge".to_string()),
                flags_on_arrival,
                job: "job".into(),
                backfilled: false,
                restored_by: None,
            },
        );
    let change = (0usize..3, instant(), any::<bool>(), flags());
    (
        prop::collection::vec(place, 1..4),
        prop::collection::vec(change, 0..5),
    )
        .prop_map(|(places, changes)| {
            let mut flag_changes: Vec<FlagChange> = changes
                .into_iter()
                .map(|(place, time_ms, set, flags)| FlagChange {
                    place: place % places.len(),
                    time_ms,
                    set,
                    flags,
                    login: None,
                    job: "job".into(),
                })
                .collect();
            flag_changes.sort_by_key(|c| c.time_ms);
            ItemState {
                places,
                flag_changes,
            }
        })
}

fn item_text() -> impl Strategy<Value = ItemText> {
    (sentence(), sentence()).prop_map(|(body, attachments)| ItemText { body, attachments })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_storage_answers_a_superset_and_with_the_residual_exactly_the_query(
        query in query_tree(),
        doc in item_doc(),
        state in item_state(),
        text in item_text(),
        as_of in prop::option::of(instant()),
    ) {
        let ctx = berlin();
        let item = Item { doc, state };
        prop_assume!(item.state.existed_at(as_of));
        let whole = matches(&query, &item, &mut || text.clone(), &ctx, as_of);
        let plan = plan(&query, &ctx);
        let storage = matches_item_query(&plan.storage, &item.doc, &text);
        prop_assert!(storage || !whole, "{} matches, its storage query {:?} not", query, plan.storage);
        match &plan.residual {
            None => prop_assert_eq!(storage, whole, "{}", query),
            Some(residual) => {
                // Without `needs_text`, the residual is decided without the item's text.
                let mut text_of = || {
                    assert!(plan.needs_text, "{query}: the residual read the text");
                    text.clone()
                };
                let rest = matches(residual, &item, &mut text_of, &ctx, as_of);
                prop_assert_eq!(storage && rest, whole, "{} (residual {})", query, residual);
            }
        }
    }
}

/// A real SQLite storage holding `corpus`, each item keyed by its place in it.
fn sqlite_with(corpus: &mut [(ItemDoc, ItemText)]) -> (tempfile::TempDir, StorageClient) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bonnie.db");
    let storage = StorageClient::new(storage_box(SqliteStorage::open(&path, 5000).unwrap()));
    for (n, (doc, text)) in corpus.iter_mut().enumerate() {
        doc.digest = format!("{n:064x}");
        storage.put(record(doc, text).unwrap()).unwrap();
    }
    (dir, storage)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// sqlite-storage answers a plan's storage query with exactly the items the reference
    /// finds.
    #[test]
    fn sqlite_answers_the_storage_query_as_the_reference_does(
        mut corpus in prop::collection::vec((item_doc(), item_text()), 1..20),
        queries in prop::collection::vec(query_tree(), 1..10),
    ) {
        let ctx = berlin();
        let (_dir, storage) = sqlite_with(&mut corpus);
        for query in queries {
            let storage_query = plan(&query, &ctx).storage;
            let answer = storage
                .query(&RecordQuery {
                    collection: ITEMS.to_string(),
                    items: Some(storage_query.clone()),
                    all: true,
                    ..RecordQuery::default()
                })
                .unwrap();
            let found: BTreeSet<String> = answer.iter().map(|r| r.key.to_string()).collect();
            let expected: BTreeSet<String> = corpus
                .iter()
                .filter(|(doc, text)| matches_item_query(&storage_query, doc, text))
                .map(|(doc, _)| doc.digest.clone())
                .collect();
            prop_assert_eq!(found, expected, "{} ({:?})", query, storage_query);
        }
    }
}
