//! The header fields of a message as bonnie keeps them: in order, unfolded and decoded, with
//! the addresses of address fields (groups flattened, each address naming its group), and
//! the keyed form (`messageHeaders` of a record) the handlers look fields up in.

use mail_parser::{Addr, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use crate::message::{Address, Header, Message};

/// Fields whose value is a list of Message-IDs, written back with their angle brackets.
fn is_id_field(name: &HeaderName<'_>) -> bool {
    matches!(
        name,
        HeaderName::MessageId
            | HeaderName::InReplyTo
            | HeaderName::References
            | HeaderName::ResentMessageId
            | HeaderName::ContentId
    )
}

/// `Name <local@domain>`, `local@domain`, `Name`, or for the placeholder of an empty group
/// `group: ;`.
pub fn format_address(address: &Address) -> String {
    match (&address.name, &address.address) {
        (Some(name), Some(addr)) if !name.is_empty() => format!("{name} <{addr}>"),
        (_, Some(addr)) => addr.clone(),
        (Some(name), None) => name.clone(),
        (None, None) => address
            .group
            .as_ref()
            .map(|g| format!("{g}: ;"))
            .unwrap_or_default(),
    }
}

fn address(addr: &Addr<'_>, group: Option<&str>) -> Address {
    Address {
        name: addr
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        address: addr
            .address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        group: group.map(str::to_string),
    }
}

fn addresses(value: &mail_parser::Address<'_>) -> Vec<Address> {
    match value {
        mail_parser::Address::List(list) => list.iter().map(|a| address(a, None)).collect(),
        mail_parser::Address::Group(groups) => groups
            .iter()
            .flat_map(|g| {
                let name = g.name.as_deref();
                if g.addresses.is_empty() {
                    vec![Address {
                        group: name.map(str::to_string),
                        ..Address::default()
                    }]
                } else {
                    g.addresses.iter().map(|a| address(a, name)).collect()
                }
            })
            .filter(|a| a.name.is_some() || a.address.is_some() || a.group.is_some())
            .collect(),
    }
}

/// A raw field value unfolded: its lines trimmed and joined by one space.
fn unfold(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rfc3339(seconds: i64) -> Option<String> {
    jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A date mail-parser could not read, tried again with jiff's RFC 2822 parser.
fn lenient_date(raw: &str) -> Option<String> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .relaxed_weekday(true)
        .parse_timestamp(raw.trim())
        .ok()
        .and_then(|t| rfc3339(t.as_second()))
}

/// Fills `out`'s headers and the fields read from them.
pub(crate) fn read(parsed: &mail_parser::Message<'_>, out: &mut Message) {
    let Some(root) = parsed.parts.first() else {
        return;
    };
    let raw_message = parsed.raw_message.as_ref();
    for header in &root.headers {
        let raw = raw_message
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        if !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
            out.warnings.push(format!(
                "header {}: 8-bit bytes that are not UTF-8 (read with replacement characters)",
                header.name.as_str()
            ));
        }
        let mut field = Header {
            name: header.name.as_str().to_string(),
            ..Header::default()
        };
        field.value = match &header.value {
            HeaderValue::Text(id) if is_id_field(&header.name) => format!("<{}>", id.trim()),
            HeaderValue::Text(text) => text.trim().to_string(),
            HeaderValue::TextList(list) if is_id_field(&header.name) => list
                .iter()
                .map(|id| format!("<{id}>"))
                .collect::<Vec<_>>()
                .join(" "),
            HeaderValue::TextList(list) => list.join(", "),
            HeaderValue::Address(value) => {
                field.addresses = addresses(value);
                field
                    .addresses
                    .iter()
                    .map(format_address)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            HeaderValue::DateTime(date) if date.is_valid() => {
                rfc3339(date.to_timestamp()).unwrap_or_else(|| unfold(raw))
            }
            _ => unfold(raw),
        };
        match header.name {
            HeaderName::Subject if out.subject.is_none() => {
                out.subject = Some(field.value.clone());
            }
            HeaderName::From => out.from.extend(field.addresses.iter().cloned()),
            HeaderName::Sender => out.sender.extend(field.addresses.iter().cloned()),
            HeaderName::ReplyTo => out.reply_to.extend(field.addresses.iter().cloned()),
            HeaderName::To => out.to.extend(field.addresses.iter().cloned()),
            HeaderName::Cc => out.cc.extend(field.addresses.iter().cloned()),
            HeaderName::Bcc => out.bcc.extend(field.addresses.iter().cloned()),
            HeaderName::Date if out.date.is_none() => {
                out.date = match &header.value {
                    HeaderValue::DateTime(date) if date.is_valid() => rfc3339(date.to_timestamp()),
                    _ => lenient_date(&unfold(raw)),
                };
                if let (None, false) = (&out.date, raw.is_empty()) {
                    out.warnings
                        .push(format!("header Date: {:?} is no date", unfold(raw)));
                } else if let Some(date) = &out.date {
                    field.value = date.clone();
                }
            }
            HeaderName::MessageId if out.message_id.is_none() => {
                out.message_id = match &header.value {
                    HeaderValue::Text(id) => Some(format!("<{id}>")),
                    HeaderValue::TextList(ids) => ids.first().map(|id| format!("<{id}>")),
                    _ => None,
                }
                .filter(|id| id != "<>");
            }
            _ => {}
        }
        out.headers.push(field);
    }
}

impl Message {
    /// The headers keyed by name as first written (what records keep as `messageHeaders`):
    /// an address field as the list of its addresses (of every field of that name), `Date`
    /// in RFC 3339 UTC, `Content-Type` as the bare media type, any other field as its
    /// decoded text, or, when the message has it more than once, the list of its values in
    /// order.
    pub fn header_map(&self) -> Map<String, Value> {
        let mut out: Map<String, Value> = Map::new();
        for header in &self.headers {
            let key = out
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&header.name))
                .cloned()
                .unwrap_or_else(|| header.name.clone());
            let lower = header.name.to_ascii_lowercase();
            let is_address = matches!(
                lower.as_str(),
                "from" | "to" | "cc" | "bcc" | "reply-to" | "sender"
            );
            let value = if is_address {
                json!(
                    header
                        .addresses
                        .iter()
                        .map(format_address)
                        .collect::<Vec<_>>()
                )
            } else if lower == "content-type" {
                json!(
                    header
                        .value
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                )
            } else {
                json!(header.value)
            };
            match (out.get_mut(&key), value) {
                (None, value) => {
                    out.insert(key, value);
                }
                (Some(Value::Array(list)), Value::Array(more)) if is_address => list.extend(more),
                (Some(Value::Array(list)), value) if !is_address => list.push(value),
                (Some(first), value) => {
                    let before = first.take();
                    *first = json!([before, value]);
                }
            }
        }
        out
    }
}

/// The keyed headers ([`Message::header_map`]) of a message or of its header block alone;
/// the body is not read.
pub fn headers(bytes: &[u8]) -> Map<String, Value> {
    crate::message::parse_headers(bytes)
        .map(|m| m.header_map())
        .unwrap_or_default()
}

/// Decodes the RFC 2047 encoded words of one header value (an ENVELOPE's subject or display
/// name), in every charset mail-parser decodes; a word it cannot decode stays as written.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let field = format!("Subject: {}\r\n\r\n", value.replace(['\r', '\n'], " "));
    crate::message::parse_headers(field.as_bytes())
        .and_then(|m| m.subject)
        .unwrap_or_else(|| value.to_string())
}
