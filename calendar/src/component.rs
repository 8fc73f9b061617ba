//! Calendar components as both formats give them (names, parameters and values in iCalendar
//! text form; xCal is converted to that), and their reading into [`Event`]s: one place for
//! the meaning of DTSTART, DTEND, DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, STATUS and
//! TRANSP whichever format they came in.

use crate::{
    error::CalendarError,
    model::{End, Event, RDate, Status, Transparency, When},
    rrule::Rule,
    value,
    zone::Zones,
};

/// A property: upper-case name, parameters (upper-case names; values as written, several
/// joined by `,`), and the value in iCalendar text form (several joined by `,`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Property {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl Property {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().trim_matches('"'))
    }
}

/// A component (`VCALENDAR`, `VEVENT`, `VTIMEZONE`, `STANDARD`...): upper-case name,
/// properties and sub-components.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Component {
    pub name: String,
    pub properties: Vec<Property>,
    pub components: Vec<Component>,
}

impl Component {
    /// The first property of this name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Every property of this name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> + 'a {
        self.properties.iter().filter(move |p| p.name == name)
    }

    /// The first value of this property, trimmed.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.property(name).map(|p| p.value.trim())
    }
}

/// The events of parsed calendars (`VCALENDAR` components, or bare `VEVENT`s).
pub(crate) fn events(calendars: &[Component]) -> Result<Vec<Event>, CalendarError> {
    let mut parts: Vec<&Component> = Vec::new();
    for top in calendars {
        if top.name == "VCALENDAR" {
            parts.extend(top.components.iter());
        } else {
            parts.push(top);
        }
    }
    let zones = Zones::of(&parts);
    let events = parts
        .iter()
        .filter(|c| c.name == "VEVENT")
        .map(|c| event(c, &zones))
        .collect::<Result<Vec<_>, _>>()?;
    if events.is_empty() {
        return Err(CalendarError::NoEvent);
    }
    Ok(events)
}

/// A date or date-time property's value, in its TZID's zone.
fn when(property: &Property, zones: &Zones) -> Result<When, CalendarError> {
    let zone = property.param("TZID").map(|t| zones.name(t)).transpose()?;
    value::when(&property.value, zone)
        .map_err(|reason| CalendarError::property(&property.name, reason))
}

/// Every value of a multi-valued date property (`EXDATE`, `RDATE`).
fn values<'a>(property: &'a Property) -> impl Iterator<Item = &'a str> + 'a {
    property
        .value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn event(component: &Component, zones: &Zones) -> Result<Event, CalendarError> {
    let start = component
        .property("DTSTART")
        .ok_or_else(|| CalendarError::property("DTSTART", "missing"))?;
    let start = when(start, zones)?;
    let end = match (component.property("DTEND"), component.property("DURATION")) {
        (Some(dtend), _) => Some(End::At {
            when: when(dtend, zones)?,
        }),
        (None, Some(duration)) => Some(End::Lasting {
            duration: value::duration(duration.value.trim())
                .map_err(|reason| CalendarError::property("DURATION", reason))?,
        }),
        (None, None) => None,
    };
    let rules = component
        .all("RRULE")
        .map(|p| p.value.trim().parse::<Rule>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut exdates = Vec::new();
    for property in component.all("EXDATE") {
        for text in values(property) {
            let one = Property {
                value: text.to_string(),
                ..property.clone()
            };
            exdates.push(when(&one, zones)?);
        }
    }
    let mut rdates = Vec::new();
    for property in component.all("RDATE") {
        for text in values(property) {
            rdates.push(rdate(property, text, zones)?);
        }
    }
    let recurrence_id = component
        .property("RECURRENCE-ID")
        .map(|p| when(p, zones))
        .transpose()?;
    let status = match component
        .value("STATUS")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("TENTATIVE") => Status::Tentative,
        Some("CANCELLED") => Status::Cancelled,
        _ => Status::Confirmed,
    };
    let transparency = match component.value("TRANSP") {
        Some(t) if t.eq_ignore_ascii_case("TRANSPARENT") => Transparency::Transparent,
        _ => Transparency::Opaque,
    };
    Ok(Event {
        uid: component
            .value("UID")
            .filter(|u| !u.is_empty())
            .map(str::to_string),
        recurrence_id,
        start,
        end,
        rules,
        rdates,
        exdates,
        status,
        transparency,
    })
}

/// One RDATE value: a date, a date-time, or a period (`start/end` or `start/duration`).
fn rdate(property: &Property, text: &str, zones: &Zones) -> Result<RDate, CalendarError> {
    let at = |text: &str| {
        when(
            &Property {
                value: text.to_string(),
                ..property.clone()
            },
            zones,
        )
    };
    let Some((start, end)) = text.split_once('/') else {
        return Ok(RDate::At { when: at(text)? });
    };
    let end = if end.trim_start().starts_with(['P', '+', '-']) {
        End::Lasting {
            duration: value::duration(end.trim())
                .map_err(|reason| CalendarError::property("RDATE", reason))?,
        }
    } else {
        End::At { when: at(end)? }
    };
    Ok(RDate::Period {
        start: at(start)?,
        end,
    })
}
