//! Input plugin `jsonl-input`: one job per line of JSON-lines files of notifications, for
//! tests, replay and backfill. Every outcome is journaled, so a re-run skips the lines that
//! already finished and retries the ones that were postponed. A line that is not UTF-8 is
//! archived as the broker's path archives it (see `bonnie_core::notification::decode`).
//!
//! A job's id and time come from the file's content alone, never from where the file lies or
//! when it is read: the same file replayed from another folder, or a day later, gives the
//! same jobs, which every storage keeps once.

mod journal;

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet, VecDeque},
    fs::File,
    io::{BufRead, BufReader, Seek, SeekFrom},
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use bonnie_core::notification;
use bonnie_plugin_api::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::journal::Journal;

/// `[plugins.jsonl-input]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Files to read, one notification per line, in order. Required.
    files: Vec<String>,
    /// Keep waiting for lines appended to the last file instead of finishing. Default: false.
    #[serde(default)]
    follow: bool,
    /// The outcome journal. Default: `var/jsonl-input/outcomes.jsonl`.
    #[serde(default = "default_journal")]
    journal: String,
    /// Tries of a postponed job before it is recorded as failed. Default: 5.
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    /// Wait before a postponed job runs again, in milliseconds. Default: 1000.
    #[serde(default = "default_retry_delay_ms")]
    retry_delay_ms: u64,
}

fn default_journal() -> String {
    "var/jsonl-input/outcomes.jsonl".to_string()
}

fn default_max_attempts() -> u32 {
    5
}

fn default_retry_delay_ms() -> u64 {
    1000
}

/// A file being read.
struct Cursor {
    /// The file's name, the start of its job ids.
    name: String,
    /// Its path, to look ahead for the first timestamp.
    path: PathBuf,
    reader: BufReader<File>,
    /// The latest notification time read in this file: the received time of a notification
    /// without a timestamp that follows.
    last_time_ms: Option<i64>,
    /// Whether the file was searched ahead for a timestamp already (once at most).
    looked_ahead: bool,
    /// Lines read so far.
    line: u64,
    /// Where the next line starts.
    offset: u64,
}

struct State {
    /// Files not opened yet.
    pending_files: VecDeque<PathBuf>,
    current: Option<Cursor>,
    /// Postponed jobs and when they may run again.
    retries: VecDeque<(Instant, Job)>,
    /// Jobs handed out and not yet completed, with their attempt number.
    in_flight: HashMap<String, (Job, u32)>,
    /// Jobs whose last journaled outcome is final: skipped when their line comes up.
    finished: HashSet<String>,
    stopped: bool,
}

/// The input.
pub struct JsonlInput {
    host: Host,
    settings: Settings,
    state: Mutex<State>,
    journal: Journal,
}

impl JsonlInput {
    /// Reads the settings and the journal of earlier runs.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        if settings.files.is_empty() {
            return Err(PluginError::config(
                "[plugins.jsonl-input] files must name at least one file",
            ));
        }
        if settings.max_attempts == 0 {
            return Err(PluginError::config(
                "[plugins.jsonl-input] max_attempts must be at least 1",
            ));
        }
        let files: Vec<PathBuf> = settings.files.iter().map(|f| host.path(f)).collect();
        for file in &files {
            if !file.is_file() {
                return Err(PluginError::config(format!(
                    "[plugins.jsonl-input] cannot read {}: no such file",
                    file.display()
                )));
            }
        }
        let (journal, finished) = Journal::open(&host.path(&settings.journal))?;
        host.info(
            "Reading notification files.",
            &[
                ("files", &files.len()),
                ("already_finished", &finished.len()),
            ],
        );
        Ok(Self {
            host,
            settings,
            state: Mutex::new(State {
                pending_files: files.into(),
                current: None,
                retries: VecDeque::new(),
                in_flight: HashMap::new(),
                finished,
                stopped: false,
            }),
            journal,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next line not finished in an earlier run, as a job; `None` at the end of the files.
    fn read_line(&self, state: &mut State) -> Result<Option<Job>, PluginError> {
        loop {
            if state.current.is_none() {
                // The file leaves the list only once it is open, so a passing error (too
                // many open files) is retried instead of skipping the file.
                let Some(path) = state.pending_files.front().cloned() else {
                    return Ok(None);
                };
                let file = File::open(&path).map_err(|e| {
                    PluginError::transient(format!("cannot open {}: {e}", path.display()))
                })?;
                state.pending_files.pop_front();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                state.current = Some(Cursor {
                    name,
                    path,
                    reader: BufReader::new(file),
                    last_time_ms: None,
                    looked_ahead: false,
                    line: 0,
                    offset: 0,
                });
            }
            let at_last_file = self.settings.follow && state.pending_files.is_empty();
            let Some(cursor) = state.current.as_mut() else {
                continue;
            };
            let mut bytes = Vec::new();
            let read = match cursor.reader.read_until(b'\n', &mut bytes) {
                Ok(read) => read,
                Err(e) => {
                    // Go back to the start of the line, so a retry reads it whole.
                    let _ = cursor.reader.seek(SeekFrom::Start(cursor.offset));
                    return Err(PluginError::transient(format!(
                        "cannot read {}: {e}",
                        cursor.name
                    )));
                }
            };
            if read == 0 {
                if at_last_file {
                    return Ok(None);
                }
                state.current = None;
                continue;
            }
            if at_last_file && !bytes.ends_with(b"\n") {
                // A line still being written: read it whole next time.
                let _ = cursor.reader.seek(SeekFrom::Start(cursor.offset));
                return Ok(None);
            }
            cursor.offset += read as u64;
            cursor.line += 1;
            // JSON's whitespace is ASCII; the notification is the line without it.
            let raw = bytes.trim_ascii();
            if raw.is_empty() {
                continue;
            }
            let id = job_id(cursor, raw);
            if state.finished.contains(&id) {
                continue;
            }
            let text = notification::decode(raw);
            if matches!(text, Cow::Owned(_)) {
                self.host.warn(
                    "The notification is not valid UTF-8; archived decoded, flagged, with its bytes.",
                    &[("job", &id)],
                );
            }
            let received_ms = match timestamp_ms(&text) {
                Some(ms) => {
                    cursor.last_time_ms = Some(ms);
                    Some(ms)
                }
                None => cursor.last_time_ms.or_else(|| first_time_after(cursor)),
            };
            let mut job = Job::new(id, text.into_owned());
            if let Some(ms) = received_ms {
                job.meta = serde_json::json!({ "received_ms": ms }).to_string().into();
            }
            return Ok(Some(job));
        }
    }
}

/// `<file name>:<line>:<digest>`, the digest of the line's number and bytes: readable, the
/// same wherever the file lies (a copy in another folder replays as the same jobs), and
/// different for a file rewritten in place with other lines. A file renamed gives new ids.
fn job_id(cursor: &Cursor, line: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(cursor.line.to_be_bytes());
    hasher.update(line);
    let digest = hasher.finalize();
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}:{}:{short}", cursor.name, cursor.line)
}

impl Input for JsonlInput {
    fn next_job(&self, wait: Duration) -> Result<NextJob, PluginError> {
        let mut state = self.lock();
        if state.stopped {
            return Ok(NextJob::Finished);
        }
        let now = Instant::now();
        if state.retries.front().is_some_and(|(due, _)| *due <= now)
            && let Some((_, job)) = state.retries.pop_front()
        {
            let attempt = attempt_of(&job) + 1;
            let job = with_attempt(job, attempt);
            state
                .in_flight
                .insert(job.id.to_string(), (job.clone(), attempt));
            return Ok(NextJob::Job(job));
        }
        if let Some(job) = self.read_line(&mut state)? {
            state.in_flight.insert(job.id.to_string(), (job.clone(), 1));
            return Ok(NextJob::Job(job));
        }
        let next_retry = state
            .retries
            .front()
            .map(|(due, _)| due.saturating_duration_since(now));
        let nothing_left =
            !self.settings.follow && next_retry.is_none() && state.in_flight.is_empty();
        drop(state);
        if nothing_left {
            return Ok(NextJob::Finished);
        }
        std::thread::sleep(next_retry.unwrap_or(wait).min(wait));
        Ok(NextJob::Idle)
    }

    fn complete(&self, job_id: &str, outcome: JobOutcome) -> Result<(), PluginError> {
        let mut state = self.lock();
        let Some((job, attempt)) = state.in_flight.remove(job_id) else {
            self.host.warn(
                "Outcome for a job this input did not give; ignored.",
                &[("job", &job_id)],
            );
            return Ok(());
        };
        let outcome = match outcome {
            JobOutcome::Postpone { reason } if attempt >= self.settings.max_attempts => {
                JobOutcome::Failed {
                    reason: format!("gave up after {attempt} attempts: {reason}").into(),
                }
            }
            other => other,
        };
        // Journaled while the state is locked, so a retry's outcome can never be written
        // before the postponement that caused it.
        let journaled = self.journal.record(job_id, attempt, &outcome);
        if let JobOutcome::Postpone { .. } = outcome {
            let due = Instant::now() + Duration::from_millis(self.settings.retry_delay_ms);
            state.retries.push_back((due, job));
        } else {
            state.finished.insert(job_id.to_string());
        }
        journaled
    }

    fn stop(&self) -> Result<(), PluginError> {
        self.lock().stopped = true;
        self.journal.sync()
    }
}

fn attempt_of(job: &Job) -> u32 {
    serde_json::from_str::<serde_json::Value>(job.meta.as_str())
        .ok()
        .and_then(|m| m.get("attempt").and_then(serde_json::Value::as_u64))
        .map_or(1, |a| a as u32)
}

fn with_attempt(mut job: Job, attempt: u32) -> Job {
    let mut meta = serde_json::json!({ "attempt": attempt });
    if let Some(ms) = job.received_ms() {
        meta["received_ms"] = ms.into();
    }
    job.meta = meta.to_string().into();
    job
}

/// The notification's own time (`timestamp`, RFC 3339), if it has a readable one.
fn timestamp_ms(notification: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Stamp<'a> {
        #[serde(borrow)]
        timestamp: Option<Cow<'a, str>>,
    }
    let stamp: Stamp<'_> = serde_json::from_str(notification).ok()?;
    bonnie_core::time::parse_rfc3339_ms(&stamp.timestamp?)
}

/// The time of the first notification with a timestamp after the cursor, for notifications
/// without one at the head of a file; remembered as the file's time so far. None when no
/// later line has one either: such a notification takes the time it is processed. The file is
/// searched once.
fn first_time_after(cursor: &mut Cursor) -> Option<i64> {
    if std::mem::replace(&mut cursor.looked_ahead, true) {
        return None;
    }
    let mut file = File::open(&cursor.path).ok()?;
    file.seek(SeekFrom::Start(cursor.offset)).ok()?;
    let found = BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .find_map(|line| timestamp_ms(&notification::decode(line.trim_ascii())))?;
    cursor.last_time_ms = Some(found);
    Some(found)
}

bonnie_plugin_api::export_input! {
    name: "jsonl-input",
    description: "Notifications from JSON-lines files, one job per line, for tests, replay and backfill.",
    new: JsonlInput::new,
}
