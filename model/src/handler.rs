//! The handler every archive plugin runs for its events: normalize the notification, resolve
//! its user and folder, keep sessions, and hand the record on.

use bonnie_core::{notification::KNOWN_EVENTS, time::now_ms};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::StorageClient;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    collect, custodians, folders, message_places, record, restores,
    sessions::{self, Logout},
    users,
};

/// The settings every archive handler reads from its own table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Times a Logout waits (is postponed) for its Login before it is stored on its own; the
    /// first try looks again for the Login for up to 255 ms before it waits. 0: stored at
    /// once, without looking or waiting. Default: 4.
    #[serde(default = "default_logout_waits")]
    pub logout_waits: u32,
    /// Collector commands this handler may ask for (FETCH, HEADER, GETMETADATA, GETACL,
    /// GETUSERDATA); with none, records are stored from the notification alone, without a
    /// collector. Default: none.
    #[serde(default)]
    pub collect: Vec<String>,
}

fn default_logout_waits() -> u32 {
    4
}

/// Which events a handler takes.
#[derive(Debug, Clone, Copy)]
pub enum Events {
    /// These exact names.
    Named(&'static [&'static str]),
    /// Every event bonnie does not know by name (subscribed as `*`).
    Unknown,
}

/// An archive handler.
pub struct ArchiveHandler {
    host: Host,
    storage: StorageClient,
    events: Events,
    settings: Settings,
}

impl ArchiveHandler {
    /// A handler for `events`, with the host's storage.
    pub fn new(host: Host, events: Events) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        for command in &settings.collect {
            if !bonnie_plugin_api::handler::COLLECTOR_COMMANDS.contains(&command.as_str()) {
                return Err(PluginError::config(format!(
                    "[plugins.{}] collect: {command:?} is not a collector command",
                    host.plugin_name()
                )));
            }
        }
        let storage = host.storage()?;
        // A new archive's custodian records are complete from its first event on.
        custodians::begin(&storage)?;
        Ok(Self {
            host,
            storage,
            events,
            settings,
        })
    }
}

impl Handler for ArchiveHandler {
    fn events(&self) -> Vec<String> {
        match self.events {
            Events::Named(names) => names.iter().map(|n| n.to_string()).collect(),
            Events::Unknown => vec!["*".to_string()],
        }
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        // The handler of unknown events passes the known ones on unread: their name is read
        // without parsing the rest. Only from an object (serde reads the name from an array
        // too): an object with a string event parses whole as well, so nothing is passed
        // that the full parse would reject.
        if matches!(self.events, Events::Unknown)
            && job.notification.trim_start().starts_with('{')
            && bonnie_core::notification::event_name(job.notification.as_str())
                .is_ok_and(|event| KNOWN_EVENTS.contains(&event.as_ref()))
        {
            return Ok(HandlerOutcome::done(job.notification.as_str()));
        }
        let mut record = match record::from_notification(job.notification.as_str()) {
            Ok(record) => record,
            Err(rejected) => return Ok(rejected),
        };
        let event = record
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if matches!(self.events, Events::Unknown) && KNOWN_EVENTS.contains(&event.as_str()) {
            return Ok(HandlerOutcome::done(job.notification.as_str()));
        }
        let now = now_ms();
        record::normalize(&mut record, job.received_ms().unwrap_or(now));
        let wanted = collect::wanted(&self.storage, &record, &self.settings.collect)?;
        if !wanted.is_empty() {
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            return Ok(HandlerOutcome::needs_collector(
                &wanted,
                Value::Object(record).to_string(),
            ));
        }
        users::resolve(&self.storage, &mut record, now)?;
        folders::resolve(&self.storage, &mut record, now)?;
        collect::store_payloads(&self.storage, &mut record)?;
        // A restore's own append: marked as the restore's, not the user's.
        restores::mark(&self.storage, &mut record)?;
        // Where the messages are, for back-fill and reconciliation to recognize them.
        message_places::record(&self.storage, &record, job.id.as_str())?;
        // Whose the messages are, for e-discovery's searches of a custodian.
        custodians::record(&self.storage, &record)?;
        // Kept in the user and folder records they went into.
        for key in ["user_data", "metadata", "acl"] {
            record.remove(key);
        }
        match event.as_str() {
            "Login" => sessions::login(&self.storage, &record, job.id.as_str(), now)?,
            "Logout" => {
                let waits = self.settings.logout_waits;
                if sessions::logout(&self.storage, &mut record, job.id.as_str(), waits, now)?
                    == Logout::Wait
                {
                    let session = record
                        .get("session_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    return Ok(HandlerOutcome::postpone(format!(
                        "the Login of session {session} is not stored yet"
                    )));
                }
            }
            _ => {}
        }
        if record.contains_key("unknown_event") {
            self.host.warn(
                "An event bonnie does not know; stored as received.",
                &[("event", &event), ("job", &job.id)],
            );
        }
        Ok(HandlerOutcome::done(Value::Object(record).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::testing::TestHost;

    use super::*;

    #[test]
    fn the_unknown_events_handler_passes_known_events_on_and_rejects_what_is_no_object() {
        let host = TestHost::new("unknown-events");
        let handler = host
            .handler(|host| ArchiveHandler::new(host, Events::Unknown))
            .unwrap();
        let known = r#"{"event":"MessageAppend","timestamp":"2026-12-04T21:00:00.000+01:00"}"#;
        assert_eq!(handler.handle(known).unwrap(), HandlerOutcome::done(known));
        // serde reads an event name from an array too: the full parse's rejection stands.
        for not_an_object in [r#"["MessageAppend"]"#, r#" ["Login", 1]"#] {
            let outcome = handler.handle(not_an_object).unwrap();
            assert!(
                matches!(outcome, HandlerOutcome::Rejected { .. }),
                "{not_an_object}: {outcome:?}"
            );
        }
    }
}
