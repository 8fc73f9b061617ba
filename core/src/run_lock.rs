//! One run at a time: an exclusive kernel lock (`flock`) on `<key>.lock` in a state folder,
//! held for as long as the [`RunLock`] lives. A run that is killed releases it with its
//! process; the file names the process that holds it, for the error a second run gets.
//! Back-fill and reconciliation lock their selection, restores the mailbox they write into
//! (the command line's and bonnie-api's alike).

use std::{
    fs::File,
    io::Write as _,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::Path,
};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another run holds it.
    #[error(
        "another {what} is running ({holder}; lock {path}): wait for it to finish, or stop it \
         (it continues where it stopped when run again)"
    )]
    Held {
        what: String,
        holder: String,
        path: String,
    },
    /// The folder or the file could not be made, opened or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Takes the lock `<key>.lock` in `dir` (made 0700 if missing; the file 0600) for one run of
/// `what` (`back-fill or reconciliation of this selection`, `restore into john's mailbox`),
/// or says which process holds it.
pub fn acquire(dir: &Path, key: &str, what: &str) -> Result<RunLock, RunLockError> {
    let path = dir.join(format!("{key}.lock"));
    let io = |source| RunLockError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(RunLockError::Held {
                what: what.to_string(),
                holder: holder.trim().to_string(),
                path: path.display().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    writeln!(file, "process {}", std::process::id()).map_err(io)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second taker, even in the same process, is refused with the holder's process id
    /// while the first holds the lock, and takes it once the first is dropped.
    #[test]
    fn a_lock_is_held_by_one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = acquire(&state, "restore-into-x", "restore into x's mailbox").unwrap();
        let refused = acquire(&state, "restore-into-x", "restore into x's mailbox").unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, RunLockError::Held { .. })
                && message.contains("another restore into x's mailbox is running")
                && message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        acquire(&state, "another-key", "restore").expect("another key is another lock");
        drop(first);
        acquire(&state, "restore-into-x", "restore").expect("free again");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("restore-into-x.lock")), 0o600);
    }
}
