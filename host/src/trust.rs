//! Whether a plugin library may be loaded at all: loading it runs its code as the worker, so
//! the library, the folder it is in and every folder above it must be owned by root or by the
//! user the worker runs as, and writable by nobody else (no group or other write bit; a
//! folder above the plugin folder may be sticky and world-writable, as `/tmp` is, since
//! nobody else can rename what is in it).

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// The sticky bit of a folder's mode: only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// Why the plugin folder `dir` cannot be trusted, if it cannot: the reason names the folder,
/// its owner and mode, and what to change.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let real = real_path(dir)?;
    check_chain(&real)
}

/// Why the plugin library `file` cannot be trusted, if it cannot (followed through symbolic
/// links: the library that would be loaded, and the folders it really is in).
pub fn check_file(file: &Path) -> Result<(), String> {
    // A file that is not there runs no code; the loader reports it as missing.
    if !file.exists() {
        return Ok(());
    }
    let real = real_path(file)?;
    check_one(&real, false)?;
    match real.parent() {
        Some(parent) => check_chain(parent),
        None => Ok(()),
    }
}

fn real_path(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path)
        .map_err(|e| format!("cannot check who may change {}: {e}", path.display()))
}

/// Checks `dir` and every folder above it; folders above `dir` may be sticky.
fn check_chain(dir: &Path) -> Result<(), String> {
    check_one(dir, false)?;
    for ancestor in dir.ancestors().skip(1) {
        check_one(ancestor, true)?;
    }
    Ok(())
}

/// Checks one file or folder: owned by root or the worker's user, writable by nobody else
/// (unless `sticky_ok` and it is a sticky folder).
fn check_one(path: &Path, sticky_ok: bool) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot check who may change {}: {e}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    let owner = meta.uid();
    let mode = meta.mode() & 0o7777;
    let what = if meta.is_dir() { "folder" } else { "file" };
    if owner != 0 && owner != me {
        return Err(format!(
            "not loaded: the {what} {} belongs to uid {owner}, neither root nor the worker's \
             user (uid {me}), who could change the code the worker runs",
            path.display()
        ));
    }
    let writable = mode & 0o022 != 0;
    let sticky_folder = sticky_ok && meta.is_dir() && mode & STICKY != 0;
    if writable && !sticky_folder {
        return Err(format!(
            "not loaded: the {what} {} is writable by {} (mode {mode:04o}), who could change \
             the code the worker runs; chmod go-w it",
            path.display(),
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn files_and_folders_writable_by_others_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        chmod(&plugins, 0o755);
        let library = plugins.join("libx.so");
        std::fs::write(&library, b"").unwrap();
        chmod(&library, 0o644);
        check_dir(&plugins).expect("a private folder");
        check_file(&library).expect("a private file");

        chmod(&library, 0o664);
        let reason = check_file(&library).unwrap_err();
        assert!(
            reason.contains("libx.so") && reason.contains("its group"),
            "{reason}"
        );
        assert!(reason.contains("0664"), "{reason}");
        chmod(&library, 0o644);

        chmod(&plugins, 0o777);
        let reason = check_dir(&plugins).unwrap_err();
        assert!(
            reason.contains("every user") && reason.contains("0777"),
            "{reason}"
        );
        let reason = check_file(&library).unwrap_err();
        assert!(reason.contains("plugins"), "the folder it is in: {reason}");
        // A sticky world-writable folder is trusted above the plugin folder only (as /tmp).
        chmod(&plugins, 0o1777);
        assert!(check_dir(&plugins).is_err());
        chmod(&plugins, 0o755);
        chmod(dir.path(), 0o1777);
        check_dir(&plugins).expect("a sticky folder above");
        chmod(dir.path(), 0o777);
        assert!(
            check_dir(&plugins).is_err(),
            "a world-writable folder above"
        );
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn a_library_linked_from_elsewhere_is_checked_where_it_really_is() {
        let dir = tempfile::tempdir().unwrap();
        let (plugins, elsewhere) = (dir.path().join("plugins"), dir.path().join("open"));
        std::fs::create_dir(&plugins).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        chmod(&elsewhere, 0o777);
        std::fs::write(elsewhere.join("liby.so"), b"").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("liby.so"), plugins.join("liby.so")).unwrap();
        let reason = check_file(&plugins.join("liby.so")).unwrap_err();
        assert!(reason.contains("open"), "{reason}");
    }
}
