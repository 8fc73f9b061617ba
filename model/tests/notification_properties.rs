//! Property test of the record every archive handler makes from a notification: whatever
//! JSON values arrive under Cyrus's field names (or any other), normalizing never panics,
//! keeps every field that came, and always sets the event's time.

use bonnie_model::record::normalize;
use proptest::{collection::vec, prelude::*};
use serde_json::{Map, Value, json};

/// The fields the normalizer reads, and some it does not.
const FIELDS: &[&str] = &[
    "event",
    "timestamp",
    "@timestamp",
    "uri",
    "oldMailboxURI",
    "uidset",
    "uid",
    "user",
    "vnd.cmu.envelope",
    "vnd.cmu.mailboxACL",
    "vnd.cmu.midset",
    "vnd.cmu.sessionId",
    "vnd.cmu.oldUidset",
    "aclSubject",
    "aclRights",
    "flagNames",
    "clientIP",
    "clientPort",
    "serverFQDN",
    "serverDomain",
    "serverPort",
    "mailboxID",
    "oldMailboxID",
    "messages",
    "vnd.cmu.unseenMessages",
    "uidnext",
    "modseq",
    "messageSize",
    "diskQuota",
    "diskUsed",
    "maxMessages",
    "message_ids",
    "folder_owner",
    "delivery",
    "user_inferred",
    "service",
];

/// A value such as Cyrus writes, or one it never would.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        "imap://[a-z.@%0-9]{0,12}/(user/)?[a-z.%@0-9é]{0,12}(;UIDVALIDITY=[0-9]{1,3})?(/;UID=[0-9]{1,3})?"
            .prop_map(Value::String),
        "[0-9:,*]{0,12}".prop_map(Value::String),
        "2026-11-28T17:1[0-9]:[0-9]{2}(\\.[0-9]{0,4})?(Z|[+-][0-9é]{2}:?[0-9]{2})?".prop_map(Value::String),
        "\\((NIL|\"[a-zé=?]{0,6}\"|\\(|\\)| ){0,16}\\)".prop_map(Value::String),
        "([a-z@.]{0,8}\t[a-z]{0,4}\t){0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_notification_normalizes_without_panic(
        fields in vec((prop::sample::select(FIELDS), value()), 0..12),
        event in prop::sample::select(vec!["MessageAppend", "MessageMove", "vnd.cmu.MessageCopy",
            "MailboxRename", "AclChange", "Login", "Logout", "FlagsSet", "QuotaChange", "Bogus"]),
        processed_ms in any::<i64>(),
    ) {
        let mut notification: Map<String, Value> = fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        notification.entry("event").or_insert(json!(event));
        let before = notification.clone();
        normalize(&mut notification, processed_ms);
        for key in before.keys() {
            prop_assert!(notification.contains_key(key), "{key} went");
        }
        prop_assert!(notification.get("@timestamp").is_some_and(Value::is_string));
    }
}
