//! One IMAP connection: TCP, implicit TLS or STARTTLS; responses framed and parsed by
//! imap-proto, with every server-announced size checked against the configured bound before
//! anything is read or allocated for it; commands sent with their literals (synchronizing,
//! or LITERAL+ when the server offers it); LOGIN and SASL PLAIN with or without SASL-IR.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use base64::Engine;
use imap_proto::{Response, ResponseCode, Status};
use rustls::{ClientConnection, StreamOwned, pki_types::ServerName};

use crate::{
    ImapError,
    command::{Command, Part},
    tls,
};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain TCP (a server on the same host, over loopback).
    #[default]
    Plain,
    /// Plain TCP, then `STARTTLS` before anything else (port 143).
    StartTls,
    /// TLS from the first byte (port 993).
    Tls,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port`.
    pub address: String,
    /// Plain, STARTTLS or TLS.
    pub security: Security,
    /// The name the server's certificate must carry; default: the host of `address`.
    pub server_name: Option<String>,
    /// The TLS client configuration ([`tls::client_config`]); default: the webpki roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Timeout of connecting and of each read or write.
    pub timeout: Duration,
    /// The largest literal accepted from the server, in bytes (a message, a metadata value);
    /// a larger one is refused before it is read. Also the bound of one response's literals
    /// together.
    pub max_literal_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:143".to_string(),
            security: Security::Plain,
            server_name: None,
            tls: None,
            timeout: Duration::from_secs(30),
            max_literal_bytes: DEFAULT_MAX_LITERAL_BYTES,
        }
    }
}

impl Config {
    /// Where and how to connect: `address` protected by `security`, with TLS (and STARTTLS)
    /// trusting the certificates of `ca_file`, else the webpki roots.
    pub fn secured(
        address: &str,
        security: Security,
        server_name: Option<String>,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
        max_literal_bytes: u64,
    ) -> Result<Self, ImapError> {
        let tls = match security {
            Security::Plain => None,
            Security::StartTls | Security::Tls => Some(tls::client_config(ca_file)?),
        };
        Ok(Self {
            address: address.to_string(),
            security,
            server_name,
            tls,
            timeout,
            max_literal_bytes,
        })
    }
}

/// The default bound of a server's literal: 256 MiB.
pub const DEFAULT_MAX_LITERAL_BYTES: u64 = 256 * 1024 * 1024;

/// The longest line of a response (without its literals), and the most text of one response.
const MAX_LINE_BYTES: u64 = 1024 * 1024;
const MAX_TEXT_BYTES: u64 = 8 * 1024 * 1024;

/// LITERAL- (RFC 7888) allows non-synchronizing literals up to this size.
const LITERAL_MINUS_MAX: usize = 4096;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// While the plain stream moves into TLS.
    Moved,
}

fn moved() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was given up")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Moved => Err(moved()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Moved => Err(moved()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Moved => Err(moved()),
        }
    }
}

/// A completed command: the untagged responses it brought, and the tagged OK's code and text.
#[derive(Debug)]
pub struct Done {
    /// Untagged responses, in order.
    pub untagged: Vec<Response<'static>>,
    /// The code of the tagged OK (`APPENDUID`, `READ-ONLY`...).
    pub code: Option<ResponseCode<'static>>,
    /// The text of the tagged OK.
    pub text: String,
}

/// A connection to an IMAP server.
pub struct Connection {
    reader: BufReader<Stream>,
    tag: u32,
    capabilities: Vec<String>,
    max_literal: u64,
    /// Whether LITERAL+ / LITERAL- may be used when the server offers them.
    non_synchronizing: bool,
}

/// The host part of `host:port` (`[::1]:143` too).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn tls_error(e: io::Error) -> ImapError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ImapError::Tls(tls.to_string()),
        None => ImapError::Io(e),
    }
}

fn wrap_tls(tcp: TcpStream, config: &Config) -> Result<Stream, ImapError> {
    let client_config = match &config.tls {
        Some(c) => c.clone(),
        None => tls::client_config(None)?,
    };
    let name = config
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(&config.address).to_string());
    let name = ServerName::try_from(name.clone())
        .map_err(|e| ImapError::Tls(format!("{name:?} is not a server name: {e}")))?;
    let mut conn =
        ClientConnection::new(client_config, name).map_err(|e| ImapError::Tls(e.to_string()))?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(tls_error)?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

fn open_tcp(config: &Config) -> Result<TcpStream, ImapError> {
    let mut last = None;
    for addr in config.address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, config.timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(config.timeout))?;
                stream.set_write_timeout(Some(config.timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ImapError::Io(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} resolves to no address", config.address),
        )
    })))
}

/// The text of a response code, as the server wrote it (for errors and classification).
fn code_text(code: &ResponseCode<'_>) -> String {
    match code {
        ResponseCode::TryCreate => "TRYCREATE".into(),
        ResponseCode::Alert => "ALERT".into(),
        ResponseCode::Parse => "PARSE".into(),
        ResponseCode::ReadOnly => "READ-ONLY".into(),
        ResponseCode::ReadWrite => "READ-WRITE".into(),
        ResponseCode::UidNotSticky => "UIDNOTSTICKY".into(),
        ResponseCode::MetadataTooMany => "METADATA TOOMANY".into(),
        ResponseCode::MetadataNoPrivate => "METADATA NOPRIVATE".into(),
        ResponseCode::MetadataMaxSize(n) => format!("METADATA MAXSIZE {n}"),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

/// A response's text with its code first: `[TRYCREATE] Mailbox does not exist`.
fn status_text(code: Option<&ResponseCode<'_>>, information: Option<&str>) -> String {
    match (code, information) {
        (Some(c), Some(i)) => format!("[{}] {i}", code_text(c)),
        (Some(c), None) => format!("[{}]", code_text(c)),
        (None, Some(i)) => i.to_string(),
        (None, None) => String::new(),
    }
}

/// The size a line announces at its end (`{123}` or `{123+}`), however large.
fn trailing_literal(buf: &[u8]) -> Option<u64> {
    let line = buf
        .strip_suffix(b"\r\n")
        .or_else(|| buf.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // More digits than a u64 holds is more than any bound.
    Some(
        std::str::from_utf8(digits)
            .ok()?
            .parse::<u64>()
            .unwrap_or(u64::MAX),
    )
}

fn shown(buf: &[u8]) -> String {
    let head = &buf[..buf.len().min(200)];
    String::from_utf8_lossy(head).trim_end().to_string()
}

/// Parses `buf`, a response so far (whole lines, and the literals they announced).
///
/// METADATA answers go to [`crate::metadata`] (imap-proto's parser refuses Cyrus's). And a
/// few of imap-proto's parsers unwrap what the server sent (`INTERNALDATE NIL`): a panic
/// while parsing is caught and the response counts as not understood, so that a hostile
/// server cannot end the thread.
fn parse(buf: &[u8]) -> Parsed {
    let classify = |result: nom::IResult<&[u8], Response<'_>>| match result {
        Ok((b"", response)) => Parsed::Complete(response.into_owned()),
        Ok(_) => Parsed::Bad,
        // Right after `{n}\r\n` the parser needs the literal's bytes.
        Err(nom::Err::Incomplete(nom::Needed::Size(n))) if buf.ends_with(b"}\r\n") => {
            Parsed::Literal(n.get() as u64)
        }
        Err(nom::Err::Incomplete(_)) => Parsed::MoreLines,
        Err(_) => Parsed::Bad,
    };
    let head = &buf[..buf.len().min(11)];
    if head.eq_ignore_ascii_case(b"* METADATA ") {
        let parsed = classify(crate::metadata::metadata(buf));
        if !matches!(parsed, Parsed::Bad) {
            return parsed;
        }
    }
    std::panic::catch_unwind(|| classify(Response::from_bytes(buf))).unwrap_or(Parsed::Bad)
}

enum Parsed {
    Complete(Response<'static>),
    Literal(u64),
    MoreLines,
    Bad,
}

impl Connection {
    /// Connects, sets up TLS as configured, and reads the greeting and the capabilities.
    pub fn connect(config: &Config) -> Result<Self, ImapError> {
        let tcp = open_tcp(config)?;
        let stream = match config.security {
            Security::Tls => wrap_tls(tcp, config)?,
            Security::Plain | Security::StartTls => Stream::Plain(tcp),
        };
        let mut connection = Self {
            reader: BufReader::new(stream),
            tag: 0,
            capabilities: Vec::new(),
            max_literal: config.max_literal_bytes,
            non_synchronizing: true,
        };
        match connection.read_response()? {
            Response::Data {
                status: Status::Ok | Status::PreAuth,
                code,
                ..
            } => {
                if let Some(ResponseCode::Capabilities(caps)) = code {
                    connection.set_capabilities(&caps);
                }
            }
            Response::Data {
                status: Status::Bye,
                information,
                ..
            } => return Err(ImapError::Bye(information.unwrap_or_default().into_owned())),
            other => return Err(ImapError::Protocol(format!("greeting: {other:?}"))),
        }
        if connection.capabilities.is_empty() {
            connection.refresh_capabilities()?;
        }
        if config.security == Security::StartTls {
            connection.starttls(config)?;
        }
        Ok(connection)
    }

    fn starttls(&mut self, config: &Config) -> Result<(), ImapError> {
        if !self.has("STARTTLS") {
            return Err(ImapError::Tls(
                "the server does not offer STARTTLS".to_string(),
            ));
        }
        self.send(Command::new("STARTTLS"))?;
        // Bytes after the tagged OK that came before the handshake would be read as if they
        // were protected (a man in the middle's injection): refused.
        if !self.reader.buffer().is_empty() {
            return Err(ImapError::Protocol(
                "the server sent data after its STARTTLS answer".to_string(),
            ));
        }
        let plain = std::mem::replace(&mut self.reader, BufReader::new(Stream::Moved)).into_inner();
        let Stream::Plain(tcp) = plain else {
            return Err(ImapError::Protocol(
                "STARTTLS on a connection that is already TLS".to_string(),
            ));
        };
        self.reader = BufReader::new(wrap_tls(tcp, config)?);
        // The capabilities before TLS are not to be trusted (RFC 3501 6.2.1).
        self.refresh_capabilities()
    }

    fn set_capabilities(&mut self, caps: &[imap_proto::Capability<'_>]) {
        self.capabilities = caps
            .iter()
            .map(|c| match c {
                imap_proto::Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                imap_proto::Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                imap_proto::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
    }

    fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let done = self.send(Command::new("CAPABILITY"))?;
        for response in &done.untagged {
            if let Response::Capabilities(caps) = response {
                self.set_capabilities(caps);
            }
        }
        Ok(())
    }

    /// The server's capabilities, upper case (`IMAP4REV1`, `AUTH=PLAIN`, `LITERAL+`).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// True when the server announced `capability` (case-insensitive).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// Whether literals may go without waiting for the server's `+` when it offers LITERAL+
    /// or LITERAL- (the default); `false` waits for it every time, as for a server without.
    pub fn set_non_synchronizing_literals(&mut self, allowed: bool) {
        self.non_synchronizing = allowed;
    }

    /// True when the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.reader.get_ref(), Stream::Tls(_))
    }

    fn read_line(&mut self, buf: &mut Vec<u8>, text: &mut u64) -> Result<(), ImapError> {
        let room = MAX_LINE_BYTES.min(MAX_TEXT_BYTES.saturating_sub(*text));
        let n = (&mut self.reader).take(room + 1).read_until(b'\n', buf)? as u64;
        *text += n;
        if n == 0 {
            return Err(ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        if !buf.ends_with(b"\n") {
            if n > room {
                return Err(ImapError::TooLarge {
                    announced: *text,
                    max: room,
                });
            }
            return Err(ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection within a line",
            )));
        }
        Ok(())
    }

    /// Reads one whole response, its literals included.
    pub(crate) fn read_response(&mut self) -> Result<Response<'static>, ImapError> {
        let mut buf = Vec::new();
        let mut text = 0u64;
        let mut literals = 0u64;
        loop {
            self.read_line(&mut buf, &mut text)?;
            let parsed = parse(&buf);
            match parsed {
                Parsed::Complete(response) => return Ok(response),
                Parsed::Literal(n) => {
                    literals = literals.saturating_add(n);
                    if n > self.max_literal || literals > self.max_literal {
                        return Err(ImapError::TooLarge {
                            announced: n,
                            max: self.max_literal,
                        });
                    }
                    let start = buf.len();
                    buf.reserve(n as usize);
                    (&mut self.reader).take(n).read_to_end(&mut buf)?;
                    if (buf.len() - start) as u64 != n {
                        return Err(ImapError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection within a literal",
                        )));
                    }
                }
                Parsed::MoreLines => {}
                Parsed::Bad => {
                    // A size imap-proto's numbers cannot hold is still a size: refused as one.
                    if let Some(n) = trailing_literal(&buf)
                        && n > self.max_literal
                    {
                        return Err(ImapError::TooLarge {
                            announced: n,
                            max: self.max_literal,
                        });
                    }
                    return Err(ImapError::Protocol(shown(&buf)));
                }
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()?;
        Ok(())
    }

    /// Reads responses until the continuation request (`+`), keeping untagged ones; the
    /// command's own completion instead is its failure.
    fn await_continuation(
        &mut self,
        tag: &str,
        name: &str,
        untagged: &mut Vec<Response<'static>>,
    ) -> Result<(), ImapError> {
        loop {
            match self.read_response()? {
                Response::Continue { .. } => return Ok(()),
                Response::Done { tag: t, .. } if t.0 != tag => {
                    return Err(ImapError::Protocol(format!(
                        "completion of an unknown command {}",
                        t.0
                    )));
                }
                done @ Response::Done { .. } => {
                    return self
                        .completion(name, done, std::mem::take(untagged))
                        .map(drop);
                }
                Response::Data {
                    status: Status::Bye,
                    information,
                    ..
                } => return Err(ImapError::Bye(information.unwrap_or_default().into_owned())),
                other => untagged.push(other),
            }
        }
    }

    fn completion(
        &self,
        name: &str,
        done: Response<'static>,
        untagged: Vec<Response<'static>>,
    ) -> Result<Done, ImapError> {
        let Response::Done {
            status,
            code,
            information,
            ..
        } = done
        else {
            return Err(ImapError::Protocol(format!("{name}: no completion")));
        };
        let text = status_text(code.as_ref(), information.as_deref());
        match status {
            Status::Ok => Ok(Done {
                untagged,
                code,
                text,
            }),
            Status::No | Status::Bad => Err(ImapError::Refused {
                command: name.to_string(),
                status: if status == Status::No { "NO" } else { "BAD" }.to_string(),
                text,
            }),
            other => Err(ImapError::Protocol(format!(
                "{name} completed with {other:?}"
            ))),
        }
    }

    /// Sends `command` and reads until its completion.
    pub fn send(&mut self, command: Command) -> Result<Done, ImapError> {
        let tag = self.next_tag();
        let mut untagged = Vec::new();
        let mut out = format!("{tag} ").into_bytes();
        for part in &command.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text),
                Part::Literal(bytes) => {
                    let plus = self.non_synchronizing
                        && (self.has("LITERAL+")
                            || (self.has("LITERAL-") && bytes.len() <= LITERAL_MINUS_MAX));
                    if plus {
                        out.extend_from_slice(format!("{{{}+}}\r\n", bytes.len()).as_bytes());
                        out.extend_from_slice(bytes);
                    } else {
                        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                        self.write(&out)?;
                        out.clear();
                        self.await_continuation(&tag, &command.name, &mut untagged)?;
                        out.extend_from_slice(bytes);
                    }
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        self.write(&out)?;
        self.finish(&tag, &command.name, untagged)
    }

    fn finish(
        &mut self,
        tag: &str,
        name: &str,
        mut untagged: Vec<Response<'static>>,
    ) -> Result<Done, ImapError> {
        loop {
            match self.read_response()? {
                done @ Response::Done { .. } => {
                    if let Response::Done { tag: t, .. } = &done
                        && t.0 != tag
                    {
                        return Err(ImapError::Protocol(format!(
                            "completion of an unknown command {}",
                            t.0
                        )));
                    }
                    return self.completion(name, done, untagged);
                }
                Response::Data {
                    status: Status::Bye,
                    information,
                    ..
                } if name != "LOGOUT" => {
                    return Err(ImapError::Bye(information.unwrap_or_default().into_owned()));
                }
                Response::Continue { .. } => {
                    return Err(ImapError::Protocol(format!(
                        "{name}: a continuation request nothing asked for"
                    )));
                }
                other => untagged.push(other),
            }
        }
    }

    /// A command written by hand, for tests and tools: `text` after the tag, each `{}` in it
    /// standing for the next of `literals`. Mailbox names in it must already be in modified
    /// UTF-7 ([`crate::utf7::encode`]) and quoted ([`crate::quote`]). The untagged responses.
    pub fn run(
        &mut self,
        text: &str,
        literals: &[&[u8]],
    ) -> Result<Vec<Response<'static>>, ImapError> {
        let name = text.split_whitespace().next().unwrap_or_default();
        let mut command = Command::new(name);
        command.parts.clear();
        let mut pieces = text.split("{}");
        let first = pieces.next().unwrap_or_default();
        command.parts.push(Part::Text(first.as_bytes().to_vec()));
        for (literal, rest) in literals.iter().zip(pieces) {
            command.parts.push(Part::Literal(literal.to_vec()));
            command.parts.push(Part::Text(rest.as_bytes().to_vec()));
        }
        if command.parts.iter().any(|p| match p {
            Part::Text(t) => t.iter().any(|&b| matches!(b, b'\r' | b'\n')),
            Part::Literal(_) => false,
        }) {
            return Err(ImapError::Argument(format!("{text:?} holds a line break")));
        }
        self.send(command).map(|done| done.untagged)
    }

    /// `LOGIN` (the server must allow plain text, or the connection be TLS).
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), ImapError> {
        self.send(
            Command::new("LOGIN")
                .astring(user.as_bytes())
                .astring(password.as_bytes()),
        )?;
        self.after_authentication()
    }

    /// `AUTHENTICATE PLAIN` as `authcid`, acting as `authzid` when given (Cyrus lets its
    /// admins act as any user). The credentials go as SASL-IR (RFC 4959) when the server
    /// offers it and `initial_response` is not `Some(false)`, else after the server's `+`.
    pub fn authenticate_plain(
        &mut self,
        authzid: Option<&str>,
        authcid: &str,
        password: &str,
        initial_response: Option<bool>,
    ) -> Result<(), ImapError> {
        let credentials = format!("{}\0{authcid}\0{password}", authzid.unwrap_or_default());
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let ir = initial_response.unwrap_or_else(|| self.has("SASL-IR"));
        if ir {
            self.send(Command::new("AUTHENTICATE PLAIN").raw(&encoded)?)?;
        } else {
            let tag = self.next_tag();
            self.write(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())?;
            let mut untagged = Vec::new();
            self.await_continuation(&tag, "AUTHENTICATE", &mut untagged)?;
            self.write(format!("{encoded}\r\n").as_bytes())?;
            self.finish(&tag, "AUTHENTICATE", untagged)?;
        }
        self.after_authentication()
    }

    /// Capabilities change with authentication (RFC 3501 6.2.2).
    fn after_authentication(&mut self) -> Result<(), ImapError> {
        self.refresh_capabilities()
    }

    /// `NOOP`: the untagged updates it brought.
    pub fn noop(&mut self) -> Result<Vec<Response<'static>>, ImapError> {
        self.send(Command::new("NOOP")).map(|done| done.untagged)
    }

    /// `LOGOUT`; errors are of no interest to anyone then.
    pub fn logout(&mut self) -> Result<(), ImapError> {
        self.send(Command::new("LOGOUT")).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrus_metadata_answers_and_what_panics_imap_proto_are_handled() {
        let cyrus = b"* METADATA user/john/B&APw-ro@example.org (/shared/vendor/kolab/folder-type \"mail\" \"/private/specialuse\" NIL)\r\n";
        match parse(cyrus) {
            Parsed::Complete(Response::MailboxData(
                imap_proto::MailboxDatum::MetadataSolicited { mailbox, values },
            )) => {
                assert_eq!(mailbox, "user/john/B&APw-ro@example.org");
                assert_eq!(values.len(), 2);
                assert_eq!(values[0].value.as_deref(), Some("mail"));
            }
            _ => panic!("not parsed"),
        }
        assert!(matches!(
            parse(b"* METADATA INBOX (\"/shared/x\" {2}\r\n"),
            Parsed::Literal(2)
        ));
        for hostile in [
            &b"* 1 FETCH (INTERNALDATE NIL)\r\n"[..],
            b"* 1 FETCH (BODY[] {2}\r\n",
        ] {
            assert!(!matches!(parse(hostile), Parsed::Complete(_)));
        }
        match parse(b"* METADATA INBOX (/shared/x {2}\r\n\xff\xfe)\r\n") {
            Parsed::Complete(Response::MailboxData(
                imap_proto::MailboxDatum::MetadataSolicited { values, .. },
            )) => assert_eq!(values[0].value.as_deref(), Some("\u{fffd}\u{fffd}")),
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn literal_sizes_at_line_ends_are_read_however_large() {
        assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12+}\r\n"), Some(12));
        assert_eq!(
            trailing_literal(b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n"),
            Some(u64::MAX)
        );
        assert_eq!(trailing_literal(b"* OK {x}\r\n"), None);
        assert_eq!(trailing_literal(b"* LIST () \"/\" \"a{5}\"\r\n"), None);
        assert_eq!(host_of("[::1]:993"), "::1");
        assert_eq!(host_of("imap.example.org:143"), "imap.example.org");
    }
}
