//! The Concordance / Relativity load file (DAT), UTF-8 with a byte-order mark, with
//! Concordance's default delimiters as the code points they stand for: column U+0014 (ASCII 20,
//! shown as ¶ in code page 437), quote U+00FE (þ, 254), newline within a value U+00AE (®, 174),
//! multiple values separated by `;` (59); records end in CRLF and the first is the header.
//!
//! A value never holds a delimiter raw: a þ in it is written twice (as `""` in CSV), its line
//! breaks become ®, and any other control character (U+0014 among them) becomes a space.

use crate::manifest::{ManifestAttachment, ManifestItem};

/// The column delimiter: U+0014, ASCII 20 (¶ in code page 437, whence the name).
pub const COLUMN: char = '\u{14}';
/// The quote (text qualifier): þ, U+00FE, ASCII 254.
pub const QUOTE: char = '\u{fe}';
/// What stands for a line break inside a value: ®, U+00AE, ASCII 174.
pub const NEWLINE: char = '\u{ae}';
/// Between the values of a multi-value field (addresses, folders, attachment ids).
pub const MULTI_VALUE: char = ';';
/// The UTF-8 byte-order mark the file opens with, by which Relativity detects its encoding.
pub const BOM: &str = "\u{feff}";

/// The load file's columns, in order.
pub const FIELDS: [&str; 26] = [
    "DOCID",
    "PARENTID",
    "ATTACHMENTIDS",
    "BEGATTACH",
    "ENDATTACH",
    "CUSTODIAN",
    "FOLDERS",
    "FROM",
    "TO",
    "CC",
    "BCC",
    "SUBJECT",
    "FILENAME",
    "DOCTYPE",
    "DATESENT",
    "DATERCVD",
    "MESSAGEID",
    "NATIVEPATH",
    "TEXTPATH",
    "MD5HASH",
    "SHA256",
    "FILESIZE",
    "LOGSEQ",
    "BACKFILLED",
    "DELETED",
    "DATEDELETED",
];

/// One record: a value per column of [`FIELDS`].
pub type Row = [String; FIELDS.len()];

/// The header record, with the byte-order mark that opens the file.
pub fn header() -> String {
    let names = FIELDS.map(str::to_string);
    format!("{BOM}{}", record(&names))
}

/// A record as written: each value quoted, separated by the column delimiter, ended by CRLF.
pub fn record(values: &Row) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(COLUMN);
        }
        out.push(QUOTE);
        push_value(value, &mut out);
        out.push(QUOTE);
    }
    out.push_str("\r\n");
    out
}

fn push_value(value: &str, out: &mut String) {
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            QUOTE => {
                out.push(QUOTE);
                out.push(QUOTE);
            }
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(NEWLINE);
            }
            '\n' => out.push(NEWLINE),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// A path as the load file gives it: relative to the load file, with Windows separators (the
/// review tools that read DAT files run on Windows).
pub fn path(relative: &str) -> String {
    relative.replace('/', "\\")
}

/// Several values in one field.
pub fn multi(values: &[String]) -> String {
    values.join(&MULTI_VALUE.to_string())
}

/// The load file's row of a message, the head of its family.
pub(crate) fn family_row(item: &ManifestItem, text_path: &str) -> Row {
    let children: Vec<String> = item.attachments.iter().map(|a| a.docid.clone()).collect();
    let end = children
        .last()
        .cloned()
        .unwrap_or_else(|| item.docid.clone());
    let yes_no = |b: bool| if b { "Y" } else { "N" }.to_string();
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    let envelope = &item.envelope;
    [
        item.docid.clone(),
        String::new(),
        multi(&children),
        item.docid.clone(),
        end,
        item.custodian.clone(),
        multi(&item.folders),
        multi(&envelope.from),
        multi(&envelope.to),
        multi(&envelope.cc),
        multi(&envelope.bcc),
        envelope.subject.clone(),
        String::new(),
        item.kind.clone(),
        text(&item.sent),
        text(&item.received),
        text(&envelope.message_id),
        path(&item.path),
        path(text_path),
        item.md5.clone(),
        item.sha256.clone(),
        item.size.to_string(),
        item.log_seq.to_string(),
        yes_no(item.backfilled),
        yes_no(item.deleted),
        text(&item.deleted_at),
    ]
}

/// The load file's row of an attachment: its own DOCID, its parent's, the family's range and
/// the message's custodian, folders, dates and log sequence.
pub(crate) fn member_row(parent: &ManifestItem, attachment: &ManifestAttachment) -> Row {
    let mut row = family_row(parent, &attachment.text_path);
    row[0] = attachment.docid.clone();
    row[1] = parent.docid.clone();
    row[2] = String::new();
    for field in [7, 8, 9, 10, 11, 16] {
        row[field] = String::new();
    }
    row[12] = attachment.name.clone();
    row[13] = "attachment".to_string();
    row[17] = path(&attachment.path);
    row[19] = attachment.md5.clone();
    row[20] = attachment.sha256.clone();
    row[21] = attachment.size.to_string();
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_carry_a_delimiter_raw() {
        let mut row: Row = Default::default();
        row[0] = "a\u{14}bþc\r\nd\ne".into();
        let written = record(&row);
        let first = written.split(COLUMN).next().unwrap();
        assert_eq!(first, "þa bþþc®d®eþ");
        assert_eq!(written.matches(COLUMN).count(), FIELDS.len() - 1);
        assert!(written.ends_with("þ\r\n"));
    }

    #[test]
    fn the_header_opens_with_the_bom_and_names_every_field() {
        let header = header();
        assert!(header.starts_with("\u{feff}þDOCIDþ\u{14}þPARENTIDþ"));
        assert_eq!(header.as_bytes()[..3], [0xef, 0xbb, 0xbf]);
    }
}
