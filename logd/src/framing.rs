//! RFC 6587's two framings of syslog over a stream, told apart per message: octet counting
//! (`LEN SP MSG`) when a message starts with digits and a space, newline framing otherwise
//! (a line that starts with digits and no space, such as an RFC 3339 stamp, is a line).
//! Every message is kept to `max + 1` bytes at most, whatever its announced length, so
//! that a hostile peer costs bounded memory; the batch cuts it to `max` and counts it.

/// The most digits an octet count may have.
const MAX_DIGITS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Start,
    /// Reading an octet count's digits.
    Length,
    /// Inside an octet-counted message with this many bytes to go.
    Counted(u64),
    /// Inside a newline-framed message.
    Line,
}

/// Splits one stream's bytes into messages.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    state: State,
    digits: Vec<u8>,
    message: Vec<u8>,
}

impl Decoder {
    /// A decoder keeping at most `max + 1` bytes of each message.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            state: State::Start,
            digits: Vec::new(),
            message: Vec::new(),
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = (self.max + 1).saturating_sub(self.message.len());
        self.message
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.message.is_empty() {
            out.push(std::mem::take(&mut self.message));
        }
        self.state = State::Start;
    }

    /// Adds `data`, appending the messages it completes to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        while let Some(&first) = data.first() {
            match self.state {
                State::Start => match first {
                    b'\n' | b'\r' | b'\0' => data = &data[1..],
                    b'0'..=b'9' => self.state = State::Length,
                    _ => self.state = State::Line,
                },
                State::Length => match first {
                    b'0'..=b'9' if self.digits.len() < MAX_DIGITS => {
                        self.digits.push(first);
                        data = &data[1..];
                    }
                    b' ' if !self.digits.is_empty() => {
                        let length = std::str::from_utf8(&self.digits)
                            .ok()
                            .and_then(|d| d.parse::<u64>().ok())
                            .unwrap_or(0);
                        self.digits.clear();
                        data = &data[1..];
                        self.state = State::Counted(length);
                        if length == 0 {
                            self.state = State::Start;
                        }
                    }
                    _ => {
                        // Not a count: the digits start a line.
                        let digits = std::mem::take(&mut self.digits);
                        self.keep(&digits);
                        self.state = State::Line;
                    }
                },
                State::Counted(left) => {
                    let taken = (data.len() as u64).min(left) as usize;
                    self.keep(&data[..taken]);
                    data = &data[taken..];
                    if left == taken as u64 {
                        self.emit(out);
                    } else {
                        self.state = State::Counted(left - taken as u64);
                    }
                }
                State::Line => match data.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        self.keep(&data[..end]);
                        data = &data[end + 1..];
                        self.emit(out);
                    }
                    None => {
                        self.keep(data);
                        data = &[];
                    }
                },
            }
        }
    }

    /// The stream ended: a message it was inside of is kept as far as it came.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) {
        let digits = std::mem::take(&mut self.digits);
        self.keep(&digits);
        self.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut decoder = Decoder::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out);
        }
        decoder.finish(&mut out);
        out.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn both_framings_mix_and_split_anywhere() {
        let stream =
            b"11 <13>hello\nX4 <1>a\n<13>line one\n2026-12-01T10:00:00Z mx postfix: x\n3 abc";
        let whole = decode(&[stream], 100);
        assert_eq!(
            whole,
            [
                "<13>hello\nX",
                "<1>a",
                "<13>line one",
                "2026-12-01T10:00:00Z mx postfix: x",
                "abc"
            ]
        );
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(decode(&[a, b], 100), whole, "split at {split}");
        }
    }

    #[test]
    fn hostile_lengths_cost_bounded_memory_and_lose_no_earlier_message() {
        let mut decoder = Decoder::new(8);
        let mut out = Vec::new();
        decoder.feed(b"<1>first\n9999999999 ", &mut out);
        decoder.feed(&vec![b'x'; 100_000], &mut out);
        assert_eq!(out, [b"<1>first".to_vec()]);
        assert!(decoder.message.len() <= 9);
        decoder.feed(&vec![b'y'; 1000], &mut out);
        let mut long = Decoder::new(8);
        let mut lines = Vec::new();
        long.feed(&vec![b'z'; 100_000], &mut lines);
        long.feed(b"\nok\n", &mut lines);
        assert_eq!(lines, [vec![b'z'; 9], b"ok".to_vec()]);
    }
}
