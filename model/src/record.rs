//! The normalized record, the design's log entry: the notification Cyrus sent, kept as it is,
//! with bonnie's fields added beside it (`@timestamp`, `user`, `folder_uniqueid`, UIDs,
//! Message-IDs, flags, ACL, quota figures...). Adding never removes or rewrites a Cyrus field,
//! so normalizing twice gives the same record and the original stays as evidence. A message's
//! subject, addresses, date and Message-ID come from the message itself once the collector
//! has its headers (decoded by bonnie-mail); before that, from Cyrus's `vnd.cmu.envelope`,
//! which masks every 8-bit header byte as `X`.

use bonnie_core::{
    imap::{acl, envelope, uidset, uri},
    notification::KNOWN_EVENTS,
    time,
};
use serde_json::{Map, Value, json};

/// The version of the record's layout (`@version`).
pub const VERSION: u64 = 1;

/// The field `bonnie backfill` and `bonnie reconcile` mark their notifications with: when the
/// state was observed and by which run.
pub const BACKFILL_MARKER: &str = "vnd.bonnie.backfill";

/// A JSON object.
pub type Object = Map<String, Value>;

fn text<'a>(n: &'a Object, key: &str) -> Option<&'a str> {
    n.get(key).and_then(Value::as_str)
}

fn copy_number(n: &mut Object, from: &str, to: &str) {
    if let Some(value) = n.get(from).filter(|v| v.is_number()).cloned() {
        n.insert(to.to_string(), value);
    }
}

fn copy_text(n: &mut Object, from: &str, to: &str) {
    if let Some(value) = text(n, from).filter(|v| !v.is_empty()).map(str::to_string) {
        n.insert(to.to_string(), Value::String(value));
    }
}

/// Adds bonnie's fields to a Cyrus notification. `processed_ms` stands in for the event's
/// time when the notification has none (flagged `timestamp_missing`).
pub fn normalize(n: &mut Object, processed_ms: i64) {
    let event = text(n, "event").unwrap_or_default().to_string();
    n.insert("@version".to_string(), json!(VERSION));
    match text(n, "timestamp").and_then(time::parse_rfc3339_ms) {
        Some(ms) => {
            n.insert("@timestamp".to_string(), json!(time::format_rfc3339_ms(ms)));
        }
        None => {
            n.insert(
                "@timestamp".to_string(),
                json!(time::format_rfc3339_ms(processed_ms)),
            );
            n.insert("timestamp_missing".to_string(), json!(true));
        }
    }
    if !KNOWN_EVENTS.contains(&event.as_str()) {
        n.insert("unknown_event".to_string(), json!(true));
    }
    copy_text(n, "vnd.cmu.sessionId", "session_id");
    copy_text(n, "clientIP", "client_ip");
    copy_number(n, "clientPort", "client_port");
    copy_text(n, "serverFQDN", "server");
    copy_text(n, "serverDomain", "server_domain");
    copy_number(n, "serverPort", "server_port");
    copy_text(n, "mailboxID", "folder_uniqueid");
    // Observed by `bonnie backfill` or `bonnie reconcile`, not an event Cyrus sent.
    if n.get(BACKFILL_MARKER).is_some_and(Value::is_object) {
        n.insert("backfilled".to_string(), json!(true));
    }
    for (from, to) in [
        ("messages", "messages"),
        ("vnd.cmu.unseenMessages", "unseen_messages"),
        ("uidnext", "uidnext"),
        ("modseq", "modseq"),
        ("messageSize", "message_size"),
        ("diskQuota", "disk_quota"),
        ("diskUsed", "disk_used"),
        ("maxMessages", "max_messages"),
    ] {
        copy_number(n, from, to);
    }
    folder_fields(n);
    delivery_fields(n, &event);
    uid_fields(n);
    message_fields(n);
    acl_fields(n, &event);
}

/// The folder of `uri` and, for copies, moves and renames, of `oldMailboxID` (a URI).
fn folder_fields(n: &mut Object) {
    // A quota event's URL names the quota root, not a folder the event happened in.
    let quota = text(n, "event").is_some_and(|e| e.starts_with("Quota"));
    if let Some(parsed) = text(n, "uri").and_then(uri::parse) {
        if let (Some(mailbox), true) = (&parsed.mailbox, quota) {
            n.insert("quota_root".to_string(), json!(mailbox.path));
            if let Some(owner) = &mailbox.owner {
                n.insert("quota_owner".to_string(), json!(owner));
            }
        } else if let Some(mailbox) = parsed.mailbox {
            n.insert("folder".to_string(), json!(mailbox.path));
            n.insert("folder_name".to_string(), json!(mailbox.name));
            if let Some(owner) = mailbox.owner {
                n.insert("folder_owner".to_string(), json!(owner));
            }
        }
        if let Some(v) = parsed.uidvalidity {
            n.insert("uidvalidity".to_string(), json!(v));
        }
        if let Some(uid) = parsed.uid {
            n.insert("uid".to_string(), json!(uid));
        }
    }
    if let Some(parsed) = text(n, "oldMailboxID").and_then(uri::parse) {
        if let Some(mailbox) = parsed.mailbox {
            n.insert("old_folder".to_string(), json!(mailbox.path));
            n.insert("old_folder_name".to_string(), json!(mailbox.name));
        }
        if let Some(v) = parsed.uidvalidity {
            n.insert("old_uidvalidity".to_string(), json!(v));
        }
    }
}

/// A MessageNew is a delivery (LMTP, `deliver`): `delivery` and its `recipient`, the owner of
/// the folder it went into. When Cyrus names no acting user (the field missing or empty), the
/// recipient is the record's `user` (flagged `user_inferred`), so per-user queries find the
/// deliveries too; an empty `user` Cyrus sent is kept as `cyrus_user`.
fn delivery_fields(n: &mut Object, event: &str) {
    if event != "MessageNew" {
        return;
    }
    n.insert("delivery".to_string(), json!(true));
    let Some(owner) = text(n, "folder_owner").map(str::to_string) else {
        return;
    };
    n.insert("recipient".to_string(), json!(owner));
    if n.get("user_inferred").is_some() {
        return;
    }
    match n.get("user") {
        Some(Value::String(user)) if !user.is_empty() => return,
        Some(cyrus) => {
            let cyrus = cyrus.clone();
            n.insert("cyrus_user".to_string(), cyrus);
        }
        None => {}
    }
    n.insert("user".to_string(), json!(owner));
    n.insert("user_inferred".to_string(), json!(true));
}

/// `uids` from `uidset` (or the URL's single UID), `old_uids` from `vnd.cmu.oldUidset`. A set
/// that cannot be expanded is noted, not fatal: the record is still evidence.
fn uid_fields(n: &mut Object) {
    for (from, to) in [("uidset", "uids"), ("vnd.cmu.oldUidset", "old_uids")] {
        let Some(set) = text(n, from).map(str::to_string) else {
            continue;
        };
        match uidset::expand(&set) {
            Ok(uids) => {
                n.insert(to.to_string(), json!(uids));
            }
            Err(e) => {
                n.insert(format!("{to}_error"), json!(e.to_string()));
            }
        }
    }
    if !n.contains_key("uids")
        && let Some(uid) = n.get("uid").cloned()
    {
        n.insert("uids".to_string(), json!([uid]));
    }
}

/// Message-IDs, flags and the envelope's subject and addresses.
fn message_fields(n: &mut Object) {
    let message_ids: Vec<Value> = match n.get("vnd.cmu.midset") {
        Some(Value::Array(ids)) => ids
            .iter()
            .filter(|id| id.as_str().is_some_and(|s| s != "NIL"))
            .cloned()
            .collect(),
        Some(Value::String(id)) if id != "NIL" => vec![json!(id)],
        _ => Vec::new(),
    };
    if !message_ids.is_empty() {
        n.insert("message_ids".to_string(), Value::Array(message_ids));
    }
    if let Some(flags) = text(n, "flagNames") {
        let flags: Vec<Value> = flags.split_whitespace().map(|f| json!(f)).collect();
        n.insert("flags".to_string(), Value::Array(flags));
    }
    if decoded_message_fields(n) {
        return;
    }
    if let Some(parsed) = text(n, "vnd.cmu.envelope").and_then(envelope::parse) {
        if let Some(subject) = parsed.subject {
            n.insert("subject".to_string(), json!(subject));
        }
        for (key, list) in [
            ("from", parsed.from),
            ("to", parsed.to),
            ("cc", parsed.cc),
            ("bcc", parsed.bcc),
        ] {
            if !list.is_empty() {
                n.insert(key.to_string(), json!(list));
            }
        }
        if let Some(id) = parsed.message_id {
            n.insert("message_id".to_string(), json!(id));
        }
        if let Some(date) = parsed.date {
            n.insert("date".to_string(), json!(date));
        }
        n.insert("message_fields_from".to_string(), json!("envelope"));
    }
}

/// The headers the collector read (`messageHeaders.<uid>`, bonnie-mail's keyed form) of the
/// record's message: its first UID's, or the only message's.
fn message_headers(n: &Object) -> Option<&Object> {
    let all = n.get("messageHeaders")?.as_object()?;
    let first_uid = n
        .get("uids")
        .and_then(Value::as_array)
        .and_then(|uids| uids.first())
        .and_then(Value::as_u64);
    match first_uid.and_then(|uid| all.get(&uid.to_string())) {
        Some(headers) => headers.as_object(),
        None if all.len() == 1 => all.values().next()?.as_object(),
        None => None,
    }
}

/// Subject, From, To, Cc, Bcc, Date and Message-ID from the message's own headers; false when
/// the record holds none. `message_fields_from` says where they came from.
fn decoded_message_fields(n: &mut Object) -> bool {
    let Some(headers) = message_headers(n).cloned() else {
        return false;
    };
    let field = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    // A field given twice is a list; the record keeps its first value.
    let first_text = |name: &str| match field(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => list.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    for (key, name) in [
        ("subject", "Subject"),
        ("date", "Date"),
        ("message_id", "Message-ID"),
    ] {
        match first_text(name) {
            Some(value) => n.insert(key.to_string(), json!(value)),
            None => n.remove(key),
        };
    }
    for (key, name) in [("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")] {
        match field(name) {
            Some(Value::Array(list)) if !list.is_empty() => {
                n.insert(key.to_string(), Value::Array(list.clone()));
            }
            _ => {
                n.remove(key);
            }
        }
    }
    n.insert("message_fields_from".to_string(), json!("message"));
    true
}

/// The folder's ACL (`vnd.cmu.mailboxACL`) as an object, and the change an AclChange made.
fn acl_fields(n: &mut Object, event: &str) {
    if let Some(list) = text(n, "vnd.cmu.mailboxACL") {
        let map: Object = acl::parse(list)
            .into_iter()
            .map(|(subject, rights)| (subject, json!(rights)))
            .collect();
        n.insert("mailbox_acl".to_string(), Value::Object(map));
    }
    copy_text(n, "aclSubject", "acl_subject");
    if event == "AclChange" {
        match text(n, "aclRights") {
            Some(rights) => {
                n.insert("acl_rights".to_string(), json!(rights));
            }
            // DELETEACL sends no rights.
            None => {
                n.insert("acl_removed".to_string(), json!(true));
            }
        }
    }
}

/// A job's notification as the object handlers work on, or the outcome that rejects it (it is
/// not a JSON object).
pub fn from_notification(
    notification: &str,
) -> Result<Object, bonnie_plugin_api::handler::HandlerOutcome> {
    match serde_json::from_str(notification) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(bonnie_plugin_api::handler::HandlerOutcome::rejected(
            "the notification is not a JSON object",
        )),
    }
}

/// The UIDs a record lists under `field` (`uids`, `old_uids`), none when it lists none.
pub fn uid_list(n: &Object, field: &str) -> Vec<u64> {
    n.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// The record's event time in ms since the epoch.
pub fn event_ms(n: &Object) -> Option<i64> {
    text(n, "@timestamp").and_then(time::parse_rfc3339_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> Object {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_message_append_gets_its_fields_and_keeps_cyrus_fields() {
        let mut n = object(
            r#"{"event":"MessageAppend","timestamp":"2026-11-28T17:13:37.778Z","mailboxID":"umlq6xbovdfdid2o1v10vpur","uri":"imap://cyrus-lab.example.org/user/john.doe/Calendar%40example.org;UIDVALIDITY=1795886003/;UID=1","vnd.cmu.midset":["NIL"],"user":"john.doe@example.org","messageSize":2405,"flagNames":"\\seen $Label1"}"#,
        );
        normalize(&mut n, 0);
        assert_eq!(n["@timestamp"], "2026-11-28T17:13:37.778Z");
        assert_eq!(n["folder_uniqueid"], "umlq6xbovdfdid2o1v10vpur");
        assert_eq!(n["folder"], "user/john.doe/Calendar@example.org");
        assert_eq!(n["folder_name"], "Calendar");
        assert_eq!(n["uids"], json!([1]));
        assert_eq!(n["uidvalidity"], 1_795_886_003);
        assert!(n.get("message_ids").is_none(), "NIL is not a Message-ID");
        assert_eq!(n["flags"], json!(["\\seen", "$Label1"]));
        assert_eq!(n["message_size"], 2405);
        assert_eq!(
            n["mailboxID"], "umlq6xbovdfdid2o1v10vpur",
            "the Cyrus field stays"
        );
        let once = n.clone();
        normalize(&mut n, 0);
        assert_eq!(n, once, "normalizing twice changes nothing");
    }

    #[test]
    fn a_delivery_is_attributed_to_its_recipient() {
        // /work/shared/reference/cyrus/events/MessageNew-1.json, an LMTP delivery.
        let captured = object(
            r#"{"event":"MessageNew","timestamp":"2026-11-28T17:13:52.491Z","service":"lmtp","mailboxID":"wrp915vo4ftuwc6ncu10wvjw","uri":"imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=1795885999/;UID=5","user":"john.doe@example.org"}"#,
        );
        for user in [None, Some(""), Some("john.doe@example.org")] {
            let mut n = captured.clone();
            match user {
                None => n.remove("user"),
                Some(user) => n.insert("user".into(), json!(user)),
            };
            normalize(&mut n, 0);
            assert_eq!(n["delivery"], true);
            assert_eq!(n["recipient"], "john.doe@example.org");
            assert_eq!(n["user"], "john.doe@example.org", "{user:?}");
            assert_eq!(
                n.get("user_inferred").is_some(),
                user.is_none_or(str::is_empty),
                "{user:?}"
            );
            assert_eq!(
                n.get("cyrus_user"),
                (user == Some("")).then(|| json!("")).as_ref(),
                "what Cyrus sent stays as evidence"
            );
            let once = n.clone();
            normalize(&mut n, 0);
            assert_eq!(n, once, "normalizing twice changes nothing");
        }
        let mut append = captured.clone();
        append.insert("event".into(), json!("MessageAppend"));
        normalize(&mut append, 0);
        assert!(append.get("delivery").is_none(), "an APPEND is no delivery");
    }

    #[test]
    fn the_message_itself_beats_the_masked_envelope_for_every_kind_of_event() {
        // Cyrus 3.6 masks 8-bit header bytes as X in vnd.cmu.envelope.
        let envelope = r#"("Tue, 1 Dec 2026 09:15:00 +0100" "GrXXe aus KXln" (("JXrg" NIL "joerg" "example.org")) NIL NIL (("John Doe" NIL "john.doe" "example.org")) NIL NIL NIL "<x@example.org>")"#;
        let message = "Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\nFrom: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.org>\r\nTo: Projekt: John Doe <john.doe@example.org>;\r\nTo: Jane <jane@example.org>\r\nCc: =?KOI8-R?B?7dPUydPMwdc=?= <m@example.org>\r\nDate: Tue, 1 Dec 2026 09:15:00 +0100\r\nMessage-ID: <x@example.org>\r\n\r\nbody\r\n";
        let headers = bonnie_mail::headers(message.as_bytes());
        for event in ["MessageNew", "MessageAppend", "vnd.cmu.MessageCopy"] {
            let mut n = object(&format!(
                r#"{{"event":"{event}","timestamp":"2026-12-01T08:15:01.000Z","uri":"imap://h/user/john.doe%40example.org;UIDVALIDITY=1/;UID=7","vnd.cmu.envelope":{}}}"#,
                json!(envelope)
            ));
            normalize(&mut n, 0);
            assert_eq!(
                n["subject"], "GrXXe aus KXln",
                "before the collector: the envelope"
            );
            assert_eq!(n["message_fields_from"], "envelope");
            n.insert("messageHeaders".into(), json!({ "7": headers }));
            normalize(&mut n, 0);
            assert_eq!(n["subject"], "Grüße aus Köln", "{event}");
            assert_eq!(n["from"], json!(["Jörg <joerg@example.org>"]));
            assert_eq!(
                n["to"],
                json!(["John Doe <john.doe@example.org>", "Jane <jane@example.org>"])
            );
            assert_eq!(n["cc"], json!(["Мстислав <m@example.org>"]));
            assert_eq!(n["date"], "2026-12-01T08:15:00Z");
            assert_eq!(n["message_id"], "<x@example.org>");
            assert_eq!(n["message_fields_from"], "message");
            assert_eq!(n["vnd.cmu.envelope"], envelope, "what Cyrus sent stays");
            let once = n.clone();
            normalize(&mut n, 0);
            assert_eq!(n, once, "normalizing twice changes nothing");
        }
    }

    #[test]
    fn unknown_events_and_missing_times_are_flagged() {
        let mut n = object(r#"{"event":"CalendarAlarm","user":"x"}"#);
        normalize(&mut n, 1_000);
        assert_eq!(n["unknown_event"], true);
        assert_eq!(n["timestamp_missing"], true);
        assert_eq!(n["@timestamp"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn a_batch_of_log_lines_is_a_known_event() {
        let mut n = object(
            r#"{"event":"vnd.bonnie.LogLines","timestamp":"2026-12-01T10:00:00.000Z","lines":[]}"#,
        );
        normalize(&mut n, 0);
        assert!(n.get("unknown_event").is_none(), "{n:?}");
    }

    #[test]
    fn bad_uid_sets_are_noted_not_fatal() {
        let mut n =
            object(r#"{"event":"FlagsSet","timestamp":"2026-11-28T17:13:43.903Z","uidset":"1:x"}"#);
        normalize(&mut n, 0);
        assert!(n["uids_error"].as_str().unwrap().contains("not a UID set"));
    }
}
