//! Property tests of the calendar parsers, which read what users put in their calendars:
//! arbitrary bytes as a Kolab MIME message, arbitrary text as iCalendar or xCal, and
//! calendar-shaped objects with arbitrary values (dates, zones, RRULE parts) read and expanded
//! into busy periods. None may panic; busy periods stay inside the range asked for.

use bonnie_calendar::{busy_periods, merge, object_xml, parse_ical, parse_message, parse_xcal};
use proptest::{collection::vec, prelude::*};

/// 2026-11-01T00:00:00Z and 60 days later: the range busy periods are asked for.
const FROM_MS: i64 = 1_793_491_200_000;
const TO_MS: i64 = FROM_MS + 60 * 86_400_000;

/// A date-time value as iCalendar writes them, or something close to one.
fn when() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "2026(1[0-2]|0[1-9])(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3])[0-5][0-9]00Z?",
        3 => "2026(1[0-2]|0[1-9])(0[1-9]|[12][0-9])",
        1 => "[0-9TZ+:é-]{0,17}",
    ]
}

/// One property of a VEVENT, name and value both drawn from what calendars hold.
fn property() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"]),
            prop::sample::select(vec![
                "",
                "",
                ";TZID=Europe/Berlin",
                ";TZID=/kolab.org/Europe/Berlin",
                ";TZID=America/New_York",
                ";VALUE=DATE",
                ";VALUE=PERIOD",
                ";TZID=Nowhere/Else",
                ";TZID=\"quoted;zone\"",
            ]),
            vec(when(), 1..3),
        )
            .prop_map(|(name, params, values)| format!("{name}{params}:{}", values.join(","))),
        (
            prop::sample::select(vec![
                "FREQ=DAILY",
                "FREQ=DAILY",
                "FREQ=WEEKLY",
                "FREQ=WEEKLY",
                "FREQ=MONTHLY",
                "FREQ=YEARLY",
                "FREQ=HOURLY",
                "FREQ=SECONDLY",
                "FREQ=SOMETIMES",
            ]),
            vec(
                prop_oneof![
                    3 => "COUNT=[1-9][0-9]{0,2}",
                    2 => "INTERVAL=[1-9][0-9]?",
                    2 => "UNTIL=2026(1[0-2])(0[1-9]|1[0-9]|2[0-8])(T[01][0-9]0000Z)?",
                    3 => "BYDAY=(-?[1-4]?(MO|TU|WE|TH|FR|SA|SU),){0,2}(MO|TU|WE|TH|FR|SA|SU)",
                    2 => "BYMONTHDAY=-?([1-9]|[12][0-9]|3[01])",
                    2 => "BYMONTH=([1-9]|1[0-2])",
                    1 => "BYSETPOS=-?[1-9]",
                    1 => "BYHOUR=([0-9]|1[0-9]|2[0-3])",
                    1 => "WKST=(MO|SU)",
                    1 => "[A-Z]{0,6}=[0-9a-z,]{0,6}",
                ],
                0..4,
            ),
        )
            .prop_map(|(freq, parts)| {
                let mut rule = vec![freq.to_string()];
                rule.extend(parts);
                format!("RRULE:{}", rule.join(";"))
            }),
        "DURATION:[-+]?P([0-9]{1,2}[WD])?T[0-9]{1,3}[HMS]",
        "(STATUS|TRANSP|UID|SUMMARY):[A-Za-z0-9 é€;,\\\\]{0,12}",
    ]
}

proptest! {
    #[test]
    fn no_bytes_panic_the_message_parser(bytes in vec(any::<u8>(), 0..600)) {
        let _ = parse_message(&bytes);
        let _ = object_xml(&bytes);
    }

    #[test]
    fn no_text_panics_the_ical_or_xcal_parser(text in any::<String>()) {
        let _ = parse_ical(&text);
        let _ = parse_xcal(&text);
        let _ = parse_ical(&format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n{text}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"));
    }

    #[test]
    fn xml_like_text_does_not_panic(
        text in "(<[a-z:]{0,8}( [a-z]{1,3}=\"[a-z&;]{0,4}\")?/?>|</[a-z:]{0,8}>|&[a-z#0-9]{0,5};|<!\\[CDATA\\[[a-z]{0,3}\\]\\]>|[a-z0-9 é]{0,5}){0,20}",
    ) {
        let _ = parse_xcal(&text);
        let _ = parse_message(text.as_bytes());
    }
}

proptest! {
    // Each case may expand a series to the instance limit: fewer cases than the default.
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// iCalendar objects with arbitrary values, read and expanded: an error or periods
    /// inside the range, never a panic.
    #[test]
    fn calendar_shaped_objects_expand_inside_the_range_or_fail(
        events in vec((
            "2026(11|12)(0[1-9]|[12][0-9])T([01][0-9])[0-5][0-9]00Z?",
            vec(property(), 0..7),
        ), 1..3),
        folded in any::<bool>(),
    ) {
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for (n, (start, properties)) in events.iter().enumerate() {
            text.push_str(&format!(
                "BEGIN:VEVENT\r\nUID:u{}\r\nDTSTART;TZID=Europe/Berlin:{start}\r\nDURATION:PT1H\r\n",
                n % 2
            ));
            for property in properties {
                if folded && property.len() > 10 {
                    let (head, tail) = property.split_at(property.char_indices().nth(6).map_or(0, |(i, _)| i));
                    text.push_str(&format!("{head}\r\n {tail}\r\n"));
                } else {
                    text.push_str(&format!("{property}\r\n"));
                }
            }
            text.push_str("END:VEVENT\r\n");
        }
        text.push_str("END:VCALENDAR\r\n");
        if let Ok(parsed) = parse_ical(&text)
            && let Ok(periods) = busy_periods(&parsed, &jiff::tz::TimeZone::UTC, FROM_MS, TO_MS)
        {
            for busy in merge(periods) {
                prop_assert!(FROM_MS <= busy.start_ms && busy.start_ms <= busy.end_ms && busy.end_ms <= TO_MS, "{text}");
            }
        }
    }
}
