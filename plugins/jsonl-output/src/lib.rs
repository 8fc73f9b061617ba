//! Output plugin `jsonl-output`: appends each processed notification to a JSON-lines file as
//! `{"job_id": ..., "record": {...}}`, exactly once per job id across every worker on the
//! host that writes the same file, synced to disk per batch.
//!
//! The file is its own index of the job ids written. Each batch is appended under an
//! exclusive `flock` of the file, after reading what other writers (other workers, other
//! instances) appended since this one last looked; so a job redelivered to another worker
//! after a kill finds its line and is not written again. The promise holds for writers on one
//! host (flock is not reliable across a network file system) and for as long as the file is
//! not replaced or cut behind their backs.

use std::{
    collections::HashSet,
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
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
    /// The job ids of every line up to `read_to`.
    written: HashSet<String>,
    /// How far this instance has read the file.
    read_to: u64,
}

/// The output.
pub struct JsonlOutput {
    path: PathBuf,
    state: Mutex<State>,
}

/// Holds the file's exclusive lock until dropped.
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(file: &'a File) -> std::io::Result<Self> {
        file.lock()?;
        Ok(Self(file))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl State {
    /// Reads the lines appended since `read_to` (the caller holds the lock). A torn last
    /// line was left by a writer that died mid-append (it held the lock, so none is writing
    /// now) and was never reported stored: it is cut off, so appends start on a line of
    /// their own.
    fn catch_up(&mut self) -> std::io::Result<()> {
        let end = self.file.metadata()?.len();
        if end < self.read_to {
            // Cut shorter by someone else: read it all again.
            self.read_to = 0;
            self.written.clear();
        }
        let mut bytes = vec![0; (end - self.read_to) as usize];
        self.file.read_exact_at(&mut bytes, self.read_to)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            self.file.set_len(self.read_to + complete as u64)?;
        }
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if let Ok(entry) = serde_json::from_slice::<WrittenLine>(line) {
                self.written.insert(entry.job_id);
            }
        }
        self.read_to += complete as u64;
        Ok(())
    }
}

impl JsonlOutput {
    /// Reads `[plugins.jsonl-output]`, opens the file and reads the job ids it already holds.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        let output = Self::open(&host.path(&settings.path))?;
        let written = output.lock_state().written.len();
        host.info(
            "Writing records.",
            &[
                ("path", &output.path.display()),
                ("already_written", &written),
            ],
        );
        Ok(output)
    }

    /// Opens (creating) the file at `path` and reads the job ids it already holds.
    pub fn open(path: &Path) -> Result<Self, PluginError> {
        let fail = |what: &str, e: std::io::Error| {
            PluginError::config(format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| fail("open", e))?;
        let mut state = State {
            file,
            written: HashSet::new(),
            read_to: 0,
        };
        {
            let file = state.file.try_clone().map_err(|e| fail("open", e))?;
            let _locked = Locked::new(&file).map_err(|e| fail("lock", e))?;
            state.catch_up().map_err(|e| fail("read", e))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Output for JsonlOutput {
    fn write(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError> {
        let mut state = self.lock_state();
        let transient = |what: &str, e: std::io::Error| {
            PluginError::transient(format!("cannot {what} {}: {e}", self.path.display()))
        };
        let file = state.file.try_clone().map_err(|e| transient("open", e))?;
        let _locked = Locked::new(&file).map_err(|e| transient("lock", e))?;
        state.catch_up().map_err(|e| transient("read", e))?;
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
            let before = state.read_to;
            let result = state
                .file
                .write_all(text.as_bytes())
                .and_then(|()| state.file.sync_data());
            if let Err(e) = result {
                // Cut a partial write off (no one else appends while the lock is held), so
                // the retry appends whole lines only.
                let _ = state.file.set_len(before);
                return Err(transient("append to", e));
            }
            state.read_to = before + text.len() as u64;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(job: &str) -> OutputItem {
        OutputItem {
            job_id: job.into(),
            record: r#"{"event":"Login"}"#.into(),
            extra: Default::default(),
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn two_writers_of_one_file_write_a_job_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        // Both opened before either wrote, as two workers running side by side.
        let first = JsonlOutput::open(&path).unwrap();
        let second = JsonlOutput::open(&path).unwrap();
        first.write(vec![item("job-1"), item("job-2")]).unwrap();
        let statuses = second.write(vec![item("job-2"), item("job-3")]).unwrap();
        assert!(statuses.iter().all(|s| matches!(s, ItemStatus::Stored)));
        first.write(vec![item("job-3")]).unwrap();
        let written = lines(&path);
        assert_eq!(written.len(), 3, "{written:?}");
        for (line, job) in written.iter().zip(["job-1", "job-2", "job-3"]) {
            assert!(line.contains(job), "{line}");
        }
    }

    #[test]
    fn a_torn_line_of_a_writer_that_died_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let output = JsonlOutput::open(&path).unwrap();
        output.write(vec![item("job-1")]).unwrap();
        // Another writer died halfway through its line.
        let mut other = OpenOptions::new().append(true).open(&path).unwrap();
        other.write_all(br#"{"job_id":"job-2","rec"#).unwrap();
        output.write(vec![item("job-2")]).unwrap();
        let written = lines(&path);
        assert_eq!(written.len(), 2, "{written:?}");
        assert!(written[1].starts_with(r#"{"job_id":"job-2","record""#));
    }
}
