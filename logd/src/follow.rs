//! Following one log file: every line handed over once, across rotation by rename (the old
//! file, found by its inode under its new name, is read to its end once the writer has
//! moved to the new one), copytruncate (the lines after the last read are taken from the
//! copy, found by the bytes before the offset), and restarts (the position file says which
//! file, how far, and which batch was on its way). Files are looked at every `poll_ms`.

use std::{
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use jiff::Timestamp;
use serde_json::json;
use tracing::{debug, error, info, warn};

use crate::{
    batch::{self, Batch},
    config::LogdConfig,
    handover::{self, Handover},
    position::{FINGERPRINT_BYTES, FileId, Pending, Position, Store},
};

/// One followed file.
pub struct Follower {
    position: Position,
    store: Store,
    /// The file being read: the path's, or a rotated one's to finish.
    file: Option<File>,
    host: String,
    max_line: usize,
    max_lines: usize,
    max_bytes: usize,
    poll: Duration,
    handover: Handover,
    shutdown: Arc<AtomicBool>,
}

/// What a look at the file found.
enum Step {
    /// A batch was handed over, or a rotation taken: look again at once.
    Again,
    /// Nothing new.
    Idle,
    /// Shutting down.
    Stop,
}

impl Follower {
    /// A follower of `path` from where its position file says (the start if none).
    pub fn new(
        path: &Path,
        config: &LogdConfig,
        host: &str,
        handover: Handover,
        shutdown: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let store = Store::open(&config.state_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the state folder {}: {e}",
                config.state_dir.display()
            )
        })?;
        let position = store.load(path)?.unwrap_or_else(|| Position::new(path));
        let mut follower = Self {
            position,
            store,
            file: None,
            host: host.to_string(),
            max_line: config.max_line_bytes,
            max_lines: config.max_batch_lines,
            max_bytes: config.max_batch_bytes,
            poll: Duration::from_millis(config.poll_ms),
            handover,
            shutdown,
        };
        follower.reopen()?;
        Ok(follower)
    }

    /// Follows the file until shutdown.
    pub fn run(mut self) {
        info!(file = %self.position.path.display(), offset = self.position.offset,
            generation = self.position.generation, "Following a log file.");
        while !self.shutdown.load(Ordering::SeqCst) {
            match self.step() {
                Ok(Step::Again) => {}
                Ok(Step::Idle) => std::thread::sleep(self.poll),
                Ok(Step::Stop) => break,
                Err(e) => {
                    error!(file = %self.position.path.display(), error = %e,
                        "Cannot read a followed file; trying again.");
                    self.file = None;
                    std::thread::sleep(self.poll.max(Duration::from_secs(1)));
                    if let Err(e) = self.reopen() {
                        error!(file = %self.position.path.display(), error = %e, "Cannot reopen a followed file.");
                    }
                }
            }
        }
    }

    /// Finds the file the position names: at the path, else a rotated file beside it.
    fn reopen(&mut self) -> anyhow::Result<()> {
        let path = self.position.path.clone();
        let Some(wanted) = self.position.file else {
            if let Ok(file) = File::open(&path) {
                self.position.file = Some(FileId::of(&file.metadata()?));
                self.file = Some(file);
                self.save()?;
            }
            return Ok(());
        };
        if let Ok(file) = File::open(&path)
            && FileId::of(&file.metadata()?) == wanted
        {
            self.file = Some(file);
            return Ok(());
        }
        if let Some((rotated, file)) = siblings(&path).into_iter().find_map(|candidate| {
            let file = File::open(&candidate).ok()?;
            let id = FileId::of(&file.metadata().ok()?);
            (id == wanted).then_some((candidate, file))
        }) {
            info!(file = %path.display(), rotated = %rotated.display(), offset = self.position.offset,
                "The file was rotated while not followed; reading the rest of the old one first.");
            self.file = Some(file);
            return Ok(());
        }
        if File::open(&path).is_ok() {
            warn!(file = %path.display(), offset = self.position.offset,
                "The file read before is gone (rotated and removed while not followed); its unread lines, if any, are lost. Following the new one.");
            self.switch_to_path()?;
        } else {
            self.file = None;
        }
        Ok(())
    }

    /// The path names a new file: read it from its start, as a new generation.
    fn switch_to_path(&mut self) -> anyhow::Result<()> {
        let file = File::open(&self.position.path)?;
        let id = FileId::of(&file.metadata()?);
        self.position.generation += 1;
        self.position.file = Some(id);
        self.position.offset = 0;
        self.position.skipping = false;
        self.position.fingerprint.clear();
        self.position.pending = None;
        self.file = Some(file);
        self.save()?;
        debug!(file = %self.position.path.display(), generation = self.position.generation,
            "Following the file now at the path.");
        Ok(())
    }

    fn save(&self) -> anyhow::Result<()> {
        self.store.save(&self.position).map_err(|e| {
            anyhow::anyhow!(
                "cannot save the position of {}: {e}",
                self.position.path.display()
            )
        })
    }

    fn step(&mut self) -> anyhow::Result<Step> {
        if self.shutdown.load(Ordering::SeqCst) {
            return Ok(Step::Stop);
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let Some(file) = &self.file else {
            return Ok(Step::Idle);
        };
        let current = FileId::of(&file.metadata()?);
        // The path is looked at before the file is read: if the writer has moved to a new
        // file by now, everything it wrote to this one is there to read.
        let at_path = std::fs::metadata(&self.position.path).ok();
        let moved = at_path
            .as_ref()
            .is_some_and(|m| FileId::of(m) != current && m.len() > 0);
        let length = file.metadata()?.len();
        if !self.still_the_same(file, length)? {
            self.truncated()?;
            return Ok(Step::Again);
        }
        let offset = self.position.offset;
        let (end, end_of_file) = match self.position.pending {
            Some(pending) => (pending.end, pending.end_of_file),
            None => {
                let end = length.min(offset + self.max_bytes as u64);
                (end, moved && end == length)
            }
        };
        let mut bytes = vec![0u8; (end.saturating_sub(offset)) as usize];
        file.read_exact_at(&mut bytes, offset)?;
        let cut = batch::cut(
            &bytes,
            self.position.skipping,
            end_of_file,
            self.max_line,
            self.max_lines,
        );
        if cut.consumed == 0 {
            if moved && end == length {
                info!(file = %self.position.path.display(), generation = self.position.generation + 1,
                    "The file was rotated; the old one is read to its end.");
                self.switch_to_path()?;
                return Ok(Step::Again);
            }
            return Ok(Step::Idle);
        }
        let end = offset + cut.consumed as u64;
        if !cut.lines.is_empty() {
            self.position.pending = Some(Pending { end, end_of_file });
            self.save()?;
            let batch = self.batch(cut.lines, end);
            let lines = batch.lines;
            if !handover::hand_until_done(&self.handover, "file", batch, &self.shutdown) {
                return Ok(Step::Stop);
            }
            debug!(file = %self.position.path.display(), lines, offset = end, "Lines handed over.");
        }
        self.position.offset = end;
        self.position.skipping = cut.skipping;
        self.position.pending = None;
        let from = end.saturating_sub(FINGERPRINT_BYTES);
        let mut fingerprint = vec![0u8; (end - from) as usize];
        file.read_exact_at(&mut fingerprint, from)?;
        self.position.set_fingerprint(&fingerprint);
        self.save()?;
        Ok(Step::Again)
    }

    /// True if `file` still holds what was read of it: as long as the offset, with the same
    /// bytes before it.
    fn still_the_same(&self, file: &File, length: u64) -> anyhow::Result<bool> {
        let offset = self.position.offset;
        if length < self.needed() {
            return Ok(false);
        }
        let expected = self.position.fingerprint_bytes();
        if expected.is_empty() {
            return Ok(true);
        }
        let mut found = vec![0u8; expected.len()];
        file.read_exact_at(&mut found, offset - expected.len() as u64)?;
        Ok(found == expected)
    }

    /// How long the file must be: to the end of the batch on its way, else to the offset.
    fn needed(&self) -> u64 {
        self.position
            .pending
            .map_or(self.position.offset, |pending| pending.end)
    }

    /// The file was truncated (copytruncate) or written anew: the lines after the offset
    /// are read from the copy if one is beside it, then the file from its start.
    fn truncated(&mut self) -> anyhow::Result<()> {
        let path = self.position.path.clone();
        let expected = self.position.fingerprint_bytes();
        let offset = self.position.offset;
        let copy = (offset > 0)
            .then(|| newest_copy(&path, offset, self.needed(), &expected, self.position.file))
            .flatten();
        match copy {
            Some((copy_path, file)) => {
                info!(file = %path.display(), copy = %copy_path.display(), offset,
                    "The file was truncated; the rest of its lines are read from its copy.");
                self.position.file = Some(FileId::of(&file.metadata()?));
                self.file = Some(file);
                self.save()
            }
            None => {
                if offset > 0 {
                    warn!(file = %path.display(), offset,
                        "The file was truncated and no copy of it is beside it; lines written after the last read and before the truncation are lost.");
                }
                self.switch_to_path()
            }
        }
    }

    fn batch(&self, lines: batch::Lines, end: u64) -> Batch {
        let position = &self.position;
        let identity = format!(
            "file\n{}\n{}\n{}\n{}\n{}\n{end}",
            self.host,
            position.path.display(),
            position.nonce,
            position.generation,
            position.offset
        );
        let source = json!({
            "kind": "file",
            "path": position.path.display().to_string(),
            "generation": position.generation,
            "start": position.offset,
            "end": end,
        });
        lines.into_batch(&self.host, source, &identity, Timestamp::now())
    }
}

/// The files beside `path` whose names start with its name (`mail.log.1`, `mail.log-2026…`).
fn siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let other = e.file_name();
            let other = other.to_string_lossy();
            other.len() > name.len() && other.starts_with(name.as_ref())
        })
        .map(|e| e.path())
        .collect()
}

/// The newest file beside `path` (not `current`) that is at least `needed` long with
/// `expected` just before `offset`: the copy copytruncate made.
fn newest_copy(
    path: &Path,
    offset: u64,
    needed: u64,
    expected: &[u8],
    current: Option<FileId>,
) -> Option<(PathBuf, File)> {
    siblings(path)
        .into_iter()
        .filter_map(|candidate| {
            let file = File::open(&candidate).ok()?;
            let metadata = file.metadata().ok()?;
            if !metadata.is_file()
                || Some(FileId::of(&metadata)) == current
                || metadata.len() < needed
            {
                return None;
            }
            let mut found = vec![0u8; expected.len()];
            file.read_exact_at(&mut found, offset - expected.len() as u64)
                .ok()?;
            let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            (found == expected).then_some((modified, candidate, file))
        })
        .max_by_key(|(modified, candidate, _)| (*modified, candidate.clone()))
        .map(|(_, candidate, file)| (candidate, file))
}
