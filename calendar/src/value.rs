//! Property values in iCalendar text form: DATE (`20261201`), DATE-TIME (`20261201T100000`,
//! with `Z` for UTC) and DURATION (`P1W`, `-PT15M`, `P1DT2H30M`). The xCal spellings
//! (`2026-12-01`, `2026-12-01T10:00:00Z`) are taken as well.

use jiff::{civil, tz::TimeZone};

use crate::model::{Duration, When};

/// A DATE or DATE-TIME value; `zone` is the resolved TZID, if the property had one (ignored
/// for UTC values).
pub(crate) fn when(text: &str, zone: Option<String>) -> Result<When, String> {
    let compact: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let bad = || format!("{text:?} is not a DATE or DATE-TIME");
    let (date_part, time_part) = match compact.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (compact.as_str(), None),
    };
    let date = date(date_part).ok_or_else(bad)?;
    let Some(time_part) = time_part else {
        return Ok(When::Date { date, zone });
    };
    let (clock, utc) = match time_part.strip_suffix(['Z', 'z']) {
        Some(clock) => (clock, true),
        None => (time_part, false),
    };
    // Fractions of seconds (xCal writers sometimes add them) are dropped.
    let clock = clock.split('.').next().unwrap_or(clock);
    let time = time(clock).ok_or_else(bad)?;
    let local = date.to_datetime(time);
    Ok(match (utc, zone) {
        (true, _) => When::Utc {
            time: TimeZone::UTC
                .to_timestamp(local)
                .map_err(|e| format!("{text:?}: {e}"))?,
        },
        (false, Some(zone)) => When::Zoned { time: local, zone },
        (false, None) => When::Floating { time: local },
    })
}

/// `YYYYMMDD`.
fn date(text: &str) -> Option<civil::Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i16 = text[0..4].parse().ok()?;
    let month: i8 = text[4..6].parse().ok()?;
    let day: i8 = text[6..8].parse().ok()?;
    civil::Date::new(year, month, day).ok()
}

/// `HHMMSS` (a leap second reads as the second before it).
fn time(text: &str) -> Option<civil::Time> {
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hour: i8 = text[0..2].parse().ok()?;
    let minute: i8 = text[2..4].parse().ok()?;
    let second: i8 = text[4..6].parse().ok()?;
    civil::Time::new(hour, minute, second.min(59), 0).ok()
}

/// A DURATION value (RFC 5545 3.3.6): `[+-]P` then weeks, or days and a `T` part of hours,
/// minutes, seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{text:?} is not a DURATION: {why}");
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let rest = rest.strip_prefix(['P', 'p']).ok_or_else(|| bad("no P"))?;
    let (mut days, mut seconds) = (0i64, 0i64);
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            '0'..='9' => number.push(c),
            'T' if number.is_empty() && !in_time => in_time = true,
            unit @ ('W' | 'D' | 'H' | 'M' | 'S') => {
                let n: i64 = number.parse().map_err(|_| bad("a unit without a number"))?;
                number.clear();
                any = true;
                match (unit, in_time) {
                    ('W', false) => days = days.saturating_add(n.saturating_mul(7)),
                    ('D', false) => days = days.saturating_add(n),
                    ('H', true) => seconds = seconds.saturating_add(n.saturating_mul(3600)),
                    ('M', true) => seconds = seconds.saturating_add(n.saturating_mul(60)),
                    ('S', true) => seconds = seconds.saturating_add(n),
                    _ => return Err(bad("a unit out of place")),
                }
            }
            _ => return Err(bad("an unexpected character")),
        }
    }
    if !number.is_empty() || !any {
        return Err(bad("incomplete"));
    }
    Ok(Duration {
        days: sign * days,
        seconds: sign * seconds,
    })
}

/// An instant written in RFC 3339, for tests.
#[cfg(test)]
pub(crate) fn utc(text: &str) -> jiff::Timestamp {
    text.parse().expect("a timestamp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_dates_and_times_read_alike() {
        let berlin = Some("Europe/Berlin".to_string());
        assert_eq!(
            when("20261201T100000", berlin.clone()),
            when("2026-12-01T10:00:00", berlin.clone())
        );
        assert!(matches!(
            when("2026-12-01T10:00:00", berlin.clone()),
            Ok(When::Zoned { .. })
        ));
        assert_eq!(
            when("20261201T090000Z", berlin).unwrap(),
            When::Utc {
                time: utc("2026-12-01T09:00:00Z")
            }
        );
        assert!(matches!(
            when("20261201", None),
            Ok(When::Date { zone: None, .. })
        ));
        assert!(matches!(
            when("20261201T100000", None),
            Ok(When::Floating { .. })
        ));
        for bad in [
            "",
            "2026120",
            "20261301",
            "20261201T25",
            "tomorrow",
            "20261201T1000",
        ] {
            assert!(when(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_have_nominal_days_and_exact_seconds() {
        assert_eq!(
            duration("PT1H30M").unwrap(),
            Duration {
                days: 0,
                seconds: 5400
            }
        );
        assert_eq!(
            duration("P1W").unwrap(),
            Duration {
                days: 7,
                seconds: 0
            }
        );
        assert_eq!(
            duration("-P1DT15M").unwrap(),
            Duration {
                days: -1,
                seconds: -900
            }
        );
        assert_eq!(
            duration("PT1H0M0S").unwrap(),
            Duration {
                days: 0,
                seconds: 3600
            }
        );
        for bad in ["", "P", "PT", "1H", "P1H", "PT1D", "P1", "PTX"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
