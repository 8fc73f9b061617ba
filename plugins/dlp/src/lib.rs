//! Handler plugin `dlp`: data-loss prevention on the event stream. On every appended,
//! delivered, copied or moved message and every ACL change it evaluates the DLP rules
//! (`[plugins.dlp]`, else the shipped set): the message's subject, bodies, attachments' text
//! and a Kolab object's fields; the folder (its owner, shared or personal, readable by
//! `anyone`); the sender and recipients for the direction. Each rule hit is an incident: in
//! the record (`dlp.incidents`, masked, so it is in the verifiable log) and in
//! `dlp-incidents` (keyed `<job id>/<n>`, see [`incidents`]). Alerts go to the outbox that the
//! plugin's alert sender thread delivers; keywords and quarantine are asked of the collector
//! (`DLPACTION`) once. No action blocks or fails the record.
//!
//! Where a message's text comes from: an appended or delivered message's from the job
//! (`messageContent` the collector fetched, or the payloads an archive handler kept), asked
//! for with FETCH when no handler had it collected; a copied or moved message's from the
//! archive, by its trail (the append that brought it, whose log entry names its payload),
//! else FETCH. Handlers may run in any order: before the archive handlers the job holds the
//! fetched bytes, after them the payload digests.

pub mod actions;

pub use bonnie_dlp_archive::{config, incidents, kept_payloads, read_messages, scan};

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use bonnie_dlp::RuleSet;
use bonnie_dlp_actions::{Outbox, Sender};
use bonnie_model::{folders, record};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};

use crate::{config::PluginConfig, scan::MessageText};

/// The events the handler judges.
const EVENTS: [&str; 7] = [
    "MessageAppend",
    "MessageNew",
    "vnd.cmu.MessageCopy",
    "MessageCopy",
    "vnd.cmu.MessageMove",
    "MessageMove",
    "AclChange",
];

/// The handler.
pub struct Dlp {
    rules: RuleSet,
    collect: Vec<String>,
    storage: StorageClient,
    outbox: Outbox,
    /// Delivers the outbox's alerts until the host stops; joined when the handler is dropped.
    _sender: Sender,
    /// Tells the sender that the host stops; ends when the handler is dropped.
    _watch: StopWatch,
}

/// The thread that sets the sender's stop flag when the host stops; told to end when dropped.
struct StopWatch {
    quit: Arc<AtomicBool>,
}

impl StopWatch {
    /// Sets `stop` once the host stops (or this is dropped).
    fn start(host: Arc<Host>, stop: Arc<AtomicBool>) -> Result<Self, PluginError> {
        let quit = Arc::new(AtomicBool::new(false));
        let quitting = quit.clone();
        std::thread::Builder::new()
            .name("dlp-stopping".to_string())
            .spawn(move || {
                while !host.is_stopping() && !quitting.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                stop.store(true, Ordering::SeqCst);
            })
            .map_err(|e| PluginError::transient(format!("cannot watch the host's stop: {e}")))?;
        Ok(Self { quit })
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
    }
}

/// Where an event's messages stand.
enum Messages {
    /// Read, each with its UID.
    Read(Vec<MessageText>),
    /// Not in the job yet: FETCH them.
    Fetch,
    /// Not to be had (why).
    Missing(String),
}

impl Dlp {
    /// Reads `[plugins.dlp]`, compiles the rules and starts the alert sender.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let table: Value = host.config()?;
        let config = PluginConfig::from_json(&table.to_string())
            .map_err(|e| PluginError::config(e.to_string()))?;
        let rules = config
            .rule_set(&host.path(""))
            .map_err(|e| PluginError::config(e.to_string()))?;
        let mut alerts = config
            .alert_settings()
            .map_err(|e| PluginError::config(e.to_string()))?;
        // Relative to the configuration file's folder, as every path of the configuration.
        if let Some(secret) = &alerts.webhook.secret_file {
            alerts.webhook.secret_file = Some(host.path(&secret.to_string_lossy()));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (storage, outbox) = (host.storage()?, Outbox::new(host.storage()?));
        let sender_storage = host.storage()?;
        let host = Arc::new(host);
        let log_host = host.clone();
        let log: bonnie_dlp_actions::AlertLog =
            Arc::new(move |level, message, fields| log_host.log(level, message, fields));
        let sender = Sender::spawn(sender_storage, alerts, stop.clone(), log)?;
        let watch = StopWatch::start(host, stop)?;
        Ok(Self {
            rules,
            collect: config.collect,
            storage,
            outbox,
            _sender: sender,
            _watch: watch,
        })
    }

    fn may_collect(&self, record: &record::Object, command: &str) -> bool {
        self.collect.iter().any(|c| c == command)
            && record
                .get("collector_errors")
                .and_then(|e| e.get(command))
                .is_none()
    }

    /// The folder's ACL: the record's own, else its current state's.
    fn folder_acl(&self, record: &record::Object) -> Result<Option<record::Object>, PluginError> {
        if let Some(acl) = scan::own_acl(record) {
            return Ok(Some(acl.clone()));
        }
        let Some(uniqueid) = record.get("folder_uniqueid").and_then(Value::as_str) else {
            return Ok(None);
        };
        let current = self
            .storage
            .get(folders::CURRENT, uniqueid)?
            .map(|r| r.json())
            .transpose()?;
        Ok(current.and_then(|c| c.get("acl").and_then(Value::as_object).cloned()))
    }

    /// The messages of a message event.
    fn messages(&self, record: &record::Object) -> Result<Messages, PluginError> {
        if let Some(read) = read_messages(&self.storage, record)? {
            return Ok(Messages::Read(read));
        }
        if self.may_collect(record, "FETCH") {
            return Ok(Messages::Fetch);
        }
        Ok(Messages::Missing(
            match record.get("collector_errors").and_then(|e| e.get("FETCH")) {
                Some(error) => format!("the collector could not fetch the message: {error}"),
                None => "the message's text is neither in the job nor in the archive, and [plugins.dlp] collect has no FETCH".to_string(),
            },
        ))
    }

    /// Evaluates the rules on the record's event: its incidents, or the collector commands
    /// it needs first, or why its message was not scanned.
    fn scan(&self, record: &record::Object) -> Result<Scanned, PluginError> {
        let acl = self.folder_acl(record)?;
        let mut hits = Vec::new();
        if scan::event_kind(record) == Some(bonnie_dlp::EventKind::Acl) {
            let owner_groups = scan::owner_groups(&self.storage, record)?;
            hits.extend(
                scan::evaluate(&self.rules, record, acl.as_ref(), &owner_groups, None)
                    .into_iter()
                    .map(|h| (None, h)),
            );
        } else {
            match self.messages(record)? {
                Messages::Fetch => return Ok(Scanned::Fetch),
                Messages::Missing(reason) => return Ok(Scanned::Unscanned(reason)),
                Messages::Read(messages) => {
                    for message in &messages {
                        hits.extend(
                            scan::evaluate(&self.rules, record, acl.as_ref(), &[], Some(message))
                                .into_iter()
                                .map(|h| (message.uid, h)),
                        );
                    }
                }
            }
        }
        Ok(Scanned::Incidents(
            hits.iter()
                .enumerate()
                .map(|(n, (uid, hit))| incidents::incident(n, *uid, hit))
                .collect(),
        ))
    }
}

/// What a scan gave.
enum Scanned {
    Incidents(Vec<Value>),
    Fetch,
    Unscanned(String),
}

impl Handler for Dlp {
    fn events(&self) -> Vec<String> {
        EVENTS.iter().map(|e| e.to_string()).collect()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let notification = job.notification.as_str();
        let mut record = match record::from_notification(notification) {
            Ok(record) => record,
            Err(rejected) => return Ok(rejected),
        };
        if scan::event_kind(&record).is_none() {
            return Ok(HandlerOutcome::done(notification));
        }
        record::normalize(
            &mut record,
            job.received_ms().unwrap_or_else(bonnie_core::time::now_ms),
        );
        let job_id = job.id.as_str();
        if !job.collected() {
            // Only this handler writes them, and only a collector brings them back: in a
            // notification no collector wrote they are forged (to skip the scan, or to act).
            record.remove(incidents::FIELD);
            record.remove(actions::REQUEST_FIELD);
        }
        if let Some(done) = record.get(incidents::FIELD) {
            // Scanned on an earlier pass: only the collector's answer to the IMAP actions.
            if done.get("imap").and_then(Value::as_str) == Some("requested")
                && actions::answered(&record)
            {
                let mut found = self.found(&record);
                actions::imap_outcomes(&record, &mut found);
                self.record_incidents(&mut record, job_id, found, "answered")?;
            }
            return Ok(HandlerOutcome::done(Value::Object(record).to_string()));
        }
        let mut found = match self.scan(&record)? {
            Scanned::Fetch => {
                return Ok(HandlerOutcome::needs_collector(
                    &["FETCH"],
                    Value::Object(record).to_string(),
                ));
            }
            Scanned::Unscanned(reason) => {
                record.insert(
                    incidents::FIELD.to_string(),
                    json!({ "incidents": [], "unscanned": reason }),
                );
                return Ok(HandlerOutcome::done(Value::Object(record).to_string()));
            }
            Scanned::Incidents(found) => found,
        };
        let derived = |incident: &Value| incidents::derived(&record, job_id, incident);
        actions::queue_alerts(&self.outbox, job_id, &mut found, derived);
        let folder = record.get("folder").and_then(Value::as_str);
        let request = actions::imap_request(&mut found, folder);
        if request.is_empty() {
            self.record_incidents(&mut record, job_id, found, "none")?;
            return Ok(HandlerOutcome::done(Value::Object(record).to_string()));
        }
        record.insert(actions::REQUEST_FIELD.to_string(), Value::Array(request));
        self.record_incidents(&mut record, job_id, found, "requested")?;
        Ok(HandlerOutcome::needs_collector(
            &[actions::DLPACTION],
            Value::Object(record).to_string(),
        ))
    }
}

impl Dlp {
    /// The incidents an earlier pass put in the record.
    fn found(&self, record: &record::Object) -> Vec<Value> {
        record
            .get(incidents::FIELD)
            .and_then(|d| d.get("incidents"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Puts the incidents in the record (`dlp`: `incidents`, `imap`: none, requested or
    /// answered) and in `dlp-incidents`.
    fn record_incidents(
        &self,
        record: &mut record::Object,
        job: &str,
        found: Vec<Value>,
        imap: &str,
    ) -> Result<(), PluginError> {
        record.insert(
            incidents::FIELD.to_string(),
            json!({ "incidents": found, "imap": imap }),
        );
        incidents::store(&self.storage, record, job)?;
        Ok(())
    }
}

bonnie_plugin_api::export_handler! {
    name: "dlp",
    description: "Data-loss prevention: the DLP rules on messages and ACL changes, incidents in the log, alerts and IMAP actions.",
    new: Dlp::new,
}

#[cfg(test)]
mod tests;
