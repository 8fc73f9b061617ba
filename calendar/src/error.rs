//! Why a calendar object could not be read or expanded. These are faults of the object (a
//! user's data), never of bonnie: callers log them and leave the object out.

/// A calendar object that cannot be read, or a recurrence that cannot be expanded.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The message is not MIME bonnie can take apart.
    #[error("malformed message: {0}")]
    Mime(String),
    /// The message holds no calendar part (`application/calendar+xml` or `text/calendar`).
    #[error("the message has no calendar part (application/calendar+xml or text/calendar)")]
    NoCalendarPart,
    /// The calendar part is not text in its charset.
    #[error("the calendar part is not valid {charset}")]
    Charset {
        /// The charset it claimed (or UTF-8).
        charset: String,
        /// What decoding said.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The xCal document is not well-formed XML.
    #[error("malformed xCal at byte {position}")]
    Xml {
        /// Where the reader stopped.
        position: u64,
        /// What the XML reader said.
        #[source]
        source: quick_xml::Error,
    },
    /// The xCal document is XML but not xCal.
    #[error("not an xCal document: {0}")]
    NotXCal(String),
    /// The iCalendar text is malformed.
    #[error("malformed iCalendar at line {line}: {reason}")]
    ICal {
        /// The (unfolded) line's number, from 1.
        line: usize,
        /// What is wrong there.
        reason: String,
    },
    /// The object holds no VEVENT.
    #[error("the calendar object holds no event")]
    NoEvent,
    /// A property's value is malformed or missing.
    #[error("property {property}: {reason}")]
    Property {
        /// The property (`DTSTART`, `RRULE`...).
        property: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TZID that is neither an IANA name (after any `/vendor/` prefix) nor a VTIMEZONE
    /// of the object bonnie can read.
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    /// A time that does not exist in its time zone's range.
    #[error("time {time} cannot be placed in time zone {zone}")]
    Time {
        /// The wall-clock time.
        time: String,
        /// The zone.
        zone: String,
    },
    /// A recurrence rule bonnie does not expand.
    #[error("recurrence rule {rule:?} is not supported: {reason}")]
    Unsupported {
        /// The rule as written.
        rule: String,
        /// What is not supported.
        reason: String,
    },
    /// A recurrence with more instances in the asked range than bonnie expands.
    #[error("the recurrence has more than {0} instances to expand in this range")]
    TooManyInstances(usize),
}

impl CalendarError {
    pub(crate) fn property(property: &str, reason: impl Into<String>) -> Self {
        Self::Property {
            property: property.to_string(),
            reason: reason.into(),
        }
    }
}
