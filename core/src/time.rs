//! Timestamps as Cyrus writes them (RFC 3339, `2026-11-28T17:10:09.722Z`) and mail `Date`
//! headers (RFC 2822) to and from milliseconds since the Unix epoch, in UTC. Parsing, formatting
//! and calendar arithmetic are jiff's; this file only adds the leniency real mail needs.

use jiff::{Timestamp, fmt::rfc2822::DateTimeParser};

/// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction) into
/// milliseconds since the epoch, UTC. `None` when it is not one. jiff's Temporal parser also
/// takes the ISO 8601 forms around RFC 3339 (a space for the `T`, a `[zone]` annotation).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    text.parse::<Timestamp>().ok().map(|ts| ts.as_millisecond())
}

/// Parses an RFC 2822 date (`Sat, 28 Nov 2026 17:13:36 +0000`) into milliseconds since the
/// epoch, UTC. Besides what RFC 2822 allows (no weekday, two-digit years, obsolete zones such
/// as `GMT`, `UT` and `EST`, comments), it takes what mailers write in practice: a wrong or
/// foreign weekday, comments anywhere, a full month name, a one-digit hour, extra words after
/// the zone, and a missing or unknown zone name (read as UTC, as RFC 2822 section 4.3 says of
/// unknown zones; a malformed numeric offset is no date). `None` when no date can be read.
pub fn parse_rfc2822_ms(text: &str) -> Option<i64> {
    let text = without_comments(text);
    let parser = DateTimeParser::new().relaxed_weekday(true);
    let parse = |candidate: &str| {
        parser
            .parse_timestamp(candidate)
            .ok()
            .map(|ts| ts.as_millisecond())
    };
    parse(&text).or_else(|| {
        // The weekday, if any: before a comma, or a first word that is not the day.
        let rest = text.split_once(',').map_or(text.as_str(), |(_, rest)| rest);
        let mut words = rest.split_whitespace().peekable();
        if words
            .peek()
            .is_some_and(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
        {
            words.next();
        }
        let (day, month, year, clock) =
            (words.next()?, words.next()?, words.next()?, words.next()?);
        let month: String = month.chars().take(3).collect();
        let clock: Vec<String> = clock.split(':').map(|part| format!("{part:0>2}")).collect();
        let clock = clock.join(":");
        let date = format!("{day} {month} {year} {clock}");
        match words.next() {
            Some(zone) if zone.starts_with(['+', '-']) => parse(&format!("{date} {zone}")),
            Some(zone) => {
                parse(&format!("{date} {zone}")).or_else(|| parse(&format!("{date} +0000")))
            }
            None => parse(&format!("{date} +0000")),
        }
    })
}

/// `text` without its RFC 2822 comments (parenthesized, nested, `\` quoting), each replaced
/// by a space.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut depth, mut escaped) = (0usize, false);
    for c in text.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(' ');
                    }
                }
                _ => {}
            }
        } else if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// The timestamp of `ms`, the nearest jiff can represent (years -9999 to 9999) beyond.
fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
pub fn format_rfc3339_s(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The UTC date of a timestamp as `(year, month, day)`.
pub fn utc_date(ms: i64) -> (i64, i64, i64) {
    let date = timestamp(ms).to_zoned(jiff::tz::TimeZone::UTC).date();
    (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

/// Days since 1970-01-01 of the date `y`-`m`-`d` (proleptic Gregorian, by jiff). A day past
/// the month's end counts on into the next months; a year or month jiff cannot represent is
/// taken as the nearest it can.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let year = y.clamp(-9999, 9999) as i16;
    let month = m.clamp(1, 12) as i8;
    let first = jiff::civil::Date::new(year, month, 1).unwrap_or(EPOCH);
    let first_days = i64::from(
        first
            .since((jiff::Unit::Day, EPOCH))
            .map_or(0, |span| span.get_days()),
    );
    first_days + (d - 1)
}

/// The date (`y`, `m`, `d`) `z` days after 1970-01-01 (proleptic Gregorian, by jiff). Beyond
/// what jiff represents (years -9999 to 9999) the year is -10000 or 10000 (January 1st), so
/// that a caller building a date of it gets an error rather than a wrong date.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    match jiff::Span::new()
        .try_days(z)
        .ok()
        .and_then(|span| EPOCH.checked_add(span).ok())
    {
        Some(date) => (
            i64::from(date.year()),
            i64::from(date.month()),
            i64::from(date.day()),
        ),
        None => (if z < 0 { -10_000 } else { 10_000 }, 1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrus_timestamps_round_trip() {
        let ms = parse_rfc3339_ms("2026-11-28T17:10:09.722Z").unwrap();
        assert_eq!(ms, 1_795_885_809_722);
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T17:10:09.722Z");
        assert_eq!(format_rfc3339_s(ms), "2026-11-28T17:10:09Z");
    }

    #[test]
    fn offsets_and_fractions_are_applied() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T12:00:00.123456Z"),
            Some(951_825_600_123)
        );
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        for bad in [
            "",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-11-28T17:10:09",
            "2026-11-28T17:10:09.Z",
            "yyyy-11-28T17:10:09Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn mail_dates_parse_to_utc() {
        assert_eq!(
            parse_rfc2822_ms("Sat, 28 Nov 2026 18:13:36 +0100")
                .map(format_rfc3339_s)
                .as_deref(),
            Some("2026-11-28T17:13:36Z")
        );
        assert_eq!(
            parse_rfc2822_ms("1 Jan 2001 10:00:00 GMT")
                .map(format_rfc3339_s)
                .as_deref(),
            Some("2001-01-01T10:00:00Z")
        );
        assert_eq!(
            parse_rfc2822_ms("Mon, 01 Jan 2001 10:00 -0500 (EST)")
                .map(format_rfc3339_s)
                .as_deref(),
            Some("2001-01-01T15:00:00Z")
        );
        assert_eq!(parse_rfc2822_ms("yesterday"), None);
    }

    /// The dates of real mail that RFC 2822 calls obsolete, or that mailers write anyway.
    #[test]
    fn lenient_mail_dates_parse() {
        let utc = |text: &str| parse_rfc2822_ms(text).map(format_rfc3339_s);
        let cases = [
            ("Sat, 28 Nov 2026 17:13:36 GMT", "2026-11-28T17:13:36Z"),
            ("Sat, 28 Nov 2026 17:13:36 UT", "2026-11-28T17:13:36Z"),
            ("Sat, 28 Nov 2026 12:13:36 EST", "2026-11-28T17:13:36Z"),
            ("Sat, 28 Nov 2026 10:13:36 PDT", "2026-11-28T17:13:36Z"),
            ("28 Nov 2026 17:13:36 +0000", "2026-11-28T17:13:36Z"),
            ("28 Nov 26 17:13:36 +0000", "2026-11-28T17:13:36Z"),
            ("28 Nov 99 17:13:36 +0000", "1999-11-28T17:13:36Z"),
            ("Sat, 28 Nov 2026 17:13 +0000", "2026-11-28T17:13:00Z"),
            ("Mon, 28 Nov 2026 17:13:36 +0000", "2026-11-28T17:13:36Z"),
            ("Sa, 28 Nov 2026 17:13:36 +0000", "2026-11-28T17:13:36Z"),
            ("Sat 28 Nov 2026 17:13:36 +0000", "2026-11-28T17:13:36Z"),
            (
                "Sat, 28 November 2026 17:13:36 +0000",
                "2026-11-28T17:13:36Z",
            ),
            ("Sat, 28 Nov 2026 9:13:36 -0800", "2026-11-28T17:13:36Z"),
            (
                "Sat, 28 Nov 2026 18:13:36 +0100 CET",
                "2026-11-28T17:13:36Z",
            ),
            ("Sat, 28 Nov 2026 17:13:36", "2026-11-28T17:13:36Z"),
            ("Sat, 28 Nov 2026 17:13:36 GMT+1", "2026-11-28T17:13:36Z"),
            (
                "Sat, 28 Nov 2026 (a (nested) comment) 17:13:36 +0000",
                "2026-11-28T17:13:36Z",
            ),
            (
                "  Sat, 28 Nov 2026 17:13:36 +0000 (UTC)\r\n",
                "2026-11-28T17:13:36Z",
            ),
            ("Sat, 28 Nov 2026 23:59:60 +0000", "2026-11-28T23:59:59Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(utc(text).as_deref(), Some(expected), "{text:?}");
        }
    }

    /// Bytes that once made the slicing parsers panic, and other garbage: no date, no panic.
    #[test]
    fn multi_byte_characters_are_not_dates() {
        for bad in [
            "Sat, 28 Nov 2026 17:13:36 +€b",
            "Sat, 28 Nov 2026 17:13:36 +0é00",
            "28 Nov 2026 17:13:36 +€",
            "Sat, 31 Feb 2026 17:13:36 +0000",
            "Sat, 28 Nov 2026 25:13:36 +0000",
            "Sat, 28 Nov 2026 17:13:36 +9999",
            "28 Xyz 2026 17:13:36 +0000",
            "(only a comment)",
            "",
        ] {
            assert_eq!(parse_rfc2822_ms(bad), None, "{bad:?}");
        }
        for bad in [
            "2026-11-28T17:10:09+0é00",
            "2026-11-28T17:10:09+€b",
            "2026-11-28T17:10:09.€Z",
            "2026-11-€8T17:10:09Z",
            "2026-11-28T17:10:09.722Z\u{0}",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(
            utc_date(parse_rfc3339_ms("2026-11-28T23:59:59.999Z").unwrap()),
            (2026, 11, 28)
        );
        assert_eq!(
            utc_date(parse_rfc3339_ms("2026-11-29T00:30:00+01:00").unwrap()),
            (2026, 11, 28)
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// 0001-01-01 to 9999-12-31, what RFC 3339 can write.
        const FIRST_MS: i64 = -62_135_596_800_000;
        const LAST_MS: i64 = 253_402_300_799_999;

        proptest! {
            #[test]
            fn no_string_panics_a_date_parser(text in any::<String>()) {
                let _ = parse_rfc3339_ms(&text);
                let _ = parse_rfc2822_ms(&text);
            }

            #[test]
            fn date_like_strings_do_not_panic(
                text in "[A-Za-z]{0,4},? ?[0-9]{0,2} [A-Za-z€é]{0,9} [0-9]{0,4} [0-9:]{0,9} [-+A-Za-z0-9€é:]{0,6}( \\(.{0,6}\\))?",
                stamp in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9é€]{0,10})?[-+Zz0-9:é€]{0,7}",
            ) {
                let _ = parse_rfc2822_ms(&text);
                let _ = parse_rfc3339_ms(&stamp);
            }

            #[test]
            fn rfc3339_timestamps_round_trip(ms in FIRST_MS..=LAST_MS) {
                prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
                prop_assert_eq!(
                    parse_rfc3339_ms(&format_rfc3339_s(ms)),
                    Some(ms.div_euclid(1000) * 1000)
                );
                let (y, m, d) = utc_date(ms);
                prop_assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
            }

            #[test]
            fn rfc2822_dates_jiff_writes_parse_back(ms in 0i64..=LAST_MS, offset_h in -12i8..=14) {
                let stamp = Timestamp::from_millisecond(ms).unwrap();
                let zoned = stamp.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(offset_h)));
                let text = jiff::fmt::rfc2822::to_string(&zoned).unwrap();
                prop_assert_eq!(parse_rfc2822_ms(&text), Some(ms.div_euclid(1000) * 1000), "{}", text);
            }

            #[test]
            fn any_i64_formats_without_panic(ms in any::<i64>()) {
                let _ = format_rfc3339_ms(ms);
                let _ = format_rfc3339_s(ms);
                let _ = utc_date(ms);
            }
        }
    }
}
