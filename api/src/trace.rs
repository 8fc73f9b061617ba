//! A message's way through the mail system, read from the Postfix facts the `postfix`
//! handler keeps (`postfix-queues`, through the storage plugin's query interface) and stitched
//! with bonnie-maillog: every queue file on every host linked by `queued as` and by bounce
//! notifications, each recipient's outcome, and the archive's log entries of the message (its
//! MessageNew, joined by Cyrus's LMTP `SESSIONID` or its Message-ID, with the folder it landed
//! in, and what happened to it there: read, flagged, moved, deleted, as the message's audit
//! trail in `message-history` has it). The one read side of `bonnie trace` and of
//! bonnie-api's `trace.find`, so both answer the same traces.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::Context as _;
use bonnie_maillog::{
    QueueFacts, QueueId, QueueKey, Stitcher, Trace,
    store::{self, QueueRecord},
};
use bonnie_model::mail_history;
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use jiff::{Timestamp, Zoned};
use serde_json::{Value, json};

/// Most queue files one trace reads: short queue IDs repeat, and a look-up by a busy
/// address could otherwise read the whole collection.
const MAX_QUEUE_FILES: usize = 10_000;

/// One message's trace and the archive's entries joined to it.
pub struct Found {
    /// Its queue files, linked and stitched.
    pub trace: Trace,
    /// The archive's log entries of it, oldest first; each delivery into a folder (a
    /// MessageNew) with its `mailbox_history`, what happened to the message there after.
    pub archive: Vec<Value>,
}

impl Found {
    /// As `bonnie trace --json` prints it and `trace.find` answers it.
    pub fn to_json(&self) -> Value {
        json!({"trace": self.trace, "archive": self.archive})
    }
}

/// The messages `what` (a Message-ID, a queue ID or an address) names, first seen at or after
/// `since`, oldest first, each with its archive entries.
pub fn find(
    storage: &StorageClient,
    what: &str,
    since: Option<Timestamp>,
) -> anyhow::Result<Vec<Found>> {
    traces(storage, what, since)?
        .into_iter()
        .map(|trace| {
            let archive = archive_entries(storage, &trace)?;
            Ok(Found { trace, archive })
        })
        .collect()
}

/// `since`: an instant (RFC 3339), a date (its midnight in UTC), or a span before now such as
/// `24h` or `7d`.
pub fn parse_since(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return Ok(date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    let span: jiff::Span = text.parse().with_context(|| {
        format!("since {text:?} is not an instant (RFC 3339), a date or a span such as 24h or 7d")
    })?;
    Ok(Zoned::now().checked_sub(span)?.timestamp())
}

/// Every record of `collection` with `field = value`.
fn records_with(
    storage: &StorageClient,
    field: &str,
    value: &str,
    since: Option<Timestamp>,
) -> anyhow::Result<Vec<QueueRecord>> {
    let mut query = RecordQuery::all_with(store::QUEUES, field, value);
    query.from_ms = since.map(|s| s.as_millisecond());
    storage
        .query(&query)
        .with_context(|| format!("cannot query {} by {field}", store::QUEUES))?
        .into_iter()
        .map(|record| {
            serde_json::from_str(record.body.as_str()).with_context(|| {
                format!(
                    "the record {}/{} is not a queue file's facts",
                    store::QUEUES,
                    record.key
                )
            })
        })
        .collect()
}

/// The traces of the messages `what` names, each once, oldest first.
fn traces(
    storage: &StorageClient,
    what: &str,
    since: Option<Timestamp>,
) -> anyhow::Result<Vec<Trace>> {
    let mut start = records_with(
        storage,
        store::BY_MESSAGE_ID,
        store::bare_message_id(what),
        since,
    )?;
    if QueueId::parse(what).is_some() {
        start.extend(records_with(storage, store::BY_QUEUE_ID, what, since)?);
    }
    start.extend(records_with(
        storage,
        store::BY_ADDRESS,
        &what.to_lowercase(),
        since,
    )?);
    let starts: BTreeSet<QueueKey> = start.iter().map(|r| r.key.clone()).collect();

    // The queue files linked to them, either way, whenever they were seen.
    let mut known: BTreeMap<QueueKey, QueueFacts> = BTreeMap::new();
    let mut queue: VecDeque<QueueRecord> = start.into();
    while let Some(record) = queue.pop_front() {
        if known.contains_key(&record.key) || known.len() >= MAX_QUEUE_FILES {
            continue;
        }
        let mut linked = Vec::new();
        let id = record.key.queue_id.to_string();
        linked.extend(records_with(storage, store::BY_QUEUED_AS, &id, None)?);
        linked.extend(records_with(storage, store::BY_NOTIFICATION, &id, None)?);
        let next = record
            .facts
            .deliveries
            .iter()
            .filter_map(|d| d.fact.queued_as.as_ref());
        let notified = record
            .facts
            .notifications
            .iter()
            .map(|n| &n.fact.notification_id);
        for next in next.chain(notified).collect::<BTreeSet<_>>() {
            linked.extend(records_with(
                storage,
                store::BY_QUEUE_ID,
                &next.to_string(),
                None,
            )?);
        }
        known.insert(record.key, record.facts);
        queue.extend(linked.into_iter().filter(|r| !known.contains_key(&r.key)));
    }

    let mut stitcher = Stitcher::new();
    for (key, facts) in known {
        stitcher.merge_queue(key, facts);
    }
    let mut seen = BTreeSet::new();
    let mut traces = Vec::new();
    for key in &starts {
        if seen.contains(key) {
            continue;
        }
        if let Some(trace) = stitcher.trace(key) {
            seen.extend(trace.hops.iter().map(|hop| hop.key.clone()));
            traces.push(trace);
        }
    }
    traces.sort_by_key(|t| t.hops.first().and_then(|h| h.facts.first_seen));
    Ok(traces)
}

/// The archive's log entries of the message and of the notifications about it: those
/// found by a hop's Message-ID whose Message-ID or session is one of the trace's (the
/// MessageNew of each LMTP delivery into Cyrus, and what happened to the message after),
/// oldest first.
fn archive_entries(storage: &StorageClient, trace: &Trace) -> anyhow::Result<Vec<Value>> {
    let sessions: BTreeSet<&str> = trace.lmtp_session_ids().into_iter().collect();
    let message_ids: BTreeSet<&str> = trace
        .hops
        .iter()
        .filter_map(|hop| hop.facts.message_id.as_deref())
        .map(store::bare_message_id)
        .collect();
    let mut entries = BTreeMap::new();
    for message_id in &message_ids {
        let query = RecordQuery {
            collection: "log".to_string(),
            text: Some((*message_id).to_string()),
            all: true,
            ..RecordQuery::default()
        };
        for record in storage
            .query(&query)
            .context("cannot search the archive's log")?
        {
            let Ok(entry) = serde_json::from_str::<Value>(record.body.as_str()) else {
                continue;
            };
            let ids = entry["message_ids"].as_array().cloned().unwrap_or_default();
            let same_message = ids
                .iter()
                .chain(std::iter::once(&entry["message_id"]))
                .filter_map(Value::as_str)
                .any(|id| message_ids.contains(store::bare_message_id(id)));
            let session = entry["session_id"]
                .as_str()
                .or_else(|| entry["vnd.cmu.sessionId"].as_str());
            let same_session = session.is_some_and(|s| sessions.contains(s));
            if same_message || same_session {
                let history = match entry["event"].as_str() {
                    Some("MessageNew") => Some(mailbox_history(storage, &entry)?),
                    _ => None,
                };
                let mut joined = json!({
                        "job": record.key.as_str(),
                        "event": entry["event"],
                        "time": entry["@timestamp"],
                        "user": entry["user"],
                        "folder": entry["folder_name"],
                        "uri": entry["uri"],
                        "session_id": session,
                        "joined_by": if same_session { "lmtp_session" } else { "message_id" },
                });
                if let Some(history) = history {
                    joined["mailbox_history"] = Value::Array(history);
                }
                entries.insert(record.key.to_string(), joined);
            }
        }
    }
    let mut entries: Vec<Value> = entries.into_values().collect();
    entries.sort_by_key(|e| e["time"].as_str().unwrap_or_default().to_string());
    Ok(entries)
}

/// What happened to a delivered message from its MessageNew `entry` on, oldest first, from
/// its audit trail (kept by the `changelog` handler; empty without it): each event with its
/// time, what it did (read, flagged, moved to a folder, deleted, expunged), where and by whom.
fn mailbox_history(storage: &StorageClient, entry: &Value) -> anyhow::Result<Vec<Value>> {
    let Some(folder) = entry["folder"].as_str() else {
        return Ok(Vec::new());
    };
    let since = entry["@timestamp"]
        .as_str()
        .and_then(bonnie_core::time::parse_rfc3339_ms)
        .unwrap_or(i64::MIN);
    let mut history = Vec::new();
    for uid in entry["uids"].as_array().into_iter().flatten() {
        let Some(uid) = uid.as_u64() else { continue };
        let trail = mail_history::onward(storage, folder, uid, since).map_err(|e| {
            anyhow::anyhow!("cannot read the audit trail of {folder} UID {uid}: {e}")
        })?;
        history.extend(trail.iter().map(|step| {
            json!({
                "time": bonnie_core::time::format_rfc3339_ms(step.time_ms),
                "event": step.event,
                "what": what_happened(step),
                "folder": crate::access::utf8_name(&step.folder),
                "uid": step.uid,
                "by": step.login,
            })
        }));
    }
    Ok(history)
}

/// A trail entry in a helpdesk's words.
fn what_happened(step: &mail_history::Entry) -> String {
    let flags = |set: bool| -> String {
        step.flags
            .iter()
            .map(|flag| match (flag.to_ascii_lowercase().as_str(), set) {
                ("\\seen", true) => "read".to_string(),
                ("\\seen", false) => "unread".to_string(),
                ("\\flagged", true) => "flagged".to_string(),
                ("\\flagged", false) => "unflagged".to_string(),
                ("\\deleted", true) => "deleted".to_string(),
                ("\\deleted", false) => "undeleted".to_string(),
                (_, true) => format!("flag {flag} set"),
                (_, false) => format!("flag {flag} cleared"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let into = crate::access::utf8_name(&step.folder);
    match step.event.as_str() {
        "MessageNew" => format!("arrived in {into}"),
        "MessageAppend" => format!("appended to {into}"),
        "MessageCopy" | "vnd.cmu.MessageCopy" => format!("copied to {into}"),
        "MessageMove" | "vnd.cmu.MessageMove" => format!("moved to {into}"),
        "MessageRead" => "read".to_string(),
        "MessageTrash" => "deleted".to_string(),
        "MessageExpunge" => "expunged".to_string(),
        "MessageExpire" => "expired".to_string(),
        "FlagsSet" => flags(true),
        "FlagsClear" => flags(false),
        other => other.to_string(),
    }
}
