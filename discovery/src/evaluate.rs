//! What a query means on one item: [`matches`], the whole query on an item's document, text
//! and state, and [`matches_item_query`], the storage's part on a document, the reference
//! sqlite-storage and Elasticsearch are tested against.
//!
//! # Words
//!
//! An item's text is laid out in columns ([`TextColumn`]): the subject, the body, the
//! attachments' text, From, To, Cc, Bcc (each one address a line) and the attachments' file
//! names (one a line). A text field looks in some of them ([`TextField::columns`]): a bare word
//! in all, `addr:` in the four address columns, `body:` in the body and the attachments' text.
//! The words of a column, and of a term, are [`bonnie_mail::index_words`]: folded by
//! `fold_for_search` (case, diacritics, ß as ss), split into the runs of alphanumeric
//! characters. Then:
//!
//! - words (`Words`): every word of the term is a word of one of the columns (not
//!   necessarily the same one);
//! - a phrase: the term's words follow each other in one column (a line break is no
//!   boundary: `to:"org jane"` finds To `john@example.org, Jane <jane@example.com>`, as
//!   both storages do);
//! - a prefix: as words, its last word a prefix of a word;
//! - a term with no word finds nothing.
//!
//! # Exact fields, ranges, attachments, direction
//!
//! `message-id:`, `type:` and the domains compare the document's value (for lists, any one)
//! with the term's exactly; ranges are `[from, to)`, `date_ms` or `size` in bytes.
//! `direction:` compares the document's From and recipient domains with
//! [`Context::local_domains`] in lower case (see [`crate::query::Direction`]).
//!
//! # Places, flags, deletion
//!
//! Without an `as_of` time a query asks about the item's whole history; with one, about the
//! mailboxes as they stood then. An item the archive had not seen by `as_of` (or, without
//! it, with no place at all) matches nothing, not even `*` or a negation.
//!
//! - `folder:` matches a place whose folder had the name as its owner sees it: without
//!   `as_of` any name it had while the message was there ([`Place::folder_names`]), with it
//!   the name it had then ([`Place::name_at`]); `INBOX` in any case, other names exactly. `folder:Work/*` matches `Work` and every
//!   folder below it (`Work/2026`), `folder:Work` only `Work`.
//! - `user:` matches a place whose custodian's login is the value (in any case), or whose
//!   login's local part (before `@`) is.
//! - The places looked at: without `as_of` every place the item ever had; with it, those it
//!   was in at `as_of`.
//! - `flag:` with `as_of`: a flag the item had at `as_of` in a place it was in then. Without:
//!   a flag it has now in a place it is in now, or, for a deleted item, one it had in any of
//!   its places when it left them. System flags are compared in any case, keywords exactly.
//! - `deleted:yes`: no place held the item at `as_of` (now without it), though it had
//!   arrived ([`ItemState::deleted_at`]).

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use bonnie_mail::index_words;
use bonnie_plugin_api::items::{
    ExactField, IndexText, ItemDoc, ItemQuery, RangeField, TextColumn, TextField, TextMatch,
};

use crate::{
    item::{Item, ItemState, ItemText, Place},
    query::{Context, Direction, Query, Term, type_name},
};

/// True if `item` matches `query` at `as_of` (ms since the epoch; its whole history when
/// `None`). `text` gives the item's body and attachment text, called at most once, and only
/// when a body or bare-word term must be decided.
pub fn matches(
    query: &Query,
    item: &Item,
    text: &mut dyn FnMut() -> ItemText,
    ctx: &Context,
    as_of: Option<i64>,
) -> bool {
    if !item.state.existed_at(as_of) {
        return false;
    }
    let mut evaluation = Evaluation {
        item,
        ctx,
        as_of,
        load: text,
        text: None,
        words: Words::default(),
    };
    evaluation.query(query)
}

/// True if `doc`, with its text `text`, matches the storage's query `query`.
pub fn matches_item_query(query: &ItemQuery, doc: &ItemDoc, text: &ItemText) -> bool {
    document_matches(query, doc, &index_text(text), &mut Words::default())
}

fn index_text(text: &ItemText) -> IndexText {
    IndexText {
        body: text.body.clone(),
        attachments: text.attachments.clone(),
    }
}

fn document_matches(query: &ItemQuery, doc: &ItemDoc, text: &IndexText, words: &mut Words) -> bool {
    match query {
        ItemQuery::All => true,
        ItemQuery::Nothing => false,
        ItemQuery::And(all) => all.iter().all(|q| document_matches(q, doc, text, words)),
        ItemQuery::Or(any) => any.iter().any(|q| document_matches(q, doc, text, words)),
        ItemQuery::Not(inner) => !document_matches(inner, doc, text, words),
        ItemQuery::Text { field, text: what } => {
            text_matches(what, &words.of(field.columns(), doc, text))
        }
        ItemQuery::Exact { field, value } => exact_matches(*field, value, doc),
        ItemQuery::Range { field, from, to } => range_matches(*field, *from, *to, doc),
        ItemQuery::HasAttachment => doc.has_attachment,
    }
}

/// An item's words by column, each column folded and split once, when a term first looks in
/// it.
#[derive(Default)]
struct Words {
    columns: HashMap<TextColumn, Vec<String>>,
}

impl Words {
    /// The words of each of `columns` of `doc`, `text` holding the body and attachments' text
    /// when they are among them.
    fn of(&mut self, columns: &[TextColumn], doc: &ItemDoc, text: &IndexText) -> Vec<&[String]> {
        for column in columns {
            self.columns
                .entry(*column)
                .or_insert_with(|| index_words(&column.text(doc, text)));
        }
        columns
            .iter()
            .filter_map(|column| self.columns.get(column).map(Vec::as_slice))
            .collect()
    }
}

/// True if the words of a field's columns hold `what` (see the module documentation).
fn text_matches(what: &TextMatch, columns: &[&[String]]) -> bool {
    let (wanted, phrase, prefix) = match what {
        TextMatch::Words(words) => (index_words(words), false, false),
        TextMatch::Phrase(words) => (index_words(words), true, false),
        TextMatch::Prefix(words) => (index_words(words), false, true),
    };
    let Some((last, leading)) = wanted.split_last() else {
        return false;
    };
    if phrase {
        return columns.iter().any(|words| {
            words
                .windows(wanted.len())
                .any(|window| window == wanted.as_slice())
        });
    }
    let has = |wanted: &str, prefix: bool| {
        columns.iter().copied().flatten().any(|word| match prefix {
            true => word.starts_with(wanted),
            false => word == wanted,
        })
    };
    leading.iter().all(|word| has(word, false)) && has(last, prefix)
}

/// True if a text field needs the item's body or attachment text.
pub(crate) fn needs_text(field: TextField) -> bool {
    field
        .columns()
        .iter()
        .any(|c| matches!(c, TextColumn::Body | TextColumn::Attachments))
}

fn exact_matches(field: ExactField, value: &str, doc: &ItemDoc) -> bool {
    match field {
        ExactField::MessageId => doc.message_id.as_deref() == Some(value),
        ExactField::Type => type_name(doc.item_type) == value,
        ExactField::FromDomain => doc.from_domains.iter().any(|d| d == value),
        ExactField::RecipientDomain => doc.recipient_domains.iter().any(|d| d == value),
        ExactField::ObjectUid => doc.object_uid.as_deref() == Some(value),
        ExactField::Digest => doc.digest == value,
    }
}

fn range_matches(field: RangeField, from: Option<i64>, to: Option<i64>, doc: &ItemDoc) -> bool {
    let value = match field {
        RangeField::Date => doc.date_ms,
        RangeField::Size => i64::try_from(doc.size).unwrap_or(i64::MAX),
    };
    from.is_none_or(|from| value >= from) && to.is_none_or(|to| value < to)
}

/// The local domains as documents spell domains: lower case.
pub(crate) fn local_domains(ctx: &Context) -> Vec<String> {
    ctx.local_domains.iter().map(|d| d.to_lowercase()).collect()
}

fn direction_matches(direction: Direction, doc: &ItemDoc, ctx: &Context) -> bool {
    let local_domains = local_domains(ctx);
    let local = |domain: &String| local_domains.contains(domain);
    let from_local = doc.from_domains.iter().any(local);
    match direction {
        Direction::Inbound => !from_local,
        Direction::Outbound => from_local && !doc.recipient_domains.iter().all(local),
        Direction::Internal => {
            from_local
                && !doc.recipient_domains.is_empty()
                && doc.recipient_domains.iter().all(local)
        }
    }
}

/// A folder name with an `INBOX` first level in upper case, as `folder:` compares names.
fn folder_key(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let first = if first.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        first
    };
    match rest {
        Some(rest) => format!("{first}/{rest}"),
        None => first.to_string(),
    }
}

/// True if the folder `name` is what `folder:pattern` names.
fn folder_matches(pattern: &str, name: &str) -> bool {
    let name = folder_key(name);
    match pattern.strip_suffix("/*") {
        Some(base) => {
            let base = folder_key(base);
            name == base
                || name
                    .strip_prefix(base.as_str())
                    .is_some_and(|below| below.starts_with('/'))
        }
        None => name == folder_key(pattern),
    }
}

/// True if `user:value` names the custodian `login`.
fn user_matches(value: &str, login: &str) -> bool {
    login.to_lowercase() == value.to_lowercase()
        || login
            .split_once('@')
            .is_some_and(|(local, _)| local.to_lowercase() == value.to_lowercase())
}

/// True if `flags` hold `flag` (a system flag in any case, a keyword exactly).
fn has_flag(flags: &BTreeSet<String>, flag: &str) -> bool {
    if flag.starts_with('\\') {
        flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    } else {
        flags.contains(flag)
    }
}

/// One item's evaluation: its text loaded the first time a term needs it, each column's words
/// read once.
struct Evaluation<'a> {
    item: &'a Item,
    ctx: &'a Context,
    as_of: Option<i64>,
    load: &'a mut dyn FnMut() -> ItemText,
    text: Option<IndexText>,
    words: Words,
}

impl Evaluation<'_> {
    fn query(&mut self, query: &Query) -> bool {
        match query {
            Query::All => true,
            Query::And(all) => all.iter().all(|q| self.query(q)),
            Query::Or(any) => any.iter().any(|q| self.query(q)),
            Query::Not(inner) => !self.query(inner),
            Query::Term(term) => self.term(term),
        }
    }

    /// The places a term about places looks at: every one without `as_of`, those active at
    /// `as_of` with it.
    fn places(&self) -> impl Iterator<Item = &Place> {
        let as_of = self.as_of;
        self.item
            .state
            .places
            .iter()
            .filter(move |p| as_of.is_none() || p.active_at(as_of))
    }

    fn term(&mut self, term: &Term) -> bool {
        let doc = &self.item.doc;
        match term {
            Term::Text { field, text } => {
                if needs_text(*field) && self.text.is_none() {
                    self.text = Some(index_text(&(self.load)()));
                }
                // Without the item's text loaded, the field's columns are the document's.
                let empty = IndexText::default();
                let item_text = self.text.as_ref().unwrap_or(&empty);
                text_matches(text, &self.words.of(field.columns(), doc, item_text))
            }
            Term::Exact { field, value } => exact_matches(*field, value, doc),
            Term::Range { field, from, to } => range_matches(*field, *from, *to, doc),
            Term::HasAttachment => doc.has_attachment,
            Term::Direction(direction) => direction_matches(*direction, doc, self.ctx),
            Term::Folder(pattern) => {
                let as_of = self.as_of;
                self.places().any(|p| match as_of {
                    None => p.folder_names().any(|name| folder_matches(pattern, name)),
                    Some(_) => folder_matches(pattern, p.name_at(as_of)),
                })
            }
            Term::User(user) => self.places().any(|p| user_matches(user, &p.user)),
            Term::Flag(flag) => flags_then(&self.item.state, self.as_of)
                .iter()
                .any(|flags| has_flag(flags, flag)),
            Term::Deleted(deleted) => self.item.state.deleted_at(self.as_of).is_some() == *deleted,
        }
    }
}

/// The flag sets `flag:` looks at (see the module documentation): one per place.
fn flags_then(state: &ItemState, as_of: Option<i64>) -> Vec<BTreeSet<String>> {
    if as_of.is_some() || state.places_at(None).next().is_some() {
        return state
            .places_at(as_of)
            .map(|(place, _)| state.flags_at(place, as_of))
            .collect();
    }
    state
        .places
        .iter()
        .enumerate()
        .map(|(place, p)| state.flags_at(place, p.until_ms))
        .collect()
}
