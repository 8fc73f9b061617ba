//! `bonnie trace <message-id|queue-id|address>`: a message's way through the mail system as
//! [`bonnie_api::trace`] reads it (the same read side as bonnie-api's `trace.find`), printed
//! as text or JSON.

use std::sync::{Arc, atomic::AtomicBool};

use bonnie_api::trace::Found;
use bonnie_core::Config;
use bonnie_maillog::{Delivery, Timed, Trace, Via};
use bonnie_plugin_api::storage::StorageClient;
use jiff::Timestamp;
use serde_json::{Value, json};

/// `--since` of `bonnie audit` takes the same forms.
pub(crate) use bonnie_api::trace::parse_since;

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
    let found = bonnie_api::trace::find(&storage, args.what, since)?;
    let params = json!({ "what": args.what, "since": args.since });
    auditor.read("trace", params, found.len() as u64)?;
    if args.json {
        println!(
            "{}",
            Value::Array(found.iter().map(Found::to_json).collect())
        );
        return Ok(());
    }
    if found.is_empty() {
        println!("No message found for {:?}.", args.what);
    }
    for Found { trace, archive } in &found {
        print!("{}", render(trace, archive));
    }
    Ok(())
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
        // What happened to it in the mailbox after: read, moved, deleted.
        for step in entry["mailbox_history"].as_array().into_iter().flatten() {
            let text = |field: &str| step[field].as_str().unwrap_or("-").to_string();
            out.push_str(&format!(
                "    {}  {}  ({} UID {}, by {})\n",
                text("time"),
                text("what"),
                text("folder"),
                step["uid"],
                text("by")
            ));
        }
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
