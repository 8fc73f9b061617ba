//! Syncing the write-ahead log after a commit, outside SQLite's write lock: what makes a log
//! append durable before its jobs are reported DONE.
//!
//! With `synchronous = FULL`, SQLite syncs the WAL inside every commit, holding the write lock
//! of the file: the other worker on the same file waited for each fsync (about 1.6 ms on a
//! loaded machine, against a fraction of a millisecond for the write itself). The writer
//! commits with `synchronous = NORMAL` instead (frames written, not synced; checkpoints still
//! sync the WAL before copying it and the database after) and the storage syncs the WAL file
//! itself once the commit has returned and the lock is free. A sync flushes everything written
//! to the file before it, so the commit, and every unsynced view write committed before it,
//! is on disk when the sync returns, exactly as with FULL. The WAL is not deleted while this
//! storage has the database open (SQLite removes it only with the last connection), and is
//! reused in place after checkpoints, so one open file stands for it throughout.

use std::{fs::File, path::Path};

/// The WAL file of one database, opened to be synced.
pub struct Wal {
    file: File,
    name: std::path::PathBuf,
}

impl Wal {
    /// Opens the WAL of the database at `db`, which must be open in WAL mode (SQLite has
    /// created the file), and syncs its folder once, so that the file's name survives a power
    /// loss as SQLite's own first sync of a new WAL would have made it.
    pub fn open(db: &Path) -> std::io::Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        let name = std::path::PathBuf::from(name);
        let file = File::open(&name)?;
        if let Some(folder) = db.parent().filter(|f| !f.as_os_str().is_empty()) {
            File::open(folder)?.sync_all()?;
        }
        Ok(Self { file, name })
    }

    /// Flushes every commit written to the WAL so far to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// The WAL file's path, for errors.
    pub fn name(&self) -> &Path {
        &self.name
    }
}
