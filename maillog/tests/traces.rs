//! The test logs of `tests/data` (written from the formats in Postfix's source) parsed and
//! stitched: each message's exact trace, the New Year crossing, look-ups by Message-ID, queue
//! ID and address, the counts of unknown lines, and the same traces whatever the order of the
//! lines and however many workers share them.

mod common;

use bonnie_maillog::{LineCounts, ParsedLine, Stitcher, Trace};
use common::{all_traces, data_lines, read};
use serde_json::{Value, json};

fn lines() -> Vec<ParsedLine> {
    data_lines().into_iter().map(read).collect()
}

fn stitched<'a>(lines: impl IntoIterator<Item = &'a ParsedLine>) -> Stitcher {
    let mut stitcher = Stitcher::new();
    for line in lines {
        stitcher.ingest(line);
    }
    stitcher
}

fn only(traces: Vec<Trace>) -> Value {
    assert_eq!(traces.len(), 1, "{traces:#?}");
    serde_json::to_value(&traces[0]).expect("a trace as JSON")
}

fn two_recipients() -> Value {
    json!({
      "hops": [
        {
          "client": {
            "at": "2026-12-01T10:00:01Z",
            "client": "client.example.org[203.0.113.5]",
            "sasl_method": "PLAIN",
            "sasl_username": "alice"
          },
          "deliveries": [
            {
              "at": "2026-12-01T10:00:02Z",
              "delay_us": 350000,
              "delays": {
                "before_qmgr_us": 210000,
                "connect_us": 50000,
                "in_qmgr_us": 10000,
                "transmit_us": 80000
              },
              "dsn": "2.1.5",
              "lmtp_session_id": "cyrus-1234-1796119202-1-7301",
              "recipient": "bob@example.org",
              "relay": "imap.example.org[192.0.2.20]:2003",
              "reply": "250 2.1.5 Ok SESSIONID=<cyrus-1234-1796119202-1-7301>",
              "status": "sent"
            },
            {
              "at": "2026-12-01T10:00:02Z",
              "conn_use": 2,
              "delay_us": 360000,
              "delays": {
                "before_qmgr_us": 210000,
                "connect_us": 0,
                "in_qmgr_us": 10000,
                "transmit_us": 140000
              },
              "dsn": "2.1.5",
              "lmtp_session_id": "cyrus-1234-1796119202-1-7302",
              "orig_recipient": "c.smith@example.org",
              "recipient": "carol@example.org",
              "relay": "imap.example.org[192.0.2.20]:2003",
              "reply": "250 2.1.5 Ok SESSIONID=<cyrus-1234-1796119202-1-7302>",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 2,
            "sender": "alice@example.org",
            "size": 1843
          },
          "first_seen": "2026-12-01T10:00:01Z",
          "host": "mx1",
          "instance": "postfix",
          "last_seen": "2026-12-01T10:00:02Z",
          "message_id": "<a1@example.org>",
          "queue_id": "4jdxFs0kX3z9sLH",
          "removed": "2026-12-01T10:00:02Z",
          "via": {
            "by": "origin"
          }
        }
      ],
      "message_id": "<a1@example.org>",
      "sender": "alice@example.org"
    })
}

fn bounced_with_its_notification() -> Value {
    json!({
      "hops": [
        {
          "client": {
            "at": "2026-12-01T10:10:01Z",
            "client": "client.example.org[203.0.113.5]",
            "sasl_method": "PLAIN",
            "sasl_username": "alice"
          },
          "deliveries": [
            {
              "at": "2026-12-01T10:10:02Z",
              "delay_us": 200000,
              "delays": {
                "before_qmgr_us": 100000,
                "connect_us": 50000,
                "in_qmgr_us": 0,
                "transmit_us": 50000
              },
              "dsn": "5.1.1",
              "recipient": "nobody@example.org",
              "relay": "imap.example.org[192.0.2.20]:2003",
              "reply": "host imap.example.org[192.0.2.20] said: 550 5.1.1 User unknown (in reply to RCPT TO command)",
              "status": "bounced"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "alice@example.org",
            "size": 990
          },
          "first_seen": "2026-12-01T10:10:01Z",
          "host": "mx1",
          "instance": "postfix",
          "last_seen": "2026-12-01T10:10:02Z",
          "message_id": "<b1@example.org>",
          "notifications": [
            {
              "at": "2026-12-01T10:10:02Z",
              "kind": "sender_non_delivery",
              "notification_id": "4jdxTQ07Xvz9sLM"
            }
          ],
          "queue_id": "4jdxTP3vmBz9sLL",
          "removed": "2026-12-01T10:10:02Z",
          "via": {
            "by": "origin"
          }
        },
        {
          "deliveries": [
            {
              "at": "2026-12-01T10:10:03Z",
              "delay_us": 50000,
              "delays": {
                "before_qmgr_us": 0,
                "connect_us": 20000,
                "in_qmgr_us": 0,
                "transmit_us": 30000
              },
              "dsn": "2.1.5",
              "lmtp_session_id": "cyrus-1234-1796119803-1-7310",
              "recipient": "alice@example.org",
              "relay": "imap.example.org[192.0.2.20]:2003",
              "reply": "250 2.1.5 Ok SESSIONID=<cyrus-1234-1796119803-1-7310>",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "",
            "size": 3020
          },
          "first_seen": "2026-12-01T10:10:02Z",
          "host": "mx1",
          "instance": "postfix",
          "last_seen": "2026-12-01T10:10:03Z",
          "message_id": "<20261201101002.4jdxTQ07Xvz9sLM@mx1.example.org>",
          "queue_id": "4jdxTQ07Xvz9sLM",
          "removed": "2026-12-01T10:10:03Z",
          "via": {
            "by": "notification",
            "kind": "sender_non_delivery",
            "of": {
              "host": "mx1",
              "instance": "postfix",
              "queue_id": "4jdxTP3vmBz9sLL"
            }
          }
        }
      ],
      "message_id": "<b1@example.org>",
      "sender": "alice@example.org"
    })
}

fn relayed_through_edge_mx1_and_the_second_instance() -> Value {
    json!({
      "hops": [
        {
          "client": {
            "at": "2026-12-01T10:20:02Z",
            "client": "mail.example.net[198.51.100.7]"
          },
          "deliveries": [
            {
              "at": "2026-12-01T10:20:02.6Z",
              "delay_us": 600000,
              "delays": {
                "before_qmgr_us": 150000,
                "connect_us": 200000,
                "in_qmgr_us": 10000,
                "transmit_us": 240000
              },
              "dsn": "2.0.0",
              "queued_as": "4jdxhy6BTJz9sLR",
              "recipient": "bob@example.org",
              "relay": "mx1.example.org[192.0.2.10]:25",
              "reply": "250 2.0.0 Ok: queued as 4jdxhy6BTJz9sLR",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "dave@example.net",
            "size": 5120
          },
          "first_seen": "2026-12-01T10:20:02Z",
          "host": "edge",
          "instance": "postfix",
          "last_seen": "2026-12-01T10:20:02.61Z",
          "message_id": "<c1@example.net>",
          "queue_id": "8E2B41C0A7",
          "removed": "2026-12-01T10:20:02.61Z",
          "via": {
            "by": "origin"
          }
        },
        {
          "client": {
            "at": "2026-12-01T10:20:02Z",
            "client": "edge.example.org[192.0.2.1]"
          },
          "deliveries": [
            {
              "at": "2026-12-01T10:20:03Z",
              "delay_us": 500000,
              "delays": {
                "before_qmgr_us": 100000,
                "connect_us": 100000,
                "in_qmgr_us": 0,
                "transmit_us": 300000
              },
              "dsn": "2.0.0",
              "queued_as": "5E7D1A2B3C",
              "recipient": "bob@example.org",
              "relay": "127.0.0.1[127.0.0.1]:10025",
              "reply": "250 2.0.0 Ok: queued as 5E7D1A2B3C",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "dave@example.net",
            "size": 5480
          },
          "first_seen": "2026-12-01T10:20:02Z",
          "host": "mx1",
          "instance": "postfix",
          "last_seen": "2026-12-01T10:20:03Z",
          "message_id": "<c1@example.net>",
          "queue_id": "4jdxhy6BTJz9sLR",
          "removed": "2026-12-01T10:20:03Z",
          "via": {
            "by": "relay",
            "from": {
              "host": "edge",
              "instance": "postfix",
              "queue_id": "8E2B41C0A7"
            },
            "relay": "mx1.example.org[192.0.2.10]:25"
          }
        },
        {
          "client": {
            "at": "2026-12-01T10:20:03Z",
            "client": "localhost[127.0.0.1]"
          },
          "deliveries": [
            {
              "at": "2026-12-01T10:20:04Z",
              "delay_us": 400000,
              "delays": {
                "before_qmgr_us": 100000,
                "connect_us": 100000,
                "in_qmgr_us": 0,
                "transmit_us": 200000
              },
              "dsn": "2.1.5",
              "lmtp_session_id": "cyrus-1234-1796120404-1-7320",
              "recipient": "bob@example.org",
              "relay": "imap.example.org[192.0.2.20]:2003",
              "reply": "250 2.1.5 Ok SESSIONID=<cyrus-1234-1796120404-1-7320>",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "dave@example.net",
            "size": 5700
          },
          "first_seen": "2026-12-01T10:20:03Z",
          "host": "mx1",
          "instance": "postfix-relay",
          "last_seen": "2026-12-01T10:20:04Z",
          "message_id": "<c1@example.net>",
          "queue_id": "5E7D1A2B3C",
          "removed": "2026-12-01T10:20:04Z",
          "via": {
            "by": "relay",
            "from": {
              "host": "mx1",
              "instance": "postfix",
              "queue_id": "4jdxhy6BTJz9sLR"
            },
            "relay": "127.0.0.1[127.0.0.1]:10025"
          }
        }
      ],
      "message_id": "<c1@example.net>",
      "sender": "dave@example.net"
    })
}

fn across_new_year() -> Value {
    json!({
      "hops": [
        {
          "deliveries": [
            {
              "at": "2027-01-01T00:00:01Z",
              "delay_us": 3000000,
              "delays": {
                "before_qmgr_us": 1000000,
                "connect_us": 0,
                "in_qmgr_us": 0,
                "transmit_us": 2000000
              },
              "dsn": "2.0.0",
              "orig_recipient": "root",
              "recipient": "root@mx1.example.org",
              "relay": "local",
              "reply": "delivered to mailbox",
              "status": "sent"
            }
          ],
          "envelope": {
            "nrcpt": 1,
            "sender": "root@mx1.example.org",
            "size": 420
          },
          "first_seen": "2026-12-31T23:59:58Z",
          "host": "mx1",
          "instance": "postfix",
          "last_seen": "2027-01-01T00:00:01Z",
          "message_id": "<20261231235958.4k0kTB26z8z9sMW@mx1.example.org>",
          "pickup": {
            "at": "2026-12-31T23:59:58Z",
            "sender": "root",
            "uid": 0
          },
          "queue_id": "4k0kTB26z8z9sMW",
          "removed": "2027-01-01T00:00:01Z",
          "via": {
            "by": "origin"
          }
        }
      ],
      "message_id": "<20261231235958.4k0kTB26z8z9sMW@mx1.example.org>",
      "sender": "root@mx1.example.org"
    })
}

#[test]
fn a_message_to_two_local_recipients_has_each_outcome_and_cyrus_session() {
    let stitcher = stitched(&lines());
    assert_eq!(
        only(stitcher.traces_by_message_id("<a1@example.org>")),
        two_recipients()
    );
    let traces = stitcher.traces_by_message_id("a1@example.org");
    assert_eq!(
        traces[0].lmtp_session_ids(),
        [
            "cyrus-1234-1796119202-1-7301",
            "cyrus-1234-1796119202-1-7302"
        ]
    );
    let recipients: Vec<&str> = traces[0].hops[0].recipients().into_keys().collect();
    assert_eq!(recipients, ["bob@example.org", "carol@example.org"]);
}

#[test]
fn a_bounce_to_an_unknown_recipient_links_its_non_delivery_notification() {
    let stitcher = stitched(&lines());
    let expected = bounced_with_its_notification();
    assert_eq!(
        only(stitcher.traces_by_message_id("<b1@example.org>")),
        expected
    );
    // Looked up by the notification's own queue ID, the trace is the same.
    assert_eq!(
        only(stitcher.traces_by_queue_id("4jdxTQ07Xvz9sLM")),
        expected
    );
}

#[test]
fn a_relayed_message_is_one_trace_over_both_hosts_and_instances() {
    let stitcher = stitched(&lines());
    let expected = relayed_through_edge_mx1_and_the_second_instance();
    assert_eq!(
        only(stitcher.traces_by_message_id("<c1@example.net>")),
        expected
    );
    for queue_id in ["8E2B41C0A7", "4jdxhy6BTJz9sLR", "5E7D1A2B3C"] {
        assert_eq!(
            only(stitcher.traces_by_queue_id(queue_id)),
            expected,
            "{queue_id}"
        );
    }
}

#[test]
fn a_message_across_new_year_keeps_last_years_stamps() {
    let stitcher = stitched(&lines());
    assert_eq!(
        only(stitcher.traces_by_message_id("<20261231235958.4k0kTB26z8z9sMW@mx1.example.org>")),
        across_new_year()
    );
}

#[test]
fn an_address_finds_every_message_it_sent_or_received() {
    let stitcher = stitched(&lines());
    let message_ids = |address: &str| -> Vec<Option<String>> {
        stitcher
            .traces_by_address(address)
            .into_iter()
            .map(|trace| trace.message_id)
            .collect()
    };
    // alice sent a1, b1 and the expired message, and received b1's bounce; the milter's and
    // header check's messages were bob's.
    assert_eq!(
        message_ids("Alice@example.org"),
        [
            None,
            Some("<a1@example.org>".to_owned()),
            Some("<b1@example.org>".to_owned()),
        ]
    );
    assert_eq!(
        message_ids("c.smith@example.org"),
        [Some("<a1@example.org>".to_owned())]
    );
    let rejected = stitcher.unqueued_by_address("bob@example.org");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].host, "edge");
    assert_eq!(
        rejected[0].verdict.text,
        "550 5.7.1 Service unavailable; client [192.0.2.66] blocked using zen.spamhaus.org"
    );
    assert_eq!(stitcher.unqueued_by_address("spam@example.org").len(), 1);
}

#[test]
fn verdicts_of_milters_and_content_checks_stay_with_their_queue_file() {
    let stitcher = stitched(&lines());
    let verdict = |queue_id: &str| {
        let trace = only(stitcher.traces_by_queue_id(queue_id));
        trace["hops"][0]["verdicts"].clone()
    };
    assert_eq!(
        verdict("4jdxxc00MDz9sMj"),
        json!([{
            "at": "2026-12-01T10:31:00Z",
            "source": "milter",
            "action": "milter-reject",
            "stage": "END-OF-MESSAGE",
            "client": "mail.example.net[198.51.100.7]",
            "text": "5.7.1 Virus found",
            "sender": "dave@example.net",
            "recipient": "bob@example.org",
            "proto": "ESMTP",
            "helo": "mail.example.net"
        }])
    );
    assert_eq!(
        verdict("4jdxym00kSz9sMk"),
        json!([{
            "at": "2026-12-01T10:32:00Z",
            "source": "content_check",
            "action": "warning",
            "stage": "header Subject: Big savings from you",
            "client": "mail.example.net[198.51.100.7]",
            "text": "spammy subject",
            "sender": "dave@example.net",
            "recipient": "bob@example.org",
            "proto": "ESMTP",
            "helo": "mail.example.net"
        }])
    );
}

#[test]
fn unknown_and_foreign_lines_are_counted_not_failed() {
    let stitcher = stitched(&lines());
    assert_eq!(
        stitcher.counts(),
        LineCounts {
            lines: 73,
            postfix: 71,
            unknown: 6,
            not_postfix: 2,
        }
    );
}

#[test]
fn any_order_and_any_split_between_workers_give_the_same_traces() {
    let lines = lines();
    let expected = all_traces(&stitched(&lines));
    assert_eq!(
        expected.len(),
        7,
        "a1, b1, c1, New Year, milter, header check, expired"
    );

    assert_eq!(
        all_traces(&stitched(lines.iter().rev())),
        expected,
        "reversed"
    );
    // Two workers taking every other line, in opposite orders, merged either way round.
    let even = stitched(lines.iter().step_by(2));
    let odd = stitched(lines.iter().skip(1).step_by(2).rev().collect::<Vec<_>>());
    let mut even_then_odd = even.clone();
    even_then_odd.merge(&odd);
    let mut odd_then_even = odd.clone();
    odd_then_even.merge(&even);
    assert_eq!(all_traces(&even_then_odd), expected, "even, then odd");
    assert_eq!(all_traces(&odd_then_even), expected, "odd, then even");
    // A line seen twice (a redelivered batch) changes nothing but the line count.
    let mut twice = stitched(&lines);
    twice.merge(&stitched(&lines[..20]));
    assert_eq!(all_traces(&twice), expected, "lines seen twice");
}

/// The hops of the trace of `queue_id` in `lines`, as `host/queue ID`.
fn hops_of(lines: &[&str], queue_id: &str) -> Vec<String> {
    let parsed: Vec<ParsedLine> = lines.iter().map(|line| read(line)).collect();
    let traces = stitched(&parsed).traces_by_queue_id(queue_id);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    traces[0]
        .hops
        .iter()
        .map(|hop| format!("{}/{}", hop.key.host, hop.key.queue_id))
        .collect()
}

const RELAYED: &str = "Dec  1 10:00:00 a postfix/smtp[1]: 1AAAAA0001: to=<x@example.org>, \
    relay=b.example.org[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, \
    status=sent (250 2.0.0 Ok: queued as 2BBBBB0002)";

#[test]
fn queued_as_links_the_queue_file_on_the_relays_host_over_a_nearer_one_elsewhere() {
    let lines = [
        RELAYED,
        "Dec  1 10:00:00 c postfix/cleanup[2]: 2BBBBB0002: message-id=<other@example.org>",
        "Dec  1 10:00:01 b postfix/cleanup[3]: 2BBBBB0002: message-id=<m@example.org>",
    ];
    assert_eq!(
        hops_of(&lines, "1AAAAA0001"),
        ["a/1AAAAA0001", "b/2BBBBB0002"]
    );
}

#[test]
fn queued_as_does_not_link_a_queue_file_with_that_id_seen_days_apart() {
    let lines = [
        RELAYED,
        "Dec  3 10:00:00 b postfix/cleanup[3]: 2BBBBB0002: message-id=<later@example.org>",
    ];
    assert_eq!(hops_of(&lines, "1AAAAA0001"), ["a/1AAAAA0001"]);
}
