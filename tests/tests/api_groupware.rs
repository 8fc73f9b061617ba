//! bonnie-api over real HTTP, signed as Roundcube signs, on objects a real Cyrus IMAP 3.6
//! archived through the whole chain (exec dealer, broker, worker with the archive handlers
//! and `changelog`, collector, LDAP): changelogs with who did what, each revision's exact XML,
//! diffs of whole objects and of one recurrence instance, authorization by the folder's
//! current ACL, the JSON-RPC and HTTP errors, and the audit log; on SQLite and on a search
//! server alike, with a message's trail past the 10,000 hits a search answers at once.

use bonnie_core::imap::uri::Mailbox;
use bonnie_imap::quote;
use bonnie_tests::{
    api::{ApiClient, revs},
    cluster::Cluster,
    kolab::{self, replace},
    lab::CyrusLab,
    on_both_storages,
    storages::{self, Storage},
};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const BOB: &str = "bob.smith@example.org";
const EVENT: &str = "7F2E4A90-1B3C-4D5E-8F60-718293A4B5C6";
const WEEKLY: &str = "0D9C8B7A-6E5F-4A3B-2C1D-0E9F8A7B6C5D";
const DATE: &str = "Sat, 28 Nov 2026 09:00:00 +0000";

fn properties(summary: &str, location: &str, sequence: u32) -> Vec<(String, String)> {
    vec![
        ("sequence".into(), format!("<integer>{sequence}</integer>")),
        ("summary".into(), format!("<text>{summary}</text>")),
        ("location".into(), format!("<text>{location}</text>")),
        (
            "dtstart".into(),
            "<parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-01T10:00:00</date-time>".into(),
        ),
    ]
}

fn xml_of(uid: &str, properties: &[(String, String)]) -> String {
    let borrowed: Vec<(&str, &str)> = properties
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    kolab::event_xml(uid, &borrowed)
}

/// A weekly event; with `exception`, the instance of 8 December moved to the afternoon and
/// renamed, as a second `vevent` with its `recurrence-id`.
fn weekly_xml(sequence: u32, exception: bool) -> String {
    let mut props = properties("Team meeting", "Room 3", sequence);
    props.push((
        "rrule".into(),
        "<recur><freq>WEEKLY</freq><count>6</count><byday>TU</byday></recur>".into(),
    ));
    let xml = xml_of(WEEKLY, &props);
    if !exception {
        return xml;
    }
    let instance = format!(
        "      <vevent>\r\n        <properties>\r\n          <uid><text>{WEEKLY}</text></uid>\r\n\
         \x20         <recurrence-id><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-08T10:00:00</date-time></recurrence-id>\r\n\
         \x20         <sequence><integer>{sequence}</integer></sequence>\r\n\
         \x20         <summary><text>Team meeting (afternoon)</text></summary>\r\n\
         \x20         <location><text>Room 3</text></location>\r\n\
         \x20         <dtstart><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters><date-time>2026-12-08T14:00:00</date-time></dtstart>\r\n\
         \x20       </properties>\r\n      </vevent>\r\n"
    );
    xml.replace("    </components>", &format!("{instance}    </components>"))
}

fn message(uid: &str, xml: &str) -> Vec<u8> {
    kolab::message("event", uid, JOHN, DATE, xml)
}

on_both_storages!(
    kolab_clients_read_history_revisions_and_diffs_with_authorization,
    a_trail_past_ten_thousand_entries_is_answered_whole,
);

fn kolab_clients_read_history_revisions_and_diffs_with_authorization(storage: Storage) {
    let lab = CyrusLab::start_on(storage, &["bonnie-changelog"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let (_api, api, admins) = cluster.start_api_with_admins(&["console"]);
    let console = &admins[0];
    let xml = [
        xml_of(EVENT, &properties("Planning", "Room 1", 0)),
        xml_of(EVENT, &properties("Planning (moved)", "Room 1", 1)),
        xml_of(EVENT, &properties("Planning (moved)", "Room 2", 2)),
    ];
    let messages: Vec<Vec<u8>> = xml.iter().map(|x| message(EVENT, x)).collect();
    let mut john = cyrus.login(JOHN);
    for command in [
        "CREATE Calendar",
        "SETMETADATA Calendar (/shared/vendor/kolab/folder-type \"event\")",
        "CREATE Calendar/Archive",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.run(&format!("SETACL Calendar {} lrswitedn", quote(JANE)), &[])
        .unwrap();
    john.append("Calendar", &Default::default(), &messages[0])
        .unwrap();
    john.select("Calendar").unwrap();
    replace(&mut john, "Calendar", 1, &messages[1]);
    john.logout().unwrap();
    let mut jane = cyrus.login(JANE);
    let shared = "Other Users/john.doe/Calendar";
    jane.select(shared).unwrap();
    replace(&mut jane, shared, 2, &messages[2]);
    jane.logout().unwrap();
    let mut john = cyrus.login(JOHN);
    john.select("Calendar").unwrap();
    john.run("UID MOVE 3 Calendar/Archive", &[]).unwrap();
    // The recurring event, then one instance changed.
    john.append(
        "Calendar",
        &Default::default(),
        &message(WEEKLY, &weekly_xml(0, false)),
    )
    .unwrap();
    john.select("Calendar").unwrap();
    replace(
        &mut john,
        "Calendar",
        4,
        &message(WEEKLY, &weekly_xml(1, true)),
    );
    // A plain message, flagged, unflagged and moved: its audit trail.
    let plain = format!(
        "From: {JANE}\r\nTo: {JOHN}\r\nSubject: Minutes\r\nDate: {DATE}\r\nMessage-ID: <minutes@example.org>\r\n\r\nHello.\r\n"
    );
    john.run("CREATE Archive", &[]).unwrap();
    john.append("INBOX", &Default::default(), plain.as_bytes())
        .unwrap();
    john.select("INBOX").unwrap();
    for command in [
        "UID STORE 1 +FLAGS (\\Flagged)",
        "UID STORE 1 -FLAGS (\\Flagged)",
        "UID MOVE 1 Archive",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.logout().unwrap();
    lab.wait_until_archived();

    // The changelog: four changes, by whom, where.
    let params = json!({ "uid": EVENT, "mailbox": "Calendar" });
    let changelog = api.call(JOHN, "event.changelog", params.clone());
    assert_eq!(changelog["uid"], EVENT);
    let changes = changelog["changes"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap(),
                c["user"].as_str().unwrap(),
                c["mailbox"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("APPEND", "John Doe <john.doe@example.org>", "Calendar"),
            // A new version replacing the old is an APPEND, as libkolab.js labels it.
            ("APPEND", "John Doe <john.doe@example.org>", "Calendar"),
            ("APPEND", "Jane Doe <jane.doe@example.org>", "Calendar"),
            (
                "MOVE",
                "John Doe <john.doe@example.org>",
                "Calendar/Archive"
            ),
        ]
    );
    let revs = revs(&changelog);
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
    for change in changes {
        let date = change["date"].as_str().unwrap();
        assert!(
            date.len() == 20
                && date.starts_with("20")
                && date.ends_with('Z')
                && &date[10..11] == "T",
            "{date}"
        );
    }

    // Each revision's exact XML, and its whole message.
    for (rev, expected) in revs.iter().zip([&xml[0], &xml[1], &xml[2], &xml[2]]) {
        let got = api.call(
            JOHN,
            "event.get",
            json!({ "uid": EVENT, "rev": rev, "mailbox": "Calendar" }),
        );
        assert_eq!(got["xml"].as_str().unwrap(), expected.as_str());
        assert_eq!(
            (got["uid"].as_str(), got["rev"].as_i64()),
            (Some(EVENT), Some(*rev))
        );
    }
    let raw = api.call(
        JOHN,
        "event.rawdata",
        json!({ "uid": EVENT, "rev": revs[0], "mailbox": "Calendar" }),
    );
    assert_eq!(raw.as_str().unwrap().as_bytes(), messages[0].as_slice());
    assert_eq!(
        api.call(
            JOHN,
            "event.get",
            json!({ "uid": EVENT, "rev": 1, "mailbox": "Calendar" })
        ),
        Value::Bool(false),
        "no such revision"
    );

    // The diff between revisions 1 and 3: exactly what changed.
    let diff = api.call(
        JOHN,
        "event.diff",
        json!({ "uid": EVENT, "rev1": revs[0], "rev2": revs[2], "mailbox": "Calendar" }),
    );
    assert_eq!(diff["rev"], revs[2]);
    assert_eq!(
        diff["changes"],
        json!([
            { "property": "sequence", "old": "0", "new": "2" },
            { "property": "summary", "old": "Planning", "new": "Planning (moved)" },
            { "property": "location", "old": "Room 1", "new": "Room 2" },
        ])
    );
    // created and lastmodified.
    let created = api.call(JOHN, "event.created", params.clone());
    assert_eq!(
        (created["rev"].as_i64(), created["user"].as_str()),
        (Some(revs[0]), Some("John Doe <john.doe@example.org>"))
    );
    let last = api.call(JOHN, "event.lastmodified", params.clone());
    assert_eq!(last["rev"].as_i64(), Some(revs[3]));

    // One instance of the recurring event: its exception against the master it replaced.
    let weekly = api.call(
        JOHN,
        "event.changelog",
        json!({ "uid": WEEKLY, "mailbox": "Calendar" }),
    );
    let weekly_revs = self::revs(&weekly);
    assert_eq!(weekly_revs.len(), 2, "{weekly}");
    let instance = api.call(
        JOHN,
        "event.diff",
        json!({ "uid": WEEKLY, "rev1": weekly_revs[0], "rev2": weekly_revs[1], "mailbox": "Calendar", "instance": "20261208T100000" }),
    );
    assert_eq!(instance["instance"], "20261208T100000");
    assert_eq!(
        instance["changes"],
        json!([
            { "property": "sequence", "old": "0", "new": "1" },
            { "property": "summary", "old": "Team meeting", "new": "Team meeting (afternoon)" },
            { "property": "dtstart", "old": "2026-12-01T10:00:00+01:00", "new": "2026-12-08T14:00:00+01:00" },
            { "property": "rrule", "old": { "freq": "WEEKLY", "count": "6", "byday": "TU" }, "new": null },
        ])
    );
    let master = api.call(
        JOHN,
        "event.diff",
        json!({ "uid": WEEKLY, "rev1": weekly_revs[0], "rev2": weekly_revs[1], "mailbox": "Calendar" }),
    );
    assert_eq!(
        master["changes"],
        json!([{ "property": "sequence", "old": "0", "new": "1" }]),
        "the series itself changed only its sequence"
    );

    // Authorization: Bob has no right on John's calendar, then lr.
    let bobs = json!({ "uid": EVENT, "mailbox": "Other Users/john.doe/Calendar" });
    assert_eq!(
        api.call(BOB, "event.changelog", bobs.clone()),
        Value::Bool(false)
    );
    assert_eq!(
        api.call(
            BOB,
            "event.get",
            json!({ "uid": EVENT, "rev": revs[0], "mailbox": "Other Users/john.doe/Calendar" })
        ),
        Value::Bool(false)
    );
    let janes = api.call(
        JANE,
        "event.changelog",
        json!({ "uid": EVENT, "mailbox": "Other Users/john.doe/Calendar" }),
    );
    // Jane has lrswitedn on Calendar, none on Calendar/Archive (made before she was granted
    // them): she sees the revisions in Calendar, not the move into Archive.
    assert_eq!(self::revs(&janes), revs[..3], "{janes}");
    assert!(
        janes["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["mailbox"] == "Other Users/john.doe/Calendar"),
        "{janes}"
    );
    // An admin client reads everything: for Bob, and for no user at all by full path.
    let for_bob = console.call(BOB, "event.changelog", bobs.clone());
    assert_eq!(for_bob["changes"].as_array().unwrap().len(), 4);
    let by_path = console.call(
        "",
        "event.changelog",
        json!({ "uid": EVENT, "mailbox": "user/john.doe/Calendar@example.org" }),
    );
    assert_eq!(self::revs(&by_path), revs);
    // Bob is granted lr on Calendar, then on Calendar/Archive.
    let granted = |folder: &str| {
        let mut john = cyrus.login(JOHN);
        john.run(&format!("SETACL {folder} {} lr", quote(BOB)), &[])
            .unwrap();
        john.logout().unwrap();
        lab.wait_until_archived();
        self::revs(&api.call(BOB, "event.changelog", bobs.clone()))
    };
    assert_eq!(granted("Calendar"), revs[..3], "the revisions in Calendar");
    assert_eq!(
        granted("Calendar/Archive"),
        revs,
        "and the move into Archive"
    );
    // An object never in the named folder is not found through it.
    assert_eq!(
        api.call(
            JOHN,
            "event.changelog",
            json!({ "uid": EVENT, "mailbox": "INBOX" })
        ),
        Value::Bool(false)
    );
    assert_eq!(
        api.call(
            JOHN,
            "event.changelog",
            json!({ "uid": "no-such-uid", "mailbox": "Calendar" })
        ),
        Value::Bool(false)
    );

    // One message's audit trail, through its move.
    let trail = api.call(
        JOHN,
        "mail.changelog",
        json!({ "uid": null, "mailbox": "Archive", "msguid": 1 }),
    );
    let steps: Vec<(&str, &str, Value)> = trail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap(),
                c["mailbox"].as_str().unwrap(),
                c.get("flags").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("APPEND", "INBOX", Value::Null),
            ("FLAGSET", "INBOX", json!("\\Flagged")),
            ("FLAGCLEAR", "INBOX", json!("\\Flagged")),
            ("MOVE", "Archive", Value::Null),
        ],
        "{trail}"
    );
    assert!(
        trail["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["user"] == "John Doe <john.doe@example.org>")
    );
    assert_eq!(
        api.call(
            BOB,
            "mail.changelog",
            json!({ "mailbox": "Other Users/john.doe/Archive", "msguid": 1 })
        ),
        Value::Bool(false),
        "Bob may not read John's Archive"
    );

    // Errors: HTTP 401 without or with wrong credentials; -32600, -32601, -32602.
    let body = br#"{"jsonrpc":"2.0","method":"event.changelog","params":{},"id":1}"#;
    assert_eq!(api.post("/api/rpc", &[], body).status, 401);
    let wrong = ApiClient {
        password: "wrong".into(),
        address: api.address.clone(),
        name: api.name.clone(),
        secret: api.secret.clone(),
    };
    assert_eq!(
        wrong
            .call_raw(JOHN, "event.changelog", params.clone())
            .status,
        401
    );
    let bad = api.call_badly_signed(JOHN, "event.changelog", params.clone());
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_i64()),
        (200, Some(-32600))
    );
    for method in [
        "event.nosuch",
        "calendar.get",
        "_private",
        "event._changelog",
    ] {
        let answer = api.call_raw(JOHN, method, json!({}));
        assert_eq!(answer.body["error"]["code"], -32601, "{method}: {answer:?}");
    }
    let missing = api.call_raw(
        JOHN,
        "event.get",
        json!({ "uid": EVENT, "mailbox": "Calendar" }),
    );
    assert_eq!(missing.body["error"]["code"], -32602, "{missing:?}");
    let backwards = api.call_raw(
        JOHN,
        "event.diff",
        json!({ "uid": EVENT, "rev1": revs[2], "rev2": revs[0], "mailbox": "Calendar" }),
    );
    assert_eq!(backwards.body["error"]["code"], -32602, "{backwards:?}");
    let keygen = api.call(JOHN, "system.keygen", json!({ "salt": "x" }));
    assert_eq!(keygen["key"].as_str().unwrap().len(), 64);

    // Every call is in the audit log, with the client and the user it asked for.
    let audit = cluster.api_audit();
    let bob_calls = audit
        .iter()
        .filter(|l| l["user"] == BOB && l["method"] == "event.changelog")
        .count();
    assert_eq!(bob_calls, 4, "{audit:#?}");
    assert!(audit.iter().any(|l| l["status"] == 401));
    assert!(
        audit
            .iter()
            .any(|l| l["error"] == -32600 && l["client"] == "roundcube")
    );
}

#[test]
fn api_clients_are_managed_from_the_command_line() {
    let cluster = bonnie_tests::cluster::Cluster::new(&[], "");
    cluster.configure_api(&[]);
    let made = cluster.add_api_client("console");
    assert_eq!((made.password.len(), made.secret.len()), (32, 64));
    let listed = cluster.bonnie(&["api-client", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("console  added 20"));
    let again = cluster.bonnie(&["api-client", "add", "console"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let removed = cluster.bonnie(&["api-client", "remove", "console"]);
    assert!(removed.status.success());
    let listed = cluster.bonnie(&["api-client", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("No API clients"));
    let missing = cluster.bonnie(&["api-client", "remove", "console"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no API client named"));
    // The file holds the password's argon2 hash, never the password.
    let file = std::fs::read_to_string(cluster.path().join("var/api-clients.json"));
    assert!(file.is_ok_and(|f| !f.contains(&made.password)));
}

#[test]
fn with_a_certificate_the_api_speaks_https_only() {
    use std::process::Command;
    let cluster = bonnie_tests::cluster::Cluster::new(&[], "");
    let dir = cluster.path();
    cluster.make_tls_certificate();
    let port = cluster.configure_api_with(
        &[],
        "tls_certificate = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    );
    let client = cluster.add_api_client("roundcube");
    let _api = cluster.run_api(port);
    let url = format!("https://127.0.0.1:{port}/api/rpc");
    let body =
        json!({ "jsonrpc": "2.0", "method": "system.keygen", "params": {}, "id": 5 }).to_string();
    let sign = bonnie_tests::api::hmac_sha256_hex(
        client.secret.as_bytes(),
        format!("{JOHN}:{body}").as_bytes(),
    );
    let curl = |args: &[&str]| {
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(dir.join("cert.pem"))
            .args(args)
            .output()
            .expect("curl (scripts/test installs it)");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let credentials = format!("{}:{}", client.name, client.password);
    let (ok, answer) = curl(&[
        "-u",
        &credentials,
        "-H",
        &format!("X-Request-User: {JOHN}"),
        "-H",
        &format!("X-Request-Sign: {sign}"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
        &url,
    ]);
    assert!(ok, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (
            answer["id"].as_i64(),
            answer["result"]["key"].as_str().map(str::len)
        ),
        (Some(5), Some(64))
    );
    let (_, status) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &body,
        &url,
    ]);
    assert_eq!(status, "401", "no credentials over HTTPS");
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = ApiClient {
        address: format!("127.0.0.1:{port}"),
        ..client
    };
    let refused = std::panic::catch_unwind(|| plain.call_raw(JOHN, "system.keygen", json!({})));
    assert!(
        refused.is_err() || refused.is_ok_and(|a| a.status != 200),
        "plain HTTP must not be served"
    );
}

/// Entries of the long trail: past the 10,000 hits Elasticsearch and OpenSearch answer at most
/// per search (`max_result_window`), and past two of es-storage's pages.
const LONG_TRAIL: u64 = 10_050;

fn a_trail_past_ten_thousand_entries_is_answered_whole(storage: Storage) {
    let cluster = Cluster::new(&[], "");
    let _archive = cluster.use_storage(storage);
    std::fs::create_dir_all(cluster.path().join("var")).unwrap();
    // Filled in-process through the storage plugin, as the changelog handler records a
    // message's events: an append, then flags set and cleared, by four threads.
    let store = storages::open(&cluster.config());
    let inbox = Mailbox::of_user(JOHN, "INBOX").path;
    let start_ms = 1_795_000_000_000i64;
    let event = |n: u64| {
        let name = match n {
            0 => "MessageAppend",
            n if n % 2 == 1 => "FlagsSet",
            _ => "FlagsClear",
        };
        json!({
            "event": name,
            "@timestamp": bonnie_core::time::format_rfc3339_ms(start_ms + n as i64 * 1000),
            "user": JOHN,
            "folder": inbox,
            "uids": [7],
            "flags": ["\\Flagged"],
        })
    };
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let store = &store;
            scope.spawn(move || {
                for n in (thread..LONG_TRAIL).step_by(4) {
                    let record = event(n);
                    bonnie_model::mail_history::record(
                        store,
                        record.as_object().unwrap(),
                        &format!("fill-{n}"),
                    )
                    .unwrap();
                }
            });
        }
    });
    drop(store);

    let (_api, api) = cluster.start_api(&[]);
    let trail = api.call(
        JOHN,
        "mail.changelog",
        json!({ "mailbox": "INBOX", "msguid": 7 }),
    );
    let changes = trail["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"));
    assert_eq!(changes.len() as u64, LONG_TRAIL, "the whole trail");
    let dates: Vec<&str> = changes
        .iter()
        .map(|c| c["date"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..LONG_TRAIL)
        .map(|n| bonnie_core::time::format_rfc3339_s(start_ms + n as i64 * 1000))
        .collect();
    assert_eq!(dates, expected, "every entry once, oldest first");
    assert_eq!(changes[0]["op"], "APPEND");
    assert_eq!(changes[1]["op"], "FLAGSET");
    assert_eq!(changes[2]["op"], "FLAGCLEAR");
}
