//! A generated Postfix mail log of any length, in `maillog_file`'s style (`Dec 01 10:20:03`),
//! for measuring: the same log for the throughput example and `bonnie-bench --only-maillog`,
//! which also hands it to `pflogsumm`, so its mix is the one a mail host's log has.

/// The hosts local mail is received and delivered on.
const MAILBOX_HOSTS: [&str; 2] = ["mx1", "mx2"];

/// About `wanted` lines of a Postfix log (cut to exactly `wanted`): of every ten messages,
/// seven are received with SASL and delivered over LMTP to two recipients (one through an
/// alias), one comes through the host `edge`, which relays it to a mailbox host (`queued as`),
/// one is bounced for an unknown recipient (the bounce's notification sent back over SMTP),
/// and one is a `NOQUEUE` reject; each line of its own program, with lines of other programs
/// between them as in a shared mail.log.
pub fn mail_log(wanted: usize) -> Vec<String> {
    let mut log = Vec::with_capacity(wanted + 20);
    let mut message = 0u64;
    while log.len() < wanted {
        let m = Message::new(message);
        match message % 10 {
            7 => m.relayed(&mut log),
            8 => m.bounced(&mut log),
            9 => m.rejected(&mut log),
            _ => m.delivered(&mut log),
        }
        message += 1;
    }
    log.truncate(wanted);
    log
}

/// What the lines of one generated message share.
struct Message {
    number: u64,
    host: &'static str,
    stamp: String,
    queue_id: String,
    /// A second queue file's ID (the relay's next hop, a bounce's notification), never one
    /// of a first queue file.
    second_queue_id: String,
    pid: u64,
    client: String,
}

impl Message {
    fn new(number: u64) -> Self {
        let second = number / 4;
        Self {
            number,
            host: MAILBOX_HOSTS[number as usize % MAILBOX_HOSTS.len()],
            stamp: format!(
                "Dec {:02} {:02}:{:02}:{:02}",
                1 + (second / 86_400) % 28,
                (second / 3600) % 24,
                (second / 60) % 60,
                second % 60
            ),
            queue_id: format!("{:010X}", 0x1000_0000 + number),
            second_queue_id: format!("{:010X}", 0x80_0000_0000 + number),
            pid: 1000 + number % 5000,
            client: format!(
                "client{}.example.org[198.51.100.{}]",
                number % 200,
                number % 250
            ),
        }
    }

    /// Received with SASL, delivered to two local recipients.
    fn delivered(&self, log: &mut Vec<String>) {
        let Self {
            number: m,
            host,
            stamp,
            queue_id: q,
            pid,
            client,
            ..
        } = self;
        let session = format!("cyrus-{pid}-{m}-1");
        log.extend([
            format!("{stamp} {host} postfix/smtpd[{pid}]: connect from {client}"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: {q}: client={client}, sasl_method=PLAIN, sasl_username=user{}",
                m % 1000
            ),
            format!("{stamp} {host} postfix/cleanup[{pid}]: {q}: message-id=<m{m}@example.org>"),
            format!(
                "{stamp} {host} postfix/qmgr[99]: {q}: from=<user{}@example.org>, size={}, nrcpt=2 (queue active)",
                m % 1000,
                1000 + m % 50_000
            ),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {q}: to=<a{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, delay=0.35, delays=0.21/0.01/0.05/0.08, dsn=2.1.5, status=sent (250 2.1.5 Ok SESSIONID=<{session}-a>)",
                m % 3000
            ),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {q}: to=<b{}@example.org>, orig_to=<alias{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, conn_use=2, delay=0.36, delays=0.21/0.01/0/0.14, dsn=2.1.5, status=sent (250 2.1.5 Ok SESSIONID=<{session}-b>)",
                m % 3000,
                m % 10
            ),
            format!("{stamp} {host} postfix/qmgr[99]: {q}: removed"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: disconnect from {client} ehlo=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=7"
            ),
            format!("{stamp} {host} dovecot: imap-login: Login: user=<a{}>", m % 3000),
        ]);
    }

    /// Received on `edge`, relayed over SMTP to a mailbox host, delivered there.
    fn relayed(&self, log: &mut Vec<String>) {
        let Self {
            number: m,
            host,
            stamp,
            queue_id: q,
            second_queue_id: next,
            pid,
            client,
        } = self;
        log.extend([
            format!("{stamp} edge postfix/smtpd[{pid}]: connect from {client}"),
            format!("{stamp} edge postfix/smtpd[{pid}]: {q}: client={client}"),
            format!("{stamp} edge postfix/cleanup[{pid}]: {q}: message-id=<r{m}@example.net>"),
            format!(
                "{stamp} edge postfix/qmgr[77]: {q}: from=<sender{}@example.net>, size={}, nrcpt=1 (queue active)",
                m % 500,
                2000 + m % 30_000
            ),
            format!("{stamp} {host} postfix/smtpd[{pid}]: connect from edge.example.org[192.0.2.5]"),
            format!("{stamp} {host} postfix/smtpd[{pid}]: {next}: client=edge.example.org[192.0.2.5]"),
            format!("{stamp} {host} postfix/cleanup[{pid}]: {next}: message-id=<r{m}@example.net>"),
            format!(
                "{stamp} {host} postfix/qmgr[99]: {next}: from=<sender{}@example.net>, size={}, nrcpt=1 (queue active)",
                m % 500,
                2300 + m % 30_000
            ),
            format!(
                "{stamp} edge postfix/smtp[{pid}]: {q}: to=<c{}@example.org>, relay={host}.example.org[192.0.2.10]:25, delay=0.6, delays=0.15/0.01/0.2/0.24, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {next})",
                m % 3000
            ),
            format!("{stamp} edge postfix/qmgr[77]: {q}: removed"),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {next}: to=<c{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, delay=0.3, delays=0.1/0.01/0.05/0.14, dsn=2.1.5, status=sent (250 2.1.5 Ok SESSIONID=<cyrus-{pid}-{m}-1-c>)",
                m % 3000
            ),
            format!("{stamp} {host} postfix/qmgr[99]: {next}: removed"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: disconnect from edge.example.org[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
            ),
        ]);
    }

    /// Delivered to an unknown recipient, bounced, and the notification sent to the sender.
    fn bounced(&self, log: &mut Vec<String>) {
        let Self {
            number: m,
            host,
            stamp,
            queue_id: q,
            second_queue_id: notice,
            pid,
            client,
        } = self;
        log.extend([
            format!("{stamp} {host} postfix/smtpd[{pid}]: connect from {client}"),
            format!("{stamp} {host} postfix/smtpd[{pid}]: {q}: client={client}"),
            format!("{stamp} {host} postfix/cleanup[{pid}]: {q}: message-id=<b{m}@example.com>"),
            format!(
                "{stamp} {host} postfix/qmgr[99]: {q}: from=<writer{}@example.com>, size={}, nrcpt=1 (queue active)",
                m % 700,
                900 + m % 9000
            ),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {q}: to=<nobody{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, delay=0.2, delays=0.1/0/0.05/0.05, dsn=5.1.1, status=bounced (host imap.example.org[192.0.2.20] said: 550 5.1.1 User unknown (in reply to RCPT TO command))",
                m % 100
            ),
            format!("{stamp} {host} postfix/cleanup[{pid}]: {notice}: message-id=<{stamp_id}.{notice}@{host}.example.org>", stamp_id = m),
            format!("{stamp} {host} postfix/bounce[{pid}]: {q}: sender non-delivery notification: {notice}"),
            format!("{stamp} {host} postfix/qmgr[99]: {notice}: from=<>, size={}, nrcpt=1 (queue active)", 3000 + m % 9000),
            format!("{stamp} {host} postfix/qmgr[99]: {q}: removed"),
            format!(
                "{stamp} {host} postfix/smtp[{pid}]: {notice}: to=<writer{}@example.com>, relay=mail.example.com[203.0.113.7]:25, delay=0.9, delays=0.01/0.01/0.4/0.48, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4Ab{m}X)",
                m % 700
            ),
            format!("{stamp} {host} postfix/qmgr[99]: {notice}: removed"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
            ),
        ]);
    }

    /// Refused before queueing.
    fn rejected(&self, log: &mut Vec<String>) {
        let Self {
            number: m,
            host,
            stamp,
            pid,
            ..
        } = self;
        let client = format!("unknown[192.0.2.{}]", m % 250);
        log.extend([
            format!("{stamp} {host} postfix/smtpd[{pid}]: connect from {client}"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {client}: 554 5.7.1 <spam{m}@example.org>: Relay access denied; from=<x{m}@spam.example> to=<spam{m}@example.org> proto=ESMTP helo=<spammer>"
            ),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: disconnect from {client} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
            ),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, SyslogParser, parse_line};

    #[test]
    fn every_generated_line_is_read_and_each_kind_of_message_is_there() {
        let log = mail_log(1000);
        assert_eq!(log.len(), 1000);
        let parser = SyslogParser::new(jiff::tz::TimeZone::UTC);
        let received: jiff::Timestamp = "2026-12-31T12:00:00Z".parse().unwrap();
        let postfix_unknown = log
            .iter()
            .map(|line| parse_line(&parser, line, received))
            .filter(|p| p.program.is_some() && matches!(p.event, Event::Unknown { .. }))
            .count();
        assert_eq!(postfix_unknown, 0);
        for kind in [
            "queued as",
            "sender non-delivery",
            "NOQUEUE: reject",
            "orig_to=",
        ] {
            assert!(log.iter().any(|l| l.contains(kind)), "no line with {kind}");
        }
    }
}
