//! bonnie-api's `restore.start` and `restore.status` against a real Cyrus 3.6 archived live by
//! the real pipeline: a folder John deleted is restored by an admin client (a helpdesk tool)
//! as it was just before its deletion, polled until done; the restored folder holds the
//! messages byte for byte with their flags and INTERNALDATEs; a Roundcube client is refused
//! (-32001) whatever it asks; the restore and its folder are in the broker's audit log.

use bonnie_core::payload;
use bonnie_imap::AppendOptions;
use bonnie_tests::{
    attached::{Attached, Notifications, create_user},
    process,
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";
/// Who the helpdesk tool's requests say is asking.
const AGENT: &str = "agent@example.org";

fn mail(subject: &str) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane.doe@example.org>\r\nTo: John Doe <{JOHN}>\r\nSubject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 17:13:36 +0000\r\n\r\nÜber {subject}.\r\n"
    )
    .into_bytes()
}

#[test]
fn an_admin_client_restores_a_deleted_folder_and_polls_the_job_until_done() {
    let lab = Attached::start(Notifications::Exec);
    let (cluster, cyrus) = (&lab.cluster, &lab.cyrus);
    create_user(cyrus, JOHN);
    let messages = [
        (mail("Angebot"), vec!["\\Seen".to_string()]),
        (
            mail("Rechnung"),
            vec!["$Label1".to_string(), "\\Flagged".to_string()],
        ),
    ];
    let date = jiff::civil::date(2020, 3, 1)
        .at(10, 30, 15, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap();
    let mut john = cyrus.login(JOHN);
    john.create("Projekte").unwrap();
    for (bytes, flags) in &messages {
        let options = AppendOptions {
            internal_date: Some(date.clone()),
            ..AppendOptions::flags(&flags.iter().map(String::as_str).collect::<Vec<_>>())
        };
        john.append("Projekte", &options, bytes).unwrap();
    }
    cyrus.wait_until_archived(cluster);
    john.run("DELETE Projekte", &[]).unwrap();
    john.logout().unwrap();
    cyrus.wait_until_archived(cluster);

    let (_api, roundcube, admins) = cluster.start_api_with_admins(&["helpdesk"]);
    let helpdesk = &admins[0];
    let params = json!({ "user": JOHN, "folder": "Projekte" });
    for method in ["restore.start", "restore.status"] {
        let refused = roundcube.call_raw(JOHN, method, params.clone());
        assert_eq!(
            refused.body["error"]["code"], -32001,
            "{method}: {refused:?}"
        );
    }
    let invalid = helpdesk.call_raw(AGENT, "restore.start", json!({ "user": JOHN }));
    assert_eq!(invalid.body["error"]["code"], -32602, "{invalid:?}");

    let started = helpdesk.call(AGENT, "restore.start", params);
    let job = started["job"].as_str().expect("a job").to_string();
    let mut status = Value::Null;
    process::wait_until("the restore job to end", || {
        status = helpdesk.call(AGENT, "restore.status", json!({ "job": job }));
        status["state"] != "running"
    });
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["appended"], 2, "{status}");
    assert_eq!(status["messages"], 2, "{status}");
    assert_eq!(status["handled"], 2, "{status}");
    assert_eq!(status["errors"], json!([]), "{status}");
    let target = status["folders"][0]["target"].as_str().unwrap().to_string();
    assert!(
        target.starts_with("Restored/") && target.ends_with("/Projekte"),
        "{status}"
    );

    // In Cyrus as they were: bytes, flags, INTERNALDATE.
    let mut held: Vec<(String, Vec<String>, i64)> = cyrus
        .held(JOHN, &target)
        .into_iter()
        .map(|m| {
            let flags = m.flags.into_iter().collect();
            (payload::digest(&m.bytes), flags, m.internaldate_ms)
        })
        .collect();
    held.sort();
    let mut expected: Vec<(String, Vec<String>, i64)> = messages
        .iter()
        .map(|(bytes, flags)| {
            let mut flags = flags.clone();
            flags.sort();
            (
                payload::digest(bytes),
                flags,
                date.timestamp().as_millisecond(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(held, expected);

    // While `bonnie restore` writes into John's mailbox (a message every two seconds), the
    // API refuses another restore into it, and says why.
    let slow = [
        "restore", "--user", JOHN, "--folder", "Projekte", "--into", "Zweiter", "--rate", "0.5",
    ];
    let running =
        process::ChildGuard::spawn("bonnie restore", &mut cluster.command("bonnie", &slow));
    process::wait_until("the command line's restore to begin", || {
        let mut john = cyrus.login(JOHN);
        let begun = john.examine("Zweiter").is_ok();
        john.logout().unwrap();
        begun
    });
    let busy = helpdesk.call_raw(
        AGENT,
        "restore.start",
        json!({ "user": JOHN, "folder": "Projekte" }),
    );
    assert_eq!(busy.body["error"]["code"], -32002, "{busy:?}");
    let message = busy.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("another restore into {JOHN}'s mailbox is running")),
        "{busy:?}"
    );
    let dry = helpdesk.call(
        AGENT,
        "restore.start",
        json!({ "user": JOHN, "folder": "Projekte", "dry_run": true }),
    );
    assert!(
        dry["job"].is_string(),
        "a dry run writes nothing and needs no lock: {dry}"
    );
    let ended = running.wait();
    assert!(ended.status.success(), "{}", process::describe(&ended));

    // Unknown jobs are not there.
    let unknown = helpdesk.call(AGENT, "restore.status", json!({ "job": "restore-0" }));
    assert_eq!(unknown, json!(false));

    // Audited in the broker's log: requested by the helpdesk, its folder, its end.
    let audit = cluster.bonnie(&["audit", "--json"]);
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let records = audit.as_array().unwrap();
    let restores: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "restore" && r["params"]["run"] == job.as_str())
        .collect();
    assert_eq!(restores.len(), 2, "requested and done: {audit}");
    assert!(
        restores
            .iter()
            .all(|r| r["client"] == "helpdesk" && r["user"] == AGENT)
    );
    let folder = records
        .iter()
        .find(|r| r["action"] == "restore-folder" && r["params"]["run"] == job.as_str())
        .expect("the folder's audit record");
    assert_eq!(folder["params"]["target"], target.as_str(), "{folder}");
    assert_eq!(folder["count"], 2, "{folder}");
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "restore.start" && r["client"] == "helpdesk")
    );
}
