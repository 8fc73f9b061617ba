//! The event model free/busy needs, the same whether it came from xCal or iCalendar: when an
//! event starts and ends, how it recurs, which instances are removed or replaced, and whether
//! it blocks time. It is serializable, so parsed objects can be cached in the storage.

use jiff::{Timestamp, civil};
use serde::{Deserialize, Serialize};

use crate::{busy::BusyKind, rrule::Rule};

/// A date or time as a calendar object writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum When {
    /// A whole day (`VALUE=DATE`): a day of `zone` when the value named one, else a UTC day.
    Date {
        /// The day.
        #[serde(with = "as_text")]
        date: civil::Date,
        /// The time zone (an IANA name, or `posix:` and a POSIX TZ string), if named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// A wall-clock time without a zone ("floating"): read as UTC.
    Floating {
        /// The wall-clock time.
        #[serde(with = "as_text")]
        time: civil::DateTime,
    },
    /// An exact instant (written with `Z`).
    Utc {
        /// The instant.
        #[serde(with = "as_text")]
        time: Timestamp,
    },
    /// A wall-clock time in a time zone.
    Zoned {
        /// The wall-clock time.
        #[serde(with = "as_text")]
        time: civil::DateTime,
        /// The time zone: an IANA name, or `posix:` and a POSIX TZ string (from a VTIMEZONE).
        zone: String,
    },
}

impl When {
    /// True for a whole day.
    pub fn is_date(&self) -> bool {
        matches!(self, Self::Date { .. })
    }
}

/// A length of time: nominal days (a day is a calendar day in the event's zone, 23 or 25
/// hours across a DST change) plus exact seconds, as RFC 5545 reads `DURATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Duration {
    /// Calendar days (weeks count 7); negative for a negative duration.
    pub days: i64,
    /// Exact seconds; negative for a negative duration.
    pub seconds: i64,
}

/// How an event's end is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum End {
    /// `DTEND`: every instance lasts exactly as long as the first.
    At {
        /// The first instance's end.
        when: When,
    },
    /// `DURATION`: every instance lasts this (nominal days, exact seconds).
    Lasting {
        /// The duration.
        duration: Duration,
    },
}

/// An extra instance (`RDATE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RDate {
    /// An instance starting then, as long as the event.
    At {
        /// Its start.
        when: When,
    },
    /// An instance with its own end (`VALUE=PERIOD`).
    Period {
        /// Its start.
        start: When,
        /// Its end.
        end: End,
    },
}

/// `STATUS` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `CONFIRMED`, or no status: busy.
    #[default]
    Confirmed,
    /// `TENTATIVE`: tentatively busy.
    Tentative,
    /// `CANCELLED`: not busy.
    Cancelled,
}

/// `TRANSP` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transparency {
    /// `OPAQUE`, the default: blocks time.
    #[default]
    Opaque,
    /// `TRANSPARENT`: does not block time.
    Transparent,
}

/// One VEVENT: a single or recurring event, or (with `recurrence_id`) the exception that
/// replaces one instance of a recurring event with the same UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `UID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `RECURRENCE-ID`: the start of the instance this exception replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<When>,
    /// `DTSTART`.
    pub start: When,
    /// `DTEND` or `DURATION`; none: a day for a date, no time at all for a date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
    /// `RRULE`s (RFC 5545 allows one; older writers gave several, whose instances add up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// `RDATE`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<RDate>,
    /// `EXDATE`s: instances that do not happen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<When>,
    /// `STATUS`.
    #[serde(default)]
    pub status: Status,
    /// `TRANSP`.
    #[serde(default)]
    pub transparency: Transparency,
}

impl Event {
    /// How the event's time shows in free/busy: none when cancelled or transparent.
    pub fn busy_kind(&self) -> Option<BusyKind> {
        match (self.status, self.transparency) {
            (Status::Cancelled, _) | (_, Transparency::Transparent) => None,
            (Status::Tentative, _) => Some(BusyKind::Tentative),
            (Status::Confirmed, _) => Some(BusyKind::Busy),
        }
    }
}

/// Serializes a value by its `Display` form and reads it back with `FromStr` (jiff's civil
/// types and [`Rule`] without serde features of their own).
pub(crate) mod as_text {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}
