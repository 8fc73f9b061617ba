//! `bonnie restore`: puts a user's folder (with its subfolders or not) or one message back into
//! live Cyrus as it stood at a moment, read from the archive (bonnie-restore's snapshot).
//!
//! - Where: by default a new folder `Restored/<moment>/<name then>` of the user, so nothing
//!   live is touched; `--into original` the names the folders had then; `--into <folder>`
//!   that folder for the one selected, its subfolders below.
//! - How: over IMAP as the user (the `[collector]` admin with proxy authorization, as the
//!   collector reads): missing folders are created (with their Kolab folder type and
//!   comments as the archive knew them then), each message APPENDed with its archived bytes
//!   unchanged, its flags then and its INTERNALDATE; the folder is then read back
//!   (`BODY.PEEK[]`) to check each is byte for byte the archived one (Cyrus's GUID is the
//!   SHA-1 of those bytes, so it is the archived message's).
//! - Idempotent: each target folder's messages are matched first by size, then by the
//!   SHA-256 of their bytes FETCHed (in batches; by size alone for a message larger than the
//!   IMAP layer reads, `[collector] imap_max_literal_bytes`), against the messages to
//!   restore: a message there as many times as the snapshot has it is appended no more, so a
//!   rerun, or a run after one killed midway, appends only what is missing. Runs of the same
//!   arguments take a lock, and an unfinished run's state file (0600, kept at most once a
//!   second) keeps its moment and the UIDs given so far, so that a rerun of a restore "as of
//!   now" continues the same one.
//! - Reported, not dropped: a message Cyrus refuses (too large, bare newlines), one whose
//!   payload the archive lacks, the keywords past Cyrus's 128 per folder.
//! - Audited: the restore is a change (`auditor.change`: who, what, as of when, into where);
//!   each folder restored is a step whose record keeps the archive's UID, the new UID
//!   (APPENDUID) and the digest of every message appended, and its end a step with the
//!   counts, in the broker's verifiable log.
//! - `--dry-run` reads the archive and examines the targets (EXAMINE, FETCH) and says what
//!   would be created and appended; it changes nothing.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{
    Config, payload,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_imap::{AppendOptions, Connection, Identity, ImapError, Pool};
use bonnie_model::restores::{self, RestoredBy, RestoredFrom};
use bonnie_plugin_api::storage::StorageClient;
use bonnie_restore::{
    plan::{self, Destination},
    restored,
    snapshot::{FolderAt, MessageAt, Selector, Snapshot, snapshot},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The user flags Cyrus keeps per folder (its `MAX_USER_FLAGS`).
const MAX_USER_FLAGS: usize = 128;

/// `bonnie restore`'s arguments.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The user whose mailbox is restored (as Cyrus names them: john.doe@example.org)
    #[arg(long)]
    user: String,
    /// The folder, by the name the user saw it under at the moment (INBOX, Archive/2024)
    #[arg(long, required_unless_present = "message", conflicts_with = "message")]
    folder: Option<String>,
    /// With every folder below it
    #[arg(long, requires = "folder")]
    recursive: bool,
    /// One message: its item (payload digest) or Message-ID
    #[arg(long, value_name = "ITEM|MESSAGE-ID")]
    message: Option<String>,
    /// The moment: a date or time (2026-11-28T10:00, in [discovery] time_zone without an
    /// offset); by default now, or just before the folder or message was deleted
    #[arg(long, value_name = "WHEN")]
    as_of: Option<String>,
    /// Where to: `original` (the names then), a folder, or by default a new folder
    /// Restored/<moment>/...
    #[arg(long, value_name = "original|FOLDER")]
    into: Option<String>,
    /// Say what would be created and appended; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome as one JSON object
    #[arg(long)]
    json: bool,
    /// At most this many messages appended a second
    #[arg(long, value_name = "MSGS", default_value_t = 100.0)]
    rate: f64,
}

/// A message appended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Appended {
    /// Its payload's digest.
    digest: String,
    /// Its UID in the archived folder at the moment.
    old_uid: u64,
    /// Its UID in the target (APPENDUID), when the server told it.
    new_uid: Option<u32>,
}

/// A message not restored, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Refused {
    /// The target folder.
    folder: String,
    /// Its payload's digest.
    digest: String,
    /// Its UID in the archived folder at the moment.
    old_uid: u64,
    /// Why.
    reason: String,
}

/// One folder's restore.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct FolderRun {
    /// Its name at the moment.
    source: String,
    /// Where it goes.
    target: String,
    /// True if the target was created (or, in a dry run, would be).
    created: bool,
    /// The target's UIDVALIDITY.
    uidvalidity: Option<u32>,
    /// Messages the snapshot has in it.
    messages: u64,
    /// Messages the target held already.
    present: u64,
    /// Older revisions of groupware objects the folder also held then, left out.
    superseded: u64,
    /// Messages appended (in a dry run: that would be).
    appended: Vec<Appended>,
    /// Messages appended whose keywords past Cyrus's limit were left off.
    flags_left_off: Vec<Appended>,
    /// True once every message of it is there.
    done: bool,
}

/// A restore's state, kept in its state file while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunState {
    /// The run's id.
    run: String,
    /// The user.
    user: String,
    /// The moment (ms).
    as_of_ms: i64,
    /// When it started and, once complete, finished (ms).
    started_ms: i64,
    finished_ms: Option<i64>,
    /// Each folder.
    folders: Vec<FolderRun>,
    /// The messages not restored.
    refused: Vec<Refused>,
    /// Bytes appended.
    bytes: u64,
}

impl RunState {
    /// Messages appended (or, in a dry run, to be).
    fn appended(&self) -> u64 {
        self.folders.iter().map(|f| f.appended.len() as u64).sum()
    }

    /// Messages the targets held already.
    fn present(&self) -> u64 {
        self.folders.iter().map(|f| f.present).sum()
    }
}

/// The key of a restore's arguments: its lock's and state file's name.
fn run_key(args: &RestoreArgs) -> String {
    let text = json!({
        "user": args.user, "folder": args.folder, "recursive": args.recursive,
        "message": args.message, "as_of": args.as_of, "into": args.into,
    })
    .to_string();
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("restore-{hex}")
}

/// The state file of the restore `key`, beside back-fill's.
fn state_path(config: &Config, key: &str) -> PathBuf {
    crate::backfill::state_dir(config).join(format!("{key}.json"))
}

/// Bodies read per `UID FETCH` while matching a target: few round trips (Cyrus answers a
/// FETCH of one body some 40 ms late, the delayed ACK of its last segment), bounded memory.
const MATCH_BATCH_UIDS: usize = 200;
const MATCH_BATCH_BYTES: u64 = 16 << 20;

/// The key a message is matched by in a target: its digest, or for a message larger than
/// the IMAP layer reads back (`max_literal` bytes), its size alone.
fn match_key(size: u64, digest: &str, max_literal: u64) -> String {
    if size > max_literal {
        format!("size:{size}")
    } else {
        digest.to_string()
    }
}

/// How many times the selected folder holds each message whose size is one of `sizes` (the
/// others cannot be any message to restore), by [`match_key`]; their bodies read in batches.
fn present_digests(
    c: &mut Connection,
    exists: u32,
    sizes: &BTreeSet<u64>,
    max_literal: u64,
) -> Result<BTreeMap<String, u32>, ImapError> {
    let mut present = BTreeMap::new();
    if exists == 0 {
        return Ok(present);
    }
    let mut batches: Vec<Vec<u32>> = vec![Vec::new()];
    let mut batch_bytes = 0u64;
    for f in c.uid_fetch("1:*", "(UID RFC822.SIZE)", None)? {
        let (Some(uid), Some(size)) = (f.uid, f.size.map(u64::from)) else {
            continue;
        };
        if !sizes.contains(&size) {
            continue;
        }
        if size > max_literal {
            *present.entry(match_key(size, "", max_literal)).or_default() += 1;
            continue;
        }
        let full = batches.last().is_some_and(|b| {
            b.len() >= MATCH_BATCH_UIDS || (!b.is_empty() && batch_bytes + size > MATCH_BATCH_BYTES)
        });
        if full {
            batches.push(Vec::new());
            batch_bytes = 0;
        }
        batch_bytes += size;
        if let Some(batch) = batches.last_mut() {
            batch.push(uid);
        }
    }
    for batch in batches.iter().filter(|b| !b.is_empty()) {
        let set: Vec<String> = batch.iter().map(u32::to_string).collect();
        for mut f in c.uid_fetch(&set.join(","), "(UID BODY.PEEK[])", None)? {
            if let Some(body) = f.sections.remove("") {
                *present.entry(payload::digest(&body)).or_default() += 1;
            }
        }
    }
    Ok(present)
}

/// The flags a message is appended with: its flags then, the keywords past the folder's
/// limit left off (`allowed` is the folder's keywords so far); true if some were.
fn flags_to_set(message: &MessageAt, allowed: &mut BTreeSet<String>) -> (Vec<String>, bool) {
    let mut left_off = false;
    let mut flags = Vec::new();
    for flag in &message.flags {
        if flag.starts_with('\\') {
            flags.push(flag.clone());
        } else if allowed.contains(flag) || allowed.len() < MAX_USER_FLAGS {
            allowed.insert(flag.clone());
            flags.push(flag.clone());
        } else {
            left_off = true;
        }
    }
    (flags, left_off)
}

/// One restore under way.
struct Restore<'a, 'b> {
    storage: &'a StorageClient,
    auditor: &'a crate::audit::Auditor<'b>,
    identity: Identity,
    pool: Pool,
    dry_run: bool,
    rate: f64,
    state_path: PathBuf,
    bar: indicatif::ProgressBar,
    next_append: Instant,
    /// When the state was last kept.
    kept: Instant,
}

impl Restore<'_, '_> {
    /// The archived bytes of payload `digest`, if the archive holds them.
    fn payload(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.storage
            .get_payload(digest)
            .map_err(|e| anyhow::anyhow!("reading payload {digest} from the storage: {e}"))
    }

    /// Writes the state file (a dry run keeps none).
    fn keep(&self, state: &RunState) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        crate::backfill::write_private(&self.state_path, &serde_json::to_vec_pretty(state)?)
    }

    /// Keeps the state at most once a second while messages are appended (a rerun finds
    /// what a killed run appended in the target all the same).
    fn keep_soon(&mut self, state: &RunState) -> anyhow::Result<()> {
        if self.kept.elapsed() >= Duration::from_secs(1) {
            self.keep(state)?;
            self.kept = Instant::now();
        }
        Ok(())
    }

    /// Reads the target back: every message appended must be there byte for byte (by the
    /// SHA-256 of its bytes FETCHed), as many times as this run knows of.
    fn verify(
        &mut self,
        target: &str,
        copies: &BTreeMap<String, u32>,
        sizes: &BTreeSet<u64>,
        max_literal: u64,
    ) -> anyhow::Result<()> {
        let address = self.pool.config().address.clone();
        let there = self
            .pool
            .run(&self.identity, |c| {
                let exists = c.select(target)?.exists.unwrap_or(0);
                present_digests(c, exists, sizes, max_literal)
            })
            .with_context(|| format!("reading {target} back at {address}"))?;
        for (key, count) in copies {
            let found = there.get(key).copied().unwrap_or(0);
            if found < *count {
                anyhow::bail!(
                    "{target}: read back, it holds {found} of the {count} copies of the archived message {key} it should: a message was not stored byte for byte"
                );
            }
        }
        Ok(())
    }

    /// Waits for the next append's turn under `--rate`.
    fn throttle(&mut self) {
        let now = Instant::now();
        if self.next_append > now {
            std::thread::sleep(self.next_append - now);
        }
        let step = Duration::from_secs_f64(1.0 / self.rate.max(0.001));
        self.next_append = self.next_append.max(now) + step;
    }

    /// Restores `folder` into `target`; its outcome is kept in `state.folders[index]`.
    fn folder(
        &mut self,
        state: &mut RunState,
        index: usize,
        folder: &FolderAt,
        existing: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let target = state.folders[index].target.clone();
        let address = self.pool.config().address.clone();
        let identity = self.identity.clone();
        let created = !existing.contains(&target);
        state.folders[index].created |= created;
        if created && !self.dry_run {
            // LIST leaves out folders the user may not see; Cyrus then says it exists.
            self.pool
                .run(&identity, |c| match c.create(&target) {
                    Err(ImapError::Refused { text, .. })
                        if text.contains("ALREADYEXISTS")
                            || text.to_ascii_lowercase().contains("already exists") =>
                    {
                        Ok(())
                    }
                    other => other,
                })
                .with_context(|| format!("CREATE {target} as {identity:?} at {address}"))?;
            for (entry, value) in &folder.annotations {
                self.pool
                    .run(&identity, |c| {
                        c.setmetadata(&target, entry, Some(value.as_bytes()))
                    })
                    .with_context(|| {
                        format!("SETMETADATA {target} {entry} as {identity:?} at {address}")
                    })?;
            }
        }
        let mut sizes = BTreeSet::new();
        for message in &folder.messages {
            sizes.extend(match message.size {
                Some(size) => Some(size),
                None => self.payload(&message.digest)?.map(|b| b.len() as u64),
            });
        }
        let max_literal = self.pool.config().max_literal_bytes;
        let (uidvalidity, uniqueid, mut present) = if created && self.dry_run {
            (None, None, BTreeMap::new())
        } else {
            let dry_run = self.dry_run;
            self.pool
                .run(&identity, |c| {
                    let selected = if dry_run {
                        c.examine(&target)?
                    } else {
                        c.select(&target)?
                    };
                    let entry = crate::backfill::UNIQUEID_ENTRY;
                    let uniqueid = c.getmetadata(&target, &[entry])?.remove(entry);
                    let exists = selected.exists.unwrap_or(0);
                    let present = present_digests(c, exists, &sizes, max_literal)?;
                    Ok((selected.uidvalidity, uniqueid, present))
                })
                .with_context(|| format!("reading {target} as {identity:?} at {address}"))?
        };
        state.folders[index].uidvalidity = uidvalidity;
        // How many copies of each message the target holds, as far as this run knows.
        let mut copies = present.clone();
        let mut allowed = BTreeSet::new();
        let mut found = 0u64;
        for message in &folder.messages {
            self.bar.inc(1);
            let (flags, left_off) = flags_to_set(message, &mut allowed);
            let Some(bytes) = self.payload(&message.digest)? else {
                refuse(
                    state,
                    &target,
                    message,
                    "the archive holds no payload of it",
                );
                continue;
            };
            let key = match_key(bytes.len() as u64, &message.digest, max_literal);
            if let Some(count) = present.get_mut(&key).filter(|n| **n > 0) {
                *count -= 1;
                found += 1;
                continue;
            }
            let mut appended = Appended {
                digest: message.digest.clone(),
                old_uid: message.uid,
                new_uid: None,
            };
            if self.dry_run {
                state.folders[index].appended.push(appended);
                continue;
            }
            // Before the APPEND, so that the worker archiving its notification finds it.
            if let Some(uniqueid) = &uniqueid {
                let by = RestoredBy {
                    run: state.run.clone(),
                    as_of: format_rfc3339_ms(state.as_of_ms),
                    from: RestoredFrom {
                        folder: folder.name.clone(),
                        uid: message.uid,
                    },
                };
                restores::intend(self.storage, uniqueid, &message.digest, &by).map_err(|e| {
                    anyhow::anyhow!("recording the restore's append into {target}: {e}")
                })?;
            }
            self.throttle();
            let options = AppendOptions {
                flags,
                internal_date: jiff::Timestamp::from_millisecond(message.internaldate_ms)
                    .ok()
                    .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC)),
            };
            let known = copies.get(&key).copied().unwrap_or(0);
            let size = BTreeSet::from([bytes.len() as u64]);
            let mut attempts = 0;
            let outcome = self.pool.run(&identity, |c| {
                attempts += 1;
                // The pool runs it again on a new connection when the kept one broke: the
                // APPEND lost with it may have filed the message all the same.
                if attempts > 1 {
                    let exists = c.select(&target)?.exists.unwrap_or(0);
                    let now = present_digests(c, exists, &size, max_literal)?;
                    if now.get(&key).copied().unwrap_or(0) > known {
                        return Ok(None);
                    }
                }
                c.append(&target, &options, &bytes)
            });
            match outcome {
                Ok(uid) => {
                    *copies.entry(key).or_default() += 1;
                    appended.new_uid = uid.map(|u| u.uid);
                    if let (Some(uid), Some(uniqueid)) = (uid, &uniqueid) {
                        let filed = restored::Filed {
                            uniqueid,
                            uidvalidity: u64::from(uid.uidvalidity),
                            uid: u64::from(uid.uid),
                            run: &state.run,
                            digest: &message.digest,
                            old_uid: message.uid,
                        };
                        restored::record(self.storage, &filed).map_err(|e| {
                            anyhow::anyhow!("recording the restored place in {target}: {e}")
                        })?;
                    }
                    state.bytes += bytes.len() as u64;
                    if left_off {
                        state.folders[index].flags_left_off.push(appended.clone());
                    }
                    state.folders[index].appended.push(appended);
                    self.keep_soon(state)?;
                }
                Err(e) if !e.breaks_connection() => {
                    refuse(state, &target, message, &e.to_string());
                    self.keep(state)?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("APPEND to {target} at {address}"));
                }
            }
        }
        state.folders[index].present = found;
        if !self.dry_run && !state.folders[index].appended.is_empty() {
            self.verify(&target, &copies, &sizes, max_literal)?;
        }
        state.folders[index].done = true;
        self.keep(state)?;
        if !self.dry_run {
            let record = &state.folders[index];
            self.auditor.step(
                "restore-folder",
                json!({
                    "run": state.run, "user": state.user, "as_of": format_rfc3339_ms(state.as_of_ms),
                    "source": record.source, "target": record.target, "uidvalidity": record.uidvalidity,
                    "appended": record.appended.iter().map(|a| json!([a.old_uid, a.new_uid, a.digest])).collect::<Vec<_>>(),
                    "present": record.present,
                }),
                record.appended.len() as u64,
            )?;
        }
        Ok(())
    }
}

/// Notes a message not restored into `target`, and why (once, however many runs).
fn refuse(state: &mut RunState, target: &str, message: &MessageAt, reason: &str) {
    let refused = Refused {
        folder: target.to_string(),
        digest: message.digest.clone(),
        old_uid: message.uid,
        reason: reason.to_string(),
    };
    if !state.refused.contains(&refused) {
        state.refused.push(refused);
    }
}

/// The folders the user has, as LIST names them to the user.
fn listed(pool: &mut Pool, identity: &Identity) -> anyhow::Result<BTreeSet<String>> {
    let address = pool.config().address.clone();
    Ok(pool
        .run(identity, |c| c.list("", "*"))
        .with_context(|| format!("LIST as {identity:?} at {address}"))?
        .into_iter()
        .filter(|e| !e.attributes.iter().any(|a| a.contains("NonExistent")))
        .map(|e| e.name)
        .collect())
}

/// Runs `bonnie restore`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &RestoreArgs,
) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!(
            "--rate {}: give the messages a second, more than 0",
            args.rate
        );
    }
    let archive = crate::discovery::Archive::open(config)?;
    let selector = match (&args.folder, &args.message) {
        (Some(name), _) => Selector::Folder {
            name: name.trim_matches('/').to_string(),
            recursive: args.recursive,
        },
        (None, Some(id)) => Selector::Message(id.clone()),
        (None, None) => anyhow::bail!("name a --folder or a --message"),
    };
    let key = run_key(args);
    let dir = crate::backfill::state_dir(config);
    let _lock = if args.dry_run {
        None
    } else {
        Some(crate::backfill::lock_run(&dir, &key, "restore")?)
    };
    let path = state_path(config, &key);
    let resumed = match crate::backfill::load::<RunState>(&path)? {
        Some(state) if state.finished_ms.is_none() && !args.dry_run => Some(state),
        _ => None,
    };
    // An unfinished run of the same arguments continues at its moment.
    let as_of = match &resumed {
        Some(state) => Some(state.as_of_ms),
        None => archive.moment(args.as_of.as_deref())?,
    };
    // An archive logged before message places were kept has them recorded first, once.
    crate::backfill::place_logged(&archive.storage, &dir)?;
    let snapshot = snapshot(&archive.storage, &args.user, &selector, as_of)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let destination = Destination::parse(args.into.as_deref());
    let mut state = resumed.unwrap_or_else(|| RunState {
        run: format!("restore-{}", &bonnie_dealer::submit::new_id()[..20]),
        user: args.user.clone(),
        as_of_ms: snapshot.as_of_ms,
        started_ms: now_ms(),
        ..RunState::default()
    });
    let previous = std::mem::take(&mut state.folders);
    state.folders = snapshot
        .folders
        .iter()
        .map(|f| {
            let target = plan::target(&snapshot, &destination, &f.name);
            let earlier = previous.iter().find(|p| p.target == target);
            FolderRun {
                source: f.name.clone(),
                target,
                created: earlier.is_some_and(|p| p.created),
                messages: f.messages.len() as u64,
                superseded: f.superseded.len() as u64,
                ..FolderRun::default()
            }
        })
        .collect();
    let params = json!({
        "user": args.user, "folder": args.folder, "recursive": args.recursive,
        "message": args.message, "as_of": format_rfc3339_ms(snapshot.as_of_ms),
        "into": args.into, "dry_run": args.dry_run, "run": state.run,
    });
    let total = snapshot.message_count() as u64;
    let started = Instant::now();
    let mut work = || -> anyhow::Result<RunState> {
        let mut restore = Restore {
            storage: &archive.storage,
            auditor,
            identity: Identity::User(args.user.clone()),
            pool: crate::backfill::imap_pool(config)?,
            dry_run: args.dry_run,
            rate: args.rate,
            state_path: path.clone(),
            bar: progress_bar(total, args.json),
            next_append: Instant::now(),
            kept: Instant::now(),
        };
        restore.keep(&state)?;
        let identity = restore.identity.clone();
        let mut existing = listed(&mut restore.pool, &identity)?;
        for (index, folder) in snapshot.folders.iter().enumerate() {
            restore.folder(&mut state, index, folder, &existing)?;
            existing.insert(state.folders[index].target.clone());
        }
        restore.bar.finish_and_clear();
        if !args.dry_run {
            state.finished_ms = Some(now_ms());
            restore.keep(&state)?;
        }
        Ok(state.clone())
    };
    let state = if args.dry_run {
        let state = work()?;
        auditor.read("restore", params, state.appended())?;
        state
    } else {
        let state = auditor.change("restore", params, Some(total), work)?;
        auditor.step(
            "restore",
            json!({
                "run": state.run, "user": state.user, "as_of": format_rfc3339_ms(state.as_of_ms),
                "appended": state.appended(), "present": state.present(),
                "refused": state.refused.len(), "bytes": state.bytes,
            }),
            state.appended(),
        )?;
        state
    };
    print_report(
        &snapshot,
        &state,
        started.elapsed(),
        args.dry_run,
        args.json,
    );
    Ok(())
}

/// The progress bar of `total` messages, hidden for `--json`.
fn progress_bar(total: u64, json: bool) -> indicatif::ProgressBar {
    // Drawn on stderr when it is a terminal (indicatif hides it otherwise).
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "restore [{bar:30}] {pos}/{len} messages, {eta} left  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// What was (or would be) done, as text or JSON.
fn print_report(snapshot: &Snapshot, state: &RunState, took: Duration, dry_run: bool, json: bool) {
    let seconds = took.as_secs_f64().max(0.001);
    if json {
        let mut value = serde_json::to_value(state).unwrap_or(Value::Null);
        value["dry_run"] = json!(dry_run);
        value["as_of"] = json!(format_rfc3339_ms(snapshot.as_of_ms));
        value["messages"] = json!(snapshot.message_count());
        value["appended_count"] = json!(state.appended());
        value["present_count"] = json!(state.present());
        value["seconds"] = json!(seconds);
        println!("{value}");
        return;
    }
    let verb = if dry_run { "would append" } else { "appended" };
    println!(
        "restore of {} as of {}{}: {} folders, {} messages: {} {verb} ({:.1} MB), {} there already, {} not restored; {:.1} messages/s",
        state.user,
        format_rfc3339_ms(snapshot.as_of_ms),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
        state.folders.len(),
        snapshot.message_count(),
        state.appended(),
        state.bytes as f64 / 1e6,
        state.present(),
        state.refused.len(),
        state.appended() as f64 / seconds,
    );
    for folder in &state.folders {
        let create = match (folder.created, dry_run) {
            (true, true) => " (would be created)",
            (true, false) => " (created)",
            _ => "",
        };
        println!(
            "  {} -> {}{create}: {} messages, {} {verb}, {} there already",
            folder.source,
            folder.target,
            folder.messages,
            folder.appended.len(),
            folder.present
        );
        let source = snapshot.folders.iter().find(|f| f.name == folder.source);
        for appended in &folder.appended {
            let Some(message) = source.and_then(|f| {
                f.messages
                    .iter()
                    .find(|m| m.digest == appended.digest && m.uid == appended.old_uid)
            }) else {
                continue;
            };
            let new_uid = appended
                .new_uid
                .map(|uid| format!(" as UID {uid}"))
                .unwrap_or_default();
            println!(
                "    UID {} ({}){new_uid}: flags ({}), INTERNALDATE {}{}",
                message.uid,
                message.digest,
                message.flags.join(" "),
                format_rfc3339_ms(message.internaldate_ms),
                if message.internaldate_kept {
                    ""
                } else {
                    " (not archived: its arrival)"
                },
            );
        }
        if folder.superseded > 0 {
            println!(
                "    {} older revisions of groupware objects left out (one revision per object)",
                folder.superseded
            );
        }
        for kept in &folder.flags_left_off {
            println!(
                "    UID {}: keywords past Cyrus's {MAX_USER_FLAGS} per folder left off",
                kept.old_uid
            );
        }
    }
    for refused in &state.refused {
        println!(
            "  not restored: {} UID {} ({}): {}",
            refused.folder, refused.old_uid, refused.digest, refused.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flags: &[&str]) -> MessageAt {
        MessageAt {
            digest: "d".into(),
            uid: 1,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internaldate_ms: 0,
            internaldate_kept: true,
            size: None,
        }
    }

    #[test]
    fn keywords_past_cyrus_limit_per_folder_are_left_off_and_said() {
        let mut allowed = BTreeSet::new();
        let many: Vec<String> = (0..MAX_USER_FLAGS).map(|n| format!("$k{n}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let (flags, left_off) = flags_to_set(&message(&refs), &mut allowed);
        assert_eq!((flags.len(), left_off), (MAX_USER_FLAGS, false));
        // A known keyword and the system flags still go; a new keyword does not.
        let (flags, left_off) = flags_to_set(&message(&["\\Seen", "$k0", "$new"]), &mut allowed);
        assert_eq!(flags, vec!["\\Seen".to_string(), "$k0".to_string()]);
        assert!(left_off);
    }

    #[test]
    fn the_same_arguments_name_the_same_run() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: RestoreArgs,
        }
        let parse = |extra: &[&str]| {
            let base = ["bonnie", "--user", "john", "--folder", "INBOX"];
            Cli::parse_from(base.iter().chain(extra)).args
        };
        assert_eq!(run_key(&parse(&[])), run_key(&parse(&["--json"])));
        assert_ne!(
            run_key(&parse(&[])),
            run_key(&parse(&["--into", "original"]))
        );
    }
}
