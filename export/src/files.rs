//! The file handling every part of an export shares: files and folders private to bonnie
//! (0600 / 0700), fsync of files and their folders, the digests of what goes by, hex, and a
//! walk of the export's files in a stable order.

use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::ExportError;

/// Mode of every file an export writes: it holds mail.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of every folder.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The size of the chunks natives are read and written in.
pub(crate) const CHUNK: usize = 64 * 1024;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Serde of bytes as one hex string.
pub(crate) mod hex_bytes {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::unhex(&text).ok_or_else(|| D::Error::custom("not hex"))
    }
}

/// Serde of SHA-256 hashes as a list of hex strings.
pub(crate) mod hex_hashes {
    use bonnie_ledger::Hash;
    use serde::{
        Deserialize as _, Deserializer, Serializer, de::Error as _, ser::SerializeSeq as _,
    };

    pub(crate) fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for hash in hashes {
            seq.serialize_element(&super::hex(hash))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                super::unhex(text)
                    .and_then(|bytes| Hash::try_from(bytes).ok())
                    .ok_or_else(|| D::Error::custom("not a hex SHA-256 hash"))
            })
            .collect()
    }
}

/// Makes `dir` and its parents (0700).
pub(crate) fn make_dir(dir: &Path) -> Result<(), ExportError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(ExportError::io(dir))
}

/// Opens `path` for writing from its start (0600), its folder made if missing.
pub(crate) fn create(path: &Path) -> Result<fs::File, ExportError> {
    if let Some(dir) = path.parent() {
        make_dir(dir)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(ExportError::io(path))
}

/// Opens `path` to append, cut back to `length` bytes first (what the state says is complete).
pub(crate) fn append_at(path: &Path, length: u64) -> Result<fs::File, ExportError> {
    if let Some(dir) = path.parent() {
        make_dir(dir)?;
    }
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(ExportError::io(path))?;
    file.set_len(length).map_err(ExportError::io(path))?;
    Ok(file)
}

/// Writes `bytes` as the whole of `path` (a temporary file fsync'd and renamed over it).
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let temporary = path.with_extension("partial");
    let mut file = create(&temporary)?;
    file.write_all(bytes).map_err(ExportError::io(&temporary))?;
    file.sync_all().map_err(ExportError::io(&temporary))?;
    fs::rename(&temporary, path).map_err(ExportError::io(path))?;
    sync_dir(path)
}

/// fsyncs the folder holding `path`, so a new name in it survives a crash.
pub(crate) fn sync_dir(path: &Path) -> Result<(), ExportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ExportError::io(dir))
}

/// The SHA-256, MD5 and length of bytes as they go by.
#[derive(Clone, Default)]
pub(crate) struct Digests {
    sha256: Sha256,
    md5: Md5,
    length: u64,
}

/// What [`Digests`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digested {
    pub(crate) sha256: String,
    pub(crate) md5: String,
    pub(crate) length: u64,
}

impl Digests {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
        self.length += bytes.len() as u64;
    }

    pub(crate) fn finish(self) -> Digested {
        Digested {
            sha256: hex(&self.sha256.finalize()),
            md5: hex(&self.md5.finalize()),
            length: self.length,
        }
    }

    /// The digests of all of `reader`, read in chunks.
    pub(crate) fn of_reader(reader: &mut dyn Read) -> io::Result<Digested> {
        let mut digests = Digests::default();
        let mut chunk = vec![0; CHUNK];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => return Ok(digests.finish()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            digests.update(&chunk[..n]);
        }
    }

    /// The digests of bytes in memory.
    pub(crate) fn of(bytes: &[u8]) -> Digested {
        let mut digests = Digests::default();
        digests.update(bytes);
        digests.finish()
    }
}

/// Every file below `root`, as paths relative to it with `/` separators, sorted; folders
/// named in `skip` (relative to `root`) are left out.
pub(crate) fn walk(root: &Path, skip: &[&str]) -> Result<Vec<String>, ExportError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        for entry in fs::read_dir(&dir).map_err(ExportError::io(&dir))? {
            let entry = entry.map_err(ExportError::io(&dir))?;
            let path = relative.join(entry.file_name());
            let name = path.to_string_lossy().into_owned();
            if skip.contains(&name.as_str()) {
                continue;
            }
            let kind = entry.file_type().map_err(ExportError::io(&entry.path()))?;
            if kind.is_dir() {
                pending.push(path);
            } else {
                found.push(name);
            }
        }
    }
    found.sort();
    Ok(found)
}
