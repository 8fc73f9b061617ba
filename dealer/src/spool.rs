//! One spool of the dealer: notifications the broker has not acknowledged, kept in arrival
//! order in an append-only `queue` file that is synced before the dealer reports success. A
//! `head` file records how far the broker has acknowledged; a `lock` file keeps one writer.
//!
//! Record: `u32 length` (little-endian), `u32 CRC-32` of the payload, then the payload: the
//! submission id, a newline, the notification's bytes. Damaged bytes (a record torn by a
//! crash or a full disk, garbage) never hold up what comes after them: the open cuts a torn
//! tail off, reading resynchronises on the next whole record, and the damaged bytes are kept
//! in a `quarantine-*` file (mode 0600) with an ERROR line in the log.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tracing::error;

/// The length and CRC in front of each record.
const HEADER: u64 = 8;

/// The shortest payload: a one-byte id and its newline.
const MIN_PAYLOAD: u64 = 2;

/// The longest submission id a record may carry (the dealer's are 32 hex digits).
const MAX_ID: usize = 128;

/// How much of the queue a resynchronisation reads at a time.
const SCAN_WINDOW: u64 = 64 * 1024;

/// Where the names of quarantine files start.
const QUARANTINE_PREFIX: &str = "quarantine-";

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

/// What the queue holds at an offset.
enum Frame {
    /// A whole record.
    Record(Entry),
    /// Bytes that are not a whole record.
    Damaged,
    /// The end of the queue.
    End,
}

/// One spool folder, locked for the lifetime of this value.
pub struct Spool {
    dir: PathBuf,
    queue: File,
    /// Where the last record appended starts and ends: an open that finds the queue ending
    /// there checks that record alone instead of reading the whole queue. `None` if it
    /// cannot be opened (another user's, say): every open then reads the whole queue.
    tail: Option<File>,
    _lock: File,
}

/// The length and CRC of a record header.
fn header(bytes: &[u8]) -> (u64, u32) {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (u64::from(word(0)), word(4))
}

/// The id and notification of a payload, if it is a whole record's.
fn decode(payload: &[u8], crc: u32) -> Option<(&[u8], &[u8])> {
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let split = payload.iter().take(MAX_ID + 1).position(|&b| b == b'\n')?;
    let id = &payload[..split];
    (!id.is_empty() && id.iter().all(u8::is_ascii_graphic)).then(|| (id, &payload[split + 1..]))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The quarantine files of the spool in `dir`, oldest first.
pub fn quarantine_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(QUARANTINE_PREFIX)
        {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

impl Spool {
    /// Opens (creating) the spool in `dir` and takes its lock, waiting for another dealer
    /// that holds it.
    #[cfg(test)]
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_within(dir, None)
    }

    /// Opens (creating) the spool in `dir` and takes its lock; fails with `WouldBlock` if
    /// the lock is not free within `max_wait` (`Some(ZERO)`: at once; `None`: no limit).
    /// A torn tail is cut off into quarantine before anything is appended.
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
        let tail = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("tail"))
            .ok();
        let mut spool = Self {
            dir: dir.to_path_buf(),
            queue,
            tail,
            _lock: lock,
        };
        // Everything acknowledged (or a crash between the two steps of compaction): start over.
        // An empty queue with its head at 0 is the normal case and costs nothing.
        let (head, length) = (spool.head()?, spool.length()?);
        if head >= length && (head, length) != (0, 0) {
            spool.compact()?;
        } else if length > 0 {
            spool.repair_tail(head, length)?;
        }
        spool.sweep()?;
        Ok(spool)
    }

    /// The spool's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn length(&self) -> io::Result<u64> {
        Ok(self.queue.metadata()?.len())
    }

    /// Cuts a torn tail off the queue (into quarantine), so that appends follow whole
    /// records. Damage further up is left for [`Spool::peek`] to quarantine when it gets
    /// there: the records between it and the head are still to be sent.
    fn repair_tail(&mut self, head: u64, length: u64) -> io::Result<()> {
        let mut hint = [0u8; 16];
        if let Some(tail) = &self.tail
            && tail.read_exact_at(&mut hint, 0).is_ok()
        {
            let start = u64::from_le_bytes(hint[..8].try_into().unwrap_or_default());
            let end = u64::from_le_bytes(hint[8..].try_into().unwrap_or_default());
            if end == length
                && start < end
                && matches!(self.frame_at(start, length)?, Frame::Record(ref e) if e.end == end)
            {
                return Ok(());
            }
        }
        // No hint, or a stale one (a crash, or a dealer of an older version): read it all.
        let (mut offset, mut last) = (head, None);
        loop {
            match self.frame_at(offset, length)? {
                Frame::End => break,
                Frame::Record(entry) => {
                    last = Some(offset);
                    offset = entry.end;
                }
                Frame::Damaged => {
                    let next = self.resync(offset, length)?;
                    if next < length {
                        offset = next;
                        continue;
                    }
                    self.quarantine(offset, length)?;
                    self.queue.set_len(offset)?;
                    self.queue.sync_all()?;
                    break;
                }
            }
        }
        if let Some(start) = last {
            self.note_tail(start, offset);
        }
        Ok(())
    }

    /// Remembers where the last record starts and ends. Not synced: a hint lost in a crash
    /// costs one read of the whole queue.
    fn note_tail(&self, start: u64, end: u64) {
        let mut hint = [0u8; 16];
        hint[..8].copy_from_slice(&start.to_le_bytes());
        hint[8..].copy_from_slice(&end.to_le_bytes());
        if let Some(tail) = &self.tail {
            let _ = tail.write_all_at(&hint, 0);
        }
    }

    /// Reads the queue at `offset`.
    fn frame_at(&self, offset: u64, length: u64) -> io::Result<Frame> {
        if offset >= length {
            return Ok(Frame::End);
        }
        if offset + HEADER > length {
            return Ok(Frame::Damaged);
        }
        let mut bytes = [0u8; HEADER as usize];
        self.queue.read_exact_at(&mut bytes, offset)?;
        let (size, crc) = header(&bytes);
        if size < MIN_PAYLOAD || offset + HEADER + size > length {
            return Ok(Frame::Damaged);
        }
        let mut payload = vec![0u8; size as usize];
        self.queue.read_exact_at(&mut payload, offset + HEADER)?;
        Ok(match decode(&payload, crc) {
            Some((id, notification)) => Frame::Record(Entry {
                id: String::from_utf8_lossy(id).into_owned(),
                notification: notification.to_vec(),
                end: offset + HEADER + size,
            }),
            None => Frame::Damaged,
        })
    }

    /// Where the first whole record after the damage at `from` starts; `length` if none does.
    fn resync(&self, from: u64, length: u64) -> io::Result<u64> {
        let mut start = from + 1;
        while start + HEADER + MIN_PAYLOAD <= length {
            // A window of candidate offsets, and the header of the last of them.
            let taken = (length - start).min(SCAN_WINDOW + HEADER);
            let mut window = vec![0u8; taken as usize];
            self.queue.read_exact_at(&mut window, start)?;
            for i in 0..(taken + 1 - HEADER).min(SCAN_WINDOW) {
                let offset = start + i;
                let at = i as usize;
                let (size, crc) = header(&window[at..at + HEADER as usize]);
                if size < MIN_PAYLOAD || offset + HEADER + size > length {
                    continue;
                }
                let found = if i + HEADER + size <= taken {
                    decode(
                        &window[at + HEADER as usize..(i + HEADER + size) as usize],
                        crc,
                    )
                    .is_some()
                } else {
                    let mut payload = vec![0u8; size as usize];
                    self.queue.read_exact_at(&mut payload, offset + HEADER)?;
                    decode(&payload, crc).is_some()
                };
                if found {
                    return Ok(offset);
                }
            }
            start += SCAN_WINDOW;
        }
        Ok(length)
    }

    /// Copies the damaged bytes `from..to` of the queue into a quarantine file (synced, mode
    /// 0600: they are notifications, or pieces of them).
    fn quarantine(&self, from: u64, to: u64) -> io::Result<()> {
        let mut bytes = vec![0u8; (to - from) as usize];
        self.queue.read_exact_at(&mut bytes, from)?;
        let name = format!(
            "{QUARANTINE_PREFIX}{:013}-{from}-{}",
            bonnie_core::time::now_ms(),
            bytes.len()
        );
        let path = self.dir.join(&name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        error!(spool = %self.dir.display(), offset = from, bytes = bytes.len(),
            quarantine = %path.display(),
            "Damaged bytes in the spool moved to quarantine; the records after them go on.");
        Ok(())
    }

    /// Moves side files (written by dealers of an older version when the spool was busy)
    /// into the queue, oldest first; how many.
    fn sweep(&mut self) -> io::Result<usize> {
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
        sync_dir(&self.dir)?;
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
        sync_dir(&self.dir)
    }

    fn compact(&mut self) -> io::Result<()> {
        self.queue.set_len(0)?;
        self.queue.sync_all()?;
        self.set_head(0)
    }

    /// Bytes of the queue the broker has not acknowledged yet (two reads of metadata).
    pub fn waiting_bytes(&self) -> io::Result<u64> {
        Ok(self.length()?.saturating_sub(self.head()?))
    }

    /// True when nothing waits for the broker.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.head()? >= self.length()?)
    }

    /// Appends notifications and syncs them to disk before returning. If the write fails
    /// part way (a full disk), what was written is cut off again, so no torn record stays.
    pub fn append(&mut self, entries: &[(&str, &[u8])]) -> io::Result<()> {
        let mut bytes = Vec::new();
        let mut last = 0;
        for (id, notification) in entries {
            let mut payload = Vec::with_capacity(id.len() + 1 + notification.len());
            payload.extend_from_slice(id.as_bytes());
            payload.push(b'\n');
            payload.extend_from_slice(notification);
            let length = u32::try_from(payload.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a notification over 4 GiB")
            })?;
            last = bytes.len();
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let start = self.length()?;
        if let Err(e) = self.queue.write_all(&bytes) {
            if let Err(cut) = self.queue.set_len(start) {
                error!(spool = %self.dir.display(), error = %cut,
                    "Cannot cut a failed append off the spool; the next open quarantines it.");
            }
            return Err(e);
        }
        self.queue.sync_data()?;
        self.note_tail(start + last as u64, start + bytes.len() as u64);
        Ok(())
    }

    /// Up to `max` entries from the head, in order. Damaged bytes at the head are moved to
    /// quarantine and passed over; damage further on ends this batch, and is dealt with once
    /// the entries before it are acknowledged.
    pub fn peek(&mut self, max: usize) -> io::Result<Vec<Entry>> {
        let mut offset = self.head()?;
        let length = self.length()?;
        let mut entries = Vec::new();
        while entries.len() < max {
            match self.frame_at(offset, length)? {
                Frame::End => break,
                Frame::Record(entry) => {
                    offset = entry.end;
                    entries.push(entry);
                }
                Frame::Damaged if entries.is_empty() => {
                    let next = self.resync(offset, length)?;
                    self.quarantine(offset, next)?;
                    self.advance(next)?;
                    offset = next;
                }
                Frame::Damaged => break,
            }
        }
        Ok(entries)
    }

    /// Marks everything before `offset` as acknowledged; compacts when nothing is left.
    pub fn advance(&mut self, offset: u64) -> io::Result<()> {
        if offset >= self.length()? {
            self.compact()
        } else {
            self.set_head(offset)
        }
    }

    /// Notifications waiting (for the log), damaged bytes passed over.
    pub fn len(&self) -> io::Result<usize> {
        let (mut offset, length, mut count) = (self.head()?, self.length()?, 0);
        loop {
            match self.frame_at(offset, length)? {
                Frame::End => return Ok(count),
                Frame::Record(entry) => {
                    count += 1;
                    offset = entry.end;
                }
                Frame::Damaged => offset = self.resync(offset, length)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ids(spool: &mut Spool) -> Vec<String> {
        spool.peek(100).unwrap().into_iter().map(|e| e.id).collect()
    }

    fn queue(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join("queue")).unwrap()
    }

    /// The quarantine files' contents, oldest first; each readable by its owner only.
    fn quarantined(dir: &Path) -> Vec<Vec<u8>> {
        let files = quarantine_files(dir).unwrap();
        for file in &files {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

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
        assert_eq!(queue(dir.path()).len(), 0, "compacted");
    }

    #[test]
    fn a_torn_tail_is_quarantined_on_open_and_appends_after_it_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("a", b"one"), ("b", b"two")]).unwrap();
        let whole = queue(dir.path());
        drop(spool);
        // A crash in the middle of appending c.
        let torn = [
            whole.clone(),
            whole[whole.len() - 13..whole.len() - 2].to_vec(),
        ]
        .concat();
        std::fs::write(dir.path().join("queue"), &torn).unwrap();

        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(queue(dir.path()), whole, "the torn tail is cut off");
        assert_eq!(quarantined(dir.path()), [torn[whole.len()..].to_vec()]);
        spool.append(&[("d", b"four")]).unwrap();
        assert_eq!(ids(&mut spool), ["a", "b", "d"]);
    }

    #[test]
    fn a_stale_tail_hint_does_not_hide_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("a", b"one")]).unwrap();
        drop(spool);
        // A record of an older dealer, which keeps no hint, then its torn successor.
        let mut bytes = queue(dir.path());
        let one = bytes.clone();
        bytes.extend_from_slice(&one);
        bytes.extend_from_slice(&one[..5]);
        std::fs::write(dir.path().join("queue"), &bytes).unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(queue(dir.path()).len(), 2 * one.len());
        assert_eq!(quarantined(dir.path()), [one[..5].to_vec()]);
        assert_eq!(spool.len().unwrap(), 2);
        assert_eq!(ids(&mut spool), ["a", "a"]);
    }

    #[test]
    fn garbage_between_records_is_quarantined_and_reading_resynchronises() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("a", b"one"), ("b", b"two")]).unwrap();
        let first = queue(dir.path()).len() / 2;
        drop(spool);
        for garbage in [
            &b"xyz"[..],
            &[0u8; 4096][..],
            &b"\x07\x00\x00\x00\x01\x02\x03\x04 junk"[..],
        ] {
            let mut bytes = queue(dir.path());
            bytes.splice(first..first, garbage.iter().copied());
            std::fs::write(dir.path().join("queue"), &bytes).unwrap();
        }
        let mut spool = Spool::open(dir.path()).unwrap();
        spool.append(&[("c", b"three")]).unwrap();
        assert_eq!(spool.len().unwrap(), 3, "counted across the damage");
        let batch = spool.peek(10).unwrap();
        assert_eq!(batch.len(), 1, "the batch ends before the damage");
        spool.advance(batch[0].end).unwrap();
        assert_eq!(ids(&mut spool), ["b", "c"], "resynchronised");
        let kept = quarantined(dir.path()).concat();
        assert_eq!(kept.len(), 3 + 4096 + 13, "every damaged byte kept");
        drop(spool);
        // The quarantined bytes have left the queue: a new open finds nothing more.
        let mut spool = Spool::open(dir.path()).unwrap();
        assert_eq!(ids(&mut spool), ["b", "c"]);
        assert_eq!(quarantined(dir.path()).concat().len(), kept.len());
    }

    #[test]
    fn a_queue_of_nothing_but_damage_ends_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("queue"), [0xffu8; 100]).unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        assert!(spool.is_empty().unwrap());
        assert!(ids(&mut spool).is_empty());
        assert_eq!(quarantined(dir.path()), [vec![0xffu8; 100]]);
    }

    #[test]
    fn side_files_of_older_dealers_join_the_queue_in_time_order() {
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
        std::fs::write(dir.path().join("side-1795885999001-third"), b"3").unwrap();
        std::fs::write(dir.path().join("side-1795885999000-second"), b"2").unwrap();
        assert_eq!(spool.sweep().unwrap(), 2);
        assert_eq!(ids(&mut spool), ["first", "second", "third"]);
    }

    #[test]
    fn crc_matches_the_standard() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }
}
