//! Free/busy from real Cyrus IMAP 3.6 through the whole chain (exec dealer, broker, worker with
//! the archive handlers, `changelog` and `freebusy`, collector, LDAP): a weekly event in
//! Europe/Berlin, then updated the Kolab way (append the new version, delete and expunge the
//! old) with one instance moved (an exception) and one deleted (an EXDATE). Free/busy is
//! answered by bonnie-api over HTTP, now and as known before the update.

use bonnie_core::{payload, time};
use bonnie_tests::{kolab, lab::CyrusLab};
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.org";
const JANE: &str = "jane.doe@example.org";
const EVENT_UID: &str = "9C2D1E3F-4A5B-4C6D-8E7F-0A1B2C3D4E5F";
const BERLIN: &str = "Europe/Berlin";

/// The weekly event: Tuesdays 10:00 to 11:00 in Berlin, six times from 1 December 2026; the
/// second version moves the third instance to 14:00 and deletes the fourth.
fn version(updated: bool) -> Vec<u8> {
    let sequence = format!("<integer>{}</integer>", u32::from(updated));
    let (dtstart, dtend) = (
        kolab::zoned(BERLIN, "2026-12-01T10:00:00"),
        kolab::zoned(BERLIN, "2026-12-01T11:00:00"),
    );
    let rrule = kolab::recur(&[("freq", "WEEKLY"), ("count", "6"), ("byday", "TU")]);
    let exdate = kolab::zoned(BERLIN, "2026-12-22T10:00:00");
    let mut properties: Vec<(&str, &str)> = vec![
        ("created", "<date-time>2026-11-28T09:00:00Z</date-time>"),
        ("dtstamp", "<date-time>2026-11-28T09:00:00Z</date-time>"),
        ("sequence", &sequence),
        ("summary", "<text>Jour fixe</text>"),
        ("dtstart", &dtstart),
        ("dtend", &dtend),
        ("rrule", &rrule),
    ];
    let (recurrence_id, moved_start, moved_end) = (
        kolab::zoned(BERLIN, "2026-12-15T10:00:00"),
        kolab::zoned(BERLIN, "2026-12-15T14:00:00"),
        kolab::zoned(BERLIN, "2026-12-15T15:00:00"),
    );
    let exception: [(&str, &str); 6] = [
        ("dtstamp", "<date-time>2026-11-29T09:00:00Z</date-time>"),
        ("sequence", "<integer>1</integer>"),
        ("summary", "<text>Jour fixe (afternoon)</text>"),
        ("recurrence-id", &recurrence_id),
        ("dtstart", &moved_start),
        ("dtend", &moved_end),
    ];
    let xml = if updated {
        properties.push(("exdate", &exdate));
        kolab::event_with_exceptions_xml(EVENT_UID, &properties, &[&exception])
    } else {
        kolab::event_xml(EVENT_UID, &properties)
    };
    kolab::message(
        "event",
        EVENT_UID,
        JOHN,
        "Sat, 28 Nov 2026 09:00:00 +0000",
        &xml,
    )
}

fn busy(start: &str, end: &str) -> Value {
    json!({ "start": start, "end": end, "type": "BUSY" })
}

#[test]
fn a_weekly_event_with_a_moved_and_a_deleted_instance_is_busy_as_now_and_as_before_the_update() {
    let lab = CyrusLab::start(&["bonnie-changelog", "bonnie-freebusy"], &[JOHN, JANE]);
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let (_api, api) = cluster.start_api(&[]);
    let (first, second) = (version(false), version(true));
    let mut john = cyrus.login(JOHN);
    for command in [
        "CREATE Calendar",
        "SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")",
    ] {
        john.run(command, &[])
            .unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    let started = time::now_ms();
    john.append("Calendar", &Default::default(), &first)
        .unwrap();
    // T: after the first version, before the update (whose events Cyrus stamps later).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before_update = time::format_rfc3339_s(time::now_ms());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    john.append("Calendar", &Default::default(), &second)
        .unwrap();
    john.select("Calendar").unwrap();
    john.run("UID STORE 1 +FLAGS (\\Deleted)", &[]).unwrap();
    john.run("UID EXPUNGE 1", &[]).unwrap();
    john.logout().unwrap();
    lab.wait_until_archived();

    // The freebusy handler parsed both versions in the worker, by digest.
    let cached: Vec<String> = {
        let db = cluster.archive();
        let mut stmt = db
            .prepare("SELECT key FROM records WHERE collection = ?1 ORDER BY key")
            .unwrap();
        stmt.query_map([bonnie_calendar::CACHE], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for message in [&first, &second] {
        assert!(
            cached.contains(&payload::digest(message)),
            "cached: {cached:?}\n{}",
            cluster.log("worker")
        );
    }
    assert!(
        !cluster.log("worker").contains("cannot be read"),
        "{}",
        cluster.log("worker")
    );

    // Weeks 2 to 5 (8 to 29 December), asked by Jane through bonnie-api.
    let range = |as_of: Option<&str>| json!({ "user": JOHN, "start": "2026-12-08T00:00:00Z", "end": "2026-12-30T00:00:00Z", "as_of": as_of });
    let now = api.call(JANE, "freebusy.get", range(None));
    assert_eq!(
        now["busy"],
        json!([
            busy("2026-12-08T09:00:00Z", "2026-12-08T10:00:00Z"),
            // The exception: 14:00 in Berlin.
            busy("2026-12-15T13:00:00Z", "2026-12-15T14:00:00Z"),
            // 22 December is deleted.
            busy("2026-12-29T09:00:00Z", "2026-12-29T10:00:00Z"),
        ])
    );
    assert_eq!(
        (now["user"].as_str(), now["as_of"].is_null()),
        (Some(JOHN), true)
    );
    let then = api.call(JANE, "freebusy.get", range(Some(&before_update)));
    assert_eq!(
        then["busy"],
        json!([
            busy("2026-12-08T09:00:00Z", "2026-12-08T10:00:00Z"),
            busy("2026-12-15T09:00:00Z", "2026-12-15T10:00:00Z"),
            busy("2026-12-22T09:00:00Z", "2026-12-22T10:00:00Z"),
            busy("2026-12-29T09:00:00Z", "2026-12-29T10:00:00Z"),
        ]),
        "as known before the update"
    );
    assert_eq!(then["as_of"], before_update);
    // Before the event existed, John was free.
    let before = time::format_rfc3339_s(started - 1000);
    assert_eq!(
        api.call(JANE, "freebusy.get", range(Some(&before)))["busy"],
        json!([])
    );
    // A range that is not one is refused.
    let backwards = api.call_raw(
        JANE,
        "freebusy.get",
        json!({ "user": JOHN, "start": "2026-12-30T00:00:00Z", "end": "2026-12-08T00:00:00Z" }),
    );
    assert_eq!(backwards.body["error"]["code"], -32602, "{backwards:?}");
    let not_a_date = api.call_raw(
        JANE,
        "freebusy.get",
        json!({ "user": JOHN, "start": "tomorrow", "end": "2026-12-08T00:00:00Z" }),
    );
    assert_eq!(not_a_date.body["error"]["code"], -32602, "{not_a_date:?}");
}
