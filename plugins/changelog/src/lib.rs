//! Handler plugin `changelog`: revisions of Kolab groupware objects (events, tasks, notes,
//! contacts, files). For every message event that touches an object (append, copy, move,
//! trash, expunge) it records a fact in the storage (`object-facts`, indexed by
//! `<type>/<uid>`) and which message holds which object (`object-messages`); the changelog
//! is derived from the facts when asked (see `bonnie_model::objects`). For every message, Kolab
//! object or not, it also keeps its audit trail: reads, flags, copies, moves, deletions, by whom
//! (`message-history`, see `bonnie_model::mail_history`). It asks the collector
//! for the payload of appended messages and the headers of copied, moved or trashed messages
//! it does not know yet. The notification goes on unchanged.

use bonnie_model::{mail_history, objects, record};
use bonnie_plugin_api::prelude::*;
use bonnie_plugin_api::storage::StorageClient;
use serde::Deserialize;

/// `[plugins.changelog]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Collector commands the changelog may ask for: FETCH (appended objects) and HEADER
    /// (copied, moved or trashed messages not seen appended). Without them it sees only what
    /// other handlers had collected. Default: both.
    #[serde(default = "default_collect")]
    collect: Vec<String>,
}

fn default_collect() -> Vec<String> {
    vec!["FETCH".to_string(), "HEADER".to_string()]
}

/// The handler.
pub struct Changelog {
    storage: StorageClient,
    settings: Settings,
}

impl Changelog {
    /// Reads `[plugins.changelog]` and takes the host's storage.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        if let Some(bad) = settings
            .collect
            .iter()
            .find(|c| !matches!(c.as_str(), "FETCH" | "HEADER"))
        {
            return Err(PluginError::config(format!(
                "[plugins.changelog] collect: {bad:?} is not FETCH or HEADER"
            )));
        }
        Ok(Self {
            storage: host.storage()?,
            settings,
        })
    }
}

impl Handler for Changelog {
    fn events(&self) -> Vec<String> {
        mail_history::EVENTS.iter().map(|e| e.to_string()).collect()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        let notification = job.notification.as_str();
        let mut record = match record::from_notification(notification) {
            Ok(record) => record,
            Err(rejected) => return Ok(rejected),
        };
        // Normalizing is idempotent: an archive handler earlier in the chain may have done it.
        record::normalize(
            &mut record,
            job.received_ms().unwrap_or_else(bonnie_core::time::now_ms),
        );
        let may_collect = |command: &str| {
            self.settings.collect.iter().any(|c| c == command)
                && record
                    .get("collector_errors")
                    .and_then(|e| e.get(command))
                    .is_none()
        };
        mail_history::record(&self.storage, &record, job.id.as_str())?;
        match objects::record(&self.storage, &record, job.id.as_str(), may_collect)? {
            objects::Recorded::Collect(command) => {
                Ok(HandlerOutcome::needs_collector(&[command], notification))
            }
            objects::Recorded::Facts(_) => Ok(HandlerOutcome::done(notification)),
        }
    }
}

bonnie_plugin_api::export_handler! {
    name: "changelog",
    description: "Revisions of Kolab groupware objects (events, tasks, notes, contacts, files).",
    new: Changelog::new,
}
