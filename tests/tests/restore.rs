//! `bonnie restore` against a real Cyrus 3.6 archived live by the real pipeline (exec dealer,
//! broker, two workers, collector, the changelog as shipped): a history of appends (non-ASCII
//! subjects, a non-ASCII folder, set INTERNALDATEs), flag changes, a move between folders, a
//! folder renamed then deleted, an expunge, a calendar (its folder type comes back) whose
//! event is updated three times (one revision restored at each moment). Restores as of several moments go into new
//! folders and are compared over IMAP with the state expected at each moment exactly
//! (folders, message bytes, flags, INTERNALDATE); a rerun adds nothing; `--dry-run` changes
//! nothing; a restore killed midway (SIGKILL while `--rate` holds it back) and run again ends
//! with each message there once.

use std::collections::BTreeSet;

use bonnie_core::time::{format_rfc3339_ms, now_ms};
use bonnie_imap::{AppendOptions, Connection};
use bonnie_tests::{
    attached::{Attached, Notifications, create_user},
    cluster::Cluster,
    cyrus::{Cyrus, Held},
    kolab,
    process::{self, ChildGuard},
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";

/// A message with this subject (non-ASCII in its encoded Subject and its UTF-8 body).
fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane.doe@example.org>\r\nTo: John Doe <{JOHN}>\r\n\
         Subject: =?UTF-8?B?{}?=\r\nDate: Sat, 28 Nov 2026 17:13:36 +0000\r\n\
         Message-ID: <{}@restore.example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße — {subject}.\r\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, subject),
        subject
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
    .into_bytes()
}

/// An INTERNALDATE years before the test runs, a different one per message.
fn internal_date(day: i8) -> jiff::Zoned {
    jiff::civil::date(2020, 3, day)
        .at(10, 30, 15, 0)
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)))
        .unwrap()
}

/// A message as IMAP shows it.
type Shown = Held;

fn shown(bytes: &[u8], flags: &[&str], date: &jiff::Zoned) -> Shown {
    Shown {
        bytes: bytes.to_vec(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        internaldate_ms: date.timestamp().as_millisecond(),
    }
}

/// What `folder` holds as john sees it, ordered by bytes.
fn folder(cyrus: &Cyrus, folder: &str) -> Vec<Shown> {
    cyrus.held(JOHN, folder)
}

/// The folders john has.
fn folders(cyrus: &Cyrus) -> BTreeSet<String> {
    let mut john = cyrus.login(JOHN);
    let listed = john.list("", "*").unwrap();
    john.logout().unwrap();
    listed.into_iter().map(|e| e.name).collect()
}

fn restore(cluster: &Cluster, args: &[&str]) -> Value {
    let output = cluster.bonnie(&[&["restore", "--json", "--user", JOHN], args].concat());
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("restore --json prints JSON")
}

/// The moment now, once every notification so far is archived; the next change comes after
/// it.
fn moment(cyrus: &Cyrus, cluster: &Cluster) -> String {
    cyrus.wait_until_archived(cluster);
    let t = now_ms();
    process::wait_until("the clock to pass the moment", || now_ms() > t);
    format_rfc3339_ms(t)
}

fn append(john: &mut Connection, to: &str, bytes: &[u8], flags: &[&str], date: &jiff::Zoned) {
    let options = AppendOptions {
        internal_date: Some(date.clone()),
        ..AppendOptions::flags(flags)
    };
    john.append(to, &options, bytes)
        .unwrap_or_else(|e| panic!("APPEND to {to}: {e}"));
}

#[test]
fn a_mailbox_is_restored_as_it_was_at_each_moment() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    create_user(cyrus, JOHN);
    let (m1, m2, m3) = (mail("Grüße eins"), mail("Привет два"), mail("三 drei"));
    let (d1, d2, d3) = (internal_date(1), internal_date(2), internal_date(3));
    let (m4, d4) = (mail("Проект vier"), internal_date(4));

    // T1: two messages in INBOX, one in a non-ASCII folder.
    let mut john = cyrus.login(JOHN);
    john.create("Работа").unwrap();
    john.create("Projekt").unwrap();
    // Shared with a colleague: its ACL comes back when it is put back under its own name.
    john.run("SETACL Projekt jane.doe@example.org lrs", &[])
        .unwrap();
    append(&mut john, "INBOX", &m1, &["\\Seen"], &d1);
    append(&mut john, "INBOX", &m2, &["$Label1"], &d2);
    append(&mut john, "Работа", &m3, &["\\Flagged"], &d3);
    john.create("Работа/Проекты").unwrap();
    append(&mut john, "Работа/Проекты", &m4, &["$Label2"], &d4);
    // A calendar: its folder type comes back with it.
    john.create("Kalender").unwrap();
    john.run(
        "SETMETADATA Kalender (/shared/vendor/kolab/folder-type \"event\")",
        &[],
    )
    .unwrap();
    let revision = |n: u32| {
        kolab::message(
            "event",
            "5A637BF7-RESTORE",
            JOHN,
            "Sat, 28 Nov 2026 17:13:37 +0000",
            &kolab::event_xml(
                "5A637BF7-RESTORE",
                &[("summary", &format!("<text>Revision {n}</text>"))],
            ),
        )
    };
    let event = revision(1);
    append(&mut john, "Kalender", &event, &[], &d3);
    john.logout().unwrap();
    let t1 = moment(cyrus, cluster);

    // T2: flags changed, message 2 moved to Projekt.
    let mut john = cyrus.login(JOHN);
    john.select("INBOX").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Flagged)", &[]).unwrap();
    john.run("UID STORE 2 -FLAGS ($Label1)", &[]).unwrap();
    john.run("UID STORE 2 +FLAGS (\\Answered)", &[]).unwrap();
    john.run("UID MOVE 2 Projekt", &[]).unwrap();
    // The event updated: the new revision appended, the old one flagged, not expunged yet.
    append(&mut john, "Kalender", &revision(2), &[], &d3);
    john.select("Kalender").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Deleted)", &[]).unwrap();
    john.logout().unwrap();
    let t2 = moment(cyrus, cluster);

    // Then: Projekt renamed and deleted, message 1 expunged.
    let mut john = cyrus.login(JOHN);
    john.run("RENAME Projekt Projekt2", &[]).unwrap();
    john.select("INBOX").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Deleted)", &[]).unwrap();
    john.run("EXPUNGE", &[]).unwrap();
    john.run("DELETE Projekt2", &[]).unwrap();
    // The parent renamed: Cyrus notifies its rename, not its subfolder's.
    let wire = |name: &str| bonnie_imap::quote(&bonnie_imap::utf7::encode(name));
    john.run(
        &format!("RENAME {} {}", wire("Работа"), wire("Работа-alt")),
        &[],
    )
    .unwrap();
    // Updated again, the old revisions expunged.
    append(&mut john, "Kalender", &revision(3), &[], &d3);
    john.select("Kalender").unwrap();
    john.run("UID STORE 2 +FLAGS (\\Deleted)", &[]).unwrap();
    john.run("EXPUNGE", &[]).unwrap();
    john.logout().unwrap();
    let t3 = moment(cyrus, cluster);

    // INBOX at T1, into the default Restored/<moment>/INBOX.
    let first = restore(cluster, &["--folder", "INBOX", "--as-of", &t1]);
    assert_eq!(first["appended_count"], 2, "{first}");
    let target = first["folders"][0]["target"].as_str().unwrap().to_string();
    assert!(
        target.starts_with("Restored/") && target.ends_with("/INBOX"),
        "{first}"
    );
    let mut expected = vec![shown(&m1, &["\\Seen"], &d1), shown(&m2, &["$Label1"], &d2)];
    expected.sort();
    assert_eq!(folder(cyrus, &target), expected);

    // A rerun adds nothing.
    let again = restore(cluster, &["--folder", "INBOX", "--as-of", &t1]);
    assert_eq!(again["appended_count"], 0, "{again}");
    assert_eq!(again["present_count"], 2, "{again}");
    assert_eq!(folder(cyrus, &target), expected);
    // Audited: the restore, and its folder with each archived UID, new UID and digest.
    let audit = cluster.bonnie(&["audit", "--json"]);
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let records = audit.as_array().unwrap();
    assert_eq!(
        records.iter().filter(|r| r["action"] == "restore").count(),
        4,
        "requested and done, twice: {audit}"
    );
    let step = records
        .iter()
        .find(|r| r["action"] == "restore-folder" && r["params"]["target"] == target.as_str())
        .expect("the folder's audit record");
    let first_uid = first["folders"][0]["appended"][0]["new_uid"].clone();
    assert_eq!(step["params"]["appended"][0][1], first_uid, "{step}");
    assert_eq!(step["count"], 2, "{step}");
    // Its own appends, archived from Cyrus's notifications, are the restore's, not John's.
    cyrus.wait_until_archived(cluster);
    let run = first["run"].as_str().unwrap();
    for (bytes, old_uid) in [(&m1, 1), (&m2, 2)] {
        let digest = bonnie_core::payload::digest(bytes);
        let records = cluster.log_records();
        let restored: Vec<&Value> = records
            .iter()
            .filter(|r| r["event"] == "MessageAppend" && r["folder_name"] == target.as_str())
            .filter(|r| r["payload_digest"] == digest.as_str())
            .collect();
        assert_eq!(restored.len(), 1, "{target}: {restored:#?}");
        let by = &restored[0]["restored_by"];
        assert_eq!(by["run"], run, "{by}");
        assert_eq!(by["as_of"], first["as_of"], "{by}");
        assert_eq!(by["from"]["folder"], "INBOX", "{by}");
        assert_eq!(by["from"]["uid"], old_uid, "{by}");
        // John's own append of it is not.
        assert!(records.iter().any(|r| r["event"] == "MessageAppend"
            && r["folder_name"] == "INBOX"
            && r["payload_digest"] == digest.as_str()
            && r.get("restored_by").is_none()));
        let output = cluster.bonnie(&["show", "--json", "--", &digest]);
        assert!(output.status.success(), "{}", process::describe(&output));
        let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
        let places = shown["places"].as_array().unwrap();
        let marked: Vec<&Value> = places
            .iter()
            .filter(|p| p["restored_by"]["run"] == run)
            .collect();
        assert_eq!(marked.len(), 1, "{shown}");
        assert_eq!(marked[0]["name"], target.as_str(), "{shown}");
        assert!(
            places
                .iter()
                .any(|p| p["name"] == "INBOX" && p.get("restored_by").is_none()),
            "{shown}"
        );
    }

    // INBOX at T2: message 1 with its new flag; message 2 moved away.
    restore(
        cluster,
        &["--folder", "INBOX", "--as-of", &t2, "--into", "At2/INBOX"],
    );
    assert_eq!(
        folder(cyrus, "At2/INBOX"),
        vec![shown(&m1, &["\\Flagged", "\\Seen"], &d1)]
    );
    // Projekt at T2 holds the moved message with its flags as they were when it moved.
    restore(
        cluster,
        &[
            "--folder",
            "Projekt",
            "--as-of",
            &t2,
            "--into",
            "At2/Projekt",
        ],
    );
    assert_eq!(
        folder(cyrus, "At2/Projekt"),
        vec![shown(&m2, &["\\Answered"], &d2)]
    );
    // The folder, renamed then deleted, is restored as it was just before its deletion.
    let deleted = restore(
        cluster,
        &["--folder", "Projekt2", "--into", "Deleted/Projekt2"],
    );
    assert_eq!(deleted["appended_count"], 1, "{deleted}");
    assert_eq!(
        folder(cyrus, "Deleted/Projekt2"),
        vec![shown(&m2, &["\\Answered"], &d2)]
    );
    let acl = |name: &str| -> Vec<(String, String)> {
        let mut admin = cyrus.login(bonnie_tests::cyrus::ADMIN);
        let acl = admin
            .getacl(&format!("user/john.doe/{name}@example.org"))
            .unwrap();
        admin.logout().unwrap();
        acl
    };
    let shared = |acl: &[(String, String)]| {
        acl.iter()
            .any(|(who, rights)| who == "jane.doe@example.org" && rights == "lrs")
    };
    assert!(!shared(&acl("Deleted/Projekt2")), "a copy is john's alone");
    // Put back under its own name: with the ACL it had just before its deletion.
    let back = restore(cluster, &["--folder", "Projekt2", "--into", "original"]);
    assert_eq!(back["folders"][0]["created"], true, "{back}");
    assert_eq!(
        folder(cyrus, "Projekt2"),
        vec![shown(&m2, &["\\Answered"], &d2)]
    );
    assert!(shared(&acl("Projekt2")), "{:?}", acl("Projekt2"));
    // The non-ASCII folder, with its subfolders, at T1.
    restore(
        cluster,
        &[
            "--folder",
            "Работа",
            "--recursive",
            "--as-of",
            &t1,
            "--into",
            "At1/Работа",
        ],
    );
    assert_eq!(
        folder(cyrus, "At1/Работа"),
        vec![shown(&m3, &["\\Flagged"], &d3)]
    );
    assert_eq!(
        folder(cyrus, "At1/Работа/Проекты"),
        vec![shown(&m4, &["$Label2"], &d4)]
    );
    // Now, by its new name: its subfolder went with it.
    restore(
        cluster,
        &[
            "--folder",
            "Работа-alt",
            "--recursive",
            "--into",
            "Now/Работа-alt",
        ],
    );
    assert_eq!(
        folder(cyrus, "Now/Работа-alt/Проекты"),
        vec![shown(&m4, &["$Label2"], &d4)]
    );
    restore(
        cluster,
        &[
            "--folder",
            "Kalender",
            "--as-of",
            &t1,
            "--into",
            "At1/Kalender",
        ],
    );
    assert_eq!(folder(cyrus, "At1/Kalender"), vec![shown(&event, &[], &d3)]);
    let mut john = cyrus.login(JOHN);
    let folder_type = "/shared/vendor/kolab/folder-type";
    let metadata = john.getmetadata("At1/Kalender", &[folder_type]).unwrap();
    john.logout().unwrap();
    assert_eq!(metadata.get(folder_type).map(String::as_str), Some("event"));
    // One revision of the event at each moment: the new one while the old waited for its
    // expunge, then the third.
    let updated = restore(
        cluster,
        &[
            "--folder",
            "Kalender",
            "--as-of",
            &t2,
            "--into",
            "At2/Kalender",
        ],
    );
    assert_eq!(updated["folders"][0]["superseded"], 1, "{updated}");
    assert_eq!(
        folder(cyrus, "At2/Kalender"),
        vec![shown(&revision(2), &[], &d3)]
    );
    restore(
        cluster,
        &[
            "--folder",
            "Kalender",
            "--as-of",
            &t3,
            "--into",
            "At3/Kalender",
        ],
    );
    assert_eq!(
        folder(cyrus, "At3/Kalender"),
        vec![shown(&revision(3), &[], &d3)]
    );
    // The first revision put back into the live calendar replaces the current one: clients
    // see one revision of the event, never two (the third stays in the archive).
    assert_eq!(
        folder(cyrus, "Kalender"),
        vec![shown(&revision(3), &[], &d3)]
    );
    let replaced = restore(
        cluster,
        &["--folder", "Kalender", "--as-of", &t1, "--into", "original"],
    );
    assert_eq!(
        replaced["folders"][0]["replaced"].as_array().map(Vec::len),
        Some(1),
        "{replaced}"
    );
    assert_eq!(folder(cyrus, "Kalender"), vec![shown(&event, &[], &d3)]);
    // INBOX at T3 is empty; the expunged message alone is restored as it was just before.
    let empty = restore(
        cluster,
        &["--folder", "INBOX", "--as-of", &t3, "--into", "At3"],
    );
    assert_eq!(empty["messages"], 0, "{empty}");
    let message_id = format!(
        "<{}@restore.example.org>",
        "Grüße eins"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    restore(cluster, &["--message", &message_id, "--into", "Expunged"]);
    assert_eq!(
        folder(cyrus, "Expunged"),
        vec![shown(&m1, &["\\Deleted", "\\Flagged", "\\Seen"], &d1)]
    );

    // A dry run says what it would do and changes nothing.
    let before = folders(cyrus);
    let dry = restore(
        cluster,
        &[
            "--folder",
            "INBOX",
            "--as-of",
            &t1,
            "--into",
            "Dry",
            "--dry-run",
        ],
    );
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["appended_count"], 2, "{dry}");
    assert_eq!(dry["folders"][0]["created"], true, "{dry}");
    assert_eq!(folders(cyrus), before);

    // Into the original folder, live: INBOX gets back what it held at T1, once.
    let original = restore(
        cluster,
        &["--folder", "INBOX", "--as-of", &t1, "--into", "original"],
    );
    assert_eq!(original["folders"][0]["target"], "INBOX", "{original}");
    assert_eq!(original["folders"][0]["created"], false, "{original}");
    assert_eq!(folder(cyrus, "INBOX"), expected);
    let rerun = restore(
        cluster,
        &["--folder", "INBOX", "--as-of", &t1, "--into", "original"],
    );
    assert_eq!(rerun["appended_count"], 0, "{rerun}");
    assert_eq!(folder(cyrus, "INBOX"), expected);
}

#[test]
fn a_restore_killed_midway_completes_when_run_again() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    create_user(cyrus, JOHN);
    let mut john = cyrus.login(JOHN);
    john.create("Viele").unwrap();
    let messages: Vec<Vec<u8>> = (1..=5).map(|n| mail(&format!("Nachricht {n}"))).collect();
    for (n, bytes) in messages.iter().enumerate() {
        append(
            &mut john,
            "Viele",
            bytes,
            &["\\Seen"],
            &internal_date(n as i8 + 1),
        );
    }
    john.logout().unwrap();
    cyrus.wait_until_archived(cluster);

    // One message a second: killed once the first is there.
    let args = [
        "restore", "--json", "--user", JOHN, "--folder", "Viele", "--into", "Zurück", "--rate", "1",
    ];
    let running = ChildGuard::spawn("bonnie restore", &mut cluster.command("bonnie", &args));
    process::wait_until("the restore to append a message", || {
        folders(cyrus).contains("Zurück") && !folder(cyrus, "Zurück").is_empty()
    });
    // Another restore into the same mailbox, even of other arguments, waits its turn: two at
    // once would each append what the other has not yet.
    let other = cluster.bonnie(&[
        "restore", "--user", JOHN, "--folder", "Viele", "--into", "Anderswo",
    ]);
    assert!(!other.status.success(), "{}", process::describe(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains(&format!(
            "another restore into {JOHN}'s mailbox is running (process "
        )),
        "{}",
        process::describe(&other)
    );
    assert!(!folders(cyrus).contains("Anderswo"));
    running.signal("KILL");
    running.wait();
    let partial = folder(cyrus, "Zurück").len();
    assert!(partial < messages.len(), "killed midway: {partial}");

    // Run again: the same restore (its moment from the state file) completes.
    let output = process::run("bonnie restore", &mut cluster.command("bonnie", &args));
    assert!(output.status.success(), "{}", process::describe(&output));
    let done: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        done["appended_count"].as_u64().unwrap() + done["present_count"].as_u64().unwrap(),
        messages.len() as u64,
        "{done}"
    );
    let mut held: Vec<Vec<u8>> = folder(cyrus, "Zurück")
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    let mut expected = messages.clone();
    held.sort();
    expected.sort();
    assert_eq!(held, expected, "each message once");
}

#[test]
fn a_message_cyrus_refuses_is_reported_and_the_others_restored() {
    let mut lab = Attached::start(Notifications::Exec);
    create_user(&lab.cyrus, JOHN);
    let small = mail("klein");
    let mut big = mail("groß");
    big.extend(std::iter::repeat_n(b"0123456789abcdef\r\n".as_slice(), 2000).flatten());
    let mut john = lab.cyrus.login(JOHN);
    john.create("Gemischt").unwrap();
    append(&mut john, "Gemischt", &small, &[], &internal_date(1));
    append(&mut john, "Gemischt", &big, &[], &internal_date(2));
    john.logout().unwrap();
    lab.cyrus.wait_until_archived(&lab.cluster);

    // Cyrus now takes no message over 10 000 bytes.
    lab.cyrus.stop();
    let conf = lab.cyrus.path().join("etc/imapd.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("maxmessagesize: 10000\n");
    std::fs::write(&conf, text).unwrap();
    lab.cyrus.restart();

    let args = ["--folder", "Gemischt", "--into", "Zurück"];
    let first = restore(&lab.cluster, &args);
    assert_eq!(first["appended_count"], 1, "{first}");
    let refused = first["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{first}");
    assert_eq!(
        refused[0]["digest"],
        bonnie_core::payload::digest(&big).as_str(),
        "{first}"
    );
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("APPEND"),
        "{first}"
    );
    assert_eq!(
        folder(&lab.cyrus, "Zurück"),
        vec![shown(&small, &[], &internal_date(1))]
    );
    // The text report names it too.
    let output = lab.cluster.bonnie(&[
        "restore", "--user", JOHN, "--folder", "Gemischt", "--into", "Zurück",
    ]);
    assert!(output.status.success(), "{}", process::describe(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("not restored: Zurück UID 2"), "{report}");
}
