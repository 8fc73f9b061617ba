//! `bonnie trace <message-id|queue-id|address>`: a message's way through the mail system,
//! from the Postfix facts the `postfix` handler keeps (`postfix-queues`, read through the
//! storage plugin's query interface), stitched with bonnie-maillog: every queue file on every
//! host linked by `queued as` and by bounce notifications, each recipient's outcome, and the
//! archive's log entries of the message (its MessageNew, joined by Cyrus's LMTP `SESSIONID`
//! or its Message-ID, with the folder it landed in, and what happened to it there).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::Context as _;
use bonnie_core::Config;
use bonnie_maillog::{
    Delivery, QueueFacts, QueueId, QueueKey, Stitcher, Timed, Trace, Via,
    store::{self, QueueRecord},
};
use bonnie_plugin_api::storage::{RecordQuery, StorageClient};
use jiff::{Timestamp, Zoned};
use serde_json::{Value, json};

/// Most queue files one trace reads: short queue IDs repeat, and a look-up by a busy
/// address could otherwise read the whole collection.
const MAX_QUEUE_FILES: usize = 10_000;

/// What to trace.
pub struct TraceArgs<'a> {
    /// A Message-ID, a queue ID or an address.
    pub what: &'a str,
    /// Only messages first seen at or after this: an RFC 3339 instant, a date, or a span
    /// before now such as `24h` or `7d`.
    pub since: Option<&'a str>,
    /// JSON instead of text.
    pub json: bool,
}

/// Prints the traces of `args.what`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &TraceArgs<'_>,
) -> anyhow::Result<()> {
    let since = args.since.map(parse_since).transpose()?;
    let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
    let storage = StorageClient::new(storage);
    let traces = traces(&storage, args.what, since)?;
    let found: Vec<Value> = traces
        .iter()
        .map(|trace| {
            let archive = archive_entries(&storage, trace)?;
            Ok(json!({"trace": trace, "archive": archive}))
        })
        .collect::<anyhow::Result<_>>()?;
    let params = json!({ "what": args.what, "since": args.since });
    auditor.read("trace", params, found.len() as u64)?;
    if args.json {
        println!("{}", Value::Array(found));
        return Ok(());
    }
    if found.is_empty() {
        println!("No message found for {:?}.", args.what);
    }
    for (trace, entry) in traces.iter().zip(&found) {
        print!(
            "{}",
            render(
                trace,
                entry["archive"].as_array().map_or(&[][..], Vec::as_slice)
            )
        );
    }
    Ok(())
}

/// `--since`: an instant, a date (its midnight in UTC), or a span before now.
pub(crate) fn parse_since(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return Ok(date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    let span: jiff::Span = text.parse().with_context(|| {
        format!("--since {text:?} is not an instant (RFC 3339), a date or a span such as 24h or 7d")
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
                entries.insert(
                    record.key.to_string(),
                    json!({
                        "job": record.key.as_str(),
                        "event": entry["event"],
                        "time": entry["@timestamp"],
                        "user": entry["user"],
                        "folder": entry["folder_name"],
                        "uri": entry["uri"],
                        "session_id": session,
                        "joined_by": if same_session { "lmtp_session" } else { "message_id" },
                    }),
                );
            }
        }
    }
    let mut entries: Vec<Value> = entries.into_values().collect();
    entries.sort_by_key(|e| e["time"].as_str().unwrap_or_default().to_string());
    Ok(entries)
}

/// A trace as text, one block per message.
fn render(trace: &Trace, archive: &[Value]) -> String {
    let mut out = format!(
        "Message {} from <{}>\n",
        trace.message_id.as_deref().unwrap_or("(no Message-ID)"),
        trace.sender.as_deref().unwrap_or("")
    );
    for hop in &trace.hops {
        let key = &hop.key;
        out.push_str(&format!(
            "  {} {} {}  {}  {}\n",
            key.host,
            key.instance,
            key.queue_id,
            stamp(hop.facts.first_seen),
            via(&hop.via)
        ));
        let facts = &hop.facts;
        if let Some(client) = &facts.client {
            let login = client
                .fact
                .sasl_username
                .as_deref()
                .map(|u| format!(", login {u}"));
            out.push_str(&format!(
                "    from client {}{}\n",
                client.fact.client,
                login.unwrap_or_default()
            ));
        }
        if let Some(envelope) = &facts.envelope {
            out.push_str(&format!(
                "    sender <{}>, {} bytes, {} recipient(s)\n",
                envelope.sender, envelope.size, envelope.nrcpt
            ));
        }
        for (recipient, attempts) in hop.recipients() {
            for attempt in attempts {
                out.push_str(&format!("    to <{recipient}>  {}\n", delivery(attempt)));
            }
        }
        for notification in &facts.notifications {
            out.push_str(&format!(
                "    {}  {:?} queued as {}\n",
                stamp(notification.at),
                notification.fact.kind,
                notification.fact.notification_id
            ));
        }
        for verdict in &facts.verdicts {
            out.push_str(&format!(
                "    {}  {} by {:?}: {}\n",
                stamp(verdict.at),
                verdict.fact.action,
                verdict.fact.source,
                verdict.fact.text
            ));
        }
        if let Some(expired) = &facts.expired {
            out.push_str(&format!(
                "    {}  expired, returned to <{}>\n",
                stamp(expired.at),
                expired.fact.sender
            ));
        }
        if let Some(removed) = facts.removed {
            out.push_str(&format!(
                "    {}  removed from the queue\n",
                stamp(Some(removed))
            ));
        }
    }
    for entry in archive {
        let text = |field: &str| entry[field].as_str().unwrap_or("-").to_string();
        out.push_str(&format!(
            "  archive: {}  {}  {} in {}  (session {}, by {})\n",
            text("time"),
            text("event"),
            text("user"),
            text("folder"),
            text("session_id"),
            text("joined_by")
        ));
    }
    out
}

fn via(via: &Via) -> String {
    match via {
        Via::Origin => "origin".to_string(),
        Via::Relay { from, relay } => {
            format!(
                "relayed from {}/{}/{} through {relay}",
                from.host, from.instance, from.queue_id
            )
        }
        Via::Notification { of, kind } => {
            format!("{kind:?} about {}/{}/{}", of.host, of.instance, of.queue_id)
        }
    }
}

fn delivery(attempt: &Timed<Delivery>) -> String {
    let d = &attempt.fact;
    let status = serde_json::to_value(&d.status)
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", d.status));
    let mut text = format!(
        "{}  {status}  relay={} dsn={}",
        stamp(attempt.at),
        d.relay,
        d.dsn
    );
    if let Some(delay) = d.delay_us {
        text.push_str(&format!(" delay={:.2}s", delay as f64 / 1e6));
    }
    if let Some(delays) = &d.delays {
        text.push_str(&format!(
            " delays={:.2}/{:.2}/{:.2}/{:.2}",
            delays.before_qmgr_us as f64 / 1e6,
            delays.in_qmgr_us as f64 / 1e6,
            delays.connect_us as f64 / 1e6,
            delays.transmit_us as f64 / 1e6
        ));
    }
    if let Some(orig) = &d.orig_recipient {
        text.push_str(&format!(" orig_to=<{orig}>"));
    }
    if let Some(session) = &d.lmtp_session_id {
        text.push_str(&format!(" SESSIONID=<{session}>"));
    }
    if let Some(next) = &d.queued_as {
        text.push_str(&format!(" queued as {next}"));
    }
    text.push_str(&format!(" ({})", d.reply));
    text
}

fn stamp(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_string(), |t| t.to_string())
}
