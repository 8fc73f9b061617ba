//! The time stamps that start a mail log line: syslog's `Dec  1 10:00:00`, Postfix
//! `maillog_file`'s `Dec 01 10:00:00` (either with an optional fraction) and RFC 3339; the
//! year that a stamp without one had, inferred from when the line was received.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How far ahead of its receipt a line's stamp may be and still be this year's: clocks of
/// senders run ahead and zones are misconfigured by hours, but a stamp a day or more in the
/// future is last year's (a line stamped Dec 31 and received on Jan 1, or a file replayed
/// months after it was written).
const FUTURE_TOLERANCE: SignedDuration = SignedDuration::from_hours(24);

/// A stamp without a year or zone, as RFC 3164 and Postfix's `msg_logger` (`%b %d %H:%M:%S`)
/// write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BsdStamp {
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    nanosecond: i32,
}

impl BsdStamp {
    /// The stamp at the start of `text` and what follows it, or `None`. The day may be
    /// space-padded (syslog) or zero-padded (`maillog_file`); seconds may carry a fraction
    /// (rsyslog's high-precision templates).
    pub(crate) fn parse(text: &str) -> Option<(BsdStamp, &str)> {
        let bytes = text.as_bytes();
        let month = month_number(bytes.get(..3)?)?;
        let mut at = 3;
        let spaces = count(&bytes[at..], |b| b == b' ');
        if spaces == 0 || spaces > 2 {
            return None;
        }
        at += spaces;
        let day = digits(bytes, &mut at, 1, 2)?;
        expect(bytes, &mut at, b' ')?;
        let hour = digits(bytes, &mut at, 2, 2)?;
        expect(bytes, &mut at, b':')?;
        let minute = digits(bytes, &mut at, 2, 2)?;
        expect(bytes, &mut at, b':')?;
        let second = digits(bytes, &mut at, 2, 2)?;
        let mut nanosecond = 0;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            let width = count(&bytes[at..], |b| b.is_ascii_digit());
            if width == 0 || width > 9 {
                return None;
            }
            let fraction: i32 = text[at..at + width].parse().ok()?;
            nanosecond = fraction * 10i32.pow(9 - width as u32);
            at += width;
        }
        let stamp = BsdStamp {
            month,
            day: i8::try_from(day).ok()?,
            hour: i8::try_from(hour).ok()?,
            minute: i8::try_from(minute).ok()?,
            second: i8::try_from(second).ok()?,
            nanosecond,
        };
        Some((stamp, &text[at..]))
    }

    /// The instant this stamp names in `zone`, in the latest year that does not put it more
    /// than [`FUTURE_TOLERANCE`] after `received`. `None` if no year in the last five has the
    /// date (a Feb 29 finds its leap year) or the fields are out of range.
    pub(crate) fn resolve(&self, zone: &TimeZone, received: Timestamp) -> Option<Timestamp> {
        let latest = received.checked_add(FUTURE_TOLERANCE).ok()?;
        let received_year = received.to_zoned(zone.clone()).year();
        (received_year - 4..=received_year + 1)
            .rev()
            .find_map(|year| {
                let civil = DateTime::new(
                    year,
                    self.month,
                    self.day,
                    self.hour,
                    self.minute,
                    self.second,
                    self.nanosecond,
                )
                .ok()?;
                let instant = civil.to_zoned(zone.clone()).ok()?.timestamp();
                (instant <= latest).then_some(instant)
            })
    }
}

/// An RFC 3339 stamp (`2026-12-01T10:00:00.123456+01:00`) up to the next space, and what
/// follows it.
pub(crate) fn parse_rfc3339(text: &str) -> Option<(Timestamp, &str)> {
    let end = text.find(' ').unwrap_or(text.len());
    let token = &text[..end];
    // A bare date-time without an offset is no RFC 3339 stamp; jiff refuses it too.
    let bytes = token.as_bytes();
    if bytes.len() < 20 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    let instant: Timestamp = token.parse().ok()?;
    Some((instant, &text[end..]))
}

fn month_number(name: &[u8]) -> Option<i8> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let position = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    i8::try_from(position + 1).ok()
}

fn count(bytes: &[u8], wanted: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|b| wanted(**b)).count()
}

fn expect(bytes: &[u8], at: &mut usize, wanted: u8) -> Option<()> {
    (bytes.get(*at) == Some(&wanted)).then(|| *at += 1)
}

/// Between `min` and `max` ASCII digits at `at`, as a number.
fn digits(bytes: &[u8], at: &mut usize, min: usize, max: usize) -> Option<u32> {
    let width = count(&bytes[*at..], |b| b.is_ascii_digit());
    if width < min || width > max {
        return None;
    }
    let value = bytes[*at..*at + width]
        .iter()
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    *at += width;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("a test instant")
    }

    fn resolve(stamp: &str, received: &str) -> Option<String> {
        let (stamp, _) = BsdStamp::parse(stamp)?;
        stamp
            .resolve(&TimeZone::UTC, utc(received))
            .map(|t| t.to_string())
    }

    #[test]
    fn syslog_and_maillog_file_days_and_fractions_are_read() {
        assert_eq!(
            resolve("Dec  1 10:00:00 mx1", "2026-12-01T10:00:05Z"),
            Some("2026-12-01T10:00:00Z".to_owned())
        );
        assert_eq!(
            resolve("Dec 01 10:00:00 mx1", "2026-12-01T10:00:05Z"),
            Some("2026-12-01T10:00:00Z".to_owned())
        );
        assert_eq!(
            resolve("Dec 01 10:00:00.123456 mx1", "2026-12-01T10:00:05Z"),
            Some("2026-12-01T10:00:00.123456Z".to_owned())
        );
        assert_eq!(resolve("Dec 32 10:00:00 mx1", "2026-12-01T10:00:05Z"), None);
        assert_eq!(BsdStamp::parse("Dez 01 10:00:00 mx1"), None);
    }

    #[test]
    fn a_line_of_dec_31_received_on_jan_1_is_of_last_year() {
        assert_eq!(
            resolve("Dec 31 23:59:58", "2027-01-01T00:00:03Z"),
            Some("2026-12-31T23:59:58Z".to_owned())
        );
        // A sender whose clock is a few seconds ahead is already in the new year.
        assert_eq!(
            resolve("Jan  1 00:00:02", "2026-12-31T23:59:59Z"),
            Some("2027-01-01T00:00:02Z".to_owned())
        );
        // A file replayed in November: March is this year's, not next year's.
        assert_eq!(
            resolve("Mar  1 08:00:00", "2026-11-15T12:00:00Z"),
            Some("2026-03-01T08:00:00Z".to_owned())
        );
        // Feb 29 finds the leap year it was written in.
        assert_eq!(
            resolve("Feb 29 12:00:00", "2027-03-01T00:00:00Z"),
            Some("2024-02-29T12:00:00Z".to_owned())
        );
    }

    #[test]
    fn rfc3339_stamps_need_an_offset() {
        let (instant, rest) =
            parse_rfc3339("2026-12-01T10:00:00.5+01:00 mx1").expect("an RFC 3339 stamp");
        assert_eq!(instant.to_string(), "2026-12-01T09:00:00.5Z");
        assert_eq!(rest, " mx1");
        assert_eq!(parse_rfc3339("2026-12-01T10:00:00 mx1"), None);
    }
}
