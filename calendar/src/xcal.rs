//! xCal (RFC 6321), as Kolab v3 stores events: `<icalendar><vcalendar><components><vevent>
//! <properties>…`, exceptions as further `<vevent>`s with `<recurrence-id>`. The document is
//! read into a small element tree, then into the components iCalendar text gives, values in
//! iCalendar text form (`<recur>` becomes `FREQ=…;BYDAY=…`, a `<period>` `start/end`).

use quick_xml::{Reader, events::Event as Xml};

use crate::{
    component::{self, Component, Property},
    error::CalendarError,
    model::Event,
};

/// Elements nest at most this deep.
const MAX_DEPTH: usize = 64;

/// Reads the events of an xCal document.
pub fn parse_xcal(text: &str) -> Result<Vec<Event>, CalendarError> {
    let root = tree(text)?;
    if root.name != "icalendar" {
        return Err(CalendarError::NotXCal(format!(
            "the root element is <{}>, not <icalendar>",
            root.name
        )));
    }
    let calendars: Vec<Component> = root
        .children
        .iter()
        .filter(|c| c.name == "vcalendar")
        .map(component)
        .collect();
    if calendars.is_empty() {
        return Err(CalendarError::NotXCal("no <vcalendar>".to_string()));
    }
    component::events(&calendars)
}

/// An XML element: local name (namespace prefix dropped, lowercase), children, text.
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// The local name.
    pub name: String,
    /// The child elements, in document order.
    pub children: Vec<Element>,
    /// The element's own text (entities resolved).
    pub text: String,
}

impl Element {
    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element's text, or (for `<until><date-time>…</date-time></until>`) its first
    /// child's.
    fn value(&self) -> &str {
        let own = self.text.trim();
        if own.is_empty() {
            self.children.first().map_or("", |c| c.text.trim())
        } else {
            own
        }
    }
}

fn local_name(qualified: &[u8]) -> String {
    let local = match qualified.iter().rposition(|&b| b == b':') {
        Some(i) => &qualified[i + 1..],
        None => qualified,
    };
    String::from_utf8_lossy(local).to_ascii_lowercase()
}

/// The document's root element: any well-formed XML document (Kolab's xCal, xCard and note
/// formats alike) as a small element tree, nesting at most 64 deep.
pub fn tree(text: &str) -> Result<Element, CalendarError> {
    let mut reader = Reader::from_str(text);
    let xml_error = |reader: &Reader<&[u8]>, source| CalendarError::Xml {
        position: reader.buffer_position(),
        source,
    };
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        match event {
            Xml::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(CalendarError::NotXCal("elements nest too deep".to_string()));
                }
                open.push(Element {
                    name: local_name(start.name().as_ref()),
                    ..Element::default()
                });
            }
            Xml::Empty(empty) => {
                let element = Element {
                    name: local_name(empty.name().as_ref()),
                    ..Element::default()
                };
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = root.or(Some(element)),
                }
            }
            Xml::End(_) => {
                let done = open.pop().ok_or_else(|| {
                    CalendarError::NotXCal("an end tag without a start tag".to_string())
                })?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None if root.is_none() => root = Some(done),
                    None => {
                        return Err(CalendarError::NotXCal(
                            "more than one root element".to_string(),
                        ));
                    }
                }
            }
            Xml::Text(text) => {
                let decoded = text.decode().map_err(|e| xml_error(&reader, e.into()))?;
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&decoded);
                }
            }
            Xml::CData(data) => {
                let decoded = data.decode().map_err(|e| xml_error(&reader, e.into()))?;
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&decoded);
                }
            }
            Xml::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| xml_error(&reader, e))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|e| xml_error(&reader, e.into()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                CalendarError::NotXCal(format!("unknown entity &{name};"))
                            })?
                            .to_string()
                    }
                };
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Xml::Eof => break,
            Xml::Comment(_) | Xml::Decl(_) | Xml::PI(_) | Xml::DocType(_) => {}
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(CalendarError::NotXCal(format!(
            "<{}> is never closed",
            unclosed.name
        )));
    }
    root.ok_or_else(|| CalendarError::NotXCal("no root element".to_string()))
}

/// A component element: its `<properties>` and `<components>`.
fn component(element: &Element) -> Component {
    Component {
        name: element.name.to_ascii_uppercase(),
        properties: element
            .child("properties")
            .map(|p| p.children.iter().map(property).collect())
            .unwrap_or_default(),
        components: element
            .child("components")
            .map(|c| c.children.iter().map(component).collect())
            .unwrap_or_default(),
    }
}

/// A property element: `<parameters>`, then its value elements.
fn property(element: &Element) -> Property {
    let params = element
        .child("parameters")
        .map(|ps| {
            ps.children
                .iter()
                .map(|p| {
                    let values: Vec<&str> = if p.children.is_empty() {
                        vec![p.text.trim()]
                    } else {
                        p.children.iter().map(|v| v.text.trim()).collect()
                    };
                    (p.name.to_ascii_uppercase(), values.join(","))
                })
                .collect()
        })
        .unwrap_or_default();
    let values: Vec<String> = element
        .children
        .iter()
        .filter(|c| c.name != "parameters")
        .map(|v| match v.name.as_str() {
            "recur" => recur(v),
            "period" => period(v),
            _ => v.value().to_string(),
        })
        .collect();
    Property {
        name: element.name.to_ascii_uppercase(),
        params,
        value: values.join(","),
    }
}

/// `<recur><freq>WEEKLY</freq><byday>MO</byday><byday>TU</byday>…` as
/// `FREQ=WEEKLY;BYDAY=MO,TU`.
fn recur(element: &Element) -> String {
    let mut parts: Vec<(String, Vec<&str>)> = Vec::new();
    for part in &element.children {
        let key = part.name.to_ascii_uppercase();
        match parts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(part.value()),
            None => parts.push((key, vec![part.value()])),
        }
    }
    parts
        .iter()
        .map(|(k, v)| format!("{k}={}", v.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

/// `<period><start>…</start><end>…</end></period>` (or `<duration>`) as `start/end`.
fn period(element: &Element) -> String {
    let start = element.child("start").map_or("", Element::value);
    let end = element
        .child("end")
        .or_else(|| element.child("duration"))
        .map_or("", Element::value);
    format!("{start}/{end}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{End, Status, When};
    use jiff::civil::{date, datetime};

    fn kolab(vevents: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?>\n\
<icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><properties>\
<prodid><text>Roundcube-libcalendaring-1.3 Kolab</text></prodid><version><text>2.0</text></version>\
<x-kolab-version><text>3.1.0</text></x-kolab-version></properties><components>{vevents}</components>\
</vcalendar></icalendar>"
        )
    }

    const BERLIN: &str =
        "<parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters>";

    #[test]
    fn a_kolab_series_with_an_exception_and_exdates_reads_whole() {
        let xml = kolab(&format!(
            "<vevent><properties><uid><text>E1</text></uid>\
<dtstart>{BERLIN}<date-time>2026-12-01T10:00:00</date-time></dtstart>\
<dtend>{BERLIN}<date-time>2026-12-01T11:00:00</date-time></dtend>\
<rrule><recur><freq>WEEKLY</freq><until><date-time>2027-01-31T23:00:00Z</date-time></until>\
<byday>TU</byday><byday>TH</byday></recur></rrule>\
<exdate>{BERLIN}<date-time>2026-12-22T10:00:00</date-time><date-time>2026-12-29T10:00:00</date-time></exdate>\
<summary><text>Jour fixe &amp; more &#x263A;</text></summary><status><text>CONFIRMED</text></status>\
</properties><components><valarm><properties><action><text>DISPLAY</text></action></properties></valarm></components></vevent>\
<vevent><properties><uid><text>E1</text></uid>\
<recurrence-id>{BERLIN}<date-time>2026-12-15T10:00:00</date-time></recurrence-id>\
<dtstart>{BERLIN}<date-time>2026-12-15T14:00:00</date-time></dtstart>\
<duration><duration>PT1H</duration></duration><status><text>TENTATIVE</text></status>\
</properties></vevent>"
        ));
        let events = parse_xcal(&xml).unwrap();
        assert_eq!(events.len(), 2);
        let berlin = |d| When::Zoned {
            time: d,
            zone: "Europe/Berlin".to_string(),
        };
        let master = &events[0];
        assert_eq!(master.start, berlin(datetime(2026, 12, 1, 10, 0, 0, 0)));
        assert_eq!(
            master.rules[0].to_string(),
            "FREQ=WEEKLY;UNTIL=20270131T230000Z;BYDAY=TU,TH"
        );
        assert_eq!(master.exdates.len(), 2);
        assert_eq!(
            master.exdates[1],
            berlin(datetime(2026, 12, 29, 10, 0, 0, 0))
        );
        let exception = &events[1];
        assert_eq!(
            exception.recurrence_id,
            Some(berlin(datetime(2026, 12, 15, 10, 0, 0, 0)))
        );
        assert_eq!(exception.status, Status::Tentative);
        assert!(matches!(
            exception.end,
            Some(End::Lasting { duration }) if duration.seconds == 3600
        ));
    }

    #[test]
    fn rfc6321_spellings_read_too() {
        // RFC 6321 writes UNTIL's value right in <until>, and dates as <date>.
        let xml = kolab(
            "<vevent><properties><uid><text>D</text></uid>\
<dtstart><date>2026-12-24</date></dtstart><dtend><date>2026-12-26</date></dtend>\
<rrule><recur><freq>YEARLY</freq><until>2030-12-24</until></recur></rrule>\
<transp><text>TRANSPARENT</text></transp></properties></vevent>",
        );
        let events = parse_xcal(&xml).unwrap();
        assert_eq!(
            events[0].start,
            When::Date {
                date: date(2026, 12, 24),
                zone: None
            }
        );
        assert_eq!(events[0].rules[0].to_string(), "FREQ=YEARLY;UNTIL=20301224");
        assert!(events[0].busy_kind().is_none());
    }

    #[test]
    fn malformed_xml_is_refused_clearly() {
        let cases = [
            ("", "no root element"),
            ("<icalendar><vcalendar>", "never closed"),
            ("<icalendar></vcalendar>", "malformed xCal"),
            ("<html><body/></html>", "not <icalendar>"),
            ("<icalendar/>", "no <vcalendar>"),
            ("<icalendar><vcalendar/></icalendar>", "holds no event"),
            ("<icalendar>&bogus;</icalendar>", "unknown entity"),
            ("just text", "no root element"),
        ];
        for (xml, expected) in cases {
            let error = parse_xcal(xml).unwrap_err().to_string();
            assert!(error.contains(expected), "{xml:?}: {error}");
        }
        let no_start = kolab("<vevent><properties><uid><text>X</text></uid></properties></vevent>");
        assert_eq!(
            parse_xcal(&no_start).unwrap_err().to_string(),
            "property DTSTART: missing"
        );
        let bad_date = kolab(
            "<vevent><properties><dtstart><date-time>2026-02-30T10:00:00</date-time></dtstart></properties></vevent>",
        );
        assert!(
            parse_xcal(&bad_date)
                .unwrap_err()
                .to_string()
                .contains("not a DATE or DATE-TIME")
        );
    }
}
