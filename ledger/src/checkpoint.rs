//! Checkpoints (signed tree heads) in the C2SP signed-note "checkpoint" format, signed with the
//! archive's Ed25519 key; the key file (owner-only) and the public key's text form; publishing
//! one file per checkpoint.
//!
//! A checkpoint's note is its origin (the key's name), the tree size, the root in base64, then
//! extension lines `time <RFC 3339>`, `previous <size>` and one `consistency <base64 hash>` line
//! per hash of the proof from the previous checkpoint; a blank line; then the signature line
//! `— <key name> <base64(key id || Ed25519 signature of the lines above the blank one)>`.

use std::{
    fs,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::{
    Hash, LedgerError,
    merkle::{NodeReader, consistency_proof, root, verify_consistency},
};

/// The signed-note signature type of Ed25519.
const ED25519_TYPE: u8 = 0x01;

/// The em dash that opens a signed note's signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A tree head: what a checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Who keeps the log: the signing key's name.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The tree's root at that size.
    pub root: Hash,
    /// When it was made (whole seconds).
    pub time: jiff::Timestamp,
    /// The previous checkpoint's size, if there was one.
    pub previous: Option<u64>,
    /// The consistency proof from the previous checkpoint's tree to this one.
    pub consistency: Vec<Hash>,
}

impl Checkpoint {
    /// The checkpoint of the stored tree at its current size, with the consistency proof from
    /// the previous checkpoint's size.
    pub fn of_tree(
        nodes: &impl NodeReader,
        origin: &str,
        previous: Option<u64>,
        time: jiff::Timestamp,
    ) -> Result<Checkpoint, LedgerError> {
        let size = nodes.size()?;
        let consistency = match previous {
            Some(old) => consistency_proof(nodes, old, size)?,
            None => Vec::new(),
        };
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root: root(nodes, size)?,
            time: jiff::Timestamp::from_second(time.as_second())
                .map_err(|e| LedgerError::BadCheckpoint(format!("time {time}: {e}")))?,
            previous,
            consistency,
        })
    }

    /// The note's body: the lines the signature covers.
    fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root),
            self.time
        );
        if let Some(previous) = self.previous {
            body.push_str(&format!("previous {previous}\n"));
        }
        for hash in &self.consistency {
            body.push_str(&format!("consistency {}\n", BASE64.encode(hash)));
        }
        body
    }

    /// Reads a note's body without checking its signature (to name a checkpoint whose
    /// signature fails); `open` is the checked way.
    pub fn parse(note: &str) -> Result<Checkpoint, LedgerError> {
        let (body, _) = split_note(note)?;
        let bad = |what: &str| LedgerError::BadCheckpoint(what.to_string());
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| bad("no tree size on the second line"))?;
        let root = lines
            .next()
            .and_then(decode_hash)
            .ok_or_else(|| bad("no base64 root hash on the third line"))?;
        let time = lines
            .next()
            .and_then(|l| l.strip_prefix("time "))
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| bad("no `time` line"))?;
        let mut previous = None;
        let mut consistency = Vec::new();
        for line in lines {
            if let Some(size) = line.strip_prefix("previous ") {
                previous = Some(size.parse().map_err(|_| bad("a bad `previous` line"))?);
            } else if let Some(hash) = line.strip_prefix("consistency ") {
                consistency.push(decode_hash(hash).ok_or_else(|| bad("a bad `consistency` line"))?);
            } else {
                return Err(bad(&format!("an unknown line {line:?}")));
            }
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            time,
            previous,
            consistency,
        })
    }

    /// Reads a note and checks that `key` signed it.
    pub fn open(note: &str, key: &PublicKey) -> Result<Checkpoint, LedgerError> {
        let checkpoint = Checkpoint::parse(note)?;
        let (body, signatures) = split_note(note)?;
        let signed = signatures.lines().any(|line| key.verifies(body, line));
        if !signed {
            return Err(LedgerError::BadCheckpoint(format!(
                "no valid signature by {} ({})",
                key.name, key
            )));
        }
        if checkpoint.origin != key.name {
            return Err(LedgerError::BadCheckpoint(format!(
                "origin {:?} is not the key's name {:?}",
                checkpoint.origin, key.name
            )));
        }
        Ok(checkpoint)
    }

    /// Whether this checkpoint's consistency proof shows `previous` (the checkpoint it names)
    /// to be a prefix of it.
    pub fn extends(&self, previous: &Checkpoint) -> bool {
        self.previous == Some(previous.size)
            && verify_consistency(
                previous.size,
                self.size,
                &previous.root,
                &self.root,
                &self.consistency,
            )
    }
}

/// Splits a note at its blank line into the signed body (with its final newline) and the
/// signature lines.
fn split_note(note: &str) -> Result<(&str, &str), LedgerError> {
    let at = note
        .find("\n\n")
        .ok_or_else(|| LedgerError::BadCheckpoint("no blank line before the signature".into()))?;
    Ok((&note[..at + 1], &note[at + 2..]))
}

fn decode_hash(text: &str) -> Option<Hash> {
    BASE64.decode(text).ok()?.try_into().ok()
}

/// The signed-note key id: the first four bytes of SHA-256(name || "\n" || type || key).
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519_TYPE]);
    hasher.update(key.as_bytes());
    let hash = hasher.finalize();
    [hash[0], hash[1], hash[2], hash[3]]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key name as signed notes allow: no spaces, no plus signs, not empty.
fn check_key_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        Err(format!(
            "{name:?} is not a key name: non-empty, no spaces, no '+'"
        ))
    } else {
        Ok(())
    }
}

/// The archive's signing key, read from its owner-only file.
pub struct ArchiveKey {
    name: String,
    key: SigningKey,
}

impl ArchiveKey {
    /// Makes a new key named `name` (the checkpoints' origin, e.g. `archive.example.org/bonnie`)
    /// and writes it to `path` (mode 0600, never over an existing file).
    pub fn generate(path: &Path, name: &str) -> Result<ArchiveKey, LedgerError> {
        check_key_name(name).map_err(|message| bad_key(path, message))?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| bad_key(path, format!("no randomness for a new key: {e}")))?;
        let key = ArchiveKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        };
        let mut encoded = vec![ED25519_TYPE];
        encoded.extend_from_slice(&seed);
        let text = format!(
            "PRIVATE+KEY+{}+{}+{}\n",
            name,
            hex(&key_id(name, &key.key.verifying_key())),
            BASE64.encode(&encoded)
        );
        let io = |source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }

    /// Reads the key file; refused when its group or others may read or write it.
    pub fn read(path: &Path) -> Result<ArchiveKey, LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(bad_key(
                path,
                format!(
                    "the archive's signing key is open to others (mode {:o}): chmod 600",
                    mode & 0o777
                ),
            ));
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let fields: Vec<&str> = text.trim_end().splitn(5, '+').collect();
        let [private, key_word, name, id, encoded] = fields[..] else {
            return Err(bad_key(path, "not PRIVATE+KEY+<name>+<id>+<key>".into()));
        };
        if private != "PRIVATE" || key_word != "KEY" {
            return Err(bad_key(path, "not PRIVATE+KEY+<name>+<id>+<key>".into()));
        }
        check_key_name(name).map_err(|message| bad_key(path, message))?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|e| bad_key(path, format!("the key is not base64: {e}")))?;
        let Some((&ED25519_TYPE, seed)) = bytes.split_first() else {
            return Err(bad_key(path, "not an Ed25519 key".into()));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad_key(path, "an Ed25519 seed is 32 bytes".into()))?;
        let key = ArchiveKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        };
        if hex(&key_id(name, &key.key.verifying_key())) != id {
            return Err(bad_key(path, "the key id does not match the key".into()));
        }
        Ok(key)
    }

    /// The key's name: the origin of its checkpoints.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, to publish beside the checkpoints.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signed note of `checkpoint`, whose origin must be this key's name.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, LedgerError> {
        if checkpoint.origin != self.name {
            return Err(LedgerError::BadCheckpoint(format!(
                "origin {:?} is not the key's name {:?}",
                checkpoint.origin, self.name
            )));
        }
        let body = checkpoint.body();
        let mut signature = key_id(&self.name, &self.key.verifying_key()).to_vec();
        signature.extend_from_slice(&self.key.sign(body.as_bytes()).to_bytes());
        Ok(format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(&signature)
        ))
    }
}

fn bad_key(path: &Path, message: String) -> LedgerError {
    LedgerError::BadKeyFile {
        path: path.to_path_buf(),
        message,
    }
}

/// The archive's public key, in the signed-note verifier key form
/// `<name>+<key id, hex>+<base64(0x01 || key)>` (its `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads the verifier key form.
    pub fn parse(text: &str) -> Result<PublicKey, LedgerError> {
        let bad = |what: &str| LedgerError::BadCheckpoint(format!("public key {text:?}: {what}"));
        let fields: Vec<&str> = text.trim().splitn(3, '+').collect();
        let [name, id, encoded] = fields[..] else {
            return Err(bad("not <name>+<id>+<key>"));
        };
        check_key_name(name).map_err(|message| bad(&message))?;
        let bytes = BASE64.decode(encoded).map_err(|_| bad("not base64"))?;
        let Some((&ED25519_TYPE, key)) = bytes.split_first() else {
            return Err(bad("not an Ed25519 key"));
        };
        let key: [u8; 32] = key.try_into().map_err(|_| bad("not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not a curve point"))?;
        if hex(&key_id(name, &key)) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(PublicKey {
            name: name.to_string(),
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `line` is this key's valid signature of `body`.
    fn verifies(&self, body: &str, line: &str) -> bool {
        let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
            return false;
        };
        let Some((name, encoded)) = rest.split_once(' ') else {
            return false;
        };
        let Ok(bytes) = BASE64.decode(encoded) else {
            return false;
        };
        if name != self.name || bytes.len() != 4 + 64 || bytes[..4] != key_id(name, &self.key) {
            return false;
        }
        let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes[4..]) else {
            return false;
        };
        self.key.verify_strict(body.as_bytes(), &signature).is_ok()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut encoded = vec![ED25519_TYPE];
        encoded.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex(&key_id(&self.name, &self.key)),
            BASE64.encode(&encoded)
        )
    }
}

/// Writes checkpoint `size`'s note as `<dir>/<size>.checkpoint` and, when there is one, its
/// time-stamp response as `<dir>/<size>.tsr` (`openssl ts -verify -data <size>.checkpoint -in
/// <size>.tsr` checks it). Files are 0640, written whole (a temporary file renamed); the
/// folder is made (0750) if missing. Returns the note's path.
pub fn publish(
    dir: &Path,
    size: u64,
    note: &str,
    timestamp_response: Option<&[u8]>,
) -> Result<PathBuf, LedgerError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LedgerError::Io { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(io(dir))?;
    let note_path = dir.join(format!("{size}.checkpoint"));
    write_whole(&note_path, note.as_bytes()).map_err(io(&note_path))?;
    if let Some(response) = timestamp_response {
        let path = dir.join(format!("{size}.tsr"));
        write_whole(&path, response).map_err(io(&path))?;
    }
    Ok(note_path)
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("partial");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&temporary)?;
    // The mode of `open` is filtered by the umask; the published files are 0640 whatever it is.
    file.set_permissions(fs::Permissions::from_mode(0o640))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, append, testing::entries};

    fn tree(size: u64) -> MemoryStore {
        let mut store = MemoryStore::new();
        append(&mut store, entries(0..size)).unwrap();
        store
    }

    fn time() -> jiff::Timestamp {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_checkpoint_opens_with_the_public_key_and_extends_its_predecessor() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            ArchiveKey::generate(&dir.path().join("archive.key"), "archive.test/bonnie").unwrap();
        let public = PublicKey::parse(&key.public().to_string()).unwrap();
        let mut store = tree(5);
        let first = Checkpoint::of_tree(&store, key.name(), None, time()).unwrap();
        append(&mut store, entries(5..11)).unwrap();
        let second = Checkpoint::of_tree(&store, key.name(), Some(5), time()).unwrap();
        let note = key.sign(&second).unwrap();
        assert!(note.starts_with("archive.test/bonnie\n11\n"), "{note}");
        let opened = Checkpoint::open(&note, &public).unwrap();
        assert_eq!(opened, second);
        assert!(opened.extends(&first));
        let mut forked = first.clone();
        forked.root[0] ^= 1;
        assert!(!opened.extends(&forked));
    }

    #[test]
    fn a_changed_note_or_another_key_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = ArchiveKey::generate(&dir.path().join("a.key"), "archive.test").unwrap();
        let other = ArchiveKey::generate(&dir.path().join("b.key"), "archive.test").unwrap();
        let checkpoint = Checkpoint::of_tree(&tree(3), key.name(), None, time()).unwrap();
        let note = key.sign(&checkpoint).unwrap();
        let changed = note.replacen("\n3\n", "\n4\n", 1);
        assert!(Checkpoint::open(&changed, &key.public()).is_err());
        assert!(Checkpoint::open(&note, &other.public()).is_err());
        assert!(Checkpoint::open(&note, &key.public()).is_ok());
    }

    #[test]
    fn a_key_file_open_to_the_group_or_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.key");
        ArchiveKey::generate(&path, "archive.test").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(ArchiveKey::read(&path).is_ok());
        for mode in [0o640, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let error = ArchiveKey::read(&path).err().unwrap().to_string();
            assert!(error.contains("chmod 600"), "{error}");
        }
        assert!(
            ArchiveKey::generate(&path, "archive.test").is_err(),
            "overwrote a key"
        );
    }

    #[test]
    fn publish_writes_one_0640_file_per_checkpoint_and_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let published = dir.path().join("published");
        let path = publish(&published, 11, "note\n", Some(b"token")).unwrap();
        assert_eq!(path, published.join("11.checkpoint"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "note\n");
        assert_eq!(fs::read(published.join("11.tsr")).unwrap(), b"token");
        for file in ["11.checkpoint", "11.tsr"] {
            let mode = fs::metadata(published.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o640, "{file}");
        }
    }
}
