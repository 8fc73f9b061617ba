//! Time zones of calendar objects. A TZID is read as an IANA name, after any vendor prefix
//! (Kolab writes `/kolab.org/Europe/Berlin`, Mozilla `/mozilla.org/20050126_1/Europe/Berlin`),
//! and then placed with the bundled tz database, whose history covers past years. A TZID that
//! is no IANA name is read from the object's VTIMEZONE with every one of its observances
//! (each STANDARD and DAYLIGHT with its DTSTART, RRULE and RDATEs): their transitions become a
//! TZif zone, so a time of a past year gets that year's offset, not today's rule.

use std::{cell::RefCell, collections::HashMap};

use jiff::{
    Timestamp, civil,
    tz::{self, TimeZone},
};

use crate::{component::Component, error::CalendarError, expand, model::When, rrule::Rule, value};

/// The marker of a zone kept as a POSIX TZ string (objects cached by earlier versions).
const POSIX: &str = "posix:";
/// The marker of a zone kept as its VTIMEZONE's transitions ([`Defined`]'s text form).
const DEFINED: &str = "vtimezone:";
/// Rules without an end, and no POSIX form for the years after, are expanded this far.
const HORIZON_YEAR: i16 = 2100;
/// At most this many zones built from VTIMEZONEs are kept per thread.
const BUILT_ZONES: usize = 256;

thread_local! {
    /// Zones built from VTIMEZONE transitions, by their text form: an expansion places
    /// every instance, and building the zone again each time would cost more than placing.
    static BUILT: RefCell<HashMap<String, TimeZone>> = RefCell::new(HashMap::new());
}

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
    let unknown = || CalendarError::UnknownZone(zone.to_string());
    if let Some(text) = zone.strip_prefix(DEFINED) {
        if let Some(built) = BUILT.with(|b| b.borrow().get(text).cloned()) {
            return Ok(built);
        }
        let built = Defined::from_text(text)
            .and_then(|d| TimeZone::tzif("VTIMEZONE", &d.tzif()).ok())
            .ok_or_else(unknown)?;
        BUILT.with(|b| {
            let mut b = b.borrow_mut();
            if b.len() >= BUILT_ZONES {
                b.clear();
            }
            b.insert(text.to_string(), built.clone());
        });
        return Ok(built);
    }
    let found = match zone.strip_prefix(POSIX) {
        Some(posix) => TimeZone::posix(posix),
        None => jiff::tz::db().get(zone),
    };
    found.map_err(|_| unknown())
}

/// The zones an object defines in its VTIMEZONEs, by TZID, in [`Defined`]'s text form.
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
            .filter_map(|c| Some((c.value("TZID")?.to_string(), Defined::of(c)?.to_text())))
            .collect();
        Self { defined }
    }

    /// The zone name to keep for a TZID: its IANA name, else its VTIMEZONE's transitions.
    pub fn name(&self, tzid: &str) -> Result<String, CalendarError> {
        if let Some(name) = iana_name(tzid) {
            return Ok(name);
        }
        match self.defined.get(tzid) {
            Some(text) => Ok(format!("{DEFINED}{text}")),
            None => Err(CalendarError::UnknownZone(tzid.to_string())),
        }
    }
}

/// One offset a zone observes: seconds east of UTC, and whether it is daylight time.
type Observed = (i32, bool);

/// A zone as its VTIMEZONE defines it: the offset before the first transition, every
/// transition (Unix seconds, the offset from then on), and a POSIX TZ string for the time
/// after the last one when the latest rules recur for ever.
#[derive(Debug, Clone, PartialEq)]
struct Defined {
    initial: Observed,
    transitions: Vec<(i64, Observed)>,
    footer: Option<String>,
}

impl Defined {
    /// Every observance's transitions. None when the VTIMEZONE has no observance bonnie can
    /// read or one of them is malformed (the TZID is then unknown, and the object unreadable).
    fn of(vtimezone: &Component) -> Option<Self> {
        let footer = posix_of(vtimezone);
        // With a POSIX form for the future, unending rules are expanded only past their start.
        let horizon = match footer {
            Some(_) => {
                let latest = vtimezone
                    .components
                    .iter()
                    .filter_map(|c| onset(c.value("DTSTART")?, 0))
                    .map(|start| start.year())
                    .max()?;
                latest.saturating_add(2).min(HORIZON_YEAR)
            }
            None => HORIZON_YEAR,
        };
        let limit = civil::date(horizon, 12, 31).to_datetime(civil::Time::MAX);
        let mut transitions: Vec<(i64, i32, Observed)> = Vec::new();
        for observance in &vtimezone.components {
            let dst = match observance.name.as_str() {
                "STANDARD" => false,
                "DAYLIGHT" => true,
                _ => continue,
            };
            let from = offset_seconds(observance.value("TZOFFSETFROM")?)?;
            let to = offset_seconds(observance.value("TZOFFSETTO")?)?;
            let start = onset(observance.value("DTSTART")?, from)?;
            let mut onsets = vec![start];
            for property in observance.all("RRULE") {
                let rule: Rule = property.value.trim().parse().ok()?;
                let until = match &rule.until {
                    // Onsets are on the wall clock of the offset in force before them.
                    Some(When::Utc { time }) => Some(on_clock(*time, from)?),
                    Some(When::Date { date, .. }) => Some(date.to_datetime(civil::Time::MAX)),
                    Some(When::Floating { time } | When::Zoned { time, .. }) => Some(*time),
                    None => None,
                };
                let found =
                    expand::occurrences(&rule, start, false, until, start.date(), limit).ok()?;
                onsets.extend(found);
            }
            for property in observance.all("RDATE") {
                for text in property.value.split(',').filter(|v| !v.trim().is_empty()) {
                    onsets.push(onset(text.split('/').next()?, from)?);
                }
            }
            for local in onsets {
                let at = local.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
                transitions.push((at - i64::from(from), from, (to, dst)));
            }
        }
        transitions.sort_by_key(|&(at, _, _)| at);
        transitions.dedup_by_key(|&mut (at, _, _)| at);
        let &(_, before, _) = transitions.first()?;
        Some(Self {
            initial: (before, false),
            transitions: transitions
                .into_iter()
                .map(|(at, _, observed)| (at, observed))
                .collect(),
            footer,
        })
    }

    /// `<offset>[d]` then ` <unix seconds>=<offset>[d]` per transition, then `|<POSIX TZ>`.
    fn to_text(&self) -> String {
        let observed = |(offset, dst): Observed| format!("{offset}{}", if dst { "d" } else { "" });
        let mut text = observed(self.initial);
        for &(at, o) in &self.transitions {
            text.push_str(&format!(" {at}={}", observed(o)));
        }
        if let Some(footer) = &self.footer {
            text.push('|');
            text.push_str(footer);
        }
        text
    }

    /// Reads [`Defined::to_text`]'s form back.
    fn from_text(text: &str) -> Option<Self> {
        let (transitions, footer) = match text.split_once('|') {
            Some((t, f)) => (t, Some(f.to_string())),
            None => (text, None),
        };
        let observed = |t: &str| -> Option<Observed> {
            match t.strip_suffix('d') {
                Some(offset) => Some((offset.parse().ok()?, true)),
                None => Some((t.parse().ok()?, false)),
            }
        };
        let mut parts = transitions.split(' ');
        let initial = observed(parts.next()?)?;
        let transitions = parts
            .map(|p| {
                let (at, o) = p.split_once('=')?;
                Some((at.parse().ok()?, observed(o)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            initial,
            transitions,
            footer,
        })
    }

    /// The zone as TZif (RFC 8536, version 2): the transitions, then the POSIX footer.
    fn tzif(&self) -> Vec<u8> {
        let mut types = vec![self.initial];
        let mut indexes = Vec::with_capacity(self.transitions.len());
        for (_, observed) in &self.transitions {
            let index = match types.iter().position(|t| t == observed) {
                Some(i) => i,
                None => {
                    types.push(*observed);
                    types.len() - 1
                }
            };
            // A VTIMEZONE has a handful of offsets; more than TZif can name is not a zone.
            indexes.push(u8::try_from(index).unwrap_or(u8::MAX));
        }
        // The abbreviations the POSIX footer uses: readers check that they match.
        const DESIGNATION: &[u8] = b"STD\0DST\0";
        let header = |out: &mut Vec<u8>, times: usize, types: usize| {
            out.extend_from_slice(b"TZif2");
            out.extend_from_slice(&[0; 15]);
            for count in [0, 0, 0, times, types, DESIGNATION.len()] {
                out.extend_from_slice(&(count as u32).to_be_bytes());
            }
        };
        let ttinfo = |out: &mut Vec<u8>, (offset, dst): Observed| {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&[u8::from(dst), if dst { 4 } else { 0 }]);
        };
        let mut out = Vec::new();
        // The version 1 block, which version 2 readers skip: one type, no transitions.
        header(&mut out, 0, 1);
        ttinfo(&mut out, self.initial);
        out.extend_from_slice(DESIGNATION);
        header(&mut out, self.transitions.len(), types.len());
        for (at, _) in &self.transitions {
            out.extend_from_slice(&at.to_be_bytes());
        }
        out.extend_from_slice(&indexes);
        for t in types {
            ttinfo(&mut out, t);
        }
        out.extend_from_slice(DESIGNATION);
        out.push(b'\n');
        out.extend_from_slice(self.footer.as_deref().unwrap_or_default().as_bytes());
        out.push(b'\n');
        out
    }
}

/// An observance's DTSTART or RDATE as wall-clock time of the offset before it (`from`).
fn onset(text: &str, from: i32) -> Option<civil::DateTime> {
    match value::when(text, None).ok()? {
        When::Floating { time } | When::Zoned { time, .. } => Some(time),
        When::Date { date, .. } => Some(date.to_datetime(civil::Time::midnight())),
        When::Utc { time } => on_clock(time, from),
    }
}

/// An instant on the wall clock of a fixed offset.
fn on_clock(time: Timestamp, offset: i32) -> Option<civil::DateTime> {
    let offset = tz::Offset::from_seconds(offset).ok()?;
    Some(offset.to_datetime(time))
}

/// The POSIX TZ string for the time after a VTIMEZONE's last transition, when its latest
/// STANDARD and DAYLIGHT observances recur for ever, yearly on an nth (or last) weekday of a
/// month; or its latest STANDARD alone when it has no DAYLIGHT.
fn posix_of(vtimezone: &Component) -> Option<String> {
    let latest = |name: &str| {
        vtimezone
            .components
            .iter()
            .filter(|c| c.name == name)
            .max_by_key(|c| onset(c.value("DTSTART").unwrap_or_default(), 0))
    };
    let unending = |c: &Component| {
        c.value("RRULE")
            .and_then(|r| r.parse::<Rule>().ok())
            .is_some_and(|r| r.until.is_none() && r.count.is_none())
    };
    let standard = latest("STANDARD")?;
    let std_offset = offset_seconds(standard.value("TZOFFSETTO")?)?;
    let Some(daylight) = latest("DAYLIGHT") else {
        return Some(format!("STD{}", posix_offset(std_offset)));
    };
    if !unending(standard) || !unending(daylight) {
        return None;
    }
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
