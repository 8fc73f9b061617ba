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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// A mail message.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
