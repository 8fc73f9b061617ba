//! The outcome journal of `jsonl-input`: one JSON line per reported outcome, read back at
//! start to know which lines already finished.

use std::{
    collections::{HashMap, HashSet},
    fs::{File, OpenOptions},
    io::Write,
    path::Path,
    sync::Mutex,
};

use bonnie_plugin_api::prelude::*;
use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    job: String,
    attempt: u32,
    outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notification: Option<String>,
}

/// The open journal.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating) the journal; returns it and the jobs whose last outcome is final.
    pub fn open(path: &Path) -> Result<(Self, HashSet<String>), PluginError> {
        let fail = |what: &str, e: std::io::Error| {
            PluginError::config(format!("cannot {what} the journal {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
        }
        let mut last: HashMap<String, bool> = HashMap::new();
        // A torn last line (a crash mid-write) is cut off: its job simply runs again.
        for line in bonnie_core::jsonl::read_repairing(path).map_err(|e| fail("read", e))? {
            if let Ok(entry) = serde_json::from_str::<Line>(&line) {
                last.insert(entry.job, entry.outcome != "postponed");
            }
        }
        let finished = last
            .into_iter()
            .filter(|(_, done)| *done)
            .map(|(job, _)| job)
            .collect();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| fail("open", e))?;
        Ok((
            Self {
                file: Mutex::new(file),
            },
            finished,
        ))
    }

    /// Appends one outcome.
    pub fn record(&self, job: &str, attempt: u32, outcome: &JobOutcome) -> Result<(), PluginError> {
        let mut line = Line {
            job: job.to_string(),
            attempt,
            outcome: String::new(),
            reason: None,
            commands: Vec::new(),
            notification: None,
        };
        line.outcome = match outcome {
            JobOutcome::Done => "done",
            JobOutcome::Collect {
                commands,
                notification,
            } => {
                line.commands = commands.iter().map(|c| c.to_string()).collect();
                line.notification = Some(notification.to_string());
                "collect"
            }
            JobOutcome::Postpone { reason } => {
                line.reason = Some(reason.to_string());
                "postponed"
            }
            JobOutcome::Rejected { reason } => {
                line.reason = Some(reason.to_string());
                "rejected"
            }
            JobOutcome::Failed { reason } => {
                line.reason = Some(reason.to_string());
                "failed"
            }
            _ => "unknown",
        }
        .to_string();
        let mut text = serde_json::to_string(&line)
            .map_err(|e| PluginError::transient(format!("cannot encode a journal line: {e}")))?;
        text.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(text.as_bytes())
            .map_err(|e| PluginError::transient(format!("cannot write the journal: {e}")))
    }

    /// Flushes the journal to disk.
    pub fn sync(&self) -> Result<(), PluginError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.sync_all()
            .map_err(|e| PluginError::transient(format!("cannot sync the journal: {e}")))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}
