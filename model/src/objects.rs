//! Kolab groupware objects (events, tasks, notes, contacts, files) and their revisions.
//!
//! A Kolab object is a message whose `X-Kolab-Type` header is
//! `application/x-vnd.kolab.<type>` and whose `Subject` is the object's UID. The changelog
//! handler keeps *facts*: each message event that touched an object (appended, copied, moved,
//! flagged deleted, expunged) with its time, actor, place and payload digest, plus which
//! message holds which object. The changelog itself is derived from the facts when asked
//! ([`changelog`]), in the events' own time order, so facts processed out of order by parallel
//! workers still give the right history.
//!
//! An object is its *identity*, not its UID: the namespace (owner, or shared root) of the
//! folder it was first appended to, with its type and UID ([`Fact::identity`]). Revisions are
//! linked only through what the archive observed: a copy or move carries the identity of the
//! message it came from, and an append joins the object of that type and UID that was in that
//! folder before (the client's update pattern), settled when the facts are read ([`linked`]),
//! in the events' time order. A message someone else writes with the
//! same UID into their own folder is another object; an append into a personal INBOX, into a
//! folder of another Kolab type, or a delivery (MessageNew) is mail, never a revision.

use std::collections::{HashMap, HashSet};

use bonnie_core::time;
use bonnie_plugin_api::{
    PluginError,
    storage::{Record, RecordQuery, StorageClient},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{record::Object, users};

/// The facts about objects: one record per message of an event that touched an object.
pub const FACTS: &str = "object-facts";
/// Which object a message holds, by its place (`folder`, UIDVALIDITY, UID).
pub const MESSAGES: &str = "object-messages";
/// Facts recorded before the object of their message was known (a deletion or copy taken
/// before the append of that message), indexed by [`NEEDS_FIELD`]: the place whose object
/// they wait for. The fact is recorded as soon as that place's object is.
pub const PENDING: &str = "object-pending";
/// The index term of pending facts: the place key they wait for.
pub const NEEDS_FIELD: &str = "needs";
/// The index term of facts: `<type>/<uid>`.
pub const OBJECT_FIELD: &str = "object";
/// The index term of facts by the login of the folder's owner (none for shared folders).
pub const OWNER_FIELD: &str = "owner";

const TYPE_PREFIX: &str = "application/x-vnd.kolab.";
/// A deletion followed within this time by an append of the same object in the same folder by
/// the same user is one modification (a client that deletes the old version first).
const UPDATE_WINDOW_MS: i64 = 60_000;
/// How long a chain of copies and moves a newly known object is followed along.
const MAX_HOPS: usize = 32;

/// What an event did to a message holding an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactKind {
    /// Appended or delivered (MessageAppend, MessageNew).
    Append,
    /// Copied to another place (MessageCopy).
    Copy,
    /// Moved to another place (MessageMove).
    Move,
    /// Flagged `\Deleted` (MessageTrash).
    Trash,
    /// Removed (MessageExpunge, MessageExpire).
    Expunge,
}

impl FactKind {
    /// The kind of fact an event gives, if it touches messages.
    pub fn of_event(event: &str) -> Option<Self> {
        Some(match event {
            "MessageAppend" | "MessageNew" => Self::Append,
            "MessageCopy" | "vnd.cmu.MessageCopy" => Self::Copy,
            "MessageMove" | "vnd.cmu.MessageMove" => Self::Move,
            "MessageTrash" => Self::Trash,
            "MessageExpunge" | "MessageExpire" => Self::Expunge,
            _ => return None,
        })
    }

    fn removes(self) -> bool {
        matches!(self, Self::Trash | Self::Expunge)
    }
}

/// Where a message is: its folder (the full path, `user/john.doe/Calendar@example.org`), the
/// folder's UIDVALIDITY and the message's UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Place {
    /// The folder's full path.
    pub folder: String,
    /// The folder's UIDVALIDITY, when the notification named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uidvalidity: Option<u64>,
    /// The message's UID.
    pub uid: u64,
}

impl Place {
    /// The login of the folder's owner (`john.doe@example.org`); none for a shared folder.
    pub fn owner(&self) -> Option<String> {
        bonnie_core::imap::uri::Mailbox::from_path(&self.folder).owner
    }

    fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}",
            self.folder,
            self.uidvalidity.map(|v| v.to_string()).unwrap_or_default(),
            self.uid
        )
    }
}

/// One event's effect on one message holding an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// What happened.
    pub kind: FactKind,
    /// The object's type (`event`, `task`, `note`, `contact`, `file`...).
    pub object_type: String,
    /// The object's UID.
    pub object_uid: String,
    /// Which object, whatever its UID: `<namespace>/<type>/<uid>`, the namespace being the
    /// owner's login (or `shared:<root>` for a shared folder) of the folder it was first
    /// appended to; carried along copies and moves. Empty in facts archived before identities
    /// (they are one object per type and UID, as they were).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    /// The event's own time (ms since the epoch, UTC).
    pub time_ms: i64,
    /// The acting user's login, when the event names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Where the message is (after a copy or move: where it went).
    pub place: Place,
    /// Where a copied or moved message came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Place>,
    /// The folder's unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_uniqueid: Option<String>,
    /// The SHA-256 of the message, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The job (dealer submission) the fact came from.
    pub job: String,
}

/// The Kolab object a message holds, from its headers: `(type, uid)`.
pub fn kolab_object(headers: &Object) -> Option<(String, String)> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let kind = header("X-Kolab-Type")?.trim().to_ascii_lowercase();
    let kind = kind.strip_prefix(TYPE_PREFIX)?.trim();
    let uid = header("Subject")?.trim();
    if kind.is_empty() || uid.is_empty() {
        return None;
    }
    Some((kind.to_string(), uid.to_string()))
}

/// What recording an event needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// This many facts were recorded (0: the event touched no known object).
    Facts(usize),
    /// The collector must first run this command (FETCH or HEADER).
    Collect(&'static str),
}

fn uids(record: &Object, field: &str) -> Vec<u64> {
    record
        .get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn text(record: &Object, field: &str) -> Option<String> {
    record
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The message's digest: the one the collector fetched (kept in the storage here, once per
/// content) or the one an earlier handler left in `payloads`.
fn digest_of(
    storage: &StorageClient,
    record: &Object,
    uid: u64,
) -> Result<Option<String>, PluginError> {
    if let Some(kept) = crate::collect::kept_digest(record, uid) {
        return Ok(Some(kept));
    }
    let key = uid.to_string();
    match record.get("messageContent").and_then(|c| c.get(&key)) {
        Some(content) => {
            let bytes = crate::collect::content_bytes(&key, content)?;
            Ok(Some(storage.put_payload(&bytes)?))
        }
        None => Ok(None),
    }
}

/// An object held by a message.
#[derive(Debug, Clone)]
struct Held {
    object_type: String,
    object_uid: String,
    /// [`Fact::identity`].
    identity: String,
    /// The message's digest, when known.
    digest: Option<String>,
}

/// The namespace objects first appended to `folder` belong to: the owner's login, or
/// `shared:<root>` for a shared folder (`shared:team@example.org` for `team/Calendar@example.org`).
fn namespace(folder: &str) -> String {
    let mailbox = bonnie_core::imap::uri::Mailbox::from_path(folder);
    match mailbox.owner {
        Some(owner) => owner,
        None => {
            let root = mailbox.name.split('/').next().unwrap_or_default();
            match mailbox.domain {
                Some(domain) => format!("shared:{root}@{domain}"),
                None => format!("shared:{root}"),
            }
        }
    }
}

/// The identity an object first appended to `folder` gets: [`linked`] joins it, when the
/// facts are read, to an object of that type and UID that was in that folder before.
fn identity_in(folder: &str, object_type: &str, object_uid: &str) -> String {
    format!("{}/{object_type}/{object_uid}", namespace(folder))
}

/// The object recorded as held at `place`.
fn held_at(storage: &StorageClient, place: &Place) -> Result<Option<Held>, PluginError> {
    if let Some(found) = storage.get(MESSAGES, &place.key())? {
        let body = found.json()?;
        if let (Some(kind), Some(uid)) = (body["object_type"].as_str(), body["object_uid"].as_str())
        {
            return Ok(Some(Held {
                object_type: kind.to_string(),
                object_uid: uid.to_string(),
                identity: body["identity"].as_str().unwrap_or_default().to_string(),
                digest: body["digest"].as_str().map(str::to_string),
            }));
        }
    }
    Ok(None)
}

/// The object held at `place`, from what was recorded or from the message's headers (only
/// when `folder` may hold objects of the headers' type; the object is then the one of that
/// type and UID in `folder`).
fn object_at(
    storage: &StorageClient,
    place: &Place,
    headers: Option<&Object>,
    folder: &FolderKind,
) -> Result<Option<Held>, PluginError> {
    if let Some(held) = held_at(storage, place)? {
        return Ok(Some(held));
    }
    Ok(headers_object(headers, folder))
}

/// The object a message's headers name, if the folder may hold objects of that type.
fn headers_object(headers: Option<&Object>, folder: &FolderKind) -> Option<Held> {
    let (object_type, object_uid) = headers.and_then(kolab_object)?;
    if !folder.holds(&object_type) {
        return None;
    }
    let identity = identity_in(&folder.path, &object_type, &object_uid);
    Some(Held {
        object_type,
        object_uid,
        identity,
        digest: None,
    })
}

/// A folder and what it is known to hold.
struct FolderKind {
    path: String,
    /// The Kolab folder type (`event`, `mail`...), when known.
    kind: Option<String>,
}

impl FolderKind {
    /// Whether a message in this folder can be a revision of an object of `object_type`: never
    /// in a personal INBOX (where anyone's mail is delivered), else when the folder's Kolab type
    /// is that type (a distribution list lives in a contact folder) or is not known.
    fn holds(&self, object_type: &str) -> bool {
        let mailbox = bonnie_core::imap::uri::Mailbox::from_path(&self.path);
        if mailbox.owner.is_some() && mailbox.name.eq_ignore_ascii_case("INBOX") {
            return false;
        }
        match self.kind.as_deref() {
            None => true,
            Some(kind) => {
                kind == object_type || (kind == "contact" && object_type == "distribution-list")
            }
        }
    }
}

/// The Kolab type of the record's folder: the one the record carries, else the folder view's.
fn folder_kind(storage: &StorageClient, record: &Object) -> Result<Option<String>, PluginError> {
    if let Some(kind) = text(record, "folder_type") {
        return Ok(Some(kind));
    }
    let Some(uniqueid) = text(record, "folder_uniqueid") else {
        return Ok(None);
    };
    let view = storage
        .get(crate::folders::CURRENT, &uniqueid)?
        .map(|r| r.json())
        .transpose()?;
    Ok(view.and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string)))
}

/// A fact waiting for the object held at `needs`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The fact, its object left empty.
    fact: Fact,
    /// The place whose object it is.
    needs: Place,
}

/// Keeps a fact whose object is not known yet, then records it at once if the object became
/// known meanwhile. The append that makes it known looks for pending facts after it recorded
/// the object, and this looks for the object after it kept the fact: whichever comes second
/// sees the other, so the fact is recorded in either order.
fn put_pending(storage: &StorageClient, pending: &Pending) -> Result<(), PluginError> {
    let body = serde_json::to_value(pending)
        .map_err(|e| PluginError::transient(format!("a fact does not serialize: {e}")))?;
    let key = format!("{}/{}", pending.fact.job, pending.fact.place.key());
    storage.put(
        Record::new(PENDING, &key, &body)
            .at(pending.fact.time_ms)
            .indexed(NEEDS_FIELD, &pending.needs.key()),
    )?;
    if let Some(held) = held_at(storage, &pending.needs)? {
        put_fact(storage, &with_object(&pending.fact, held), 0)?;
    }
    Ok(())
}

fn with_object(fact: &Fact, held: Held) -> Fact {
    Fact {
        object_type: held.object_type,
        object_uid: held.object_uid,
        identity: held.identity,
        digest: fact.digest.clone().or(held.digest),
        ..fact.clone()
    }
}

/// Records the facts that waited for the object now known at `place`.
fn put_waiting(
    storage: &StorageClient,
    place: &Place,
    held: &Held,
    depth: usize,
) -> Result<(), PluginError> {
    let query = RecordQuery::all_with(PENDING, NEEDS_FIELD, &place.key());
    for found in storage.query(&query)? {
        let pending: Pending = serde_json::from_str(found.body.as_str()).map_err(|e| {
            PluginError::transient(format!("pending fact {} is not readable: {e}", found.key))
        })?;
        put_fact(
            storage,
            &with_object(&pending.fact, held.clone()),
            depth + 1,
        )?;
    }
    Ok(())
}

/// Records a fact; a fact that puts the object at a place (an append, copy or move) records
/// that too, and then the facts that waited for it (up to a chain of [`MAX_HOPS`] copies).
fn put_fact(storage: &StorageClient, fact: &Fact, depth: usize) -> Result<(), PluginError> {
    let body = serde_json::to_value(fact)
        .map_err(|e| PluginError::transient(format!("a fact does not serialize: {e}")))?;
    let key = format!("{}/{}", fact.job, fact.place.key());
    let mut record = Record::new(FACTS, &key, &body).at(fact.time_ms).indexed(
        OBJECT_FIELD,
        &format!("{}/{}", fact.object_type, fact.object_uid),
    );
    if let Some(owner) = fact.place.owner() {
        record = record.indexed(OWNER_FIELD, &owner);
    }
    storage.put(record)?;
    if !fact.kind.removes() {
        let held = json!({
            "object_type": fact.object_type,
            "object_uid": fact.object_uid,
            "identity": fact.identity,
            "digest": fact.digest,
        });
        storage.put(Record::new(MESSAGES, &fact.place.key(), &held).at(fact.time_ms))?;
        if depth < MAX_HOPS {
            let held = Held {
                object_type: fact.object_type.clone(),
                object_uid: fact.object_uid.clone(),
                identity: fact.identity.clone(),
                digest: fact.digest.clone(),
            };
            put_waiting(storage, &fact.place, &held, depth)?;
        }
    }
    Ok(())
}

/// Records the facts a normalized message event gives. `may_collect(command)` says whether
/// the collector may still be asked for `command` (enabled, and not failed before).
pub fn record(
    storage: &StorageClient,
    record: &Object,
    job: &str,
    may_collect: impl Fn(&str) -> bool,
) -> Result<Recorded, PluginError> {
    let Some(kind) = record
        .get("event")
        .and_then(Value::as_str)
        .and_then(FactKind::of_event)
    else {
        return Ok(Recorded::Facts(0));
    };
    let Some(folder) = text(record, "folder") else {
        return Ok(Recorded::Facts(0));
    };
    // A delivery is someone's mail, whatever its headers claim: never a revision.
    let delivered = record.get("event").and_then(Value::as_str) == Some("MessageNew");
    let headers = record.get("messageHeaders").and_then(Value::as_object);
    let headers_of = |uid: u64| {
        headers
            .and_then(|h| h.get(&uid.to_string()))
            .and_then(Value::as_object)
    };
    let place = |folder: &str, uidvalidity: Option<u64>, uid: u64| Place {
        folder: folder.to_string(),
        uidvalidity,
        uid,
    };
    let uidvalidity = record.get("uidvalidity").and_then(Value::as_u64);
    let new_uids = uids(record, "uids");
    let old_uids = uids(record, "old_uids");
    let old_folder = text(record, "old_folder");
    let old_uidvalidity = record.get("old_uidvalidity").and_then(Value::as_u64);
    let time_ms = text(record, "@timestamp")
        .and_then(|t| time::parse_rfc3339_ms(&t))
        .unwrap_or_else(time::now_ms);
    // The folder's type, read once and only when headers are to be judged.
    let kind_cell = std::cell::OnceCell::new();
    let here_kind = || -> Result<FolderKind, PluginError> {
        if kind_cell.get().is_none() {
            let _ = kind_cell.set(folder_kind(storage, record)?);
        }
        Ok(FolderKind {
            path: folder.clone(),
            kind: kind_cell.get().cloned().flatten(),
        })
    };
    // Which object each message of the event holds; the places of those not known yet.
    let mut touched = Vec::new();
    let mut unknown = Vec::new();
    for (i, uid) in new_uids.iter().copied().enumerate() {
        let here = place(&folder, uidvalidity, uid);
        let (from, object) = match kind {
            FactKind::Append if delivered => (None, None),
            FactKind::Append => {
                if headers.is_none() && may_collect("FETCH") {
                    return Ok(Recorded::Collect("FETCH"));
                }
                (None, headers_object(headers_of(uid), &here_kind()?))
            }
            FactKind::Copy | FactKind::Move => {
                let from = match (&old_folder, old_uids.get(i)) {
                    (Some(old), Some(old_uid)) => Some(place(old, old_uidvalidity, *old_uid)),
                    _ => None,
                };
                let object = match &from {
                    Some(from) => object_at(storage, from, headers_of(uid), &here_kind()?)?,
                    None => object_at(storage, &here, headers_of(uid), &here_kind()?)?,
                };
                (from, object)
            }
            FactKind::Trash | FactKind::Expunge => (
                None,
                object_at(storage, &here, headers_of(uid), &here_kind()?)?,
            ),
        };
        match object {
            Some(object) => touched.push((here, from, object)),
            // An append without a Kolab object is mail: no fact waits for it.
            None if kind != FactKind::Append => unknown.push((here, from)),
            None => {}
        }
    }
    // Copies, moves and trashed messages are still on the server: their headers tell.
    let ask_headers = matches!(kind, FactKind::Copy | FactKind::Move | FactKind::Trash);
    if !unknown.is_empty() && ask_headers && headers.is_none() && may_collect("HEADER") {
        return Ok(Recorded::Collect("HEADER"));
    }
    let login = text(record, "user");
    let folder_uniqueid = text(record, "folder_uniqueid");
    let fact = |place: Place, from: Option<Place>, held: Held| Fact {
        kind,
        object_type: held.object_type,
        object_uid: held.object_uid,
        identity: held.identity,
        time_ms,
        login: login.clone(),
        place,
        from,
        folder_uniqueid: folder_uniqueid.clone(),
        digest: held.digest,
        job: job.to_string(),
    };
    let mut count = 0;
    for (place, from, mut held) in touched {
        if kind == FactKind::Append {
            held.digest = digest_of(storage, record, place.uid)?;
        }
        put_fact(storage, &fact(place, from, held), 0)?;
        count += 1;
    }
    // A message whose append has not been recorded yet (taken by another thread or worker, or
    // still waiting for its payload): the fact waits for it, unless the folder is known to
    // hold mail only.
    if !unknown.is_empty() && !may_hold_objects(storage, record)? {
        return Ok(Recorded::Facts(count));
    }
    for (place, from) in unknown {
        let needs = from.clone().unwrap_or_else(|| place.clone());
        let nothing = Held {
            object_type: String::new(),
            object_uid: String::new(),
            identity: String::new(),
            digest: None,
        };
        let fact = fact(place, from, nothing);
        put_pending(storage, &Pending { fact, needs })?;
    }
    Ok(Recorded::Facts(count))
}

/// False when the record's folder is known to be a mail folder (by its Kolab folder type),
/// where no message holds an object.
fn may_hold_objects(storage: &StorageClient, record: &Object) -> Result<bool, PluginError> {
    Ok(folder_kind(storage, record)?.as_deref() != Some("mail"))
}

/// The facts about one object.
pub fn facts(
    storage: &StorageClient,
    object_type: &str,
    object_uid: &str,
) -> Result<Vec<Fact>, PluginError> {
    let facts = facts_where(
        storage,
        OBJECT_FIELD,
        &format!("{object_type}/{object_uid}"),
    )?;
    Ok(linked(facts))
}

/// The facts of one type and UID with their identities settled in the events' time order,
/// whatever order they were recorded in: an append into a folder that an object of this type
/// and UID was in before (appended, copied or moved there) is a revision of that object, and a
/// copy, move or deletion of a message is of the object that message held. An append recorded
/// before the move that brought the object into its folder (by another worker) is so still
/// joined to it.
pub fn linked(mut facts: Vec<Fact>) -> Vec<Fact> {
    sort(&mut facts);
    let mut in_folder: HashMap<String, String> = HashMap::new();
    let mut at_place: HashMap<Place, String> = HashMap::new();
    for fact in &mut facts {
        match fact.kind {
            FactKind::Append => {
                if let Some(identity) = in_folder.get(&fact.place.folder) {
                    fact.identity = identity.clone();
                }
            }
            FactKind::Copy | FactKind::Move => {
                if let Some(identity) = fact.from.as_ref().and_then(|from| at_place.get(from)) {
                    fact.identity = identity.clone();
                }
            }
            FactKind::Trash | FactKind::Expunge => {
                if let Some(identity) = at_place.get(&fact.place) {
                    fact.identity = identity.clone();
                }
                continue;
            }
        }
        in_folder.insert(fact.place.folder.clone(), fact.identity.clone());
        at_place.insert(fact.place.clone(), fact.identity.clone());
    }
    facts
}

/// The identity of the object of `facts` that was last in the folder `is_folder` accepts
/// (held there, or copied or moved from there), if any.
pub fn identity_through(facts: &[Fact], is_folder: impl Fn(&str) -> bool) -> Option<String> {
    facts
        .iter()
        .filter(|f| {
            is_folder(&f.place.folder)
                || f.from.as_ref().is_some_and(|from| is_folder(&from.folder))
        })
        .max_by(|a, b| (a.time_ms, &a.job).cmp(&(b.time_ms, &b.job)))
        .map(|f| f.identity.clone())
}

/// The facts about messages in the folders `owner` owns (of every object that was ever
/// there; [`facts`] then gives an object's whole history).
pub fn facts_of_owner(storage: &StorageClient, owner: &str) -> Result<Vec<Fact>, PluginError> {
    facts_where(storage, OWNER_FIELD, owner)
}

fn facts_where(
    storage: &StorageClient,
    field: &str,
    value: &str,
) -> Result<Vec<Fact>, PluginError> {
    // Every fact, however many: the storage pages through them.
    let query = RecordQuery::all_with(FACTS, field, value);
    let mut facts = Vec::new();
    for found in storage.query(&query)? {
        let fact: Fact = serde_json::from_str(found.body.as_str()).map_err(|e| {
            PluginError::transient(format!("stored fact {} is not readable: {e}", found.key))
        })?;
        facts.push(fact);
    }
    Ok(facts)
}

/// Time order; at the same millisecond what adds a message comes before what removes one (a
/// client's update appends the new version, then deletes the old).
fn sort(facts: &mut [Fact]) {
    facts.sort_by(|a, b| {
        (a.time_ms, a.kind.removes(), &a.job, a.place.uid).cmp(&(
            b.time_ms,
            b.kind.removes(),
            &b.job,
            b.place.uid,
        ))
    });
}

/// A change of an object, as clients are shown it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Op {
    /// The object was created.
    Append,
    /// A new version replaced the old one.
    Update,
    /// The object was copied to another folder.
    Copy,
    /// The object was moved to another folder.
    Move,
    /// The object was deleted.
    Delete,
}

/// One revision of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The revision number: the event's time in ms, made strictly increasing per object.
    pub rev: i64,
    /// What happened.
    pub op: Op,
    /// When (the event's own time, ms since the epoch).
    pub time_ms: i64,
    /// Who, by login.
    pub login: Option<String>,
    /// The folder the object is in after the change (or was deleted from).
    pub folder: String,
    /// The message holding that revision.
    pub uid: u64,
    /// The SHA-256 of the message holding that revision.
    pub digest: Option<String>,
}

/// The changelog of one object from its facts (in any order).
pub fn changelog(mut facts: Vec<Fact>) -> Vec<Change> {
    sort(&mut facts);
    // The messages holding the object now, with their digests; every place seen so far.
    let mut live: HashMap<Place, Option<String>> = HashMap::new();
    let mut seen: HashSet<Place> = HashSet::new();
    let mut last_digest: Option<String> = None;
    let mut changes: Vec<Change> = Vec::new();
    for fact in &facts {
        let change = |op: Op, digest: Option<String>| Change {
            rev: fact.time_ms,
            op,
            time_ms: fact.time_ms,
            login: fact.login.clone(),
            folder: fact.place.folder.clone(),
            uid: fact.place.uid,
            digest,
        };
        let here = fact.place.clone();
        match fact.kind {
            FactKind::Append => {
                let op = if live.is_empty() {
                    Op::Append
                } else {
                    Op::Update
                };
                live.insert(here.clone(), fact.digest.clone());
                seen.insert(here);
                last_digest = fact.digest.clone();
                changes.push(change(op, fact.digest.clone()));
            }
            FactKind::Copy | FactKind::Move => {
                let moved = match (&fact.from, fact.kind) {
                    (Some(from), FactKind::Move) => live.remove(from).flatten(),
                    (Some(from), _) => live.get(from).cloned().flatten(),
                    _ => None,
                };
                if let Some(from) = &fact.from {
                    seen.insert(from.clone());
                }
                let digest = moved
                    .or_else(|| fact.digest.clone())
                    .or(last_digest.clone());
                live.insert(here.clone(), digest.clone());
                seen.insert(here);
                let op = if fact.kind == FactKind::Move {
                    Op::Move
                } else {
                    Op::Copy
                };
                changes.push(change(op, digest));
            }
            FactKind::Trash | FactKind::Expunge => {
                // A message never seen before held the object before its history began.
                let removed = live.remove(&here).is_some() || seen.insert(here.clone());
                seen.insert(here);
                if removed && live.is_empty() {
                    changes.push(change(Op::Delete, last_digest.clone()));
                }
            }
        }
    }
    merge_delete_then_append(&mut changes);
    let mut last_rev = i64::MIN;
    for change in &mut changes {
        change.rev = change.rev.max(last_rev.saturating_add(1));
        last_rev = change.rev;
    }
    changes
}

/// A client that deletes the old version before appending the new one made one update.
fn merge_delete_then_append(changes: &mut Vec<Change>) {
    let mut i = 0;
    while i + 1 < changes.len() {
        let (delete, append) = (&changes[i], &changes[i + 1]);
        if delete.op == Op::Delete
            && append.op == Op::Append
            && delete.login == append.login
            && delete.folder == append.folder
            && append.time_ms - delete.time_ms <= UPDATE_WINDOW_MS
        {
            changes[i + 1].op = Op::Update;
            changes.remove(i);
        } else {
            i += 1;
        }
    }
}

/// How a user is shown: `cn <login>` when the directory gave a name, else the login.
pub fn display_user(storage: &StorageClient, login: &str) -> Result<String, PluginError> {
    if let Some(id) = users::resolved_id(storage, login)?
        && let Some(found) = storage.get(users::USERS, &id)?
        && let Some(cn) = found.json()?.get("cn").and_then(Value::as_str)
        && !cn.is_empty()
    {
        return Ok(format!("{cn} <{login}>"));
    }
    Ok(login.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(kind: FactKind, time_ms: i64, folder: &str, uid: u64) -> Fact {
        Fact {
            kind,
            object_type: "event".into(),
            object_uid: "E1".into(),
            time_ms,
            login: Some("john".into()),
            place: Place {
                folder: folder.into(),
                uidvalidity: Some(7),
                uid,
            },
            from: None,
            identity: String::new(),
            folder_uniqueid: None,
            digest: Some(format!("d{uid}")),
            job: format!("job-{time_ms}"),
        }
    }

    fn moved(time_ms: i64, from: (&str, u64), to: (&str, u64)) -> Fact {
        Fact {
            from: Some(Place {
                folder: from.0.into(),
                uidvalidity: Some(7),
                uid: from.1,
            }),
            digest: None,
            ..fact(FactKind::Move, time_ms, to.0, to.1)
        }
    }

    fn ops(changes: &[Change]) -> Vec<Op> {
        changes.iter().map(|c| c.op).collect()
    }

    /// A real SQLite storage in a temporary folder.
    fn storage() -> (tempfile::TempDir, StorageClient) {
        let dir = tempfile::tempdir().unwrap();
        let store = bonnie_sqlite_storage::SqliteStorage::open(&dir.path().join("b.db"), 5000);
        let client = StorageClient::new(bonnie_plugin_api::plugin::storage_box(store.unwrap()));
        (dir, client)
    }

    /// A normalized notification of `event` on UID `uid` of john's Calendar (or `folder`).
    fn event(event: &str, at: &str, folder: &str, uid: u64, extra: Value) -> Object {
        let uri = format!("imap://h/user/john.doe/{folder}%40example.org;UIDVALIDITY=7");
        let mut n: Object = serde_json::from_value(json!({
            "event": event, "timestamp": at, "uri": uri, "uidset": uid.to_string(),
            "user": "john.doe@example.org",
        }))
        .unwrap();
        n.extend(extra.as_object().unwrap().clone());
        crate::record::normalize(&mut n, 0);
        n
    }

    fn kolab_append(uid: u64) -> Object {
        let headers = json!({ "X-Kolab-Type": "application/x-vnd.kolab.event", "Subject": "EV-1" });
        event(
            "MessageAppend",
            "2026-11-28T10:00:00.000Z",
            "Calendar",
            uid,
            json!({ "messageHeaders": { uid.to_string(): headers } }),
        )
    }

    /// The Expunge of john's Calendar UID 1 at 10:05, after its append at 10:00.
    fn calendar_expunge() -> Object {
        event(
            "MessageExpunge",
            "2026-11-28T10:05:00.000Z",
            "Calendar",
            1,
            json!({}),
        )
    }

    fn history(storage: &StorageClient) -> Vec<Op> {
        ops(&changelog(super::facts(storage, "event", "EV-1").unwrap()))
    }

    /// A normalized `event` of message `uid` holding the Kolab event EV-1 in the folder at
    /// `path` (`user/jane.doe/Calendar@example.org`), by `user`, the folder of Kolab type `kind`.
    fn kolab_at(event: &str, at: &str, path: &str, uid: u64, user: &str, kind: &str) -> Object {
        let uri = format!("imap://h/{};UIDVALIDITY=7", path.replace('@', "%40"));
        let headers = json!({ "X-Kolab-Type": "application/x-vnd.kolab.event", "Subject": "EV-1" });
        let mut n: Object = serde_json::from_value(json!({
            "event": event, "timestamp": at, "uri": uri, "uidset": uid.to_string(), "user": user,
            "messageHeaders": { uid.to_string(): headers },
        }))
        .unwrap();
        crate::record::normalize(&mut n, 0);
        n.insert("folder_type".into(), json!(kind));
        n
    }

    #[test]
    fn objects_are_told_apart_by_identity_not_by_uid() {
        for update_first in [false, true] {
            told_apart(update_first);
        }
    }

    /// The scenario of [`objects_are_told_apart_by_identity_not_by_uid`], with Jane's update in
    /// the shared folder recorded before John's move into it when `update_first`.
    fn told_apart(update_first: bool) {
        let (_dir, storage) = storage();
        let (john, jane) = ("john.doe@example.org", "jane.doe@example.org");
        let never = |_: &str| false;
        let at = |minute: u32| format!("2026-11-28T10:{minute:02}:00.000Z");
        let recorded = |n: &Object, job: &str| match super::record(&storage, n, job, never) {
            Ok(Recorded::Facts(count)) => count,
            other => panic!("{other:?}"),
        };
        let johns_calendar = "user/john.doe/Calendar@example.org";
        let janes_calendar = "user/jane.doe/Calendar@example.org";
        let janes_inbox = "user/jane.doe@example.org";
        // Jane's own event with John's UID is another object; in her INBOX, in a task folder,
        // or delivered to John, it is no revision at all.
        for (minute, (event, path, uid, user, kind, expected)) in [
            ("MessageAppend", johns_calendar, 1, john, "event", 1),
            ("MessageAppend", janes_calendar, 1, jane, "event", 1),
            ("MessageAppend", janes_inbox, 1, jane, "mail", 0),
            (
                "MessageAppend",
                "user/jane.doe/Tasks@example.org",
                1,
                jane,
                "task",
                0,
            ),
            ("MessageNew", johns_calendar, 2, john, "event", 0),
        ]
        .into_iter()
        .enumerate()
        {
            let n = kolab_at(event, &at(minute as u32), path, uid, user, kind);
            assert_eq!(
                recorded(&n, &format!("j{minute}")),
                expected,
                "{event} into {path}"
            );
        }
        let append = "MessageAppend";
        // John moves his event into a shared folder; an update there is still his object.
        let mut moved = kolab_at(
            "vnd.cmu.MessageMove",
            &at(5),
            "team/Calendar@example.org",
            3,
            john,
            "event",
        );
        moved.remove("messageHeaders");
        moved.insert("old_folder".into(), json!(johns_calendar));
        moved.insert("old_uidvalidity".into(), json!(7));
        moved.insert("old_uids".into(), json!([1]));
        let update = kolab_at(
            append,
            &at(6),
            "team/Calendar@example.org",
            4,
            jane,
            "event",
        );
        if update_first {
            assert_eq!(recorded(&update, "j7"), 1);
            assert_eq!(recorded(&moved, "j6"), 1);
        } else {
            assert_eq!(recorded(&moved, "j6"), 1);
            assert_eq!(recorded(&update, "j7"), 1);
        }

        let facts = super::facts(&storage, "event", "EV-1").unwrap();
        let of = |identity: &str| -> Vec<Fact> {
            facts
                .iter()
                .filter(|f| f.identity == identity)
                .cloned()
                .collect()
        };
        let johns = changelog(of("john.doe@example.org/event/EV-1"));
        assert_eq!(ops(&johns), [Op::Append, Op::Move, Op::Update]);
        assert_eq!(
            johns[2].login.as_deref(),
            Some(jane),
            "Jane updated it where it is shared"
        );
        assert_eq!(
            ops(&changelog(of("jane.doe@example.org/event/EV-1"))),
            [Op::Append]
        );
        assert_eq!(facts.len(), 4, "{facts:#?}");
        let through = |path: &str| identity_through(&facts, |f| f == path);
        assert_eq!(through(janes_inbox), None);
        assert_eq!(
            through(janes_calendar).as_deref(),
            Some("jane.doe@example.org/event/EV-1")
        );
        assert_eq!(
            through(johns_calendar).as_deref(),
            Some("john.doe@example.org/event/EV-1")
        );
    }

    #[test]
    fn a_deletion_or_move_taken_before_its_append_is_recorded_once_the_append_is() {
        let append = kolab_append(1);
        let expunge = calendar_expunge();
        let moved = event(
            "vnd.cmu.MessageMove",
            "2026-11-28T10:03:00.000Z",
            "Archive",
            9,
            json!({
                "oldMailboxID": "imap://h/user/john.doe/Calendar%40example.org;UIDVALIDITY=7",
                "vnd.cmu.oldUidset": "1",
            }),
        );
        let expunged_there = event(
            "MessageExpunge",
            "2026-11-28T10:09:00.000Z",
            "Archive",
            9,
            json!({}),
        );
        let never = |_: &str| false;
        for order in [[0, 1], [1, 0]] {
            let (_dir, storage) = storage();
            for i in order {
                let n = [&append, &expunge][i];
                super::record(&storage, n, &format!("job-{i}"), never).unwrap();
            }
            assert_eq!(history(&storage), [Op::Append, Op::Delete], "{order:?}");
        }
        // The move and the deletion after it both wait for the append, in every order.
        let events = [&append, &moved, &expunged_there];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let (_dir, storage) = storage();
            for i in order {
                super::record(&storage, events[i], &format!("job-{i}"), never).unwrap();
            }
            assert_eq!(
                history(&storage),
                [Op::Append, Op::Move, Op::Delete],
                "{order:?}"
            );
        }
    }

    #[test]
    fn an_append_and_its_deletion_taken_at_once_by_two_threads_give_the_whole_history() {
        let append = kolab_append(1);
        let expunge = calendar_expunge();
        for _ in 0..50 {
            let (_dir, storage) = storage();
            std::thread::scope(|scope| {
                for (i, n) in [&append, &expunge].into_iter().enumerate() {
                    let storage = &storage;
                    scope.spawn(move || {
                        super::record(storage, n, &format!("job-{i}"), |_| false).unwrap()
                    });
                }
            });
            assert_eq!(history(&storage), [Op::Append, Op::Delete]);
        }
    }

    #[test]
    fn mail_in_a_mail_folder_leaves_nothing_waiting() {
        let (_dir, storage) = storage();
        let mut expunge = event(
            "MessageExpunge",
            "2026-11-28T10:05:00.000Z",
            "INBOX",
            4,
            json!({}),
        );
        expunge.insert("folder_type".into(), json!("mail"));
        super::record(&storage, &expunge, "job-1", |_| false).unwrap();
        let pending = RecordQuery {
            collection: PENDING.to_string(),
            ..RecordQuery::default()
        };
        assert!(storage.query(&pending).unwrap().is_empty());
    }

    #[test]
    fn headers_name_the_object() {
        let headers: Object = serde_json::from_value(json!({
            "x-kolab-type": "Application/X-Vnd.Kolab.Event",
            "Subject": " 5A63-UID ",
        }))
        .unwrap();
        assert_eq!(
            kolab_object(&headers),
            Some(("event".to_string(), "5A63-UID".to_string()))
        );
        let mail: Object = serde_json::from_value(json!({"Subject": "hello"})).unwrap();
        assert_eq!(kolab_object(&mail), None);
    }

    #[test]
    fn an_update_appends_the_new_version_and_deletes_the_old() {
        let facts = vec![
            fact(FactKind::Append, 1_000, "Calendar", 1),
            // Same millisecond: the deletion of the old version sorts after the append.
            fact(FactKind::Trash, 2_000, "Calendar", 1),
            fact(FactKind::Append, 2_000, "Calendar", 2),
            fact(FactKind::Expunge, 2_001, "Calendar", 1),
            fact(FactKind::Append, 3_000, "Calendar", 3),
            fact(FactKind::Trash, 3_001, "Calendar", 2),
            moved(4_000, ("Calendar", 3), ("Archive", 1)),
            fact(FactKind::Expunge, 4_001, "Calendar", 3),
        ];
        let changes = changelog(facts);
        assert_eq!(
            ops(&changes),
            [Op::Append, Op::Update, Op::Update, Op::Move]
        );
        assert_eq!(
            changes[3].digest.as_deref(),
            Some("d3"),
            "the moved version"
        );
        assert_eq!(changes[3].folder, "Archive");
        let revs: Vec<i64> = changes.iter().map(|c| c.rev).collect();
        assert_eq!(revs, [1_000, 2_000, 3_000, 4_000]);
    }

    #[test]
    fn deleting_the_last_message_deletes_the_object_and_revisions_stay_increasing() {
        let facts = vec![
            fact(FactKind::Append, 5_000, "Calendar", 1),
            fact(FactKind::Trash, 5_000, "Calendar", 1),
            fact(FactKind::Expunge, 5_000, "Calendar", 1),
        ];
        let changes = changelog(facts);
        assert_eq!(ops(&changes), [Op::Append, Op::Delete]);
        assert_eq!(changes[1].rev, 5_001, "same millisecond, next revision");
        assert_eq!(changes[1].digest.as_deref(), Some("d1"));
    }

    #[test]
    fn delete_first_then_append_is_one_update() {
        let facts = vec![
            fact(FactKind::Append, 1_000, "Calendar", 1),
            fact(FactKind::Trash, 9_000, "Calendar", 1),
            fact(FactKind::Append, 9_500, "Calendar", 2),
        ];
        assert_eq!(ops(&changelog(facts)), [Op::Append, Op::Update]);
        let late = vec![
            fact(FactKind::Append, 1_000, "Calendar", 1),
            fact(FactKind::Trash, 9_000, "Calendar", 1),
            fact(FactKind::Append, 90_000, "Calendar", 2),
        ];
        assert_eq!(
            ops(&changelog(late)),
            [Op::Append, Op::Delete, Op::Append],
            "a re-creation long after the deletion"
        );
    }

    #[test]
    fn objects_from_before_the_history_can_be_deleted_and_moved() {
        let facts = vec![
            moved(1_000, ("Calendar", 4), ("Archive", 9)),
            fact(FactKind::Trash, 2_000, "Archive", 9),
        ];
        assert_eq!(ops(&changelog(facts)), [Op::Move, Op::Delete]);
        let copied = vec![
            fact(FactKind::Append, 1_000, "Calendar", 1),
            Fact {
                from: Some(Place {
                    folder: "Calendar".into(),
                    uidvalidity: Some(7),
                    uid: 1,
                }),
                ..fact(FactKind::Copy, 2_000, "Shared", 5)
            },
            fact(FactKind::Trash, 3_000, "Calendar", 1),
        ];
        assert_eq!(
            ops(&changelog(copied)),
            [Op::Append, Op::Copy],
            "a copy survives the original's deletion"
        );
    }
}
