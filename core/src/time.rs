//! Timestamps as Cyrus writes them (RFC 3339, `2026-11-28T17:10:09.722Z`) to and from
//! milliseconds since the Unix epoch, in UTC, without a calendar library.

/// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction) into
/// milliseconds since the epoch, UTC. `None` when it is not one.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Parses an RFC 2822 date (`Sat, 28 Nov 2026 17:13:36 +0000`, the weekday optional, `GMT`
/// and the old zone names understood) into milliseconds since the epoch, UTC.
pub fn parse_rfc2822_ms(text: &str) -> Option<i64> {
    let text = text.split('(').next().unwrap_or(text).trim();
    let text = match text.split_once(',') {
        Some((_, rest)) => rest.trim(),
        None => text,
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() < 4 {
        return None;
    }
    let day: i64 = parts[0].parse().ok()?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| parts[1].to_ascii_lowercase().starts_with(m))? as i64
        + 1;
    let mut year: i64 = parts[2].parse().ok()?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let clock: Vec<i64> = parts[3]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (hour, minute, second) = (
        *clock.first()?,
        *clock.get(1)?,
        clock.get(2).copied().unwrap_or(0),
    );
    let zone = parts.get(4).copied().unwrap_or("+0000");
    let offset_minutes = match zone.to_ascii_uppercase().as_str() {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        "EST" => -300,
        "EDT" => -240,
        "CST" => -360,
        "CDT" => -300,
        "MST" => -420,
        "MDT" => -360,
        "PST" => -480,
        "PDT" => -420,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let h: i64 = z[1..3].parse().ok()?;
            let m: i64 = z[3..5].parse().ok()?;
            (h * 60 + m) * if z.starts_with('-') { -1 } else { 1 }
        }
        _ => 0,
    };
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1000)
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (date, time_ms) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(date);
    let (h, m, s, milli) = (
        time_ms / 3_600_000,
        time_ms / 60_000 % 60,
        time_ms / 1000 % 60,
        time_ms % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
pub fn format_rfc3339_s(ms: i64) -> String {
    let full = format_rfc3339_ms(ms);
    format!("{}Z", &full[..19])
}

/// The UTC date of a timestamp as `(year, month, day)`.
pub fn utc_date(ms: i64) -> (i64, i64, i64) {
    civil_from_days(ms.div_euclid(86_400_000))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.

/// Days since 1970-01-01 of the date `y`-`m`-`d` (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (`y`, `m`, `d`) `z` days after 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
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
}
