//! Objects by identity and access per revision, from real Cyrus IMAP 3.6 through the whole
//! chain (exec dealer, broker, worker with the archive handlers and `changelog`, collector,
//! LDAP) and read through bonnie-api, as an attacker would try it: a stub with another user's
//! event UID in one's own INBOX, an outside e-mail with the same Kolab headers delivered over
//! LMTP, and an event moved out of a folder one may read and updated there.

use bonnie_core::imap::uri::Mailbox;
use bonnie_imap::quote;
use bonnie_model::objects::{self, Fact};
use bonnie_tests::{
    api::revs,
    cluster::Cluster,
    kolab::{self, replace},
    lab::CyrusLab,
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const EVENT: &str = "5C1D2E3F-4A5B-4C6D-8E7F-90A1B2C3D4E5";
const DATE: &str = "Sat, 28 Nov 2026 09:00:00 +0000";

fn event(summary: &str, sequence: u32, from: &str) -> Vec<u8> {
    let sequence = format!("<integer>{sequence}</integer>");
    let summary = format!("<text>{summary}</text>");
    let xml = kolab::event_xml(
        EVENT,
        &[
            ("sequence", sequence.as_str()),
            ("summary", summary.as_str()),
            (
                "dtstart",
                &kolab::zoned("Europe/Berlin", "2026-12-01T10:00:00"),
            ),
        ],
    );
    kolab::message("event", EVENT, from, DATE, &xml)
}

fn calendar(client: &mut bonnie_imap::Connection, name: &str) {
    for command in [
        format!("CREATE {}", quote(name)),
        format!(
            "SETMETADATA {} (/shared/vendor/kolab/folder-type \"event\")",
            quote(name)
        ),
    ] {
        client
            .run(&command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
}

fn stored_facts(cluster: &Cluster) -> Vec<Fact> {
    cluster
        .archived_bodies(objects::FACTS)
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect()
}

/// `(op, user, mailbox)` of each change of a changelog answer.
fn summary(changelog: &Value) -> Vec<(String, String, String)> {
    changelog["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("not a changelog: {changelog}"))
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("op"), text("user"), text("mailbox"))
        })
        .collect()
}

#[test]
fn a_stub_with_another_users_uid_and_an_outside_email_are_nobodys_revision() {
    let lab = CyrusLab::start(&["bonnie-changelog"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let (_api, api) = cluster.start_api(&[]);
    let versions = [
        event("Board meeting", 0, JOHN),
        event("Board meeting", 1, JOHN),
    ];
    let mut john = cyrus.login(JOHN);
    calendar(&mut john, "Calendar");
    john.append("Calendar", &Default::default(), &versions[0])
        .unwrap();
    john.select("Calendar").unwrap();
    replace(&mut john, "Calendar", 1, &versions[1]);
    john.logout().unwrap();
    lab.wait_until_archived();
    let params = json!({ "uid": EVENT, "mailbox": "Calendar" });
    let before = api.call(JOHN, "event.changelog", params.clone());
    let john_revs = revs(&before);
    assert_eq!(john_revs.len(), 2, "{before}");

    // Jane's stub: John's event UID as the Subject, with X-Kolab-Type, in her own INBOX.
    let stub = event("Mine now", 7, JANE);
    let mut jane = cyrus.login(JANE);
    jane.append("INBOX", &Default::default(), &stub).unwrap();
    jane.logout().unwrap();
    // An outside e-mail with the same two headers, delivered to John.
    cyrus.lmtp(
        "mallory@elsewhere.example",
        &[JOHN],
        &event("Mallory's", 9, JANE),
    );
    lab.wait_until_archived();

    // Jane sees nothing of John's, through her INBOX or naming his calendar.
    for mailbox in ["INBOX", "Other Users/john.doe/Calendar"] {
        let named = |extra: Value| {
            let mut params = json!({ "uid": EVENT, "mailbox": mailbox });
            params
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            params
        };
        for method in ["event.changelog", "event.created", "event.lastmodified"] {
            assert_eq!(
                api.call(JANE, method, named(json!({}))),
                Value::Bool(false),
                "{method} through {mailbox}"
            );
        }
        for rev in &john_revs {
            for method in ["event.get", "event.rawdata"] {
                assert_eq!(
                    api.call(JANE, method, named(json!({ "rev": rev }))),
                    Value::Bool(false),
                    "{method} of John's revision {rev} through {mailbox}"
                );
            }
        }
    }
    // John's history is unchanged: no revision by Jane, none from the delivery.
    let after = api.call(JOHN, "event.changelog", params.clone());
    assert_eq!(after, before, "John's history");
    assert!(
        summary(&after)
            .iter()
            .all(|(_, user, mailbox)| user.contains(JOHN) && mailbox == "Calendar"),
        "{after}"
    );
    assert_eq!(
        api.call(
            JOHN,
            "event.changelog",
            json!({ "uid": EVENT, "mailbox": "INBOX" })
        ),
        Value::Bool(false),
        "the delivered e-mail is no revision in John's INBOX"
    );
    // Nothing in either INBOX was archived as a revision of any object.
    let inboxes = [
        Mailbox::of_user(JOHN, "INBOX").path,
        Mailbox::of_user(JANE, "INBOX").path,
    ];
    let facts = stored_facts(cluster);
    let in_inbox: Vec<&Fact> = facts
        .iter()
        .filter(|f| inboxes.contains(&f.place.folder) && !f.object_uid.is_empty())
        .collect();
    assert!(in_inbox.is_empty(), "{in_inbox:#?}");
    let johns: Vec<&Fact> = facts.iter().filter(|f| f.object_uid == EVENT).collect();
    assert!(
        johns.iter().all(|f| f.login.as_deref() == Some(JOHN)),
        "{johns:#?}"
    );
}

#[test]
fn an_event_moved_out_of_a_shared_folder_and_updated_there_is_not_read_through_it() {
    let lab = CyrusLab::start(&["bonnie-changelog"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let (_api, api) = cluster.start_api(&[]);
    let versions = [
        event("Salary review", 0, JOHN),
        event("Salary review", 1, JOHN),
    ];
    let mut john = cyrus.login(JOHN);
    calendar(&mut john, "Calendar");
    // A top-level folder: a child of Calendar would inherit Jane's rights.
    calendar(&mut john, "Private");
    john.run(&format!("SETACL Calendar {} lr", quote(JANE)), &[])
        .unwrap();
    john.append("Calendar", &Default::default(), &versions[0])
        .unwrap();
    john.select("Calendar").unwrap();
    john.run("UID MOVE 1 Private", &[]).unwrap();
    john.select("Private").unwrap();
    replace(&mut john, "Private", 1, &versions[1]);
    john.logout().unwrap();
    lab.wait_until_archived();

    let johns = api.call(
        JOHN,
        "event.changelog",
        json!({ "uid": EVENT, "mailbox": "Calendar" }),
    );
    let mailboxes: Vec<String> = summary(&johns).into_iter().map(|(_, _, m)| m).collect();
    assert_eq!(mailboxes, ["Calendar", "Private", "Private"], "{johns}");
    let all = revs(&johns);
    let shared = "Other Users/john.doe/Calendar";
    let janes = api.call(
        JANE,
        "event.changelog",
        json!({ "uid": EVENT, "mailbox": shared }),
    );
    assert_eq!(
        summary(&janes),
        [(
            "APPEND".to_string(),
            "John Doe <john.doe@example.org>".to_string(),
            shared.to_string()
        )],
        "Jane sees only the revision in the folder she may read: {janes}"
    );
    assert_eq!(revs(&janes), all[..1]);
    // The revisions in Private are not read by naming the old folder.
    for rev in &all[1..] {
        for method in ["event.get", "event.rawdata"] {
            assert_eq!(
                api.call(
                    JANE,
                    method,
                    json!({ "uid": EVENT, "rev": rev, "mailbox": shared })
                ),
                Value::Bool(false),
                "{method} of revision {rev}"
            );
        }
    }
    let last = api.call(
        JANE,
        "event.lastmodified",
        json!({ "uid": EVENT, "mailbox": shared }),
    );
    assert_eq!(last["rev"].as_i64(), Some(all[0]), "{last}");
    assert_eq!(
        api.call(
            JANE,
            "event.changelog",
            json!({ "uid": EVENT, "mailbox": "Other Users/john.doe/Private" })
        ),
        Value::Bool(false)
    );
    // The revision she may read is still hers to read.
    let first = api.call(
        JANE,
        "event.rawdata",
        json!({ "uid": EVENT, "rev": all[0], "mailbox": shared }),
    );
    assert_eq!(
        first.as_str().map(str::as_bytes),
        Some(versions[0].as_slice())
    );
}
