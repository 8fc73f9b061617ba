//! The model of a Cyrus event notification (RFC 5423 JSON): its event names and the fields
//! every component reads before any handler runs.

use std::borrow::Cow;

use serde::Deserialize;

/// Every event name Cyrus 3.6 emits, plus the RFC 5423 names and the design's
/// `QuotaExceeded`; handlers subscribe by these exact names.
pub const KNOWN_EVENTS: &[&str] = &[
    "Login",
    "Logout",
    "MailboxCreate",
    "MailboxDelete",
    "MailboxRename",
    "MailboxSubscribe",
    "MailboxUnSubscribe",
    "MailboxModseq",
    "AclChange",
    "MessageAppend",
    "MessageNew",
    "MessageCopy",
    "MessageMove",
    "vnd.cmu.MessageCopy",
    "vnd.cmu.MessageMove",
    "MessageExpunge",
    "MessageExpire",
    "MessageRead",
    "MessageTrash",
    "FlagsSet",
    "FlagsClear",
    "QuotaChange",
    "QuotaExceed",
    "QuotaExceeded",
    "QuotaWithin",
];

/// Why a notification cannot be processed at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotificationError {
    /// Not a JSON object with a string `event`.
    #[error("the notification is not a JSON object with an \"event\" name: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct EventOnly<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
}

/// The `event` name of a notification, read without parsing the rest.
pub fn event_name(json: &str) -> Result<Cow<'_, str>, NotificationError> {
    serde_json::from_str::<EventOnly<'_>>(json)
        .map(|e| e.event)
        .map_err(|e| NotificationError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_name_is_read_from_a_real_notification() {
        let json = r#"{"event":"vnd.cmu.MessageMove","timestamp":"2026-11-28T17:13:47.451Z","uidset":"2"}"#;
        assert_eq!(event_name(json).unwrap(), "vnd.cmu.MessageMove");
    }

    #[test]
    fn malformed_notifications_are_errors() {
        assert!(event_name("not json").is_err());
        assert!(event_name("{\"event\": 3}").is_err());
        assert!(event_name("[1,2]").is_err());
        assert!(event_name("{}").is_err());
    }
}
