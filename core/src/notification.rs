//! The model of a Cyrus event notification (RFC 5423 JSON): its event names, the fields
//! every component reads before any handler runs, and how its bytes become the text a job
//! carries when they are not UTF-8.

use base64::Engine;
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The field bonnie adds, `true`, to a notification whose bytes were not valid UTF-8.
pub const INVALID_UTF8_FIELD: &str = "invalid_utf8";

/// The field bonnie adds to a notification whose bytes were not valid UTF-8: those exact
/// bytes, base64 (standard alphabet, padded).
pub const RAW_FIELD: &str = "raw_notification_b64";

/// The fields only a collector writes into a notification: what it read from Cyrus (ACL,
/// metadata, message headers and content), from the directory (user data), and why a command
/// failed. A notification that no collector wrote must not bring them.
pub const COLLECTOR_FIELDS: &[&str] = &[
    "acl",
    "metadata",
    "messageHeaders",
    "messageContent",
    "user_data",
    "collector_errors",
    "dlp_imap_results",
];

/// Where a notification that no collector wrote brought fields only collectors write:
/// the notification without them, marked `collector_fields_dropped` with their names (a forged
/// ACL must not decide who reads a folder). `None` when it brought none, which costs no parse
/// unless a field's name appears quoted in the text.
pub fn without_collector_fields(text: &str) -> Option<(String, Vec<String>)> {
    if !COLLECTOR_FIELDS
        .iter()
        .any(|field| text.contains(&format!("\"{field}\"")))
    {
        return None;
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let dropped: Vec<String> = COLLECTOR_FIELDS
        .iter()
        .filter(|field| object.remove(**field).is_some())
        .map(|field| field.to_string())
        .collect();
    if dropped.is_empty() {
        return None;
    }
    object.insert(
        "collector_fields_dropped".to_string(),
        Value::from(dropped.clone()),
    );
    Some((Value::Object(object).to_string(), dropped))
}

/// The event of a batch of log lines that bonnie-logd hands to the broker (Postfix's and other
/// daemons' syslog lines).
pub const LOG_LINES_EVENT: &str = "vnd.bonnie.LogLines";

/// The event of a gap `bonnie reconcile` found between Cyrus and the archive (a folder or
/// message the archive lacked, a folder gone without a delete event).
pub const RECONCILE_GAP_EVENT: &str = "vnd.bonnie.ReconcileGap";

/// Every event name Cyrus 3.6 emits, plus the RFC 5423 names, the design's `QuotaExceeded`
/// and bonnie-logd's [`LOG_LINES_EVENT`]; handlers subscribe by these exact names.
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
    LOG_LINES_EVENT,
    RECONCILE_GAP_EVENT,
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

/// A notification's bytes as the text a job carries. UTF-8 bytes are that text, untouched.
/// Other bytes are decoded lossily (valid UTF-8 sequences as UTF-8, every other byte as
/// Windows-1252, which maps every byte >= 0x80 to a character and never to a JSON
/// delimiter, so the JSON stays JSON); if that is a JSON object, [`INVALID_UTF8_FIELD`] and
/// [`RAW_FIELD`] are added in front of Cyrus's own fields, which keep their order and names.
/// Nothing is added to an object that already has either field (Cyrus never sends them), nor
/// to text that is not an object (the job is then rejected as malformed, as any such job is).
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = decode_lossy(bytes).into_owned();
    let object = serde_json::from_str::<Map<String, Value>>(&text);
    if let Ok(object) = object
        && !object.contains_key(INVALID_UTF8_FIELD)
        && !object.contains_key(RAW_FIELD)
        && let Some(open) = text.find('{')
    {
        let separator = if object.is_empty() { "" } else { "," };
        let fields = format!(
            "\"{INVALID_UTF8_FIELD}\":true,\"{RAW_FIELD}\":\"{}\"{separator}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        text.insert_str(open + 1, &fields);
    }
    Cow::Owned(text)
}

/// `bytes` as text: UTF-8 where they are valid UTF-8, Windows-1252 for every byte that is not.
pub fn decode_lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 2);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.push_str(
            &encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(chunk.invalid())
                .0,
        );
    }
    Cow::Owned(text)
}

/// The exact bytes Cyrus sent, from a record that [`decode`] flagged; `None` for a record
/// whose notification was UTF-8 (its text is its bytes).
pub fn original_bytes(record: &Value) -> Option<Vec<u8>> {
    if record.get(INVALID_UTF8_FIELD) != Some(&Value::Bool(true)) {
        return None;
    }
    crate::b64::base64(record.get(RAW_FIELD)?.as_str()?)
}

#[cfg(test)]
mod tests {

    #[test]
    fn collector_fields_a_notification_brought_are_dropped_and_named() {
        let forged = r#"{"event":"AclChange","user":"jane","acl":{"jane":"lrswipkxtecdan"},"aclSubject":"jane"}"#;
        let (text, dropped) = without_collector_fields(forged).unwrap();
        assert_eq!(dropped, ["acl"]);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value.get("acl").is_none());
        assert_eq!(value["aclSubject"], "jane");
        assert_eq!(
            value["collector_fields_dropped"],
            serde_json::json!(["acl"])
        );
        // A value "acl" is no field, and a notification without such fields is not parsed.
        assert!(without_collector_fields(r#"{"event":"Login","user":"acl"}"#).is_none());
        assert!(without_collector_fields(r#"{"event":"Login"}"#).is_none());
    }
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

    /// A Latin-1 subject inside Cyrus's JSON: decoded, flagged, the bytes kept.
    #[test]
    fn latin1_inside_the_json_is_decoded_flagged_and_kept() {
        let bytes: &[u8] =
            b"{\"event\":\"MessageAppend\",\"subject\":\"Gr\xfc\xdfe \x80 \xe2\x82\xac\",\"n\":1}";
        let text = decode(bytes);
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["subject"], "Grüße € €");
        assert_eq!(record["event"], "MessageAppend");
        assert_eq!(record["n"], 1);
        assert_eq!(record[INVALID_UTF8_FIELD], true);
        assert_eq!(original_bytes(&record).as_deref(), Some(bytes));
        assert_eq!(event_name(&text).unwrap(), "MessageAppend");
        // Cyrus's fields keep their order, after bonnie's two.
        assert!(text.starts_with("{\"invalid_utf8\":true,\"raw_notification_b64\":\""));
        assert!(text.ends_with(",\"event\":\"MessageAppend\",\"subject\":\"Grüße € €\",\"n\":1}"));
    }

    #[test]
    fn utf8_is_untouched_and_garbage_is_not_flagged() {
        let json = r#"{"event":"Login","user":"jörg"}"#;
        assert!(matches!(decode(json.as_bytes()), Cow::Borrowed(t) if t == json));
        assert_eq!(original_bytes(&serde_json::from_str(json).unwrap()), None);
        assert_eq!(decode(b"\xff not json"), "ÿ not json");
        assert_eq!(decode(b"[\"\xff\"]"), "[\"ÿ\"]");
        let trailing = decode(b" {} \xa0");
        assert_eq!(
            trailing, " {} \u{a0}",
            "not an object: U+00A0 is no JSON whitespace"
        );
        let empty: Value = serde_json::from_str(&decode(b" {\"\xa0\":1}")).unwrap();
        assert_eq!(empty[INVALID_UTF8_FIELD], true);
        let only: Value = serde_json::from_str(&decode(b"{\"a\":\"\xa0\"}")).unwrap();
        assert_eq!(only["a"], "\u{a0}");
        // A field of bonnie's own already there: nothing is added or changed.
        let crafted = b"{\"invalid_utf8\":false,\"x\":\"\xe9\"}";
        assert_eq!(decode(crafted), "{\"invalid_utf8\":false,\"x\":\"é\"}");
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::json;

        use super::super::*;

        proptest! {
            #[test]
            fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let text = decode(&bytes);
                if let Ok(utf8) = std::str::from_utf8(&bytes) {
                    prop_assert_eq!(&*text, utf8);
                }
                let _ = event_name(&text);
                if let Ok(record) = serde_json::from_str::<Value>(&text)
                    && let Some(original) = original_bytes(&record)
                {
                    prop_assert_eq!(original, bytes);
                }
            }

            #[test]
            fn any_string_has_an_event_name_or_an_error(text in any::<String>()) {
                let _ = event_name(&text);
            }

            /// A notification in Latin-1: every field stays, under its name; it is flagged
            /// and its bytes are kept exactly.
            #[test]
            fn latin1_notifications_keep_every_field_and_their_bytes(
                fields in proptest::collection::btree_map("[a-zA-Z.]{1,12}", "[ -~\u{a0}-\u{ff}]{0,20}", 0..8),
            ) {
                let mut object = serde_json::Map::new();
                for (key, value) in &fields {
                    object.insert(key.clone(), json!(value));
                }
                object.insert("event".to_string(), json!("MessageAppend"));
                let text = Value::Object(object.clone()).to_string();
                let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
                let decoded = decode(&bytes);
                let record: Value = serde_json::from_str(&decoded).unwrap();
                let record = record.as_object().unwrap();
                if std::str::from_utf8(&bytes).is_err() {
                    prop_assert_eq!(&record[INVALID_UTF8_FIELD], &json!(true));
                    prop_assert_eq!(original_bytes(&Value::Object(record.clone())), Some(bytes.clone()));
                    prop_assert_eq!(record.len(), object.len() + 2);
                } else {
                    // Latin-1 bytes that happen to be UTF-8 (`Â¡` is `¡`) are read as UTF-8.
                    prop_assert!(!record.contains_key(INVALID_UTF8_FIELD));
                    prop_assert_eq!(record.len(), object.len());
                }
                for key in object.keys() {
                    prop_assert!(record.contains_key(key));
                }
                prop_assert_eq!(event_name(&decoded).unwrap(), "MessageAppend");
            }
        }
    }
}
