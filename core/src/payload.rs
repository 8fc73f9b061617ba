//! Message payloads, content-addressed: the SHA-256 of the bytes names them, zstd keeps them
//! small, and a folder of files (`<dir>/<first two hex digits>/<digest>.zst`) holds those that
//! are written beside a store rather than in it.

use std::{
    io,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// The compression level: fast, and about 3-4× on mail.
const LEVEL: i32 = 3;

/// The SHA-256 of `bytes`, lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True if `text` looks like a digest this module made.
pub fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Compresses a payload.
pub fn compress(bytes: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(bytes, LEVEL)
}

/// Decompresses a payload of `size` bytes (the size is kept beside the compressed bytes).
pub fn decompress(compressed: &[u8], size: usize) -> io::Result<Vec<u8>> {
    zstd::bulk::decompress(compressed, size.max(1))
}

/// The file of a payload in a payload folder.
pub fn file(dir: &Path, digest: &str) -> PathBuf {
    dir.join(&digest[..2]).join(format!("{digest}.zst"))
}

/// Writes a payload into a payload folder (compressed, synced, renamed into place) unless it
/// is there; its digest. The file holds the original size, then the zstd frame.
pub fn write_file(dir: &Path, bytes: &[u8]) -> io::Result<String> {
    let digest = digest(bytes);
    let path = file(dir, &digest);
    if path.exists() {
        return Ok(digest);
    }
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    let mut content = (bytes.len() as u64).to_le_bytes().to_vec();
    content.extend(compress(bytes)?);
    let temporary = parent.join(format!(".{digest}.{}", std::process::id()));
    {
        use std::io::Write;
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&content)?;
        out.sync_all()?;
    }
    std::fs::rename(&temporary, &path)?;
    Ok(digest)
}

/// Reads a payload from a payload folder, checking it against its digest.
pub fn read_file(dir: &Path, digest: &str) -> io::Result<Option<Vec<u8>>> {
    if !is_digest(digest) {
        return Ok(None);
    }
    let content = match std::fs::read(file(dir, digest)) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if content.len() < 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a truncated payload file",
        ));
    }
    let size = u64::from_le_bytes(content[..8].try_into().unwrap_or([0; 8])) as usize;
    let bytes = decompress(&content[8..], size)?;
    if self::digest(&bytes) != digest {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("payload {digest} does not match its digest"),
        ));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_written_once_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let message = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n".repeat(50);
        let digest = write_file(dir.path(), &message).unwrap();
        assert!(is_digest(&digest));
        assert_eq!(
            write_file(dir.path(), &message).unwrap(),
            digest,
            "a second write is the same file"
        );
        assert_eq!(read_file(dir.path(), &digest).unwrap().unwrap(), message);
        assert!(
            std::fs::metadata(file(dir.path(), &digest)).unwrap().len() < message.len() as u64 / 3
        );
        assert_eq!(read_file(dir.path(), &"0".repeat(64)).unwrap(), None);
        std::fs::write(file(dir.path(), &digest), [0u8; 4]).unwrap();
        assert!(
            read_file(dir.path(), &digest).is_err(),
            "damage is an error, not a wrong payload"
        );
    }
}
