//! Each Postfix line form the parser models, read into its exact event: lines written from
//! the formats in Postfix's source, framed as syslog, `maillog_file`, RFC 3339 files,
//! RFC 3164 and RFC 5424 deliver them.

mod common;

use serde_json::{Value, json};

fn event(line: &str) -> Value {
    serde_json::to_value(&common::read(line).event).expect("an event as JSON")
}

#[test]
fn smtpd_connects_clients_and_disconnects() {
    assert_eq!(
        event("Dec  1 10:00:00 mx1 postfix/smtpd[1]: connect from client.example.org[203.0.113.5]"),
        json!({"event": "connect", "client": "client.example.org[203.0.113.5]"})
    );
    assert_eq!(
        event(
            "Dec  1 10:00:01 mx1 postfix/submission/smtpd[1]: 4jdxFs0kX3z9sLH: \
             client=client.example.org[203.0.113.5], sasl_method=PLAIN, sasl_username=alice, \
             sasl_sender=alice@example.org, orig_client=webmail[192.0.2.30]"
        ),
        json!({
            "event": "client",
            "queue_id": "4jdxFs0kX3z9sLH",
            "client": {
                "client": "client.example.org[203.0.113.5]",
                "sasl_method": "PLAIN",
                "sasl_username": "alice",
                "sasl_sender": "alice@example.org",
                "orig_client": "webmail[192.0.2.30]"
            }
        })
    );
    assert_eq!(
        event(
            "Dec  1 10:00:02 mx1 postfix/smtpd[1]: disconnect from a[192.0.2.1] ehlo=1 quit=1 commands=2"
        ),
        json!({"event": "disconnect", "client": "a[192.0.2.1]", "commands": "ehlo=1 quit=1 commands=2"})
    );
}

#[test]
fn pickup_cleanup_and_qmgr() {
    assert_eq!(
        event("Dec 01 10:00:00 mx1 postfix/pickup[2]: 3F1A2B4C5D: uid=1000 from=<alice>"),
        json!({"event": "pickup", "queue_id": "3F1A2B4C5D", "uid": 1000, "sender": "alice"})
    );
    assert_eq!(
        event("Dec 01 10:00:00 mx1 postfix/cleanup[3]: 3F1A2B4C5D: message-id=<x@y>"),
        json!({"event": "message_id", "queue_id": "3F1A2B4C5D", "message_id": "<x@y>"})
    );
    assert_eq!(
        event(
            "Dec 01 10:00:00 mx1 postfix/qmgr[4]: 3F1A2B4C5D: from=<>, size=3020, nrcpt=1 (queue active)"
        ),
        json!({"event": "queued", "queue_id": "3F1A2B4C5D", "sender": "", "size": 3020, "nrcpt": 1})
    );
    assert_eq!(
        event(
            "Dec 01 10:00:00 mx1 postfix/qmgr[4]: 3F1A2B4C5D: from=<a@b>, status=expired, returned to sender"
        ),
        json!({"event": "expired", "queue_id": "3F1A2B4C5D", "sender": "a@b"})
    );
    assert_eq!(
        event("Dec 01 10:00:00 mx1 postfix/qmgr[4]: 3F1A2B4C5D: removed"),
        json!({"event": "removed", "queue_id": "3F1A2B4C5D"})
    );
}

#[test]
fn deliveries_of_every_agent_with_their_reply() {
    assert_eq!(
        event(
            "2026-12-01T11:20:02.6+01:00 edge postfix/smtp[5]: 8E2B41C0A7: to=<bob@example.org>, \
             relay=mx1.example.org[192.0.2.10]:25, conn_use=3, delay=0.6, delays=0.15/0.01/0.2/0.24, \
             tls=(starttls)/dane, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4jdxhy6BTJz9sLR)"
        ),
        json!({
            "event": "delivery",
            "queue_id": "8E2B41C0A7",
            "delivery": {
                "recipient": "bob@example.org",
                "relay": "mx1.example.org[192.0.2.10]:25",
                "conn_use": 3,
                "delay_us": 600000,
                "delays": {"before_qmgr_us": 150000, "in_qmgr_us": 10000, "connect_us": 200000, "transmit_us": 240000},
                "dsn": "2.0.0",
                "status": "sent",
                "reply": "250 2.0.0 Ok: queued as 4jdxhy6BTJz9sLR",
                "queued_as": "4jdxhy6BTJz9sLR"
            }
        })
    );
    let deferred = event(
        "Dec  1 11:00:00 mx1 postfix/smtp[6]: 3F1A2B4C5D: to=<x@down.example>, relay=none, \
         delay=432000, delays=431999/0.01/0.5/0, dsn=4.4.1, status=deferred (connect to \
         down.example[192.0.2.77]:25: Connection timed out)",
    );
    assert_eq!(deferred["delivery"]["status"], "deferred");
    assert_eq!(
        deferred["delivery"]["reply"],
        "connect to down.example[192.0.2.77]:25: Connection timed out"
    );
    let bounced = event(
        "Dec  1 11:00:00 mx1 postfix/error[7]: 3F1A2B4C5D: to=<x@y>, orig_to=<z@y>, relay=none, \
         delay=1, delays=1/0/0/0, dsn=5.0.0, status=bounced (User unknown in virtual alias table)",
    );
    assert_eq!(bounced["delivery"]["status"], "bounced");
    assert_eq!(bounced["delivery"]["orig_recipient"], "z@y");
    let expired = event(
        "Dec  1 11:00:00 mx1 postfix/error[7]: 3F1A2B4C5D: to=<x@y>, relay=none, delay=432000, \
         delays=432000/0/0/0, dsn=4.4.1, status=expired, returned to sender",
    );
    assert_eq!(expired["delivery"]["status"], "expired");
    assert_eq!(expired["delivery"]["reply"], "returned to sender");
    let lmtp = event(
        "Dec 01 10:20:04 mx1 postfix-relay/lmtp[8]: 5E7D1A2B3C: to=<bob@example.org>, \
         relay=imap.example.org[192.0.2.20]:2003, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.1.5, \
         status=sent (250 2.1.5 Ok SESSIONID=<cyrus-1234-1796120404-1-7320>)",
    );
    assert_eq!(
        lmtp["delivery"]["lmtp_session_id"],
        "cyrus-1234-1796120404-1-7320"
    );
}

#[test]
fn bounce_notifications_of_every_kind() {
    for (words, kind) in [
        ("sender non-delivery", "sender_non_delivery"),
        ("sender delay", "sender_delay"),
        ("sender delivery status", "sender_delivery_status"),
        ("postmaster non-delivery", "postmaster_non_delivery"),
    ] {
        assert_eq!(
            event(&format!(
                "Dec  1 10:10:02 mx1 postfix/bounce[9]: 4jdxTP3vmBz9sLL: {words} notification: 4jdxTQ07Xvz9sLM"
            )),
            json!({
                "event": "notification",
                "queue_id": "4jdxTP3vmBz9sLL",
                "kind": kind,
                "notification_id": "4jdxTQ07Xvz9sLM"
            }),
            "{words}"
        );
    }
}

#[test]
fn rejects_of_smtpd_postscreen_and_milters() {
    assert_eq!(
        event(
            "<22>Dec  1 10:30:01 mx1 postfix/smtpd[10]: NOQUEUE: reject: RCPT from \
             unknown[2001:db8::9]:4711: 450 4.7.1 Client host rejected: cannot find your hostname, \
             [2001:db8::9]; from=<x@spam.example> to=<bob@example.org> proto=ESMTP helo=<spammer>"
        ),
        json!({
            "event": "verdict",
            "verdict": {
                "source": "smtpd",
                "action": "reject",
                "stage": "RCPT",
                "client": "unknown[2001:db8::9]:4711",
                "text": "450 4.7.1 Client host rejected: cannot find your hostname, [2001:db8::9]",
                "sender": "x@spam.example",
                "recipient": "bob@example.org",
                "proto": "ESMTP",
                "helo": "spammer"
            }
        })
    );
    let postscreen = event(
        "2026-12-01T11:25:07+01:00 edge postfix/postscreen[11]: NOQUEUE: reject: RCPT from \
         [192.0.2.66]:5000: 550 5.7.1 Service unavailable; client [192.0.2.66] blocked using \
         zen.spamhaus.org; from=<spam@bad.example>, to=<bob@example.org>, proto=ESMTP, helo=<bad.example>",
    );
    assert_eq!(postscreen["verdict"]["source"], "postscreen");
    assert_eq!(postscreen["verdict"]["client"], "[192.0.2.66]:5000");
    assert_eq!(postscreen["verdict"]["recipient"], "bob@example.org");
    assert_eq!(postscreen["verdict"]["helo"], "bad.example");
    for (action, text) in [
        ("milter-hold", "milter triggers HOLD action"),
        ("milter-discard", "milter triggers DISCARD action"),
    ] {
        let milter = event(&format!(
            "<22>1 2026-12-01T10:31:00Z mx1 postfix/cleanup 12 - - 3F1A2B4C5D: {action}: \
             END-OF-MESSAGE from localhost[127.0.0.1]: {text}; from=<a@b> to=<c@d> proto=ESMTP helo=<h>"
        ));
        assert_eq!(milter["queue_id"], "3F1A2B4C5D");
        assert_eq!(milter["verdict"]["source"], "milter");
        assert_eq!(milter["verdict"]["action"], action);
        assert_eq!(milter["verdict"]["text"], text);
    }
}

#[test]
fn postscreen_and_diagnostics() {
    assert_eq!(
        event(
            "2026-12-01T11:20:00+01:00 edge postfix/postscreen[11]: CONNECT from [198.51.100.7]:41234 to [192.0.2.1]:25"
        ),
        json!({"event": "postscreen_connect", "client": "[198.51.100.7]:41234"})
    );
    assert_eq!(
        event(
            "2026-12-01T11:20:01+01:00 edge postfix/postscreen[11]: PASS NEW [198.51.100.7]:41234"
        ),
        json!({"event": "postscreen_pass", "client": "[198.51.100.7]:41234", "new": true})
    );
    assert_eq!(
        event(
            "2026-12-01T11:30:00+01:00 edge postfix/postscreen[11]: PASS OLD [198.51.100.7]:41240"
        ),
        json!({"event": "postscreen_pass", "client": "[198.51.100.7]:41240", "new": false})
    );
    assert_eq!(
        event(
            "2026-12-01T11:25:06+01:00 edge postfix/postscreen[11]: DNSBL rank 3 for [192.0.2.66]:5000"
        ),
        json!({"event": "postscreen_dnsbl", "client": "[192.0.2.66]:5000", "rank": 3})
    );
    assert_eq!(
        event(
            "Dec  1 10:40:00 mx1 postfix/master[1000]: fatal: bind 0.0.0.0 port 25: Address already in use"
        ),
        json!({"event": "diagnostic", "severity": "fatal", "text": "bind 0.0.0.0 port 25: Address already in use"})
    );
    assert_eq!(
        event(
            "Dec  1 10:40:00 mx1 postfix/cleanup[3]: warning: 3F1A2B4C5D: read timeout on cleanup socket"
        ),
        json!({"event": "diagnostic", "severity": "warning", "queue_id": "3F1A2B4C5D", "text": "read timeout on cleanup socket"})
    );
}

#[test]
fn other_lines_are_unknown_with_their_text() {
    assert_eq!(
        event(
            "Dec  1 10:40:02 mx1 postfix/smtpd[2044]: lost connection after CONNECT from unknown[192.0.2.99]"
        ),
        json!({"event": "unknown", "text": "lost connection after CONNECT from unknown[192.0.2.99]"})
    );
    assert_eq!(
        event("Dec  1 10:40:03 mx1 dovecot: imap-login: Login: user=<bob>"),
        json!({"event": "unknown", "text": "imap-login: Login: user=<bob>"})
    );
    assert_eq!(
        event("\u{0}\u{7f}Dec 99 garbage"),
        json!({"event": "unknown", "text": "\u{0}\u{7f}Dec 99 garbage"})
    );
}
