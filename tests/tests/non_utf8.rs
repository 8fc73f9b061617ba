//! Notifications that are not UTF-8 are archived, not rejected, on every input path: through
//! an exec-mode dealer and the dealer daemon to the broker and a worker, and through the
//! JSON-lines input. The record holds the fields decoded (UTF-8, else Windows-1252), the flag
//! `invalid_utf8`, and the exact bytes Cyrus sent; a UTF-8 notification is never touched.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    os::unix::net::UnixStream,
};

use bonnie_core::notification::{INVALID_UTF8_FIELD, RAW_FIELD, original_bytes};
use bonnie_tests::{
    cluster::{Cluster, dlist_request_bytes},
    process,
    worker::WorkerLab,
};
use serde_json::{Value, json};

/// A MessageAppend as Cyrus 3.6 writes it, whose envelope carries the subject `Grüße <n>` in
/// Latin-1 bytes (an 8-bit header passed through), so the JSON is not UTF-8.
fn latin1_append(n: u32) -> Vec<u8> {
    let envelope = format!(
        "(\"Sat, 28 Nov 2026 17:13:36 +0000\" \"GRUESSE {n}\" ((\"Jane Doe\" NIL \"jane.doe\" \"example.org\")) NIL NIL ((\"John Doe\" NIL \"john.doe\" \"example.org\")) NIL NIL NIL \"<{n}@example.org>\")"
    );
    let json = json!({
        "event": "MessageAppend",
        "timestamp": "2026-11-28T17:13:36.258Z",
        "service": "imap",
        "mailboxID": "wrp915vo4ftuwc6ncu10wvjw",
        "uri": format!("imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=1795885999/;UID={n}"),
        "modseq": 2,
        "uidnext": n + 1,
        "vnd.cmu.midset": [format!("<{n}@example.org>")],
        "user": "john.doe@example.org",
        "serverFQDN": "cyrus-lab.example.org",
        "vnd.cmu.envelope": envelope,
    })
    .to_string();
    let (before, after) = json.split_once("GRUESSE").expect("the placeholder");
    [before.as_bytes(), b"Gr\xfc\xdfe", after.as_bytes()].concat()
}

/// The archived records: the flagged ones by the bytes they were made from, and the others.
fn archived(db: &rusqlite::Connection) -> (BTreeMap<Vec<u8>, Value>, Vec<Value>) {
    let mut stmt = db.prepare("SELECT record FROM log ORDER BY seq").unwrap();
    let records: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (mut flagged, mut plain) = (BTreeMap::new(), Vec::new());
    for text in records {
        let record: Value = serde_json::from_str(&text).unwrap();
        match original_bytes(&record) {
            Some(bytes) => {
                flagged.insert(bytes, record);
            }
            None => plain.push(record),
        }
    }
    (flagged, plain)
}

/// A record made from a UTF-8 notification: neither flagged nor given a copy of its bytes,
/// its fields as Cyrus wrote them (even a U+FFFD).
fn assert_untouched(plain: &[Value]) {
    let [record] = plain else {
        panic!("one UTF-8 record: {plain:?}");
    };
    assert!(record.get(INVALID_UTF8_FIELD).is_none(), "{record}");
    assert!(record.get(RAW_FIELD).is_none(), "{record}");
    assert!(
        record["subject"]
            .as_str()
            .unwrap()
            .starts_with("Gr\u{fffd}\u{fffd}e "),
        "{record}"
    );
}

/// What a flagged record must hold: Cyrus's fields decoded under their own names, the
/// handler's fields made from them, the flag, and the bytes.
fn assert_archived_decoded(record: &Value, bytes: &[u8], n: u32) {
    assert_eq!(record[INVALID_UTF8_FIELD], true, "{record}");
    assert_eq!(original_bytes(record).as_deref(), Some(bytes), "{record}");
    assert_eq!(record["event"], "MessageAppend");
    assert_eq!(record["user"], "john.doe@example.org");
    assert_eq!(record["timestamp"], "2026-11-28T17:13:36.258Z");
    assert!(
        record["vnd.cmu.envelope"]
            .as_str()
            .unwrap()
            .contains(&format!("\"Grüße {n}\"")),
        "{record}"
    );
    assert_eq!(record["subject"], format!("Grüße {n}"), "{record}");
}

#[test]
fn latin1_notifications_from_exec_and_daemon_dealers_are_archived_decoded_flagged_with_their_bytes()
{
    let cluster = Cluster::new(&["bonnie-messageappend"], "");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _daemon = cluster.start_dealer_daemon();

    let exec = latin1_append(1);
    let output = cluster.deal(&exec);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let daemon = latin1_append(2);
    let mut stream = UnixStream::connect(cluster.dealer_socket()).unwrap();
    stream.write_all(&dlist_request_bytes(&daemon)).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "OK NIL\r\n");
    let utf8 = String::from_utf8_lossy(&latin1_append(3)).into_owned();
    assert!(process::succeeded(&cluster.deal(utf8.as_bytes()).status));

    process::wait_until("three records archived", || cluster.archived() == 3);
    let (flagged, plain) = archived(&cluster.archive());
    assert_eq!(flagged.len(), 2);
    assert_archived_decoded(&flagged[&exec], &exec, 1);
    assert_archived_decoded(&flagged[&daemon], &daemon, 2);
    assert_untouched(&plain);
    process::wait_until("every job DONE", || cluster.idle());
    assert_eq!(cluster.status()["jobs"]["FAILED"], 0);
}

#[test]
fn a_latin1_line_of_the_jsonl_input_is_archived_decoded_flagged_with_its_bytes() {
    let lab = WorkerLab::with_plugins(&["bonnie-messageappend"], "");
    let latin1 = latin1_append(1);
    let utf8 = String::from_utf8_lossy(&latin1_append(2)).into_owned();
    let file = [&latin1[..], b"\r\n", utf8.as_bytes(), b"\n"].concat();
    std::fs::write(lab.path().join("in.jsonl"), file).unwrap();
    let output = lab.run();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not valid UTF-8"),
        "the worker says so: {}",
        process::describe(&output)
    );

    let db = rusqlite::Connection::open(lab.path().join("var/bonnie.db")).unwrap();
    let (flagged, plain) = archived(&db);
    assert_eq!(flagged.len(), 1);
    assert_archived_decoded(&flagged[&latin1], &latin1, 1);
    assert_untouched(&plain);
    // The output writes the same record; both lines are done.
    let written = lab.record("in.jsonl:1");
    assert_eq!(original_bytes(&written).as_deref(), Some(&latin1[..]));
    assert_eq!(lab.outcome("in.jsonl:1")["outcome"], "done");
    assert_eq!(lab.outcome("in.jsonl:2")["outcome"], "done");
}
