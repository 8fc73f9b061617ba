//! Kolab objects' XML as properties, and the difference between two revisions.
//!
//! xCal (events, tasks, journals: `icalendar/vcalendar/components/<component>/properties`),
//! xCard (`vcards/vcard`) and Kolab's own formats (notes, files: the root's children) all come
//! down to a list of named properties. A property's value is its text; a property with
//! `<parameters>` is `{"value", "parameters"}`; a recurrence rule is its RFC 5545 text
//! (`FREQ=WEEKLY;BYDAY=TU`); structured values (an address, a name) are objects. Repeated
//! properties (attendees, categories, exceptions' dates) are compared by position.

use bonnie_calendar::{XmlElement as Element, xml_tree};
use serde_json::{Map, Value, json};

/// Parses a revision's XML.
fn parse(xml: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("the XML is not UTF-8: {e}"))?;
    xml_tree(text).map_err(|e| e.to_string())
}

/// A value element's value: text, a recurrence rule, a list or a structure.
fn value_of(element: &Element) -> Value {
    if element.name == "recur" {
        let parts: Vec<String> = element
            .children
            .iter()
            .map(|c| format!("{}={}", c.name.to_ascii_uppercase(), text_of(c)))
            .collect();
        return json!(parts.join(";"));
    }
    if element.children.is_empty() {
        return json!(element.text.trim());
    }
    let same_name = element.children.windows(2).all(|w| w[0].name == w[1].name);
    if same_name && element.children.len() > 1 && element.children[0].children.is_empty() {
        return Value::Array(element.children.iter().map(value_of).collect());
    }
    let mut fields = Map::new();
    for child in &element.children {
        fields.insert(child.name.clone(), value_of(child));
    }
    Value::Object(fields)
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

/// A property element's value, with its parameters.
fn property_value(property: &Element) -> Value {
    let values: Vec<&Element> = property
        .children
        .iter()
        .filter(|c| c.name != "parameters")
        .collect();
    let value = match values.as_slice() {
        [] => json!(property.text.trim()),
        [only] => value_of(only),
        several if several.windows(2).all(|w| w[0].name == w[1].name) => {
            Value::Array(several.iter().map(|e| value_of(e)).collect())
        }
        several => Value::Object(
            several
                .iter()
                .map(|e| (e.name.clone(), value_of(e)))
                .collect(),
        ),
    };
    match property.child("parameters") {
        Some(parameters) if !parameters.children.is_empty() => {
            let mut map = Map::new();
            for parameter in &parameters.children {
                map.insert(parameter.name.clone(), json!(text_of(parameter)));
            }
            json!({ "value": value, "parameters": map })
        }
        _ => value,
    }
}

/// Properties in document order, repeated names kept.
type Properties = Vec<(String, Value)>;

fn properties_of(container: &Element) -> Properties {
    container
        .children
        .iter()
        .map(|p| (p.name.clone(), property_value(p)))
        .collect()
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
            .filter_map(|c| c.child("properties"))
            .collect();
        let recurrence_id = |p: &Element| p.child("recurrence-id").map(|r| digits(&text_of(r)));
        let master = with_properties
            .iter()
            .find(|p| recurrence_id(p).is_none())
            .or(with_properties.first());
        let chosen = instance
            .map(digits)
            .and_then(|wanted| {
                with_properties.iter().find(|p| {
                    recurrence_id(p).is_some_and(|id| !wanted.is_empty() && id.starts_with(&wanted))
                })
            })
            .or(master);
        return chosen
            .map(|p| properties_of(p))
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
             <dtstart><parameters><tzid><text>Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T10:00:00</date-time></dtstart>\
             <rrule><recur><freq>WEEKLY</freq><byday>TU</byday></recur></rrule>",
            "",
        );
        let new = event(
            "<summary><text>Planning &amp; review</text></summary>\
             <dtstart><parameters><tzid><text>Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T11:00:00</date-time></dtstart>\
             <rrule><recur><freq>WEEKLY</freq><byday>TU</byday></recur></rrule><description><text>Agenda</text></description>",
            "",
        );
        let changes = diff(old.as_bytes(), new.as_bytes(), None).unwrap();
        assert_eq!(
            changes,
            vec![
                json!({"property": "summary", "old": "Planning", "new": "Planning & review"}),
                json!({"property": "location", "old": "Room 1", "new": null}),
                json!({"property": "dtstart",
                    "old": {"value": "2026-12-01T10:00:00", "parameters": {"tzid": "Europe/Berlin"}},
                    "new": {"value": "2026-12-01T11:00:00", "parameters": {"tzid": "Europe/Berlin"}}}),
                json!({"property": "description", "old": null, "new": "Agenda"}),
            ]
        );
        assert_eq!(
            diff(old.as_bytes(), old.as_bytes(), None).unwrap(),
            Vec::<Value>::new()
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
                json!({"property": "rrule", "old": "FREQ=WEEKLY", "new": null}),
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
                json!({"property": "attendee", "old": "mailto:b@x", "new": "mailto:c@x", "index": 1})
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
        let card = |n: &str| {
            format!(
                "<vcards xmlns=\"urn:ietf:params:xml:ns:vcard-4.0\"><vcard><uid><uri>urn:uuid:1</uri></uid>\
                 <fn><text>{n}</text></fn><n><surname>Doe</surname><given>{n}</given></n></vcard></vcards>"
            )
        };
        let changes = diff(card("Jane").as_bytes(), card("Joan").as_bytes(), None).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(
            changes[1]["new"],
            json!({"surname": "Doe", "given": "Joan"})
        );
    }
}
