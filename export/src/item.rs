//! What the caller hands an export: the header (query, case, zone, checkpoint, key, the list of
//! items it promises), the options (format, part size, DOCID prefix) and each item: its
//! metadata (serde, as the manifest shows it), its native bytes as a reader, its extracted text
//! and attachments for the load file.

use std::io::Read;

use bonnie_ledger::Hash;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One `.eml` file per message: the archived bytes, unchanged.
    Eml,
    /// mboxrd files, one per part.
    Mbox,
    /// A Concordance / Relativity load file with natives, extracted text and attachments as
    /// family members.
    Dat,
}

impl Format {
    /// The name the command line and the manifest use.
    pub fn name(self) -> &'static str {
        match self {
            Format::Eml => "eml",
            Format::Mbox => "mbox",
            Format::Dat => "dat",
        }
    }
}

/// How an export is cut and named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The format.
    pub format: Format,
    /// The size in bytes at which a part's natives (or mbox file) stop growing and the next
    /// part begins; an item larger than this gets a part of its own.
    pub part_bytes: u64,
    /// What every DOCID begins with, before the item's number (1-based, 8 digits): ASCII
    /// letters, digits, `-` and `_`, e.g. `BONNIE` gives `BONNIE00000001`.
    pub docid_prefix: String,
    /// How many items are written between two commits (a `syncfs` and the state saved): a
    /// rerun after a crash writes again what came after the last. 1 makes every item durable
    /// on its own, at the price of a sync each; at most 256 MiB of natives go uncommitted.
    pub commit_items: u32,
}

impl Options {
    /// Parts of 4 GiB, DOCIDs `BONNIE00000001`..., a commit every 100 items.
    pub fn new(format: Format) -> Options {
        Options {
            format,
            part_bytes: 4 << 30,
            docid_prefix: "BONNIE".into(),
            commit_items: 100,
        }
    }
}

/// The list of items an export promises: their number and the SHA-256 of their digests, each
/// followed by a newline, in export order. A rerun with another list is refused, and an
/// export whose items turn out not to be this list fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList {
    /// How many items.
    pub count: u64,
    /// SHA-256 (hex) of the digests, each followed by `\n`.
    pub sha256: String,
}

impl ItemList {
    /// The list of these digests, in this order.
    pub fn of<'a>(digests: impl IntoIterator<Item = &'a str>) -> ItemList {
        let mut hasher = ListHasher::default();
        for digest in digests {
            hasher.push(digest);
        }
        hasher.finish()
    }
}

/// [`ItemList`] computed as the items go by.
#[derive(Default, Clone)]
pub(crate) struct ListHasher {
    count: u64,
    hasher: Sha256,
}

impl ListHasher {
    pub(crate) fn push(&mut self, digest: &str) {
        self.count += 1;
        self.hasher.update(digest.as_bytes());
        self.hasher.update(b"\n");
    }

    pub(crate) fn finish(self) -> ItemList {
        ItemList {
            count: self.count,
            sha256: crate::files::hex(&self.hasher.finalize()),
        }
    }
}

/// What the whole export is: written into `manifest.json` and, for the checkpoint and key,
/// as files of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// The query as the user gave it (or the case's saved queries).
    pub query: String,
    /// The case, when the export is of a case.
    pub case: Option<String>,
    /// The IANA time zone dates are shown in, e.g. `Europe/Berlin`.
    pub zone: String,
    /// When the export was made, Unix milliseconds.
    pub created_ms: i64,
    /// The signed checkpoint (C2SP signed note) every inclusion proof leads to.
    pub checkpoint_note: String,
    /// The archive's public key, `<name>+<id>+<key>`: what the checkpoint is signed with.
    pub public_key: String,
    /// The items the export will be given.
    pub items: ItemList,
}

/// What a message's header says of it, as the manifest and the load file show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// From, as display text (`Name <addr>`).
    pub from: Vec<String>,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc.
    pub bcc: Vec<String>,
    /// The subject, decoded.
    pub subject: String,
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
}

/// One item's metadata, as the caller found it in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// SHA-256 (hex) of the native: the payload digest the storage keys it by.
    pub digest: String,
    /// The user whose mailbox it lived in.
    pub custodian: String,
    /// Every folder it lived in, as its owner saw them.
    pub folders: Vec<String>,
    /// Its Date header, Unix milliseconds.
    pub sent_ms: Option<i64>,
    /// When the archive first saw it, Unix milliseconds.
    pub received_ms: Option<i64>,
    /// Its addresses, subject and Message-ID.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The native's size in bytes (it decides the part; the bytes written are what counts).
    pub size: u64,
    /// The item type: mail, event, task, contact, note, file.
    pub kind: String,
    /// Whether it was expunged from every place it lived.
    pub deleted: bool,
    /// When it was (last) expunged, Unix milliseconds.
    pub deleted_ms: Option<i64>,
    /// Whether the archive learnt of it by back-fill rather than as it happened.
    pub backfilled: bool,
    /// The sequence number of the log leaf that names its payload.
    pub log_seq: u64,
    /// That leaf's bytes (bonnie_ledger's `LeafData` encoding).
    #[serde(with = "crate::files::hex_bytes")]
    pub leaf: Vec<u8>,
    /// The leaf's inclusion proof in the checkpoint's tree, the sibling nearest the leaf first.
    #[serde(with = "crate::files::hex_hashes")]
    pub proof: Vec<Hash>,
}

/// An attachment of a message: a family member in a load file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its file name as the message gives it (hostile: only its extension is used in paths).
    pub name: String,
    /// Its bytes, the transfer encoding undone.
    pub bytes: Vec<u8>,
    /// Its extracted text.
    pub text: String,
}

/// One item to export.
pub struct ExportItem {
    /// What the manifest and load file say of it.
    pub meta: ItemMeta,
    /// The native bytes, read once, in chunks: never held whole.
    pub native: Box<dyn Read + Send>,
    /// The extracted text (DAT only).
    pub text: String,
    /// Its attachments (DAT only).
    pub attachments: Vec<Attachment>,
}

impl ExportItem {
    /// An item whose native is in memory.
    pub fn from_bytes(meta: ItemMeta, native: Vec<u8>) -> ExportItem {
        ExportItem {
            meta,
            native: Box::new(std::io::Cursor::new(native)),
            text: String::new(),
            attachments: Vec::new(),
        }
    }
}

/// An item that could not be exported, and why: the caller's (a native that cannot be read,
/// a purged payload) or the export's (a native whose digest or proof does not hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// The item's digest, as in the list.
    pub digest: String,
    /// The DOCID it would have had.
    #[serde(default)]
    pub docid: Option<String>,
    /// What went wrong.
    pub reason: String,
}
