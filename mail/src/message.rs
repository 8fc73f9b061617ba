//! A message read with mail-parser into what bonnie keeps of it: the headers in order, the
//! decoded subject, addresses, date and Message-ID, the body parts as text, the attachments
//! (name, media type, size, SHA-256, text when text-like), nested messages, and warnings for
//! whatever could not be read as its MIME structure says.

use mail_parser::{
    Encoding, MessageParser, MessagePart, MimeHeaders, PartType,
    decoders::{
        base64::base64_decode, charsets::map::charset_decoder, html::html_to_text,
        quoted_printable::quoted_printable_decode,
    },
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::headers;

/// Nested messages are read this deep; deeper ones stay attachments without their text.
const MAX_NESTING: usize = 8;

/// One header field, in the order the message has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The field name as written (the registered spelling for the fields mail-parser knows).
    pub name: String,
    /// The value unfolded and decoded: RFC 2047 words in their charset, addresses as
    /// `Name <local@domain>` separated by `, `, dates in RFC 3339 UTC, the rest as written.
    pub value: String,
    /// The addresses of an address field (From, To, Cc...), groups flattened.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
}

/// One address of an address field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The display name, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `local@domain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The name of the group (RFC 5322 `group: a, b;`) the address belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A body part read as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TextPart {
    /// The IMAP section number of the part (`1`, `2.1`).
    pub part: String,
    /// `text/plain` or `text/html` (its text is the HTML reduced to text).
    pub media_type: String,
    /// The charset the part declared, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// The decoded text.
    pub text: String,
}

/// An attachment (or an inline part that is not body text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The IMAP section number of the part.
    pub part: String,
    /// The file name (Content-Disposition `filename`, else Content-Type `name`; RFC 2231
    /// and RFC 2047 decoded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The media type, lower case (`application/pdf`).
    pub media_type: String,
    /// Bytes after the transfer encoding is undone.
    pub size: u64,
    /// SHA-256 of those bytes, lower-case hex.
    pub sha256: String,
    /// The text of a text-like attachment (text/*, JSON, XML, iCalendar, vCard; HTML reduced
    /// to text). An attached message's text is in [`Message::messages`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A message as bonnie reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Every header field of the message, in order (repeated ones each in their place).
    pub headers: Vec<Header>,
    /// The Subject, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// From.
    pub from: Vec<Address>,
    /// Sender.
    pub sender: Vec<Address>,
    /// Reply-To.
    pub reply_to: Vec<Address>,
    /// To, of every To field.
    pub to: Vec<Address>,
    /// Cc, of every Cc field.
    pub cc: Vec<Address>,
    /// Bcc, of every Bcc field.
    pub bcc: Vec<Address>,
    /// The Date, RFC 3339 in UTC (`2026-11-28T17:13:36Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The Message-ID with its angle brackets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The body text parts (of a multipart/alternative, only the plain text one when there
    /// is one).
    pub bodies: Vec<TextPart>,
    /// The attachments, attached messages included.
    pub attachments: Vec<Attachment>,
    /// The attached messages (message/rfc822), read in turn.
    pub messages: Vec<Message>,
    /// What could not be read as the message says (broken MIME, unknown charsets, 8-bit
    /// header bytes that are not UTF-8...); what could be read is kept.
    pub warnings: Vec<String>,
}

impl Message {
    /// True when a part of the message could not be read as it says it is.
    pub fn damaged(&self) -> bool {
        !self.warnings.is_empty() || self.messages.iter().any(Message::damaged)
    }
}

fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(mail_parser::HeaderName::Subject)
        .header_text(mail_parser::HeaderName::Comments)
        .header_raw(mail_parser::HeaderName::Received)
        .header_raw(mail_parser::HeaderName::MimeVersion)
        .header_raw(mail_parser::HeaderName::ReturnPath)
        .default_header_text()
}

/// Reads a message. Never fails: bytes that are no message at all give a message without
/// headers whose body is the bytes as text, with a warning.
pub fn parse(bytes: &[u8]) -> Message {
    match parser().parse(bytes) {
        Some(parsed) => read(&parsed, 0),
        None => Message {
            bodies: vec![TextPart {
                part: "1".to_string(),
                media_type: "text/plain".to_string(),
                charset: None,
                text: String::from_utf8_lossy(bytes).into_owned(),
            }],
            warnings: vec!["no header could be read: the bytes are kept as text".to_string()],
            ..Message::default()
        },
    }
}

/// Reads a message as [`parse`] does, with the bytes of each of its attachments (the
/// transfer encoding undone, as their `sha256` is of), in the order of
/// [`Message::attachments`]: what an e-discovery export writes as the attachments' files.
pub fn parse_with_attachments(bytes: &[u8]) -> (Message, Vec<Vec<u8>>) {
    match parser().parse(bytes) {
        Some(parsed) => {
            let mut kept = Vec::new();
            let mut out = Message::default();
            headers::read(&parsed, &mut out);
            let mut walk = Walk {
                message: &parsed,
                out: &mut out,
                depth: 0,
                attachment_bytes: Some(&mut kept),
            };
            walk.part(0, "", true);
            (out, kept)
        }
        None => (parse(bytes), Vec::new()),
    }
}

/// Reads the headers of a message only (its body, if any, is not looked at).
pub(crate) fn parse_headers(bytes: &[u8]) -> Option<Message> {
    let parsed = parser().parse_headers(bytes)?;
    let mut out = Message::default();
    headers::read(&parsed, &mut out);
    Some(out)
}

fn read(parsed: &mail_parser::Message<'_>, depth: usize) -> Message {
    let mut out = Message::default();
    headers::read(parsed, &mut out);
    let mut walk = Walk {
        message: parsed,
        out: &mut out,
        depth,
        attachment_bytes: None,
    };
    walk.part(0, "", true);
    out
}

struct Walk<'a, 'x> {
    message: &'a mail_parser::Message<'x>,
    out: &'a mut Message,
    depth: usize,
    /// Where each attachment's bytes go, when the caller wants them.
    attachment_bytes: Option<&'a mut Vec<Vec<u8>>>,
}

pub(crate) fn media_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None => "text/plain".to_string(),
    }
}

fn attribute<'a>(part: &'a MessagePart<'_>, name: &str) -> Option<&'a str> {
    part.content_type()?.attribute(name)
}

/// The file name of a part: mail-parser's, unless the raw field holds RFC 2231 continuations
/// in a legacy charset (see rfc2231.rs).
fn attachment_name(message: &mail_parser::Message<'_>, part: &MessagePart<'_>) -> Option<String> {
    for header in &part.headers {
        let (name, param) = match header.name {
            mail_parser::HeaderName::ContentDisposition => (header, "filename"),
            mail_parser::HeaderName::ContentType => (header, "name"),
            _ => continue,
        };
        let raw = message
            .raw_message
            .get(name.offset_start as usize..name.offset_end as usize)
            .map(String::from_utf8_lossy);
        if let Some(value) = raw.and_then(|r| crate::rfc2231::continued_parameter(&r, param)) {
            return Some(value);
        }
    }
    part.attachment_name().map(str::to_string)
}

fn text_like(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || media_type.ends_with("+xml")
        || media_type.ends_with("+json")
        || matches!(
            media_type,
            "application/json" | "application/xml" | "application/ics" | "application/x-vcard"
        )
}

/// The part's bytes with only its transfer encoding undone (text parts keep their charset),
/// for sizes and digests.
pub(crate) fn transfer_decoded(
    message: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
) -> Vec<u8> {
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    match part.encoding {
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::None => None,
    }
    .unwrap_or_else(|| raw.to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn child_path(path: &str, index: usize) -> String {
    if path.is_empty() {
        (index + 1).to_string()
    } else {
        format!("{path}.{}", index + 1)
    }
}

impl Walk<'_, '_> {
    fn warn(&mut self, warning: String) {
        self.out.warnings.push(warning);
    }

    fn decoded_bytes(&self, part: &MessagePart<'_>) -> Vec<u8> {
        transfer_decoded(self.message, part)
    }

    /// Reads part `id` at section `path`; `bodies` is false for the parts of a
    /// multipart/alternative that are not the chosen one.
    fn part(&mut self, id: u32, path: &str, bodies: bool) {
        let Some(part) = self.message.parts.get(id as usize) else {
            return;
        };
        let media = media_type(part);
        let here = if path.is_empty() { "1" } else { path };
        if part.is_encoding_problem {
            self.warn(format!(
                "part {here} ({media}) could not be decoded as it says; what could be read is kept"
            ));
        }
        if let Some(charset) = attribute(part, "charset")
            && matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && charset_decoder(charset.as_bytes()).is_none()
            && !matches!(
                charset.to_ascii_lowercase().as_str(),
                "utf-8" | "utf8" | "us-ascii"
            )
        {
            self.warn(format!(
                "part {here}: unknown charset {charset:?}, read as UTF-8 where it is UTF-8"
            ));
        }
        match &part.body {
            PartType::Multipart(children) => {
                if let Some(boundary) = attribute(part, "boundary") {
                    let closing = format!("--{boundary}--");
                    let raw = self
                        .message
                        .raw_message
                        .get(part.offset_body as usize..part.offset_end as usize)
                        .unwrap_or_default();
                    if !raw.windows(closing.len()).any(|w| w == closing.as_bytes()) {
                        self.warn(format!(
                            "part {here} ({media}) ends without its closing boundary"
                        ));
                    }
                }
                let chosen = if media == "multipart/alternative" {
                    children
                        .iter()
                        .position(|&c| {
                            self.message
                                .parts
                                .get(c as usize)
                                .is_some_and(|p| matches!(p.body, PartType::Text(_)))
                        })
                        .or(Some(children.len().saturating_sub(1)))
                } else {
                    None
                };
                for (index, &child) in children.iter().enumerate() {
                    let child_bodies = bodies && chosen.is_none_or(|c| c == index);
                    self.part(child, &child_path(path, index), child_bodies);
                }
            }
            PartType::Text(text) | PartType::Html(text) => {
                let is_html = matches!(part.body, PartType::Html(_));
                let text = if is_html {
                    html_to_text(text)
                } else {
                    text.to_string()
                };
                if self.message.attachments.contains(&id) {
                    self.attachment(part, here, &media, Some(text));
                } else if bodies {
                    self.out.bodies.push(TextPart {
                        part: here.to_string(),
                        media_type: media,
                        charset: attribute(part, "charset").map(str::to_string),
                        text,
                    });
                }
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                let text = text_like(&media).then(|| String::from_utf8_lossy(bytes).into_owned());
                self.attachment(part, here, &media, text);
            }
            PartType::Message(nested) => {
                let read_nested = if self.depth < MAX_NESTING {
                    read(nested, self.depth + 1)
                } else {
                    self.warn(format!(
                        "part {here}: messages nested deeper than {MAX_NESTING} are not read"
                    ));
                    Message::default()
                };
                let bytes = self.decoded_bytes(part);
                self.out.attachments.push(Attachment {
                    part: here.to_string(),
                    name: attachment_name(self.message, part)
                        .or_else(|| read_nested.subject.clone()),
                    media_type: media,
                    size: bytes.len() as u64,
                    sha256: hex(&Sha256::digest(&bytes)),
                    text: None,
                });
                if let Some(kept) = self.attachment_bytes.as_deref_mut() {
                    kept.push(bytes);
                }
                self.out.messages.push(read_nested);
            }
        }
    }

    fn attachment(
        &mut self,
        part: &MessagePart<'_>,
        path: &str,
        media: &str,
        text: Option<String>,
    ) {
        let bytes = match &part.body {
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
            _ => self.decoded_bytes(part),
        };
        self.out.attachments.push(Attachment {
            part: path.to_string(),
            name: attachment_name(self.message, part),
            media_type: media.to_string(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
            text,
        });
        if let Some(kept) = self.attachment_bytes.as_deref_mut() {
            kept.push(bytes);
        }
    }
}
