//! The archive's items as storages index them for e-discovery: one document per archived
//! message (one payload), in collection [`ITEMS`] keyed by the payload's digest, and the
//! query a storage answers over them ([`ItemQuery`], the part of a search that depends on the
//! message alone).
//!
//! Where a message lived, its flags and whether it was deleted change with every event and are
//! read from the log by the searching side, never from this document; a search's terms about
//! them reach the storage relaxed (replaced by [`ItemQuery::All`] or [`ItemQuery::Nothing`] so
//! the storage's answer holds every item the whole query matches).

use serde::{Deserialize, Serialize};

/// The collection of item documents, keyed by payload digest.
pub const ITEMS: &str = "items";

/// The key of [`crate::Record::extra`] whose object holds an item's text to index and never
/// to store: `{"index_text": {"body": "...", "attachments": "..."}}`. The text is the
/// message's, and payloads may be sealed at rest, so a storage indexes it and keeps it nowhere
/// readable (a contentless full-text table; a field excluded from `_source`).
pub const INDEX_TEXT: &str = "index_text";

/// What kind of item a document is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// A mail message.
    #[default]
    Mail,
    /// A Kolab event.
    Event,
    /// A Kolab task.
    Task,
    /// A Kolab contact or distribution list.
    Contact,
    /// A Kolab note.
    Note,
    /// A Kolab file.
    File,
    /// Any other Kolab object (journal, configuration).
    Other,
}

/// The stored document of an item (the record body of collection [`ITEMS`]). Addresses are
/// as the headers give them, decoded (`Name <local@domain>`); domains are lower case.
/// `Default` is an empty mail dated at the epoch, for building one field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDoc {
    /// The payload's SHA-256 digest, as the storage names it (the record's key).
    pub digest: String,
    /// What the item is.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// The Message-ID header, angle brackets kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The decoded Subject.
    #[serde(default)]
    pub subject: String,
    /// From (and Sender when different).
    #[serde(default)]
    pub from: Vec<String>,
    /// To.
    #[serde(default)]
    pub to: Vec<String>,
    /// Cc.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Bcc (known where the archived copy kept it, as a sender's copy does).
    #[serde(default)]
    pub bcc: Vec<String>,
    /// The domains of `from`.
    #[serde(default)]
    pub from_domains: Vec<String>,
    /// The domains of `to`, `cc` and `bcc`.
    #[serde(default)]
    pub recipient_domains: Vec<String>,
    /// The Date header (ms since the epoch, UTC); when absent or unreadable, when the message
    /// was first archived.
    pub date_ms: i64,
    /// The message's size in bytes.
    pub size: u64,
    /// Attachment file names, decoded.
    #[serde(default)]
    pub filenames: Vec<String>,
    /// True if the message has at least one attachment.
    #[serde(default)]
    pub has_attachment: bool,
    /// A Kolab object's UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_uid: Option<String>,
    /// True if the indexed body or attachment text was cut at the indexing limit.
    #[serde(default)]
    pub text_truncated: bool,
}

/// The text fields a word, phrase or prefix is looked for in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    /// Subject, body, every address and the attachments' names and text: a bare word.
    Any,
    /// The From addresses.
    From,
    /// The To addresses.
    To,
    /// The Cc addresses.
    Cc,
    /// The Bcc addresses.
    Bcc,
    /// Any address field.
    Addr,
    /// The Subject.
    Subject,
    /// The body text and the attachments' text.
    Body,
    /// The attachments' file names.
    Filename,
}

/// What a text term looks for. Words are matched as the storage's full-text index folds
/// them (case, diacritics, ß as ss: `bonnie_mail::fold_for_search`), on word boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMatch {
    /// Every word of this, in any order (a term of one word is the common case).
    Words(String),
    /// These words next to each other, in this order.
    Phrase(String),
    /// A word beginning with this.
    Prefix(String),
}

/// A field of exact values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExactField {
    /// The Message-ID, angle brackets included.
    MessageId,
    /// The item type, as [`ItemType`] is spelled in JSON.
    Type,
    /// A domain of the From addresses (lower case).
    FromDomain,
    /// A domain of the recipients (lower case).
    RecipientDomain,
    /// The Kolab object UID.
    ObjectUid,
    /// The payload digest.
    Digest,
}

/// A field of numbers, compared as ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeField {
    /// `date_ms`.
    Date,
    /// `size` in bytes.
    Size,
}

/// A query over item documents, as JSON in [`crate::RecordQuery::items`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemQuery {
    /// Every item.
    All,
    /// No item.
    Nothing,
    /// Items matching every one.
    And(Vec<ItemQuery>),
    /// Items matching at least one.
    Or(Vec<ItemQuery>),
    /// Items not matching it.
    Not(Box<ItemQuery>),
    /// Items with text in a field.
    Text {
        /// Where.
        field: TextField,
        /// What.
        #[serde(rename = "match")]
        text: TextMatch,
    },
    /// Items whose field has this value exactly (for lists: one of its values).
    Exact {
        /// Which.
        field: ExactField,
        /// The value.
        value: String,
    },
    /// Items whose number lies in `[from, to)`; an absent bound is open.
    Range {
        /// Which.
        field: RangeField,
        /// Inclusive lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<i64>,
        /// Exclusive upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<i64>,
    },
    /// Items with at least one attachment.
    HasAttachment,
}

/// An item's text to index, as [`crate::Record::extra`] carries it under [`INDEX_TEXT`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexText {
    /// The body text.
    #[serde(default)]
    pub body: String,
    /// The attachments' text.
    #[serde(default)]
    pub attachments: String,
}

impl IndexText {
    /// The text in a record's `extra` (none when `extra` is empty or has no [`INDEX_TEXT`]);
    /// an `extra` that is not a JSON object, or whose text is not strings, is refused.
    pub fn from_extra(extra: &str) -> Result<Self, crate::PluginError> {
        if extra.trim().is_empty() {
            return Ok(Self::default());
        }
        let refused = |e: serde_json::Error| {
            crate::PluginError::rejected(format!(
                "an item's extra must be {{\"{INDEX_TEXT}\": {{\"body\": \"...\", \"attachments\": \"...\"}}}}: {e}"
            ))
        };
        let mut extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(extra).map_err(refused)?;
        match extra.remove(INDEX_TEXT) {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_value(text).map_err(refused),
        }
    }
}

/// The text columns a storage indexes for an item, each apart (a phrase is looked for within
/// one), which [`TextField`]s name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextColumn {
    /// [`ItemDoc::subject`].
    Subject,
    /// [`IndexText::body`].
    Body,
    /// [`IndexText::attachments`].
    Attachments,
    /// [`ItemDoc::from`], one address a line.
    From,
    /// [`ItemDoc::to`].
    To,
    /// [`ItemDoc::cc`].
    Cc,
    /// [`ItemDoc::bcc`].
    Bcc,
    /// [`ItemDoc::filenames`], one a line.
    Filenames,
}

impl TextColumn {
    /// Every column, in the order storages lay them out.
    pub const ALL: [TextColumn; 8] = [
        TextColumn::Subject,
        TextColumn::Body,
        TextColumn::Attachments,
        TextColumn::From,
        TextColumn::To,
        TextColumn::Cc,
        TextColumn::Bcc,
        TextColumn::Filenames,
    ];

    /// The column's name in a storage's index (never an SQL keyword).
    pub fn name(self) -> &'static str {
        match self {
            TextColumn::Subject => "subject",
            TextColumn::Body => "body",
            TextColumn::Attachments => "attachments",
            TextColumn::From => "from_addr",
            TextColumn::To => "to_addr",
            TextColumn::Cc => "cc_addr",
            TextColumn::Bcc => "bcc_addr",
            TextColumn::Filenames => "filenames",
        }
    }

    /// The column's text of an item, unfolded: the storage folds and splits it into words.
    pub fn text(self, doc: &ItemDoc, text: &IndexText) -> String {
        match self {
            TextColumn::Subject => doc.subject.clone(),
            TextColumn::Body => text.body.clone(),
            TextColumn::Attachments => text.attachments.clone(),
            TextColumn::From => doc.from.join("\n"),
            TextColumn::To => doc.to.join("\n"),
            TextColumn::Cc => doc.cc.join("\n"),
            TextColumn::Bcc => doc.bcc.join("\n"),
            TextColumn::Filenames => doc.filenames.join("\n"),
        }
    }
}

impl TextField {
    /// The columns a term of this field is looked for in.
    pub fn columns(self) -> &'static [TextColumn] {
        use TextColumn as C;
        match self {
            TextField::Any => &C::ALL,
            TextField::From => &[C::From],
            TextField::To => &[C::To],
            TextField::Cc => &[C::Cc],
            TextField::Bcc => &[C::Bcc],
            TextField::Addr => &[C::From, C::To, C::Cc, C::Bcc],
            TextField::Subject => &[C::Subject],
            TextField::Body => &[C::Body, C::Attachments],
            TextField::Filename => &[C::Filenames],
        }
    }
}

impl ExactField {
    /// The index term an item record carries for this field ([`ExactField::Digest`] is the
    /// record's key instead).
    pub fn index_field(self) -> &'static str {
        match self {
            ExactField::MessageId => "message_id",
            ExactField::Type => "type",
            ExactField::FromDomain => "from_domain",
            ExactField::RecipientDomain => "recipient_domain",
            ExactField::ObjectUid => "object_uid",
            ExactField::Digest => "digest",
        }
    }
}

impl ItemDoc {
    /// The document and the text to index of an item record (collection [`ITEMS`]), as a
    /// storage reads them to index it: refused when the body is not an item document of the
    /// record's key, or `extra` not [`IndexText`].
    pub fn from_record(record: &crate::Record) -> Result<(Self, IndexText), crate::PluginError> {
        let key = record.key.as_str();
        let doc: Self = serde_json::from_str(record.body.as_str()).map_err(|e| {
            crate::PluginError::rejected(format!("item {key} is not an item document: {e}"))
        })?;
        if doc.digest != key {
            return Err(crate::PluginError::rejected(format!(
                "item {key} is the document of another digest ({})",
                doc.digest
            )));
        }
        let text = IndexText::from_extra(record.extra.as_str())
            .map_err(|e| crate::PluginError::rejected(format!("item {key}: {}", e.message)))?;
        Ok((doc, text))
    }
}

/// The members of an [`ItemQuery::Or`] with its exact terms gathered by field: `(field,
/// values)` for every field with an exact term (in the order first met), and the other
/// members. A list of many Message-IDs then becomes one lookup of a list, which neither
/// SQLite's expression depth nor Elasticsearch's clause count bounds.
pub fn exact_lists(any: &[ItemQuery]) -> (Vec<(ExactField, Vec<&str>)>, Vec<&ItemQuery>) {
    let mut lists: Vec<(ExactField, Vec<&str>)> = Vec::new();
    let mut others = Vec::new();
    for query in any {
        match query {
            ItemQuery::Exact { field, value } => match lists.iter_mut().find(|(f, _)| f == field) {
                Some((_, values)) => values.push(value),
                None => lists.push((*field, vec![value])),
            },
            other => others.push(other),
        }
    }
    (lists, others)
}
