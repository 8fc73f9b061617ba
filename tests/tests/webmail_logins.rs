//! IMAP Logins from the webmail host, joined to the webmail login behind them, through every
//! real process: bonnie-logd follows Roundcube's `userlogins` log file, the broker stores the
//! batches and the IMAP Login notifications the dealer hands over, a worker with the
//! `webmail`, `sessions` and `postfix` handlers writes them into SQLite, and `bonnie logins`
//! shows the browser's address and the Roundcube session for the Login from the webmail
//! host, none for the others, and keeps an audit record of the read.

use bonnie_tests::{cluster::Cluster, logd, process};
use serde_json::{Value, json};

/// The address Roundcube connects to Cyrus from.
const WEBMAIL_HOST: &str = "10.0.0.5";

/// An IMAP Login notification as Cyrus sends it.
fn imap_login(user: &str, client_ip: &str, timestamp: &str, session: &str) -> String {
    json!({
        "event": "Login",
        "timestamp": timestamp,
        "service": "imap",
        "clientIP": client_ip,
        "clientPort": 40000,
        "user": user,
        "vnd.cmu.sessionId": session,
    })
    .to_string()
}

/// `bonnie logins --json` with `args`.
fn logins_json(cluster: &Cluster, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["logins"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = cluster.bonnie(&all);
    assert!(output.status.success(), "{}", process::describe(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn a_login_from_the_webmail_host_shows_the_browser_and_roundcube_session_behind_it() {
    let cluster = Cluster::new(
        &["bonnie-webmail", "bonnie-sessions", "bonnie-postfix"],
        &format!(
            "{}\n[plugins.webmail]\nzone = \"UTC\"\nwebmail_hosts = [\"{WEBMAIL_HOST}\"]\nwindow_seconds = 60\n",
            logd::table("files = [\"log/userlogins.log\"]")
        ),
    );
    // Roundcube's own log file, as its `file` driver writes it.
    let lines = vec![
        "[01-Dec-2026 11:59:00 +0000]: <9f8e7d6c> Successful login for John.Doe@example.org (ID: 7) from 203.0.113.9 in session 9f8e7d6c5b4a3921".to_string(),
        "[01-Dec-2026 11:59:20 +0000]: <aaaabbbb> Successful login for jane@example.org (ID: 8) from 203.0.113.50 in session aaaabbbbccccdddd".to_string(),
        "[01-Dec-2026 11:59:25 +0000]: Failed login for john.doe@example.org from 198.51.100.66 in session no-session (error: 1)".to_string(),
        "[01-Dec-2026 11:59:26 +0000]: IMAP Error: something else Roundcube logs".to_string(),
    ];
    std::fs::create_dir_all(cluster.path().join("log")).unwrap();
    logd::append(&cluster.path().join("log/userlogins.log"), lines.clone());
    let _broker = cluster.start_broker();
    let _worker = cluster.start_worker("worker");
    let _logd = logd::start(&cluster);
    logd::wait_for_lines(&cluster, lines.len());
    let user = "john.doe@example.org";
    for login in [
        // Roundcube's next request, 30 s after the webmail login: from the webmail host.
        imap_login(user, WEBMAIL_HOST, "2026-12-01T11:59:30.400Z", "cyrus-1"),
        // The same user's own mail client, within the window but not from the webmail host.
        imap_login(user, "198.51.100.20", "2026-12-01T11:59:40.000Z", "cyrus-2"),
        // From the webmail host, but long after any webmail login of this user.
        imap_login(user, WEBMAIL_HOST, "2026-12-01T12:30:00.000Z", "cyrus-3"),
    ] {
        let output = cluster.deal(login.as_bytes());
        assert!(
            process::succeeded(&output.status),
            "{}",
            process::describe(&output)
        );
    }
    cluster.wait_until_drained();

    let logins = logins_json(&cluster, &[user]);
    assert_eq!(logins.len(), 3, "{logins:#?}");
    let webmail = &logins[0];
    assert_eq!(webmail["session_id"], "cyrus-1");
    assert_eq!(webmail["client_ip"], WEBMAIL_HOST);
    assert_eq!(webmail["from_webmail"], true);
    assert_eq!(
        webmail["webmail"]["browser_ip"], "203.0.113.9",
        "the successful login of this user, not jane's nearer one nor the failed one: {webmail:#}"
    );
    assert_eq!(webmail["webmail"]["session"], "9f8e7d6c5b4a3921");
    assert_eq!(webmail["webmail"]["time"], "2026-12-01T11:59:00Z");
    let own_client = &logins[1];
    assert_eq!(own_client["session_id"], "cyrus-2");
    assert_eq!(own_client["from_webmail"], false);
    assert_eq!(own_client["webmail"], Value::Null, "{own_client:#}");
    let late = &logins[2];
    assert_eq!(late["session_id"], "cyrus-3");
    assert_eq!(late["from_webmail"], true);
    assert_eq!(late["webmail"], Value::Null, "beyond the window: {late:#}");

    // `--since` leaves out the earlier ones; the text form names the browser.
    let since = logins_json(&cluster, &[user, "--since", "2026-12-01T12:00:00Z"]);
    assert_eq!(since.len(), 1, "{since:#?}");
    let text = cluster.bonnie(&["logins", user]);
    assert!(text.status.success(), "{}", process::describe(&text));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("browser 203.0.113.9 in Roundcube session 9f8e7d6c5b4a3921"),
        "{text}"
    );

    let records = cluster.audit_records();
    let reads: Vec<&Value> = records.iter().filter(|r| r["action"] == "logins").collect();
    assert_eq!(reads.len(), 3, "one audit record per read: {records:#?}");
    assert_eq!(reads[0]["params"], json!({"user": user, "since": null}));
    assert_eq!(reads[0]["count"], 3);
}
