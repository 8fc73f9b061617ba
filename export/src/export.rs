//! The export itself: items are written one at a time as they come (natives streamed in
//! chunks, never whole), parts roll at `part_bytes`, and every `commit_items` items the
//! export's file system is synced and the state saved, so that a rerun after a crash or a kill
//! continues after the last committed item: appended files are cut back to their recorded
//! lengths, natives and texts of later items are removed, and the items done are skipped.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use bonnie_ledger::{Checkpoint, PublicKey};
use sha2::{Digest as _, Sha256};

use crate::{
    ExportError, dat,
    files::{self, Digests},
    item::{Exception, ExportHeader, ExportItem, Format, ListHasher, Options},
    manifest::{self, ManifestAttachment, ManifestItem},
    natives::{extension, write_file, write_mbox, write_native},
    state::{LIST_FILE, STATE_DIR, State},
    verify::check_leaf,
};

/// The checkpoint's file in an export.
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.txt";
/// The public key's file.
pub(crate) const PUBLIC_KEY_FILE: &str = "public-key.txt";
/// The manifest.
pub(crate) const MANIFEST_JSON: &str = "manifest.json";
/// The manifest, one row per item.
pub(crate) const MANIFEST_CSV: &str = "manifest.csv";
/// The load file (DAT).
pub(crate) const LOAD_FILE: &str = "loadfile.dat";
/// The checksums.
pub(crate) const SUMS_FILE: &str = "SHA256SUMS";
/// How many bytes of natives an export writes at most between two commits, whatever
/// `commit_items` says: what a rerun may have to write again.
const COMMIT_BYTES: u64 = 256 << 20;
/// The manifest's items as they are written, one JSON line each (in the state folder).
pub(crate) const JOURNAL: &str = ".bonnie-export/items.jsonl";

/// How far an export is, after each item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Items of the list done (exported or excepted).
    pub done: u64,
    /// Items in the list.
    pub total: u64,
    /// Items exported.
    pub exported: u64,
    /// Items excepted.
    pub exceptions: u64,
    /// Bytes of natives written.
    pub bytes: u64,
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Items exported.
    pub exported: u64,
    /// Items that could not be.
    pub exceptions: u64,
    /// Items found done by an earlier, interrupted run.
    pub resumed_after: u64,
    /// Parts written.
    pub parts: u32,
    /// Bytes of natives written.
    pub bytes: u64,
}

/// Exports `items` into the folder `out` (made if missing; an unfinished export of the same
/// list there is continued, anything else refused). `items` must be the list
/// `header.items` names, in its order; an item the caller could not read is given as its
/// [`Exception`]. `progress` is called after each item.
pub fn export(
    out: &Path,
    header: &ExportHeader,
    options: &Options,
    items: impl IntoIterator<Item = Result<ExportItem, Exception>>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, ExportError> {
    check_options(out, options)?;
    let zone = zone(&header.zone)?;
    let key = PublicKey::parse(&header.public_key).map_err(ExportError::Checkpoint)?;
    let checkpoint =
        Checkpoint::open(&header.checkpoint_note, &key).map_err(ExportError::Checkpoint)?;
    let fingerprint = fingerprint(header, options);
    let mut state = match State::load(out)? {
        Some(state) if state.fingerprint == fingerprint => state,
        Some(_) => {
            return Err(refused(
                out,
                "an unfinished export of another list of items, or with other options, is \
                 here: rerun it with the same items or export into another folder",
            ));
        }
        None => start(out, header, options, fingerprint)?,
    };
    let resumed_after = state.done;
    remove_uncommitted(out, &state, &options.docid_prefix)?;
    let mut writer = Writer::open(out, options, &state)?;
    let (mut uncommitted, mut committed_bytes) = (0, state.bytes);
    let context = Context {
        options,
        zone: &zone,
        checkpoint: &checkpoint,
        checkpoint_ref: format!("{}/{}", checkpoint.origin, checkpoint.size),
    };
    let mut list = ListHasher::default();
    for (index, item) in items.into_iter().enumerate() {
        let index = index as u64;
        let digest = match &item {
            Ok(item) => item.meta.digest.clone(),
            Err(exception) => exception.digest.clone(),
        };
        list.push(&digest);
        if index < state.done {
            continue;
        }
        if index >= state.header.items.count {
            return Err(ExportError::ListMismatch(format!(
                "more than the {} items it names",
                state.header.items.count
            )));
        }
        let docid = format!("{}{:08}", options.docid_prefix, index + 1);
        let outcome = match item {
            Ok(item) => writer.write_item(&context, &mut state, &docid, item)?,
            Err(exception) => Err(exception.reason),
        };
        match outcome {
            Ok(written) => {
                state.exported += 1;
                state.bytes += written.size;
                *state
                    .per_custodian
                    .entry(written.custodian.clone())
                    .or_default() += 1;
                writer.append_manifest(&written)?;
            }
            Err(reason) => state.exceptions.push(Exception {
                digest,
                docid: Some(docid),
                reason,
            }),
        }
        state.done = index + 1;
        uncommitted += 1;
        if uncommitted >= options.commit_items.max(1)
            || state.bytes - committed_bytes >= COMMIT_BYTES
        {
            writer.commit(&mut state)?;
            uncommitted = 0;
            committed_bytes = state.bytes;
        }
        progress(&Progress {
            done: state.done,
            total: state.header.items.count,
            exported: state.exported,
            exceptions: state.exceptions.len() as u64,
            bytes: state.bytes,
        });
    }
    if uncommitted > 0 {
        writer.commit(&mut state)?;
    }
    let given = list.finish();
    if given != state.header.items {
        return Err(ExportError::ListMismatch(format!(
            "{} items with list digest {}, not the {} with {}",
            given.count, given.sha256, state.header.items.count, state.header.items.sha256
        )));
    }
    drop(writer);
    crate::finish::finish(out, options, &state, &checkpoint)?;
    Ok(Summary {
        exported: state.exported,
        exceptions: state.exceptions.len() as u64,
        resumed_after,
        parts: state.part,
        bytes: state.bytes,
    })
}

fn refused(out: &Path, message: &str) -> ExportError {
    ExportError::Refused {
        path: out.to_path_buf(),
        message: message.to_string(),
    }
}

fn check_options(out: &Path, options: &Options) -> Result<(), ExportError> {
    let prefix = &options.docid_prefix;
    let plain = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if prefix.is_empty() || prefix.len() > 32 || !plain {
        return Err(refused(
            out,
            &format!(
                "DOCID prefix {prefix:?}: 1 to 32 ASCII letters, digits, '-' or '_' (it names files)"
            ),
        ));
    }
    if options.part_bytes == 0 {
        return Err(refused(out, "a part size of 0 bytes"));
    }
    Ok(())
}

/// Removes what a run interrupted after its last commit wrote: the natives and texts of items
/// after the last complete one (files are named after their DOCID) and mbox parts after the
/// current one; appended files are cut back when they are opened.
fn remove_uncommitted(out: &Path, state: &State, prefix: &str) -> Result<(), ExportError> {
    // The number in `<before><digits><after>...`: a DOCID's, or an mbox part's.
    let number = |name: &str, before: &str, after: &str| -> Option<u64> {
        let rest = name.strip_prefix(before)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        rest[digits.len()..]
            .starts_with(after)
            .then(|| digits.parse().ok())
            .flatten()
    };
    let entries = |dir: &Path| -> Result<Vec<fs::DirEntry>, ExportError> {
        match fs::read_dir(dir) {
            Ok(entries) => entries
                .collect::<Result<_, _>>()
                .map_err(ExportError::io(dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ExportError::io(dir)(e)),
        }
    };
    let remove = |entry: &fs::DirEntry| {
        fs::remove_file(entry.path()).map_err(ExportError::io(&entry.path()))
    };
    for top in ["natives", "text"] {
        for part in entries(&out.join(top))? {
            let name = part.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_ok_and(|p| p >= state.part) {
                for file in entries(&part.path())? {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if number(&name, prefix, ".").is_some_and(|n| n > state.done) {
                        remove(&file)?;
                    }
                }
            }
        }
    }
    for file in entries(&out.join("mbox"))? {
        let name = file.file_name().to_string_lossy().into_owned();
        if number(&name, "", ".mbox").is_some_and(|p| p > u64::from(state.part)) {
            remove(&file)?;
        }
    }
    Ok(())
}

pub(crate) fn zone(name: &str) -> Result<jiff::tz::TimeZone, ExportError> {
    jiff::tz::TimeZone::get(name).map_err(|e| ExportError::Zone {
        zone: name.to_string(),
        message: e.to_string(),
    })
}

/// What a rerun must share with the run it continues: the list, the format, the parts and
/// DOCIDs, the checkpoint and the zone (the query's text, the time and how often it commits
/// may differ: the items and the files are the same).
fn fingerprint(header: &ExportHeader, options: &Options) -> String {
    let mut hasher = Sha256::new();
    let parts = serde_json::json!({
        "items": header.items,
        "format": options.format,
        "part_bytes": options.part_bytes,
        "docid_prefix": options.docid_prefix,
        "checkpoint": header.checkpoint_note,
        "zone": header.zone,
    });
    hasher.update(parts.to_string().as_bytes());
    files::hex(&hasher.finalize())
}

/// Refuses `out` unless it is missing, empty, or holds only a list of items frozen for the
/// export about to begin.
pub(crate) fn check_empty(out: &Path) -> Result<(), ExportError> {
    let frozen = out.join(LIST_FILE).exists();
    match fs::read_dir(out) {
        Ok(entries) => {
            let mut others = entries.filter(|entry| {
                !(frozen && entry.as_ref().is_ok_and(|e| e.file_name() == STATE_DIR))
            });
            if others.next().is_some() {
                let message = if out.join(MANIFEST_JSON).exists() {
                    "a finished export is here: export into another folder"
                } else {
                    "the folder is not empty and holds no unfinished export"
                };
                return Err(refused(out, message));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ExportError::io(out)(e)),
    }
}

/// Begins a new export in `out`, which must be missing or empty (but for a frozen list).
fn start(
    out: &Path,
    header: &ExportHeader,
    options: &Options,
    fingerprint: String,
) -> Result<State, ExportError> {
    check_empty(out)?;
    files::make_dir(&out.join(STATE_DIR))?;
    files::write_whole(
        &out.join(CHECKPOINT_FILE),
        header.checkpoint_note.as_bytes(),
    )?;
    files::write_whole(
        &out.join(PUBLIC_KEY_FILE),
        format!("{}\n", header.public_key.trim()).as_bytes(),
    )?;
    let mut lengths = BTreeMap::new();
    let mut begin = |name: &str, text: &str| -> Result<(), ExportError> {
        files::write_whole(&out.join(name), text.as_bytes())?;
        lengths.insert(name.to_string(), text.len() as u64);
        Ok(())
    };
    begin(MANIFEST_CSV, &manifest::csv_header())?;
    begin(JOURNAL, "")?;
    if options.format == Format::Dat {
        begin(LOAD_FILE, &dat::header())?;
    }
    let state = State {
        fingerprint,
        header: header.clone(),
        done: 0,
        part: 1,
        part_used: 0,
        lengths,
        exported: 0,
        bytes: 0,
        per_custodian: BTreeMap::new(),
        exceptions: Vec::new(),
    };
    state.save(out)?;
    Ok(state)
}

/// What every item is written against.
struct Context<'a> {
    options: &'a Options,
    zone: &'a jiff::tz::TimeZone,
    checkpoint: &'a Checkpoint,
    checkpoint_ref: String,
}

impl Context<'_> {
    fn time(&self, ms: Option<i64>) -> Option<String> {
        let at = jiff::Timestamp::from_millisecond(ms?).ok()?;
        Some(
            at.to_zoned(self.zone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        )
    }
}

/// A file appended to, and its relative path (the state's key).
struct Appended {
    name: String,
    file: fs::File,
}

/// The open files of a running export.
struct Writer {
    out: PathBuf,
    format: Format,
    manifest_csv: Appended,
    journal: Appended,
    load_file: Option<Appended>,
    mbox: Option<Appended>,
}

/// Why an item is not exported (for the exceptions list).
pub(crate) type Skip = String;

impl Writer {
    fn open(out: &Path, options: &Options, state: &State) -> Result<Writer, ExportError> {
        let appended = |name: &str| -> Result<Appended, ExportError> {
            let length = state.lengths.get(name).copied().unwrap_or(0);
            Ok(Appended {
                name: name.to_string(),
                file: files::append_at(&out.join(name), length)?,
            })
        };
        let mbox = match options.format {
            Format::Mbox => Some(appended(&mbox_name(state.part))?),
            _ => None,
        };
        Ok(Writer {
            out: out.to_path_buf(),
            format: options.format,
            manifest_csv: appended(MANIFEST_CSV)?,
            journal: appended(JOURNAL)?,
            load_file: match options.format {
                Format::Dat => Some(appended(LOAD_FILE)?),
                _ => None,
            },
            mbox,
        })
    }

    /// Writes one item; `Ok(Err(reason))` when it cannot be exported (nothing of it is left).
    fn write_item(
        &mut self,
        context: &Context<'_>,
        state: &mut State,
        docid: &str,
        mut item: ExportItem,
    ) -> Result<Result<ManifestItem, Skip>, ExportError> {
        let meta = &item.meta;
        let checked = check_leaf(
            &meta.leaf,
            meta.log_seq,
            &meta.digest,
            &meta.proof,
            context.checkpoint,
        );
        let leaf_hash = match checked {
            Ok(hash) => hash,
            Err(reason) => return Ok(Err(reason)),
        };
        let planned = meta.size
            + item
                .attachments
                .iter()
                .map(|a| a.bytes.len() as u64)
                .sum::<u64>();
        if state.part_used > 0 && state.part_used + planned > context.options.part_bytes {
            state.part += 1;
            state.part_used = 0;
            if self.format == Format::Mbox {
                let name = mbox_name(state.part);
                let file = files::append_at(&self.out.join(&name), 0)?;
                state.lengths.insert(name.clone(), 0);
                self.mbox = Some(Appended { name, file });
            }
        }
        let part = part_name(state.part);
        let (path, offset, digested) = match self.format {
            Format::Mbox => {
                let Some(mbox) = &mut self.mbox else {
                    unreachable!("an mbox export has its mbox file open")
                };
                let offset = mbox
                    .file
                    .metadata()
                    .map_err(ExportError::io(&self.out.join(&mbox.name)))?
                    .len();
                match write_mbox(
                    &self.out.join(&mbox.name),
                    &mut mbox.file,
                    meta,
                    &mut item.native,
                )? {
                    Ok(digested) => (mbox.name.clone(), Some(offset), digested),
                    Err(reason) => return Ok(Err(reason)),
                }
            }
            Format::Eml | Format::Dat => {
                let relative = format!("natives/{part}/{docid}.eml");
                match write_native(&self.out.join(&relative), &mut item.native)? {
                    Ok(digested) => (relative, None, digested),
                    Err(reason) => return Ok(Err(reason)),
                }
            }
        };
        if digested.sha256 != meta.digest {
            self.undo_native(&path, offset)?;
            return Ok(Err(format!(
                "the native read has SHA-256 {}, not the item's digest",
                digested.sha256
            )));
        }
        state.part_used += digested.length;
        let mut written = ManifestItem {
            docid: docid.to_string(),
            custodian: meta.custodian.clone(),
            folders: meta.folders.clone(),
            sent: context.time(meta.sent_ms),
            received: context.time(meta.received_ms),
            envelope: meta.envelope.clone(),
            kind: meta.kind.clone(),
            path,
            offset,
            text_path: None,
            size: digested.length,
            md5: digested.md5,
            sha256: digested.sha256,
            deleted: meta.deleted,
            deleted_at: context.time(meta.deleted_ms),
            backfilled: meta.backfilled,
            log_seq: meta.log_seq,
            leaf: files::hex(&meta.leaf),
            leaf_hash: files::hex(&leaf_hash),
            proof: meta.proof.iter().map(|h| files::hex(h)).collect(),
            checkpoint: context.checkpoint_ref.clone(),
            attachments: Vec::new(),
        };
        if self.format == Format::Dat {
            self.write_family(state, &part, &item, &mut written)?;
        }
        Ok(Ok(written))
    }

    /// Removes a native that turned out not to be the item's.
    fn undo_native(&mut self, path: &str, offset: Option<u64>) -> Result<(), ExportError> {
        let full = self.out.join(path);
        match (offset, &mut self.mbox) {
            (Some(offset), Some(mbox)) => mbox.file.set_len(offset).map_err(ExportError::io(&full)),
            _ => fs::remove_file(&full).map_err(ExportError::io(&full)),
        }
    }

    /// DAT: the attachments as family members, the text files, the load file's rows.
    fn write_family(
        &mut self,
        state: &mut State,
        part: &str,
        item: &ExportItem,
        written: &mut ManifestItem,
    ) -> Result<(), ExportError> {
        let docid = written.docid.clone();
        let text_path = format!("text/{part}/{docid}.txt");
        write_file(&self.out.join(&text_path), item.text.as_bytes())?;
        written.text_path = Some(text_path.clone());
        for (n, attachment) in item.attachments.iter().enumerate() {
            let member = format!("{docid}.{:04}", n + 1);
            let path = format!("natives/{part}/{member}{}", extension(&attachment.name));
            let member_text = format!("text/{part}/{member}.txt");
            write_file(&self.out.join(&path), &attachment.bytes)?;
            write_file(&self.out.join(&member_text), attachment.text.as_bytes())?;
            state.part_used += attachment.bytes.len() as u64;
            let digested = Digests::of(&attachment.bytes);
            written.attachments.push(ManifestAttachment {
                docid: member,
                name: attachment.name.clone(),
                path,
                text_path: member_text,
                size: digested.length,
                md5: digested.md5,
                sha256: digested.sha256,
            });
        }
        let Some(load_file) = &mut self.load_file else {
            unreachable!("a DAT export has its load file open")
        };
        let mut rows = dat::record(&dat::family_row(written, &text_path));
        for attachment in &written.attachments {
            rows.push_str(&dat::record(&dat::member_row(written, attachment)));
        }
        let path = self.out.join(&load_file.name);
        load_file
            .file
            .write_all(rows.as_bytes())
            .map_err(ExportError::io(&path))
    }

    fn append_manifest(&mut self, written: &ManifestItem) -> Result<(), ExportError> {
        let csv = manifest::csv_row(written);
        let path = self.out.join(&self.manifest_csv.name);
        self.manifest_csv
            .file
            .write_all(csv.as_bytes())
            .map_err(ExportError::io(&path))?;
        let mut line = serde_json::to_vec(written).map_err(|e| ExportError::Corrupt {
            path: self.out.join(JOURNAL),
            message: format!("cannot encode item {}: {e}", written.docid),
        })?;
        line.push(b'\n');
        let path = self.out.join(JOURNAL);
        self.journal
            .file
            .write_all(&line)
            .map_err(ExportError::io(&path))
    }

    /// Makes everything written so far durable (one `syncfs` of the export's file system
    /// rather than an fsync per file), then records the appended files' lengths and the
    /// state, which from then on says these items are complete.
    fn commit(&mut self, state: &mut State) -> Result<(), ExportError> {
        let root = fs::File::open(&self.out).map_err(ExportError::io(&self.out))?;
        rustix::fs::syncfs(&root).map_err(|e| ExportError::io(&self.out)(e.into()))?;
        let files = [
            Some(&mut self.manifest_csv),
            Some(&mut self.journal),
            self.load_file.as_mut(),
            self.mbox.as_mut(),
        ];
        for appended in files.into_iter().flatten() {
            let path = self.out.join(&appended.name);
            let length = appended
                .file
                .metadata()
                .map_err(ExportError::io(&path))?
                .len();
            state.lengths.insert(appended.name.clone(), length);
        }
        state.save(&self.out)
    }
}

fn part_name(part: u32) -> String {
    format!("{part:04}")
}

fn mbox_name(part: u32) -> String {
    format!("mbox/{}.mbox", part_name(part))
}
