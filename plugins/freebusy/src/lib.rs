//! Handler plugin `freebusy`: busy periods of each user from calendar objects, now and as
//! known at any past time.
//!
//! For every appended or delivered message (MessageAppend, MessageNew) that is a Kolab event
//! object (`X-Kolab-Type: application/x-vnd.kolab.event`), it reads the calendar part (Kolab v3
//! xCal, or iCalendar) into the events free/busy needs (start, end, time zone, recurrence,
//! exceptions, status, transparency) and keeps them in the storage collection
//! `freebusy-events`, keyed by the SHA-256 of the message, so answering free/busy does not
//! parse again. A calendar object that cannot be read is logged as a warning and kept as
//! unreadable; the notification always goes on unchanged, and the job never fails for a
//! user's bad data.
//!
//! The answer itself is `bonnie_calendar::freebusy(storage, user, start, end, as_of)`: it
//! takes the objects from the facts the `changelog` handler records (`object-facts`), so the
//! changelog must be enabled too. The messages come from the collector (FETCH); the changelog
//! asks for them already, so `[plugins.freebusy] collect = []` works beside it, and the
//! default `collect = ["FETCH"]` asks on its own. A message another handler already moved into
//! the payload store (`payloads`) is read from there.
//!
//! All-day events and floating times are the calendar owner's: at start the handler keeps
//! `default_time_zone` and each user's zone of `time_zones` in the archive (`freebusy-zones`),
//! where the answer, in the worker or in bonnie-api, finds them.

use bonnie_calendar as calendar;
use bonnie_core::{payload, time};
use bonnie_model::{collect, record};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::StorageClient;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The events this handler takes.
const EVENTS: &[&str] = &["MessageAppend", "MessageNew"];

/// `[plugins.freebusy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Collector commands freebusy may ask for: FETCH (the messages of appended objects).
    /// Without it, it reads only what other handlers (the changelog) had collected.
    /// Default: FETCH.
    #[serde(default = "default_collect")]
    collect: Vec<String>,
    /// The time zone (IANA name) of every calendar owner whose own is not known, for all-day
    /// events and floating times. Default: UTC.
    #[serde(default = "default_time_zone")]
    default_time_zone: String,
    /// Users' own time zones (IANA names) by login, where they differ from the default.
    /// Default: none.
    #[serde(default)]
    time_zones: BTreeMap<String, String>,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

fn default_collect() -> Vec<String> {
    vec!["FETCH".to_string()]
}

/// The handler.
pub struct Freebusy {
    host: Host,
    storage: StorageClient,
    settings: Settings,
}

impl Freebusy {
    /// Reads `[plugins.freebusy]` and takes the host's storage.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        if let Some(bad) = settings.collect.iter().find(|c| c.as_str() != "FETCH") {
            return Err(PluginError::config(format!(
                "[plugins.freebusy] collect: {bad:?} is not FETCH"
            )));
        }
        let check = |what: &str, zone: &str| match calendar::iana_name(zone) {
            Some(_) => Ok(()),
            None => Err(PluginError::config(format!(
                "[plugins.freebusy] {what}: {zone:?} is not an IANA time zone"
            ))),
        };
        check("default_time_zone", &settings.default_time_zone)?;
        for (user, zone) in &settings.time_zones {
            check(&format!("time_zones.{user:?}"), zone)?;
        }
        let storage = host.storage()?;
        calendar::set_owner_zone(&storage, None, &settings.default_time_zone)?;
        for (user, zone) in &settings.time_zones {
            calendar::set_owner_zone(&storage, Some(user), zone)?;
        }
        let keep: Vec<&str> = settings.time_zones.keys().map(String::as_str).collect();
        calendar::forget_owner_zones(&storage, &keep)?;
        Ok(Self {
            storage,
            host,
            settings,
        })
    }

    /// Reads the event objects of one normalized message event; true when their messages
    /// must first be collected.
    fn read(&self, record: &record::Object, job: &str) -> Result<bool, PluginError> {
        let uids: Vec<u64> = record
            .get("uids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let headers = record.get("messageHeaders").and_then(Value::as_object);
        let headers_of = |uid: u64| {
            headers
                .and_then(|h| h.get(&uid.to_string()))
                .and_then(Value::as_object)
        };
        let collected = record.contains_key("messageContent") || record.contains_key("payloads");
        if !collected {
            // Headers that came with the notification may already say there is no event.
            let maybe_event = uids.iter().any(|&uid| {
                headers_of(uid).is_none_or(|h| calendar::event_object_uid(h).is_some())
            });
            let may_fetch = self.settings.collect.iter().any(|c| c == "FETCH")
                && record
                    .get("collector_errors")
                    .and_then(|e| e.get("FETCH"))
                    .is_none();
            return Ok(maybe_event && may_fetch && !uids.is_empty());
        }
        let folder = record
            .get("folder")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for uid in uids {
            if headers_of(uid).is_some_and(|h| calendar::event_object_uid(h).is_none()) {
                continue;
            }
            let Some((digest, message)) = self.message(record, uid, job)? else {
                continue;
            };
            match calendar::remember_event_object(
                &self.storage,
                &digest,
                &message,
                headers_of(uid),
            )? {
                calendar::Remembered::NotAnEvent | calendar::Remembered::Known(_) => {}
                calendar::Remembered::Read(object, Ok(events)) => self.host.debug(
                    "Calendar object read.",
                    &[
                        ("job", &job),
                        ("object", &object),
                        ("events", &events.len()),
                    ],
                ),
                calendar::Remembered::Read(object, Err(e)) => self.host.warn(
                    "A calendar object cannot be read; free/busy leaves it out.",
                    &[
                        ("job", &job),
                        ("folder", &folder),
                        ("uid", &uid),
                        ("object", &object),
                        ("error", &e),
                    ],
                ),
            }
        }
        Ok(false)
    }

    /// The digest and bytes of message `uid`: fetched by the collector (in the job, or in the
    /// payload store when large), or left in the payload store by an earlier handler.
    fn message(
        &self,
        record: &record::Object,
        uid: u64,
        job: &str,
    ) -> Result<Option<(String, Vec<u8>)>, PluginError> {
        let key = uid.to_string();
        let content = record
            .get("messageContent")
            .and_then(|c| c.get(&key))
            .filter(|c| c.get("in_store").and_then(Value::as_bool) != Some(true));
        if let Some(content) = content {
            return Ok(match collect::content_bytes(&key, content) {
                Ok(bytes) => Some((payload::digest(&bytes), bytes)),
                Err(e) => {
                    self.host.warn(
                        "A collected message cannot be decoded; free/busy leaves it out.",
                        &[("job", &job), ("uid", &uid), ("error", &e.message)],
                    );
                    None
                }
            });
        }
        let Some(digest) = collect::kept_digest(record, uid) else {
            return Ok(None);
        };
        match self.storage.get_payload(&digest)? {
            Some(bytes) => Ok(Some((digest, bytes))),
            None => {
                self.host.warn(
                    "A message is not in the payload store; free/busy leaves it out.",
                    &[("job", &job), ("uid", &uid), ("digest", &digest)],
                );
                Ok(None)
            }
        }
    }
}

impl Handler for Freebusy {
    fn events(&self) -> Vec<String> {
        EVENTS.iter().map(|e| e.to_string()).collect()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let notification = job.notification.as_str();
        let mut record = match record::from_notification(notification) {
            Ok(record) => record,
            Err(rejected) => return Ok(rejected),
        };
        // On a copy: the notification itself goes on as it came.
        record::normalize(&mut record, job.received_ms().unwrap_or_else(time::now_ms));
        if self.read(&record, job.id.as_str())? {
            Ok(HandlerOutcome::needs_collector(&["FETCH"], notification))
        } else {
            Ok(HandlerOutcome::done(notification))
        }
    }
}

bonnie_plugin_api::export_handler! {
    name: "freebusy",
    description: "Busy periods of each user from calendar objects, now and as known at any past time.",
    new: Freebusy::new,
}

#[cfg(test)]
mod tests {
    use bonnie_mail as mail;
    use bonnie_plugin_api::testing::TestHost;
    use bonnie_sqlite_storage::SqliteStorage;
    use serde_json::json;

    use super::*;

    /// The plugin in the test host of plugin-api, over a real SQLite storage.
    struct Lab {
        _dir: tempfile::TempDir,
        host: TestHost,
        storage: StorageClient,
        handler: Result<Freebusy, PluginError>,
    }

    fn lab(config: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let host = TestHost::new("freebusy")
            .config(serde_json::from_str(config).unwrap())
            .storage(SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap());
        Lab {
            _dir: dir,
            storage: host.storage_client().unwrap(),
            handler: Freebusy::new(host.host()),
            host,
        }
    }

    impl Lab {
        fn handle(&self, notification: &Value) -> HandlerOutcome {
            let job = Job::new("job-1", notification.to_string());
            self.handler.as_ref().unwrap().handle(&job).unwrap()
        }

        /// The warnings logged, as `message {fields}`.
        fn warnings(&self) -> Vec<String> {
            self.host
                .logs_at(LogLevel::Warn)
                .into_iter()
                .map(|l| format!("{} {:?}", l.message, l.fields))
                .collect()
        }
    }

    const XCAL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><components><vevent><properties>\
<uid><text>EV-1</text></uid><dtstart><parameters><tzid><text>/kolab.org/Europe/Berlin</text></tzid></parameters>\
<date-time>2026-12-01T10:00:00</date-time></dtstart><dtend><parameters><tzid><text>/kolab.org/Europe/Berlin</text>\
</tzid></parameters><date-time>2026-12-01T11:00:00</date-time></dtend></properties></vevent></components>\
</vcalendar></icalendar>\r\n";

    fn kolab_message(kind: &str, calendar_part: &[u8]) -> Vec<u8> {
        let mut message = format!(
            "Content-Type: multipart/mixed; boundary=\"=_k\"\r\nX-Kolab-Type: application/x-vnd.kolab.{kind}\r\n\
Subject: EV-1\r\n\r\n--=_k\r\nContent-Type: application/calendar+xml; charset=UTF-8\r\n\r\n"
        )
        .into_bytes();
        message.extend_from_slice(calendar_part);
        message.extend_from_slice(b"\r\n--=_k--\r\n");
        message
    }

    /// A MessageAppend as Cyrus sends it, with what the collector adds when `message` is given.
    fn append(message: Option<&[u8]>) -> Value {
        let mut n = json!({
            "event": "MessageAppend",
            "timestamp": "2026-11-28T09:00:00.000Z",
            "uri": "imap://imap.example.org/user/john.doe/Calendar@example.org;UIDVALIDITY=7/;UID=3",
            "uidset": "3",
            "user": "john.doe@example.org",
        });
        if let Some(message) = message {
            n["messageHeaders"] = json!({ "3": mail::headers(message) });
            n["messageContent"] = json!({ "3": match std::str::from_utf8(message) {
                Ok(text) => json!({ "encoding": "utf-8", "data": text }),
                Err(_) => json!({
                    "encoding": "base64",
                    "data": bonnie_core::b64::encode_base64(message),
                }),
            }});
        }
        n
    }

    #[test]
    fn an_appended_event_object_is_parsed_and_kept_by_digest() {
        let lab = lab("{}");
        let message = kolab_message("event", XCAL.as_bytes());
        let notification = append(Some(&message));
        assert_eq!(
            lab.handle(&notification),
            HandlerOutcome::done(notification.to_string()),
            "the notification goes on unchanged"
        );
        let events = calendar::events_of(&lab.storage, &payload::digest(&message))
            .unwrap()
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].uid.as_deref(), Some("EV-1"));
        assert!(lab.warnings().is_empty(), "{:?}", lab.warnings());
        // Delivered again (a retry): nothing changes.
        assert_eq!(
            lab.handle(&notification),
            HandlerOutcome::done(notification.to_string())
        );
    }

    #[test]
    fn malformed_objects_are_warned_about_and_the_job_goes_on() {
        for (calendar_part, expected) in [
            (
                &b"<icalendar><vcalendar><oops></icalendar>"[..],
                "malformed xCal",
            ),
            (&b"<icalendar>\xff\xfe</icalendar>"[..], "not valid utf-8"),
            (&b"\x00\x01 binary garbage"[..], "not an xCal document"),
        ] {
            let lab = lab("{}");
            let message = kolab_message("event", calendar_part);
            let notification = append(Some(&message));
            assert_eq!(
                lab.handle(&notification),
                HandlerOutcome::done(notification.to_string())
            );
            let warnings = lab.warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("cannot be read"), "{warnings:?}");
            assert!(warnings[0].contains(expected), "{warnings:?}");
            assert!(warnings[0].contains("EV-1"), "{warnings:?}");
            let known = calendar::events_of(&lab.storage, &payload::digest(&message)).unwrap();
            assert!(
                known.as_ref().is_err_and(|e| e.contains(expected)),
                "{known:?}"
            );
        }
    }

    #[test]
    fn messages_are_fetched_unless_collecting_is_off_or_failed() {
        let bare = append(None);
        let lab = lab("{}");
        assert_eq!(
            lab.handle(&bare),
            HandlerOutcome::needs_collector(&["FETCH"], bare.to_string())
        );
        let mut failed = bare.clone();
        failed["collector_errors"] = json!({"FETCH": "messages not found"});
        assert_eq!(
            lab.handle(&failed),
            HandlerOutcome::done(failed.to_string())
        );
        let mut mail = bare.clone();
        mail["messageHeaders"] = json!({"3": {"Subject": "Lunch?"}});
        assert_eq!(
            lab.handle(&mail),
            HandlerOutcome::done(mail.to_string()),
            "headers say it is no event"
        );
        let quiet = self::lab(r#"{"collect": []}"#);
        assert_eq!(quiet.handle(&bare), HandlerOutcome::done(bare.to_string()));
        assert!(self::lab(r#"{"collect": ["HEADER"]}"#).handler.is_err());
        assert!(self::lab(r#"{"fetch": true}"#).handler.is_err());
    }

    #[test]
    fn other_objects_and_mail_are_left_alone() {
        let lab = lab("{}");
        let task = kolab_message("task", XCAL.as_bytes());
        lab.handle(&append(Some(&task)));
        let mail = b"Subject: hello\r\n\r\nNot a calendar.\r\n".to_vec();
        lab.handle(&append(Some(&mail)));
        for message in [task, mail] {
            assert!(!calendar::is_remembered(&lab.storage, &payload::digest(&message)).unwrap());
        }
        assert!(lab.warnings().is_empty());
    }

    #[test]
    fn a_message_already_in_the_payload_store_is_read_from_there() {
        let lab = lab("{}");
        let message = kolab_message("event", XCAL.as_bytes());
        let digest = lab.storage.put_payload(&message).unwrap();
        let mut n = append(None);
        n["payloads"] = json!([{ "uid": 3, "digest": digest, "size": message.len() }]);
        assert_eq!(lab.handle(&n), HandlerOutcome::done(n.to_string()));
        assert!(calendar::events_of(&lab.storage, &digest).unwrap().is_ok());
        let mut big = append(None);
        big["messageContent"] = json!({"3": {"digest": "f".repeat(64), "in_store": true}});
        assert_eq!(lab.handle(&big), HandlerOutcome::done(big.to_string()));
        assert!(
            lab.warnings()[0].contains("not in the payload store"),
            "{:?}",
            lab.warnings()
        );
    }

    #[test]
    fn owners_zones_are_checked_kept_in_the_archive_and_forgotten_when_unconfigured() {
        let zone_of = |lab: &Lab, user: &str| {
            let zone = calendar::owner_zone(&lab.storage, user).unwrap();
            zone.iana_name().unwrap_or_default().to_string()
        };
        let dir = tempfile::tempdir().unwrap();
        let open = |config: Value| {
            let host = TestHost::new("freebusy")
                .config(config)
                .storage(SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap());
            Lab {
                _dir: tempfile::tempdir().unwrap(),
                storage: host.storage_client().unwrap(),
                handler: Freebusy::new(host.host()),
                host,
            }
        };
        let first = open(json!({
            "default_time_zone": "/kolab.org/Europe/Berlin",
            "time_zones": { "jane.doe@example.org": "America/New_York" },
        }));
        assert!(first.handler.is_ok());
        assert_eq!(zone_of(&first, "john.doe@example.org"), "Europe/Berlin");
        assert_eq!(zone_of(&first, "jane.doe@example.org"), "America/New_York");
        // Started again without Jane's zone and the default: both are UTC again.
        let again = open(json!({}));
        assert!(again.handler.is_ok());
        assert_eq!(zone_of(&again, "jane.doe@example.org"), "UTC");
        for bad in [
            json!({ "default_time_zone": "Mars/Olympus" }),
            json!({ "time_zones": { "jane.doe@example.org": "CEST" } }),
        ] {
            let error = open(bad).handler.err().expect("refused");
            assert!(error.message.contains("not an IANA time zone"), "{error:?}");
        }
    }
}
