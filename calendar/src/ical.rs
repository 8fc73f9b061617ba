//! iCalendar text (RFC 5545): lines unfolded, content lines split into name, parameters
//! (quoted values kept whole) and value, BEGIN/END nesting checked.

use crate::{
    component::{self, Component, Property},
    error::CalendarError,
    model::Event,
};

/// Components nest at most this deep (VCALENDAR, VEVENT, VALARM... need 3).
const MAX_DEPTH: usize = 16;

/// Reads the events of an iCalendar document.
pub fn parse_ical(text: &str) -> Result<Vec<Event>, CalendarError> {
    component::events(&components(text)?)
}

/// The top-level components of an iCalendar document.
pub(crate) fn components(text: &str) -> Result<Vec<Component>, CalendarError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut top: Vec<Component> = Vec::new();
    let mut open: Vec<Component> = Vec::new();
    for (line_number, line) in unfold(text) {
        let error = |reason: String| CalendarError::ICal {
            line: line_number,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        let property = content_line(&line).map_err(error)?;
        match property.name.as_str() {
            "BEGIN" => {
                if open.len() >= MAX_DEPTH {
                    return Err(error("components nest too deep".to_string()));
                }
                if property.value.trim().is_empty() {
                    return Err(error("BEGIN without a name".to_string()));
                }
                open.push(Component {
                    name: property.value.trim().to_ascii_uppercase(),
                    ..Component::default()
                });
            }
            "END" => {
                let name = property.value.trim().to_ascii_uppercase();
                let Some(done) = open.pop() else {
                    return Err(error(format!("END:{name} without BEGIN")));
                };
                if done.name != name {
                    return Err(error(format!("END:{name} closes BEGIN:{}", done.name)));
                }
                match open.last_mut() {
                    Some(parent) => parent.components.push(done),
                    None => top.push(done),
                }
            }
            _ => match open.last_mut() {
                Some(current) => current.properties.push(property),
                None => {
                    return Err(error(format!(
                        "{} outside BEGIN:VCALENDAR (not an iCalendar object?)",
                        property.name
                    )));
                }
            },
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(CalendarError::ICal {
            line: text.lines().count(),
            reason: format!("BEGIN:{} is never closed", unclosed.name),
        });
    }
    if top.is_empty() {
        return Err(CalendarError::ICal {
            line: 1,
            reason: "no BEGIN:VCALENDAR".to_string(),
        });
    }
    Ok(top)
}

/// Logical lines with the number of their first physical line: a line starting with a space
/// or tab continues the one before (RFC 5545 3.1).
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ => lines.push((i + 1, raw.to_string())),
        }
    }
    lines
}

/// `NAME;PARAM=value;PARAM="quoted:value",other:VALUE`.
fn content_line(line: &str) -> Result<Property, String> {
    let name_end = line
        .find([';', ':'])
        .ok_or_else(|| format!("{:?} is not a content line (no ':')", clip(line)))?;
    let name = &line[..name_end];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{:?} is not a property name", clip(name)));
    }
    let mut property = Property {
        name: name.to_ascii_uppercase(),
        ..Property::default()
    };
    let mut rest = &line[name_end..];
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after
            .find('=')
            .ok_or_else(|| format!("parameter without '=' in {}", property.name))?;
        let param = after[..eq].trim().to_ascii_uppercase();
        let mut values = &after[eq + 1..];
        let mut value = String::new();
        loop {
            if let Some(quoted) = values.strip_prefix('"') {
                let close = quoted
                    .find('"')
                    .ok_or_else(|| format!("unclosed quote in {}", property.name))?;
                value.push_str(&quoted[..close]);
                values = &quoted[close + 1..];
            } else {
                let end = values.find([',', ';', ':']).unwrap_or(values.len());
                value.push_str(&values[..end]);
                values = &values[end..];
            }
            match values.strip_prefix(',') {
                Some(more) => {
                    value.push(',');
                    values = more;
                }
                None => break,
            }
        }
        property.params.push((param, value));
        rest = values;
    }
    property.value = rest
        .strip_prefix(':')
        .ok_or_else(|| format!("{} has no value", property.name))?
        .to_string();
    Ok(property)
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{End, RDate, Status, Transparency, When},
        value::utc,
    };
    use jiff::civil::{date, datetime};

    #[test]
    fn content_lines_split_into_name_params_and_value() {
        let p =
            content_line("DTSTART;TZID=\"Europe/Berlin\";X-A=a,\"b;c:d\":20261201T100000").unwrap();
        assert_eq!(p.name, "DTSTART");
        assert_eq!(p.param("tzid"), Some("Europe/Berlin"));
        assert_eq!(p.param("X-A"), Some("a,b;c:d"));
        assert_eq!(p.value, "20261201T100000");
        let p = content_line("description:a: b; c").unwrap();
        assert_eq!(
            (p.name.as_str(), p.value.as_str()),
            ("DESCRIPTION", "a: b; c")
        );
        for bad in [
            "no colon here",
            ":value",
            "NA ME:x",
            "X;Y:z",
            "X;Y=\"open:z",
        ] {
            assert!(content_line(bad).is_err(), "{bad}");
        }
    }

    const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:series-1\r\nDTSTART;TZID=Europe/Berlin:20261201T100000\r\n\
DTEND;TZID=Europe/Berlin:20261201T110000\r\nRRULE:FREQ=WEEKLY;COUNT=6;BY\r\n DAY=TU\r\n\
EXDATE;TZID=Europe/Berlin:20261222T100000,20261229T100000\r\n\
RDATE;VALUE=PERIOD:20261224T080000Z/PT2H\r\nSTATUS:TENTATIVE\r\n\
BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:series-1\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261215T100000\r\n\
DTSTART;TZID=Europe/Berlin:20261215T140000\r\nDURATION:PT90M\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn an_icalendar_series_with_exdates_rdates_and_an_exception_reads_whole() {
        let events = parse_ical(SERIES).unwrap();
        assert_eq!(events.len(), 2);
        let master = &events[0];
        let berlin = |d| When::Zoned {
            time: d,
            zone: "Europe/Berlin".to_string(),
        };
        assert_eq!(master.uid.as_deref(), Some("series-1"));
        assert_eq!(master.start, berlin(datetime(2026, 12, 1, 10, 0, 0, 0)));
        assert_eq!(
            master.end,
            Some(End::At {
                when: berlin(datetime(2026, 12, 1, 11, 0, 0, 0))
            })
        );
        assert_eq!(
            master.rules[0].to_string(),
            "FREQ=WEEKLY;COUNT=6;BYDAY=TU",
            "folded line joined"
        );
        assert_eq!(
            master.exdates,
            [
                berlin(datetime(2026, 12, 22, 10, 0, 0, 0)),
                berlin(datetime(2026, 12, 29, 10, 0, 0, 0))
            ]
        );
        assert!(matches!(
            &master.rdates[0],
            RDate::Period { start: When::Utc { time }, end: End::Lasting { duration } }
                if *time == utc("2026-12-24T08:00:00Z") && duration.seconds == 7200
        ));
        assert_eq!(master.status, Status::Tentative);
        let exception = &events[1];
        assert_eq!(
            exception.recurrence_id,
            Some(berlin(datetime(2026, 12, 15, 10, 0, 0, 0)))
        );
        assert_eq!(exception.transparency, Transparency::Transparent);
        assert!(exception.busy_kind().is_none());
    }

    #[test]
    fn all_day_events_and_lf_line_ends() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART;VALUE=DATE:20261224\n\
DTEND;VALUE=DATE:20261227\nEND:VEVENT\nEND:VCALENDAR\n";
        let events = parse_ical(text).unwrap();
        assert_eq!(
            events[0].start,
            When::Date {
                date: date(2026, 12, 24),
                zone: None
            }
        );
    }

    #[test]
    fn malformed_icalendar_is_refused_with_its_line() {
        let cases = [
            ("", "no BEGIN:VCALENDAR"),
            ("hello world\n", "not a content line"),
            ("SUMMARY:x\n", "outside BEGIN:VCALENDAR"),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\n",
                "closes BEGIN:VEVENT",
            ),
            ("BEGIN:VCALENDAR\nBEGIN:VEVENT\n", "never closed"),
            ("END:VEVENT\n", "without BEGIN"),
        ];
        for (text, expected) in cases {
            let error = parse_ical(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let no_start = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nEND:VCALENDAR\n";
        assert_eq!(
            parse_ical(no_start).unwrap_err().to_string(),
            "property DTSTART: missing"
        );
        let no_event = "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n";
        assert!(matches!(parse_ical(no_event), Err(CalendarError::NoEvent)));
        let bad_zone = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=Mars/Olympus:20261201T100000\nEND:VEVENT\nEND:VCALENDAR\n";
        assert!(matches!(
            parse_ical(bad_zone),
            Err(CalendarError::UnknownZone(z)) if z == "Mars/Olympus"
        ));
    }

    #[test]
    fn a_zone_known_only_from_its_vtimezone_is_read_from_its_rules() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n\
BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:o\r\nDTSTART;TZID=W. Europe Standard Time:20260701T100000\r\n\
DTEND;TZID=W. Europe Standard Time:20260701T110000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let events = parse_ical(text).unwrap();
        let busy = crate::busy_periods(
            &events,
            &jiff::tz::TimeZone::UTC,
            utc("2026-07-01T00:00:00Z").as_millisecond(),
            utc("2026-07-02T00:00:00Z").as_millisecond(),
        )
        .unwrap();
        assert_eq!(
            busy[0].start_ms,
            utc("2026-07-01T08:00:00Z").as_millisecond()
        );
        assert_eq!(busy[0].end_ms, utc("2026-07-01T09:00:00Z").as_millisecond());
    }
}
