//! Output plugin `es-output`: every processed notification into the daily index of its own
//! date (`logstash-YYYY.MM.DD`) of an Elasticsearch 7+/8 or OpenSearch server, through
//! `_bulk`, once per job id; refused documents go to the dead-letter store with the reason.

use bonnie_es::Es;
use bonnie_plugin_api::prelude::*;

/// The output.
pub struct EsOutput {
    es: Es,
}

impl EsOutput {
    /// Reads `[plugins.es-output]`; installs the index templates if the server answers (else
    /// before the first write).
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let es = Es::for_plugin(&host, "es-output")?;
        Ok(Self { es })
    }
}

impl Output for EsOutput {
    fn write(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        self.es.write_log(&items)
    }
}

bonnie_plugin_api::export_output! {
    name: "es-output",
    description: "Processed notifications into Elasticsearch or OpenSearch daily indices through the bulk API.",
    new: EsOutput::new,
}
