//! Handler plugin `messageappend`: MessageAppend and MessageNew events: the appended message and its payload.
//! Not built yet: it loads, so the plugin directory lists it, but refuses to start until the
//! work of issue 4 arrives.

use bonnie_plugin_api::prelude::*;

/// The handler; never constructed yet.
pub struct Messageappend;

impl Messageappend {
    /// Refuses to start, saying why.
    pub fn new(_host: Host) -> Result<Self, PluginError> {
        Err(PluginError::config(
            "the messageappend handler is not built yet (issue 4); disable it with [worker] disabled = [\"messageappend\"]",
        ))
    }
}

impl Handler for Messageappend {
    fn events(&self) -> Vec<String> {
        Vec::new()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        Ok(HandlerOutcome::done(job.notification.as_str()))
    }
}

bonnie_plugin_api::export_handler! {
    name: "messageappend",
    description: "MessageAppend and MessageNew events: the appended message and its payload. (not built yet)",
    new: Messageappend::new,
}
