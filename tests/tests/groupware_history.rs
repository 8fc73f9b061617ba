//! The history of Kolab groupware objects, from real Cyrus IMAP 3.6 through the whole chain
//! (exec dealer, broker, worker with the archive handlers and `changelog`, collector, LDAP):
//! an event created, updated twice the way Kolab clients update (append the new version, then
//! delete and expunge the old), once by another user with write access, then moved.

use bonnie_core::payload;
use bonnie_imap::quote;
use bonnie_model::objects::{self, Fact, Op};
use bonnie_tests::{cluster::Cluster, kolab, lab::CyrusLab};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const EVENT_UID: &str = "2B1C7E1A-6C3F-4C8E-9B57-0E5D1C0F4A11";

fn version(summary: &str, location: &str, sequence: u32) -> Vec<u8> {
    let xml = kolab::event_xml(
        EVENT_UID,
        &[
            ("created", "<date-time>2026-11-28T09:00:00Z</date-time>"),
            ("dtstamp", "<date-time>2026-11-28T09:00:00Z</date-time>"),
            ("sequence", &format!("<integer>{sequence}</integer>")),
            ("summary", &format!("<text>{summary}</text>")),
            ("location", &format!("<text>{location}</text>")),
            (
                "dtstart",
                "<parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T10:00:00</date-time>",
            ),
            (
                "dtend",
                "<parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T11:00:00</date-time>",
            ),
        ],
    );
    kolab::message(
        "event",
        EVENT_UID,
        JOHN,
        "Sat, 28 Nov 2026 09:00:00 +0000",
        &xml,
    )
}

fn stored_facts(cluster: &Cluster) -> Vec<Fact> {
    cluster
        .archived_bodies(objects::FACTS)
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .filter(|fact: &Fact| fact.object_uid == EVENT_UID)
        .collect()
}

#[test]
fn an_event_created_updated_twice_and_moved_has_four_revisions() {
    let lab = CyrusLab::start(&["bonnie-changelog"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let versions = [
        version("Planning", "Room 1", 0),
        version("Planning (moved)", "Room 1", 1),
        version("Planning (moved)", "Room 2", 2),
    ];
    let mut john = cyrus.login(JOHN);
    for command in [
        "CREATE Calendar",
        "SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")",
        "CREATE Calendar/Archive",
        "SETMETADATA Calendar/Archive (/shared/vendor/kolab/folder-type \"event\")",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.run(&format!("SETACL Calendar {} lrswitedn", quote(JANE)), &[])
        .unwrap();
    // Created by John; updated by John.
    john.append("Calendar", &Default::default(), &versions[0])
        .unwrap();
    john.append("Calendar", &Default::default(), &versions[1])
        .unwrap();
    john.select("Calendar").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Deleted)", &[]).unwrap();
    john.run("UID EXPUNGE 1", &[]).unwrap();
    john.logout().unwrap();
    // Updated by Jane, in John's calendar.
    let mut jane = cyrus.login(JANE);
    let shared = "Other Users/john.doe/Calendar";
    jane.select(shared)
        .unwrap_or_else(|e| panic!("jane selects John's calendar: {e}"));
    jane.append(shared, &Default::default(), &versions[2])
        .unwrap_or_else(|e| panic!("jane appends: {e}"));
    jane.run("UID STORE 2 +FLAGS (\\Deleted)", &[]).unwrap();
    jane.run("UID EXPUNGE 2", &[]).unwrap();
    jane.logout().unwrap();
    // Moved by John.
    let mut john = cyrus.login(JOHN);
    john.select("Calendar").unwrap();
    john.run("UID MOVE 3 Calendar/Archive", &[]).unwrap();
    john.logout().unwrap();

    lab.wait_until_archived();
    let facts = stored_facts(cluster);
    let changes = objects::changelog(facts.clone());
    let summary: Vec<(Op, Option<&str>)> =
        changes.iter().map(|c| (c.op, c.login.as_deref())).collect();
    assert_eq!(
        summary,
        [
            (Op::Append, Some(JOHN)),
            (Op::Update, Some(JOHN)),
            (Op::Update, Some(JANE)),
            (Op::Move, Some(JOHN)),
        ],
        "facts: {facts:#?}"
    );
    // Each revision is the exact message of that version, kept in the store.
    for (change, expected) in changes.iter().zip([0, 1, 2, 2]) {
        let digest = change
            .digest
            .as_deref()
            .expect("a revision has its payload");
        assert_eq!(digest, payload::digest(&versions[expected]));
        assert_eq!(cluster.payload(digest), versions[expected]);
    }
    assert!(changes.windows(2).all(|w| w[0].rev < w[1].rev));
    assert_eq!(changes[0].folder, "user/john.doe/Calendar@example.org");
    assert_eq!(changes[2].folder, "user/john.doe/Calendar@example.org");
    assert_eq!(
        changes[3].folder,
        "user/john.doe/Calendar/Archive@example.org"
    );
}
