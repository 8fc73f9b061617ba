//! Time zones of calendar objects. A TZID is read as an IANA name, after any vendor prefix
//! (Kolab writes `/kolab.org/Europe/Berlin`, Mozilla `/mozilla.org/20050126_1/Europe/Berlin`);
//! a TZID that is no IANA name is read from the object's VTIMEZONE when its rules are the
//! usual yearly ones (then kept as a POSIX TZ string).

use std::collections::HashMap;

use jiff::tz::TimeZone;

use crate::{component::Component, error::CalendarError, rrule::Rule};

/// The marker of a zone kept as a POSIX TZ string instead of an IANA name.
const POSIX: &str = "posix:";

/// The IANA name a TZID stands for: the TZID itself, or what follows one of its `/`, the
/// longest such tail that is a zone of the bundled database; the canonical spelling.
pub fn iana_name(tzid: &str) -> Option<String> {
    let mut rest = tzid.trim().trim_matches('"');
    loop {
        let candidate = rest.trim_start_matches('/');
        if !candidate.is_empty()
            && let Ok(zone) = jiff::tz::db().get(candidate)
        {
            return Some(zone.iana_name().unwrap_or(candidate).to_string());
        }
        rest = candidate.split_once('/')?.1;
    }
}

/// The time zone a stored zone name stands for.
pub(crate) fn resolve(zone: &str) -> Result<TimeZone, CalendarError> {
    let found = match zone.strip_prefix(POSIX) {
        Some(posix) => TimeZone::posix(posix),
        None => jiff::tz::db().get(zone),
    };
    found.map_err(|_| CalendarError::UnknownZone(zone.to_string()))
}

/// The zones an object defines in its VTIMEZONEs, by TZID, as POSIX TZ strings.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    defined: HashMap<String, String>,
}

impl Zones {
    /// The VTIMEZONEs among `components` that can be read.
    pub fn of(components: &[&Component]) -> Self {
        let defined = components
            .iter()
            .filter(|c| c.name == "VTIMEZONE")
            .filter_map(|c| Some((c.value("TZID")?.to_string(), posix_of(c)?)))
            .collect();
        Self { defined }
    }

    /// The zone name to keep for a TZID: its IANA name, else its VTIMEZONE's rules.
    pub fn name(&self, tzid: &str) -> Result<String, CalendarError> {
        if let Some(name) = iana_name(tzid) {
            return Ok(name);
        }
        match self.defined.get(tzid) {
            Some(posix) => Ok(format!("{POSIX}{posix}")),
            None => Err(CalendarError::UnknownZone(tzid.to_string())),
        }
    }
}

/// A VTIMEZONE as a POSIX TZ string: its latest STANDARD observance, and its latest DAYLIGHT
/// observance when that recurs yearly on an nth (or last) weekday of a month.
fn posix_of(vtimezone: &Component) -> Option<String> {
    let latest = |name: &str| {
        vtimezone
            .components
            .iter()
            .filter(|c| c.name == name)
            .max_by_key(|c| c.value("DTSTART").unwrap_or_default().to_string())
    };
    let standard = latest("STANDARD")?;
    let std_offset = offset_seconds(standard.value("TZOFFSETTO")?)?;
    let Some(daylight) = latest("DAYLIGHT") else {
        return Some(format!("STD{}", posix_offset(std_offset)));
    };
    let dst_offset = offset_seconds(daylight.value("TZOFFSETTO")?)?;
    let to_dst = transition(daylight)?;
    let to_std = transition(standard)?;
    Some(format!(
        "STD{}DST{},{to_dst},{to_std}",
        posix_offset(std_offset),
        posix_offset(dst_offset)
    ))
}

/// `Mm.w.d/hh:mm:ss` from an observance's yearly RRULE and its DTSTART's local time.
fn transition(observance: &Component) -> Option<String> {
    let rule: Rule = observance.value("RRULE")?.parse().ok()?;
    let month = *rule.by_month.first()?;
    let day = rule.by_day.first()?;
    let week = match day.nth {
        Some(-1) => 5,
        Some(n @ 1..=4) => n,
        _ => return None,
    };
    let start = observance.value("DTSTART")?;
    let clock = start.split_once('T').map(|(_, t)| t).unwrap_or("020000");
    let digits: Vec<u32> = clock
        .chars()
        .filter(char::is_ascii_digit)
        .filter_map(|c| c.to_digit(10))
        .collect();
    if digits.len() < 6 {
        return None;
    }
    let (h, m, s) = (
        digits[0] * 10 + digits[1],
        digits[2] * 10 + digits[3],
        digits[4] * 10 + digits[5],
    );
    let weekday = day.weekday.to_sunday_zero_offset();
    Some(format!("M{month}.{week}.{weekday}/{h}:{m:02}:{s:02}"))
}

/// `+0100`, `-0530`, `+013000` in seconds east of UTC.
fn offset_seconds(text: &str) -> Option<i32> {
    let text = text.trim();
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[0..2].parse().ok()?;
    let m: i32 = digits[2..4].parse().ok()?;
    let s: i32 = digits.get(4..6).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

/// A POSIX offset: hours west of UTC (the opposite sign of ISO 8601).
fn posix_offset(east_seconds: i32) -> String {
    let west = -east_seconds;
    let sign = if west < 0 { "-" } else { "" };
    let west = west.abs();
    format!(
        "{sign}{}:{:02}:{:02}",
        west / 3600,
        west / 60 % 60,
        west % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_prefixes_are_stripped_down_to_an_iana_name() {
        assert_eq!(
            iana_name("/kolab.org/Europe/Berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            iana_name("/mozilla.org/20050126_1/America/New_York").as_deref(),
            Some("America/New_York")
        );
        assert_eq!(iana_name("Europe/Zurich").as_deref(), Some("Europe/Zurich"));
        assert_eq!(iana_name("UTC").as_deref(), Some("UTC"));
        assert_eq!(iana_name("W. Europe Standard Time"), None);
        assert_eq!(iana_name("/kolab.org/Nowhere/Atlantis"), None);
        assert_eq!(iana_name(""), None);
    }

    #[test]
    fn offsets_become_posix() {
        assert_eq!(offset_seconds("+0100"), Some(3600));
        assert_eq!(offset_seconds("-0530"), Some(-19_800));
        assert_eq!(posix_offset(3600), "-1:00:00");
        assert_eq!(posix_offset(-19_800), "5:30:00");
    }
}
