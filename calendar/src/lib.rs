//! Calendar objects for free/busy. Kolab event objects (xCal, `application/calendar+xml`) and
//! iCalendar (`text/calendar`) are read into one [`Event`] model, their recurrences expanded
//! in the events' own time zones, and each user's busy periods answered for any range, now or
//! as the archive knew them at a past time ([`freebusy`]).
//!
//! Reading: [`parse_message`] (a Kolab MIME message or a bare calendar document),
//! [`parse_xcal`], [`parse_ical`]. Expanding: [`busy_periods`] for one object, [`merge`] for
//! many. The query over the archive and its cache of parsed objects: [`freebusy`],
//! [`answer`], [`remember`], [`to_json`].
#![forbid(unsafe_code)]

mod busy;
mod component;
mod error;
mod expand;
mod ical;
mod mime;
mod model;
mod query;
mod rrule;
mod value;
mod xcal;
mod zone;

pub use busy::{Busy, BusyKind, busy_periods, merge};
pub use error::CalendarError;
pub use ical::parse_ical;
/// The time zone type [`busy_periods`] and [`owner_zone`] take (jiff's).
pub use jiff::tz::TimeZone;
pub use mime::{Format, Part, calendar_part, object_xml};
pub use model::{Duration, End, Event, RDate, Status, Transparency, When};
pub use query::{
    Answer, CACHE, Remembered, Skipped, ZONES, answer, event_object_uid, events_of,
    forget_owner_zones, freebusy, is_remembered, owner_zone, remember, remember_event_object,
    set_owner_zone, to_json,
};
pub use rrule::{Frequency, Rule, WeekdayNum};
pub use xcal::{Element as XmlElement, parse_xcal, tree as xml_tree};
pub use zone::iana_name;

/// Reads the events of a calendar object: a Kolab MIME message (its calendar part), or a
/// bare xCal or iCalendar document.
pub fn parse_message(message: &[u8]) -> Result<Vec<Event>, CalendarError> {
    let part = calendar_part(message)?;
    match part.format {
        Format::XCal => parse_xcal(&part.text),
        Format::ICalendar => parse_ical(&part.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_gives_clear_errors_and_never_panics() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "no calendar part"),
            (b"\xff\xfe\x00garbage", "no calendar part"),
            (b"<?xml version=\"1.0\"?><icalendar><vcalendar><components><vevent>", "never closed"),
            (b"<icalendar>\xff</icalendar>", "not valid utf-8"),
            (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:yesterday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "DTSTART"),
            (
                b"Content-Type: application/calendar+xml\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n",
                "not valid base64",
            ),
        ];
        for (bytes, expected) in cases {
            let error = parse_message(bytes).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{:?}: {error}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Every prefix of a real object fails or succeeds, without a panic.
        let object = b"<?xml version=\"1.0\"?><icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><components><vevent><properties><uid><text>U</text></uid><dtstart><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T10:00:00</date-time></dtstart><rrule><recur><freq>WEEKLY</freq><count>3</count></recur></rrule></properties></vevent></components></vcalendar></icalendar>";
        for end in 0..object.len() {
            let _ = parse_message(&object[..end]);
        }
        let events = parse_message(object).unwrap();
        assert_eq!(events[0].rules[0].to_string(), "FREQ=WEEKLY;COUNT=3");
    }
}
