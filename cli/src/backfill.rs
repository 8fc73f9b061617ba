//! `bonnie backfill`: archives what Cyrus already holds. The folders are enumerated through
//! the one IMAP layer with the `[collector]` table's admin (LIST as the admin, then STATUS,
//! GETMETADATA and `UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE)` in UID pages as each
//! folder's owner), and each folder and message the archive does not hold yet goes to the
//! broker as a dealer's notification would: shaped like Cyrus's own MailboxCreate and
//! MessageAppend, timestamped when observed and marked `vnd.bonnie.backfill`, so that the
//! collector fetches the message and the worker archives it, in the verifiable log, like a live
//! one. Job ids come from (folder uniqueid, UIDVALIDITY, UID): the broker keeps one job and the
//! log one entry however many runs submit it. The run is throttled (`--rate`, slowed further
//! while Cyrus answers slowly), resumable (a state file per selection under the var folder),
//! drawn as a progress bar on a terminal and shown by `bonnie status` (the last run's status
//! file).

use std::{
    collections::HashSet,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_core::{
    Config,
    imap::uri::Mailbox,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_dealer::submit::Broker;
use bonnie_imap::{Fetched, Identity, Pool, internal_date_ms};
use bonnie_model::{folders, message_places, record::BACKFILL_MARKER};
use bonnie_plugin_api::storage::StorageClient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Messages asked for per `UID FETCH`: a page, never a whole mailbox in memory.
const UID_PAGE: u32 = 500;
/// Notifications sent before their ACKs are waited for.
const WINDOW: usize = 64;
/// How long the broker has to acknowledge a window.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// A page of FETCH that takes longer than this means Cyrus is busy: the run slows down.
const SLOW_PAGE: Duration = Duration::from_secs(1);

/// Which folders a run walks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Selection {
    /// These users' folders; empty with `all`.
    pub users: Vec<String>,
    /// Every folder, shared ones too.
    pub all: bool,
    /// Only folders whose name (as the owner sees it; the path for shared folders) matches:
    /// `*` any characters, `%` any but `/`.
    pub folder: Option<String>,
    /// Only messages whose INTERNALDATE is at or after this (ms since the epoch).
    pub since_ms: Option<i64>,
}

impl Selection {
    fn wants(&self, mailbox: &Mailbox) -> bool {
        let owned = match &mailbox.owner {
            Some(owner) => self.all || self.users.iter().any(|u| u == owner),
            None => self.all,
        };
        let name = match mailbox.owner {
            Some(_) => &mailbox.name,
            None => &mailbox.path,
        };
        owned && self.folder.as_deref().is_none_or(|p| glob(p, name))
    }

    /// Whether a folder at this admin path is selected.
    pub fn wants_path(&self, path: &str) -> bool {
        self.wants(&Mailbox::from_path(path))
    }

    /// A name for the selection, the same for the same arguments: its state file's.
    fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
    }
}

/// IMAP LIST-like matching: `*` any characters, `%` any but the hierarchy separator `/`.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the job that archives `parts` (folder key, UIDVALIDITY[, UID]): the same in
/// every run, so the broker and the log keep one.
pub fn job_id(kind: &str, parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    format!("{kind}-{}", &hex(&digest)[..40])
}

// The IMAP settings back-fill, reconciliation and restores connect with are bonnie-restore's.
pub use bonnie_restore::run::{UNIQUEID_ENTRY, imap_config, imap_pool};

/// A folder as Cyrus reports it now.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Its place in the admin's namespace (`user/john.doe/Calendar@example.org`).
    pub mailbox: Mailbox,
    /// Cyrus's mailboxID, when GETMETADATA gives it.
    pub uniqueid: Option<String>,
    /// STATUS's UIDVALIDITY.
    pub uidvalidity: u32,
    /// STATUS's UIDNEXT.
    pub uidnext: u32,
    /// STATUS's HIGHESTMODSEQ (CONDSTORE).
    pub highestmodseq: Option<u64>,
    /// STATUS's MESSAGES.
    pub messages: u32,
}

impl Folder {
    /// The key its messages' places and job ids use: the uniqueid, else the path.
    pub fn key(&self) -> &str {
        self.uniqueid.as_deref().unwrap_or(&self.mailbox.path)
    }

    /// Who reads it, and the name they use: the owner (the admin acting for them), else the
    /// admin with the path.
    pub fn reader(&self) -> (Identity, String) {
        match &self.mailbox.owner {
            Some(owner) => (Identity::User(owner.clone()), self.mailbox.name.clone()),
            None => (Identity::Admin, self.mailbox.path.clone()),
        }
    }
}

/// The folders of `selection` as the admin's LIST names them (those that can be selected).
pub fn mailboxes(pool: &mut Pool, selection: &Selection) -> anyhow::Result<Vec<Mailbox>> {
    let address = pool.config().address.clone();
    let listed = pool
        .run(&Identity::Admin, |c| c.list("", "*"))
        .with_context(|| format!("LIST as the admin at {address}"))?;
    Ok(listed
        .into_iter()
        .filter(|entry| {
            !entry
                .attributes
                .iter()
                .any(|a| a.contains("NoSelect") || a.contains("NonExistent"))
        })
        .map(|entry| Mailbox::from_path(&entry.name))
        .filter(|mailbox| selection.wants(mailbox))
        .collect())
}

/// A folder's state now (STATUS, and its uniqueid from GETMETADATA), asked as its reader.
pub fn folder_status(pool: &mut Pool, mailbox: Mailbox) -> Result<Folder, bonnie_imap::ImapError> {
    let mut folder = Folder {
        mailbox,
        uniqueid: None,
        uidvalidity: 0,
        uidnext: 1,
        highestmodseq: None,
        messages: 0,
    };
    let (identity, name) = folder.reader();
    let (status, uniqueid) = pool.run(&identity, |c| {
        let status = c.status(&name)?;
        let metadata = c.getmetadata(&name, &[UNIQUEID_ENTRY]).unwrap_or_default();
        Ok((status, metadata.get(UNIQUEID_ENTRY).cloned()))
    })?;
    folder.uniqueid = uniqueid.filter(|u| is_uniqueid(u));
    folder.uidvalidity = status.uidvalidity.unwrap_or(0);
    folder.uidnext = status.uidnext.unwrap_or(1);
    folder.highestmodseq = status.highestmodseq;
    folder.messages = status.messages.unwrap_or(0);
    Ok(folder)
}

/// Cyrus's mailbox ids are letters, digits, `-` and `_`.
fn is_uniqueid(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Percent-encodes a mailbox path for an IMAP URL as Cyrus writes it (`@` as `%40`).
pub fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a run observed, for the notifications it sends.
pub struct Observer<'a> {
    /// The server name in the URLs (the dealer's host name, as Cyrus's notifications have it).
    pub server: String,
    /// The run's id.
    pub run: &'a str,
}

impl Observer<'_> {
    /// The `vnd.bonnie.backfill` marker: when observed, by which run, and `extra`'s fields.
    pub fn marker(&self, extra: Value) -> Value {
        let mut marker = json!({ "observed_ms": now_ms(), "run": self.run });
        if let (Some(marker), Value::Object(extra)) = (marker.as_object_mut(), extra) {
            marker.extend(extra);
        }
        marker
    }

    /// A MailboxCreate-like record of a folder as it is now.
    pub fn folder_notification(&self, folder: &Folder, how: Value) -> Value {
        let mut n = json!({
            "event": "MailboxCreate",
            "timestamp": format_rfc3339_ms(now_ms()),
            "service": "bonnie-backfill",
            "uri": format!("imap://{}/{};UIDVALIDITY={}", self.server, url_path(&folder.mailbox.path), folder.uidvalidity),
            "uidnext": folder.uidnext,
            "messages": folder.messages,
            BACKFILL_MARKER: self.marker(how),
        });
        if let Some(modseq) = folder.highestmodseq {
            n["modseq"] = json!(modseq);
        }
        if let Some(id) = &folder.uniqueid {
            n["mailboxID"] = json!(id);
        }
        if let Some(owner) = &folder.mailbox.owner {
            n["user"] = json!(owner);
        }
        n
    }

    /// A MessageAppend-like record of one message as it is now; INTERNALDATE kept in the marker.
    pub fn message_notification(&self, folder: &Folder, message: &Fetched, how: Value) -> Value {
        let uid = message.uid.unwrap_or(0);
        let mut marker = json!({ "uidvalidity": folder.uidvalidity, "uid": uid });
        if let Some(date) = &message.internal_date {
            marker["internaldate"] = json!(date);
        }
        if let (Some(m), Value::Object(how)) = (marker.as_object_mut(), how) {
            m.extend(how);
        }
        let mut n = json!({
            "event": "MessageAppend",
            "timestamp": format_rfc3339_ms(now_ms()),
            "service": "bonnie-backfill",
            "uri": format!("imap://{}/{};UIDVALIDITY={}/;UID={uid}", self.server, url_path(&folder.mailbox.path), folder.uidvalidity),
            "messageSize": message.size.unwrap_or(0),
            "flagNames": message.flags.join(" "),
            BACKFILL_MARKER: self.marker(marker),
        });
        if let Some(id) = &folder.uniqueid {
            n["mailboxID"] = json!(id);
        }
        if let Some(owner) = &folder.mailbox.owner {
            n["user"] = json!(owner);
        }
        n
    }
}

/// Sends notifications to the broker a window at a time, at most `rate` a second, and waits
/// for their ACKs.
pub struct Submitter {
    broker: Broker,
    window: Vec<(String, Vec<u8>)>,
    /// Notifications a second; lowered while Cyrus is slow.
    rate: f64,
    started: Instant,
    sent: u64,
    address: String,
}

impl Submitter {
    /// A connection to the broker as this host's dealer (the `[dealer]` table's address,
    /// host and keys).
    pub fn connect(config: &Config, rate: f64) -> anyhow::Result<Self> {
        if rate.is_nan() || rate <= 0.0 {
            bail!("--rate must be more than 0 messages a second");
        }
        let broker = Broker::connect(&config.dealer).with_context(|| {
            format!(
                "cannot connect to the broker at {}",
                config.dealer.broker_address
            )
        })?;
        Ok(Self {
            broker,
            window: Vec::new(),
            rate,
            started: Instant::now(),
            sent: 0,
            address: config.dealer.broker_address.clone(),
        })
    }

    /// Queues one notification; the window goes when full.
    pub fn submit(&mut self, id: String, notification: &Value) -> anyhow::Result<()> {
        // The pace: the n-th notification not before n / rate seconds into the run.
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
        self.sent += 1;
        self.window
            .push((id, notification.to_string().into_bytes()));
        if self.window.len() >= WINDOW {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is queued and waits for every ACK (each notification sent twice at most).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        for attempt in 0..2 {
            let mut waiting = HashSet::new();
            for (id, notification) in &self.window {
                self.broker
                    .send(id, notification)
                    .with_context(|| format!("cannot send to the broker at {}", self.address))?;
                waiting.insert(id.clone());
            }
            let acked = self.broker.acks(&waiting, Instant::now() + ACK_TIMEOUT);
            self.window.retain(|(id, _)| !acked.contains(id));
            if self.window.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                attempt,
                left = self.window.len(),
                "The broker did not acknowledge every back-filled notification; sending them again."
            );
        }
        bail!(
            "the broker at {} did not acknowledge {} notifications within {} s",
            self.address,
            self.window.len(),
            ACK_TIMEOUT.as_secs()
        )
    }

    /// Halves the pace: Cyrus answered slowly.
    fn slow_down(&mut self) {
        self.rate = (self.rate / 2.0).max(1.0);
        self.started = Instant::now();
        self.sent = 0;
    }
}

/// Where a run stands: kept in its state file after every page, so a rerun continues.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The run's id.
    pub run: String,
    /// `backfill` or `reconcile`.
    pub kind: String,
    /// The selection, as given.
    pub selection: Option<Selection>,
    /// When it began (ms since the epoch).
    pub started_ms: i64,
    /// When the state was last written.
    pub updated_ms: i64,
    /// When it finished, once it has.
    pub finished_ms: Option<i64>,
    /// The folders done, by key and UIDVALIDITY.
    pub folders_done: Vec<String>,
    /// The folder being walked and the next UID to ask for there.
    pub current: Option<(String, u32)>,
    /// Folders seen.
    pub folders: u64,
    /// Folder records submitted.
    pub folders_submitted: u64,
    /// Messages seen.
    pub messages: u64,
    /// Message records submitted.
    pub submitted: u64,
    /// Messages the archive held already.
    pub skipped: u64,
    /// Their bytes (RFC822.SIZE) submitted.
    pub bytes: u64,
    /// Folders Cyrus refused to tell of.
    pub refused: Vec<String>,
    /// The process running it, while it runs.
    pub pid: Option<u32>,
}

/// The folder of back-fill and reconciliation states: beside the broker's job store.
pub fn state_dir(config: &Config) -> PathBuf {
    config.run_state_dir()
}

/// The status file `bonnie status` reads: the last run's state.
pub fn status_file(config: &Config) -> PathBuf {
    state_dir(config).join("status.json")
}

/// Writes `state` to `path` (a new file renamed over the old, mode 0600).
pub fn save(path: &Path, state: &RunState) -> anyhow::Result<()> {
    write_private(path, &serde_json::to_vec_pretty(state)?)
}

/// Writes `bytes` to `path`: a new file, mode 0600 in a folder 0700, renamed over the old.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a state file has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    // Made exclusively under a random name beside it, mode 0600, by tempfile.
    let mut temporary = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Holds the selection's lock (`<selection>.lock` in `dir`) for as long as it lives: one
/// back-fill or reconciliation of a selection at a time, whatever the process, as two walks
/// of it would submit the same gaps and race on one state file ([`bonnie_core::run_lock`]).
fn lock_selection(
    dir: &Path,
    selection: &Selection,
) -> anyhow::Result<bonnie_core::run_lock::RunLock> {
    Ok(bonnie_core::run_lock::acquire(
        dir,
        &selection.key(),
        "back-fill or reconciliation of this selection",
    )?)
}

/// The state file at `path`, if there is one (back-fill's, reconciliation's, restore's).
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "the state file {} is damaged: remove it to start over",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// How far the places of the log's entries were recorded: `message_places::place_logged` runs
/// once per archive (entries logged later get theirs from the handlers).
#[derive(Debug, Default, Serialize, Deserialize)]
struct LogPlaced {
    /// Entries from this time on are still to be read.
    from_ms: Option<i64>,
    /// The whole log was read.
    done: bool,
}

/// Records the message places of an archive logged before handlers kept them, once, resuming
/// where an interrupted pass stopped (`places.json` in the state folder).
pub fn place_logged(storage: &StorageClient, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("places.json");
    let read = |path: &Path| -> anyhow::Result<LogPlaced> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged: remove it to read the log again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LogPlaced::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    let mut placed = read(&path)?;
    if placed.done {
        return Ok(());
    }
    let write = |placed: &LogPlaced| -> anyhow::Result<()> {
        write_private(&path, &serde_json::to_vec(placed)?)
    };
    let mut failed = None;
    message_places::place_logged(storage, placed.from_ms, |from_ms, read| {
        tracing::info!(
            entries = read,
            "Recording the message places of the archive's log."
        );
        if let Err(e) = write(&LogPlaced {
            from_ms: Some(from_ms),
            done: false,
        }) {
            failed.get_or_insert(e);
        }
    })
    .map_err(|e| anyhow::anyhow!("the archive's log, read for its message places: {e}"))?;
    if let Some(e) = failed {
        return Err(e);
    }
    placed.done = true;
    write(&placed)
}

/// What `bonnie status` shows of the last back-fill or reconciliation, if any ran here.
pub fn status(config: &Config) -> Option<Value> {
    let state = load::<RunState>(&status_file(config)).ok()??;
    let running = state.finished_ms.is_none()
        && state
            .pid
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    let mut value = serde_json::to_value(&state).ok()?;
    value["running"] = json!(running);
    Some(value)
}

/// The line `bonnie status` prints of it.
pub fn render_status(status: &Value) -> String {
    let state = if status["running"] == true {
        "running".to_string()
    } else if status["finished_ms"].is_i64() {
        format!(
            "finished {}",
            format_rfc3339_ms(status["finished_ms"].as_i64().unwrap_or(0))
        )
    } else {
        "interrupted (run it again to continue)".to_string()
    };
    format!(
        "Last {} {}: {state}; folders {}, messages {} ({} submitted, {} already archived)\n",
        status["kind"].as_str().unwrap_or("backfill"),
        status["run"].as_str().unwrap_or("?"),
        status["folders"],
        status["messages"],
        status["submitted"],
        status["skipped"]
    )
}

/// What a walk does with each folder and message the archive lacks.
pub trait Gaps {
    /// The folder is not in the archive (folder records are submitted for it).
    fn unknown_folder(&mut self, folder: &Folder) -> Value;
    /// The message is not in the archive.
    fn missing_message(&mut self, folder: &Folder, uid: u32) -> Value;
    /// The folder's messages were all walked; `pool` is still its reader's connection.
    fn walked(
        &mut self,
        _folder: &Folder,
        _pool: &mut Pool,
        _storage: &StorageClient,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The storage, opened as bonnie-api does.
pub fn open_storage(config: &Config) -> anyhow::Result<StorageClient> {
    let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
    Ok(StorageClient::new(storage))
}

/// The folders a walk found.
pub struct Walked {
    /// Those Cyrus listed and told the state of.
    pub listed: Vec<Folder>,
    /// The paths it listed but would not tell of (STATUS refused): there, but not walked.
    pub unreadable: Vec<String>,
}

/// One walk of Cyrus against the archive: `kind` is `backfill` or `reconcile`.
pub struct Walk<'a> {
    /// bonnie's configuration.
    pub config: &'a Config,
    /// Which folders.
    pub selection: Selection,
    /// Notifications a second.
    pub rate: f64,
    /// Stop after this many message records (the rest for a rerun).
    pub limit: Option<u64>,
    /// `backfill` or `reconcile`.
    pub kind: &'a str,
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Continue an unfinished run of the same selection (else start anew).
    pub resume: bool,
}

impl Walk<'_> {
    /// Walks the selection, resuming its state file; the final state, and what Cyrus listed
    /// (for reconciliation's vanished folders).
    pub fn run(&self, gaps: &mut dyn Gaps) -> anyhow::Result<(RunState, Walked)> {
        let _walking = lock_selection(&state_dir(self.config), &self.selection)?;
        let path =
            state_dir(self.config).join(format!("{}-{}.json", self.kind, self.selection.key()));
        let mut state = match load::<RunState>(&path)? {
            Some(state) if state.finished_ms.is_none() && self.resume => state,
            _ => RunState {
                run: format!("{}-{}", self.kind, &bonnie_dealer::submit::new_id()[..20]),
                kind: self.kind.to_string(),
                selection: Some(self.selection.clone()),
                started_ms: now_ms(),
                ..RunState::default()
            },
        };
        state.pid = Some(std::process::id());
        state.refused.clear();
        let status_path = status_file(self.config);
        let keep = |state: &mut RunState| -> anyhow::Result<()> {
            state.updated_ms = now_ms();
            save(&path, state)?;
            save(&status_path, state)
        };
        keep(&mut state)?;
        let storage = open_storage(self.config)?;
        place_logged(&storage, &state_dir(self.config))?;
        let mut pool = imap_pool(self.config)?;
        let mut submitter = Submitter::connect(self.config, self.rate)?;
        let observer = Observer {
            server: self.config.dealer.host_name(),
            run: &state.run.clone(),
        };
        let listed = mailboxes(&mut pool, &self.selection)?;
        let mut walked = Walked {
            listed: Vec::new(),
            unreadable: Vec::new(),
        };
        let mut submitted_now = 0u64;
        // Drawn on stderr when it is a terminal (indicatif hides it otherwise).
        let bar = if self.progress {
            indicatif::ProgressBar::new(listed.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} folders, {eta} left  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(self.kind.to_string());
        state.folders = 0;
        // Each folder is asked for its state, then walked, on one connection as its reader:
        // one IMAP login per owner and run.
        'folders: for mailbox in listed {
            let path = mailbox.path.clone();
            let folder = match folder_status(&mut pool, mailbox) {
                Ok(folder) => folder,
                Err(e) if !e.breaks_connection() => {
                    state.refused.push(format!("{path}: {e}"));
                    walked.unreadable.push(path);
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("STATUS of {path}")),
            };
            walked.listed.push(folder.clone());
            let folder = &folder;
            state.folders += 1;
            bar.inc(1);
            let done_key = format!("{}\u{1f}{}", folder.key(), folder.uidvalidity);
            if state.folders_done.contains(&done_key) {
                continue;
            }
            let known = match &folder.uniqueid {
                Some(id) => storage
                    .get(folders::CURRENT, id)
                    .map_err(|e| anyhow::anyhow!("the archive's folders: {e}"))?
                    .is_some(),
                None => false,
            };
            if !known {
                let how = gaps.unknown_folder(folder);
                let id = job_id(
                    "backfill-folder",
                    &[folder.key(), &folder.uidvalidity.to_string()],
                );
                submitter.submit(id, &observer.folder_notification(folder, how))?;
                state.folders_submitted += 1;
            }
            let mut next = match &state.current {
                Some((key, uid)) if *key == done_key => *uid,
                _ => 1,
            };
            let (identity, name) = folder.reader();
            while next < folder.uidnext {
                let last = next.saturating_add(UID_PAGE - 1).min(folder.uidnext - 1);
                let asked = Instant::now();
                let page = pool.run(&identity, |c| {
                    let selected = c.examine(&name)?;
                    let messages = c.uid_fetch(
                        &format!("{next}:{last}"),
                        "(UID FLAGS INTERNALDATE RFC822.SIZE)",
                        None,
                    )?;
                    Ok((selected.uidvalidity, messages))
                });
                // Refused (the folder was deleted, its rights or UIDVALIDITY changed since
                // LIST): the others go on, and the run names it.
                let refused = match &page {
                    Err(e) if !e.breaks_connection() => Some(e.to_string()),
                    Ok((uidvalidity, _)) if *uidvalidity != Some(folder.uidvalidity) => {
                        Some("its UIDVALIDITY changed during the run: run it again".to_string())
                    }
                    _ => None,
                };
                if let Some(why) = refused {
                    state
                        .refused
                        .push(format!("{}: {why}", folder.mailbox.path));
                    submitter.flush()?;
                    state.current = None;
                    keep(&mut state)?;
                    continue 'folders;
                }
                let page = page.with_context(|| {
                    format!("UID FETCH {next}:{last} in {}", folder.mailbox.path)
                })?;
                if asked.elapsed() > SLOW_PAGE {
                    tracing::info!(folder = %folder.mailbox.path, "Cyrus answers slowly; the back-fill slows down.");
                    submitter.slow_down();
                    std::thread::sleep(asked.elapsed());
                }
                let mut messages = page.1;
                messages.sort_by_key(|m| m.uid);
                for message in messages {
                    let Some(uid) = message.uid.filter(|u| (next..=last).contains(u)) else {
                        continue;
                    };
                    if let (Some(since), Some(date)) = (
                        self.selection.since_ms,
                        message.internal_date.as_deref().and_then(internal_date_ms),
                    ) && date < since
                    {
                        continue;
                    }
                    if self.limit.is_some_and(|l| submitted_now >= l) {
                        // Stopped here: the rerun asks again from this UID.
                        submitter.flush()?;
                        state.current = Some((done_key, uid));
                        keep(&mut state)?;
                        return Ok((state, walked));
                    }
                    state.messages += 1;
                    let key = folder.key();
                    if message_places::archived(
                        &storage,
                        key,
                        u64::from(folder.uidvalidity),
                        u64::from(uid),
                    )
                    .map_err(|e| anyhow::anyhow!("the archive's message places: {e}"))?
                    {
                        state.skipped += 1;
                        continue;
                    }
                    let how = gaps.missing_message(folder, uid);
                    let id = job_id(
                        "backfill",
                        &[key, &folder.uidvalidity.to_string(), &uid.to_string()],
                    );
                    submitter.submit(id, &observer.message_notification(folder, &message, how))?;
                    state.submitted += 1;
                    state.bytes += u64::from(message.size.unwrap_or(0));
                    submitted_now += 1;
                }
                submitter.flush()?;
                next = last + 1;
                state.current = Some((done_key.clone(), next));
                keep(&mut state)?;
                bar.set_message(format!(
                    "{}: {} messages, {} submitted, {} archived already",
                    folder.mailbox.path, state.messages, state.submitted, state.skipped
                ));
            }
            submitter.flush()?;
            gaps.walked(folder, &mut pool, &storage)?;
            state.folders_done.push(done_key);
            state.current = None;
            keep(&mut state)?;
        }
        bar.finish_and_clear();
        state.finished_ms = Some(now_ms());
        state.pid = None;
        keep(&mut state)?;
        Ok((state, walked))
    }
}

/// Back-fill's gaps are not records of their own: the marker says how the record came.
struct Backfill;

impl Gaps for Backfill {
    fn unknown_folder(&mut self, _: &Folder) -> Value {
        json!({})
    }
    fn missing_message(&mut self, _: &Folder, _: u32) -> Value {
        json!({})
    }
}

/// The arguments of `bonnie backfill`.
pub struct BackfillArgs<'a> {
    /// `--user`.
    pub users: &'a [String],
    /// `--all`.
    pub all: bool,
    /// `--folder`.
    pub folder: Option<&'a str>,
    /// `--since`.
    pub since: Option<&'a str>,
    /// `--rate`.
    pub rate: f64,
    /// `--limit`.
    pub limit: Option<u64>,
    /// `--json`.
    pub json: bool,
}

/// The selection the arguments name.
pub fn selection(
    users: &[String],
    all: bool,
    folder: Option<&str>,
    since: Option<&str>,
) -> anyhow::Result<Selection> {
    if users.is_empty() && !all {
        bail!("name the users (--user) or --all");
    }
    Ok(Selection {
        users: users.to_vec(),
        all,
        folder: folder.map(str::to_string),
        since_ms: since
            .map(crate::trace::parse_since)
            .transpose()?
            .map(|t| t.as_millisecond()),
    })
}

/// `bonnie backfill`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &BackfillArgs<'_>,
) -> anyhow::Result<()> {
    let selection = selection(args.users, args.all, args.folder, args.since)?;
    let params = json!({
        "users": args.users, "all": args.all, "folder": args.folder, "since": args.since,
        "rate": args.rate, "limit": args.limit,
    });
    let walk = Walk {
        config,
        selection,
        rate: args.rate,
        limit: args.limit,
        kind: "backfill",
        progress: !args.json,
        resume: true,
    };
    let started = Instant::now();
    let (state, _) =
        auditor.change("backfill", params.clone(), None, || walk.run(&mut Backfill))?;
    auditor.step(
        "backfill",
        json!({ "run": state.run, "submitted": state.submitted, "skipped": state.skipped }),
        state.submitted,
    )?;
    print_report(&state, started.elapsed(), args.json);
    Ok(())
}

/// The run's counts, as text or JSON.
fn print_report(state: &RunState, took: Duration, json: bool) {
    let seconds = took.as_secs_f64().max(0.001);
    if json {
        let mut value = serde_json::to_value(state).unwrap_or_default();
        value["seconds"] = json!(seconds);
        value["complete"] = json!(state.finished_ms.is_some());
        println!("{value}");
        return;
    }
    println!(
        "{} {}: {} folders ({} new to the archive), {} messages: {} submitted ({:.1} MB), {} archived already; {:.1} messages/s{}",
        state.kind,
        state.run,
        state.folders,
        state.folders_submitted,
        state.messages,
        state.submitted,
        state.bytes as f64 / 1e6,
        state.skipped,
        state.submitted as f64 / seconds,
        if state.finished_ms.is_some() {
            ""
        } else {
            "; stopped at --limit, run it again to continue"
        }
    );
    for refused in &state.refused {
        println!("  not walked: {refused}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_patterns_match_as_imap_list_does() {
        assert!(glob("*", "Archive/2024"));
        assert!(glob("Archive/*", "Archive/2024/Q1"));
        assert!(glob("Archive/%", "Archive/2024"));
        assert!(!glob("Archive/%", "Archive/2024/Q1"));
        assert!(glob("Entw*", "Entwürfe"));
        assert!(!glob("INBOX", "Calendar"));
    }

    #[test]
    fn job_ids_are_stable_and_distinct_per_place() {
        let a = job_id("backfill", &["abc", "7", "1"]);
        assert_eq!(a, job_id("backfill", &["abc", "7", "1"]));
        assert_ne!(a, job_id("backfill", &["abc", "7", "2"]));
        assert_ne!(a, job_id("backfill", &["abc", "8", "1"]));
        assert!(a.len() <= bonnie_core::protocol::MAX_ID_LEN);
    }

    #[test]
    fn urls_encode_paths_as_cyrus_does() {
        assert_eq!(
            url_path("user/john.doe/Entwürfe@example.org"),
            "user/john.doe/Entw%C3%BCrfe%40example.org"
        );
        let parsed = bonnie_core::imap::uri::parse(&format!(
            "imap://h/{};UIDVALIDITY=5/;UID=3",
            url_path("user/jane/Черновики@example.org")
        ))
        .unwrap();
        assert_eq!(parsed.mailbox.unwrap().name, "Черновики");
        assert_eq!((parsed.uidvalidity, parsed.uid), (Some(5), Some(3)));
    }

    #[test]
    fn internal_dates_are_read() {
        assert_eq!(
            internal_date_ms("01-Jan-2026 10:00:00 +0100"),
            Some(1_767_258_000_000)
        );
    }
}
