//! The handler in plugin-api's test host, on maillog's test logs (three hosts and instances,
//! every stamp style, long and short queue IDs): four threads with a handler each, every
//! batch handled twice in an order unlike the log's, store the facts of one reader of every
//! line, found by Message-ID, queue ID and address, with unknown lines counted.

use std::collections::BTreeMap;

use bonnie_maillog::{
    QueueFacts, Stitcher, SyslogParser, parse_line,
    store::{self, QueueRecord},
};
use bonnie_plugin_api::{prelude::*, storage::RecordQuery, testing::TestHost};
use jiff::{Timestamp, tz::TimeZone};
use serde_json::{Value, json};

const LOGS: [&str; 3] = [
    include_str!("../../../maillog/tests/data/edge-rfc3339.log"),
    include_str!("../../../maillog/tests/data/mx1-syslog.log"),
    include_str!("../../../maillog/tests/data/mx1-relay-maillog_file.log"),
];

/// When the test logs were received (their README): after New Year.
const RECEIVED: &str = "2027-01-01T00:10:00Z";

fn lines() -> Vec<String> {
    let mut lines: Vec<String> = LOGS
        .iter()
        .flat_map(|log| log.lines())
        .map(str::to_string)
        .collect();
    lines.push("Dec  1 10:00:00 mx1 postfix/smtpd[1]: something Postfix may say one day".into());
    lines.push("Dec  1 10:00:00 mx1 dovecot: imap-login: not Postfix".into());
    lines.push("a line without a syslog frame".into());
    lines
}

fn batch(lines: &[String]) -> String {
    json!({"event": "vnd.bonnie.LogLines", "host": "logd", "received": RECEIVED, "lines": lines})
        .to_string()
}

fn done(outcome: HandlerOutcome) -> Value {
    match outcome {
        HandlerOutcome::Done { notification } => serde_json::from_str(&notification).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The stored facts, by record key.
fn stored(host: &TestHost) -> BTreeMap<String, QueueFacts> {
    let storage = host.storage_client().unwrap();
    let query = RecordQuery {
        collection: store::QUEUES.to_string(),
        all: true,
        ..RecordQuery::default()
    };
    storage
        .query(&query)
        .unwrap()
        .into_iter()
        .map(|record| {
            let record: QueueRecord = serde_json::from_str(record.body.as_str()).unwrap();
            (store::record_key(&record.key), record.facts)
        })
        .collect()
}

#[test]
fn four_threads_handling_every_batch_twice_in_any_order_store_the_facts_of_one_reader() {
    let host = TestHost::new("postfix").config(json!({"zone": "UTC"}));
    let lines = lines();
    // Batches of three lines, taken from the end first, each twice, dealt to four threads.
    let mut batches: Vec<String> = lines.chunks(3).rev().map(batch).collect();
    batches.extend(batches.clone());
    let outcomes: Vec<Value> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let handler = host.handler(crate::Postfix::new).unwrap();
                let mine: Vec<&String> = batches.iter().skip(thread).step_by(4).collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|b| done(handler.handle(b).unwrap()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });

    let mut reader = Stitcher::new();
    let parser = SyslogParser::new(TimeZone::UTC);
    let received: Timestamp = RECEIVED.parse().unwrap();
    for line in &lines {
        reader.ingest(&parse_line(&parser, line, received));
    }
    let expected: BTreeMap<String, QueueFacts> = reader
        .queues()
        .iter()
        .map(|(key, facts)| (store::record_key(key), facts.clone()))
        .collect();
    assert!(expected.len() > 10, "{expected:?}");
    assert_eq!(stored(&host), expected);

    let counted = |field: &str| -> u64 {
        outcomes
            .iter()
            .map(|o| o["postfix"][field].as_u64().unwrap())
            .sum::<u64>()
            / 2
    };
    let counts = reader.counts();
    assert_eq!(counted("lines"), counts.lines);
    assert_eq!(counted("unknown"), counts.unknown);
    assert_eq!(counted("not_postfix"), counts.not_postfix);
    assert!(counts.unknown >= 1);
    // The raw lines go on to the log with the counts.
    assert!(outcomes.iter().all(|o| o["lines"].is_array()));

    let storage = host.storage_client().unwrap();
    let find = |field: &str, value: &str| -> Vec<String> {
        let mut keys: Vec<String> = storage
            .query(&RecordQuery::all_with(store::QUEUES, field, value))
            .unwrap()
            .into_iter()
            .map(|r| r.key.into_string())
            .collect();
        keys.sort();
        keys
    };
    let by_message_id = find(store::BY_MESSAGE_ID, "a1@example.org");
    assert_eq!(by_message_id, ["mx1/postfix/4jdxFs0kX3z9sLH"]);
    assert_eq!(find(store::BY_QUEUE_ID, "4jdxFs0kX3z9sLH"), by_message_id);
    assert!(find(store::BY_ADDRESS, "bob@example.org").contains(&by_message_id[0]));
    let unqueued = storage
        .query(&RecordQuery {
            collection: store::UNQUEUED.to_string(),
            all: true,
            ..RecordQuery::default()
        })
        .unwrap();
    assert!(!unqueued.is_empty(), "the NOQUEUE rejects are kept");
}

#[test]
fn a_batch_without_lines_is_rejected_and_a_bad_zone_refused() {
    let host = TestHost::new("postfix");
    let handler = host.handler(crate::Postfix::new).unwrap();
    let outcome = handler
        .handle(&json!({"event": "vnd.bonnie.LogLines"}).to_string())
        .unwrap();
    assert!(
        matches!(outcome, HandlerOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    let bad = TestHost::new("postfix").config(json!({"zone": "Mars/Olympus"}));
    assert!(bad.handler(crate::Postfix::new).is_err());
}
