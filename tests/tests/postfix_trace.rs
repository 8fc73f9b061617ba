//! Postfix logs into traces, through every real process: bonnie-logd follows a mail.log
//! (maillog's test logs: three hosts and instances, every stamp style, long and short queue
//! IDs), the broker stores the batches, two workers of four threads with the `postfix`
//! handler merge them into one SQLite store, and `bonnie trace` reads them back through the
//! storage plugin: the stored facts are those of one reader of every line, and each
//! message's trace has its hops, relays, bounce and LMTP sessions. Then the same with a real
//! Postfix from Debian (two instances, one relaying to the other) delivering over LMTP into a
//! real Cyrus, whose notifications the archive keeps: each trace reaches the folder, and
//! goes on with what the recipient did there (read, moved, deleted), from the message's
//! audit trail.

use std::collections::BTreeMap;

use bonnie_maillog::{QueueFacts, Stitcher, SyslogParser, parse_line, store};
use bonnie_tests::{
    cluster::Cluster,
    cyrus::{ADMIN, Cyrus, Notify},
    logd,
    postfix::{NextHop, Postfix},
    process,
    worker::ARCHIVE_HANDLERS,
};
use jiff::{Timestamp, tz::TimeZone};
use serde_json::Value;

fn trace_json(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = cluster.bonnie(&all);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice::<Value>(&output.stdout)
        .expect("JSON")
        .as_array()
        .cloned()
        .expect("an array of traces")
}

fn hops(trace: &Value) -> Vec<String> {
    trace["trace"]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}/{}/{} {}",
                h["host"].as_str().unwrap(),
                h["instance"].as_str().unwrap(),
                h["queue_id"].as_str().unwrap(),
                h["via"]["by"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn two_workers_store_what_one_reader_stitches_and_bonnie_trace_shows_each_messages_way() {
    let cluster = Cluster::new(
        &["bonnie-postfix"],
        &format!(
            "{}\n[plugins.postfix]\nzone = \"UTC\"\n",
            logd::table("files = [\"log/mail.log\"]\nmax_batch_lines = 4")
        ),
    );
    // Four threads per worker.
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    std::fs::write(
        cluster.config(),
        config.replacen("threads = 2", "threads = 4", 1),
    )
    .unwrap();
    let lines = logd::maillog_test_lines();
    std::fs::create_dir_all(cluster.path().join("log")).unwrap();
    logd::append(&cluster.path().join("log/mail.log"), lines.clone());
    let _broker = cluster.start_broker();
    let _workers = cluster.start_workers(&["worker1", "worker2"]);
    let _logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, lines.len());
    cluster.wait_until_drained();

    // One reader of every line, each read as received when logd read its batch.
    let mut reader = Stitcher::new();
    let parser = SyslogParser::new(TimeZone::UTC);
    for batch in logd::batches(&cluster) {
        let received: Timestamp = batch["received"].as_str().unwrap().parse().unwrap();
        for line in batch["lines"].as_array().unwrap() {
            reader.ingest(&parse_line(&parser, line.as_str().unwrap(), received));
        }
    }
    let expected: BTreeMap<String, QueueFacts> = reader
        .queues()
        .iter()
        .map(|(key, facts)| (store::record_key(key), facts.clone()))
        .collect();
    let stored: BTreeMap<String, QueueFacts> = cluster
        .archived_bodies(store::QUEUES)
        .iter()
        .map(|body| {
            let record: store::QueueRecord = serde_json::from_str(body).unwrap();
            (store::record_key(&record.key), record.facts)
        })
        .collect();
    assert_eq!(stored, expected);
    // Every batch is in the log, with its lines and what was read of them.
    let unknown: u64 = cluster
        .log_records()
        .iter()
        .filter(|r| r["event"] == "vnd.bonnie.LogLines")
        .map(|r| {
            r["postfix"]["unknown"]
                .as_u64()
                .expect("the counts in the log record")
        })
        .sum();
    assert_eq!(unknown, reader.counts().unknown);

    // Two local recipients over LMTP, each with Cyrus's session.
    let a1 = trace_json(&cluster, &["<a1@example.org>"]);
    assert_eq!(a1.len(), 1, "{a1:?}");
    assert_eq!(hops(&a1[0]), ["mx1/postfix/4jdxFs0kX3z9sLH origin"]);
    let deliveries = a1[0]["trace"]["hops"][0]["deliveries"].as_array().unwrap();
    let recipients: Vec<&str> = deliveries
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(recipients, ["bob@example.org", "carol@example.org"]);
    assert!(deliveries.iter().all(|d| {
        d["lmtp_session_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("cyrus-"))
    }));

    // From the outside through edge, mx1 and the relay instance: two "queued as" hops.
    let c1 = trace_json(&cluster, &["c1@example.net"]);
    assert_eq!(c1.len(), 1, "{c1:?}");
    assert_eq!(
        hops(&c1[0]),
        [
            "edge/postfix/8E2B41C0A7 origin",
            "mx1/postfix/4jdxhy6BTJz9sLR relay",
            "mx1/postfix-relay/5E7D1A2B3C relay"
        ]
    );

    // The bounce's notification, found by its own queue ID, links back to the message.
    let bounce = trace_json(&cluster, &["4jdxTQ07Xvz9sLM"]);
    assert_eq!(bounce.len(), 1, "{bounce:?}");
    assert_eq!(
        hops(&bounce[0]),
        [
            "mx1/postfix/4jdxTP3vmBz9sLL origin",
            "mx1/postfix/4jdxTQ07Xvz9sLM notification"
        ]
    );
    assert_eq!(bounce[0]["trace"]["message_id"], "<b1@example.org>");

    // By address, limited in time: nothing before, bob's messages since.
    let bob = trace_json(&cluster, &["Bob@Example.org"]);
    assert!(bob.len() >= 2, "{bob:?}");
    assert!(trace_json(&cluster, &["bob@example.org", "--since", "2099-01-01"]).is_empty());

    // The text form says the same.
    let output = cluster.bonnie(&["trace", "<c1@example.net>"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(
            "relayed from edge/postfix/8E2B41C0A7 through mx1.example.org[192.0.2.10]:25"
        ),
        "{text}"
    );
    assert!(text.contains("to <bob@example.org>"), "{text}");
}

fn mail(message_id: &str, to: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: traced {message_id}\r\n\
         Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n\r\nWhere is my mail?\r\n"
    )
    .into_bytes()
}

/// The deliveries of every hop of a trace, as (recipient, status, LMTP session or "").
fn outcomes(trace: &Value) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = trace["trace"]["hops"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|hop| hop["deliveries"].as_array().cloned().unwrap_or_default())
        .map(|d| {
            let text = |field: &str| d[field].as_str().unwrap_or_default().to_string();
            (
                text("recipient"),
                d["status"].to_string().trim_matches('"').to_string(),
                text("lmtp_session_id"),
            )
        })
        .collect();
    found.sort();
    found
}

/// The archive's MessageNew entries of a trace, as (folder's user, joined by).
fn deliveries_in_archive(trace: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = trace["archive"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"] == "MessageNew")
        .map(|e| {
            (
                e["uri"].as_str().unwrap_or_default().to_string(),
                e["joined_by"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_real_postfix_into_a_real_cyrus_each_message_traced_into_its_folder_then_read_moved_and_deleted_and_the_bounce_linked_back()
 {
    assert!(
        Postfix::installed(),
        "Debian's postfix is not installed: `echo \"postfix postfix/main_mailer_type select No configuration\" | debconf-set-selections; apt-get install -y postfix`"
    );
    let mut cyrus = Cyrus::new();
    let mx = Postfix::start(
        "postfix",
        "mx.test.example",
        true,
        NextHop::Lmtp(cyrus.lmtp_port),
    );
    let relay = Postfix::start(
        "postfix-relay",
        "relay.test.example",
        false,
        NextHop::Smtp(mx.smtp_port),
    );
    let mut plugins: Vec<&str> = ARCHIVE_HANDLERS.to_vec();
    plugins.extend(["bonnie-postfix", "bonnie-changelog"]);
    let cluster = Cluster::new(
        &plugins,
        &logd::table(&format!(
            "files = [{:?}, {:?}]",
            mx.maillog().display().to_string(),
            relay.maillog().display().to_string()
        )),
    );
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker1");
    let _daemon = cluster.start_dealer_daemon();
    cyrus.start(Notify::Daemon {
        socket: &cluster.dealer_socket(),
    });
    let mut admin = cyrus.login(ADMIN);
    for user in ["alice", "bob", "carol"] {
        admin
            .run(&format!("CREATE \"user/{user}@example.org\""), &[])
            .unwrap_or_else(|e| panic!("creating {user}: {e}"));
    }
    admin.logout().unwrap();
    let _logd = logd::start(&cluster);

    mx.submit(
        "alice@example.org",
        &["bob@example.org", "carol@example.org"],
        &mail("two@test.example", "bob@example.org, carol@example.org"),
    );
    mx.submit(
        "alice@example.org",
        &["nobody@example.org"],
        &mail("unknown@test.example", "nobody@example.org"),
    );
    relay.submit(
        "alice@example.org",
        &["bob@example.org"],
        &mail("relayed@test.example", "bob@example.org"),
    );

    let mut two = Vec::new();
    let mut unknown = Vec::new();
    let mut relayed = Vec::new();
    process::wait_until("every message traced into its folder", || {
        two = trace_json(&cluster, &["<two@test.example>"]);
        unknown = trace_json(&cluster, &["unknown@test.example"]);
        relayed = trace_json(&cluster, &["relayed@test.example"]);
        let into_folders = |traces: &[Value], n: usize| {
            traces.len() == 1 && deliveries_in_archive(&traces[0]).len() == n
        };
        // The archive may have a delivery before bonnie-logd read Postfix's line of it.
        into_folders(&two, 2)
            && outcomes(&two[0]).len() == 2
            && into_folders(&unknown, 1)
            && into_folders(&relayed, 1)
    });
    let logs = format!(
        "mx:\n{}\nrelay:\n{}",
        mx.maillog_text(),
        relay.maillog_text()
    );

    // Two local recipients: each delivered over LMTP, joined to its MessageNew by Cyrus's
    // session id.
    let outcome = outcomes(&two[0]);
    assert_eq!(outcome.len(), 2, "{outcome:?}\n{logs}");
    assert!(
        outcome
            .iter()
            .all(|(_, status, session)| status == "sent" && !session.is_empty()),
        "{outcome:?}"
    );
    let folders = deliveries_in_archive(&two[0]);
    assert!(
        folders.iter().all(|(_, joined)| joined == "lmtp_session"),
        "{folders:?}"
    );
    assert!(
        folders[0].0.contains("bob") && folders[1].0.contains("carol"),
        "{folders:?}"
    );
    assert_eq!(
        hops(&two[0]),
        [format!(
            "mx/postfix/{} origin",
            two[0]["trace"]["hops"][0]["queue_id"].as_str().unwrap()
        )]
    );

    // The unknown recipient: bounced by Cyrus, and the notification, linked back, delivered
    // to the sender's INBOX.
    let hops_of_bounce = hops(&unknown[0]);
    assert_eq!(hops_of_bounce.len(), 2, "{hops_of_bounce:?}\n{logs}");
    assert!(
        hops_of_bounce[1].ends_with("notification"),
        "{hops_of_bounce:?}"
    );
    assert!(
        outcomes(&unknown[0])
            .iter()
            .any(|(to, status, _)| to == "nobody@example.org" && status == "bounced"),
        "{:?}",
        outcomes(&unknown[0])
    );
    let bounce_folders = deliveries_in_archive(&unknown[0]);
    assert_eq!(bounce_folders.len(), 1, "{bounce_folders:?}");
    assert!(bounce_folders[0].0.contains("alice"), "{bounce_folders:?}");

    // Relayed by the second instance (short queue IDs) to the first (long ones): "queued as".
    let hops_of_relayed = hops(&relayed[0]);
    assert_eq!(hops_of_relayed.len(), 2, "{hops_of_relayed:?}\n{logs}");
    assert!(
        hops_of_relayed[0].starts_with("relay/postfix-relay/")
            && hops_of_relayed[0].ends_with("origin")
    );
    assert!(hops_of_relayed[1].starts_with("mx/postfix/") && hops_of_relayed[1].ends_with("relay"));

    // bob reads the relayed message, moves it to Archive and deletes it there: the trace
    // goes on into the mailbox, step by step, with the folders.
    let uid = mailbox_history(&relayed[0])[0]["uid"]
        .as_u64()
        .expect("the delivery's UID in its mailbox history");
    let mut bob = cyrus.login("bob@example.org");
    for command in [
        "CREATE Archive".to_string(),
        "SELECT INBOX".to_string(),
        format!("UID FETCH {uid} BODY[]"),
        format!("UID MOVE {uid} Archive"),
        "SELECT Archive".to_string(),
        "UID STORE 1 +FLAGS (\\Deleted)".to_string(),
        "EXPUNGE".to_string(),
    ] {
        bob.run(&command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    bob.logout().unwrap();
    // Not `cyrus.wait_until_archived`: its probe is a MessageAppend, which waits for a
    // collector this cluster has not; the expunge is the last step the trace can show.
    let mut relayed = Vec::new();
    process::wait_until("the trace to reach the expunge", || {
        relayed = trace_json(&cluster, &["relayed@test.example"]);
        mailbox_history(&relayed[0]).iter().any(|step| {
            step["event"] == "MessageExpunge" && step["folder"] != "user/bob@example.org"
        })
    });
    let steps: Vec<String> = mailbox_history(&relayed[0])
        .iter()
        .map(|step| {
            format!(
                "{} @ {}",
                step["what"].as_str().unwrap(),
                step["folder"].as_str().unwrap()
            )
        })
        .collect();
    let mut seen_steps = steps.clone();
    seen_steps.dedup();
    assert_eq!(
        seen_steps,
        [
            "arrived in user/bob@example.org @ user/bob@example.org",
            "read @ user/bob@example.org",
            "moved to user/bob/Archive@example.org @ user/bob/Archive@example.org",
            // Cyrus's expunge of the moved message's old place.
            "expunged @ user/bob@example.org",
            "deleted @ user/bob/Archive@example.org",
            "expunged @ user/bob/Archive@example.org",
        ],
        "{steps:?}"
    );
    assert!(
        mailbox_history(&relayed[0])
            .iter()
            .skip(1)
            .all(|step| step["by"] == "bob@example.org"),
        "{:?}",
        mailbox_history(&relayed[0])
    );
    let output = cluster.bonnie(&["trace", "relayed@test.example"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("archive:") && text.contains("MessageNew"),
        "{text}"
    );
    assert!(
        text.contains("moved to user/bob/Archive@example.org  (user/bob/Archive@example.org UID 1, by bob@example.org)")
            && text.contains("expunged  (user/bob/Archive@example.org UID 1, by bob@example.org)"),
        "{text}"
    );
}

/// The mailbox history of a trace's deliveries into folders, oldest first.
fn mailbox_history(trace: &Value) -> Vec<Value> {
    trace["archive"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["mailbox_history"].as_array().cloned().unwrap_or_default())
        .collect()
}
