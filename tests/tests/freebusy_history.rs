//! Free/busy from real Cyrus IMAP 3.6 through the whole chain (exec dealer, broker, worker with
//! the archive handlers, `changelog` and `freebusy`, collector, LDAP): a weekly event in
//! Europe/Berlin, then updated the Kolab way (append the new version, delete and expunge the
//! old) with one instance moved (an exception) and one deleted (an EXDATE). Free/busy is
//! answered by bonnie-api over HTTP, now and as known before the update. And time zones: an
//! all-day event is busy from midnight to midnight in its owner's zone (the configured
//! default, or the user's own), and a past year's event in a zone whose DST rules changed
//! since (US 2007) is placed with that year's rule, from the object's VTIMEZONE.

use bonnie_core::{payload, time};
use bonnie_tests::{kolab, lab::CyrusLab, storages::Storage};
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

/// RFC 5545's example VTIMEZONE (3.6.5): New York's rules before and after the US change of
/// 2007, under a TZID that IANA does not know.
const US_EASTERN: &str = "BEGIN:VTIMEZONE\r\nTZID:US-Eastern\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:19870405T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z\r\n\
TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nDTSTART:19671029T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\r\n\
TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\n\
TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n\
BEGIN:STANDARD\r\nDTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\n\
TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

/// A Kolab event object whose calendar part is iCalendar (`text/calendar`).
fn ical_message(uid: &str, owner: &str, vcalendar_body: &str) -> Vec<u8> {
    format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_k\"\r\nFrom: {owner}\r\nTo: {owner}\r\n\
Date: Sat, 28 Nov 2026 09:00:00 +0000\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\nX-Kolab-Mime-Version: 3.0\r\n\
Subject: {uid}\r\n\r\n--=_k\r\nContent-Type: text/calendar; charset=UTF-8\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bonnie tests//EN\r\n{vcalendar_body}END:VCALENDAR\r\n--=_k--\r\n"
    )
    .into_bytes()
}

/// An all-day event on 24 December 2026, as Roundcube stores it (xCal dates, no zone).
fn christmas_eve(uid: &str, owner: &str) -> Vec<u8> {
    let properties: [(&str, &str); 5] = [
        ("dtstamp", "<date-time>2026-11-28T09:00:00Z</date-time>"),
        ("sequence", "<integer>0</integer>"),
        ("summary", "<text>Heiligabend</text>"),
        ("dtstart", "<date>2026-12-24</date>"),
        ("dtend", "<date>2026-12-25</date>"),
    ];
    kolab::message(
        "event",
        uid,
        owner,
        "Sat, 28 Nov 2026 09:00:00 +0000",
        &kolab::event_xml(uid, &properties),
    )
}

#[test]
fn all_day_events_are_busy_in_their_owners_zone_and_past_years_keep_their_dst_rules() {
    let config = format!(
        "[plugins.freebusy]\ndefault_time_zone = \"Europe/Berlin\"\n\
time_zones = {{ \"{JANE}\" = \"America/New_York\" }}\n"
    );
    let lab = CyrusLab::start_configured(
        Storage::Sqlite,
        &["bonnie-changelog", "bonnie-freebusy"],
        &[JOHN, JANE],
        &config,
    );
    let (cyrus, cluster) = (&lab.cyrus, &lab.cluster);
    let (_api, api) = cluster.start_api(&[]);
    // A meeting on 20 March at 10:00 in New York, every year from 2005 to 2009, written with
    // the VTIMEZONE Outlook-style clients send.
    let yearly = ical_message(
        "A1B2C3D4-0000-4000-8000-000000002007",
        JOHN,
        &format!(
            "{US_EASTERN}BEGIN:VEVENT\r\nUID:A1B2C3D4-0000-4000-8000-000000002007\r\n\
DTSTAMP:20261128T090000Z\r\nDTSTART;TZID=US-Eastern:20050320T100000\r\n\
DTEND;TZID=US-Eastern:20050320T110000\r\nRRULE:FREQ=YEARLY;COUNT=5\r\nSUMMARY:Board\r\nEND:VEVENT\r\n"
        ),
    );
    for (user, messages) in [
        (
            JOHN,
            vec![
                christmas_eve("B0000000-0000-4000-8000-000000000024", JOHN),
                yearly,
            ],
        ),
        (
            JANE,
            vec![christmas_eve("C0000000-0000-4000-8000-000000000024", JANE)],
        ),
    ] {
        let mut session = cyrus.login(user);
        for command in [
            "CREATE Calendar",
            "SETMETADATA Calendar (/private/vendor/kolab/folder-type \"event.default\" /shared/vendor/kolab/folder-type \"event\")",
        ] {
            session
                .run(command, &[])
                .unwrap_or_else(|e| panic!("{command}: {e}"));
        }
        for message in &messages {
            session
                .append("Calendar", &Default::default(), message)
                .unwrap();
        }
        session.logout().unwrap();
    }
    lab.wait_until_archived();
    assert!(
        !cluster.log("worker").contains("cannot be read"),
        "{}",
        cluster.log("worker")
    );
    let ask = |user: &str, start: &str, end: &str| {
        api.call(
            JANE,
            "freebusy.get",
            json!({ "user": user, "start": start, "end": end }),
        )["busy"]
            .clone()
    };
    // Midnight to midnight in Berlin (John, the default) and in New York (Jane's own).
    assert_eq!(
        ask(JOHN, "2026-12-20T00:00:00Z", "2026-12-30T00:00:00Z"),
        json!([busy("2026-12-23T23:00:00Z", "2026-12-24T23:00:00Z")])
    );
    assert_eq!(
        ask(JANE, "2026-12-20T00:00:00Z", "2026-12-30T00:00:00Z"),
        json!([busy("2026-12-24T05:00:00Z", "2026-12-25T05:00:00Z")])
    );
    // Summer time began on 2 April in 2006, on 11 March in 2007 and 9 March in 2008.
    for (year, utc_hour) in [
        ("2005", 15),
        ("2006", 15),
        ("2007", 14),
        ("2008", 14),
        ("2009", 14),
    ] {
        assert_eq!(
            ask(
                JOHN,
                &format!("{year}-03-01T00:00:00Z"),
                &format!("{year}-04-01T00:00:00Z")
            ),
            json!([busy(
                &format!("{year}-03-20T{utc_hour}:00:00Z"),
                &format!("{year}-03-20T{}:00:00Z", utc_hour + 1)
            )]),
            "{year}"
        );
    }
}
