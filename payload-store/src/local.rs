//! The folder of payload files: `<dir>/<first two hex digits>/<digest>.zst`, as
//! [`bonnie_core::payload::write_file`] writes them (files 0600, folders 0750, synced).

use std::{
    io,
    path::{Path, PathBuf},
};

use bonnie_core::payload;

use crate::{Error, PayloadStore};

/// A folder of payload files on this host.
#[derive(Debug, Clone)]
pub struct LocalFolder {
    dir: PathBuf,
}

impl LocalFolder {
    /// The payload folder `dir` (created with its first payload).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the file of `digest`, if there is one.
    fn remove_file(&self, digest: &str) -> Result<(), Error> {
        if !payload::is_digest(digest) {
            return Ok(());
        }
        let file = payload::file(&self.dir, digest);
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Unavailable(format!(
                "cannot remove {}: {e}",
                file.display()
            ))),
        }
    }

    /// A failed read or write of `digest` as an [`Error`]: bytes that are not the payload
    /// are damage, anything else a passing fault of the disk.
    fn failed(&self, digest: &str, e: io::Error) -> Error {
        let dir = self.dir.display();
        if e.kind() == io::ErrorKind::InvalidData {
            Error::Damaged(format!("payload {digest} in {dir} is damaged: {e}"))
        } else {
            Error::Unavailable(format!("payload {digest} in {dir}: {e}"))
        }
    }
}

impl PayloadStore for LocalFolder {
    fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        payload::write_file(&self.dir, bytes).map_err(|e| self.failed(&payload::digest(bytes), e))
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        payload::read_file(&self.dir, digest).map_err(|e| self.failed(digest, e))
    }

    fn location(&self) -> String {
        format!("the folder {}", self.dir.display())
    }

    fn remove(&self, digest: &str) -> Result<(), Error> {
        self.remove_file(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: a@example.org\r\nSubject: kept\r\n\r\nThe body.\r\n";

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for sub in std::fs::read_dir(dir).unwrap() {
            for file in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                found.push(file.unwrap().path());
            }
        }
        found
    }

    #[test]
    fn a_payload_round_trips_once_under_its_digest_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let folder = LocalFolder::new(dir.path().join("payloads"));
        let digest = folder.put(MESSAGE).unwrap();
        assert_eq!(digest, payload::digest(MESSAGE));
        assert_eq!(
            folder.put(MESSAGE).unwrap(),
            digest,
            "the same payload again"
        );
        assert_eq!(folder.get(&digest).unwrap().as_deref(), Some(MESSAGE));
        let files = files_in(folder.dir());
        assert_eq!(files, [payload::file(folder.dir(), &digest)], "one file");
        assert_eq!(folder.get(&payload::digest(b"other")).unwrap(), None);
        assert_eq!(
            folder.get("../../etc/passwd").unwrap(),
            None,
            "not a digest"
        );
    }

    #[test]
    fn a_second_write_of_a_kept_digest_leaves_its_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let folder = LocalFolder::new(dir.path());
        let digest = folder.put(MESSAGE).unwrap();
        let file = payload::file(dir.path(), &digest);
        std::fs::write(&file, b"altered").unwrap();
        assert_eq!(folder.put(MESSAGE).unwrap(), digest);
        assert_eq!(std::fs::read(&file).unwrap(), b"altered", "not rewritten");
    }

    #[test]
    fn an_altered_file_is_refused_as_damaged_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let folder = LocalFolder::new(dir.path());
        let digest = folder.put(MESSAGE).unwrap();
        let file = payload::file(dir.path(), &digest);
        // The same size prefix and a valid frame of other bytes of the same length.
        let mut other = MESSAGE.to_vec();
        other[10] ^= 1;
        std::fs::write(&file, payload::pack(&other).unwrap()).unwrap();
        let error = folder.get(&digest).unwrap_err();
        assert!(matches!(error, Error::Damaged(_)), "{error:?}");
        assert!(error.to_string().contains(&digest), "{error}");
        std::fs::write(&file, [1, 2, 3]).unwrap();
        assert!(matches!(folder.get(&digest), Err(Error::Damaged(_))));
    }

    #[test]
    fn a_store_taking_in_a_hand_over_folder_moves_a_payload_at_its_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFolder::new(dir.path().join("store"));
        let collector = LocalFolder::new(dir.path().join("handed-over"));
        let digest = collector.put(MESSAGE).unwrap();
        let taking_in = crate::HandedOver::new(store.clone(), collector.clone());
        assert_eq!(taking_in.get(&digest).unwrap().as_deref(), Some(MESSAGE));
        assert_eq!(store.get(&digest).unwrap().as_deref(), Some(MESSAGE));
        assert_eq!(collector.get(&digest).unwrap(), None, "its file is removed");
        assert_eq!(taking_in.get(&digest).unwrap().as_deref(), Some(MESSAGE));
        assert_eq!(taking_in.get(&payload::digest(b"none")).unwrap(), None);
    }
}
