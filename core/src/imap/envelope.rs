//! The IMAP ENVELOPE Cyrus puts in `vnd.cmu.envelope`:
//! `("date" "subject" (from) (sender) (reply-to) (to) (cc) (bcc) "in-reply-to" "message-id")`,
//! each address `(name adl mailbox host)`. Raw 8-bit header bytes arrive as `X`; encoded words
//! are decoded here, by bonnie-mail (every charset mail-parser knows).

use bonnie_mail::decode_words;
use serde::Serialize;

/// The parts of an envelope bonnie indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The Date header, as written.
    pub date: Option<String>,
    /// The Subject, decoded.
    pub subject: Option<String>,
    /// From addresses, as `Name <local@host>` or `local@host`.
    pub from: Vec<String>,
    /// Sender addresses.
    pub sender: Vec<String>,
    /// Reply-To addresses.
    pub reply_to: Vec<String>,
    /// To addresses.
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Bcc addresses.
    pub bcc: Vec<String>,
    /// In-Reply-To.
    pub in_reply_to: Option<String>,
    /// Message-ID.
    pub message_id: Option<String>,
}

/// A parsed s-expression value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Nil,
    Text(String),
    List(Vec<Value>),
}

impl Value {
    fn text(&self) -> Option<String> {
        match self {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

/// Lists nest at most this deep (an envelope needs 3); deeper input is no envelope, rather
/// than a stack overflow.
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Lists open around `pos`.
    depth: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_spaces();
        match *self.bytes.get(self.pos)? {
            b'(' => {
                if self.depth >= MAX_DEPTH {
                    return None;
                }
                self.depth += 1;
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    if *self.bytes.get(self.pos)? == b')' {
                        self.pos += 1;
                        self.depth -= 1;
                        return Some(Value::List(items));
                    }
                    items.push(self.value()?);
                }
            }
            b'"' => {
                self.pos += 1;
                let mut text = Vec::new();
                loop {
                    match *self.bytes.get(self.pos)? {
                        b'"' => {
                            self.pos += 1;
                            return Some(Value::Text(String::from_utf8_lossy(&text).into_owned()));
                        }
                        b'\\' => {
                            text.push(*self.bytes.get(self.pos + 1)?);
                            self.pos += 2;
                        }
                        other => {
                            text.push(other);
                            self.pos += 1;
                        }
                    }
                }
            }
            b'{' => {
                let close = self.bytes[self.pos..].iter().position(|&b| b == b'}')? + self.pos;
                let length: usize = std::str::from_utf8(&self.bytes[self.pos + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 1 + usize::from(self.bytes.get(close + 1) == Some(&b'\r')) + 1;
                let end = start.checked_add(length)?;
                let text = self.bytes.get(start..end)?;
                self.pos = end;
                Some(Value::Text(String::from_utf8_lossy(text).into_owned()))
            }
            _ => {
                let start = self.pos;
                while self
                    .bytes
                    .get(self.pos)
                    .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'(' && *b != b')')
                {
                    self.pos += 1;
                }
                let atom = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
                Some(if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Text(atom)
                })
            }
        }
    }
}

fn addresses(value: &Value) -> Vec<String> {
    let Value::List(list) = value else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|address| {
            let Value::List(parts) = address else {
                return None;
            };
            let name = parts
                .first()
                .and_then(Value::text)
                .map(|n| decode_words(&n));
            let mailbox = parts.get(2).and_then(Value::text)?;
            let host = parts.get(3).and_then(Value::text);
            let email = match host {
                Some(host) => format!("{mailbox}@{host}"),
                None => mailbox,
            };
            Some(match name {
                Some(name) if !name.is_empty() => format!("{name} <{email}>"),
                _ => email,
            })
        })
        .collect()
}

/// Parses an ENVELOPE; `None` if it is not one.
pub fn parse(text: &str) -> Option<Envelope> {
    let value = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    }
    .value()?;
    let Value::List(fields) = value else {
        return None;
    };
    if fields.len() < 10 {
        return None;
    }
    Some(Envelope {
        date: fields[0].text(),
        subject: fields[1].text().map(|s| decode_words(&s)),
        from: addresses(&fields[2]),
        sender: addresses(&fields[3]),
        reply_to: addresses(&fields[4]),
        to: addresses(&fields[5]),
        cc: addresses(&fields[6]),
        bcc: addresses(&fields[7]),
        in_reply_to: fields[8].text(),
        message_id: fields[9].text(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cyrus_envelope_parses() {
        let text = r#"("Sat, 28 Nov 2026 17:13:36 +0000" "plain test 1" (("Jane Doe" NIL "jane.doe" "example.org")) (("Jane Doe" NIL "jane.doe" "example.org")) (("Jane Doe" NIL "jane.doe" "example.org")) (("John Doe" NIL "john.doe" "example.org")) NIL NIL NIL "<1795886016.212314.18789@example.org>")"#;
        let envelope = parse(text).unwrap();
        assert_eq!(envelope.subject.as_deref(), Some("plain test 1"));
        assert_eq!(envelope.from, vec!["Jane Doe <jane.doe@example.org>"]);
        assert_eq!(envelope.to, vec!["John Doe <john.doe@example.org>"]);
        assert!(envelope.cc.is_empty());
        assert_eq!(
            envelope.message_id.as_deref(),
            Some("<1795886016.212314.18789@example.org>")
        );
    }

    #[test]
    fn encoded_subjects_and_names_decode_and_garbage_is_none() {
        let text = r#"(NIL "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" (("=?ISO-8859-1?Q?J=F6rg?=" NIL "j" "example.org")) NIL NIL NIL NIL NIL NIL NIL)"#;
        let envelope = parse(text).unwrap();
        assert_eq!(envelope.subject.as_deref(), Some("Grüße"));
        assert_eq!(envelope.from, vec!["Jörg <j@example.org>"]);
        assert_eq!(parse("(\"unterminated"), None);
        assert_eq!(parse("NIL"), None);
    }
}
