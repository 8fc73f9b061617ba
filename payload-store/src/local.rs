//! The folder of payload files: `<dir>/<first two hex digits>/<digest>.zst`, as
//! [`bonnie_core::payload::write_file`] writes them (files 0600, folders 0750, synced); with
//! a sealer that seals, each file holds its sealed frame instead ([`Sealer::pack`]).

use std::{
    io,
    path::{Path, PathBuf},
};

use bonnie_core::payload;

use crate::{Error, PayloadStore, Sealer, seal};

/// A folder of payload files on this host.
#[derive(Debug, Clone)]
pub struct LocalFolder {
    dir: PathBuf,
    sealer: Sealer,
}

impl LocalFolder {
    /// The payload folder `dir` (created with its first payload), its files plain.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sealer: Sealer::default(),
        }
    }

    /// The folder as a store whose payloads `sealer` seals: new files are sealed, and a plain
    /// file it reads (the collector's hand-over, or one kept before the key was configured)
    /// is sealed in place, replaced whole, before its payload is returned.
    pub fn sealed_by(self, sealer: Sealer) -> Self {
        Self { sealer, ..self }
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

    /// An error of the sealer, naming the folder.
    fn in_folder(&self, e: Error) -> Error {
        e.within(&self.dir.display().to_string())
    }
}

impl PayloadStore for LocalFolder {
    fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = payload::digest(bytes);
        if !self.sealer.seals() {
            return payload::write_file(&self.dir, bytes).map_err(|e| self.failed(&digest, e));
        }
        if payload::file(&self.dir, &digest).exists() {
            return Ok(digest);
        }
        let content = self
            .sealer
            .pack(&digest, bytes)
            .map_err(|e| self.in_folder(e))?;
        payload::write_content(&self.dir, &digest, &content)
            .map_err(|e| self.failed(&digest, e))?;
        Ok(digest)
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        if !payload::is_digest(digest) {
            return Ok(None);
        }
        let content = match std::fs::read(payload::file(&self.dir, digest)) {
            Ok(content) => content,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.failed(digest, e)),
        };
        let bytes = self
            .sealer
            .unpack(digest, &content)
            .map_err(|e| self.in_folder(e))?;
        if self.sealer.seals() && !content.get(8..).is_some_and(seal::is_sealed) {
            let sealed = self
                .sealer
                .pack(digest, &bytes)
                .map_err(|e| self.in_folder(e))?;
            payload::write_content(&self.dir, digest, &sealed).map_err(|e| {
                Error::Unavailable(format!(
                    "cannot seal payload {digest} in {} in place: {e}",
                    self.dir.display()
                ))
            })?;
        }
        Ok(Some(bytes))
    }

    fn location(&self) -> String {
        let sealed = if self.sealer.seals() { ", sealed" } else { "" };
        format!("the folder {}{sealed}", self.dir.display())
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

    #[test]
    fn a_sealing_folder_seals_new_files_and_a_plain_one_in_place_at_its_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
        let key_file = dir.path().join("payload.keys");
        std::fs::write(&key_file, key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let sealer = Sealer::from_file("sqlite-storage", &key_file).unwrap();
        let plain = LocalFolder::new(dir.path().join("payloads"));
        let sealing = plain.clone().sealed_by(sealer);
        let holds_text = |digest: &str| {
            let content = std::fs::read(payload::file(plain.dir(), digest)).unwrap();
            content.windows(9).any(|w| w == b"The body.")
                || content
                    .get(8..)
                    .is_some_and(|frame| !seal::is_sealed(frame))
        };
        let digest = sealing.put(MESSAGE).unwrap();
        assert!(!holds_text(&digest), "a new file is sealed");
        assert_eq!(sealing.get(&digest).unwrap().as_deref(), Some(MESSAGE));
        assert!(matches!(plain.get(&digest), Err(Error::Key(_))));
        // The collector hands a payload over plain: the first read seals its file.
        let handed_over = b"Subject: handed over\r\n\r\nThe body.\r\n";
        let digest = plain.put(handed_over).unwrap();
        assert!(holds_text(&digest));
        assert_eq!(
            sealing.get(&digest).unwrap().as_deref(),
            Some(&handed_over[..])
        );
        assert!(!holds_text(&digest), "sealed in place");
        assert_eq!(
            sealing.get(&digest).unwrap().as_deref(),
            Some(&handed_over[..])
        );
        let file = payload::file(plain.dir(), &digest);
        let mut content = std::fs::read(&file).unwrap();
        *content.last_mut().unwrap() ^= 1;
        std::fs::write(&file, &content).unwrap();
        assert!(matches!(sealing.get(&digest), Err(Error::Damaged(_))));
    }
}
