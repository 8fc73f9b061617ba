//! Postfix queue IDs, short and long, as `global/mail_queue.h` defines them: which tokens of a
//! log line are queue IDs, and the arrival time that a long ID carries.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Postfix's "safe" alphabet (`global/safe_ultostr.c`): digits and letters without vowels.
/// Long queue IDs encode their time in base 52 of it and their inode in base 51 (no `z`).
const SAFE_ALPHABET: &[u8; 52] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/// `MQID_LG_TIME_PAD`: at least six characters of seconds and exactly four of microseconds
/// stand before the `z` that separates a long ID's time from its inode number.
const LONG_TIME_MIN: usize = 10;
const LONG_USEC_LEN: usize = 4;
/// `MQID_SH_USEC_PAD`: a short ID is five hex digits of microseconds, then the inode in hex.
const SHORT_USEC_LEN: usize = 5;
/// `mail_queue_id_ok` refuses longer names; nothing longer is taken for an ID.
const MAX_LEN: usize = 100;

/// A queue ID as Postfix logs it before the first colon of a line (`3F1A2B4C5D:`,
/// `4Xk2Yz5mQnz9vG1:`). Kept as text: the ID is the key, its parts are only read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(String);

/// Which of Postfix's two queue ID forms an ID has (`enable_long_queue_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueIdForm {
    /// Upper-case hex: microseconds and inode; repeats once the inode is reused.
    Short,
    /// Base 52 seconds and microseconds, `z`, base 51 inode: does not repeat.
    Long,
}

impl QueueId {
    /// The ID if `text` is one in either form, else `None` (`NOQUEUE`, a word, a host name).
    pub fn parse(text: &str) -> Option<QueueId> {
        Self::form_of(text).map(|_| QueueId(text.to_owned()))
    }

    /// The ID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Short or long.
    pub fn form(&self) -> QueueIdForm {
        // Only `parse` and deserialization build IDs; a deserialized one that fits neither
        // form is read as short, the form that promises less.
        Self::form_of(&self.0).unwrap_or(QueueIdForm::Short)
    }

    /// When the message entered the queue, for a long ID (its seconds and microseconds);
    /// `None` for a short ID, which carries only microseconds.
    pub fn arrival(&self) -> Option<Timestamp> {
        if Self::form_of(&self.0) != Some(QueueIdForm::Long) {
            return None;
        }
        let separator = self.0.rfind('z')?;
        let time = self.0.get(..separator)?;
        let (seconds, micros) = time.split_at(time.len() - LONG_USEC_LEN);
        let seconds = decode(seconds, 52)?;
        let micros = decode(micros, 52)?;
        if micros >= 1_000_000 {
            return None;
        }
        let seconds = i64::try_from(seconds).ok()?;
        Timestamp::new(seconds, i32::try_from(micros).ok()? * 1000).ok()
    }

    fn form_of(text: &str) -> Option<QueueIdForm> {
        if text.len() > MAX_LEN {
            return None;
        }
        let bytes = text.as_bytes();
        let is_short = bytes.len() > SHORT_USEC_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b));
        if is_short {
            return Some(QueueIdForm::Short);
        }
        let separator = text.rfind('z')?;
        let (time, inode) = (&bytes[..separator], &bytes[separator + 1..]);
        let is_long = time.len() >= LONG_TIME_MIN
            && !inode.is_empty()
            && time.iter().all(|b| digit_value(*b).is_some())
            && inode
                .iter()
                .all(|b| digit_value(*b).is_some_and(|v| v < 51));
        is_long.then_some(QueueIdForm::Long)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn digit_value(byte: u8) -> Option<u64> {
    SAFE_ALPHABET
        .iter()
        .position(|c| *c == byte)
        .map(|position| position as u64)
}

/// `safe_strtoul`: the number `text` spells in the safe alphabet, `None` on overflow.
fn decode(text: &str, base: u64) -> Option<u64> {
    text.bytes().try_fold(0u64, |value, byte| {
        let digit = digit_value(byte).filter(|d| *d < base)?;
        value.checked_mul(base)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_upper_case_hex_of_six_or_more_digits() {
        assert_eq!(
            QueueId::parse("3F1A2B4C5D").map(|id| id.form()),
            Some(QueueIdForm::Short)
        );
        for not_an_id in [
            "NOQUEUE",
            "3F1A2",
            "3f1a2b4c5d",
            "3F1A2B4C5G",
            "",
            "warning",
        ] {
            assert_eq!(QueueId::parse(not_an_id), None, "{not_an_id}");
        }
    }

    #[test]
    fn long_ids_have_ten_time_characters_a_z_and_an_inode_without_z() {
        let id = QueueId::parse("4Xk2Yz5mQnz9vG1").expect("a long queue ID");
        assert_eq!(id.form(), QueueIdForm::Long);
        // Its time part `4Xk2Yz5mQn` holds a `z` of its own (base 52): the separator is the
        // last `z`, since the inode (base 51) has none.
        assert_eq!(
            QueueId::parse("4Xk2Yz5mQz9vG1"),
            None,
            "a time part of nine"
        );
        // Too short a time part, a vowel, an empty inode.
        for not_an_id in ["4Xk2Y5mQnz9vG1", "4Xk2Yz5mQaz9vG1", "4Xk2Yz5mQnz", "smtpd"] {
            assert_eq!(QueueId::parse(not_an_id), None, "{not_an_id}");
        }
    }

    #[test]
    fn a_long_id_tells_its_arrival_to_the_microsecond() {
        // 2026-12-01T10:00:00.123456Z, encoded as mail_queue_enter() does.
        let seconds: u64 = 1_796_119_200;
        let micros: u64 = 123_456;
        let encode = |mut value: u64, width: usize| {
            let mut digits = Vec::new();
            while value > 0 || digits.len() < width {
                digits.push(SAFE_ALPHABET[(value % 52) as usize]);
                value /= 52;
            }
            digits.reverse();
            String::from_utf8(digits).expect("ASCII")
        };
        let text = format!("{}{}z9vG1", encode(seconds, 6), encode(micros, 4));
        let id = QueueId::parse(&text).expect("a long queue ID");
        assert_eq!(
            id.arrival().map(|t| t.to_string()),
            Some("2026-12-01T10:00:00.123456Z".to_owned())
        );
        assert_eq!(
            QueueId::parse("3F1A2B4C5D").and_then(|id| id.arrival()),
            None
        );
    }
}
