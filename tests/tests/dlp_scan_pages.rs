//! `bonnie dlp scan` reads the log page by page (500 entries a query): every entry is scanned
//! once, however many share one instant. 1200 archived appends, 700 of them at the same
//! millisecond, one in 25 with a card number: 48 hits, each entry once.

use bonnie_tests::{cluster::Cluster, process, retention::log_entries};
use serde_json::{Value, json};

#[test]
fn a_scan_of_more_entries_than_a_page_many_at_one_instant_scans_each_once() {
    let cluster = Cluster::new(
        &["bonnie-messageappend", "bonnie-jsonl-input"],
        "[plugins.jsonl-input]\nfiles = [\"in.jsonl\"]\njournal = \"var/jsonl-input/outcomes.jsonl\"\n",
    );
    let lines: Vec<String> = (1..=1200u64)
        .map(|uid| {
            let body = if uid % 25 == 0 {
                "Karte 4539 1488 0343 6467"
            } else {
                "Nichts."
            };
            let message = format!("From: anna@example.org\r\nSubject: m{uid}\r\n\r\n{body}\r\n");
            // 700 at one instant, the rest a second apart.
            let second = uid.saturating_sub(700);
            json!({
                "event": "MessageAppend",
                "timestamp": format!("2026-11-01T08:{:02}:{:02}.000Z", second / 60, second % 60),
                "uri": format!("imap://imap.example.org/user/anna%40example.org;UIDVALIDITY=7/;UID={uid}"),
                "user": "anna@example.org",
                "messageContent": { uid.to_string(): { "data": message } },
            })
            .to_string()
        })
        .collect();
    std::fs::write(cluster.path().join("in.jsonl"), lines.join("\n") + "\n").unwrap();
    let _broker = cluster.start_broker();
    let worker = cluster.start_worker("worker-1");
    process::wait_until("the appends archived", || {
        log_entries(&cluster, "MessageAppend").len() == lines.len()
    });
    drop(worker);
    let output = cluster.bonnie(&["dlp", "scan", "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    let hits: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let mut uids: Vec<u64> = hits.iter().map(|h| h["uid"].as_u64().unwrap()).collect();
    uids.sort();
    let expected: Vec<u64> = (1..=48).map(|n| n * 25).collect();
    assert_eq!(uids, expected);
}
