//! Handler plugin `changelog`: Revisions of Kolab groupware objects (events, tasks, notes, contacts, files).
//! Not built yet: it loads, so the plugin directory lists it, but refuses to start until the
//! work of issue 6 arrives.

use bonnie_plugin_api::prelude::*;

/// The handler; never constructed yet.
pub struct Changelog;

impl Changelog {
    /// Refuses to start, saying why.
    pub fn new(_host: Host) -> Result<Self, PluginError> {
        Err(PluginError::config(
            "the changelog handler is not built yet (issue 6); disable it with [worker] disabled = [\"changelog\"]",
        ))
    }
}

impl Handler for Changelog {
    fn events(&self) -> Vec<String> {
        Vec::new()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        Ok(HandlerOutcome::done(job.notification.as_str()))
    }
}

bonnie_plugin_api::export_handler! {
    name: "changelog",
    description: "Revisions of Kolab groupware objects (events, tasks, notes, contacts, files). (not built yet)",
    new: Changelog::new,
}
