//! The mboxrd dialect: each message opens with a `From <sender> <asctime date>` line, every
//! line of it that matches `^>*From ` gets one more `>`, and one newline follows it (the blank
//! line before the next `From `). A reader removes one `>` from each line matching `^>+From `
//! and the one newline before the next `From ` line, and gets the message back byte for byte
//! (mboxo, which quotes only `From `, cannot tell a quoted line from one that began with
//! `>From `).
//!
//! Quoting is streamed: [`Quoter`] is fed chunks of any size and keeps only a count of `>` and
//! at most four bytes of a line's start, so memory does not grow with the message or its lines.

use std::io::{self, BufRead};

/// The `From ` line that opens a message: the envelope sender (the first From address, or
/// `MAILER-DAEMON` when there is none) and the date in asctime form, UTC.
pub fn from_line(from: &[String], date_ms: Option<i64>) -> String {
    let sender = from
        .first()
        .and_then(|f| envelope_address(f))
        .unwrap_or_else(|| "MAILER-DAEMON".to_string());
    let date = date_ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let date = date.to_zoned(jiff::tz::TimeZone::UTC);
    format!("From {sender} {}\n", date.strftime("%a %b %e %H:%M:%S %Y"))
}

/// The address of `Name <addr>` or a bare `addr`, when it is one word of printable ASCII (the
/// `From ` line is split at spaces by readers).
fn envelope_address(display: &str) -> Option<String> {
    let address = match (display.rfind('<'), display.rfind('>')) {
        (Some(open), Some(close)) if open < close => &display[open + 1..close],
        _ => display.trim(),
    };
    let plain = !address.is_empty() && address.bytes().all(|b| b.is_ascii_graphic());
    plain.then(|| address.to_string())
}

const FROM: &[u8] = b"From ";

/// Where [`Quoter`] is in the current line.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// At the line's start: `quotes` `>` seen, then `matched` bytes of `From `.
    Start { quotes: u64, matched: usize },
    /// Past the point where the line could need quoting.
    Rest,
}

/// Quotes a message for mboxrd, chunk by chunk.
#[derive(Debug, Clone)]
pub struct Quoter {
    line: Line,
}

impl Default for Quoter {
    fn default() -> Self {
        Quoter {
            line: Line::Start {
                quotes: 0,
                matched: 0,
            },
        }
    }
}

impl Quoter {
    /// Appends the quoted form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut plain_from = 0;
        for (i, &byte) in chunk.iter().enumerate() {
            match self.line {
                Line::Rest => {
                    if byte == b'\n' {
                        out.extend_from_slice(&chunk[plain_from..=i]);
                        plain_from = i + 1;
                        self.line = Line::Start {
                            quotes: 0,
                            matched: 0,
                        };
                    }
                }
                Line::Start { quotes, matched } => {
                    plain_from = i + 1;
                    if matched == 0 && byte == b'>' {
                        self.line = Line::Start {
                            quotes: quotes + 1,
                            matched,
                        };
                    } else if byte == FROM[matched] {
                        if matched + 1 == FROM.len() {
                            out.push(b'>');
                            push_quotes(quotes, out);
                            out.extend_from_slice(FROM);
                            self.line = Line::Rest;
                        } else {
                            self.line = Line::Start {
                                quotes,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        push_quotes(quotes, out);
                        out.extend_from_slice(&FROM[..matched]);
                        out.push(byte);
                        self.line = if byte == b'\n' {
                            Line::Start {
                                quotes: 0,
                                matched: 0,
                            }
                        } else {
                            Line::Rest
                        };
                    }
                }
            }
        }
        if matches!(self.line, Line::Rest) {
            out.extend_from_slice(&chunk[plain_from..]);
        }
    }

    /// Ends the message: what is held of an unfinished line start, and the newline after the
    /// message.
    pub fn finish(self, out: &mut Vec<u8>) {
        if let Line::Start { quotes, matched } = self.line {
            push_quotes(quotes, out);
            out.extend_from_slice(&FROM[..matched]);
        }
        out.push(b'\n');
    }
}

fn push_quotes(quotes: u64, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(b'>', quotes as usize));
}

/// Reads messages from an mbox, unquoted: the first at the reader's position (its `From `
/// line).
pub struct Reader<R> {
    inner: R,
    /// The `From ` line of the next message, read while looking for the end of the last.
    next_from: Option<Vec<u8>>,
}

impl<R: BufRead> Reader<R> {
    /// A reader of the messages from `inner`'s position on.
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            next_from: None,
        }
    }

    /// Hands the next message to `sink`, line by line, and returns its `From ` line; `None`
    /// at the end. Memory holds one line at a time.
    pub fn next_message(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Option<String>> {
        let from = match self.next_from.take() {
            Some(from) => from,
            None => {
                let mut from = Vec::new();
                if self.inner.read_until(b'\n', &mut from)? == 0 {
                    return Ok(None);
                }
                from
            }
        };
        if !from.starts_with(FROM) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no `From ` line where a message should begin",
            ));
        }
        let mut held: Option<Vec<u8>> = None;
        loop {
            let mut line = Vec::new();
            let more = self.inner.read_until(b'\n', &mut line)? > 0;
            if !more || line.starts_with(FROM) {
                // The held line's newline is the separator before this `From ` (or the end).
                if let Some(last) = held.take() {
                    let end = last.len() - usize::from(last.ends_with(b"\n"));
                    sink(&last[..end]);
                }
                self.next_from = more.then_some(line);
                return Ok(Some(String::from_utf8_lossy(&from).trim_end().to_string()));
            }
            if let Some(previous) = held.take() {
                sink(&previous);
            }
            let quotes = line.iter().take_while(|&&b| b == b'>').count();
            if quotes > 0 && line[quotes..].starts_with(FROM) {
                line.remove(0);
            }
            held = Some(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(message: &[u8], chunk: usize) -> Vec<u8> {
        let mut quoter = Quoter::default();
        let mut out = Vec::new();
        for piece in message.chunks(chunk.max(1)) {
            quoter.push(piece, &mut out);
        }
        quoter.finish(&mut out);
        out
    }

    fn read_all(mbox: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = Reader::new(io::Cursor::new(mbox));
        let mut messages = Vec::new();
        loop {
            let mut message = Vec::new();
            let from = reader.next_message(&mut |bytes| message.extend_from_slice(bytes));
            if from.unwrap().is_none() {
                return messages;
            }
            messages.push(message);
        }
    }

    #[test]
    fn quoting_adds_one_quote_to_every_from_line_whatever_the_chunks() {
        let message: &[u8] =
            b"From: a\r\n\r\nFrom here\n>From there\n>>From far\nFro\n>Fr\nFromage\nFrom ";
        let expected: &[u8] =
            b"From: a\r\n\r\n>From here\n>>From there\n>>>From far\nFro\n>Fr\nFromage\n>From \n";
        for chunk in 1..message.len() + 1 {
            assert_eq!(quote(message, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn messages_read_back_byte_for_byte_with_or_without_a_final_newline() {
        let messages: [&[u8]; 4] = [
            b"Subject: x\n\nFrom me\n>From you\n",
            b"Subject: y\r\n\r\nno newline at the end",
            b"Subject: z\n\n\n\n",
            b"Subject: w\n\n>>>From\n>From ",
        ];
        let mut mbox = Vec::new();
        for message in messages {
            mbox.extend_from_slice(from_line(&["A <a@example.org>".into()], Some(0)).as_bytes());
            mbox.extend_from_slice(&quote(message, 3));
        }
        assert_eq!(read_all(&mbox), messages.map(<[u8]>::to_vec));
    }

    #[test]
    fn the_from_line_has_the_address_and_an_asctime_date() {
        assert_eq!(
            from_line(
                &["Jane Doe <jane@example.org>".into()],
                Some(1_764_580_340_000)
            ),
            "From jane@example.org Mon Dec  1 09:12:20 2025\n"
        );
        assert_eq!(
            from_line(&["Jane Doe".into()], None),
            "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        );
    }
}
