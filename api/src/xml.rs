//! Kolab objects' XML as properties, and the difference between two revisions, in the shapes
//! Roundcube's drivers read (calendar `kolab_driver::get_event_diff`, `calendar.php`'s diff
//! action, the tasklist and addressbook drivers).
//!
//! xCal (events, tasks, journals: `icalendar/vcalendar/components/<component>/properties`),
//! xCard (`vcards/vcard`) and Kolab's own formats (notes, files: the root's children) all come
//! down to a list of named properties under their Kolab (xCal, xCard) names. A value is text;
//! a date `YYYY-MM-DD` and a date-time a string the calendar parses as it is: UTC with `Z`,
//! one with a TZID with its offset (`2026-12-01T10:00:00+01:00`), a floating one without; a
//! recurrence rule a map of its parts (`{freq, interval, byday, until...}`); an attendee or
//! organizer `{email, name, partstat, role, rsvp, cutype...}`; an attachment `{fmttype,
//! label, uri}`; an alarm (`valarm`) `{action, trigger: {value, related}, ...}`; `exdate`
//! and `rdate` lists of dates; a contact's name its parts (`surname`, `given`,
//! `additional`...), `tel` `{number, type}`, `email` `{address, type}`, `url` `{url, type}`,
//! `adr` as `address` with its parts. Repeated properties are compared by position.

use bonnie_calendar::{XmlElement as Element, iana_name, xml_tree};
use serde_json::{Map, Value, json};

/// Parses a revision's XML.
fn parse(xml: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("the XML is not UTF-8: {e}"))?;
    xml_tree(text).map_err(|e| e.to_string())
}

fn text_of(element: &Element) -> String {
    if element.children.is_empty() {
        element.text.trim().to_string()
    } else {
        element
            .children
            .iter()
            .map(text_of)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A property's parameters, by name, as text.
fn parameters_of(property: &Element) -> Map<String, Value> {
    let mut map = Map::new();
    if let Some(parameters) = property.child("parameters") {
        for parameter in &parameters.children {
            map.insert(parameter.name.clone(), json!(text_of(parameter)));
        }
    }
    map
}

/// A property's value elements (all but its parameters).
fn values_of(property: &Element) -> Vec<&Element> {
    property
        .children
        .iter()
        .filter(|c| c.name != "parameters")
        .collect()
}

/// A date (`YYYY-MM-DD`) or date-time as the calendar parses it: with `Z` in UTC, with its
/// offset in the TZID's zone, without either when floating. Text that is no date stays.
fn date_text(kind: &str, text: &str, tzid: Option<&str>) -> String {
    let digits: Vec<i16> = text
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| d as i16)
        .collect();
    let number =
        |range: std::ops::Range<usize>| -> i16 { digits[range].iter().fold(0, |n, d| n * 10 + d) };
    if digits.len() == 8 || (kind == "date" && digits.len() >= 8) {
        return format!(
            "{:04}-{:02}-{:02}",
            number(0..4),
            number(4..6),
            number(6..8)
        );
    }
    if digits.len() < 14 {
        return text.trim().to_string();
    }
    let (y, mo, d, h, mi, sec) = (
        number(0..4),
        number(4..6) as i8,
        number(6..8) as i8,
        number(8..10) as i8,
        number(10..12) as i8,
        number(12..14) as i8,
    );
    let local = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}");
    if text.trim().ends_with('Z') {
        return format!("{local}Z");
    }
    let zoned = tzid
        .and_then(iana_name)
        .and_then(|name| jiff::tz::TimeZone::get(&name).ok())
        .and_then(|zone| {
            let civil = jiff::civil::DateTime::new(y, mo, d, h, mi, sec, 0).ok()?;
            zone.to_zoned(civil).ok()
        });
    match zoned {
        Some(zoned) => zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        None => local,
    }
}

/// A recurrence rule as a map of its parts; repeated parts (`byday`) joined with commas.
fn recur_map(recur: &Element, tzid: Option<&str>) -> Value {
    let mut parts = Map::new();
    for part in &recur.children {
        let value = match part.name.as_str() {
            "until" => match part.children.first() {
                Some(date) => date_text(&date.name, &date.text, tzid),
                None => date_text("date-time", &part.text, tzid),
            },
            _ => text_of(part),
        };
        match parts.get_mut(&part.name) {
            Some(Value::String(before)) => {
                before.push(',');
                before.push_str(&value);
            }
            _ => {
                parts.insert(part.name.clone(), json!(value));
            }
        }
    }
    Value::Object(parts)
}

/// A value element's value: text, a date, a recurrence rule, a list or a structure.
fn value_of(element: &Element, tzid: Option<&str>) -> Value {
    match element.name.as_str() {
        "date" | "date-time" => return json!(date_text(&element.name, &element.text, tzid)),
        "recur" => return recur_map(element, tzid),
        _ => {}
    }
    if element.children.is_empty() {
        return json!(element.text.trim());
    }
    let same_name = element.children.windows(2).all(|w| w[0].name == w[1].name);
    if same_name && element.children.len() > 1 && element.children[0].children.is_empty() {
        return Value::Array(element.children.iter().map(|c| value_of(c, tzid)).collect());
    }
    let mut fields = Map::new();
    for child in &element.children {
        fields.insert(child.name.clone(), value_of(child, tzid));
    }
    Value::Object(fields)
}

/// The value of a plain property: its one value, a list of several, or a structure.
fn plain_value(property: &Element, tzid: Option<&str>) -> Value {
    match values_of(property).as_slice() {
        [] => json!(property.text.trim()),
        [only] => value_of(only, tzid),
        several if several.windows(2).all(|w| w[0].name == w[1].name) => {
            Value::Array(several.iter().map(|e| value_of(e, tzid)).collect())
        }
        several => Value::Object(
            several
                .iter()
                .map(|e| (e.name.clone(), value_of(e, tzid)))
                .collect(),
        ),
    }
}

fn without_scheme<'t>(text: &'t str, scheme: &str) -> &'t str {
    match text.get(..scheme.len()) {
        Some(head) if head.eq_ignore_ascii_case(scheme) => &text[scheme.len()..],
        _ => text,
    }
}

/// An attendee or organizer: its address and its parameters under Kolab's keys.
fn person(property: &Element) -> Value {
    let mut map = Map::new();
    let address = values_of(property)
        .first()
        .map(|v| text_of(v))
        .unwrap_or_default();
    map.insert("email".into(), json!(without_scheme(&address, "mailto:")));
    for (name, value) in parameters_of(property) {
        let text = value.as_str().unwrap_or_default().to_string();
        let (key, value) = match name.as_str() {
            "cn" => ("name".to_string(), json!(text)),
            "rsvp" => (name, json!(text.eq_ignore_ascii_case("true"))),
            "delegated-to" | "delegated-from" => {
                let list: Vec<&str> = text
                    .split(',')
                    .map(|a| without_scheme(a.trim(), "mailto:"))
                    .collect();
                (name, json!(list.join(", ")))
            }
            _ => (name, json!(text)),
        };
        map.insert(key, value);
    }
    Value::Object(map)
}

/// An attachment: `{fmttype, label, uri}` (the label from Kolab's `x-label`).
fn attachment(property: &Element) -> Value {
    let mut map = Map::new();
    for (name, value) in parameters_of(property) {
        let key = if name == "x-label" {
            "label".to_string()
        } else {
            name
        };
        map.insert(key, value);
    }
    if let Some(value) = values_of(property).first() {
        map.insert(value.name.clone(), json!(text_of(value)));
    }
    Value::Object(map)
}

/// A `valarm` component: its properties, the trigger as `{value, related?}`.
fn alarm(component: &Element) -> Value {
    let mut map = Map::new();
    let Some(properties) = component.child("properties") else {
        return Value::Object(map);
    };
    for property in &properties.children {
        let value = match property.name.as_str() {
            "trigger" => {
                let mut trigger = parameters_of(property);
                match values_of(property).first() {
                    Some(v) if v.name == "date-time" => {
                        let at = date_text("date-time", &v.text, None);
                        let seconds = at
                            .parse::<jiff::Timestamp>()
                            .map(|t| t.as_second().to_string())
                            .unwrap_or(at);
                        trigger.insert("value".into(), json!(format!("@{seconds}")));
                    }
                    Some(v) => {
                        trigger.insert("value".into(), json!(text_of(v)));
                    }
                    None => {}
                }
                Value::Object(trigger)
            }
            "attendee" => person(property),
            _ => plain_value(property, None),
        };
        map.insert(property.name.clone(), value);
    }
    Value::Object(map)
}

/// A contact's typed value (`tel`, `email`, `url`): `{<key>: value, type}`.
fn typed(property: &Element, key: &str, scheme: &str) -> Value {
    let text = values_of(property)
        .first()
        .map(|v| text_of(v))
        .unwrap_or_default();
    let mut map = Map::new();
    map.insert(key.into(), json!(without_scheme(&text, scheme)));
    if let Some(kind) = type_of(property) {
        map.insert("type".into(), json!(kind));
    }
    Value::Object(map)
}

/// The first `type` parameter of a property (`work`, `home`...).
fn type_of(property: &Element) -> Option<String> {
    let kind = property.child("parameters")?.child("type")?;
    let first = kind
        .children
        .first()
        .map(text_of)
        .unwrap_or_else(|| text_of(kind));
    (!first.is_empty()).then_some(first)
}

/// A contact's address: its parts and type.
fn address(property: &Element) -> Value {
    let mut map = Map::new();
    if let Some(kind) = type_of(property) {
        map.insert("type".into(), json!(kind));
    }
    for part in values_of(property) {
        map.insert(part.name.clone(), json!(text_of(part)));
    }
    Value::Object(map)
}

/// A property as one or more `(name, value)` pairs, under the names the drivers map.
fn property_entries(property: &Element, out: &mut Properties) {
    let parameters = parameters_of(property);
    let tzid = parameters.get("tzid").and_then(Value::as_str);
    let name = property.name.clone();
    let value = match name.as_str() {
        "attendee" | "organizer" => person(property),
        "attach" => attachment(property),
        "exdate" | "rdate" => Value::Array(
            values_of(property)
                .iter()
                .map(|v| value_of(v, tzid))
                .collect(),
        ),
        "n" => {
            for part in values_of(property) {
                out.push((part.name.clone(), json!(text_of(part))));
            }
            return;
        }
        "tel" => typed(property, "number", "tel:"),
        "email" => typed(property, "address", "mailto:"),
        "url" => typed(property, "url", ""),
        "adr" => {
            out.push(("address".into(), address(property)));
            return;
        }
        _ => plain_value(property, tzid),
    };
    out.push((name, value));
}

/// Properties in document order, repeated names kept.
type Properties = Vec<(String, Value)>;

fn properties_of(container: &Element) -> Properties {
    let mut out = Properties::new();
    for property in &container.children {
        property_entries(property, &mut out);
    }
    out
}

/// A calendar component's properties, then its alarms as repeated `alarm` properties.
fn component_properties(component: &Element) -> Properties {
    let mut out = component
        .child("properties")
        .map(properties_of)
        .unwrap_or_default();
    if let Some(inner) = component.child("components") {
        for valarm in inner.children.iter().filter(|c| c.name == "valarm") {
            out.push(("alarm".into(), alarm(valarm)));
        }
    }
    out
}

/// The digits of a date or date-time (`2026-12-15T10:00:00` → `20261215100000`).
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The properties of an object, of one recurrence instance when `instance` is given
/// (`YYYYmmddTHHMMSS` or `YYYYmmdd`): the exception for it if the object has one, else the
/// recurring master's.
fn object_properties(root: &Element, instance: Option<&str>) -> Properties {
    if let Some(components) = root.child("vcalendar").and_then(|c| c.child("components")) {
        let with_properties: Vec<&Element> = components
            .children
            .iter()
            .filter(|c| c.child("properties").is_some())
            .collect();
        let recurrence_id = |c: &Element| {
            c.child("properties")
                .and_then(|p| p.child("recurrence-id"))
                .map(|r| digits(&text_of(r)))
        };
        let master = with_properties
            .iter()
            .find(|c| recurrence_id(c).is_none())
            .or(with_properties.first());
        let chosen = instance
            .map(digits)
            .and_then(|wanted| {
                with_properties.iter().find(|c| {
                    recurrence_id(c).is_some_and(|id| !wanted.is_empty() && id.starts_with(&wanted))
                })
            })
            .or(master);
        return chosen
            .map(|c| component_properties(c))
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| instance.is_none() || name != "recurrence-id")
            .collect();
    }
    if root.name == "vcards" {
        return root.child("vcard").map(properties_of).unwrap_or_default();
    }
    properties_of(root)
}

/// The changes between two revisions' XML: `[{property, old, new, index?}]`, in the order the
/// properties appear (the older revision's first).
pub fn diff(old: &[u8], new: &[u8], instance: Option<&str>) -> Result<Vec<Value>, String> {
    let old = object_properties(&parse(old)?, instance);
    let new = object_properties(&parse(new)?, instance);
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in old.iter().chain(new.iter()) {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let values = |properties: &Properties, name: &str| -> Vec<Value> {
        properties
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut changes = Vec::new();
    for name in names {
        let (before, after) = (values(&old, name), values(&new, name));
        let repeated = before.len() > 1 || after.len() > 1;
        for i in 0..before.len().max(after.len()) {
            let (b, a) = (before.get(i), after.get(i));
            if b == a {
                continue;
            }
            let mut change = json!({
                "property": name,
                "old": b.cloned().unwrap_or(Value::Null),
                "new": a.cloned().unwrap_or(Value::Null),
            });
            if repeated {
                change["index"] = json!(i);
            }
            changes.push(change);
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(properties: &str, exceptions: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar>\
             <properties><prodid><text>x</text></prodid></properties><components>\
             <vevent><properties><uid><text>U1</text></uid>{properties}</properties></vevent>{exceptions}\
             </components></vcalendar></icalendar>"
        )
    }

    #[test]
    fn changed_added_and_removed_properties_are_listed_and_nothing_else() {
        let old = event(
            "<summary><text>Planning</text></summary><location><text>Room 1</text></location>\
             <dtstart><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T10:00:00</date-time></dtstart>\
             <rrule><recur><freq>WEEKLY</freq><byday>TU</byday></recur></rrule>",
            "",
        );
        let new = event(
            "<summary><text>Planning &amp; review</text></summary>\
             <dtstart><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-07-01T11:00:00</date-time></dtstart>\
             <rrule><recur><freq>WEEKLY</freq><byday>TU</byday></recur></rrule><description><text>Agenda</text></description>",
            "",
        );
        let changes = diff(old.as_bytes(), new.as_bytes(), None).unwrap();
        assert_eq!(
            changes,
            vec![
                json!({"property": "summary", "old": "Planning", "new": "Planning & review"}),
                json!({"property": "location", "old": "Room 1", "new": null}),
                // The calendar reads these with its own time zone: offsets, summer and winter.
                json!({"property": "dtstart", "old": "2026-12-01T10:00:00+01:00", "new": "2026-07-01T11:00:00+02:00"}),
                json!({"property": "description", "old": null, "new": "Agenda"}),
            ]
        );
        assert_eq!(
            diff(old.as_bytes(), old.as_bytes(), None).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn dates_are_strings_the_calendar_parses() {
        assert_eq!(date_text("date", "2026-12-01", None), "2026-12-01");
        assert_eq!(
            date_text("date-time", "2026-12-01T10:00:00Z", None),
            "2026-12-01T10:00:00Z"
        );
        assert_eq!(
            date_text("date-time", "20261201T100000Z", None),
            "2026-12-01T10:00:00Z"
        );
        assert_eq!(
            date_text("date-time", "2026-12-01T10:00:00", None),
            "2026-12-01T10:00:00"
        );
        assert_eq!(
            date_text("date-time", "2026-12-01T10:00:00", Some("America/New_York")),
            "2026-12-01T10:00:00-05:00"
        );
        assert_eq!(
            date_text("date-time", "2026-12-01T10:00:00", Some("/unknown/Zone")),
            "2026-12-01T10:00:00",
            "an unknown zone leaves the time floating"
        );
        assert_eq!(date_text("date-time", "soon", None), "soon");
    }

    #[test]
    fn recurrence_attendees_attachments_and_alarms_have_the_drivers_keys() {
        let old = event(
            "<rrule><recur><freq>WEEKLY</freq><interval>2</interval><byday>MO</byday><byday>TU</byday></recur></rrule>\
             <exdate><parameters><tzid><text>Europe/Berlin</text></tzid></parameters><date-time>2026-12-08T10:00:00</date-time></exdate>\
             <attendee><parameters><cn><text>Jane Doe</text></cn><partstat><text>NEEDS-ACTION</text></partstat><role><text>REQ-PARTICIPANT</text></role><rsvp><boolean>true</boolean></rsvp></parameters><cal-address>mailto:jane.doe@example.org</cal-address></attendee>\
             <attach><parameters><fmttype><text>application/pdf</text></fmttype><x-label><text>agenda.pdf</text></x-label></parameters><uri>cid:agenda.pdf.1</uri></attach>",
            "",
        )
        .replace(
            "</properties></vevent>",
            "</properties><components><valarm><properties><action><text>DISPLAY</text></action>\
             <trigger><parameters><related><text>START</text></related></parameters><duration>-PT15M</duration></trigger>\
             </properties></valarm></components></vevent>",
        );
        let new = event(
            "<rrule><recur><freq>WEEKLY</freq><interval>2</interval><byday>MO</byday><byday>TU</byday>\
             <until><date-time>2027-01-31T23:00:00Z</date-time></until></recur></rrule>\
             <attendee><parameters><cn><text>Jane Doe</text></cn><partstat><text>ACCEPTED</text></partstat><role><text>REQ-PARTICIPANT</text></role><rsvp><boolean>false</boolean></rsvp></parameters><cal-address>mailto:jane.doe@example.org</cal-address></attendee>",
            "",
        );
        let changes = diff(old.as_bytes(), new.as_bytes(), None).unwrap();
        assert_eq!(
            changes,
            vec![
                json!({"property": "rrule",
                    "old": {"freq": "WEEKLY", "interval": "2", "byday": "MO,TU"},
                    "new": {"freq": "WEEKLY", "interval": "2", "byday": "MO,TU", "until": "2027-01-31T23:00:00Z"}}),
                json!({"property": "exdate", "old": ["2026-12-08T10:00:00+01:00"], "new": null}),
                json!({"property": "attendee",
                    "old": {"email": "jane.doe@example.org", "name": "Jane Doe", "partstat": "NEEDS-ACTION", "role": "REQ-PARTICIPANT", "rsvp": true},
                    "new": {"email": "jane.doe@example.org", "name": "Jane Doe", "partstat": "ACCEPTED", "role": "REQ-PARTICIPANT", "rsvp": false}}),
                json!({"property": "attach",
                    "old": {"fmttype": "application/pdf", "label": "agenda.pdf", "uri": "cid:agenda.pdf.1"}, "new": null}),
                json!({"property": "alarm",
                    "old": {"action": "DISPLAY", "trigger": {"related": "START", "value": "-PT15M"}}, "new": null}),
            ]
        );
    }

    #[test]
    fn an_instance_is_compared_through_its_exception_or_the_master() {
        let master = "<summary><text>Weekly</text></summary><rrule><recur><freq>WEEKLY</freq></recur></rrule>";
        let old = event(master, "");
        let exception = "<vevent><properties><uid><text>U1</text></uid>\
             <recurrence-id><date-time>2026-12-15T10:00:00</date-time></recurrence-id>\
             <summary><text>Weekly, moved</text></summary></properties></vevent>";
        let new = event(master, exception);
        assert_eq!(
            diff(old.as_bytes(), new.as_bytes(), None).unwrap(),
            Vec::<Value>::new()
        );
        let changes = diff(old.as_bytes(), new.as_bytes(), Some("20261215T100000")).unwrap();
        assert_eq!(
            changes,
            vec![
                json!({"property": "summary", "old": "Weekly", "new": "Weekly, moved"}),
                json!({"property": "rrule", "old": {"freq": "WEEKLY"}, "new": null}),
            ]
        );
    }

    #[test]
    fn repeated_properties_carry_their_index_and_bad_xml_is_an_error() {
        let old = event(
            "<attendee><cal-address>mailto:a@x</cal-address></attendee><attendee><cal-address>mailto:b@x</cal-address></attendee>",
            "",
        );
        let new = event(
            "<attendee><cal-address>mailto:a@x</cal-address></attendee><attendee><cal-address>mailto:c@x</cal-address></attendee>",
            "",
        );
        assert_eq!(
            diff(old.as_bytes(), new.as_bytes(), None).unwrap(),
            vec![
                json!({"property": "attendee", "old": {"email": "b@x"}, "new": {"email": "c@x"}, "index": 1})
            ]
        );
        assert!(diff(b"<a><b></a>", old.as_bytes(), None).is_err());
        assert!(diff(b"\xff\xfe<<", old.as_bytes(), None).is_err());
    }

    #[test]
    fn notes_and_contacts_are_property_lists_too() {
        let old =
            b"<note><uid>N1</uid><summary>Shopping</summary><description>milk</description></note>";
        let new = b"<note><uid>N1</uid><summary>Shopping</summary><description>milk, bread</description></note>";
        assert_eq!(
            diff(old, new, None).unwrap(),
            vec![json!({"property": "description", "old": "milk", "new": "milk, bread"})]
        );
        let card = |n: &str, tel: &str| {
            format!(
                "<vcards xmlns=\"urn:ietf:params:xml:ns:vcard-4.0\"><vcard><uid><uri>urn:uuid:1</uri></uid>\
                 <fn><text>{n}</text></fn><n><surname>Doe</surname><given>{n}</given><additional></additional></n>\
                 <tel><parameters><type><text>work</text></type></parameters><text>{tel}</text></tel>\
                 <email><parameters><type><text>home</text></type></parameters><text>jane@example.org</text></email>\
                 <adr><parameters><type><text>home</text></type></parameters><pobox/><ext/><street>Main St 1</street>\
                 <locality>Berlin</locality><region/><code>10115</code><country>Germany</country></adr></vcard></vcards>"
            )
        };
        let changes = diff(
            card("Jane", "+49 30 1").as_bytes(),
            card("Joan", "+49 30 2").as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(
            changes,
            vec![
                json!({"property": "fn", "old": "Jane", "new": "Joan"}),
                json!({"property": "given", "old": "Jane", "new": "Joan"}),
                json!({"property": "tel", "old": {"number": "+49 30 1", "type": "work"}, "new": {"number": "+49 30 2", "type": "work"}}),
            ]
        );
        let same = card("Jane", "1");
        let props = object_properties(&parse(same.as_bytes()).unwrap(), None);
        let address = props
            .iter()
            .find(|(n, _)| n == "address")
            .map(|(_, v)| v.clone());
        assert_eq!(
            address,
            Some(
                json!({"type": "home", "pobox": "", "ext": "", "street": "Main St 1",
                "locality": "Berlin", "region": "", "code": "10115", "country": "Germany"})
            )
        );
        assert!(props.contains(&(
            "email".into(),
            json!({"address": "jane@example.org", "type": "home"})
        )));
    }
}
