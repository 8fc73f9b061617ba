//! A batch of log lines as the job the broker stores: one JSON object of event
//! `vnd.bonnie.LogLines` with the lines, where they came from and when, under an id that is a
//! digest of the source's identity and the lines' place in it, so that a batch read again
//! after a crash has the id of the first reading and the broker keeps it once. Also the
//! cutting of read bytes into bounded lines, the same for every source.

use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The event name of a batch of log lines.
pub const EVENT: &str = bonnie_core::notification::LOG_LINES_EVENT;

/// One batch, ready for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The submission id: `log-` and 40 hex digits of the identity's SHA-256.
    pub id: String,
    /// The job's JSON.
    pub json: Vec<u8>,
    /// How many lines it holds.
    pub lines: usize,
}

/// Lines gathered for a batch: each at most the configured length, the cut ones counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// The lines' bytes, without their line ends.
    pub lines: Vec<Vec<u8>>,
    /// Their total length.
    pub bytes: usize,
    /// Lines cut at the length bound.
    pub truncated: u64,
}

impl Lines {
    /// Adds a line, cut to `max_line` bytes; an empty line is no line.
    pub fn push(&mut self, line: &[u8], max_line: usize) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        let kept = &line[..line.len().min(max_line)];
        if kept.len() < line.len() {
            self.truncated += 1;
        }
        self.bytes += kept.len();
        self.lines.push(kept.to_vec());
    }

    /// True if there is no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The batch of these lines from `source` (a JSON object that says which source),
    /// received on `host` at `received`, whose id is the digest of `identity`.
    pub fn into_batch(
        self,
        host: &str,
        source: Value,
        identity: &str,
        received: Timestamp,
    ) -> Batch {
        let digest = Sha256::digest(identity.as_bytes());
        let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
        let mut invalid = Map::new();
        let lines: Vec<Value> = self
            .lines
            .iter()
            .enumerate()
            .map(|(n, line)| match std::str::from_utf8(line) {
                Ok(text) => Value::from(text),
                Err(_) => {
                    // The text with replacement characters, and the exact bytes beside it.
                    let b64 = base64::engine::general_purpose::STANDARD.encode(line);
                    invalid.insert(n.to_string(), Value::from(b64));
                    Value::from(String::from_utf8_lossy(line).into_owned())
                }
            })
            .collect();
        let count = lines.len();
        let mut job = json!({
            "event": EVENT,
            "timestamp": received.to_string(),
            "host": host,
            "received": received.to_string(),
            "source": source,
            "lines": lines,
        });
        if !invalid.is_empty() {
            job["lines_b64"] = Value::Object(invalid);
        }
        if self.truncated > 0 {
            job["truncated"] = Value::from(self.truncated);
        }
        Batch {
            id: format!("log-{hex}"),
            json: job.to_string().into_bytes(),
            lines: count,
        }
    }
}

/// What [`cut`] took from the front of a file's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    /// The whole lines found.
    pub lines: Lines,
    /// How many bytes they (and what was skipped) took; the rest waits for more.
    pub consumed: usize,
    /// True if the bytes end inside an over-long line whose rest is to be skipped.
    pub skipping: bool,
}

/// Takes whole lines from the front of `bytes`, at most `max_lines`, each cut to
/// `max_line` bytes (the rest of a longer line is skipped, also when it goes on past
/// `bytes`: `skipping` says so, then and for the next call). A line without its newline
/// waits for more, unless `end_of_file` says none will come. The same bytes, skipping state
/// and end give the same cut, and so does any prefix of `bytes` that holds the lines cut:
/// a batch read again is the same batch.
pub fn cut(
    bytes: &[u8],
    mut skipping: bool,
    end_of_file: bool,
    max_line: usize,
    max_lines: usize,
) -> Cut {
    let mut lines = Lines::default();
    let mut position = 0;
    while position < bytes.len() && lines.lines.len() < max_lines {
        let rest = &bytes[position..];
        if skipping {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    position += end + 1;
                    skipping = false;
                    continue;
                }
                None => {
                    position = bytes.len();
                    break;
                }
            }
        }
        let window = &rest[..rest.len().min(max_line + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                lines.push(&rest[..end], max_line);
                position += end + 1;
            }
            None if rest.len() > max_line => {
                lines.push(rest, max_line);
                match rest[max_line..].iter().position(|&b| b == b'\n') {
                    Some(end) => position += max_line + end + 1,
                    None => {
                        position = bytes.len();
                        skipping = true;
                    }
                }
            }
            None if end_of_file => {
                lines.push(rest, max_line);
                position = bytes.len();
            }
            None => break,
        }
    }
    Cut {
        lines,
        consumed: position,
        skipping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(cut: &Cut) -> Vec<String> {
        cut.lines
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn whole_lines_are_taken_and_a_partial_one_waits() {
        let cut = cut(b"one\r\ntwo\n\nthree", false, false, 100, 100);
        assert_eq!(texts(&cut), ["one", "two"]);
        assert_eq!(cut.consumed, 10);
        let end = super::cut(b"three", false, true, 100, 100);
        assert_eq!(texts(&end), ["three"]);
    }

    #[test]
    fn an_over_long_line_is_cut_and_its_rest_skipped_across_reads() {
        let first = cut(b"ok\n0123456789abc", false, false, 4, 100);
        assert_eq!(texts(&first), ["ok", "0123"]);
        assert!(first.skipping);
        assert_eq!(first.consumed, 16);
        assert_eq!(first.lines.truncated, 1);
        let second = cut(b"def\nnext\n", true, false, 4, 100);
        assert_eq!(texts(&second), ["next"]);
        assert!(!second.skipping);
        let exact = cut(b"1234\n12345\nx\n", false, false, 4, 100);
        assert_eq!(texts(&exact), ["1234", "1234", "x"]);
        assert_eq!(exact.lines.truncated, 1);
    }

    #[test]
    fn a_prefix_that_holds_the_lines_cut_gives_the_same_cut() {
        let bytes = b"a\nbb\n0123456789\nccc\ndd";
        for max_lines in 1..6 {
            let whole = cut(bytes, false, false, 4, max_lines);
            let again = cut(&bytes[..whole.consumed], false, false, 4, max_lines);
            assert_eq!(whole, again, "{max_lines}");
        }
    }

    #[test]
    fn ids_follow_the_identity_and_bytes_that_are_not_utf8_are_kept() {
        let mut lines = Lines::default();
        lines.push(b"caf\xe9", 100);
        let at: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let batch = lines
            .clone()
            .into_batch("mx", json!({"kind": "file"}), "x", at);
        let again = lines.into_batch("mx", json!({"kind": "file"}), "x", at);
        assert_eq!(batch.id, again.id);
        assert_eq!(batch.id.len(), 44);
        let job: Value = serde_json::from_slice(&batch.json).unwrap();
        assert_eq!(job["event"], EVENT);
        assert_eq!(job["lines"][0], "caf\u{fffd}");
        assert_eq!(job["lines_b64"]["0"], "Y2Fm6Q==");
    }
}
