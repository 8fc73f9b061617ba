//! Lines per second through parsing and stitching, on a generated mail log of 1,000,000 lines
//! (three hosts, syslog stamps, nine lines per message: connect, client with SASL, Message-ID,
//! qmgr, two LMTP deliveries, removed, disconnect, and a line of another program).
//! `cargo run --release -p bonnie-maillog --example throughput [LINES]`

use bonnie_maillog::{Stitcher, SyslogParser, parse_line};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::time::Instant;

fn main() {
    let wanted: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let log = generate(wanted);
    let parser = SyslogParser::new(TimeZone::UTC);
    let received: Timestamp = "2026-12-31T12:00:00Z".parse().expect("an instant");

    let started = Instant::now();
    let parsed: Vec<_> = log
        .iter()
        .map(|line| parse_line(&parser, line, received))
        .collect();
    let parse_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut stitcher = Stitcher::new();
    for line in &parsed {
        stitcher.ingest(line);
    }
    let stitch_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let traces = stitcher
        .queues()
        .keys()
        .step_by(100)
        .filter_map(|key| stitcher.trace(key))
        .count();
    let trace_seconds = started.elapsed().as_secs_f64();

    let lines = log.len() as f64;
    println!("lines: {}", log.len());
    println!("queue files: {}", stitcher.queues().len());
    println!("counts: {:?}", stitcher.counts());
    println!("parse: {:.0} lines/s", lines / parse_seconds);
    println!("stitch: {:.0} lines/s", lines / stitch_seconds);
    println!(
        "parse + stitch: {:.0} lines/s",
        lines / (parse_seconds + stitch_seconds)
    );
    println!(
        "trace look-ups: {traces} in {trace_seconds:.3} s ({:.0}/s)",
        traces as f64 / trace_seconds
    );
}

/// A mail log of about `wanted` lines.
fn generate(wanted: usize) -> Vec<String> {
    const HOSTS: [&str; 3] = ["mx1", "mx2", "mx3"];
    let mut log = Vec::with_capacity(wanted + 9);
    let mut message = 0u64;
    while log.len() < wanted {
        let host = HOSTS[message as usize % HOSTS.len()];
        let second = message / 4;
        let stamp = format!(
            "Dec {:>2} {:02}:{:02}:{:02}",
            1 + (second / 86_400) % 28,
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60
        );
        let queue_id = format!("{:010X}", 0x1000_0000 + message);
        let pid = 1000 + message % 5000;
        let client = format!(
            "client{}.example.org[198.51.100.{}]",
            message % 200,
            message % 250
        );
        let session = format!("cyrus-{pid}-{second}-1-{message}");
        log.extend([
            format!("{stamp} {host} postfix/smtpd[{pid}]: connect from {client}"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: {queue_id}: client={client}, sasl_method=PLAIN, sasl_username=user{}",
                message % 1000
            ),
            format!("{stamp} {host} postfix/cleanup[{pid}]: {queue_id}: message-id=<m{message}@example.org>"),
            format!(
                "{stamp} {host} postfix/qmgr[99]: {queue_id}: from=<user{}@example.org>, size={}, nrcpt=2 (queue active)",
                message % 1000,
                1000 + message % 50_000
            ),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {queue_id}: to=<a{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, delay=0.35, delays=0.21/0.01/0.05/0.08, dsn=2.1.5, status=sent (250 2.1.5 Ok SESSIONID=<{session}-a>)",
                message % 3000
            ),
            format!(
                "{stamp} {host} postfix/lmtp[{pid}]: {queue_id}: to=<b{}@example.org>, orig_to=<alias{}@example.org>, relay=imap.example.org[192.0.2.20]:2003, conn_use=2, delay=0.36, delays=0.21/0.01/0/0.14, dsn=2.1.5, status=sent (250 2.1.5 Ok SESSIONID=<{session}-b>)",
                message % 3000,
                message % 10
            ),
            format!("{stamp} {host} postfix/qmgr[99]: {queue_id}: removed"),
            format!(
                "{stamp} {host} postfix/smtpd[{pid}]: disconnect from {client} ehlo=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=7"
            ),
            format!("{stamp} {host} dovecot: imap-login: Login: user=<a{}>", message % 3000),
        ]);
        message += 1;
    }
    log.truncate(wanted);
    log
}
