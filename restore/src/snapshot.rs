//! A user's folders and messages as they stood at one moment, read from the archive.
//!
//! - The folders are the user's folder views (`folders-current`, by owner). A folder existed
//!   at T when the archive had seen it by then (its earliest state, rename or event) and it was
//!   not deleted by then. Its name at T follows its renames: the old name of the first rename
//!   after T, else where the events up to T put it, then the renames of folders above it since
//!   (a subfolder renamed with its parent has no rename event of its own).
//! - The messages in a folder at T are those whose state ([`bonnie_discovery::state`]) has a
//!   place in that folder (by uniqueid) active at T, with the flags they had there then. The
//!   candidates are the payloads the archive recorded placed in the folder
//!   (`message-places`); a copy or move into it names no payload there, so when the folder
//!   has one, every payload placed in any of the user's folders is a candidate (the copy's
//!   original is among them).
//! - A message's INTERNALDATE is the one its archived arrival kept (`payloads[].internaldate_ms`
//!   from the collector, or back-fill's marker `internaldate`), else its first arrival's time
//!   (a live append or delivery is filed at the moment Cyrus notifies it).
//! - A groupware folder gets one revision per object: where the folder held two revisions
//!   of one object UID at T (an update appends the new one before the old is expunged), the
//!   one not flagged `\Deleted` with the highest UID; the others are listed as superseded.
//! - A folder's annotations (its Kolab folder type, comments) are its latest state's at or
//!   before T (`folders`, the states the collector's GETMETADATA told).
//! - When no moment is given, it is now, or for a folder or message deleted since, just before
//!   its deletion.

use std::collections::{BTreeMap, BTreeSet};

use bonnie_core::{imap::uri::Mailbox, time::now_ms};
use bonnie_discovery::{item::ItemState, state::state};
use bonnie_imap::internal_date_ms;
use bonnie_model::{
    folder_view::{Facts, Place},
    folders,
    message_places::PLACES,
    record::BACKFILL_MARKER,
};
use bonnie_plugin_api::{
    items::ITEMS,
    storage::{RecordQuery, StorageClient},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::RestoreError;

/// The collection of the event log.
const LOG: &str = "log";
/// The log's index term of the entries naming a payload.
const PAYLOAD_TERM: &str = "payload";
/// The field of a payload entry holding its INTERNALDATE (ms), as the worker keeps it.
const INTERNALDATE_FIELD: &str = bonnie_model::collect::INTERNALDATE_FIELD;
/// The annotations a restored folder gets back: Kolab's (its folder type, so that a restored
/// calendar or address book is one) and the comments. Cyrus's own (`/shared/vendor/cmu/...`)
/// are the server's to set.
pub const RESTORED_ANNOTATIONS: [&str; 4] = [
    "/shared/vendor/kolab/",
    "/private/vendor/kolab/",
    "/shared/comment",
    "/private/comment",
];
/// Flags APPEND cannot set: the server's own.
const SERVER_FLAGS: [&str; 1] = ["\\Recent"];

/// What is restored of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selector {
    /// A folder by its name as the user saw it at the moment, and its subfolders when
    /// `recursive`.
    Folder {
        /// The folder's name (`Archive`, `Работа/Проекты`, `INBOX`).
        name: String,
        /// With every folder below it.
        recursive: bool,
    },
    /// One message: its payload digest, or its Message-ID (with or without angle brackets).
    Message(String),
}

/// A message as it stood in a folder at the moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAt {
    /// Its payload's digest (the archive's key of its bytes).
    pub digest: String,
    /// Its UID in the folder then.
    pub uid: u64,
    /// Its flags then (system flags spelled as RFC 9051 does, keywords as they are).
    pub flags: Vec<String>,
    /// Its INTERNALDATE (ms since the epoch).
    pub internaldate_ms: i64,
    /// True when the archive kept the INTERNALDATE; false when it is the arrival's time.
    pub internaldate_kept: bool,
    /// Its size in bytes, when the archive recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A folder as it stood at the moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderAt {
    /// Its name as its owner saw it then.
    pub name: String,
    /// Cyrus's mailboxID.
    pub uniqueid: String,
    /// When it was deleted, if it was (at or after the moment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
    /// Its annotations a restore sets on the folder it creates ([`RESTORED_ANNOTATIONS`]),
    /// as the latest folder state at or before the moment had them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Its ACL then (identifier → rights, as Cyrus names them), as the latest folder state at
    /// or before the moment had it: set again only on a folder put back under its own name
    /// (a copy elsewhere is the user's alone).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acl: BTreeMap<String, String>,
    /// Its messages then, by UID.
    pub messages: Vec<MessageAt>,
    /// Older revisions of a groupware object the folder also held then (an update appends
    /// the new revision before the old one is expunged): left out, so that clients get one
    /// revision per object UID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<MessageAt>,
}

/// A user's folders and messages at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The user (the folders' owner, as Cyrus names them: `john.doe@example.org`).
    pub user: String,
    /// The moment (ms since the epoch).
    pub as_of_ms: i64,
    /// The name of the folder selected (a message's folder for a message), the root of the
    /// restored tree.
    pub root: String,
    /// The folders, by name; a folder's parents before it.
    pub folders: Vec<FolderAt>,
}

impl Snapshot {
    /// How many messages it holds.
    pub fn message_count(&self) -> usize {
        self.folders.iter().map(|f| f.messages.len()).sum()
    }
}

/// One of the user's folders as its view tells it.
struct View {
    uniqueid: String,
    facts: Facts,
    /// When the archive first knew it: its earliest state, rename or event.
    first_ms: Option<i64>,
}

/// The name a folder place has as its owner sees it.
fn place_name(place: &Place) -> String {
    place
        .name
        .clone()
        .unwrap_or_else(|| Mailbox::from_path(&place.path).name)
}

impl View {
    /// When it was deleted, if it is.
    fn deleted_ms(&self) -> Option<i64> {
        self.facts
            .deleted()
            .then_some(self.facts.deleted_ms)
            .flatten()
    }

    /// Its name at `t` by its own events, and the time of what tells it (`None` when that
    /// is later than `t`: the name it had until its next rename, or its first event).
    fn own_name_at(&self, t: i64) -> Option<(String, Option<i64>)> {
        let renames = &self.facts.renames;
        if let Some(next) = renames.iter().filter(|r| r.at_ms > t).min() {
            let name = next
                .from_name
                .clone()
                .unwrap_or_else(|| Mailbox::from_path(&next.from).name);
            return Some((name, None));
        }
        let last = renames.iter().filter(|r| r.at_ms <= t).max();
        let left = |path: &str| renames.iter().any(|r| r.at_ms <= t && r.from == path);
        // Where events up to `t` saw it after its last rename, the latest; a path seen only
        // after `t` tells nothing of it.
        let seen = self
            .facts
            .places
            .values()
            .filter(|s| s.at_ms <= t && !left(&s.place.path))
            .filter(|s| last.is_none_or(|r| s.at_ms >= r.at_ms))
            .max();
        match (seen, last) {
            (Some(seen), _) => Some((place_name(&seen.place), Some(seen.at_ms))),
            (None, Some(last)) => Some((place_name(&last.to), Some(last.at_ms))),
            (None, None) => self
                .facts
                .places
                .values()
                .min()
                .map(|s| (place_name(&s.place), None)),
        }
    }

    /// Every path the folder was known at.
    fn paths(&self) -> BTreeSet<&str> {
        self.facts
            .places
            .keys()
            .map(String::as_str)
            .chain(
                self.facts
                    .renames
                    .iter()
                    .flat_map(|r| [r.from.as_str(), r.to.path.as_str()]),
            )
            .collect()
    }
}

/// Reads what the archive knows of one user.
struct Reader<'a> {
    storage: &'a StorageClient,
    user: &'a str,
    views: Vec<View>,
}

impl<'a> Reader<'a> {
    /// A reader of `user`'s folders, their views read.
    fn new(storage: &'a StorageClient, user: &'a str) -> Result<Self, RestoreError> {
        let found = storage
            .query(&RecordQuery::all_with(folders::CURRENT, "owner", user))
            .map_err(RestoreError::storage(format!("the folders of {user}")))?;
        let mut reader = Self {
            storage,
            user,
            views: Vec::new(),
        };
        for record in &found {
            let Ok(Value::Object(view)) = record.json() else {
                continue;
            };
            let mut view = View {
                uniqueid: record.key.to_string(),
                facts: Facts::of_view(&view),
                first_ms: None,
            };
            view.first_ms = reader.first_seen_ms(&view)?;
            reader.views.push(view);
        }
        Ok(reader)
    }

    /// The folder's states (`folders`), each with its time.
    fn states(&self, view: &View) -> Result<Vec<bonnie_plugin_api::Record>, RestoreError> {
        self.storage
            .query(&RecordQuery::all_with(
                folders::FOLDERS,
                "uniqueid",
                &view.uniqueid,
            ))
            .map_err(RestoreError::storage(format!(
                "the states of folder {}",
                view.uniqueid
            )))
    }

    /// The folder's latest state at or before `t`, if the archive has one.
    fn state_at(&self, view: &View, t: i64) -> Result<Option<Value>, RestoreError> {
        let states = self.states(view)?;
        Ok(states
            .iter()
            .filter_map(|s| Some((s.time_ms.into_option()?, s)))
            .filter(|(at, _)| *at <= t)
            .max_by_key(|(at, s)| (*at, s.key.to_string()))
            .and_then(|(_, s)| s.json().ok()))
    }

    /// The ACL of the folder's latest state at or before `t`: its subjects as Cyrus names
    /// them (`acl_subjects`), with their rights.
    fn acl_at(&self, view: &View, t: i64) -> Result<BTreeMap<String, String>, RestoreError> {
        let acl = self
            .state_at(view, t)?
            .and_then(|body| body.get("acl_subjects").and_then(Value::as_object).cloned())
            .unwrap_or_default();
        Ok(acl
            .into_iter()
            .filter_map(|(subject, rights)| Some((subject, rights.as_str()?.to_string())))
            .collect())
    }

    /// The annotations of the folder's latest state at or before `t` a restore sets again.
    fn annotations_at(
        &self,
        view: &View,
        t: i64,
    ) -> Result<BTreeMap<String, String>, RestoreError> {
        let metadata = self
            .state_at(view, t)?
            .and_then(|body| body.get("metadata").and_then(Value::as_object).cloned())
            .unwrap_or_default();
        Ok(metadata
            .into_iter()
            .filter(|(entry, _)| {
                RESTORED_ANNOTATIONS
                    .iter()
                    .any(|kept| entry.starts_with(kept))
            })
            .filter_map(|(entry, value)| Some((entry, value.as_str()?.to_string())))
            .collect())
    }

    /// A folder's name at `t`: its own events' (see the module's documentation), then the
    /// renames of the folders above it since (Cyrus notifies the rename of the folder it was
    /// asked to rename, not of the subfolders that go with it).
    fn name_at(&self, view: &View, t: i64) -> Option<String> {
        let (mut name, since) = view.own_name_at(t)?;
        // Cyrus 3.6 notifies the old path's MailboxModseq after the rename, so an event at
        // the old path after a rename above does not say the folder stayed: a rename above
        // counts for a folder that existed before it.
        let (Some(_), Some(first_ms)) = (since, view.first_ms) else {
            return Some(name);
        };
        let mut above: Vec<&bonnie_model::folder_view::Rename> = self
            .views
            .iter()
            .filter(|v| v.uniqueid != view.uniqueid)
            .flat_map(|v| v.facts.renames.iter())
            .filter(|r| r.at_ms > first_ms && r.at_ms <= t)
            .collect();
        above.sort();
        for rename in above {
            let from = rename
                .from_name
                .clone()
                .unwrap_or_else(|| Mailbox::from_path(&rename.from).name);
            if let Some(rest) = name.strip_prefix(&format!("{from}/")) {
                name = format!("{}/{rest}", place_name(&rename.to));
            }
        }
        Some(name)
    }

    /// When the archive first knew the folder: its earliest state, rename or event.
    fn first_seen_ms(&self, view: &View) -> Result<Option<i64>, RestoreError> {
        Ok(self
            .states(view)?
            .iter()
            .filter_map(|s| s.time_ms.into_option())
            .chain(view.facts.renames.iter().map(|r| r.at_ms))
            .chain(view.facts.places.values().map(|s| s.at_ms))
            .min())
    }

    /// True if the folder existed at `t`.
    fn existed_at(&self, view: &View, t: i64) -> bool {
        view.first_ms.is_some_and(|first| first <= t) && view.deleted_ms().is_none_or(|d| d > t)
    }

    /// The moment a folder selection is read at when none is given: now when a folder of
    /// that name is there, else just before the latest deletion of one that had it.
    fn default_moment(&self, name: &str) -> Result<i64, RestoreError> {
        let now = now_ms();
        if self
            .views
            .iter()
            .any(|v| v.deleted_ms().is_none() && self.name_at(v, now).as_deref() == Some(name))
        {
            return Ok(now);
        }
        self.views
            .iter()
            .filter_map(|v| v.deleted_ms().map(|d| (v, d - 1)))
            .filter(|(v, before)| self.name_at(v, *before).as_deref() == Some(name))
            .map(|(_, before)| before)
            .max()
            .ok_or_else(|| {
                RestoreError::NotFound(format!(
                    "the archive knows no folder {name:?} of {}",
                    self.user
                ))
            })
    }

    /// The payloads the archive recorded placed in the folder, and whether a place there
    /// names none (a copy or move in).
    fn placed(&self, view: &View) -> Result<(BTreeSet<String>, bool), RestoreError> {
        let query = RecordQuery {
            collection: PLACES.to_string(),
            key_prefix: Some(format!("{}\u{1f}", view.uniqueid)),
            all: true,
            ..RecordQuery::default()
        };
        let found = self
            .storage
            .query(&query)
            .map_err(RestoreError::storage(format!(
                "the messages placed in folder {}",
                view.uniqueid
            )))?;
        let mut digests = BTreeSet::new();
        let mut unnamed = false;
        for place in &found {
            let body = place.json().unwrap_or_default();
            let text = |field: &str| body.get(field).and_then(Value::as_str);
            let named = match text("digest") {
                Some(digest) => Some(digest.to_string()),
                None => self.logged_digest(text("job"), &place.key)?,
            };
            match named {
                Some(digest) => {
                    digests.insert(digest);
                }
                None => unnamed = true,
            }
        }
        Ok((digests, unnamed))
    }

    /// The payload the log entry `job` placed at `key` (`<uniqueid>\u{1f}<UIDVALIDITY>\u{1f}<UID>`),
    /// when the place was recorded before its payload was kept.
    fn logged_digest(&self, job: Option<&str>, key: &str) -> Result<Option<String>, RestoreError> {
        let (Some(job), Some(uid)) = (
            job,
            key.rsplit('\u{1f}').next().and_then(|u| u.parse().ok()),
        ) else {
            return Ok(None);
        };
        let entry = self
            .storage
            .get(LOG, job)
            .map_err(RestoreError::storage(format!("log entry {job}")))?;
        Ok(entry
            .and_then(|e| match serde_json::from_str(e.body.as_str()) {
                Ok(Value::Object(logged)) => Some(logged),
                _ => None,
            })
            .and_then(|logged| bonnie_model::collect::kept_digest(&logged, uid)))
    }

    /// The messages each folder (by uniqueid) held at `t`, from the candidates' states.
    fn messages(
        &self,
        folders: &[&View],
        t: i64,
    ) -> Result<BTreeMap<String, Vec<MessageAt>>, RestoreError> {
        let mut candidates = BTreeSet::new();
        let mut widen = false;
        for view in folders {
            let (digests, unnamed) = self.placed(view)?;
            candidates.extend(digests);
            widen |= unnamed;
        }
        if widen {
            for view in &self.views {
                candidates.extend(self.placed(view)?.0);
            }
        }
        let mut held: BTreeMap<String, Vec<MessageAt>> = BTreeMap::new();
        for digest in candidates {
            let item = state(self.storage, &digest)?;
            for view in folders {
                for message in self.in_folder(&digest, &item, view, t)? {
                    held.entry(view.uniqueid.clone()).or_default().push(message);
                }
            }
        }
        for messages in held.values_mut() {
            messages.sort_by(|a, b| (a.uid, &a.digest).cmp(&(b.uid, &b.digest)));
        }
        Ok(held)
    }

    /// The message `digest` (state `item`) as it stood in folder `view` at `t`, once per UID.
    fn in_folder(
        &self,
        digest: &str,
        item: &ItemState,
        view: &View,
        t: i64,
    ) -> Result<Vec<MessageAt>, RestoreError> {
        let paths = view.paths();
        let here: Vec<(usize, u64)> = item
            .places_at(Some(t))
            .filter(|(_, p)| match &p.uniqueid {
                Some(uniqueid) => *uniqueid == view.uniqueid,
                None => paths.contains(p.folder.as_str()),
            })
            .map(|(index, p)| (index, p.uid))
            .collect();
        if here.is_empty() {
            return Ok(Vec::new());
        }
        let arrival = self.arrival(digest)?;
        let first_ms = item.first_seen_ms().unwrap_or(t);
        Ok(here
            .into_iter()
            .map(|(index, uid)| MessageAt {
                digest: digest.to_string(),
                uid,
                flags: item
                    .flags_at(index, Some(t))
                    .into_iter()
                    .filter(|f| !SERVER_FLAGS.contains(&f.as_str()))
                    .collect(),
                internaldate_ms: arrival.internaldate_ms.unwrap_or(first_ms),
                internaldate_kept: arrival.internaldate_ms.is_some(),
                size: arrival.size,
            })
            .collect())
    }

    /// What the archived arrivals of payload `digest` kept of it: its INTERNALDATE and size.
    fn arrival(&self, digest: &str) -> Result<Arrival, RestoreError> {
        let query = RecordQuery {
            collection: LOG.to_string(),
            index: Some((PAYLOAD_TERM.to_string(), digest.to_string())),
            all: true,
            ..RecordQuery::default()
        };
        let entries = self
            .storage
            .query(&query)
            .map_err(RestoreError::storage(format!(
                "the log entries of payload {digest}"
            )))?;
        let mut arrival = Arrival::default();
        for entry in &entries {
            let Ok(logged) = serde_json::from_str::<Value>(entry.body.as_str()) else {
                continue;
            };
            arrival.merge(Arrival::of_entry(&logged, digest));
            if arrival.internaldate_ms.is_some() && arrival.size.is_some() {
                break;
            }
        }
        Ok(arrival)
    }
}

/// What one log entry kept of a payload's arrival.
#[derive(Debug, Default, PartialEq, Eq)]
struct Arrival {
    internaldate_ms: Option<i64>,
    size: Option<u64>,
}

impl Arrival {
    /// What `logged` keeps of payload `digest`: the collector's INTERNALDATE in its payload
    /// entry, else back-fill's (its marker's `internaldate`, as IMAP wrote it); its size.
    fn of_entry(logged: &Value, digest: &str) -> Arrival {
        let payload = logged
            .get("payloads")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("digest").and_then(Value::as_str) == Some(digest));
        let backfilled = || {
            logged
                .get(BACKFILL_MARKER)
                .and_then(|m| m.get("internaldate"))
                .and_then(Value::as_str)
                .and_then(internal_date_ms)
        };
        Arrival {
            internaldate_ms: payload
                .and_then(|p| p.get(INTERNALDATE_FIELD))
                .and_then(Value::as_i64)
                .or_else(backfilled),
            size: payload.and_then(|p| p.get("size")).and_then(Value::as_u64),
        }
    }

    /// What `other` knows that this does not.
    fn merge(&mut self, other: Arrival) {
        self.internaldate_ms = self.internaldate_ms.or(other.internaldate_ms);
        self.size = self.size.or(other.size);
    }
}

/// The user's folders and messages `selector` names, at `as_of` (ms; the default moment when
/// `None`).
pub fn snapshot(
    storage: &StorageClient,
    user: &str,
    selector: &Selector,
    as_of: Option<i64>,
) -> Result<Snapshot, RestoreError> {
    let reader = Reader::new(storage, user)?;
    match selector {
        Selector::Folder { name, recursive } => {
            let t = match as_of {
                Some(t) => t,
                None => reader.default_moment(name)?,
            };
            folder_snapshot(&reader, name, *recursive, t)
        }
        Selector::Message(id) => message_snapshot(&reader, id, as_of),
    }
}

/// The folder `name` (and those below it when `recursive`) at `t`.
fn folder_snapshot(
    reader: &Reader<'_>,
    name: &str,
    recursive: bool,
    t: i64,
) -> Result<Snapshot, RestoreError> {
    let below = format!("{name}/");
    let mut selected: Vec<(String, &View)> = Vec::new();
    for view in &reader.views {
        let Some(then) = reader.name_at(view, t) else {
            continue;
        };
        if (then == name || (recursive && then.starts_with(&below))) && reader.existed_at(view, t) {
            selected.push((then, view));
        }
    }
    if !selected.iter().any(|(then, _)| then == name) {
        return Err(RestoreError::NotFound(format!(
            "{} had no folder {name:?} at {}",
            reader.user,
            bonnie_core::time::format_rfc3339_ms(t)
        )));
    }
    selected.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<&View> = selected.iter().map(|(_, v)| *v).collect();
    let mut held = reader.messages(&views, t)?;
    let mut folders = Vec::new();
    for (then, view) in selected {
        let held = held.remove(&view.uniqueid).unwrap_or_default();
        let (messages, superseded) = one_revision_per_object(reader.storage, held)?;
        folders.push(FolderAt {
            name: then,
            uniqueid: view.uniqueid.clone(),
            deleted_ms: view.deleted_ms(),
            annotations: reader.annotations_at(view, t)?,
            acl: reader.acl_at(view, t)?,
            messages,
            superseded,
        });
    }
    Ok(Snapshot {
        user: reader.user.to_string(),
        as_of_ms: t,
        root: name.to_string(),
        folders,
    })
}

/// True if `text` is a payload digest (SHA-256, lower-case hex).
fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The payloads a message selector names: the digest itself, or those of the items with
/// that Message-ID.
fn named_digests(reader: &Reader<'_>, id: &str) -> Result<Vec<String>, RestoreError> {
    if is_digest(id) {
        return Ok(vec![id.to_ascii_lowercase()]);
    }
    let message_id = if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    };
    let found = reader
        .storage
        .query(&RecordQuery::all_with(ITEMS, "message_id", &message_id))
        .map_err(RestoreError::storage(format!(
            "the items with Message-ID {message_id}"
        )))?;
    Ok(found.iter().map(|r| r.key.to_string()).collect())
}

/// Splits a folder's messages into those restored and the older revisions of groupware
/// objects (by the object UID of their item documents): per object, the revision not flagged
/// `\Deleted` with the highest UID (the latest appended) is kept.
fn one_revision_per_object(
    storage: &StorageClient,
    messages: Vec<MessageAt>,
) -> Result<(Vec<MessageAt>, Vec<MessageAt>), RestoreError> {
    let mut by_object: BTreeMap<String, Vec<MessageAt>> = BTreeMap::new();
    let mut kept = Vec::new();
    for message in messages {
        let doc = storage
            .get(ITEMS, &message.digest)
            .map_err(RestoreError::storage(format!(
                "the item document of {}",
                message.digest
            )))?;
        let object_uid = doc.and_then(|d| d.json().ok()).and_then(|d| {
            d.get("object_uid")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        match object_uid {
            Some(uid) => by_object.entry(uid).or_default().push(message),
            None => kept.push(message),
        }
    }
    let mut superseded = Vec::new();
    for mut revisions in by_object.into_values() {
        revisions.sort_by_key(|m| (!m.flags.iter().any(|f| f == "\\Deleted"), m.uid));
        if let Some(current) = revisions.pop() {
            kept.push(current);
        }
        superseded.extend(revisions);
    }
    kept.sort_by(|a, b| (a.uid, &a.digest).cmp(&(b.uid, &b.digest)));
    superseded.sort_by(|a, b| (a.uid, &a.digest).cmp(&(b.uid, &b.digest)));
    Ok((kept, superseded))
}

/// The item's history without the places restores filed copies of it in (their flag changes
/// go with them).
fn own_history(storage: &StorageClient, item: ItemState) -> Result<ItemState, RestoreError> {
    let mut kept = Vec::new();
    let mut index = Vec::new();
    for place in &item.places {
        let restored = match (&place.uniqueid, place.uidvalidity) {
            (Some(uniqueid), Some(uidvalidity)) => {
                crate::restored::is_restored(storage, uniqueid, uidvalidity, place.uid).map_err(
                    RestoreError::storage(format!("the restored places of folder {uniqueid}")),
                )?
            }
            _ => false,
        };
        index.push((!restored).then_some(kept.len()));
        if !restored {
            kept.push(place.clone());
        }
    }
    let flag_changes = item
        .flag_changes
        .into_iter()
        .filter_map(|mut change| {
            change.place = index.get(change.place).copied().flatten()?;
            Some(change)
        })
        .collect();
    Ok(ItemState {
        places: kept,
        flag_changes,
    })
}

/// One message (by digest or Message-ID) in the user's folder it was in at `as_of` (by
/// default now, or just before it was deleted).
fn message_snapshot(
    reader: &Reader<'_>,
    id: &str,
    as_of: Option<i64>,
) -> Result<Snapshot, RestoreError> {
    let mine = |item: &ItemState, t: Option<i64>| {
        item.places_at(t)
            .filter(|(_, p)| p.user == reader.user)
            .map(|(_, p)| p.uniqueid.clone())
            .collect::<Vec<_>>()
    };
    let mut best: Option<(i64, String, ItemState)> = None;
    for digest in named_digests(reader, id)? {
        let item = own_history(reader.storage, state(reader.storage, &digest)?)?;
        if !item.places.iter().any(|p| p.user == reader.user) {
            continue;
        }
        let t = match as_of {
            Some(t) => t,
            None if !mine(&item, None).is_empty() => now_ms(),
            None => match item
                .places
                .iter()
                .filter(|p| p.user == reader.user)
                .filter_map(|p| p.until_ms)
                .max()
            {
                Some(until) => until - 1,
                None => continue,
            },
        };
        if !mine(&item, Some(t)).is_empty() && best.as_ref().is_none_or(|(bt, _, _)| t > *bt) {
            best = Some((t, digest, item));
        }
    }
    let Some((t, digest, item)) = best else {
        return Err(RestoreError::NotFound(format!(
            "the archive knows no message {id:?} in a folder of {}{}",
            reader.user,
            as_of
                .map(|t| format!(" at {}", bonnie_core::time::format_rfc3339_ms(t)))
                .unwrap_or_default()
        )));
    };
    let mut folders = Vec::new();
    for uniqueid in mine(&item, Some(t)).into_iter().flatten() {
        let Some(view) = reader.views.iter().find(|v| v.uniqueid == uniqueid) else {
            continue;
        };
        if folders.iter().any(|f: &FolderAt| f.uniqueid == uniqueid) {
            continue;
        }
        let messages = reader.in_folder(&digest, &item, view, t)?;
        folders.push(FolderAt {
            name: reader.name_at(view, t).unwrap_or_default(),
            uniqueid,
            deleted_ms: view.deleted_ms(),
            annotations: reader.annotations_at(view, t)?,
            acl: reader.acl_at(view, t)?,
            messages,
            superseded: Vec::new(),
        });
    }
    let Some(first) = folders.first() else {
        return Err(RestoreError::NotFound(format!(
            "the archive knows no folder view of message {id:?} of {}",
            reader.user
        )));
    };
    // A message in several folders then: each is restored; the first is the root.
    let root = first.name.clone();
    folders.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Snapshot {
        user: reader.user.to_string(),
        as_of_ms: t,
        root,
        folders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arrival_keeps_the_collectors_internaldate_else_backfills() {
        let live = serde_json::json!({ "payloads": [
            { "uid": 1, "digest": "a", "size": 10, "internaldate_ms": 5000 },
            { "uid": 2, "digest": "b", "size": 20 },
        ]});
        assert_eq!(
            Arrival::of_entry(&live, "a"),
            Arrival {
                internaldate_ms: Some(5000),
                size: Some(10)
            }
        );
        assert_eq!(Arrival::of_entry(&live, "b").internaldate_ms, None);
        let backfilled = serde_json::json!({
            "payloads": [{ "uid": 1, "digest": "a", "size": 10 }],
            BACKFILL_MARKER: { "internaldate": "01-Jan-2026 10:00:00 +0100" },
        });
        assert_eq!(
            Arrival::of_entry(&backfilled, "a").internaldate_ms,
            Some(1_767_258_000_000)
        );
    }
}
