//! The whole chain against a real Cyrus IMAP 3.6 and a real OpenLDAP: an IMAP client acts
//! like users do; Cyrus notifies bonnie-dealer (exec mode, then the daemon on a dlist socket);
//! the broker, a worker with every archive handler, and the collector (spool files, IMAP as
//! admin, LDAP) fill the SQLite store. The store is then checked: every action, users with
//! their LDAP dn and cn, folder metadata and ACL, and the exact message bytes by digest,
//! stored once however many folders hold them; also across a collector stopped mid-way.
//! The collector's failures (Cyrus away, messages gone) are in collector_faults.rs.

use bonnie_core::payload;
use bonnie_imap::quote;
use bonnie_tests::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    paths, process,
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";

/// A bonnie wired to this Cyrus and this directory, every archive handler asking the collector.
/// Groups added to the harness's tree, which already has John and Jane in `Staff` (a
/// groupOfUniqueNames): John is in `sales` (a groupOfNames), which is in `emea`, which is in
/// `sales` again (a cycle the collector must follow once).
const GROUPS: &str = "\
dn: cn=sales,ou=Groups,dc=example,dc=org
objectClass: groupOfNames
cn: sales
member: uid=john.doe,ou=People,dc=example,dc=org

dn: cn=emea,ou=Groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: emea
uniqueMember: cn=sales,ou=Groups,dc=example,dc=org

dn: cn=sales,ou=Groups,dc=example,dc=org
changetype: modify
add: member
member: cn=emea,ou=Groups,dc=example,dc=org
";

fn cluster(cyrus: &Cyrus, ldap: &Slapd) -> Cluster {
    Cluster::for_cyrus(cyrus, ldap, &[])
}

fn plain_mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <{JANE}>\r\nTo: John Doe <{JOHN}>\r\nSubject: {subject}\r\nDate: Sat, 28 Nov 2026 17:13:36 +0000\r\n\
         Message-ID: <{}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello,\r\nthis is {subject}.\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

fn kolab_event() -> Vec<u8> {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><components><vevent><properties>\
               <uid><text>5A637BF7-D0A8-4AB3-91F3-6C7B4B6F6D3B</text></uid><summary><text>Bonnie test event</text></summary>\
               </properties></vevent></components></vcalendar></icalendar>\r\n";
    format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\nFrom: {JOHN}\r\nTo: {JOHN}\r\n\
         Date: Sat, 28 Nov 2026 17:13:37 +0000\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\nX-Kolab-Mime-Version: 3.0\r\n\
         Subject: 5A637BF7-D0A8-4AB3-91F3-6C7B4B6F6D3B\r\n\r\n--=_b\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n\
         This is a Kolab Groupware object.\r\n\r\n--=_b\r\nContent-Type: application/calendar+xml; charset=UTF-8; name=kolab.xml\r\n\
         Content-Disposition: attachment; filename=kolab.xml\r\n\r\n{xml}--=_b--\r\n"
    )
    .into_bytes()
}

/// The messages the scenario stores, to check by digest.
struct Sent {
    plain: Vec<u8>,
    event: Vec<u8>,
    everywhere: Vec<u8>,
}

/// First half: accounts, folders, metadata, ACL, appends.
fn scenario_first_half(cyrus: &Cyrus) -> Sent {
    let mut admin = cyrus.login(ADMIN);
    for user in [JOHN, JANE] {
        admin
            .run(&format!("CREATE {}", quote(&format!("user/{user}"))), &[])
            .unwrap();
    }
    let mut john = cyrus.login(JOHN);
    for command in [
        "CREATE Calendar",
        "SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")",
        "CREATE Archive",
        "CREATE Tmp",
        "RENAME Tmp Tmp2",
        "DELETE Tmp2",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.run(&format!("SETACL Calendar {} lrs", quote(JANE)), &[])
        .unwrap();
    let sent = Sent {
        plain: plain_mail("plain test 1"),
        event: kolab_event(),
        everywhere: plain_mail("in three folders"),
    };
    john.append("INBOX", &Default::default(), &sent.plain)
        .unwrap();
    john.append("Calendar", &Default::default(), &sent.event)
        .unwrap();
    for folder in ["INBOX", "Archive", "Calendar"] {
        john.append(
            folder,
            &bonnie_imap::AppendOptions::flags(&["\\Seen"]),
            &sent.everywhere,
        )
        .unwrap();
    }
    john.logout().unwrap();
    admin.logout().unwrap();
    sent
}

/// Second half: copy, move, flags, expunge, LMTP, jane's visit.
fn scenario_second_half(cyrus: &Cyrus) {
    let mut john = cyrus.login(JOHN);
    john.select("INBOX").unwrap();
    for command in [
        "COPY 1 Archive",
        "UID MOVE 2 Archive",
        "STORE 1 +FLAGS (\\Flagged)",
        "STORE 1 +FLAGS (\\Deleted)",
        "EXPUNGE",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.logout().unwrap();
    cyrus.lmtp(JANE, &[JOHN], &plain_mail("delivered via lmtp"));
    let mut jane = cyrus.login(JANE);
    jane.run("LIST \"\" \"*\"", &[]).unwrap();
    jane.logout().unwrap();
}

fn count(events: &[Value], event: &str) -> usize {
    events.iter().filter(|e| e["event"] == event).count()
}

fn record_body(cluster: &Cluster, collection: &str, key: &str) -> Value {
    let body: String = cluster
        .archive()
        .query_row(
            "SELECT body FROM records WHERE collection = ?1 AND key = ?2",
            [collection, key],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no {collection}/{key}: {e}"));
    serde_json::from_str(&body).unwrap()
}

/// Everything the scenario did is in the store, with LDAP users, folder state and payloads.
fn check_store(cluster: &Cluster, ldap: &Slapd, sent: &Sent) {
    let events = cluster.log_records();
    for (event, at_least) in [
        ("Login", 3),
        ("Logout", 3),
        ("MailboxCreate", 5),
        ("MailboxRename", 1),
        ("MailboxDelete", 1),
        ("AclChange", 1),
        ("MessageAppend", 5),
        ("vnd.cmu.MessageCopy", 1),
        ("vnd.cmu.MessageMove", 1),
        ("FlagsSet", 1),
        ("MessageTrash", 1),
        ("MessageExpunge", 1),
        ("MessageNew", 1),
    ] {
        assert!(
            count(&events, event) >= at_least,
            "{event}: {} < {at_least}",
            count(&events, event)
        );
    }
    assert!(events.iter().all(|e| {
        e.get("collector_errors")
            .is_none_or(|c| c.get("GETUSERDATA").is_none())
    }));
    assert!(
        events
            .iter()
            .all(|e| e["user"] != ADMIN
                || !["Login", "Logout"].contains(&e["event"].as_str().unwrap())),
        "admin logins dropped"
    );

    // Users come from LDAP: their id is the entryUUID, with dn, cn and their static groups,
    // nested ones included.
    let john_id = ldap.entry_uuid("john.doe");
    let john = record_body(cluster, "users", &john_id);
    assert_eq!(john["dn"], "uid=john.doe,ou=People,dc=example,dc=org");
    assert_eq!(john["cn"], "John Doe");
    assert_eq!(john["resolved"], true);
    assert_eq!(
        john["groups"],
        serde_json::json!(["Staff", "emea", "sales"])
    );
    let johns = events
        .iter()
        .filter(|e| e["user"] == JOHN && e["event"] == "MessageAppend")
        .collect::<Vec<_>>();
    assert!(
        johns.iter().all(|e| e["user_id"] == john_id.as_str()),
        "{johns:?}"
    );
    // The LMTP delivery is john's, as recipient, in the record and in the log's columns.
    let deliveries: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "MessageNew")
        .collect();
    assert!(
        deliveries.iter().all(|e| e["delivery"] == true
            && e["recipient"] == JOHN
            && e["user"] == JOHN
            && e["user_id"] == john_id.as_str()),
        "{deliveries:?}"
    );
    let logged: Vec<(Option<String>, Option<String>)> = cluster
        .archive()
        .prepare("SELECT user, user_id FROM log WHERE event = 'MessageNew'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        !logged.is_empty()
            && logged
                .iter()
                .all(|(u, id)| u.as_deref() == Some(JOHN) && id.as_deref() == Some(&john_id)),
        "{logged:?}"
    );
    let jane = record_body(cluster, "users", &ldap.entry_uuid("jane.doe"));
    assert_eq!(jane["cn"], "Jane Doe");
    assert_eq!(jane["groups"], serde_json::json!(["Staff"]));

    // The Calendar's metadata (folder type) and ACL, from the collector.
    let calendar_append = events
        .iter()
        .find(|e| {
            e["event"] == "MessageAppend"
                && e["folder_name"] == "Calendar"
                && e["payload_digest"] == payload::digest(&sent.event).as_str()
        })
        .expect("the event object's append");
    let uniqueid = calendar_append["folder_uniqueid"].as_str().unwrap();
    let current = record_body(cluster, "folders-current", uniqueid);
    assert_eq!(current["type"], "event");
    assert_eq!(
        current["metadata"]["/shared/vendor/kolab/folder-type"],
        "event"
    );
    assert_eq!(current["acl"][JANE], "lrs");
    let state = record_body(
        cluster,
        "folders",
        calendar_append["folder_id"].as_str().unwrap(),
    );
    assert_eq!(state["type"], "event");
    assert_eq!(
        state["acl"][&john_id], "lrswipkxtecdan",
        "ACL subjects are user ids"
    );
    assert_eq!(calendar_append["folder_type"], "event");

    // The exact bytes, by digest; a message in three folders is stored once.
    for message in [&sent.plain, &sent.event, &sent.everywhere] {
        assert_eq!(&cluster.payload(&payload::digest(message)), message);
    }
    let everywhere = payload::digest(&sent.everywhere);
    let appended: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "MessageAppend" && e["payload_digest"] == everywhere.as_str())
        .collect();
    let folders: std::collections::BTreeSet<&str> = appended
        .iter()
        .filter_map(|e| e["folder_name"].as_str())
        .collect();
    assert_eq!(
        folders,
        ["Archive", "Calendar", "INBOX"].into_iter().collect()
    );
    let rows: i64 = cluster
        .archive()
        .query_row(
            "SELECT count(*) FROM payloads WHERE digest = ?1",
            [&everywhere],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);

    // Headers for the changelog on copies and moves; the LMTP delivery's payload.
    let moved = events
        .iter()
        .find(|e| e["event"] == "vnd.cmu.MessageMove")
        .unwrap();
    assert!(
        moved["messageHeaders"]
            .as_object()
            .is_some_and(|h| !h.is_empty()),
        "{moved}"
    );
    let delivered = events.iter().find(|e| e["event"] == "MessageNew").unwrap();
    assert_eq!(delivered["subject"], "delivered via lmtp");
    assert!(
        cluster
            .payload(delivered["payload_digest"].as_str().unwrap())
            .ends_with(b"this is delivered via lmtp.\r\n")
    );
    // Every message event's folder is known by state.
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "MessageAppend")
            .all(|e| e["folder_id"].is_string())
    );
    // The log's hash chain holds.
    assert_eq!(
        bonnie_sqlite_storage::log::verify(&cluster.archive()).unwrap(),
        None
    );
}

fn run_end_to_end(daemon: bool) {
    let ldap = Slapd::start();
    ldap.add(GROUPS);
    let mut cyrus = Cyrus::new();
    let cluster = cluster(&cyrus, &ldap);
    // Users are under People, their groups beside it, under Groups: `group_base`.
    let config = std::fs::read_to_string(cluster.config()).expect("reading the configuration");
    let people = "base = \"ou=People,dc=example,dc=org\"";
    assert!(config.contains(people));
    std::fs::write(
        cluster.config(),
        config.replace(
            people,
            &format!("{people}\ngroup_base = \"ou=Groups,dc=example,dc=org\""),
        ),
    )
    .expect("writing the configuration");
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let dealer = paths::bin("bonnie-dealer");
    let (socket, config) = (cluster.dealer_socket(), cluster.config());
    let _daemon = daemon.then(|| cluster.start_dealer_daemon());
    cyrus.start(if daemon {
        Notify::Daemon { socket: &socket }
    } else {
        Notify::Exec {
            dealer: &dealer,
            config: &config,
        }
    });
    let collector = cluster.start_collector("collector");

    let sent = scenario_first_half(&cyrus);
    // Stop the collector in the middle: the jobs that need it wait at the broker.
    collector.signal("TERM");
    assert!(process::succeeded(&collector.wait().status));
    scenario_second_half(&cyrus);
    process::wait_until("jobs waiting for the collector", || {
        cluster.status()["waiting_for_collectors"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    let _collector = cluster.start_collector("collector-again");
    cyrus.wait_until_archived(&cluster);
    check_store(&cluster, &ldap, &sent);
    assert!(!cyrus.master_log().contains("datagram too large"));
}

#[test]
fn cyrus_with_the_exec_dealer_archives_everything_once() {
    run_end_to_end(false);
}

#[test]
fn cyrus_with_the_dealer_daemon_archives_everything_once() {
    run_end_to_end(true);
}
