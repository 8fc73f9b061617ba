//! Output plugin `jsonl-output`: appends each processed notification to a JSON-lines file as
//! `{"job_id": ..., "record": {...}}`, exactly once per job id, synced to disk per batch.

use std::{
    collections::HashSet,
    fs::{File, OpenOptions},
    io::Write,
    sync::Mutex,
};

use bonnie_plugin_api::prelude::*;
use serde::Deserialize;

/// `[plugins.jsonl-output]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The file to append to. Default: `var/output.jsonl`.
    #[serde(default = "default_path")]
    path: String,
}

fn default_path() -> String {
    "var/output.jsonl".to_string()
}

#[derive(Deserialize)]
struct WrittenLine {
    job_id: String,
}

struct State {
    file: File,
    written: HashSet<String>,
}

/// The output.
pub struct JsonlOutput {
    state: Mutex<State>,
}

impl JsonlOutput {
    /// Opens the file and reads the job ids it already holds.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        let path = host.path(&settings.path);
        let fail = |what: &str, e: std::io::Error| {
            PluginError::config(format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
        }
        let mut written = HashSet::new();
        let lines = bonnie_core::jsonl::read_repairing(&path).map_err(|e| fail("read", e))?;
        for line in lines {
            if let Ok(entry) = serde_json::from_str::<WrittenLine>(&line) {
                written.insert(entry.job_id);
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| fail("open", e))?;
        host.info(
            "Writing records.",
            &[
                ("path", &path.display()),
                ("already_written", &written.len()),
            ],
        );
        Ok(Self {
            state: Mutex::new(State { file, written }),
        })
    }
}

impl Output for JsonlOutput {
    fn write(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = String::new();
        let mut statuses = Vec::with_capacity(items.len());
        let mut new_ids = Vec::new();
        for item in &items {
            if state.written.contains(item.job_id.as_str())
                || new_ids.contains(&item.job_id.as_str())
            {
                statuses.push(ItemStatus::Stored);
                continue;
            }
            let record: serde_json::Value = match serde_json::from_str(item.record.as_str()) {
                Ok(record) => record,
                Err(e) => {
                    statuses.push(ItemStatus::Rejected {
                        reason: format!("the record is not JSON: {e}").into(),
                    });
                    continue;
                }
            };
            let line = serde_json::json!({ "job_id": item.job_id.as_str(), "record": record });
            text.push_str(&line.to_string());
            text.push('\n');
            new_ids.push(item.job_id.as_str());
            statuses.push(ItemStatus::Stored);
        }
        if !text.is_empty() {
            let before = state
                .file
                .metadata()
                .map_err(|e| PluginError::transient(format!("cannot read the output file: {e}")))?
                .len();
            let result = state
                .file
                .write_all(text.as_bytes())
                .and_then(|()| state.file.sync_data());
            if let Err(e) = result {
                // Cut a partial write off, so the retry appends whole lines only.
                let _ = state.file.set_len(before);
                return Err(PluginError::transient(format!(
                    "cannot append to the output file: {e}"
                )));
            }
        }
        let new_ids: Vec<String> = new_ids.into_iter().map(str::to_string).collect();
        state.written.extend(new_ids);
        Ok(statuses)
    }
}

bonnie_plugin_api::export_output! {
    name: "jsonl-output",
    description: "Processed notifications appended to a JSON-lines file, once per job id.",
    new: JsonlOutput::new,
}
