//! The spool folder (`[dealer] spool_dir`) holds one spool per writer, so that no dealer ever
//! waits on another: `daemon/` is the daemon's for as long as it runs, and each exec dealer
//! takes the first `exec-<n>/` whose lock is free, making a new one when all are taken. The
//! daemon and `--flush` forward every spool in the folder; order is kept within each spool.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::spool::{Spool, quarantine_files};

/// The daemon's spool, inside the folder.
pub const DAEMON: &str = "daemon";

/// How many exec spools a dealer tries that it cannot open (not writable, say) before it
/// gives up.
const MAX_FAILED_OPENS: usize = 8;

/// Most exec spools: as many as exec dealers run at once.
const MAX_EXEC_SPOOLS: usize = 4096;

/// Takes the first exec spool of `folder` whose lock is free, without waiting.
pub fn claim_exec(folder: &Path) -> io::Result<Spool> {
    let mut failed = Vec::new();
    for n in 0..MAX_EXEC_SPOOLS {
        match Spool::open_within(&folder.join(format!("exec-{n}")), Some(Duration::ZERO)) {
            Ok(spool) => return Ok(spool),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                failed.push(e);
                if failed.len() >= MAX_FAILED_OPENS {
                    break;
                }
            }
        }
    }
    Err(failed
        .pop()
        .unwrap_or_else(|| io::Error::other("every exec spool is taken")))
}

/// Every spool in `folder`, the daemon's first: its subfolders, and the folder itself if a
/// dealer of an older version spooled there.
pub fn spools(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut legacy = false;
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "queue" || name.starts_with("side-") {
            legacy = true;
        } else if entry.path().join("lock").exists() {
            found.push(entry.path());
        }
    }
    found.sort_by_key(|p| (p.file_name().is_none_or(|n| n != DAEMON), p.clone()));
    if legacy {
        found.push(folder.to_path_buf());
    }
    Ok(found)
}

/// True if the spool in `dir` of `folder` may hold something to forward (cheap: no lock, no
/// reading).
pub fn may_hold_notifications(folder: &Path, dir: &Path) -> bool {
    if std::fs::metadata(dir.join("queue")).is_ok_and(|m| m.len() > 0) {
        return true;
    }
    // Side files: only dealers of an older version wrote them, in the folder itself.
    dir == folder
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("side-"))
        })
}

/// The quarantine files of every spool in `folder`, and their bytes.
pub fn quarantined(folder: &Path) -> io::Result<(usize, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for dir in spools(folder)? {
        for file in quarantine_files(&dir)? {
            files += 1;
            bytes += std::fs::metadata(file)?.len();
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exec_dealer_takes_a_spool_of_its_own_without_waiting() {
        let folder = tempfile::tempdir().unwrap();
        let daemon = Spool::open_within(&folder.path().join(DAEMON), None).unwrap();
        let first = claim_exec(folder.path()).unwrap();
        let second = claim_exec(folder.path()).unwrap();
        assert_eq!(first.dir(), folder.path().join("exec-0"));
        assert_eq!(second.dir(), folder.path().join("exec-1"));
        drop(first);
        assert_eq!(
            claim_exec(folder.path()).unwrap().dir(),
            folder.path().join("exec-0"),
            "the first free one"
        );
        drop(daemon);
        std::fs::write(folder.path().join("queue"), b"").unwrap();
        assert_eq!(
            spools(folder.path()).unwrap(),
            [
                folder.path().join(DAEMON),
                folder.path().join("exec-0"),
                folder.path().join("exec-1"),
                folder.path().to_path_buf()
            ]
        );
    }
}
