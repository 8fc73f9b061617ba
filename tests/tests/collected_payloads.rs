//! A message the collector says it handed over (too large for the job, written to the payload
//! store beside it) must be there: a job whose payload the store does not have is postponed,
//! then failed naming the payload, and never archived as if the message had been kept.

use bonnie_tests::worker::WorkerLab;
use serde_json::json;

#[test]
fn a_handed_over_message_missing_from_the_store_fails_its_job_and_is_not_archived() {
    let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
    let missing = "ab".repeat(32);
    let notification = json!({
        "event": "MessageAppend",
        "timestamp": "2026-12-01T08:15:01.000Z",
        "uri": "imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=7/;UID=1",
        "user": "john.doe@example.org",
        "messageContent": { "1": { "digest": missing, "size": 9_000_000, "in_store": true } },
    });
    lab.notifications(&[notification.to_string()]);
    lab.run();
    let outcomes = lab.outcomes_of("in.jsonl:1");
    let last = outcomes.last().expect("an outcome");
    assert_eq!(last["outcome"], "failed", "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o["outcome"] != "done"),
        "never done: {outcomes:?}"
    );
    let reason = last["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&missing) && reason.contains("not in the payload store"),
        "{reason}"
    );
    let archive = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    let logged: i64 = archive
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 0, "nothing archived without its message");
}
