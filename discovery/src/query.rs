//! The e-discovery query language: Gmail and Google Vault style, with piler's extras, parsed
//! once into a [`Query`] tree that [`crate::relax`] splits between the storage and the
//! searching side and [`crate::evaluate`] gives its meaning.
//!
//! # Terms
//!
//! | Term | Finds items |
//! |---|---|
//! | `word` (a bare word) | with the word in the subject, body, any address, an attachment's name or text |
//! | `from:` `to:` `cc:` `bcc:` | with the word in that address header (`Name <local@domain>`) |
//! | `addr:` | ... in any of the four |
//! | `subject:` | ... in the Subject |
//! | `body:` | ... in the body text or an attachment's text |
//! | `filename:` | ... in an attachment's file name |
//! | `has:attachment` | with at least one attachment |
//! | `larger:10M` `smaller:10M` | larger (smaller) than the size, in bytes; `K`, `M`, `G` are binary multiples (1K = 1024 bytes), any case |
//! | `after:D` `before:D` | dated (Date header, else first archived) at or after / before the start of `D` |
//! | `folder:Work` | that lived in the folder, as its owner names it (`INBOX` in any case); `folder:Work/*` also its subfolders |
//! | `user:john.doe` | of that custodian (the folder's owner): the login, or its local part |
//! | `message-id:<id@host>` | with that Message-ID (angle brackets added when left out) |
//! | `flag:seen` | flagged so: `seen answered flagged deleted draft` are the system flags (any case, with or without `\`), any other value a keyword (exact) |
//! | `direction:inbound` | `inbound` (no From domain local), `outbound` (a From domain local, a recipient domain not), `internal` (a From domain local, at least one recipient, every recipient domain local); needs the local domains |
//! | `deleted:yes` | expunged from every place (`no`: still in one; `true`/`false` too) |
//! | `type:mail` | of that kind: `mail event task contact note file other` |
//! | `*` | every item |
//!
//! Dates: `2026-11-28`, `2026/11/28`, `2026-11-28T10:00`, `2026-11-28T10:00:00`, with
//! fractional seconds too, all in [`Context::zone`]; `2026-11-28T10:00:00+01:00` and
//! `2026-11-28T09:00:00Z` name their offset (quoted, a space may stand for the `T`). A date
//! is its first instant there, so `after:2026-11-28 before:2026-11-29` is that day however
//! long it is (23 or 25 hours on a daylight-saving change). A clock time the zone skips
//! (02:30 on the spring change) is read as the same time after the gap (03:30), one it
//! repeats as its first occurrence.
//!
//! A value ends at a space or a parenthesis: one with spaces or parentheses is quoted
//! (`folder:"My Folder"`). A `-` inside a word, or right after a field's `:`, is part of the
//! value (`subject:-x` looks for `x`; `-subject:x` leaves it out).
//!
//! # Words
//!
//! Words are matched as the storages index them (see [`crate::evaluate`]): folded by
//! `bonnie_mail::fold_for_search` (case, diacritics, ß as ss), a word is a run of letters and
//! digits. A value of one word finds items with that word; `word*` those with a word beginning
//! with it (a prefix is one word); a quoted value (`"quarterly report"`) the words next to each
//! other in that order, and so does a value that is several words when folded
//! (`from:jane.doe@example.org`, `subject:foo-bar`).
//!
//! # Operators
//!
//! Terms side by side must all match (implicit AND; `AND` may be written), `a OR b` either,
//! `-a` or `NOT a` not `a`; parentheses group. `OR`, `AND` and `NOT` are operators in upper
//! case only (as in Gmail); `or` is a word. **OR binds tighter than AND**, as in Gmail and
//! Vault: `a OR b c` is `(a OR b) c`, so `from:jane OR from:john subject:budget` is what it
//! reads like. `-` and `NOT` bind tighter still: `-a OR b` is `(-a) OR b`.
//!
//! `field:(...)` gives every value inside the field: `from:(jane OR john)` is
//! `from:jane OR from:john`, `subject:(budget 2026)` both words in the subject, and inside
//! `field:(...)` a `:` is part of a value (`after:(2026-11-28T10:00 OR ...)`). A quoted
//! value takes `\"` for a quote and `\\` for a backslash.
//!
//! # Limits
//!
//! A query is at most [`MAX_QUERY_BYTES`] (16 KiB) long and nests parentheses, negations and
//! field groups at most [`MAX_DEPTH`] (64) deep; control characters other than tab and line
//! breaks are refused. Every error names the column (1-based, in characters) and what is
//! wrong there. A range that matches nothing by itself (`smaller:0`) or with its sibling
//! (`after:2026-12-01 before:2026-11-01`) is an error rather than an empty answer.
//!
//! # Canonical text
//!
//! A [`Query`] prints (`Display`) as a text that parses back to the same tree: every tree
//! [`parse`] makes. Dates print as UTC instants (`after:2026-11-27T23:00:00Z`), sizes in bytes,
//! flags without their backslash. Trees only code makes print as an equivalent query: an
//! `And` or `Or` of fewer than two, a range with both or no bounds. Domain, UID and digest
//! terms print with their JSON names, and a prefix of several words quoted, which no query
//! can write.

mod parse;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use bonnie_plugin_api::items::{ExactField, ItemType, RangeField, TextField, TextMatch};
use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};

pub use parse::{instant, parse};

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// How deep parentheses, negations and field groups may nest.
pub const MAX_DEPTH: usize = 64;

/// What a query is read and decided against: the installation's settings.
#[derive(Debug, Clone)]
pub struct Context {
    /// The zone of dates and times written without an offset.
    pub zone: TimeZone,
    /// The domains whose addresses are local, for `direction:` (compared in lower case).
    pub local_domains: Vec<String>,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// Every item (`*`).
    All,
    /// Items matching every one.
    And(Vec<Query>),
    /// Items matching at least one.
    Or(Vec<Query>),
    /// Items not matching it.
    Not(Box<Query>),
    /// One term.
    Term(Term),
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// Words in a text field (the storage decides it exactly).
    Text {
        /// Where.
        field: TextField,
        /// What; the text as written, folded when matched.
        text: TextMatch,
    },
    /// An exact value: `message-id:` and `type:` (the storage decides it exactly).
    Exact {
        /// Which.
        field: ExactField,
        /// The value (a Message-ID with its angle brackets, a type as JSON spells it).
        value: String,
    },
    /// A number in `[from, to)`: `after:`/`before:` (ms since the epoch) and
    /// `larger:`/`smaller:` (bytes).
    Range {
        /// Which.
        field: RangeField,
        /// Inclusive lower bound.
        from: Option<i64>,
        /// Exclusive upper bound.
        to: Option<i64>,
    },
    /// `has:attachment`.
    HasAttachment,
    /// `direction:`, decided on the document against [`Context::local_domains`].
    Direction(Direction),
    /// `folder:`, a folder name as its owner sees it; a trailing `/*` takes the subfolders.
    Folder(String),
    /// `user:`, a custodian's login or its local part.
    User(String),
    /// `flag:`, a system flag with its backslash (`\Seen`) or a keyword.
    Flag(String),
    /// `deleted:`, true for items no place holds any more.
    Deleted(bool),
}

/// Which way a message went, as the local domains say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// No From domain is local.
    Inbound,
    /// A From domain is local and at least one recipient domain is not.
    Outbound,
    /// A From domain is local, there is a recipient, and every recipient domain is local.
    Internal,
}

/// A query that cannot be read: where (1-based column, in characters) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// The column of the character at fault.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

/// The item types as `type:` names them (and JSON spells them).
pub(crate) const ITEM_TYPES: [(&str, ItemType); 7] = [
    ("mail", ItemType::Mail),
    ("event", ItemType::Event),
    ("task", ItemType::Task),
    ("contact", ItemType::Contact),
    ("note", ItemType::Note),
    ("file", ItemType::File),
    ("other", ItemType::Other),
];

/// The name `type:` and JSON give `item_type`.
pub(crate) fn type_name(item_type: ItemType) -> &'static str {
    ITEM_TYPES
        .iter()
        .find(|(_, t)| *t == item_type)
        .map_or("other", |(name, _)| name)
}

/// The system flags `flag:` knows, as IMAP spells them.
pub(crate) const SYSTEM_FLAGS: [&str; 5] =
    ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

impl Direction {
    /// The name `direction:` gives it.
    fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

fn text_field_name(field: TextField) -> Option<&'static str> {
    Some(match field {
        TextField::Any => return None,
        TextField::From => "from",
        TextField::To => "to",
        TextField::Cc => "cc",
        TextField::Bcc => "bcc",
        TextField::Addr => "addr",
        TextField::Subject => "subject",
        TextField::Body => "body",
        TextField::Filename => "filename",
    })
}

/// True if `value` reads back as itself unquoted after `field:` (or, `bare`, as a word on its
/// own, where `:`, a leading `-`, a `*` and the operators mean something else).
fn reads_unquoted(value: &str, bare: bool) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '"'))
        && !(bare
            && (value.contains([':', '*'])
                || value.starts_with('-')
                || matches!(value, "OR" | "AND" | "NOT")))
}

/// `value` as a query writes it: unquoted when it reads back so, else quoted.
fn write_value(f: &mut fmt::Formatter<'_>, value: &str, bare: bool) -> fmt::Result {
    if reads_unquoted(value, bare) {
        return f.write_str(value);
    }
    write_quoted(f, value)
}

/// `value` in quotes, its quotes and backslashes escaped.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// An instant as the canonical text writes it: RFC 3339 in UTC, clamped to the years jiff
/// reads (which every parsed date is within).
fn write_instant(f: &mut fmt::Formatter<'_>, ms: i64) -> fmt::Result {
    let instant = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    write!(f, "{instant}")
}

fn write_range(
    f: &mut fmt::Formatter<'_>,
    field: RangeField,
    from: Option<i64>,
    to: Option<i64>,
) -> fmt::Result {
    // Sizes are never negative: a lower bound of 0 or less is no bound, an upper one no item.
    let (from, to) = match field {
        RangeField::Date => (from, to),
        RangeField::Size => {
            if to.is_some_and(|t| t <= 0) {
                return f.write_str("-*");
            }
            (from.filter(|f| *f > 0), to)
        }
    };
    let lower = |f: &mut fmt::Formatter<'_>, from: i64| match field {
        RangeField::Date => {
            f.write_str("after:")?;
            write_instant(f, from)
        }
        RangeField::Size => write!(f, "larger:{}", from - 1),
    };
    let upper = |f: &mut fmt::Formatter<'_>, to: i64| match field {
        RangeField::Date => {
            f.write_str("before:")?;
            write_instant(f, to)
        }
        RangeField::Size => write!(f, "smaller:{to}"),
    };
    match (from, to) {
        (None, None) => f.write_str("*"),
        (Some(from), None) => lower(f, from),
        (None, Some(to)) => upper(f, to),
        (Some(from), Some(to)) => {
            f.write_str("(")?;
            lower(f, from)?;
            f.write_str(" ")?;
            upper(f, to)?;
            f.write_str(")")
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Text { field, text } => {
                let name = text_field_name(*field);
                if let Some(name) = name {
                    write!(f, "{name}:")?;
                }
                let bare = name.is_none();
                match text {
                    TextMatch::Words(words) => write_value(f, words, bare),
                    // Quoted even when it would read unquoted: unquoted, one word is Words.
                    TextMatch::Phrase(phrase) => write_quoted(f, phrase),
                    TextMatch::Prefix(stem) => {
                        // With its star an operator's name is a word (`OR*`), and a quoted
                        // stem would not read back as a prefix.
                        if matches!(stem.as_str(), "OR" | "AND" | "NOT") {
                            f.write_str(stem)?;
                        } else {
                            write_value(f, stem, bare)?;
                        }
                        f.write_str("*")
                    }
                }
            }
            Term::Exact { field, value } => {
                let name = match field {
                    ExactField::MessageId => "message-id",
                    ExactField::Type => "type",
                    ExactField::FromDomain => "from_domain",
                    ExactField::RecipientDomain => "recipient_domain",
                    ExactField::ObjectUid => "object_uid",
                    ExactField::Digest => "digest",
                };
                write!(f, "{name}:")?;
                write_value(f, value, false)
            }
            Term::Range { field, from, to } => write_range(f, *field, *from, *to),
            Term::HasAttachment => f.write_str("has:attachment"),
            Term::Direction(direction) => write!(f, "direction:{}", direction.name()),
            Term::Folder(folder) => {
                f.write_str("folder:")?;
                write_value(f, folder, false)
            }
            Term::User(user) => {
                f.write_str("user:")?;
                write_value(f, user, false)
            }
            Term::Flag(flag) => {
                f.write_str("flag:")?;
                match SYSTEM_FLAGS.iter().find(|s| s.eq_ignore_ascii_case(flag)) {
                    Some(system) => f.write_str(&system[1..].to_ascii_lowercase()),
                    None => write_value(f, flag, false),
                }
            }
            Term::Deleted(deleted) => f.write_str(if *deleted {
                "deleted:yes"
            } else {
                "deleted:no"
            }),
        }
    }
}

/// How a query's text reads as an operand: an AND of terms side by side, an OR, or one atom
/// (a term, `*`, a negation).
#[derive(PartialEq)]
enum Shape {
    And,
    Or,
    Atom,
}

impl Query {
    fn shape(&self) -> Shape {
        match self {
            Query::And(parts) | Query::Or(parts) if parts.len() == 1 => parts[0].shape(),
            Query::And(parts) if parts.len() > 1 => Shape::And,
            Query::Or(parts) if parts.len() > 1 => Shape::Or,
            _ => Shape::Atom,
        }
    }

    /// Writes `self` as an operand of `OR` (`in_or`) or of the implicit AND: in parentheses
    /// when it is itself an AND, or an OR inside an OR, so that the text parses back to the
    /// same nesting.
    fn write_operand(&self, f: &mut fmt::Formatter<'_>, in_or: bool) -> fmt::Result {
        match self.shape() {
            Shape::And => write!(f, "({self})"),
            Shape::Or if in_or => write!(f, "({self})"),
            _ => write!(f, "{self}"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::All => f.write_str("*"),
            Query::Term(term) => write!(f, "{term}"),
            Query::Not(inner) => {
                f.write_str("-")?;
                match inner.shape() {
                    Shape::Atom => write!(f, "{inner}"),
                    Shape::And | Shape::Or => write!(f, "({inner})"),
                }
            }
            Query::And(parts) | Query::Or(parts) => {
                let in_or = matches!(self, Query::Or(_));
                match parts.as_slice() {
                    [] if in_or => f.write_str("-*"),
                    [] => f.write_str("*"),
                    [only] => write!(f, "{only}"),
                    _ => {
                        for (i, part) in parts.iter().enumerate() {
                            if i > 0 {
                                f.write_str(if in_or { " OR " } else { " " })?;
                            }
                            part.write_operand(f, in_or)?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }
}
