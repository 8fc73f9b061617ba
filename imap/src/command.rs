//! Commands as the client sends them: text and literals, each argument in the form RFC 3501
//! allows for it (an atom when it is one, a quoted string when it can be, a literal
//! otherwise), mailbox names in modified UTF-7.

use crate::{ImapError, utf7};

/// A piece of a command on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text, sent as it is.
    Text(Vec<u8>),
    /// A literal: announced by `{n}` (or `{n+}`), then its bytes.
    Literal(Vec<u8>),
}

/// A command, without its tag.
#[derive(Debug, Clone)]
pub struct Command {
    /// Its name, for errors (`UID FETCH`).
    pub(crate) name: String,
    pub(crate) parts: Vec<Part>,
}

/// `ATOM-CHAR` plus `]` (RFC 3501's `ASTRING-CHAR`).
fn is_astring_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

/// Bytes that may be in a quoted string.
fn is_quotable(b: u8) -> bool {
    b != 0 && b != b'\r' && b != b'\n' && b < 0x80
}

impl Command {
    /// A command named `name` (`SELECT`, `UID FETCH`).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            parts: vec![Part::Text(name.as_bytes().to_vec())],
        }
    }

    /// The space before an argument, but none right after an opening parenthesis.
    fn space(&mut self) {
        if !matches!(self.parts.last(), Some(Part::Text(t)) if t.ends_with(b"(")) {
            self.push_text(b" ");
        }
    }

    /// Appends `)` (closing a list opened with [`Command::raw`]`("(")`).
    pub fn close(mut self) -> Self {
        self.push_text(b")");
        self
    }

    fn push_text(&mut self, text: &[u8]) {
        match self.parts.last_mut() {
            Some(Part::Text(last)) => last.extend_from_slice(text),
            _ => self.parts.push(Part::Text(text.to_vec())),
        }
    }

    /// Appends ` <text>` as it is: for protocol syntax the caller built (`(UID FLAGS)`), which
    /// must hold no line break.
    pub fn raw(mut self, text: &str) -> Result<Self, ImapError> {
        if text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ImapError::Argument(format!(
                "{text:?} holds a line break or NUL"
            )));
        }
        self.space();
        self.push_text(text.as_bytes());
        Ok(self)
    }

    /// Appends ` <value>` as an astring: an atom, a quoted string or a literal.
    pub fn astring(mut self, value: &[u8]) -> Self {
        self.space();
        if !value.is_empty() && value.iter().all(|&b| is_astring_char(b)) {
            self.push_text(value);
        } else if value.iter().all(|&b| is_quotable(b)) {
            self.push_text(quote_bytes(value).as_bytes());
        } else {
            self.parts.push(Part::Literal(value.to_vec()));
        }
        self
    }

    /// Appends ` <value>` as a string (quoted, or a literal): for values that must not be
    /// read as atoms, such as `NIL`.
    pub fn string(mut self, value: &[u8]) -> Self {
        self.space();
        if value.iter().all(|&b| is_quotable(b)) {
            self.push_text(quote_bytes(value).as_bytes());
        } else {
            self.parts.push(Part::Literal(value.to_vec()));
        }
        self
    }

    /// Appends ` <name>` in modified UTF-7.
    pub fn mailbox(self, name: &str) -> Self {
        self.astring(utf7::encode(name).as_bytes())
    }

    /// Appends ` <literal>`.
    pub fn literal(mut self, bytes: &[u8]) -> Self {
        self.space();
        self.parts.push(Part::Literal(bytes.to_vec()));
        self
    }
}

/// Checks that `flag` is a flag (`\Seen`, `$Label`, `NonJunk`), to be sent as it is.
pub fn check_flag(flag: &str) -> Result<(), ImapError> {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    if !atom.is_empty() && atom.bytes().all(|b| is_astring_char(b) && b != b']') {
        Ok(())
    } else {
        Err(ImapError::Argument(format!("{flag:?} is not a flag")))
    }
}

/// Checks that `set` is a sequence set (`1`, `3:7,9`, `1:*`).
pub fn check_set(set: &str) -> Result<(), ImapError> {
    if !set.is_empty()
        && set
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b':' | b',' | b'*'))
    {
        Ok(())
    } else {
        Err(ImapError::Argument(format!(
            "{set:?} is not a sequence set"
        )))
    }
}

fn quote_bytes(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push('\\');
        }
        out.push(char::from(b));
    }
    out.push('"');
    out
}

/// A quoted string for a raw command ([`crate::Connection::run`]): `a"b` is `"a\"b"`. Only for
/// 7-bit text without line breaks; anything else needs a literal.
pub fn quote(text: &str) -> String {
    quote_bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(c: &Command) -> Vec<Part> {
        c.parts.clone()
    }

    #[test]
    fn arguments_take_the_simplest_form_that_carries_them() {
        let c = Command::new("LOGIN")
            .astring(b"john.doe@example.org")
            .astring(b"pa ss\"w\\d");
        assert_eq!(
            text(&c),
            vec![Part::Text(
                b"LOGIN john.doe@example.org \"pa ss\\\"w\\\\d\"".to_vec()
            )]
        );
        let c = Command::new("LOGIN")
            .astring(b"")
            .astring("pässwört".as_bytes());
        assert_eq!(
            text(&c),
            vec![
                Part::Text(b"LOGIN \"\" ".to_vec()),
                Part::Literal("pässwört".as_bytes().to_vec())
            ]
        );
        let c = Command::new("SELECT").mailbox("Büro");
        assert_eq!(text(&c), vec![Part::Text(b"SELECT B&APw-ro".to_vec())]);
        let c = Command::new("SELECT").mailbox("Tom & Jerry");
        assert_eq!(
            text(&c),
            vec![Part::Text(b"SELECT \"Tom &- Jerry\"".to_vec())]
        );
        assert!(Command::new("X").raw("a\r\nb").is_err());
        let c = Command::new("SETMETADATA")
            .mailbox("INBOX")
            .raw("(")
            .unwrap()
            .string(b"/shared/x")
            .raw("NIL")
            .unwrap()
            .close();
        assert_eq!(
            text(&c),
            vec![Part::Text(
                b"SETMETADATA INBOX (\"/shared/x\" NIL)".to_vec()
            )]
        );
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn flags_and_sets_are_checked() {
        assert!(check_flag("\\Seen").is_ok());
        assert!(check_flag("$Label1").is_ok());
        for bad in ["", "\\", "a b", "(x", "x]"] {
            assert!(check_flag(bad).is_err(), "{bad:?}");
        }
        assert!(check_set("1:*,7").is_ok());
        assert!(check_set("1 2").is_err());
        assert!(check_set("").is_err());
    }
}
