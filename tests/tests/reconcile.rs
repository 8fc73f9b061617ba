//! `bonnie reconcile` against a real Cyrus 3.6 whose notifications of john's were dropped for a
//! while (a dealer drop rule stands in for a dealer not running: Cyrus sends, nothing
//! arrives): it finds exactly the messages, the folder and the deletion the archive never
//! heard of, fills them, each gap a record; a second reconciliation finds none. The same with
//! the dealer daemon stopped for a while, on both storages.

use bonnie_plugin_api::storage::RecordQuery;
use bonnie_tests::{
    attached::{Attached, Notifications, create_user},
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    ldap::Slapd,
    on_both_storages, process,
    storages::{self, Storage},
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";

fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: {JOHN}\r\nTo: {JOHN}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nThis is {subject}.\r\n"
    )
    .into_bytes()
}

/// A message whose subject alone is 40 KB.
fn big_mail() -> Vec<u8> {
    let words: Vec<String> = (0..4000).map(|n| format!("word{n:05}")).collect();
    let mut message = mail("big");
    let subject = format!("Subject: big {}\r\n", words.join("\r\n "));
    message.splice(0..0, subject.into_bytes());
    message
}

fn reconcile(cluster: &Cluster) -> Value {
    let output = cluster.bonnie(&["reconcile", "--user", JOHN, "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("reconcile --json prints JSON")
}

#[test]
fn reconcile_fills_exactly_the_dropped_notifications_gaps() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);

    // Archived live.
    create_user(cyrus, JOHN);
    let mut john = cyrus.login(JOHN);
    john.create("Alt").unwrap();
    for subject in ["live-1", "live-2"] {
        john.append("INBOX", &Default::default(), &mail(subject))
            .unwrap();
    }
    // Its notification is over Cyrus's datagram size (the envelope holds the long subject):
    // Cyrus sends nothing of it.
    john.append("INBOX", &Default::default(), &big_mail())
        .unwrap();
    john.select("INBOX").unwrap();
    john.run("UID STORE 2 +FLAGS (\\Seen $Wichtig)", &[])
        .unwrap();
    john.logout().unwrap();
    cyrus.wait_until_archived(cluster);
    let big = bonnie_core::payload::digest(&big_mail());
    assert!(
        cluster
            .log_records()
            .iter()
            .all(|r| r["payload_digest"] != big.as_str()),
        "the big message's notification arrived: no gap to find"
    );

    // john's notifications are lost from now on.
    let text = std::fs::read_to_string(cluster.config()).unwrap();
    let dropping = text.replace(
        r#"drop_event_users = ["Login cyrus", "Logout cyrus"]"#,
        &format!(
            r#"drop_event_users = ["Login cyrus", "Logout cyrus", "MessageAppend {JOHN}", "MailboxCreate {JOHN}", "MailboxDelete {JOHN}", "MailboxModseq {JOHN}", "MailboxSubscribe {JOHN}", "AclChange {JOHN}", "MessageNew {JOHN}", "FlagsSet {JOHN}", "FlagsClear {JOHN}"]
drop_events = ["MailboxModseq"]"#
        ),
    );
    assert_ne!(text, dropping);
    std::fs::write(cluster.config(), dropping).unwrap();
    let mut john = cyrus.login(JOHN);
    for subject in ["lost-1", "lost-2"] {
        john.append("INBOX", &Default::default(), &mail(subject))
            .unwrap();
    }
    john.select("INBOX").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Flagged $Label2)", &[])
        .unwrap();
    john.run("UID STORE 2 -FLAGS (\\Seen)", &[]).unwrap();
    john.create("Neu").unwrap();
    john.append("Neu", &Default::default(), &mail("lost-3"))
        .unwrap();
    john.delete("Alt").unwrap();
    john.logout().unwrap();
    // The probe is the admin's: its notification arrives after those dropped.
    cyrus.wait_until_archived(cluster);
    let before = cluster.log_records().len();

    let found = reconcile(cluster);
    assert_eq!(found["missing_messages"], 4, "{found}");
    assert_eq!(found["flag_changes"], 2, "{found}");
    assert_eq!(found["unknown_folders"], 1, "{found}");
    assert_eq!(found["vanished_folders"], 1, "{found}");
    cluster.wait_until_drained();
    let records = cluster.log_records();
    let new = &records[before..];
    let gaps: Vec<&Value> = new
        .iter()
        .filter(|r| r["event"] == "vnd.bonnie.ReconcileGap")
        .collect();
    assert_eq!(gaps.len(), 8, "{gaps:#?}");
    let flagged = gaps
        .iter()
        .find(|g| g["gap"]["kind"] == "flags_changed" && g["gap"]["uid"] == 1)
        .unwrap_or_else(|| panic!("no flag gap of UID 1: {gaps:#?}"));
    assert_eq!(
        flagged["gap"]["set"].as_array().unwrap().len(),
        2,
        "{flagged}"
    );
    let flags = flagged["gap"]["flags"].to_string();
    assert!(
        flags.contains("Flagged") && flags.contains("$Label2"),
        "{flagged}"
    );
    // The flags Cyrus has now are in the messages' trails, as set and cleared: what a restore
    // as of now reads.
    let trail: Vec<Value> = cluster
        .archived_bodies("message-history")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .filter(|e: &Value| e["folder"] == format!("user/{JOHN}"))
        .collect();
    let changed = |event: &str, uid: u64| -> Vec<String> {
        trail
            .iter()
            .filter(|e| e["event"] == event && e["uid"] == uid)
            .flat_map(|e| e["flags"].as_array().unwrap().iter())
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    let set_on_1 = changed("FlagsSet", 1);
    assert!(
        set_on_1.contains(&"\\Flagged".to_string()) && set_on_1.contains(&"$Label2".to_string()),
        "{trail:#?}"
    );
    // $Wichtig, set live and kept, is not cleared.
    assert_eq!(changed("FlagsClear", 2), ["\\Seen"], "{trail:#?}");
    for message in [mail("lost-1"), mail("lost-2"), mail("lost-3"), big_mail()] {
        let digest = bonnie_core::payload::digest(&message);
        let filled: Vec<&Value> = new
            .iter()
            .filter(|r| r["event"] == "MessageAppend" && r["payload_digest"] == digest.as_str())
            .collect();
        assert_eq!(filled.len(), 1, "{new:#?}");
        assert_eq!(cluster.payload(&digest), message, "byte-exact");
        assert_eq!(filled[0]["vnd.bonnie.backfill"]["gap"], "missing_message");
    }
    assert!(
        new.iter().any(|r| r["event"] == "MailboxDelete"
            && r["folder_name"] == "Alt"
            && r["backfilled"] == true),
        "{new:#?}"
    );
    assert!(
        new.iter()
            .any(|r| r["event"] == "MailboxCreate" && r["folder_name"] == "Neu"),
        "{new:#?}"
    );

    let again = reconcile(cluster);
    for kind in [
        "missing_messages",
        "unknown_folders",
        "vanished_folders",
        "flag_changes",
    ] {
        assert_eq!(again[kind], 0, "{kind}: {again}");
    }
}

/// Every entry of the event log, read through the storage plugin as bonnie-api reads it.
fn logged(cluster: &Cluster, archive: &storages::Archive) -> Vec<Value> {
    if let Some(server) = &archive.server {
        server.refresh();
    }
    let query = RecordQuery {
        collection: "log".to_string(),
        all: true,
        ..RecordQuery::default()
    };
    storages::open(&cluster.config())
        .query(&query)
        .expect("the event log")
        .iter()
        .map(|r| r.json().expect("a JSON record"))
        .collect()
}

/// How many MessageAppend records of the log hold `message`.
fn appended(records: &[Value], message: &[u8]) -> usize {
    let digest = bonnie_core::payload::digest(message);
    records
        .iter()
        .filter(|r| r["event"] == "MessageAppend" && r["payload_digest"] == digest.as_str())
        .count()
}

fn reconcile_finds_what_cyrus_sent_while_the_dealer_daemon_was_down(storage: Storage) {
    let ldap = Slapd::start();
    let mut cyrus = Cyrus::new();
    let cluster = Cluster::for_cyrus(&cyrus, &ldap, &[]);
    let archive = cluster.use_storage(storage);
    let _broker = cluster.start_broker();
    let _workers = cluster.start_workers(&["worker-1", "worker-2"]);
    let daemon = cluster.start_dealer_daemon();
    let socket = cluster.dealer_socket();
    cyrus.start(Notify::Daemon { socket: &socket });
    let _collector = cluster.start_collector("collector");

    create_user(&cyrus, JOHN);
    let mut john = cyrus.login(JOHN);
    john.append("INBOX", &Default::default(), &mail("before"))
        .unwrap();
    john.logout().unwrap();
    cyrus.wait_until_archived(&cluster);
    assert_eq!(appended(&logged(&cluster, &archive), &mail("before")), 1);

    // The dealer is not running: imapd finds no one at the socket and drops its notifications.
    daemon.signal("TERM");
    assert!(process::succeeded(&daemon.wait().status));
    let mut john = cyrus.login(JOHN);
    let lost = [mail("while-down-1"), mail("while-down-2")];
    for message in &lost {
        john.append("INBOX", &Default::default(), message).unwrap();
    }
    john.logout().unwrap();
    let _daemon = cluster.start_dealer_daemon();
    cyrus.wait_until_archived(&cluster);
    let records = logged(&cluster, &archive);
    assert!(
        lost.iter().all(|m| appended(&records, m) == 0),
        "a notification arrived: no gap to find"
    );

    let found = reconcile(&cluster);
    assert_eq!(found["missing_messages"], 2, "{found}");
    assert_eq!(found["unknown_folders"], 0, "{found}");
    assert_eq!(found["vanished_folders"], 0, "{found}");
    cluster.wait_until_drained();
    let records = logged(&cluster, &archive);
    for message in &lost {
        assert_eq!(appended(&records, message), 1);
    }
    let again = reconcile(&cluster);
    assert_eq!(again["missing_messages"], 0, "{again}");
    assert_eq!(again["flag_changes"], 0, "{again}");
}

on_both_storages!(reconcile_finds_what_cyrus_sent_while_the_dealer_daemon_was_down);

#[test]
fn a_folder_the_admin_may_no_longer_read_has_not_vanished() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let mut admin = cyrus.login(ADMIN);
    admin.create("Gemeinsam").unwrap();
    admin
        .run("SETACL Gemeinsam cyrus lrswipkxtecdan", &[])
        .unwrap();
    admin
        .append("Gemeinsam", &Default::default(), &mail("shared"))
        .unwrap();
    admin.run("DELETEACL Gemeinsam cyrus", &[]).unwrap();
    admin.run("DELETEACL Gemeinsam anyone", &[]).unwrap();
    admin.logout().unwrap();
    cyrus.wait_until_archived(cluster);
    assert!(
        cluster
            .archived_bodies("folders-current")
            .iter()
            .any(|b| b.contains(r#""path":"Gemeinsam""#)),
        "the archive knows the folder"
    );

    let output = cluster.bonnie(&["reconcile", "--all", "--json"]);
    assert!(output.status.success(), "{}", process::describe(&output));
    let found: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(found["vanished_folders"], 0, "{found}");
    let status = cluster.status();
    assert!(
        status["backfill"]["refused"]
            .to_string()
            .contains("Gemeinsam"),
        "{status}"
    );
}
