//! Postfix's log messages read into [`Event`]s. The forms are those Postfix's source writes:
//! `global/log_adhoc.c` (deliveries), `global/opened.c` and `qmgr/qmgr_active.c` (qmgr),
//! `cleanup/cleanup_message.c` and `cleanup_milter.c`, `smtpd/smtpd.c`, `smtpd_sasl_glue.c`
//! and `smtpd_check.c`, `pickup/pickup.c`, `bounce/`, `postscreen/`. A message of any other
//! form is `Unknown`; none makes the parser fail.

use crate::event::{
    ClientInfo, Delays, Delivery, Event, NotificationKind, Program, Severity, Status, Verdict,
    VerdictSource,
};
use crate::queue_id::QueueId;

/// Daemons and commands of Postfix that log: a tag whose last part is none of them is not
/// Postfix's (`dovecot`, `opendkim`, a `postfix-like/thing`).
const POSTFIX_DAEMONS: &[&str] = &[
    "anvil",
    "bounce",
    "cleanup",
    "discard",
    "dnsblog",
    "error",
    "flush",
    "lmtp",
    "local",
    "master",
    "oqmgr",
    "pickup",
    "pipe",
    "postalias",
    "postcat",
    "postconf",
    "postdrop",
    "postfix",
    "postfix-script",
    "postkick",
    "postlock",
    "postlog",
    "postlogd",
    "postmap",
    "postmulti",
    "postqueue",
    "postscreen",
    "postsuper",
    "proxymap",
    "qmgr",
    "qmqpd",
    "retry",
    "scache",
    "sendmail",
    "showq",
    "smtp",
    "smtpd",
    "spawn",
    "tlsmgr",
    "tlsproxy",
    "trivial-rewrite",
    "verify",
    "virtual",
];

/// The instance and daemon of a syslog tag, if it is a Postfix program's.
pub fn parse_program(tag: &str) -> Option<Program> {
    let (instance, rest) = tag.split_once('/')?;
    let daemon = rest.rsplit('/').next().unwrap_or(rest);
    if instance.is_empty() || !POSTFIX_DAEMONS.contains(&daemon) {
        return None;
    }
    Some(Program {
        instance: instance.to_owned(),
        daemon: daemon.to_owned(),
    })
}

/// What `message`, logged by `program`, says.
pub fn parse_message(program: &Program, message: &str) -> Event {
    let daemon = program.daemon.as_str();
    let parsed = match split_queue_id(message) {
        Some((Prefix::Queue(queue_id), body)) => parse_queued(daemon, queue_id, body),
        Some((Prefix::NoQueue, body)) => parse_verdict(daemon, None, body),
        None => parse_unqueued(daemon, message),
    };
    parsed.unwrap_or_else(|| Event::Unknown {
        text: message.to_owned(),
    })
}

enum Prefix {
    Queue(QueueId),
    NoQueue,
}

/// `QID: rest` or `NOQUEUE: rest`.
fn split_queue_id(message: &str) -> Option<(Prefix, &str)> {
    let (head, body) = message.split_once(": ")?;
    if head == "NOQUEUE" {
        return Some((Prefix::NoQueue, body));
    }
    QueueId::parse(head).map(|id| (Prefix::Queue(id), body))
}

fn parse_queued(daemon: &str, queue_id: QueueId, body: &str) -> Option<Event> {
    if let Some(rest) = body.strip_prefix("to=<") {
        let delivery = parse_delivery(rest)?;
        return Some(Event::Delivery { queue_id, delivery });
    }
    if let Some(rest) = body.strip_prefix("client=") {
        return Some(Event::Client {
            queue_id,
            client: parse_client(rest),
        });
    }
    if let Some(rest) = body.strip_prefix("message-id=") {
        return Some(Event::MessageId {
            queue_id,
            message_id: rest.trim().to_owned(),
        });
    }
    if let Some(rest) = body.strip_prefix("from=<") {
        return parse_qmgr_from(queue_id, rest);
    }
    if body == "removed" {
        return Some(Event::Removed { queue_id });
    }
    if let Some(rest) = body.strip_prefix("uid=") {
        return parse_pickup(queue_id, rest);
    }
    if let Some((kind, rest)) = body.split_once(" notification: ") {
        return parse_notification(queue_id, kind, rest);
    }
    if let Some(event) = parse_verdict(daemon, Some(queue_id.clone()), body) {
        return Some(event);
    }
    parse_diagnostic(Some(queue_id), body)
}

fn parse_unqueued(daemon: &str, message: &str) -> Option<Event> {
    if let Some(event) = parse_diagnostic(None, message) {
        return Some(event);
    }
    match daemon {
        "smtpd" => {
            if let Some(client) = message.strip_prefix("connect from ") {
                return Some(Event::Connect {
                    client: client.to_owned(),
                });
            }
            let rest = message.strip_prefix("disconnect from ")?;
            let (client, commands) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Event::Disconnect {
                client: client.to_owned(),
                commands: commands.to_owned(),
            })
        }
        "postscreen" => parse_postscreen(message),
        _ => None,
    }
}

fn parse_postscreen(message: &str) -> Option<Event> {
    if let Some(rest) = message.strip_prefix("CONNECT from ") {
        let client = rest.split_once(" to ").map_or(rest, |(client, _)| client);
        return Some(Event::PostscreenConnect {
            client: client.to_owned(),
        });
    }
    if let Some(rest) = message.strip_prefix("PASS ") {
        let (age, client) = rest.split_once(' ')?;
        let new = match age {
            "NEW" => true,
            "OLD" => false,
            _ => return None,
        };
        return Some(Event::PostscreenPass {
            client: client.to_owned(),
            new,
        });
    }
    let rest = message.strip_prefix("DNSBL rank ")?;
    let (rank, client) = rest.split_once(" for ")?;
    Some(Event::PostscreenDnsbl {
        client: client.to_owned(),
        rank: rank.parse().ok()?,
    })
}

/// `warning: text`, also `warning: QID: text` (msg_warn with the ID in its text) and
/// `QID: warning: text`.
fn parse_diagnostic(queue_id: Option<QueueId>, body: &str) -> Option<Event> {
    let (word, text) = body.split_once(": ")?;
    let severity = match word {
        "warning" => Severity::Warning,
        "error" => Severity::Error,
        "fatal" => Severity::Fatal,
        "panic" => Severity::Panic,
        _ => return None,
    };
    let (queue_id, text) = match (queue_id, split_queue_id(text)) {
        (Some(id), _) => (Some(id), text),
        (None, Some((Prefix::Queue(id), rest))) => (Some(id), rest),
        (None, _) => (None, text),
    };
    Some(Event::Diagnostic {
        severity,
        queue_id,
        text: text.to_owned(),
    })
}

/// `client=name[addr], sasl_method=PLAIN, sasl_username=alice, ...`.
fn parse_client(rest: &str) -> ClientInfo {
    let mut parts = rest.split(", ");
    let client = parts.next().unwrap_or_default().to_owned();
    let mut line = ClientInfo {
        client,
        sasl_method: None,
        sasl_username: None,
        sasl_sender: None,
        orig_queue_id: None,
        orig_client: None,
    };
    for part in parts {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let slot = match key {
            "sasl_method" => &mut line.sasl_method,
            "sasl_username" => &mut line.sasl_username,
            "sasl_sender" => &mut line.sasl_sender,
            "orig_queue_id" => &mut line.orig_queue_id,
            "orig_client" => &mut line.orig_client,
            _ => continue,
        };
        *slot = Some(value.to_owned());
    }
    line
}

/// `uid=N from=<sender>` (and ` orig_id=...` for requeued mail).
fn parse_pickup(queue_id: QueueId, rest: &str) -> Option<Event> {
    let (uid, rest) = rest.split_once(" from=<")?;
    let (sender, _) = take_angle(rest)?;
    Some(Event::Pickup {
        queue_id,
        uid: uid.parse().ok()?,
        sender: sender.to_owned(),
    })
}

/// qmgr's `from=<s>, size=N, nrcpt=N (queue active)` or
/// `from=<s>, status=expired, returned to sender`.
fn parse_qmgr_from(queue_id: QueueId, rest: &str) -> Option<Event> {
    let (sender, rest) = take_angle(rest)?;
    let sender = sender.to_owned();
    if rest.starts_with(", status=expired") {
        return Some(Event::Expired { queue_id, sender });
    }
    let rest = rest.strip_prefix(", size=")?;
    let (size, rest) = rest.split_once(", nrcpt=")?;
    let nrcpt = rest.split(' ').next().unwrap_or(rest);
    Some(Event::Queued {
        queue_id,
        sender,
        size: size.parse().ok()?,
        nrcpt: nrcpt.parse().ok()?,
    })
}

/// `sender non-delivery notification: NEWQID` and its kin.
fn parse_notification(queue_id: QueueId, kind: &str, rest: &str) -> Option<Event> {
    let kind = match kind {
        "sender non-delivery" => NotificationKind::SenderNonDelivery,
        "sender delay" => NotificationKind::SenderDelay,
        "sender delivery status" => NotificationKind::SenderDeliveryStatus,
        "postmaster non-delivery" => NotificationKind::PostmasterNonDelivery,
        "postmaster delay" => NotificationKind::PostmasterDelay,
        _ => return None,
    };
    Some(Event::Notification {
        queue_id,
        kind,
        notification_id: QueueId::parse(rest.trim())?,
    })
}

/// `log_adhoc`: `to=<r>[, orig_to=<o>], relay=R[, conn_use=N], delay=D, delays=a/b/c/d
/// [, tls=...], dsn=X.Y.Z, status=S (reply)`; `rest` follows `to=<`.
fn parse_delivery(rest: &str) -> Option<Delivery> {
    let (recipient, mut rest) = take_angle(rest)?;
    let mut delivery = Delivery {
        recipient: recipient.to_owned(),
        orig_recipient: None,
        relay: String::new(),
        conn_use: None,
        delay_us: None,
        delays: None,
        dsn: String::new(),
        status: Status::Other(String::new()),
        reply: String::new(),
        queued_as: None,
        lmtp_session_id: None,
    };
    loop {
        rest = rest.strip_prefix(", ")?;
        if let Some(after) = rest.strip_prefix("orig_to=<") {
            let (orig, after) = take_angle(after)?;
            delivery.orig_recipient = Some(orig.to_owned());
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("status=") {
            let end = after.find([' ', ',']).unwrap_or(after.len());
            delivery.status = parse_status(&after[..end]);
            let reply = after[end..].trim_start_matches([' ', ',']);
            let reply = reply
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(reply);
            delivery.reply = reply.to_owned();
            delivery.queued_as = queued_as(reply);
            delivery.lmtp_session_id = lmtp_session_id(reply);
            return Some(delivery);
        }
        let end = rest.find(", ").unwrap_or(rest.len());
        let (key, value) = rest[..end].split_once('=')?;
        match key {
            "relay" => delivery.relay = value.to_owned(),
            "conn_use" => delivery.conn_use = value.parse().ok(),
            "delay" => delivery.delay_us = parse_seconds(value),
            "delays" => delivery.delays = parse_delays(value),
            "dsn" => delivery.dsn = value.to_owned(),
            _ => {}
        }
        rest = &rest[end..];
    }
}

fn parse_status(word: &str) -> Status {
    match word {
        "sent" => Status::Sent,
        "deferred" => Status::Deferred,
        "bounced" => Status::Bounced,
        "expired" => Status::Expired,
        "deliverable" => Status::Deliverable,
        "undeliverable" => Status::Undeliverable,
        other => Status::Other(other.to_owned()),
    }
}

/// The next hop's queue ID in a reply like `250 2.0.0 Ok: queued as 4Xk2Yz5mQnz9vG1`.
fn queued_as(reply: &str) -> Option<QueueId> {
    let (_, after) = reply.rsplit_once("queued as ")?;
    let end = after
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    QueueId::parse(&after[..end])
}

/// Cyrus lmtpd's `250 2.1.5 Ok SESSIONID=<cyrus-...>`.
fn lmtp_session_id(reply: &str) -> Option<String> {
    let (_, after) = reply.split_once("SESSIONID=<")?;
    let (session, _) = after.split_once('>')?;
    Some(session.to_owned())
}

/// `format_tv`'s seconds (`0.12`, `1.2`, `12`) in microseconds.
fn parse_seconds(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 12 || fraction.len() > 9 {
        return None;
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let micros = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    whole.checked_mul(1_000_000)?.checked_add(micros)
}

fn parse_delays(text: &str) -> Option<Delays> {
    let mut parts = text.split('/').map(parse_seconds);
    let delays = Delays {
        before_qmgr_us: parts.next()??,
        in_qmgr_us: parts.next()??,
        connect_us: parts.next()??,
        transmit_us: parts.next()??,
    };
    parts.next().is_none().then_some(delays)
}

/// A verdict: `action: STAGE from client: text; from=<s> to=<r> proto=P helo=<h>` (smtpd,
/// postscreen with `, ` between the fields, milters) or cleanup's
/// `action: header|body CONTENT from origin; from=<s> to=<r> proto=P helo=<h>: text`.
fn parse_verdict(daemon: &str, queue_id: Option<QueueId>, body: &str) -> Option<Event> {
    let (action, rest) = body.split_once(": ")?;
    if action.is_empty()
        || !action
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-')
    {
        return None;
    }
    let source = if action.starts_with("milter-") {
        VerdictSource::Milter
    } else if daemon == "postscreen" {
        VerdictSource::Postscreen
    } else if daemon == "cleanup" {
        VerdictSource::ContentCheck
    } else {
        VerdictSource::Smtpd
    };
    let verdict = if source == VerdictSource::ContentCheck {
        parse_content_check(action, rest)?
    } else {
        parse_whatsup(source, action, rest)?
    };
    Some(Event::Verdict { queue_id, verdict })
}

fn parse_whatsup(source: VerdictSource, action: &str, rest: &str) -> Option<Verdict> {
    let (stage, rest) = rest.split_once(" from ")?;
    if stage.contains(' ') {
        return None;
    }
    let (client, rest) = take_client(rest)?;
    let rest = rest.strip_prefix(": ")?;
    let fields_at = fields_start(rest)?;
    let mut verdict = Verdict {
        source,
        action: action.to_owned(),
        stage: stage.to_owned(),
        client: client.to_owned(),
        text: rest[..fields_at].to_owned(),
        sender: None,
        recipient: None,
        proto: None,
        helo: None,
    };
    parse_fields(&mut verdict, &rest[fields_at + 1..]);
    Some(verdict)
}

fn parse_content_check(action: &str, rest: &str) -> Option<Verdict> {
    if !(rest.starts_with("header ") || rest.starts_with("body ")) {
        return None;
    }
    let fields_at = fields_start(rest)?;
    let (stage, origin) = rest[..fields_at].rsplit_once(" from ")?;
    let mut verdict = Verdict {
        source: VerdictSource::ContentCheck,
        action: action.to_owned(),
        stage: stage.to_owned(),
        client: origin.to_owned(),
        text: String::new(),
        sender: None,
        recipient: None,
        proto: None,
        helo: None,
    };
    let after = parse_fields(&mut verdict, &rest[fields_at + 1..]);
    verdict.text = after.strip_prefix(": ").unwrap_or(after).to_owned();
    Some(verdict)
}

/// Where the `;` that ends a verdict's text stands: the last one followed by a context field
/// or by the end (the text itself may hold `;`).
fn fields_start(text: &str) -> Option<usize> {
    const FIELDS: [&str; 4] = [" from=<", " to=<", " proto=", " helo=<"];
    let mut search = text.len();
    while let Some(at) = text[..search].rfind(';') {
        let after = &text[at + 1..];
        if after.is_empty()
            || after.starts_with(": ")
            || FIELDS.iter().any(|f| after.starts_with(f))
        {
            return Some(at);
        }
        search = at;
    }
    None
}

/// Reads `from=<s> to=<r> proto=P helo=<h>` (separated by spaces or `, `) into `verdict`,
/// returning what follows.
fn parse_fields<'a>(verdict: &mut Verdict, mut rest: &'a str) -> &'a str {
    loop {
        let trimmed = rest.strip_prefix(',').unwrap_or(rest);
        let trimmed = trimmed.strip_prefix(' ').unwrap_or(trimmed);
        let angle_field = |name: &str| trimmed.strip_prefix(name).and_then(take_angle);
        if let Some((value, after)) = angle_field("from=<") {
            verdict.sender = Some(value.to_owned());
            rest = after;
        } else if let Some((value, after)) = angle_field("to=<") {
            verdict.recipient = Some(value.to_owned());
            rest = after;
        } else if let Some((value, after)) = angle_field("helo=<") {
            verdict.helo = Some(value.to_owned());
            rest = after;
        } else if let Some(after) = trimmed.strip_prefix("proto=") {
            let end = after.find([' ', ',', ':']).unwrap_or(after.len());
            verdict.proto = Some(after[..end].to_owned());
            rest = &after[end..];
        } else {
            return rest;
        }
    }
}

/// The text up to the `>` that closes an angle-bracketed address (one followed by the end,
/// a space, a comma or a colon: a `>` inside a quoted local part is not it), and what follows.
fn take_angle(text: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(offset) = text[from..].find('>') {
        let at = from + offset;
        match text.as_bytes().get(at + 1) {
            None | Some(b' ' | b',' | b':' | b';') => return Some((&text[..at], &text[at + 1..])),
            Some(_) => from = at + 1,
        }
    }
    None
}

/// `name[addr]` or `name[addr]:port` (an IPv6 address has colons of its own).
fn take_client(text: &str) -> Option<(&str, &str)> {
    let close = text.find(']')?;
    let mut end = close + 1;
    if let Some(port) = text[end..].strip_prefix(':') {
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            end += 1 + digits;
        }
    }
    Some((&text[..end], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_name_their_instance_and_daemon() {
        let program = |tag: &str| parse_program(tag).map(|p| (p.instance, p.daemon));
        assert_eq!(
            program("postfix/smtpd"),
            Some(("postfix".to_owned(), "smtpd".to_owned()))
        );
        assert_eq!(
            program("postfix-relay/smtp"),
            Some(("postfix-relay".to_owned(), "smtp".to_owned()))
        );
        assert_eq!(
            program("postfix/submission/smtpd"),
            Some(("postfix".to_owned(), "smtpd".to_owned()))
        );
        assert_eq!(program("dovecot"), None);
        assert_eq!(program("opendkim/milter"), None);
    }

    #[test]
    fn seconds_are_read_to_the_microsecond() {
        assert_eq!(parse_seconds("0.12"), Some(120_000));
        assert_eq!(parse_seconds("12"), Some(12_000_000));
        assert_eq!(parse_seconds("0.0000001"), Some(0));
        assert_eq!(parse_seconds("1e3"), None);
        assert_eq!(parse_seconds(""), None);
    }

    #[test]
    fn the_text_of_a_verdict_may_hold_semicolons() {
        let text = "550 5.7.1 Service unavailable; client [192.0.2.9] blocked; from=<a@b>";
        assert_eq!(
            fields_start(text),
            Some(text.len() - " from=<a@b>".len() - 1)
        );
    }
}
