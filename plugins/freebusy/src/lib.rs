//! Handler plugin `freebusy`: Busy periods of each user from calendar objects, now and as known at any past time.
//! Not built yet: it loads, so the plugin directory lists it, but refuses to start until the
//! work of issue 6 arrives.

use bonnie_plugin_api::prelude::*;

/// The handler; never constructed yet.
pub struct Freebusy;

impl Freebusy {
    /// Refuses to start, saying why.
    pub fn new(_host: Host) -> Result<Self, PluginError> {
        Err(PluginError::config(
            "the freebusy handler is not built yet (issue 6); disable it with [worker] disabled = [\"freebusy\"]",
        ))
    }
}

impl Handler for Freebusy {
    fn events(&self) -> Vec<String> {
        Vec::new()
    }

    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError> {
        Ok(HandlerOutcome::done(job.notification.as_str()))
    }
}

bonnie_plugin_api::export_handler! {
    name: "freebusy",
    description: "Busy periods of each user from calendar objects, now and as known at any past time. (not built yet)",
    new: Freebusy::new,
}
