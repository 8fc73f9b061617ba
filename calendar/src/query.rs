//! Free/busy of a user from the archive, now or as known at a past time, and the cache of
//! parsed calendar objects the freebusy handler fills.
//!
//! The objects are those the changelog recorded facts for in the user's folders. Each
//! object's state at `as_of` is its last change among the facts up to then: a deletion, or a
//! last place outside the user's folders, leaves it out; otherwise the payload of that change
//! (its message) is read, from the cache when the handler parsed it, else parsed here.
//!
//! All-day events and floating times are placed in the owner's time zone: the user's own as
//! the archive knows it (collection `freebusy-zones`, key `user:<login>`), else the default
//! the freebusy handler was configured with (key `default`), else UTC.

use std::collections::BTreeSet;

use bonnie_core::{imap::uri::Mailbox, time};
use bonnie_model::objects::{self, Op};
use bonnie_plugin_api::{PluginError, Record, RecordQuery, storage::StorageClient};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    busy::{Busy, busy_periods, merge},
    model::Event,
    parse_message, zone,
};

/// The cache: parsed calendar objects by the SHA-256 of their message.
pub const CACHE: &str = "freebusy-events";
/// The Kolab object type of events.
const EVENT_TYPE: &str = "event";
/// Cache records of another version are parsed again (2: VTIMEZONEs keep every rule).
const CACHE_VERSION: u32 = 2;
/// The calendar owners' time zones: `default`, and `user:<login>` for a user's own.
pub const ZONES: &str = "freebusy-zones";
/// The key of the default zone in [`ZONES`].
const DEFAULT_ZONE: &str = "default";
/// The prefix of a user's key in [`ZONES`].
const USER_ZONE: &str = "user:";

/// A cached object: its events, or why it could not be read.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events: Option<Vec<Event>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A free/busy answer: the merged busy periods, and the objects left out because their
/// calendar data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// Merged, sorted, within the asked range.
    pub busy: Vec<Busy>,
    /// Objects that were left out, with why.
    pub skipped: Vec<Skipped>,
}

/// An event object left out of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object's UID.
    pub uid: String,
    /// Why.
    pub reason: String,
}

/// Parses a calendar object's message and keeps its events under `digest` (the SHA-256 of
/// the message). An unreadable object is kept as unreadable with its reason, so it is not
/// parsed again; the inner result says which it was.
pub fn remember(
    storage: &StorageClient,
    digest: &str,
    message: &[u8],
) -> Result<Result<Vec<Event>, crate::CalendarError>, PluginError> {
    let parsed = parse_message(message);
    let cached = match &parsed {
        Ok(events) => Cached {
            version: CACHE_VERSION,
            events: Some(events.clone()),
            error: None,
        },
        Err(e) => Cached {
            version: CACHE_VERSION,
            events: None,
            error: Some(e.to_string()),
        },
    };
    let body = serde_json::to_value(&cached)
        .map_err(|e| PluginError::transient(format!("a parsed object does not serialize: {e}")))?;
    storage.put(Record::new(CACHE, digest, &body).at(time::now_ms()))?;
    Ok(parsed)
}

/// What [`remember_event_object`] did with a message.
#[derive(Debug)]
pub enum Remembered {
    /// The message is no Kolab event object.
    NotAnEvent,
    /// The event object (its UID) was in the cache already.
    Known(String),
    /// The event object (its UID) was read: its events, or why they cannot be had.
    Read(String, Result<Vec<Event>, crate::CalendarError>),
}

/// Keeps the events of a message in the cache when it is a Kolab event object not cached yet:
/// what the freebusy handler does with each appended message, and `bonnie reprocess --handler
/// freebusy` with each archived one. `headers` are the message's, when the caller has them
/// (the collector's HEADER), else read from `message`.
pub fn remember_event_object(
    storage: &StorageClient,
    digest: &str,
    message: &[u8],
    headers: Option<&serde_json::Map<String, Value>>,
) -> Result<Remembered, PluginError> {
    let object = match headers {
        Some(headers) => event_object_uid(headers),
        None => event_object_uid(&bonnie_mail::headers(message)),
    };
    let Some(object) = object else {
        return Ok(Remembered::NotAnEvent);
    };
    if is_remembered(storage, digest)? {
        return Ok(Remembered::Known(object));
    }
    Ok(Remembered::Read(
        object,
        remember(storage, digest, message)?,
    ))
}

/// The UID of the Kolab event object these headers describe.
pub fn event_object_uid(headers: &serde_json::Map<String, Value>) -> Option<String> {
    objects::kolab_object(headers)
        .filter(|(kind, _)| kind == EVENT_TYPE)
        .map(|(_, uid)| uid)
}

/// Whether the object with this digest is in the cache (readable or not) in this version.
pub fn is_remembered(storage: &StorageClient, digest: &str) -> Result<bool, PluginError> {
    Ok(cached(storage, digest)?.is_some())
}

fn cached(storage: &StorageClient, digest: &str) -> Result<Option<Cached>, PluginError> {
    let Some(found) = storage.get(CACHE, digest)? else {
        return Ok(None);
    };
    // A record this version cannot read is as good as none: the payload is parsed again.
    Ok(serde_json::from_str::<Cached>(found.body.as_str())
        .ok()
        .filter(|c| c.version == CACHE_VERSION))
}

/// The events of the object whose message has this digest: from the cache, else parsed from
/// the payload kept in the storage. The inner error says why they cannot be had.
pub fn events_of(
    storage: &StorageClient,
    digest: &str,
) -> Result<Result<Vec<Event>, String>, PluginError> {
    if let Some(cached) = cached(storage, digest)? {
        return Ok(match (cached.events, cached.error) {
            (Some(events), _) => Ok(events),
            (None, error) => Err(error.unwrap_or_else(|| "unreadable".to_string())),
        });
    }
    Ok(match storage.get_payload(digest)? {
        Some(message) => parse_message(&message).map_err(|e| e.to_string()),
        None => Err(format!("the payload {digest} is not kept")),
    })
}

/// Free/busy of `user` (a login, `john.doe@example.org`) in `[start_ms, end_ms)`, as known at
/// `as_of_ms` (none: now). Objects whose calendar data cannot be read are left out.
pub fn freebusy(
    storage: &StorageClient,
    user: &str,
    start_ms: i64,
    end_ms: i64,
    as_of_ms: Option<i64>,
) -> Result<Vec<Busy>, PluginError> {
    Ok(answer(storage, user, start_ms, end_ms, as_of_ms)?.busy)
}

/// [`freebusy`], with the objects that were left out and why.
pub fn answer(
    storage: &StorageClient,
    user: &str,
    start_ms: i64,
    end_ms: i64,
    as_of_ms: Option<i64>,
) -> Result<Answer, PluginError> {
    if end_ms < start_ms {
        return Err(PluginError::rejected(format!(
            "the range ends ({}) before it starts ({})",
            time::format_rfc3339_s(end_ms),
            time::format_rfc3339_s(start_ms)
        )));
    }
    let uids: BTreeSet<String> = objects::facts_of_owner(storage, user)?
        .into_iter()
        .filter(|f| f.object_type == EVENT_TYPE)
        .map(|f| f.object_uid)
        .collect();
    let owner_zone = owner_zone(storage, user)?;
    let mut answer = Answer::default();
    let mut periods = Vec::new();
    for uid in uids {
        let mut facts = objects::facts(storage, EVENT_TYPE, &uid)?;
        // The object last in one of the user's folders, not another's with the same UID.
        let owned = |folder: &str| Mailbox::from_path(folder).owner.as_deref() == Some(user);
        let identity = objects::identity_through(&facts, owned);
        facts.retain(|f| Some(&f.identity) == identity.as_ref());
        if let Some(as_of) = as_of_ms {
            facts.retain(|f| f.time_ms <= as_of);
        }
        let Some(last) = objects::changelog(facts).pop() else {
            continue;
        };
        let owner = Mailbox::from_path(&last.folder).owner;
        if last.op == Op::Delete || owner.as_deref() != Some(user) {
            continue;
        }
        let Some(digest) = last.digest else {
            answer.skipped.push(Skipped {
                uid,
                reason: "its message was not fetched".to_string(),
            });
            continue;
        };
        let events = match events_of(storage, &digest)? {
            Ok(events) => events,
            Err(reason) => {
                answer.skipped.push(Skipped { uid, reason });
                continue;
            }
        };
        match busy_periods(&events, &owner_zone, start_ms, end_ms) {
            Ok(found) => periods.extend(found),
            Err(e) => answer.skipped.push(Skipped {
                uid,
                reason: e.to_string(),
            }),
        }
    }
    answer.busy = merge(periods);
    Ok(answer)
}

/// Keeps the time zone of a calendar owner (`user`, a login) or, without one, the default for
/// every owner whose own is not known: an IANA name (a vendor prefix such as `/kolab.org/` is
/// dropped). Returns the canonical name; an unknown zone is rejected.
pub fn set_owner_zone(
    storage: &StorageClient,
    user: Option<&str>,
    zone: &str,
) -> Result<String, PluginError> {
    let name = zone::iana_name(zone)
        .ok_or_else(|| PluginError::rejected(format!("{zone:?} is not an IANA time zone")))?;
    let key = match user {
        Some(user) => format!("{USER_ZONE}{user}"),
        None => DEFAULT_ZONE.to_string(),
    };
    storage.put(Record::new(ZONES, &key, &json!({ "zone": name })).at(time::now_ms()))?;
    Ok(name)
}

/// Forgets the own time zones of every user but `keep` (logins): they fall back to the default.
pub fn forget_owner_zones(storage: &StorageClient, keep: &[&str]) -> Result<(), PluginError> {
    let query = RecordQuery {
        collection: ZONES.to_string(),
        all: true,
        ..RecordQuery::default()
    };
    for record in storage.query(&query)? {
        if let Some(user) = record.key.as_str().strip_prefix(USER_ZONE)
            && !keep.contains(&user)
        {
            storage.delete(ZONES, record.key.as_str())?;
        }
    }
    Ok(())
}

/// The zone of `user`'s all-day events and floating times: the user's own as the archive
/// knows it, else the default, else UTC.
pub fn owner_zone(storage: &StorageClient, user: &str) -> Result<TimeZone, PluginError> {
    for key in [format!("{USER_ZONE}{user}"), DEFAULT_ZONE.to_string()] {
        let Some(found) = storage.get(ZONES, &key)? else {
            continue;
        };
        let body = found.json()?;
        let name = body.get("zone").and_then(Value::as_str).unwrap_or_default();
        // Names are checked when they are kept; one the database no longer knows is an error
        // of the installation, not a reason to answer in another zone without a word.
        return zone::resolve(name).map_err(|e| PluginError::config(format!("{ZONES} {key}: {e}")));
    }
    Ok(TimeZone::UTC)
}

/// A free/busy answer as the API gives it: `{"user", "start", "end", "as_of", "busy": [{"start",
/// "end", "type": "BUSY" | "BUSY-TENTATIVE"}]}`, times as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn to_json(
    user: &str,
    start_ms: i64,
    end_ms: i64,
    as_of_ms: Option<i64>,
    busy: &[Busy],
) -> Value {
    json!({
        "user": user,
        "start": time::format_rfc3339_s(start_ms),
        "end": time::format_rfc3339_s(end_ms),
        "as_of": as_of_ms.map(time::format_rfc3339_s),
        "busy": busy
            .iter()
            .map(|b| json!({
                "start": time::format_rfc3339_s(b.start_ms),
                "end": time::format_rfc3339_s(b.end_ms),
                "type": b.kind.as_str(),
            }))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::busy::BusyKind;
    use bonnie_plugin_api::plugin::storage_box;
    use bonnie_sqlite_storage::SqliteStorage;

    const JOHN: &str = "john.doe@example.org";
    const JANE: &str = "jane.doe@example.org";
    const JOHNS: &str = "user/john.doe/Calendar@example.org";
    const JANES: &str = "user/jane.doe/Calendar@example.org";

    fn store() -> (tempfile::TempDir, StorageClient) {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap();
        (dir, StorageClient::new(storage_box(storage)))
    }

    fn ms(text: &str) -> i64 {
        time::parse_rfc3339_ms(text).unwrap()
    }

    /// A Kolab event message whose calendar part is this iCalendar VEVENT text.
    fn message(uid: &str, vevents: &str) -> String {
        format!(
            "Content-Type: multipart/mixed; boundary=\"=_k\"\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\n\
Subject: {uid}\r\n\r\n--=_k\r\nContent-Type: text/calendar; charset=UTF-8\r\n\r\n\
BEGIN:VCALENDAR\r\n{vevents}END:VCALENDAR\r\n--=_k--\r\n"
        )
    }

    /// Records what the changelog records for a message event.
    fn happened(
        storage: &StorageClient,
        event: &str,
        at: &str,
        place: (&str, u64),
        object: Option<(&str, &str)>,
        from: Option<(&str, u64)>,
    ) {
        let (folder, uid) = place;
        let mut record = json!({
            "event": event, "@timestamp": at, "user": JOHN, "folder": folder, "uids": [uid],
        });
        if let Some((object_uid, text)) = object {
            record["messageHeaders"] = json!({ uid.to_string(): {
                "X-Kolab-Type": "application/x-vnd.kolab.event", "Subject": object_uid,
            }});
            record["messageContent"] =
                json!({ uid.to_string(): { "encoding": "utf-8", "data": text } });
        }
        if let Some((old_folder, old_uid)) = from {
            record["old_folder"] = json!(old_folder);
            record["old_uids"] = json!([old_uid]);
        }
        let Value::Object(record) = record else {
            unreachable!()
        };
        let job = format!("{event}-{at}-{folder}-{uid}");
        objects::record(storage, &record, &job, |_| false).unwrap();
    }

    fn shown(busy: &[Busy]) -> Vec<String> {
        busy.iter()
            .map(|b| {
                format!(
                    "{} {} {}",
                    time::format_rfc3339_s(b.start_ms),
                    time::format_rfc3339_s(b.end_ms),
                    b.kind.as_str()
                )
            })
            .collect()
    }

    const WEEKLY: &str = "BEGIN:VEVENT\r\nUID:W\r\nDTSTART;TZID=/kolab.org/Europe/Berlin:20261201T100000\r\n\
DTEND;TZID=/kolab.org/Europe/Berlin:20261201T110000\r\nRRULE:FREQ=WEEKLY;COUNT=6;BYDAY=TU\r\nEND:VEVENT\r\n";

    fn updated() -> String {
        format!(
            "{}EXDATE;TZID=Europe/Berlin:20261222T100000\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:W\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20261215T100000\r\nDTSTART;TZID=Europe/Berlin:20261215T140000\r\n\
DTEND;TZID=Europe/Berlin:20261215T150000\r\nEND:VEVENT\r\n",
            WEEKLY.trim_end_matches("END:VEVENT\r\n")
        )
    }

    #[test]
    fn another_users_event_with_the_same_uid_does_not_hide_the_owners() {
        let (_dir, storage) = store();
        let (from, to) = (ms("2026-12-01T00:00:00Z"), ms("2026-12-02T00:00:00Z"));
        let at = |n: u32| format!("2026-11-28T09:0{n}:00.000Z");
        happened(
            &storage,
            "MessageAppend",
            &at(0),
            (JOHNS, 1),
            Some(("W", &message("W", WEEKLY))),
            None,
        );
        let johns = shown(&freebusy(&storage, JOHN, from, to, None).unwrap());
        assert_eq!(johns, ["2026-12-01T09:00:00Z 2026-12-01T10:00:00Z BUSY"]);
        // Jane's own calendar gets an event with John's UID, later: John's stays his.
        let janes = "user/jane.doe/Calendar@example.org";
        let stub = message(
            "W",
            &WEEKLY
                .replace("T100000", "T180000")
                .replace("T110000", "T190000"),
        );
        happened(
            &storage,
            "MessageAppend",
            &at(1),
            (janes, 1),
            Some(("W", &stub)),
            None,
        );
        assert_eq!(
            shown(&freebusy(&storage, JOHN, from, to, None).unwrap()),
            johns
        );
    }

    #[test]
    fn free_busy_follows_updates_and_answers_as_of_a_past_time() {
        let (_dir, storage) = store();
        let v1 = message("W", WEEKLY);
        let v2 = message("W", &updated());
        happened(
            &storage,
            "MessageAppend",
            "2026-11-28T09:00:00.000Z",
            (JOHNS, 1),
            Some(("W", &v1)),
            None,
        );
        // The Kolab way of updating: append the new version, delete the old.
        happened(
            &storage,
            "MessageAppend",
            "2026-11-29T09:00:00.000Z",
            (JOHNS, 2),
            Some(("W", &v2)),
            None,
        );
        happened(
            &storage,
            "MessageTrash",
            "2026-11-29T09:00:00.100Z",
            (JOHNS, 1),
            None,
            None,
        );
        happened(
            &storage,
            "MessageExpunge",
            "2026-11-29T09:00:00.200Z",
            (JOHNS, 1),
            None,
            None,
        );
        let (from, to) = (ms("2026-12-08T00:00:00Z"), ms("2026-12-23T00:00:00Z"));
        assert_eq!(
            shown(&freebusy(&storage, JOHN, from, to, None).unwrap()),
            [
                "2026-12-08T09:00:00Z 2026-12-08T10:00:00Z BUSY",
                "2026-12-15T13:00:00Z 2026-12-15T14:00:00Z BUSY",
            ]
        );
        assert_eq!(
            shown(&freebusy(&storage, JOHN, from, to, Some(ms("2026-11-28T12:00:00Z"))).unwrap()),
            [
                "2026-12-08T09:00:00Z 2026-12-08T10:00:00Z BUSY",
                "2026-12-15T09:00:00Z 2026-12-15T10:00:00Z BUSY",
                "2026-12-22T09:00:00Z 2026-12-22T10:00:00Z BUSY",
            ]
        );
        assert_eq!(
            freebusy(&storage, JOHN, from, to, Some(ms("2026-11-28T08:59:59Z"))).unwrap(),
            [],
            "nothing was known yet"
        );
        assert_eq!(freebusy(&storage, JANE, from, to, None).unwrap(), []);
        assert!(freebusy(&storage, JOHN, to, from, None).is_err());
    }

    #[test]
    fn deleted_moved_and_unreadable_objects() {
        let (_dir, storage) = store();
        let one = |uid: &str, at: &str| {
            message(
                uid,
                &format!(
                    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{at}\r\nDURATION:PT1H\r\nEND:VEVENT\r\n"
                ),
            )
        };
        let (gone, moved, tentative) = (
            one("GONE", "20261201T080000Z"),
            one("MOVED", "20261201T100000Z"),
            one("KEPT", "20261201T120000Z").replace("DURATION", "STATUS:TENTATIVE\r\nDURATION"),
        );
        happened(
            &storage,
            "MessageAppend",
            "2026-11-01T10:00:00.000Z",
            (JOHNS, 1),
            Some(("GONE", &gone)),
            None,
        );
        happened(
            &storage,
            "MessageAppend",
            "2026-11-01T10:00:00.000Z",
            (JOHNS, 2),
            Some(("MOVED", &moved)),
            None,
        );
        happened(
            &storage,
            "MessageAppend",
            "2026-11-01T10:00:00.000Z",
            (JOHNS, 3),
            Some(("KEPT", &tentative)),
            None,
        );
        happened(
            &storage,
            "MessageAppend",
            "2026-11-01T10:00:00.000Z",
            (JOHNS, 4),
            Some(("BAD", "not a calendar")),
            None,
        );
        happened(
            &storage,
            "MessageTrash",
            "2026-11-02T10:00:00.000Z",
            (JOHNS, 1),
            None,
            None,
        );
        happened(
            &storage,
            "MessageMove",
            "2026-11-03T10:00:00.000Z",
            (JANES, 1),
            None,
            Some((JOHNS, 2)),
        );
        let (from, to) = (ms("2026-12-01T00:00:00Z"), ms("2026-12-02T00:00:00Z"));
        let now = answer(&storage, JOHN, from, to, None).unwrap();
        assert_eq!(
            shown(&now.busy),
            ["2026-12-01T12:00:00Z 2026-12-01T13:00:00Z BUSY-TENTATIVE"]
        );
        assert_eq!(now.skipped.len(), 1);
        assert_eq!(now.skipped[0].uid, "BAD");
        assert!(
            now.skipped[0].reason.contains("no calendar part"),
            "{:?}",
            now.skipped
        );
        assert_eq!(
            shown(&freebusy(&storage, JANE, from, to, None).unwrap()),
            ["2026-12-01T10:00:00Z 2026-12-01T11:00:00Z BUSY"],
            "the moved event is Jane's now"
        );
        let before = freebusy(&storage, JOHN, from, to, Some(ms("2026-11-01T12:00:00Z"))).unwrap();
        assert_eq!(
            shown(&before),
            [
                "2026-12-01T08:00:00Z 2026-12-01T09:00:00Z BUSY",
                "2026-12-01T10:00:00Z 2026-12-01T11:00:00Z BUSY",
                "2026-12-01T12:00:00Z 2026-12-01T13:00:00Z BUSY-TENTATIVE",
            ]
        );
        assert_eq!(before[2].kind, BusyKind::Tentative);
    }

    #[test]
    fn the_cache_answers_before_the_payload() {
        let (_dir, storage) = store();
        let text = message("C", WEEKLY);
        // Kept under a digest whose payload the storage does not have: only the cache knows.
        let digest = "0".repeat(64);
        assert!(!is_remembered(&storage, &digest).unwrap());
        assert_eq!(
            events_of(&storage, &digest).unwrap(),
            Err(format!("the payload {digest} is not kept"))
        );
        let events = remember(&storage, &digest, text.as_bytes())
            .unwrap()
            .unwrap();
        assert!(is_remembered(&storage, &digest).unwrap());
        assert_eq!(events_of(&storage, &digest).unwrap(), Ok(events));
        let bad = "1".repeat(64);
        let error = remember(&storage, &bad, b"\xff\xfe garbage")
            .unwrap()
            .unwrap_err();
        assert_eq!(
            events_of(&storage, &bad).unwrap(),
            Err(error.to_string()),
            "unreadable, and known to be"
        );
    }

    #[test]
    fn the_json_answer() {
        let busy = [Busy {
            start_ms: ms("2026-12-01T09:00:00Z"),
            end_ms: ms("2026-12-01T10:00:00Z"),
            kind: BusyKind::Tentative,
        }];
        assert_eq!(
            to_json(
                JOHN,
                ms("2026-12-01T00:00:00Z"),
                ms("2026-12-02T00:00:00Z"),
                None,
                &busy
            ),
            json!({
                "user": JOHN, "start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z",
                "as_of": null,
                "busy": [{"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z", "type": "BUSY-TENTATIVE"}],
            })
        );
        assert_eq!(
            to_json(JOHN, 0, 0, Some(ms("2026-11-28T12:00:00.500Z")), &[])["as_of"],
            "2026-11-28T12:00:00Z"
        );
    }
}
