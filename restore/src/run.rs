//! The restore itself: the snapshot's folders created in live Cyrus and their messages
//! APPENDed, as the user (the `[collector]` admin with proxy authorization), for `bonnie
//! restore` and bonnie-api's `restore.start` alike.
//!
//! - Each message goes with its archived bytes unchanged, its flags then and its
//!   INTERNALDATE; the folder is then read back (`BODY.PEEK[]`) to check each is byte for byte
//!   the archived one (Cyrus's GUID is the SHA-1 of those bytes).
//! - Idempotent: each target folder's messages are matched first by size, then by the
//!   SHA-256 of their bytes FETCHed (in batches; by size alone for a message larger than the
//!   IMAP layer reads), against the messages to restore: a message there as many times as the
//!   snapshot has it is appended no more, so a rerun appends only what is missing.
//! - Before each APPEND, what it files is recorded ([`bonnie_model::restores`]) so that the
//!   archive takes Cyrus's notification of it for the restore's; after it, where Cyrus filed
//!   it ([`crate::restored`]).
//! - Reported, not dropped: a message Cyrus refuses (too large, bare newlines), one whose
//!   payload the archive lacks, the keywords past Cyrus's 128 per folder.
//! - What the caller keeps of it (a state file, a job), the audit steps and the progress are
//!   the caller's ([`Journal`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_core::{
    Config,
    config::{CollectorConfig, ImapSecurity},
    payload,
    time::format_rfc3339_ms,
};
use bonnie_imap::{
    AppendOptions, Connection, Credentials, Identity, ImapError, Pool, Security, StoreMode,
};
use bonnie_model::restores::{self, RestoredBy, RestoredFrom};
use bonnie_plugin_api::{items::ITEMS, storage::StorageClient};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    plan::{self, Destination},
    restored,
    snapshot::{FolderAt, MessageAt, Snapshot},
};

/// The user flags Cyrus keeps per folder (its `MAX_USER_FLAGS`).
pub const MAX_USER_FLAGS: usize = 128;

/// The folder annotation Cyrus gives its mailboxID (the notifications' `uniqueid`) in.
pub const UNIQUEID_ENTRY: &str = "/shared/vendor/cmu/cyrus-imapd/uniqueid";

/// The IMAP layer's configuration from the `[collector]` table, as the collector connects.
pub fn imap_config(
    c: &CollectorConfig,
    timeout: Duration,
) -> Result<bonnie_imap::Config, bonnie_imap::ImapError> {
    let security = match c.imap_security {
        ImapSecurity::Plain => Security::Plain,
        ImapSecurity::Starttls => Security::StartTls,
        ImapSecurity::Tls => Security::Tls,
    };
    bonnie_imap::Config::secured(
        &c.imap_address,
        security,
        c.imap_tls_server_name.clone(),
        c.imap_tls_ca_file.as_deref(),
        timeout,
        c.imap_max_literal_bytes,
    )
}

/// One connection to Cyrus as the `[collector]` table's admin.
pub fn imap_pool(config: &Config) -> anyhow::Result<Pool> {
    let c = &config.collector;
    let imap = imap_config(c, Duration::from_millis(c.imap_timeout_ms))
        .with_context(|| format!("[collector] IMAP settings for {}", c.imap_address))?;
    Ok(Pool::new(
        imap,
        Credentials {
            admin: c.imap_admin.clone(),
            password: c.imap_password.clone(),
        },
    ))
}

/// Holds the lock of restores into `user`'s mailbox ([`bonnie_core::run_lock`], in the runs'
/// state folder) for as long as it lives: one restore into a mailbox at a time, whether
/// `bonnie restore` or bonnie-api's `restore.start` runs it, since two at once would each find
/// a message missing and append it twice. A dry run writes nothing and needs none.
pub fn lock_mailbox(
    config: &Config,
    user: &str,
) -> Result<bonnie_core::run_lock::RunLock, bonnie_core::run_lock::RunLockError> {
    // Logins compare in any case; a digest keeps any login a plain file name.
    let login = payload::digest(user.to_lowercase().as_bytes());
    bonnie_core::run_lock::acquire(
        &config.run_state_dir(),
        &format!("restore-into-{}", &login[..16]),
        &format!("restore into {user}'s mailbox"),
    )
}

/// What the caller of a restore keeps of it.
pub trait Journal {
    /// Keeps the run's state as it stands (a dry run keeps none): a rerun continues from it.
    fn keep(&mut self, state: &RunState) -> anyhow::Result<()>;
    /// Records a step of the restore (`restore-folder`) in the audit log, counting `count`.
    fn step(&mut self, action: &str, params: Value, count: u64) -> anyhow::Result<()>;
    /// One more message of the snapshot handled.
    fn advanced(&mut self);
}

/// How a restore runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Say what would be done; change nothing.
    pub dry_run: bool,
    /// At most this many messages appended a second (more than 0).
    pub rate: f64,
}

/// A message appended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Appended {
    /// Its payload's digest.
    pub digest: String,
    /// Its UID in the archived folder at the moment.
    pub old_uid: u64,
    /// Its UID in the target (APPENDUID), when the server told it.
    pub new_uid: Option<u32>,
}

/// A message not restored, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refused {
    /// The target folder.
    pub folder: String,
    /// Its payload's digest.
    pub digest: String,
    /// Its UID in the archived folder at the moment.
    pub old_uid: u64,
    /// Why.
    pub reason: String,
}

/// One folder's restore.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderRun {
    /// Its name at the moment.
    pub source: String,
    /// Where it goes.
    pub target: String,
    /// True if the target was created (or, in a dry run, would be).
    pub created: bool,
    /// The target's UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// Messages the snapshot has in it.
    pub messages: u64,
    /// Messages the target held already.
    pub present: u64,
    /// Older revisions of groupware objects the folder also held then, left out.
    pub superseded: u64,
    /// Messages appended (in a dry run: that would be).
    pub appended: Vec<Appended>,
    /// Messages appended whose keywords past Cyrus's limit were left off.
    pub flags_left_off: Vec<Appended>,
    /// Other revisions of a restored groupware object the target held, removed so that
    /// clients see one revision per object UID: their UIDs there.
    #[serde(default)]
    pub replaced: Vec<u32>,
    /// True once every message of it is there.
    pub done: bool,
}

/// A restore's state, kept by its caller while it runs (a state file, a job).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// The run's id.
    pub run: String,
    /// The user.
    pub user: String,
    /// The moment (ms).
    pub as_of_ms: i64,
    /// When it started and, once complete, finished (ms).
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Each folder.
    pub folders: Vec<FolderRun>,
    /// The messages not restored.
    pub refused: Vec<Refused>,
    /// Bytes appended.
    pub bytes: u64,
}

impl RunState {
    /// Messages appended (or, in a dry run, to be).
    pub fn appended(&self) -> u64 {
        self.folders.iter().map(|f| f.appended.len() as u64).sum()
    }

    /// Messages the targets held already.
    pub fn present(&self) -> u64 {
        self.folders.iter().map(|f| f.present).sum()
    }
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
struct Restore<'a> {
    storage: &'a StorageClient,
    journal: &'a mut dyn Journal,
    identity: Identity,
    pool: Pool,
    dry_run: bool,
    rate: f64,
    next_append: Instant,
    /// When the state was last kept.
    kept: Instant,
}

impl Restore<'_> {
    /// The archived bytes of payload `digest`, if the archive holds them.
    fn payload(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.storage
            .get_payload(digest)
            .map_err(|e| anyhow::anyhow!("reading payload {digest} from the storage: {e}"))
    }

    /// Has the caller keep the state (a dry run keeps none).
    fn keep(&mut self, state: &RunState) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.journal.keep(state)
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
            // A folder put back under its own name gets back who could read it; a copy
            // elsewhere (Restored/...) stays the user's alone.
            if target == folder.name {
                for (subject, rights) in &folder.acl {
                    self.pool
                        .run(&identity, |c| c.setacl(&target, subject, rights))
                        .with_context(|| {
                            format!(
                                "SETACL {target} {subject} {rights} as {identity:?} at {address}"
                            )
                        })?;
                }
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
                    let entry = UNIQUEID_ENTRY;
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
            self.journal.advanced();
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
        if !created && !self.dry_run {
            let replaced = self.replace_other_revisions(&target, folder)?;
            state.folders[index].replaced.extend(replaced);
        }
        state.folders[index].done = true;
        self.keep(state)?;
        if !self.dry_run {
            let record = &state.folders[index];
            self.journal.step(
                "restore-folder",
                json!({
                    "run": state.run, "user": state.user, "as_of": format_rfc3339_ms(state.as_of_ms),
                    "source": record.source, "target": record.target, "uidvalidity": record.uidvalidity,
                    "appended": record.appended.iter().map(|a| json!([a.old_uid, a.new_uid, a.digest])).collect::<Vec<_>>(),
                    "present": record.present,
                    "replaced": record.replaced,
                }),
                record.appended.len() as u64,
            )?;
        }
        Ok(())
    }
}

impl Restore<'_> {
    /// In a target that held messages already (a live calendar, `--into original`), the other
    /// revisions of each groupware object restored into it: flagged `\Deleted` and expunged by
    /// UID (UIDPLUS) once the restored one is there, so that clients see one revision per
    /// object UID, never two (as a Kolab client replaces a revision it updates). What is
    /// removed stays in the archive. Their UIDs.
    fn replace_other_revisions(
        &mut self,
        target: &str,
        folder: &FolderAt,
    ) -> anyhow::Result<Vec<u32>> {
        let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for message in &folder.messages {
            let doc = self
                .storage
                .get(ITEMS, &message.digest)
                .map_err(|e| anyhow::anyhow!("the item document of {}: {e}", message.digest))?;
            if let Some(uid) = doc.and_then(|d| d.json().ok()).and_then(|d| {
                d.get("object_uid")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }) {
                objects
                    .entry(uid)
                    .or_default()
                    .insert(message.digest.clone());
            }
        }
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let (identity, address) = (self.identity.clone(), self.pool.config().address.clone());
        let target_name = target.to_string();
        let replaced = self
            .pool
            .run(&identity, |c| {
                c.select(&target_name)?;
                let mut others = Vec::new();
                for (object, restored) in &objects {
                    // A Kolab object's Subject is its UID; its bytes tell the revision.
                    let candidates = c.uid_search_header("Subject", object)?;
                    if candidates.is_empty() {
                        continue;
                    }
                    let set: Vec<String> = candidates.iter().map(u32::to_string).collect();
                    for mut f in c.uid_fetch(&set.join(","), "(UID BODY.PEEK[])", None)? {
                        let (Some(uid), Some(body)) = (f.uid, f.sections.remove("")) else {
                            continue;
                        };
                        let same_object =
                            bonnie_model::objects::kolab_object(&bonnie_mail::headers(&body))
                                .is_some_and(|(_, uid)| &uid == object);
                        if same_object && !restored.contains(&payload::digest(&body)) {
                            others.push(uid);
                        }
                    }
                }
                if !others.is_empty() {
                    let set: Vec<String> = others.iter().map(u32::to_string).collect();
                    c.uid_store(&set.join(","), StoreMode::Add, &["\\Deleted"], None)?;
                    c.uid_expunge(&set.join(","))?;
                }
                Ok(others)
            })
            .with_context(|| {
                format!("replacing other revisions in {target} as {identity:?} at {address}")
            })?;
        Ok(replaced)
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

/// The restore's state at its start: each folder of the snapshot and where it goes, with what
/// an unfinished run of it (`previous`) created.
pub fn start(snapshot: &Snapshot, destination: &Destination, mut state: RunState) -> RunState {
    let previous = std::mem::take(&mut state.folders);
    state.folders = snapshot
        .folders
        .iter()
        .map(|f| {
            let target = plan::target(snapshot, destination, &f.name);
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
    state
}

/// Restores `snapshot` as `state` (from [`start`]) says, into Cyrus over `pool` as the
/// state's user; each folder's outcome kept in `state` and told to `journal`.
pub fn execute(
    storage: &StorageClient,
    pool: Pool,
    snapshot: &Snapshot,
    state: &mut RunState,
    options: Options,
    journal: &mut dyn Journal,
) -> anyhow::Result<()> {
    let mut restore = Restore {
        storage,
        journal,
        identity: Identity::User(state.user.clone()),
        pool,
        dry_run: options.dry_run,
        rate: options.rate,
        next_append: Instant::now(),
        kept: Instant::now(),
    };
    restore.keep(state)?;
    let identity = restore.identity.clone();
    let mut existing = listed(&mut restore.pool, &identity)?;
    for (index, folder) in snapshot.folders.iter().enumerate() {
        restore.folder(state, index, folder, &existing)?;
        existing.insert(state.folders[index].target.clone());
    }
    Ok(())
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
}
