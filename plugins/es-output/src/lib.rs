//! Output plugin `es-output`: Processed notifications into Elasticsearch or OpenSearch daily indices through the bulk API.
//! Not built yet: it loads, so the plugin directory lists it, but refuses to start until the
//! work of issue 4 arrives.

use bonnie_plugin_api::prelude::*;

/// The output; never constructed yet.
pub struct EsOutput;

impl EsOutput {
    /// Refuses to start, saying why.
    pub fn new(_host: Host) -> Result<Self, PluginError> {
        Err(PluginError::config(
            "the es-output output is not built yet (issue 4); disable it with [worker] disabled = [\"es-output\"]",
        ))
    }
}

impl Output for EsOutput {
    fn write(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        Err(PluginError::config(format!(
            "not built yet; {} items not written",
            items.len()
        )))
    }
}

bonnie_plugin_api::export_output! {
    name: "es-output",
    description: "Processed notifications into Elasticsearch or OpenSearch daily indices through the bulk API. (not built yet)",
    new: EsOutput::new,
}
