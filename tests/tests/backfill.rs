//! `bonnie backfill` against a real Cyrus 3.6 filled while bonnie was not attached (no
//! notifications at all): several users, nested and non-ASCII folders, flags and keywords, a
//! Kolab event. The back-fill archives every folder and message once, byte-exact, marked
//! back-filled; a run stopped at `--limit` is continued by the next without duplicates, and a
//! run after it adds nothing. Two workers archive it.

use bonnie_core::payload;
use bonnie_imap::{AppendOptions, quote};
use bonnie_tests::{
    attached::{Attached, Notifications},
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus},
    kolab, process,
};
use serde_json::Value;

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";

fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <{JANE}>\r\nTo: John Doe <{JOHN}>\r\nSubject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 17:13:36 +0000\r\nMessage-ID: <{}@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\nthis is {subject}.\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// Fills Cyrus; the messages by (owner, folder, bytes, flags).
fn fill(cyrus: &Cyrus) -> Vec<(&'static str, &'static str, Vec<u8>, Vec<&'static str>)> {
    let mut admin = cyrus.login(ADMIN);
    for user in [JOHN, JANE] {
        admin
            .run(&format!("CREATE {}", quote(&format!("user/{user}"))), &[])
            .unwrap();
    }
    admin.logout().unwrap();
    let event = kolab::message(
        "event",
        "5A637BF7-BACKFILL",
        JOHN,
        "Sat, 28 Nov 2026 17:13:37 +0000",
        &kolab::event_xml(
            "5A637BF7-BACKFILL",
            &[("summary", "<text>Back-filled</text>")],
        ),
    );
    let messages = vec![
        (JOHN, "INBOX", mail("first"), vec!["\\Seen"]),
        (JOHN, "INBOX", mail("second"), vec!["\\Flagged", "$Label1"]),
        (JOHN, "Archive/2024", mail("nested"), vec!["\\Seen"]),
        (JOHN, "Entwürfe", mail("Entwurf"), vec!["\\Draft"]),
        (JOHN, "Calendar", event, vec![]),
        (JANE, "INBOX", mail("janes"), vec![]),
        (JANE, "Черновики", mail("chernovik"), vec!["$Important"]),
    ];
    for user in [JOHN, JANE] {
        let mut client = cyrus.login(user);
        let folders: std::collections::BTreeSet<&str> = messages
            .iter()
            .filter(|m| m.0 == user && m.1 != "INBOX")
            .map(|m| m.1)
            .collect();
        for folder in folders {
            client.create(folder).unwrap();
        }
        if user == JOHN {
            client
                .run("SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")", &[])
                .unwrap();
        }
        for (_, folder, bytes, flags) in messages.iter().filter(|m| m.0 == user) {
            client
                .append(folder, &AppendOptions::flags(flags), bytes)
                .unwrap();
        }
        client.logout().unwrap();
    }
    messages
}

fn backfill(cluster: &Cluster, args: &[&str]) -> Value {
    let output = cluster.bonnie(&[&["backfill", "--json"], args].concat());
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("backfill --json prints JSON")
}

#[test]
fn a_backfill_archives_every_folder_and_message_once_and_resumes() {
    let lab = Attached::start(Notifications::Off);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let messages = fill(cyrus);

    // Stopped after 3 messages, then continued.
    let first = backfill(cluster, &["--user", JOHN, "--user", JANE, "--limit", "3"]);
    assert_eq!(first["complete"], false, "{first}");
    assert_eq!(first["submitted"], 3, "{first}");
    let status = cluster.status();
    assert_eq!(status["backfill"]["running"], false, "{status}");
    assert!(status["backfill"]["finished_ms"].is_null(), "{status}");
    let second = backfill(cluster, &["--user", JOHN, "--user", JANE]);
    assert_eq!(second["complete"], true, "{second}");
    assert_eq!(second["run"], first["run"], "the same run continued");
    assert_eq!(second["submitted"], messages.len() as u64, "{second}");
    cluster.wait_until_drained();

    let records = cluster.log_records();
    let appends: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "MessageAppend")
        .collect();
    assert_eq!(appends.len(), messages.len(), "{appends:#?}");
    for (owner, folder, bytes, flags) in &messages {
        let digest = payload::digest(bytes);
        let found: Vec<&&Value> = appends
            .iter()
            .filter(|r| r["payload_digest"] == digest.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{folder}: archived once");
        let record = found[0];
        assert_eq!(record["folder_name"], *folder, "{record}");
        assert_eq!(record["folder_owner"], *owner, "{record}");
        assert_eq!(record["backfilled"], true, "{record}");
        let marker = &record["vnd.bonnie.backfill"];
        assert!(
            marker["observed_ms"].is_i64() && marker["internaldate"].is_string(),
            "{record}"
        );
        let archived_flags = record["flagNames"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        for flag in flags {
            assert!(
                archived_flags.contains(&flag.to_lowercase()),
                "{flag} in {record}"
            );
        }
        assert_eq!(&cluster.payload(&digest), bytes, "byte-exact");
    }
    let folders: std::collections::BTreeSet<String> = records
        .iter()
        .filter(|r| r["event"] == "MailboxCreate" && r["backfilled"] == true)
        .map(|r| format!("{} {}", r["folder_owner"], r["folder_name"]))
        .collect();
    // Cyrus made Archive itself, as the parent of Archive/2024.
    assert_eq!(
        folders.len(),
        7,
        "two INBOXes and five folders: {folders:?}"
    );
    let calendar = appends
        .iter()
        .find(|r| r["folder_name"] == "Calendar")
        .unwrap();
    assert_eq!(calendar["folder_type"], "event", "{calendar}");

    // e-Discovery finds the back-filled messages like any others, marked as back-filled, in
    // the folders they were found in.
    let searched = cluster.bonnie(&["search", "*", "--limit", "1000", "--json"]);
    assert!(
        searched.status.success(),
        "{}",
        process::describe(&searched)
    );
    let items: Vec<Value> = serde_json::from_slice(&searched.stdout).unwrap();
    assert_eq!(items.len(), messages.len(), "{items:#?}");
    for (owner, folder, bytes, _) in &messages {
        let digest = payload::digest(bytes);
        let item = items
            .iter()
            .find(|i| i["item"] == digest.as_str())
            .unwrap_or_else(|| panic!("{folder}: not found by a search"));
        assert_eq!(item["backfilled"], true, "{item}");
        assert_eq!(item["custodians"], serde_json::json!([owner]), "{item}");
        let shown = cluster.bonnie(&["show", &digest, "--json"]);
        assert!(shown.status.success(), "{}", process::describe(&shown));
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(shown["places"][0]["name"], *folder, "{shown}");
        assert_eq!(shown["places"][0]["backfilled"], true, "{shown}");
    }

    // Nothing more to do: neither the same selection nor --all adds anything.
    let again = backfill(cluster, &["--user", JOHN, "--user", JANE]);
    assert_eq!(again["submitted"], 0, "{again}");
    assert_eq!(again["folders_submitted"], 0, "{again}");
    assert_eq!(again["skipped"], messages.len() as u64, "{again}");
    let all = backfill(cluster, &["--all"]);
    assert_eq!(all["submitted"], 0, "{all}");
    cluster.wait_until_drained();
    assert_eq!(cluster.log_records().len(), records.len());
    // Every run is audited.
    let audit = cluster.bonnie(&["audit", "--json"]);
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "backfill")
            .count()
            >= 4,
        "{audit}"
    );
    assert_eq!(
        bonnie_sqlite_storage::log::verify(&cluster.archive()).unwrap(),
        None
    );
}

/// The state files of the runs, by name.
fn state_files(cluster: &Cluster) -> Vec<std::path::PathBuf> {
    let dir = cluster.path().join("var/backfill");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("backfill-") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_backfill_killed_midway_continues_without_duplicates() {
    use std::os::unix::fs::PermissionsExt as _;
    let lab = Attached::start(Notifications::Off);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let messages = fill(cyrus);

    // Slow (2 messages a second), killed once some are submitted and before the end.
    let run = bonnie_tests::process::ChildGuard::spawn(
        "bonnie backfill",
        &mut cluster.command("bonnie", &["backfill", "--all", "--rate", "2", "--json"]),
    );
    process::wait_until("the back-fill to submit a message", || {
        state_files(cluster).iter().any(|path| {
            std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|s| s["submitted"].as_u64().is_some_and(|n| n >= 1))
        })
    });
    // A second walk of the same selection, back-fill or reconciliation, waits its turn.
    for args in [
        &["backfill", "--all", "--json"][..],
        &["reconcile", "--all", "--json"][..],
    ] {
        let second = cluster.bonnie(args);
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert!(
            !second.status.success()
                && stderr
                    .contains("another back-fill or reconciliation of this selection is running"),
            "{args:?}: {}",
            process::describe(&second)
        );
    }
    run.signal("KILL");
    let killed = run.wait();
    assert!(!killed.status.success(), "killed before the end");
    let files = state_files(cluster);
    assert_eq!(files.len(), 1, "{files:?}");
    let state: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert!(state["finished_ms"].is_null(), "{state}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the state file is bonnie's alone");
    let text = cluster.bonnie(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("interrupted (run it again to continue)"),
        "{text}"
    );

    let resumed = backfill(cluster, &["--all"]);
    assert_eq!(resumed["complete"], true, "{resumed}");
    assert_eq!(resumed["run"], state["run"], "the killed run continued");
    cluster.wait_until_drained();
    let appends: Vec<Value> = cluster
        .log_records()
        .into_iter()
        .filter(|r| r["event"] == "MessageAppend")
        .collect();
    assert_eq!(
        appends.len(),
        messages.len(),
        "each message once: {appends:#?}"
    );
    for (_, _, bytes, _) in &messages {
        let digest = payload::digest(bytes);
        assert_eq!(
            appends
                .iter()
                .filter(|r| r["payload_digest"] == digest.as_str())
                .count(),
            1
        );
    }
    let text = cluster.bonnie(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Last backfill") && text.contains("finished"),
        "{text}"
    );
}

#[test]
fn a_backfill_takes_only_the_folders_and_dates_asked_for() {
    let lab = Attached::start(Notifications::Off);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let messages = fill(cyrus);

    // Every message was appended today: none is since tomorrow.
    let tomorrow = jiff::Zoned::now()
        .checked_add(jiff::Span::new().days(1))
        .unwrap()
        .date()
        .to_string();
    let none = backfill(cluster, &["--all", "--since", &tomorrow]);
    assert_eq!(
        (none["messages"].as_u64(), none["submitted"].as_u64()),
        (Some(0), Some(0)),
        "{none}"
    );
    // `%` stops at the hierarchy separator, `*` does not.
    let top = backfill(cluster, &["--user", JOHN, "--folder", "Arch%"]);
    assert_eq!(top["folders"], 1, "Archive alone: {top}");
    assert_eq!(top["submitted"], 0, "{top}");
    let nested = backfill(cluster, &["--user", JOHN, "--folder", "Arch*"]);
    assert_eq!(nested["folders"], 2, "{nested}");
    assert_eq!(nested["submitted"], 1, "{nested}");
    let drafts = backfill(cluster, &["--user", JANE, "--folder", "Черн*"]);
    assert_eq!(drafts["submitted"], 1, "{drafts}");
    // A shared folder the admin may not read is named, and the rest goes on.
    let mut admin = cyrus.login(ADMIN);
    admin.create("Vertraulich").unwrap();
    admin.run("DELETEACL Vertraulich cyrus", &[]).unwrap();
    admin.run("DELETEACL Vertraulich anyone", &[]).unwrap();
    admin.logout().unwrap();
    // The rest, once (the two archived by now are known).
    cluster.wait_until_drained();
    let all = backfill(cluster, &["--all"]);
    let refused = all["refused"].to_string();
    assert!(refused.contains("Vertraulich"), "{all}");
    assert_eq!(all["submitted"], messages.len() as u64 - 2, "{all}");
    assert_eq!(all["skipped"], 2, "{all}");
    cluster.wait_until_drained();
    let appends = cluster
        .log_records()
        .into_iter()
        .filter(|r| r["event"] == "MessageAppend")
        .count();
    assert_eq!(appends, messages.len());
    // A refused selection says why.
    let output = cluster.bonnie(&["backfill"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--user"),
        "{}",
        process::describe(&output)
    );
}

#[test]
fn an_archive_from_before_message_places_is_recognized_from_its_log() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let messages = fill(cyrus);
    cyrus.wait_until_archived(cluster);
    // Appends and folders: the back-fill's own IMAP sessions are logged too (Login, Logout).
    let archived = |cluster: &Cluster| {
        cluster
            .log_records()
            .into_iter()
            .filter(|r| r["event"] == "MessageAppend" || r["event"] == "MailboxCreate")
            .count()
    };
    let live = archived(cluster);
    let logins = |cluster: &Cluster, user: &str| {
        cluster
            .log_records()
            .iter()
            .filter(|r| r["event"] == "Login" && r["user"] == user)
            .count()
    };
    let logins_before = [logins(cluster, JOHN), logins(cluster, JANE)];
    // As an archive kept before the handlers recorded where messages are.
    let archive = cluster.archive();
    for sql in [
        "DELETE FROM record_index WHERE collection = 'message-places'",
        "DELETE FROM records WHERE collection = 'message-places'",
    ] {
        archive.execute(sql, []).unwrap();
    }
    drop(archive);

    let run = backfill(cluster, &["--user", JOHN, "--user", JANE]);
    assert_eq!(run["submitted"], 0, "{run}");
    assert_eq!(run["skipped"], messages.len() as u64, "{run}");
    assert_eq!(run["folders_submitted"], 0, "{run}");
    let places: i64 = cluster
        .archive()
        .query_row(
            "SELECT count(*) FROM records WHERE collection = 'message-places' \
             AND json_extract(body, '$.folder') != ?1",
            [bonnie_tests::cyrus::PROBE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        places,
        messages.len() as i64,
        "recorded from the log (the harness's probes aside)"
    );
    cyrus.wait_until_archived(cluster);
    assert_eq!(archived(cluster), live, "nothing archived twice");
    // The run read each user's folders in one IMAP session as that user.
    assert_eq!(
        [logins(cluster, JOHN), logins(cluster, JANE)],
        [logins_before[0] + 1, logins_before[1] + 1]
    );
}

#[test]
fn back_filled_messages_are_exported_marked_as_back_filled_and_restored_like_any_others() {
    let lab = Attached::start_with_ledger(Notifications::Off);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    let messages = fill(cyrus);
    backfill(cluster, &["--all"]);
    cluster.wait_until_drained();

    let out = cluster.path().join("export");
    let exported = cluster.bonnie(&[
        "export",
        "*",
        "--format",
        "dat",
        "--out",
        &out.to_string_lossy(),
        "--json",
    ]);
    assert!(
        exported.status.success(),
        "{}",
        process::describe(&exported)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let items = manifest["items"].as_array().unwrap();
    assert_eq!(items.len(), messages.len(), "{manifest:#}");
    assert!(
        items.iter().all(|i| i["backfilled"] == true),
        "every item marked: {manifest:#}"
    );
    // The load file's BACKFILLED column says so too, for the reviewer's tool.
    let load = String::from_utf8(std::fs::read(out.join("loadfile.dat")).unwrap()).unwrap();
    let mut rows = load.trim_start_matches('\u{feff}').split("\r\n");
    let columns: Vec<&str> = rows
        .next()
        .unwrap()
        .split('\u{14}')
        .map(|c| c.trim_matches('\u{fe}'))
        .collect();
    let at = columns.iter().position(|c| *c == "BACKFILLED").unwrap();
    let parents: Vec<Vec<&str>> = rows
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split('\u{14}')
                .map(|c| c.trim_matches('\u{fe}'))
                .collect::<Vec<_>>()
        })
        .filter(|r| r[columns.iter().position(|c| *c == "PARENTID").unwrap()].is_empty())
        .collect();
    assert_eq!(parents.len(), messages.len(), "{load}");
    assert!(parents.iter().all(|r| r[at] == "Y"), "{load}");
    let verified = cluster.bonnie(&["export", "verify", &out.to_string_lossy()]);
    assert!(
        verified.status.success(),
        "{}",
        process::describe(&verified)
    );

    // A restore takes the back-filled messages like any others: john's INBOX comes back byte
    // for byte with its flags, into Restored/<moment>/INBOX.
    let restored = cluster.bonnie(&["restore", "--user", JOHN, "--folder", "INBOX", "--json"]);
    assert!(
        restored.status.success(),
        "{}",
        process::describe(&restored)
    );
    let restored: Value = serde_json::from_slice(&restored.stdout).unwrap();
    let target = restored["folders"][0]["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(target.starts_with("Restored/"), "{restored}");
    let mut back: Vec<(Vec<u8>, Vec<String>)> = cyrus
        .held(JOHN, &target)
        .into_iter()
        .map(|m| {
            let mut flags: Vec<String> = m.flags.iter().map(|f| f.to_lowercase()).collect();
            flags.sort();
            (m.bytes, flags)
        })
        .collect();
    back.sort();
    let mut expected: Vec<(Vec<u8>, Vec<String>)> = messages
        .iter()
        .filter(|(owner, folder, _, _)| *owner == JOHN && *folder == "INBOX")
        .map(|(_, _, bytes, flags)| {
            let mut flags: Vec<String> = flags.iter().map(|f| f.to_lowercase()).collect();
            flags.sort();
            (bytes.clone(), flags)
        })
        .collect();
    expected.sort();
    assert_eq!(back, expected);
}
