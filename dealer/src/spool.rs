//! The dealer's local spool: notifications the broker has not acknowledged, kept in arrival
//! order in an append-only file that is synced before the dealer reports success. A `head`
//! file records how far the broker has acknowledged; a lock file serialises dealers.
//!
//! Record: `u32 length` (little-endian), `u32 CRC-32` of the payload, then the payload: the
//! submission id, a newline, the notification's bytes. A record torn by a crash fails its
//! check and ends the readable queue.
//!
//! A dealer that cannot get the lock in time (a daemon or a flush holds it) never waits
//! longer than its ACK timeout: it writes a side file `side-<ms>-<id>` instead, which the
//! next holder of the lock moves into the queue, in time order.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// One spooled notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its submission id.
    pub id: String,
    /// Its bytes.
    pub notification: Vec<u8>,
    /// Where the record after it starts.
    pub end: u64,
}

/// The spool folder, locked for the lifetime of this value.
pub struct Spool {
    dir: PathBuf,
    queue: File,
    _lock: File,
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl Spool {
    /// Opens (creating) the spool in `dir` and takes its lock, waiting for another dealer
    /// that holds it.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_within(dir, None)
    }

    /// Like [`Spool::open`], but fails with `WouldBlock` if the lock is not free within
    /// `max_wait` (`Some(ZERO)`: at once).
    pub fn open_within(dir: &Path, max_wait: Option<Duration>) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        match max_wait {
            None => lock.lock()?,
            Some(max_wait) => {
                let deadline = Instant::now() + max_wait;
                while lock.try_lock().is_err() {
                    if Instant::now() >= deadline {
                        return Err(io::Error::from(io::ErrorKind::WouldBlock));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let queue = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(dir.join("queue"))?;
        let mut spool = Self {
            dir: dir.to_path_buf(),
            queue,
            _lock: lock,
        };
        // Everything acknowledged (or a crash between the two steps of compaction): start over.
        // An empty queue with its head at 0 is the normal case and costs nothing.
        let (head, length) = (spool.head()?, spool.queue.metadata()?.len());
        if head >= length && (head, length) != (0, 0) {
            spool.compact()?;
        }
        spool.sweep()?;
        Ok(spool)
    }

    /// Writes a notification beside the queue without the lock (synced, then renamed into
    /// place); the next holder of the lock moves it into the queue.
    pub fn write_side(dir: &Path, id: &str, notification: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let name = format!("side-{:013}-{id}", bonnie_core::time::now_ms());
        let temporary = dir.join(format!(".{name}"));
        let mut file = File::create(&temporary)?;
        file.write_all(notification)?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(name))?;
        File::open(dir)?.sync_all()
    }

    /// Moves side files into the queue, oldest first; how many.
    pub fn sweep(&mut self) -> io::Result<usize> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("side-"))
            .collect();
        if names.is_empty() {
            return Ok(0);
        }
        names.sort();
        let mut records = Vec::with_capacity(names.len());
        for name in &names {
            let id = name.rsplit('-').next().unwrap_or_default().to_string();
            records.push((id, std::fs::read(self.dir.join(name))?));
        }
        let borrowed: Vec<(&str, &[u8])> = records
            .iter()
            .map(|(id, n)| (id.as_str(), n.as_slice()))
            .collect();
        // A crash after this append and before the removals spools them twice; the broker
        // drops the second copy by its id.
        self.append(&borrowed)?;
        for name in &names {
            std::fs::remove_file(self.dir.join(name))?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(names.len())
    }

    /// How far the broker has acknowledged.
    fn head(&self) -> io::Result<u64> {
        match std::fs::read(self.dir.join("head")) {
            Ok(bytes) if bytes.len() == 8 => {
                Ok(u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])))
            }
            Ok(_) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn set_head(&self, offset: u64) -> io::Result<()> {
        let temporary = self.dir.join("head.new");
        let mut file = File::create(&temporary)?;
        file.write_all(&offset.to_le_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, self.dir.join("head"))?;
        File::open(&self.dir)?.sync_all()
    }

    fn compact(&mut self) -> io::Result<()> {
        self.queue.set_len(0)?;
        self.queue.sync_all()?;
        self.set_head(0)
    }

    /// True when nothing waits for the broker.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.head()? >= self.queue.metadata()?.len())
    }

    /// Appends notifications and syncs them to disk before returning.
    pub fn append(&mut self, entries: &[(&str, &[u8])]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for (id, notification) in entries {
            let mut payload = Vec::with_capacity(id.len() + 1 + notification.len());
            payload.extend_from_slice(id.as_bytes());
            payload.push(b'\n');
            payload.extend_from_slice(notification);
            let length = u32::try_from(payload.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a notification over 4 GiB")
            })?;
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(&crc32(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        self.queue.write_all(&bytes)?;
        self.queue.sync_data()
    }

    /// Up to `max` entries from the head, in order. Reading stops at a torn record.
    pub fn peek(&mut self, max: usize) -> io::Result<Vec<Entry>> {
        let mut offset = self.head()?;
        let length = self.queue.metadata()?.len();
        let mut entries = Vec::new();
        let mut reader = &self.queue;
        while entries.len() < max && offset + 8 <= length {
            reader.seek(SeekFrom::Start(offset))?;
            let mut header = [0u8; 8];
            reader.read_exact(&mut header)?;
            let size = u64::from(u32::from_le_bytes([
                header[0], header[1], header[2], header[3],
            ]));
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if offset + 8 + size > length {
                break;
            }
            let mut payload = vec![0u8; size as usize];
            reader.read_exact(&mut payload)?;
            if crc32(&payload) != crc {
                break;
            }
            let Some(split) = payload.iter().position(|&b| b == b'\n') else {
                break;
            };
            let id = String::from_utf8_lossy(&payload[..split]).into_owned();
            let notification = payload[split + 1..].to_vec();
            offset += 8 + size;
            entries.push(Entry {
                id,
                notification,
                end: offset,
            });
        }
        Ok(entries)
    }

    /// Marks everything before `offset` as acknowledged; compacts when nothing is left.
    pub fn advance(&mut self, offset: u64) -> io::Result<()> {
        if offset >= self.queue.metadata()?.len() {
            self.compact()
        } else {
            self.set_head(offset)
        }
    }

    /// Notifications waiting (for the log); counts records up to the first torn one.
    pub fn len(&mut self) -> io::Result<usize> {
        Ok(self.peek(usize::MAX)?.len())
    }

    /// When the broker last failed to answer, per the spool's `state` file: it is not tried
    /// again before `until_ms`; `backoff_ms` is the wait that was used.
    pub fn broker_down(&self) -> (i64, i64) {
        let text = std::fs::read_to_string(self.dir.join("broker-down")).unwrap_or_default();
        let mut parts = text
            .split_whitespace()
            .map(|p| p.parse::<i64>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// Records that the broker failed to answer: skip it until `until_ms`.
    pub fn mark_broker_down(&self, until_ms: i64, backoff_ms: i64) -> io::Result<()> {
        std::fs::write(
            self.dir.join("broker-down"),
            format!("{until_ms} {backoff_ms}\n"),
        )
    }

    /// Records that the broker answered.
    pub fn mark_broker_up(&self) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join("broker-down")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        assert!(spool.is_empty().unwrap());
        spool
            .append(&[("a", b"{\"n\":1}"), ("b", b"\xff\xfe not UTF-8")])
            .unwrap();
        spool.append(&[("c", b"{\"n\":3}")]).unwrap();
        let entries = spool.peek(10).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(entries[1].notification, b"\xff\xfe not UTF-8");
        spool.advance(entries[0].end).unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path()).unwrap();
        let left = spool.peek(10).unwrap();
        assert_eq!(
            left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        spool.advance(left[1].end).unwrap();
        assert!(spool.is_empty().unwrap());
        assert_eq!(
            std::fs::metadata(dir.path().join("queue")).unwrap().len(),
            0,
            "compacted"
        );
    }

    #[test]
    fn a_torn_record_ends_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("a", b"one"), ("b", b"two")]).unwrap();
        let length = std::fs::metadata(dir.path().join("queue")).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(dir.path().join("queue"))
            .unwrap()
            .set_len(length - 2)
            .unwrap();
        assert_eq!(spool.peek(10).unwrap().len(), 1);
    }

    #[test]
    fn side_files_join_the_queue_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("first", b"1")]).unwrap();
        assert_eq!(
            Spool::open_within(dir.path(), Some(Duration::ZERO))
                .err()
                .map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock),
            "the lock is held"
        );
        Spool::write_side(dir.path(), "second", b"2").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        Spool::write_side(dir.path(), "third", b"3").unwrap();
        assert_eq!(spool.sweep().unwrap(), 2);
        let ids: Vec<String> = spool.peek(10).unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["first", "second", "third"]);
    }

    #[test]
    fn crc_matches_the_standard() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
