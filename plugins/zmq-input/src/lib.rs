//! Input plugin `zmq-input`: Jobs from bonnie-broker over ZeroMQ, with outcomes reported back.
//! Not built yet: it loads, so the plugin directory lists it, but refuses to start until the
//! work of issue 3 arrives.

use bonnie_plugin_api::prelude::*;

/// The input; never constructed yet.
pub struct ZmqInput;

impl ZmqInput {
    /// Refuses to start, saying why.
    pub fn new(_host: Host) -> Result<Self, PluginError> {
        Err(PluginError::config(
            "the zmq-input input is not built yet (issue 3); disable it with [worker] disabled = [\"zmq-input\"]",
        ))
    }
}

impl Input for ZmqInput {
    fn next_job(&self, _wait: std::time::Duration) -> Result<NextJob, PluginError> {
        Ok(NextJob::Finished)
    }

    fn complete(&self, _job_id: &str, _outcome: JobOutcome) -> Result<(), PluginError> {
        Ok(())
    }
}

bonnie_plugin_api::export_input! {
    name: "zmq-input",
    description: "Jobs from bonnie-broker over ZeroMQ, with outcomes reported back. (not built yet)",
    new: ZmqInput::new,
}
