//! Logging set-up shared by every binary: `tracing` to stderr or to a file, never to stdout
//! (for the dealer, stdout is Cyrus notifyd's unconnected socket). Every event is one line:
//! control characters that came from outside (a header, a notification's field) are escaped
//! on the way out, so no input can forge or hide a line.

use std::{fs::OpenOptions, io, path::Path, sync::Mutex};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// The environment variable that overrides the log filter (`tracing` directive syntax).
pub const ENV_VAR: &str = "BONNIE_LOG";

/// Installs the global logger. `level` is a filter such as `info` or `bonnie=debug`;
/// `$BONNIE_LOG` overrides it. With `file`, lines are appended there instead of stderr.
/// Before anything is opened the process's umask becomes 0o027 ([`crate::daemon::private_files`]),
/// so the log file, like everything the process creates, is readable by its group at most.
pub fn init(level: &str, file: Option<&Path>) -> std::io::Result<()> {
    crate::daemon::private_files();
    let filter = match std::env::var(ENV_VAR) {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(level),
    };
    // No colours: they are escape sequences, and every escape sequence in a line is escaped.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    let result = match file {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)?;
            builder.with_writer(Escaping(Mutex::new(file))).try_init()
        }
        None => builder.with_writer(Escaping(std::io::stderr)).try_init(),
    };
    // A second init (tests calling into a binary's main twice) keeps the first logger.
    let _ = result;
    Ok(())
}

/// The longest text a log field of outside origin keeps, in bytes (see [`clip`]).
pub const MAX_FIELD: usize = 256;

/// `text` for a log field: whole when at most [`MAX_FIELD`] bytes, else cut at a character
/// boundary and marked with its length (`…[cut: <n> bytes]`), so a client's megabyte name
/// costs the log a few hundred bytes. Control characters are escaped by the writer.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    clip_to(text, MAX_FIELD)
}

/// `text` whole when at most `max` bytes, else cut at a character boundary and marked with
/// its length (`…[cut: <n> bytes]`).
pub fn clip_to(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…[cut: {} bytes]", &text[..end], text.len()))
}

/// Makes writers that escape control characters (see [`escape_line`]).
struct Escaping<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = EscapingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(self.0.make_writer())
    }
}

/// A writer that passes each write through [`escape_line`]. tracing-subscriber's fmt layer
/// writes each event, formatted whole and ending in its newline, with one `write_all`.
struct EscapingWriter<W>(W);

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `line` with every control character escaped except tab and one newline at its end:
/// `\n`, `\r` as such, other C0 characters and DEL as `\xNN`, C1 characters (U+0080 to
/// U+009F, which some terminals obey) as `\u{NN}`. Bytes that are not UTF-8 are kept.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (line, &b""[..]),
    };
    let mut out = Vec::with_capacity(line.len());
    let mut rest = body;
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b'\t'),
            0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
            // U+0080..U+009F in UTF-8: 0xC2 then 0x80..0x9F.
            0xc2 if tail.first().is_some_and(|b| (0x80..=0x9f).contains(b)) => {
                out.extend_from_slice(format!("\\u{{{:x}}}", tail[0]).as_bytes());
                rest = &tail[1..];
                continue;
            }
            other => out.push(other),
        }
        rest = tail;
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_line_keeps_its_one_end() {
        let line = "user=jane\nFAKE LINE\r\x1b[31m\tx\u{85}é\u{7f}\n";
        let escaped = String::from_utf8(escape_line(line.as_bytes())).unwrap();
        assert_eq!(
            escaped,
            "user=jane\\nFAKE LINE\\r\\x1b[31m\tx\\u{85}é\\x7f\n"
        );
        assert_eq!(escaped.matches('\n').count(), 1);
        assert_eq!(escape_line(b"no end"), b"no end");
        assert_eq!(escape_line(b"\n\n"), b"\\n\n");
        assert_eq!(
            escape_line(b"\xc2"),
            b"\xc2",
            "a cut sequence stays as it was"
        );
    }

    #[test]
    fn long_fields_are_clipped_and_marked() {
        assert_eq!(clip("short"), "short");
        let long = "ü".repeat(1000);
        let clipped = clip(&long);
        assert!(clipped.len() < MAX_FIELD + 30);
        assert!(clipped.ends_with("…[cut: 2000 bytes]"), "{clipped}");
    }

    #[test]
    fn the_escaping_writer_escapes_what_it_is_given_and_reports_it_all_written() {
        use std::io::Write;
        let mut writer = EscapingWriter(Vec::new());
        writer.write_all(b"a\nb\n").unwrap();
        assert_eq!(writer.0, b"a\\nb\n");
    }
}
