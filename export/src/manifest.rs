//! The manifest: per item what it is, where it lies in the export, its digests and the proof
//! that the archive's log holds it; per export the query, the zone, the counts and the
//! exceptions. `manifest.json` holds both ([`Manifest`]); `manifest.csv` one row per item.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::item::{Envelope, Exception, Format, ItemList};

/// The checkpoint every proof of the export leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Its origin: the archive's key name.
    pub origin: String,
    /// The tree size it signs.
    pub size: u64,
    /// The root, hex.
    pub root: String,
    /// The file holding the signed note.
    pub file: String,
    /// The file holding the public key it was exported with.
    pub public_key_file: String,
}

/// What the export was, as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// The format.
    pub format: Format,
    /// The query.
    pub query: String,
    /// The case, if any.
    pub case: Option<String>,
    /// The time zone dates are shown in.
    pub zone: String,
    /// When it was made, RFC 3339 in the zone.
    pub created: String,
    /// The list of items it was given.
    pub items: ItemList,
    /// The part size in bytes.
    pub part_bytes: u64,
    /// How many parts were written.
    pub parts: u32,
    /// The checkpoint.
    pub checkpoint: CheckpointRef,
    /// How many items were exported.
    pub exported: u64,
    /// Exported items per custodian.
    pub per_custodian: BTreeMap<String, u64>,
    /// The items that could not be exported, and why.
    pub exceptions: Vec<Exception>,
}

/// An attachment written as a family member (DAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestAttachment {
    /// Its DOCID.
    pub docid: String,
    /// Its name as the message gives it.
    pub name: String,
    /// Its file.
    pub path: String,
    /// Its text file.
    pub text_path: String,
    /// Its size.
    pub size: u64,
    /// MD5, hex.
    pub md5: String,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One exported item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// Its DOCID.
    pub docid: String,
    /// The custodian.
    pub custodian: String,
    /// The folders it lived in.
    pub folders: Vec<String>,
    /// Sent (its Date), RFC 3339 in the export's zone.
    pub sent: Option<String>,
    /// Received (first seen by the archive), RFC 3339 in the export's zone.
    pub received: Option<String>,
    /// Its addresses, subject and Message-ID.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The item type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file holding its native (an mbox part for MBOX).
    pub path: String,
    /// MBOX: the byte offset of its `From ` line in `path`.
    pub offset: Option<u64>,
    /// DAT: its text file.
    pub text_path: Option<String>,
    /// The native's size in bytes.
    pub size: u64,
    /// MD5 of the native, hex.
    pub md5: String,
    /// SHA-256 of the native, hex: one of its leaf's payload digests.
    pub sha256: String,
    /// Expunged from every place.
    pub deleted: bool,
    /// When, RFC 3339 in the export's zone.
    pub deleted_at: Option<String>,
    /// Learnt of by back-fill.
    pub backfilled: bool,
    /// The log leaf's sequence number.
    pub log_seq: u64,
    /// The leaf's bytes, hex.
    pub leaf: String,
    /// The leaf's hash, hex.
    pub leaf_hash: String,
    /// The inclusion proof, hex hashes, nearest the leaf first.
    pub proof: Vec<String>,
    /// The checkpoint the proof leads to: `<origin>/<size>`.
    pub checkpoint: String,
    /// DAT: its attachments.
    #[serde(default)]
    pub attachments: Vec<ManifestAttachment>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The export.
    pub export: ExportInfo,
    /// Its items, in DOCID order.
    pub items: Vec<ManifestItem>,
}

/// The columns of `manifest.csv`.
pub const CSV_COLUMNS: [&str; 25] = [
    "docid",
    "custodian",
    "folders",
    "sent",
    "received",
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message_id",
    "type",
    "path",
    "offset",
    "size",
    "md5",
    "sha256",
    "deleted",
    "deleted_at",
    "backfilled",
    "log_seq",
    "leaf_hash",
    "proof",
    "checkpoint",
    "attachments",
];

/// The header line of `manifest.csv`.
pub fn csv_header() -> String {
    csv_line(CSV_COLUMNS.iter().map(|c| c.to_string()))
}

/// The row of `item` (lists joined with `; `, the proof's hashes with `:`).
pub fn csv_row(item: &ManifestItem) -> String {
    let list = |values: &[String]| values.join("; ");
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    let envelope = &item.envelope;
    csv_line([
        item.docid.clone(),
        item.custodian.clone(),
        list(&item.folders),
        optional(&item.sent),
        optional(&item.received),
        list(&envelope.from),
        list(&envelope.to),
        list(&envelope.cc),
        list(&envelope.bcc),
        envelope.subject.clone(),
        optional(&envelope.message_id),
        item.kind.clone(),
        item.path.clone(),
        item.offset.map(|o| o.to_string()).unwrap_or_default(),
        item.size.to_string(),
        item.md5.clone(),
        item.sha256.clone(),
        item.deleted.to_string(),
        optional(&item.deleted_at),
        item.backfilled.to_string(),
        item.log_seq.to_string(),
        item.leaf_hash.clone(),
        item.proof.join(":"),
        item.checkpoint.clone(),
        item.attachments
            .iter()
            .map(|a| a.docid.clone())
            .collect::<Vec<_>>()
            .join("; "),
    ])
}

/// One RFC 4180 line: every value quoted, quotes doubled, CRLF. A value a spreadsheet would
/// take for a formula (it begins with `=`, `+`, `-`, `@`, a tab or a CR: a hostile subject
/// or address) gets a `'` before it, as OWASP advises for CSV files; `manifest.json` keeps the
/// value as it is.
fn csv_line(values: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = values
        .into_iter()
        .map(|v| {
            let guard = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                "'"
            } else {
                ""
            };
            format!("\"{guard}{}\"", v.replace('"', "\"\""))
        })
        .collect();
    format!("{}\r\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_values_are_quoted_and_never_a_formula() {
        let line = csv_line([
            "a \"b\", c".to_string(),
            "=HYPERLINK(\"x\")".into(),
            "-1".into(),
        ]);
        assert_eq!(
            line,
            "\"a \"\"b\"\", c\",\"'=HYPERLINK(\"\"x\"\")\",\"'-1\"\r\n"
        );
    }
}
