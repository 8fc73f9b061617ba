//! A small blocking IMAP client: what the collector needs from Cyrus (admin and proxy
//! authentication, EXAMINE, UID FETCH, GETACL, GETMETADATA) and what tests need to drive it
//! like a mail client (CREATE, APPEND, STORE, COPY, MOVE, SETACL, SETMETADATA, ...).

use std::{
    collections::BTreeMap,
    io::{self, BufRead, BufReader, Write},
    net::TcpStream,
    time::Duration,
};

/// Why an IMAP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The connection failed.
    #[error("IMAP connection: {0}")]
    Io(#[from] io::Error),
    /// The server said NO or BAD.
    #[error("IMAP {command}: {status} {text}")]
    Refused {
        /// The command, without arguments.
        command: String,
        /// `NO` or `BAD`.
        status: String,
        /// The server's text.
        text: String,
    },
    /// The server's answer could not be understood.
    #[error("IMAP answer not understood: {0}")]
    Protocol(String),
}

/// A value in a server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An atom, quoted string or literal.
    Text(Vec<u8>),
    /// `NIL`.
    Nil,
    /// A parenthesized list.
    List(Vec<Token>),
}

impl Token {
    /// The text, lossily decoded; `None` for NIL or a list.
    pub fn text(&self) -> Option<String> {
        match self {
            Token::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }
}

/// Lists nest at most this deep in a response (a BODYSTRUCTURE needs a few levels per MIME
/// level); the tokens end there rather than the stack overflowing.
const MAX_DEPTH: usize = 64;

/// Parses the tokens of a response line (literals inline as `{n}\r\n<n bytes>`).
pub fn tokens(line: &[u8]) -> Vec<Token> {
    let mut pos = 0;
    let mut out = Vec::new();
    while let Some(token) = next_token(line, &mut pos, 0) {
        out.push(token);
    }
    out
}

fn next_token(b: &[u8], pos: &mut usize, depth: usize) -> Option<Token> {
    while *pos < b.len() && matches!(b[*pos], b' ' | b'\r' | b'\n') {
        *pos += 1;
    }
    match *b.get(*pos)? {
        b'(' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            *pos += 1;
            let mut items = Vec::new();
            loop {
                while *pos < b.len() && b[*pos] == b' ' {
                    *pos += 1;
                }
                match b.get(*pos) {
                    None => return Some(Token::List(items)),
                    Some(b')') => {
                        *pos += 1;
                        return Some(Token::List(items));
                    }
                    _ => items.push(next_token(b, pos, depth + 1)?),
                }
            }
        }
        b')' => {
            *pos += 1;
            None
        }
        b'"' => {
            *pos += 1;
            let mut text = Vec::new();
            while *pos < b.len() && b[*pos] != b'"' {
                if b[*pos] == b'\\' && *pos + 1 < b.len() {
                    *pos += 1;
                }
                text.push(b[*pos]);
                *pos += 1;
            }
            *pos += 1;
            Some(Token::Text(text))
        }
        b'{' => {
            let close = b[*pos..].iter().position(|&c| c == b'}')? + *pos;
            let n: usize = std::str::from_utf8(&b[*pos + 1..close])
                .ok()?
                .trim_end_matches('+')
                .parse()
                .ok()?;
            let start = close + 3;
            let end = start.saturating_add(n).min(b.len());
            *pos = end;
            Some(Token::Text(b.get(start..end)?.to_vec()))
        }
        _ => {
            let start = *pos;
            let mut depth = 0usize;
            // An atom; `BODY[...]`-style atoms keep their brackets.
            while *pos < b.len() {
                match b[*pos] {
                    b'[' => depth += 1,
                    b']' => depth = depth.saturating_sub(1),
                    b' ' | b'(' | b')' | b'\r' | b'\n' if depth == 0 => break,
                    _ => {}
                }
                *pos += 1;
            }
            let atom = &b[start..*pos];
            Some(if atom.eq_ignore_ascii_case(b"NIL") {
                Token::Nil
            } else {
                Token::Text(atom.to_vec())
            })
        }
    }
}

/// Quotes a string for a command.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A connection to an IMAP server.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

/// The untagged lines of a completed command.
pub type Untagged = Vec<Vec<u8>>;

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(address: &str, timeout: Duration) -> Result<Self, ImapError> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            tag: 0,
        };
        let greeting = client.read_line()?;
        if !greeting.starts_with(b"* OK") && !greeting.starts_with(b"* PREAUTH") {
            return Err(ImapError::Protocol(
                String::from_utf8_lossy(&greeting).into_owned(),
            ));
        }
        Ok(client)
    }

    /// Reads one logical response line, literals included.
    fn read_line(&mut self) -> Result<Vec<u8>, ImapError> {
        let mut line = Vec::new();
        loop {
            let start = line.len();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(ImapError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            let chunk = &line[start..];
            let trimmed = chunk.strip_suffix(b"\r\n").unwrap_or(chunk);
            let literal = trimmed
                .strip_suffix(b"}")
                .and_then(|t| t.iter().rposition(|&c| c == b'{').map(|i| &t[i + 1..]))
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            match literal {
                Some(n) => {
                    let mut bytes = vec![0u8; n];
                    io::Read::read_exact(&mut self.reader, &mut bytes)?;
                    line.extend_from_slice(&bytes);
                }
                None => return Ok(line),
            }
        }
    }

    /// Runs a command (its text after the tag; `literals` are sent as LITERAL+ after the
    /// text, each announced by the `{}` placeholder in it). Returns the untagged lines.
    pub fn run(&mut self, command: &str, literals: &[&[u8]]) -> Result<Untagged, ImapError> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let mut bytes = format!("{tag} ").into_bytes();
        let mut parts = command.split("{}");
        bytes.extend_from_slice(parts.next().unwrap_or_default().as_bytes());
        for (literal, rest) in literals.iter().zip(parts) {
            bytes.extend_from_slice(format!("{{{}+}}\r\n", literal.len()).as_bytes());
            bytes.extend_from_slice(literal);
            bytes.extend_from_slice(rest.as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        self.writer.write_all(&bytes)?;
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let rest = String::from_utf8_lossy(&line[tag.len() + 1..])
                    .trim_end()
                    .to_string();
                let (status, text) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
                if status.eq_ignore_ascii_case("OK") {
                    return Ok(untagged);
                }
                let name = command
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                return Err(ImapError::Refused {
                    command: name,
                    status: status.to_string(),
                    text: text.to_string(),
                });
            }
            untagged.push(line);
        }
    }

    /// `LOGIN`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), ImapError> {
        self.run(&format!("LOGIN {} {}", quote(user), quote(password)), &[])
            .map(drop)
    }

    /// `AUTHENTICATE PLAIN` as `admin`, acting as `user` (Cyrus lets its admins do this).
    pub fn proxy_login(
        &mut self,
        user: &str,
        admin: &str,
        password: &str,
    ) -> Result<(), ImapError> {
        let credentials = format!("{user}\0{admin}\0{password}");
        let encoded = base64(credentials.as_bytes());
        self.run(&format!("AUTHENTICATE PLAIN {encoded}"), &[])
            .map(drop)
    }

    /// `EXAMINE` (read-only select).
    pub fn examine(&mut self, mailbox: &str) -> Result<(), ImapError> {
        self.run(&format!("EXAMINE {}", quote(mailbox)), &[])
            .map(drop)
    }

    /// `SELECT`.
    pub fn select(&mut self, mailbox: &str) -> Result<(), ImapError> {
        self.run(&format!("SELECT {}", quote(mailbox)), &[])
            .map(drop)
    }

    /// The bytes of `BODY.PEEK[<section>]` of message `uid` of the selected mailbox.
    pub fn uid_fetch_section(
        &mut self,
        uid: u64,
        section: &str,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let untagged = self.run(&format!("UID FETCH {uid} (UID BODY.PEEK[{section}])"), &[])?;
        for line in untagged {
            let tokens = tokens(&line);
            // * <n> FETCH (UID <uid> BODY[...] <data>)
            let Some(Token::List(items)) = tokens.get(3) else {
                continue;
            };
            let mut iter = items.iter();
            while let Some(key) = iter.next() {
                let value = iter.next();
                if key
                    .text()
                    .is_some_and(|k| k.to_ascii_uppercase().starts_with("BODY["))
                    && let Some(Token::Text(bytes)) = value
                {
                    return Ok(Some(bytes.clone()));
                }
            }
        }
        Ok(None)
    }

    /// `GETACL`: the folder's ACL, as `(subject, rights)`.
    pub fn getacl(&mut self, mailbox: &str) -> Result<Vec<(String, String)>, ImapError> {
        let untagged = self.run(&format!("GETACL {}", quote(mailbox)), &[])?;
        let mut acl = Vec::new();
        for line in untagged {
            let tokens = tokens(&line);
            if tokens
                .get(1)
                .and_then(Token::text)
                .is_some_and(|t| t.eq_ignore_ascii_case("ACL"))
            {
                let texts: Vec<String> = tokens.iter().skip(3).filter_map(Token::text).collect();
                for pair in texts.chunks(2) {
                    if let [subject, rights] = pair {
                        acl.push((subject.clone(), rights.clone()));
                    }
                }
            }
        }
        Ok(acl)
    }

    /// `GETMETADATA (DEPTH infinity) <mailbox> (/shared /private)`: every entry with a value.
    pub fn getmetadata(&mut self, mailbox: &str) -> Result<BTreeMap<String, String>, ImapError> {
        let untagged = self.run(
            &format!(
                "GETMETADATA (DEPTH infinity) {} (/shared /private)",
                quote(mailbox)
            ),
            &[],
        )?;
        let mut metadata = BTreeMap::new();
        for line in untagged {
            let tokens = tokens(&line);
            if !tokens
                .get(1)
                .and_then(Token::text)
                .is_some_and(|t| t.eq_ignore_ascii_case("METADATA"))
            {
                continue;
            }
            if let Some(Token::List(entries)) = tokens.get(3) {
                for pair in entries.chunks(2) {
                    if let [Token::Text(key), Token::Text(value)] = pair {
                        metadata.insert(
                            String::from_utf8_lossy(key).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        );
                    }
                }
            }
        }
        Ok(metadata)
    }

    /// `APPEND` with optional flags (such as `(\Seen)`); the literal goes as LITERAL+.
    pub fn append(
        &mut self,
        mailbox: &str,
        flags: Option<&str>,
        message: &[u8],
    ) -> Result<(), ImapError> {
        let flags = flags.map(|f| format!(" {f}")).unwrap_or_default();
        self.run(
            &format!("APPEND {}{flags} {{}}", quote(mailbox)),
            &[message],
        )
        .map(drop)
    }

    /// `LOGOUT`.
    pub fn logout(&mut self) -> Result<(), ImapError> {
        self.run("LOGOUT", &[]).map(drop)
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_tokenize_with_literals() {
        let line = b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello world)\r\n";
        let fetched = tokens(line);
        assert_eq!(fetched[2].text().as_deref(), Some("FETCH"));
        let Token::List(items) = &fetched[3] else {
            panic!("a list")
        };
        assert_eq!(items[3], Token::Text(b"hello world".to_vec()));
        let acl = tokens(b"* ACL user/john/Calendar@example.org john@example.org lrswipkxtecdan \"jane doe\" lrs\r\n");
        assert_eq!(acl[5].text().as_deref(), Some("jane doe"));
        let metadata = tokens(b"* METADATA INBOX (\"/shared/x\" \"v\" \"/private/y\" NIL)\r\n");
        assert_eq!(
            metadata[3],
            Token::List(vec![
                Token::Text(b"/shared/x".to_vec()),
                Token::Text(b"v".to_vec()),
                Token::Text(b"/private/y".to_vec()),
                Token::Nil
            ])
        );
    }

    #[test]
    fn base64_and_quotes() {
        assert_eq!(base64(b"user\0admin\0pw"), "dXNlcgBhZG1pbgBwdw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
