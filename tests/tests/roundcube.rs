//! Roundcube's Kolab plugins against bonnie-api, request for request: the bodies, headers and
//! signatures libkolab's `kolab_bonnie_api_client` builds (PHP's `json_encode`, `mt_rand()` ids,
//! HMAC-SHA256 over `X-Request-User:body`), with the parameters its drivers pass
//! (`kolab_driver::get_event_changelog/get_event_diff/get_event_revison/restore_event_revision`,
//! the tasklist and addressbook drivers), the mailbox as `get_mailbox_id()` makes it, in
//! modified UTF-7, and a shared folder by both its names, over objects and mail a real Cyrus
//! IMAP 3.6 archived, on SQLite and on a search server. The answers are read as the drivers
//! read them: `get_event_diff`'s keymap and `prop_keymaps` are transcribed below, and what
//! `calendar.php`'s diff action parses as a date must be a string; the changelog's operations
//! must be ones libkolab.js labels. The client's credentials come from the line
//! `bonnie api-client add` prints for `config.inc.php`.

use bonnie_imap::{quote, utf7};
use bonnie_tests::{
    api::{ApiClient, hmac_sha256_hex},
    cyrus::ADMIN,
    kolab,
    lab::CyrusLab,
    on_both_storages, process,
    storages::Storage,
};
use serde_json::{Map, Value, json};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const EVENT: &str = "5A2C7E10-9B3D-4F6A-8C1E-2D3F4A5B6C7D";
const TASK: &str = "C0FFEE00-1111-4222-8333-444455556666";
const CONTACT: &str = "urn:uuid:0E1D2C3B-4A59-4687-9A0B-C1D2E3F4A5B6";
const DATE: &str = "Mon, 30 Nov 2026 09:00:00 +0000";
/// What libkolab.js's `render_changelog` has a label for.
const LABELLED: [&str; 7] = [
    "RECEIVE",
    "APPEND",
    "MOVE",
    "DELETE",
    "READ",
    "FLAGSET",
    "FLAGCLEAR",
];

/// PHP's `json_encode` with its default flags: `/` escaped, everything past ASCII as `\uXXXX`.
fn php_json_encode(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// Roundcube's client, made from the `config.inc.php` line.
struct Roundcube {
    client: ApiClient,
    user: &'static str,
    next_id: u32,
}

impl Roundcube {
    /// `kolab_bonnie_api_client::execute`: the answer's `result`, or the whole answer when it
    /// is an error (which execute() turns into null).
    fn execute(&mut self, method: &str, params: Value) -> Value {
        // mt_rand(): a positive int.
        self.next_id = self
            .next_id
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345)
            >> 1;
        let id = self.next_id;
        let body = php_json_encode(
            &json!({ "jsonrpc": "2.0", "method": method, "id": id, "params": params }),
        );
        let sign = hmac_sha256_hex(
            self.client.secret.as_bytes(),
            format!("{}:{body}", self.user).as_bytes(),
        );
        let authorization = self.client.authorization();
        let (_, basic) = authorization.split_once(": ").unwrap();
        let answer = self.client.post(
            "/api/rpc",
            &[
                ("Accept", "application/json".to_string()),
                ("X-Request-User", self.user.to_string()),
                ("X-Request-Sign", sign),
                ("Authorization", basic.to_string()),
            ],
            body.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
        assert_eq!(answer.body["id"], json!(id), "{method}: {answer:?}");
        assert!(answer.body.get("error").is_none(), "{method}: {answer:?}");
        answer.body["result"].clone()
    }

    /// kolab_bonnie_api::changelog.
    fn changelog(&mut self, kind: &str, uid: &str, mailbox: &str, msguid: Option<u32>) -> Value {
        self.execute(
            &format!("{kind}.changelog"),
            json!({ "uid": uid, "mailbox": mailbox, "msguid": msguid }),
        )
    }

    /// kolab_bonnie_api::diff; the revisions come from the browser, as strings.
    fn diff(
        &mut self,
        kind: &str,
        uid: &str,
        revs: (i64, i64),
        mailbox: &str,
        msguid: u32,
    ) -> Value {
        self.execute(
            &format!("{kind}.diff"),
            json!({ "uid": uid, "rev1": revs.0.to_string(), "rev2": revs.1.to_string(),
                    "mailbox": mailbox, "msguid": msguid, "instance": null }),
        )
    }
}

/// The `'key' => 'value'` pairs of the printed `$config['kolab_bonnie_api'] = array(...)`.
fn php_array(line: &str) -> Map<String, Value> {
    let inner = line
        .split_once("array(")
        .and_then(|(_, rest)| rest.rsplit_once(");"))
        .map(|(inner, _)| inner)
        .unwrap_or_else(|| panic!("not a PHP array: {line}"));
    let mut map = Map::new();
    for pair in inner.split(", ") {
        let (key, value) = pair.split_once(" => ").unwrap();
        let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(text) => json!(text.replace("\\'", "'").replace("\\\\", "\\")),
            None => serde_json::from_str(value).unwrap_or_else(|_| json!(value)),
        };
        map.insert(key.trim_matches('\'').to_string(), value);
    }
    map
}

/// `kolab_driver::get_event_diff`'s mapping of one change, transcribed.
fn map_event_change(change: &Value) -> Value {
    let keymap = [
        ("dtstart", "start"),
        ("dtend", "end"),
        ("dstamp", "changed"),
        ("summary", "title"),
        ("alarm", "alarms"),
        ("attendee", "attendees"),
        ("attach", "attachments"),
        ("rrule", "recurrence"),
        ("transparency", "free_busy"),
        ("classification", "sensitivity"),
        ("lastmodified-date", "changed"),
    ];
    let mut change = change.clone();
    let property = change["property"].as_str().unwrap_or_default().to_string();
    if let Some((_, to)) = keymap.iter().find(|(from, _)| *from == property) {
        change["property"] = json!(to);
    }
    let mapped = change["property"].as_str().unwrap_or_default().to_string();
    for side in ["old", "new"] {
        let value = &mut change[side];
        match mapped.as_str() {
            "alarms" if value["trigger"].is_object() => {
                value["trigger"] = value["trigger"]["value"].clone();
            }
            "recurrence" => {
                if let Some(parts) = value.as_object() {
                    *value = Value::Object(
                        parts
                            .iter()
                            .map(|(k, v)| (k.to_uppercase(), v.clone()))
                            .collect(),
                    );
                }
            }
            "attachments" => rename(value, &[("fmttype", "mimetype"), ("label", "name")]),
            "attendees" => rename(value, &[("partstat", "status")]),
            _ => {}
        }
    }
    change
}

fn rename(value: &mut Value, keys: &[(&str, &str)]) {
    if let Some(map) = value.as_object_mut() {
        for (from, to) in keys {
            if let Some(v) = map.remove(*from) {
                map.insert(to.to_string(), v);
            }
        }
    }
}

/// What `calendar.php`'s diff action does with `start`, `end`, `created` and `changed`:
/// `adjust_timezone($value, strlen($value) == 10)`, which needs a date string.
fn calendar_date_parses(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return value.is_null();
    };
    if text.len() == 10 {
        return text.parse::<jiff::civil::Date>().is_ok();
    }
    text.parse::<jiff::Timestamp>().is_ok() || text.parse::<jiff::civil::DateTime>().is_ok()
}

fn alarm(trigger: &str) -> String {
    format!(
        "        <components><valarm><properties><action><text>DISPLAY</text></action>\
         <description><text>Reminder</text></description>\
         <trigger><parameters><related><text>START</text></related></parameters><duration>{trigger}</duration></trigger>\
         </properties></valarm></components>\r\n"
    )
}

/// A Roundcube event: a TZID start and end, a weekly rule, an attendee, an attachment and an
/// alarm, as libkolab writes them.
fn event_xml(start: &str, partstat: &str, until: Option<&str>, trigger: &str) -> String {
    let mut rule = vec![("freq", "WEEKLY"), ("interval", "1"), ("byday", "TU")];
    if let Some(until) = until {
        rule.push(("until", until));
    }
    let attendee = format!(
        "<parameters><cn><text>Jane Doe</text></cn><partstat><text>{partstat}</text></partstat>\
         <role><text>REQ-PARTICIPANT</text></role><rsvp><boolean>true</boolean></rsvp></parameters>\
         <cal-address>mailto:{JANE}</cal-address>"
    );
    let properties = [
        ("created", "<date-time>2026-11-30T09:00:00Z</date-time>".to_string()),
        ("dtstamp", "<date-time>2026-11-30T09:00:00Z</date-time>".to_string()),
        ("sequence", "<integer>0</integer>".to_string()),
        ("summary", "<text>Büro-Jour-fixe</text>".to_string()),
        ("dtstart", kolab::zoned("Europe/Berlin", start)),
        ("dtend", kolab::zoned("Europe/Berlin", &start.replace("T10", "T11"))),
        ("rrule", kolab::recur(&rule)),
        (
            "organizer",
            format!("<parameters><cn><text>John Doe</text></cn></parameters><cal-address>mailto:{JOHN}</cal-address>"),
        ),
        ("attendee", attendee),
        (
            "attach",
            "<parameters><fmttype><text>application/pdf</text></fmttype><x-label><text>agenda.pdf</text></x-label></parameters><uri>cid:agenda.1.pdf</uri>".to_string(),
        ),
    ];
    let borrowed: Vec<(&str, &str)> = properties.iter().map(|(n, v)| (*n, v.as_str())).collect();
    kolab::event_xml(EVENT, &borrowed).replacen(
        "        </properties>\r\n",
        &format!("        </properties>\r\n{}", alarm(trigger)),
        1,
    )
}

fn task_xml(summary: &str, status: &str) -> String {
    let properties = [
        ("summary", format!("<text>{summary}</text>")),
        ("status", format!("<text>{status}</text>")),
        ("due", "<date>2026-12-24</date>".to_string()),
    ];
    let borrowed: Vec<(&str, &str)> = properties.iter().map(|(n, v)| (*n, v.as_str())).collect();
    kolab::event_xml(TASK, &borrowed).replace("vevent>", "vtodo>")
}

fn contact_xml(tel: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?>\r\n\
         <vcards xmlns=\"urn:ietf:params:xml:ns:vcard-4.0\"><vcard><uid><uri>{CONTACT}</uri></uid>\
         <x-kolab-version><text>3.1.0</text></x-kolab-version><fn><text>Jürgen Groß</text></fn>\
         <n><surname>Groß</surname><given>Jürgen</given><additional/><prefix/><suffix/></n>\
         <tel><parameters><type><text>work</text></type></parameters><text>{tel}</text></tel>\
         <email><parameters><type><text>work</text></type></parameters><text>jg@example.org</text></email>\
         </vcard></vcards>\r\n"
    )
}

/// The revisions of a changelog, oldest first.
fn revs(changelog: &Value) -> Vec<i64> {
    changelog["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {changelog}"))
        .iter()
        .map(|c| c["rev"].as_i64().unwrap())
        .collect()
}

/// Replaces the message with UID `old` in the selected folder: a Kolab client's update.
fn replace(client: &mut bonnie_imap::Connection, folder: &str, old: u32, new: &[u8]) {
    client.append(folder, &Default::default(), new).unwrap();
    client.select(folder).unwrap();
    client
        .run(&format!("UID STORE {old} +FLAGS (\\Deleted)"), &[])
        .unwrap();
    client.run(&format!("UID EXPUNGE {old}"), &[]).unwrap();
}

on_both_storages!(roundcube_reads_history_diffs_and_trails_in_the_shapes_its_drivers_map);

fn roundcube_reads_history_diffs_and_trails_in_the_shapes_its_drivers_map(storage: Storage) {
    let lab = CyrusLab::start_on(storage, &["bonnie-changelog"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);

    // The line `bonnie api-client add` prints is all Roundcube needs.
    let port = cluster.configure_api(&[]);
    let output = cluster.bonnie(&["api-client", "add", "roundcube"]);
    assert!(
        process::succeeded(&output.status),
        "{}",
        process::describe(&output)
    );
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    let line = printed
        .lines()
        .find(|l| l.starts_with("$config['kolab_bonnie_api'] = array("))
        .unwrap_or_else(|| panic!("no config.inc.php line in: {printed}"));
    let config = php_array(line);
    for key in ["uri", "user", "pass", "secret", "timeout", "debug"] {
        assert!(config.contains_key(key), "{key} missing from {line}");
    }
    assert_eq!(config["uri"], format!("http://127.0.0.1:{port}/api/rpc"));
    let _api = cluster.run_api(port);
    let text = |key: &str| config[key].as_str().unwrap().to_string();
    let mut roundcube = Roundcube {
        client: ApiClient {
            address: format!("127.0.0.1:{port}"),
            name: text("user"),
            password: text("pass"),
            secret: text("secret"),
        },
        user: JOHN,
        next_id: 20_141_118,
    };

    // John's calendar "Büro" (B&APw-ro on the wire), his tasks and address book, and a shared
    // mail folder (Cyrus 3.6 fails an assertion on SETMETADATA of a shared folder, so it holds
    // mail, whose trail needs no folder type).
    let mut admin = cyrus.login(ADMIN);
    for command in [
        "CREATE \"team@example.org\"".to_string(),
        format!("SETACL \"team@example.org\" {} lrswipkxtecdan", quote(JOHN)),
    ] {
        admin
            .run(&command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    admin.logout().unwrap();
    let buero = utf7::encode("Büro");
    let mut john = cyrus.login(JOHN);
    for command in [
        format!("CREATE {}", quote(&buero)),
        format!(
            "SETMETADATA {} (/shared/vendor/kolab/folder-type \"event\")",
            quote(&buero)
        ),
        format!("CREATE {}", quote(&utf7::encode("Büro/Post"))),
        "CREATE Aufgaben".to_string(),
        "SETMETADATA Aufgaben (/shared/vendor/kolab/folder-type \"task\")".to_string(),
        "CREATE Contacts".to_string(),
        "SETMETADATA Contacts (/shared/vendor/kolab/folder-type \"contact\")".to_string(),
    ] {
        john.run(&command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    let event = |xml: &str| kolab::message("event", EVENT, JOHN, DATE, xml);
    john.append(
        "Büro",
        &Default::default(),
        &event(&event_xml(
            "2026-12-01T10:00:00",
            "NEEDS-ACTION",
            None,
            "-PT15M",
        )),
    )
    .unwrap();
    replace(
        &mut john,
        "Büro",
        1,
        &event(&event_xml(
            "2026-12-01T10:30:00",
            "ACCEPTED",
            Some("<date-time>2027-01-26T09:00:00Z</date-time>"),
            "-PT30M",
        )),
    );
    let tasks_folder = "Aufgaben";
    john.append(
        tasks_folder,
        &Default::default(),
        &kolab::message("task", TASK, JOHN, DATE, &task_xml("Plan", "NEEDS-ACTION")),
    )
    .unwrap();
    replace(
        &mut john,
        tasks_folder,
        1,
        &kolab::message("task", TASK, JOHN, DATE, &task_xml("Plan", "COMPLETED")),
    );
    let shared = "Shared Folders/team";
    let notice = format!(
        "From: {JOHN}\r\nTo: {JANE}\r\nSubject: Team\r\nDate: {DATE}\r\nMessage-ID: <team@example.org>\r\n\r\nHi.\r\n"
    );
    john.append(shared, &Default::default(), notice.as_bytes())
        .unwrap();
    john.select(shared).unwrap();
    john.run("UID STORE 1 +FLAGS (\\Seen)", &[]).unwrap();
    let contact = |tel: &str| kolab::message("contact", CONTACT, JOHN, DATE, &contact_xml(tel));
    john.append("Contacts", &Default::default(), &contact("+49 30 1234"))
        .unwrap();
    replace(&mut john, "Contacts", 1, &contact("+49 30 5678"));
    john.logout().unwrap();
    // A message delivered, flagged, unflagged, moved into "Büro/Post", deleted and expunged.
    let mail = format!(
        "From: {JANE}\r\nTo: {JOHN}\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: {DATE}\r\nMessage-ID: <gruesse@example.org>\r\n\r\nHallo.\r\n"
    );
    cyrus.lmtp(JANE, &[JOHN], mail.as_bytes());
    let mut john = cyrus.login(JOHN);
    john.select("INBOX").unwrap();
    for command in [
        "UID STORE 1 +FLAGS (\\Flagged)".to_string(),
        "UID STORE 1 -FLAGS (\\Flagged)".to_string(),
        format!("UID MOVE 1 {}", quote(&utf7::encode("Büro/Post"))),
    ] {
        john.run(&command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    john.select("Büro/Post").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Deleted)", &[]).unwrap();
    john.run("UID EXPUNGE 1", &[]).unwrap();
    john.logout().unwrap();
    lab.wait_until_archived();

    // The calendar: the mailbox as get_mailbox_id() gives it, in modified UTF-7, the message
    // UID from Roundcube's cache (2, after the update).
    let mailbox = format!("user/john.doe/{buero}@example.org");
    let changelog = roundcube.changelog("event", EVENT, &mailbox, Some(2));
    assert_eq!(changelog["uid"], EVENT, "{changelog}");
    let changes = changelog["changes"].as_array().unwrap();
    let ops: Vec<&str> = changes.iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["APPEND", "APPEND"], "{changelog}");
    for change in changes {
        assert!(
            change["date"].is_string() && change["user"].is_string(),
            "{change}"
        );
        assert_eq!(change["mailbox"], "Büro", "{change}");
    }
    let event_revs = revs(&changelog);
    // The relative name Roundcube keeps as _mailbox names the same folder.
    assert_eq!(roundcube.changelog("event", EVENT, &buero, None), changelog);

    let diff = roundcube.diff("event", EVENT, (event_revs[0], event_revs[1]), &mailbox, 2);
    assert_eq!(
        (diff["uid"].as_str(), diff["rev"].as_i64()),
        (Some(EVENT), Some(event_revs[1])),
        "{diff}"
    );
    let mapped: Vec<Value> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(map_event_change)
        .collect();
    let by_property = |name: &str| {
        mapped
            .iter()
            .find(|c| c["property"] == name)
            .unwrap_or_else(|| panic!("no {name} in {mapped:?}"))
            .clone()
    };
    for change in &mapped {
        let property = change["property"].as_str().unwrap();
        if ["start", "end", "created", "changed"].contains(&property) {
            assert!(
                calendar_date_parses(&change["old"]) && calendar_date_parses(&change["new"]),
                "calendar.php cannot parse {change}"
            );
        }
    }
    let start = by_property("start");
    assert_eq!(
        (start["old"].as_str(), start["new"].as_str()),
        (
            Some("2026-12-01T10:00:00+01:00"),
            Some("2026-12-01T10:30:00+01:00")
        )
    );
    assert_eq!(by_property("end")["new"], "2026-12-01T11:30:00+01:00");
    let attendees = by_property("attendees");
    assert_eq!(
        (
            attendees["old"]["status"].as_str(),
            attendees["new"]["status"].as_str()
        ),
        (Some("NEEDS-ACTION"), Some("ACCEPTED"))
    );
    assert_eq!(
        (
            attendees["new"]["email"].as_str(),
            attendees["new"]["name"].as_str()
        ),
        (Some(JANE), Some("Jane Doe"))
    );
    let alarms = by_property("alarms");
    assert_eq!(
        (
            alarms["old"]["trigger"].as_str(),
            alarms["new"]["trigger"].as_str()
        ),
        (Some("-PT15M"), Some("-PT30M"))
    );
    assert_eq!(alarms["new"]["action"], "DISPLAY");
    let recurrence = by_property("recurrence");
    assert_eq!(
        recurrence["old"],
        json!({ "FREQ": "WEEKLY", "INTERVAL": "1", "BYDAY": "TU" })
    );
    assert_eq!(recurrence["new"]["UNTIL"], "2027-01-26T09:00:00Z");
    assert!(
        mapped
            .iter()
            .all(|c| c["property"] != "attachments" && c["property"] != "title"),
        "unchanged properties are not listed: {mapped:?}"
    );

    // get_event_revison: the XML of a revision; restore_event_revision: its message, asked
    // for without msguid.
    let got = roundcube.execute(
        "event.get",
        json!({ "uid": EVENT, "rev": event_revs[0], "mailbox": mailbox, "msguid": 2 }),
    );
    assert!(
        got["xml"].as_str().unwrap().contains("NEEDS-ACTION"),
        "{got}"
    );
    let raw = roundcube.execute(
        "event.rawdata",
        json!({ "uid": EVENT, "rev": event_revs[0], "mailbox": mailbox, "msguid": null }),
    );
    assert!(
        raw.as_str()
            .unwrap()
            .contains("X-Kolab-Type: application/x-vnd.kolab.event")
    );

    // The tasklist, its folder as get_mailbox_id() names it.
    let task_folder = "user/john.doe/Aufgaben@example.org";
    let tasks = roundcube.changelog("task", TASK, task_folder, Some(2));
    assert_eq!(tasks["uid"], TASK, "{tasks}");
    let task_revs = revs(&tasks);
    let task_diff = roundcube.diff("task", TASK, (task_revs[0], task_revs[1]), task_folder, 2);
    assert_eq!(
        task_diff["changes"],
        json!([{ "property": "status", "old": "NEEDS-ACTION", "new": "COMPLETED" }])
    );

    // The address book: phone numbers as {number, type}, as contact_diff reads them.
    let contacts = roundcube.changelog(
        "contact",
        CONTACT,
        "user/john.doe/Contacts@example.org",
        Some(2),
    );
    let contact_revs = revs(&contacts);
    let contact_diff = roundcube.diff(
        "contact",
        CONTACT,
        (contact_revs[0], contact_revs[1]),
        "user/john.doe/Contacts@example.org",
        2,
    );
    assert_eq!(
        contact_diff["changes"],
        json!([{ "property": "tel", "old": { "number": "+49 30 1234", "type": "work" }, "new": { "number": "+49 30 5678", "type": "work" } }])
    );

    // Every operation of every changelog is one libkolab.js labels.
    for log in [&changelog, &tasks, &contacts] {
        for change in log["changes"].as_array().unwrap() {
            assert!(
                LABELLED.contains(&change["op"].as_str().unwrap()),
                "{change}"
            );
        }
    }

    // A message's trail, from where it ended, named in modified UTF-7.
    // Cyrus may tell the last of these (the expunge) after the cluster went idle once.
    let mut trail = Value::Null;
    process::wait_until("the whole trail archived", || {
        trail = roundcube.execute(
            "mail.changelog",
            json!({ "uid": null, "mailbox": utf7::encode("Büro/Post"), "msguid": 1 }),
        );
        trail["changes"].as_array().is_some_and(|c| c.len() >= 6)
    });
    let steps: Vec<(String, String, Value)> = trail["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{trail}"))
        .iter()
        .map(|c| {
            assert!(
                c["date"].is_string() && c["user"].is_string() && c["rev"].is_i64(),
                "{c}"
            );
            (
                c["op"].as_str().unwrap().to_string(),
                c["mailbox"].as_str().unwrap().to_string(),
                c.get("flags").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    let step = |op: &str, mailbox: &str, flags: Value| (op.to_string(), mailbox.to_string(), flags);
    assert_eq!(
        steps,
        [
            step("RECEIVE", "INBOX", Value::Null),
            step("FLAGSET", "INBOX", json!("\\Flagged")),
            step("FLAGCLEAR", "INBOX", json!("\\Flagged")),
            step("MOVE", "Büro/Post", Value::Null),
            step("FLAGSET", "Büro/Post", json!("\\Deleted")),
            step("DELETE", "Büro/Post", Value::Null),
        ],
        "{trail}"
    );
    let trail_revs = revs(&trail);
    assert!(trail_revs.windows(2).all(|w| w[0] < w[1]), "{trail_revs:?}");

    // A shared folder, by get_mailbox_id()'s name and by the one IMAP shows: one trail.
    let by_id = roundcube.execute(
        "mail.changelog",
        json!({ "uid": null, "mailbox": "team@example.org", "msguid": 1 }),
    );
    let ops: Vec<(&str, &str)> = by_id["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{by_id}"))
        .iter()
        .map(|c| (c["op"].as_str().unwrap(), c["mailbox"].as_str().unwrap()))
        .collect();
    assert_eq!(ops, [("APPEND", shared), ("READ", shared)], "{by_id}");
    let by_name = roundcube.execute(
        "mail.changelog",
        json!({ "uid": null, "mailbox": shared, "msguid": 1 }),
    );
    assert_eq!(by_name["changes"], by_id["changes"]);
}
