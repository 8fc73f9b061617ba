//! `bonnie reprocess --handler changelog`, `--handler freebusy` and `--handler items` on an
//! archive made without their output: the messages' trails, the Kolab event's revision and its
//! parsed events, the item documents and their custodians appear as the handlers would have
//! written them, from what the archive kept; a second run writes nothing more.

use bonnie_tests::{
    attached::{Attached, Notifications, create_user},
    cluster::Cluster,
    kolab, process,
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const EVENT_UID: &str = "7C1E5D2A-REPROCESS";

fn count(cluster: &Cluster, collection: &str) -> usize {
    cluster.archived_bodies(collection).len()
}

fn reprocess(cluster: &Cluster, handler: &str) -> Value {
    let output = cluster.bonnie(&["reprocess", "--handler", handler, "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("reprocess --json prints JSON")
}

#[test]
fn the_changelog_of_records_archived_before_it_was_enabled_is_made_once() {
    let lab = Attached::start_with(Notifications::Exec, &[]);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    create_user(cyrus, JOHN);
    let mut john = cyrus.login(JOHN);
    john.create("Calendar").unwrap();
    john.run(
        "SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")",
        &[],
    )
    .unwrap();
    let event = kolab::message(
        "event",
        EVENT_UID,
        JOHN,
        "Tue, 01 Dec 2026 10:00:00 +0000",
        &kolab::event_xml(
            EVENT_UID,
            &[
                ("summary", "<text>Planning</text>"),
                (
                    "dtstart",
                    &kolab::zoned("Europe/Berlin", "2026-12-01T10:00:00"),
                ),
                (
                    "dtend",
                    &kolab::zoned("Europe/Berlin", "2026-12-01T11:00:00"),
                ),
            ],
        ),
    );
    john.append("Calendar", &Default::default(), &event)
        .unwrap();
    john.append(
        "INBOX",
        &Default::default(),
        b"From: jane@example.org\r\nSubject: hello\r\nMessage-ID: <hello@example.org>\r\n\r\nHi.\r\n",
    )
    .unwrap();
    john.select("INBOX").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Flagged)", &[]).unwrap();
    john.logout().unwrap();
    cyrus.wait_until_archived(cluster);
    assert_eq!(count(cluster, "message-history"), 0, "no changelog ran");
    assert_eq!(count(cluster, "object-facts"), 0, "no changelog ran");

    let first = reprocess(cluster, "changelog");
    let trail = cluster.archived_bodies("message-history");
    let inbox: Vec<&String> = trail
        .iter()
        .filter(|b| b.contains(r#""folder":"user/john.doe@example.org""#))
        .collect();
    assert!(
        inbox
            .iter()
            .any(|b| b.contains(r#""event":"MessageAppend""#))
            && inbox.iter().any(|b| b.contains(r#""event":"FlagsSet""#)),
        "{trail:#?}"
    );
    let facts = cluster.archived_bodies("object-facts");
    assert!(
        facts.iter().any(|b| b.contains(EVENT_UID)),
        "the event's revision: {facts:#?}"
    );
    assert_eq!(
        first["trail_entries"].as_u64(),
        Some(trail.len() as u64),
        "{first}"
    );

    let again = reprocess(cluster, "changelog");
    assert_eq!(again["records"], first["records"], "{again}");
    assert_eq!(
        count(cluster, "message-history"),
        trail.len(),
        "written once"
    );
    assert_eq!(count(cluster, "object-facts"), facts.len(), "written once");

    // Free/busy's parsed events of the calendar object, once.
    assert_eq!(count(cluster, "freebusy-events"), 0, "no freebusy ran");
    let parsed = reprocess(cluster, "freebusy");
    assert_eq!(parsed["event_objects"], 1, "{parsed}");
    assert_eq!(parsed["event_objects_unreadable"], 0, "{parsed}");
    let events = cluster.archived_bodies("freebusy-events");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains("2026-12-01"), "{events:#?}");
    let again = reprocess(cluster, "freebusy");
    assert_eq!(again["event_objects"], 0, "{again}");
    assert_eq!(again["event_objects_known"], 1, "{again}");
    assert_eq!(count(cluster, "freebusy-events"), 1, "written once");

    // The e-discovery item documents of an archive made before they were kept: gone from the
    // storage (as bonnie 0.1 left it), written again from the log, found by a search; once.
    let archive = cluster.archive();
    let payloads: i64 = archive
        .query_row("SELECT COUNT(DISTINCT digest) FROM log_payloads", [], |r| {
            r.get(0)
        })
        .unwrap();
    archive
        .execute_batch(
            "DELETE FROM items_text WHERE rowid IN (SELECT id FROM items);
             DELETE FROM items; DELETE FROM records WHERE collection = 'items';",
        )
        .unwrap();
    drop(archive);
    let search = |query: &str| -> Vec<Value> {
        let output = cluster.bonnie(&["search", query, "--json"]);
        assert!(output.status.success(), "{}", process::describe(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    assert!(search("subject:hello").is_empty(), "no documents yet");
    let indexed = reprocess(cluster, "items");
    assert_eq!(
        indexed["item_documents"], payloads,
        "one a payload: {indexed}"
    );
    let found = search("subject:hello");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["message_id"], "<hello@example.org>");
    assert_eq!(search("type:event").len(), 1);
    assert_eq!(
        reprocess(cluster, "items")["item_documents"],
        0,
        "written once"
    );

    // Documents there but indexed otherwise (as by an older bonnie: here, no words at all):
    // only --rewrite writes them again, every one, from its payload.
    let archive = cluster.archive();
    archive
        .execute_batch("DELETE FROM items_text WHERE rowid IN (SELECT id FROM items);")
        .unwrap();
    drop(archive);
    assert!(search("subject:hello").is_empty(), "the words are gone");
    assert_eq!(reprocess(cluster, "items")["item_documents"], 0);
    let output = cluster.bonnie(&["reprocess", "--handler", "items", "--rewrite", "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    let rewritten: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rewritten["item_documents"], payloads, "{rewritten}");
    assert_eq!(rewritten["item_documents_payload_gone"], 0, "{rewritten}");
    assert_eq!(search("subject:hello").len(), 1);

    // The custodian records of an archive logged before they were kept (gone, with the mark
    // that they are complete): a search of John's mail judges every item until the log is
    // walked, then reads his payloads; both find the same.
    assert_eq!(
        count(cluster, "item-custodians"),
        payloads as usize + 1,
        "a new archive writes one a payload, and its mark"
    );
    let archive = cluster.archive();
    archive
        .execute_batch(
            "DELETE FROM records WHERE collection = 'item-custodians';
             DELETE FROM record_index WHERE collection = 'item-custodians';",
        )
        .unwrap();
    drop(archive);
    assert_eq!(search("user:john.doe subject:hello").len(), 1);
    let filled = reprocess(cluster, "items");
    assert_eq!(filled["custodian_records"], payloads, "{filled}");
    assert_eq!(count(cluster, "item-custodians"), payloads as usize + 1);
    assert_eq!(search("user:john.doe subject:hello").len(), 1);
    assert!(search("user:jane subject:hello").is_empty());
    let refused = cluster.bonnie(&["reprocess", "--handler", "changelog", "--rewrite"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only `--handler items`"),
        "{}",
        process::describe(&refused)
    );
}
