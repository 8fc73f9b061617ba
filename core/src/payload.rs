//! Message payloads, content-addressed: the SHA-256 of the bytes names them, zstd keeps them
//! small, and a folder of files (`<dir>/<first two hex digits>/<digest>.zst`) holds those that
//! are written beside a store rather than in it.

use std::{
    io::{self, Read, Write},
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// The compression level: fast, and about 3-4× on mail.
const LEVEL: i32 = 3;

/// The most memory reserved up front for a payload being decompressed: beyond it, memory
/// grows with the bytes the frame really yields, whatever size was claimed.
const INITIAL_CAPACITY_LIMIT: usize = 64 << 20;

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

/// The digests of the payloads a normalized record stored (`payloads[].digest` and
/// `payload_digest`), sorted, each once.
pub fn digests_of_record(record: &serde_json::Value) -> Vec<String> {
    let mut digests: Vec<String> = record
        .get("payloads")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("digest").and_then(serde_json::Value::as_str))
        .chain(
            record
                .get("payload_digest")
                .and_then(serde_json::Value::as_str),
        )
        .map(str::to_string)
        .collect();
    digests.sort();
    digests.dedup();
    digests
}

/// Compresses a payload.
pub fn compress(bytes: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(bytes, LEVEL)
}

/// Decompresses a payload of `size` bytes (the size is kept beside the compressed bytes).
/// The size is a claim read from a store, so it is checked, never trusted: memory grows with
/// what the frame really holds, and a frame that holds more or fewer bytes than claimed is
/// an error (`InvalidData`).
pub fn decompress(compressed: &[u8], size: usize) -> io::Result<Vec<u8>> {
    let mismatch = |held: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the payload claims {size} bytes but holds {held}"),
        )
    };
    // The frame header names its content size (compress writes it): a cheap first check.
    if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(compressed)
        && declared != size as u64
    {
        return Err(mismatch(format!("a frame of {declared}")));
    }
    let mut bytes = Vec::with_capacity(size.min(INITIAL_CAPACITY_LIMIT));
    zstd::stream::read::Decoder::new(compressed)?
        .take(size as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() != size {
        return Err(mismatch(if bytes.len() > size {
            "more".to_string()
        } else {
            bytes.len().to_string()
        }));
    }
    Ok(bytes)
}

/// Where a payload lies below the root of a store: `<first two hex digits>/<digest>.zst`,
/// the file in a payload folder and the key of the object in a bucket alike.
pub fn relative_path(digest: &str) -> String {
    format!("{}/{digest}.zst", &digest[..2])
}

/// The file of a payload in a payload folder.
pub fn file(dir: &Path, digest: &str) -> PathBuf {
    dir.join(relative_path(digest))
}

/// What a store keeps of a payload (a file's or an object's bytes): the original size
/// (8 bytes, little-endian), then the zstd frame.
pub fn pack(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut content = (bytes.len() as u64).to_le_bytes().to_vec();
    content.extend(compress(bytes)?);
    Ok(content)
}

/// The most bytes a kept payload of `size` bytes can take ([`pack`]: the size, then a zstd
/// frame no larger than zstd's compression bound, with room to spare): a reader stops
/// reading a file or an object beyond it.
pub fn packed_bound(size: u64) -> u64 {
    size.saturating_add(size / 128)
        .saturating_add(8 + (1 << 16))
}

/// The payload in what a store kept of it ([`pack`]), checked against `digest`: a damaged
/// content (too short, a size it does not hold, other bytes) is an error (`InvalidData`),
/// never a wrong payload.
pub fn unpack(digest: &str, content: &[u8]) -> io::Result<Vec<u8>> {
    let Some((size, frame)) = content.split_first_chunk::<8>() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a truncated payload",
        ));
    };
    let size = usize::try_from(u64::from_le_bytes(*size)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the payload claims more bytes than this machine can address",
        )
    })?;
    let bytes = decompress(frame, size)?;
    if self::digest(&bytes) != digest {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("payload {digest} does not match its digest"),
        ));
    }
    Ok(bytes)
}

/// Writes a payload into a payload folder unless it is there; its digest. The file holds the
/// original size, then the zstd frame. It is written under a temporary name of its own (so
/// any number of threads and processes may store the same digest at once: each renames a
/// whole copy into place), synced, renamed, and the folder synced, so a payload reported
/// written survives a power cut. Files are 0600 (they are mail), new folders 0750.
pub fn write_file(dir: &Path, bytes: &[u8]) -> io::Result<String> {
    let digest = digest(bytes);
    if file(dir, &digest).exists() {
        return Ok(digest);
    }
    write_content(dir, &digest, &pack(bytes)?)?;
    Ok(digest)
}

/// Writes `content` as the file of `digest` in a payload folder, replacing the file there if
/// there is one, whole or not at all: under a temporary name of its own, synced, renamed and
/// the folder synced (as [`write_file`], which writes [`pack`]'s content; a store that seals
/// payloads writes its own). The file is 0600, new folders 0750.
pub fn write_content(dir: &Path, digest: &str, content: &[u8]) -> io::Result<()> {
    let path = file(dir, digest);
    let parent = path.parent().unwrap_or(dir);
    create_dirs(parent)?;
    // tempfile creates the file exclusively, with a random name, mode 0600.
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{digest}."))
        .tempfile_in(parent)?;
    temporary.write_all(content)?;
    temporary.as_file().sync_all()?;
    temporary.persist(&path).map_err(|e| e.error)?;
    sync_dir(parent)
}

/// Creates `dir` and its missing ancestors (mode 0750), syncing the folder of each one made,
/// so that a synced file in it is not lost with its folder's entry.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new(""));
    create_dirs(parent)?;
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Ok(()) => sync_dir(parent),
        // Another thread or process made it first.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Syncs a folder, making the entries created or renamed in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a payload from a payload folder, checking it against its digest. A damaged file
/// (too short, a size it does not hold, other bytes) is an error, never a wrong payload.
pub fn read_file(dir: &Path, digest: &str) -> io::Result<Option<Vec<u8>>> {
    if !is_digest(digest) {
        return Ok(None);
    }
    match std::fs::read(file(dir, digest)) {
        Ok(content) => unpack(digest, &content).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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

    #[test]
    fn threads_storing_the_same_payload_at_once_all_succeed_with_one_whole_file() {
        use std::os::unix::fs::PermissionsExt;
        let message = b"From: a@example.org\r\nSubject: at once\r\n\r\nbody\r\n".repeat(2000);
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let start = std::sync::Barrier::new(8);
            let written: Vec<io::Result<String>> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            write_file(dir.path(), &message)
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let digest = digest(&message);
            for result in written {
                assert_eq!(result.unwrap(), digest);
            }
            assert_eq!(read_file(dir.path(), &digest).unwrap().unwrap(), message);
            let folder = file(dir.path(), &digest).parent().unwrap().to_path_buf();
            let names: Vec<_> = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file(dir.path(), &digest)), 0o600, "mail is private");
            assert_eq!(mode(&folder) & 0o007, 0, "no access for others");
        }
    }

    #[test]
    fn a_payload_file_claiming_more_bytes_than_it_holds_is_an_error_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let message = b"Subject: small\r\n\r\nbody\r\n";
        let digest = write_file(dir.path(), message).unwrap();
        let path = file(dir.path(), &digest);
        let mut content = std::fs::read(&path).unwrap();
        content[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        std::fs::write(&path, &content).unwrap();
        let error = read_file(dir.path(), &digest).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");

        // A frame whose own header claims 2^60 bytes too (single segment, 8-byte content
        // size, one raw block of 5 bytes): the claim agrees with the frame, not with the data.
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        frame.extend((1u64 << 60).to_le_bytes());
        frame.extend([0x29, 0, 0]);
        frame.extend(b"hello");
        let mut crafted = (1u64 << 60).to_le_bytes().to_vec();
        crafted.extend(&frame);
        std::fs::write(&path, &crafted).unwrap();
        assert!(read_file(dir.path(), &digest).is_err());
        assert!(decompress(&frame, 1 << 60).is_err());
        assert!(decompress(&compress(message).unwrap(), message.len() - 1).is_err());
        assert!(decompress(&compress(message).unwrap(), message.len() + 1).is_err());
        assert_eq!(
            decompress(&compress(message).unwrap(), message.len()).unwrap(),
            message
        );
    }
}
