//! How far a followed file has been handed over, kept in a file of its own under
//! `[logd] state_dir` and synced at every step: which file is being read (device and
//! inode: after a rotation by rename that is the old file, under its new name), the offset
//! after the last line handed over, the bytes just before it (to tell a file truncated and
//! written again from the one read so far), and the batch being handed over, so that a
//! restart reads exactly that batch again and it keeps its id.

use std::{
    fs::File,
    io::Write,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The identity of a file, whatever its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    /// The device.
    pub device: u64,
    /// The inode.
    pub inode: u64,
}

impl FileId {
    /// The identity of the file with these metadata.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// A batch read and not yet known to be handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Where it ends.
    pub end: u64,
    /// True if it was read as the file's last (a final line without its newline included).
    pub end_of_file: bool,
}

/// A followed file's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The followed path.
    pub path: PathBuf,
    /// Drawn when the path was first followed: batch ids of this state never meet those of
    /// a state made anew.
    pub nonce: String,
    /// One more at each rotation or truncation: batch ids of a new file never meet those of
    /// an earlier one at the same offsets.
    pub generation: u64,
    /// The file being read; `None` until the path exists.
    pub file: Option<FileId>,
    /// Where the next line starts.
    pub offset: u64,
    /// True if the offset is inside an over-long line whose rest is skipped.
    pub skipping: bool,
    /// The up to 64 bytes before the offset, base64.
    pub fingerprint: String,
    /// The batch being handed over.
    pub pending: Option<Pending>,
}

/// How many bytes before the offset the fingerprint holds.
pub const FINGERPRINT_BYTES: u64 = 64;

impl Position {
    /// The state of a path followed for the first time.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            nonce: nonce(path),
            generation: 0,
            file: None,
            offset: 0,
            skipping: false,
            fingerprint: String::new(),
            pending: None,
        }
    }

    /// The fingerprint's bytes.
    pub fn fingerprint_bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.fingerprint)
            .unwrap_or_default()
    }

    /// Sets the fingerprint from its bytes.
    pub fn set_fingerprint(&mut self, bytes: &[u8]) {
        self.fingerprint = base64::engine::general_purpose::STANDARD.encode(bytes);
    }
}

/// Where positions are kept.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (made if missing).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn file(&self, path: &Path) -> PathBuf {
        let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.json"))
    }

    /// The position of `path`, `None` if it was never followed.
    pub fn load(&self, path: &Path) -> anyhow::Result<Option<Position>> {
        let file = self.file(path);
        match std::fs::read(&file) {
            Ok(bytes) => {
                let position: Position = serde_json::from_slice(&bytes).map_err(|e| {
                    anyhow::anyhow!("the position file {} is damaged: {e}", file.display())
                })?;
                Ok(Some(position))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", file.display())),
        }
    }

    /// Writes `position` whole and syncs it (file and folder).
    pub fn save(&self, position: &Position) -> std::io::Result<()> {
        let target = self.file(&position.path);
        let temporary = target.with_extension("json.new");
        let mut file = File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(position).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &target)?;
        File::open(&self.dir)?.sync_all()
    }
}

/// 64 random bits in hex (the path, time and process id if the system gives none).
fn nonce(path: &Path) -> String {
    let mut bytes = [0u8; 8];
    let random =
        File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        let seed = format!(
            "{}\n{}\n{}",
            path.display(),
            bonnie_core::time::now_ms(),
            std::process::id()
        );
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes())[..8]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
