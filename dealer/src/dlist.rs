//! Parsing the one request Cyrus sends on a `notifysocket: dlist:` connection:
//! `NOTIFY %(METHOD external CLASS EVENT ... MESSAGE {345+}\r\n<json> FILEPATH NIL)\r\n`.
//! Values are atoms, `NIL`, quoted strings, literals (`{n}` or `{n+}`, CRLF, n bytes), lists
//! `(...)` and key/value lists `%(...)`.

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The request is not complete yet: read more.
    Incomplete,
    /// A whole request; `message` is the notification (the `MESSAGE` value).
    Notify {
        /// The notification's bytes.
        message: Vec<u8>,
    },
    /// Not a request this dealer understands.
    Invalid(String),
}

/// Parses what has been received of one request.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut p = Parser {
        buf,
        pos: 0,
        depth: 0,
    };
    match p.request() {
        Ok(message) => Parsed::Notify { message },
        Err(Error::Incomplete) => Parsed::Incomplete,
        Err(Error::Invalid(why)) => Parsed::Invalid(why),
    }
}

enum Error {
    Incomplete,
    Invalid(String),
}

/// A parsed value; only what the request needs is kept.
enum Value {
    Bytes(Vec<u8>),
    Nil,
    Other,
}

/// Lists nest at most this deep (Cyrus's request has one level inside the key/value list);
/// deeper is an invalid request rather than a stack overflow of the daemon.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Lists open around `pos`.
    depth: usize,
}

impl Parser<'_> {
    fn invalid<T>(&self, what: &str) -> Result<T, Error> {
        Err(Error::Invalid(format!("{what} at byte {}", self.pos)))
    }

    fn peek(&self) -> Result<u8, Error> {
        self.buf.get(self.pos).copied().ok_or(Error::Incomplete)
    }

    fn expect(&mut self, text: &[u8]) -> Result<(), Error> {
        for &b in text {
            if self.peek()? != b {
                return self.invalid(&format!("expected {:?}", String::from_utf8_lossy(text)));
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn skip_spaces(&mut self) -> Result<(), Error> {
        while self.peek()? == b' ' {
            self.pos += 1;
        }
        Ok(())
    }

    fn request(&mut self) -> Result<Vec<u8>, Error> {
        self.expect(b"NOTIFY ")?;
        self.skip_spaces()?;
        self.expect(b"%(")?;
        let mut message = None;
        loop {
            self.skip_spaces()?;
            if self.peek()? == b')' {
                self.pos += 1;
                break;
            }
            let key = self.atom()?;
            self.skip_spaces()?;
            let value = self.value()?;
            if key == b"MESSAGE" {
                message = Some(value);
            }
        }
        if self.peek()? == b'\r' {
            self.pos += 1;
        }
        self.expect(b"\n")?;
        match message {
            Some(Value::Bytes(bytes)) => Ok(bytes),
            Some(Value::Nil) => Ok(Vec::new()),
            _ => self.invalid("no MESSAGE"),
        }
    }

    fn atom(&mut self) -> Result<Vec<u8>, Error> {
        let start = self.pos;
        while !matches!(
            self.peek()?,
            b' ' | b'(' | b')' | b'{' | b'"' | b'\r' | b'\n' | b'%'
        ) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.invalid("expected an atom");
        }
        Ok(self.buf[start..self.pos].to_vec())
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.peek()? {
            b'"' => self.quoted().map(Value::Bytes),
            b'{' => self.literal().map(Value::Bytes),
            b'(' => {
                self.pos += 1;
                self.list_items()?;
                Ok(Value::Other)
            }
            b'%' => {
                self.expect(b"%(")?;
                self.list_items()?;
                Ok(Value::Other)
            }
            _ => {
                let atom = self.atom()?;
                Ok(if atom == b"NIL" {
                    Value::Nil
                } else {
                    Value::Bytes(atom)
                })
            }
        }
    }

    /// Items up to and including the closing parenthesis.
    fn list_items(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return self.invalid("lists nested too deep");
        }
        self.depth += 1;
        loop {
            self.skip_spaces()?;
            if self.peek()? == b')' {
                self.pos += 1;
                self.depth -= 1;
                return Ok(());
            }
            self.value()?;
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, Error> {
        self.expect(b"\"")?;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    out.push(self.peek()?);
                    self.pos += 1;
                }
                b'\r' | b'\n' => return self.invalid("a line break in a quoted string"),
                other => {
                    out.push(other);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, Error> {
        self.expect(b"{")?;
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        let Some(length) = std::str::from_utf8(&self.buf[start..self.pos])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return self.invalid("a literal without a length");
        };
        if self.peek()? == b'+' {
            self.pos += 1;
        }
        self.expect(b"}\r\n")?;
        let end = self
            .pos
            .checked_add(length)
            .ok_or(Error::Invalid("a literal too long".to_string()))?;
        if end > self.buf.len() {
            return Err(Error::Incomplete);
        }
        let bytes = self.buf[self.pos..end].to_vec();
        self.pos = end;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request as Cyrus 3.6 sends it (RECIPE.md §4), with a real notification.
    fn cyrus_request(json: &str) -> Vec<u8> {
        format!(
            "NOTIFY %(METHOD external CLASS EVENT PRIORITY NIL USER NIL MAILBOX NIL OPTIONS () MESSAGE {{{}+}}\r\n{json} FILEPATH NIL)\r\n",
            json.len()
        )
        .into_bytes()
    }

    #[test]
    fn the_cyrus_request_yields_the_notification() {
        let json = r#"{"event":"Login","user":"john.doe@example.org","uri":"imap://cyrus-lab.example.org"}"#;
        let request = cyrus_request(json);
        assert_eq!(
            parse(&request),
            Parsed::Notify {
                message: json.as_bytes().to_vec()
            }
        );
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let request = cyrus_request(r#"{"event":"Logout","clientIP":"127.0.0.1"}"#);
        for end in 0..request.len() {
            assert_eq!(
                parse(&request[..end]),
                Parsed::Incomplete,
                "prefix of {end} bytes"
            );
        }
    }

    #[test]
    fn quoted_messages_and_garbage() {
        assert_eq!(
            parse(b"NOTIFY %(MESSAGE \"a \\\"q\\\" b\")\r\n"),
            Parsed::Notify {
                message: b"a \"q\" b".to_vec()
            }
        );
        assert!(matches!(parse(b"HELLO world\r\n"), Parsed::Invalid(_)));
        assert!(matches!(
            parse(b"NOTIFY %(METHOD external)\r\n"),
            Parsed::Invalid(_)
        ));
    }

    #[test]
    fn deep_nesting_is_invalid_not_a_stack_overflow() {
        let mut request = b"NOTIFY %(OPTIONS ".to_vec();
        request.extend(std::iter::repeat_n(b'(', 1_000_000));
        assert!(matches!(parse(&request), Parsed::Invalid(_)));
        let nested = format!(
            "NOTIFY %(A {}{} MESSAGE \"m\")\r\n",
            "(".repeat(8),
            ")".repeat(8)
        );
        assert_eq!(
            parse(nested.as_bytes()),
            Parsed::Notify {
                message: b"m".to_vec()
            }
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&bytes);
            }

            #[test]
            fn request_like_bytes_parse_without_panic(
                text in "NOTIFY %\\((METHOD|MESSAGE|[A-Z]{1,5}| |\\(|\\)|%\\(|\"[a-z\\\\\"]{0,4}\"|\\{[0-9]{0,3}\\+?\\}\r\n|NIL|\r\n){0,24}",
            ) {
                let _ = parse(text.as_bytes());
            }

            /// Any notification bytes, UTF-8 or not, come out of Cyrus's request exactly,
            /// and no prefix of the request is taken for a whole one.
            #[test]
            fn the_message_literal_comes_back_byte_for_byte(
                message in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let mut request = format!(
                    "NOTIFY %(METHOD external CLASS EVENT PRIORITY NIL USER NIL MAILBOX NIL OPTIONS () MESSAGE {{{}+}}\r\n",
                    message.len()
                )
                .into_bytes();
                request.extend_from_slice(&message);
                request.extend_from_slice(b" FILEPATH NIL)\r\n");
                prop_assert_eq!(parse(&request), Parsed::Notify { message: message.clone() });
                for end in 0..request.len() {
                    prop_assert_eq!(parse(&request[..end]), Parsed::Incomplete);
                }
            }

            #[test]
            fn the_text_of_a_quoted_message_comes_back(text in "[ -~]{0,100}") {
                let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
                let request = format!("NOTIFY %(MESSAGE \"{quoted}\")\r\n");
                prop_assert_eq!(parse(request.as_bytes()), Parsed::Notify { message: text.into_bytes() });
            }
        }
    }
}
