//! An item's state, read from the archive: where the message lived, from when to when, and
//! its flags there.
//!
//! - Its arrivals are the log entries naming its payload (the log's `payload` index term):
//!   each append or delivery of it, live or back-filled, is a place.
//! - What happened to it in a place is the message trail the changelog handler keeps
//!   (`bonnie_model::mail_history`, by folder path and UID): flag changes (a MessageRead sets
//!   `\Seen`, a MessageTrash `\Deleted`), copies and moves out (each a new place, with the
//!   flags it had when it went; a move ends the place), and its end (MessageExpunge,
//!   MessageExpire).
//! - What happened to the folder is its view (`bonnie_model::folders::CURRENT`, by uniqueid):
//!   its renames after the message arrived (the trail goes on at the new path; the place keeps
//!   the new names) and its deletion (the place ends then). A subfolder renamed with its
//!   parent has no rename event of its own (Cyrus notifies the rename it was asked for, not
//!   the implied ones): the renamed folder's view has the rename, and the subfolder's place
//!   follows it (a folder of the same owner whose name its name was below); a path the view
//!   knows from the events there and no rename explains is followed too, its trail counting
//!   where the log entries name the folder's uniqueid.
//!
//! An archive without the changelog handler has no trails: its items have their arrivals and
//! no history.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use bonnie_core::imap::uri::Mailbox;
use bonnie_model::{
    custodians,
    folder_view::{self, Facts, Rename},
    folders,
    mail_history::{self, Entry},
    message_places::PLACING_EVENTS,
    record::{self, BACKFILL_MARKER, Object},
};
use bonnie_plugin_api::storage::{Record, RecordQuery, StorageClient};
use serde_json::Value;

use crate::{
    item::{FlagChange, ItemState, Place},
    search::DiscoveryError,
};

/// The log's index term of the entries naming a payload.
const PAYLOAD_TERM: &str = "payload";
/// The folder views' index term of their owner's login.
const OWNER_TERM: &str = "owner";
/// The collection of the event log.
const LOG: &str = "log";
/// How many places one item is followed into (copies of copies): the archive is data, and a
/// trail that loops must not run forever.
const MAX_PLACES: usize = 1000;

/// Where the message of payload `digest` lived and what happened to it there, as the log, the
/// trails and the folder views tell it.
pub fn state(storage: &StorageClient, digest: &str) -> Result<ItemState, DiscoveryError> {
    let query = RecordQuery {
        collection: LOG.to_string(),
        index: Some((PAYLOAD_TERM.to_string(), digest.to_string())),
        all: true,
        ..RecordQuery::default()
    };
    let entries = storage
        .query(&query)
        .map_err(DiscoveryError::storage(format!(
            "reading the log entries of payload {digest}"
        )))?;
    let mut walk = Walk {
        storage,
        folders: HashMap::new(),
        owned: HashMap::new(),
        places: Vec::new(),
        flag_changes: Vec::new(),
    };
    let mut queue: VecDeque<Place> = entries
        .iter()
        .flat_map(|entry| arrivals(entry, digest))
        .collect();
    let mut known = HashSet::new();
    while let Some(place) = queue.pop_front() {
        if walk.places.len() >= MAX_PLACES {
            break;
        }
        if known.insert((place.job.clone(), place.folder.clone(), place.uid)) {
            walk.live(place, &mut queue)?;
        }
    }
    Ok(walk.into_state())
}

/// The places a log entry naming payload `digest` put it in: one per UID of the payload.
fn arrivals(entry: &Record, digest: &str) -> Vec<Place> {
    let Ok(Value::Object(logged)) = serde_json::from_str::<Value>(entry.body.as_str()) else {
        return Vec::new();
    };
    let event = text(&logged, "event").unwrap_or_default();
    if !PLACING_EVENTS.contains(&event) {
        return Vec::new();
    }
    let mut uids: Vec<u64> = logged
        .get("payloads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("digest").and_then(Value::as_str) == Some(digest))
        .filter_map(|p| p.get("uid").and_then(Value::as_u64))
        .collect();
    if uids.is_empty() && text(&logged, "payload_digest") == Some(digest) {
        uids.extend(logged.get("uid").and_then(Value::as_u64));
        if let [only] = record::uid_list(&logged, "uids").as_slice()
            && uids.is_empty()
        {
            uids.push(*only);
        }
    }
    let Some(folder) = text(&logged, "folder") else {
        return Vec::new();
    };
    let from_ms = record::event_ms(&logged)
        .or(entry.time_ms.into_option())
        .unwrap_or_default();
    uids.into_iter()
        .map(|uid| {
            let mut place = place_at(folder, uid, from_ms, entry.key.as_str(), Some(&logged));
            place.flags_on_arrival = flags(&logged);
            place
        })
        .collect()
}

/// A place at `folder`/`uid` from `from_ms`, placed by `job`, with what its log entry
/// (`logged`, when there is one) tells of the folder.
fn place_at(folder: &str, uid: u64, from_ms: i64, job: &str, logged: Option<&Object>) -> Place {
    let mailbox = Mailbox::from_path(folder);
    let field = |name: &str| logged.and_then(|l| text(l, name)).map(str::to_string);
    let user = custodians::owner_of(folder, logged);
    Place {
        user,
        folder: folder.to_string(),
        name: field("folder_name").unwrap_or(mailbox.name),
        renamed_to: Vec::new(),
        renamed_at_ms: Vec::new(),
        uniqueid: field("folder_uniqueid"),
        uidvalidity: logged
            .and_then(|l| l.get("uidvalidity"))
            .and_then(Value::as_u64),
        uid,
        from_ms,
        until_ms: None,
        ended_by: None,
        ended_job: None,
        flags_on_arrival: Vec::new(),
        job: job.to_string(),
        backfilled: logged.is_some_and(|l| l.contains_key(BACKFILL_MARKER)),
        restored_by: logged
            .and_then(|l| l.get("restored_by"))
            .and_then(|by| serde_json::from_value(by.clone()).ok()),
    }
}

fn text<'a>(object: &'a Object, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

/// The flags a record names, system flags spelled as RFC 9051 does (Cyrus passes on the
/// client's spelling: `\seen` at an APPEND, `\Seen` in a FlagsClear).
fn flags(logged: &Object) -> Vec<String> {
    let named = logged.get("flags").and_then(Value::as_array);
    named
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(canonical_flag)
        .collect()
}

/// The flag change a trail entry records, if any: whether it sets (else clears) and the flags
/// it names, as the event spelled them. A MessageRead sets `\Seen`, a MessageTrash
/// `\Deleted`; an arrival, a copy or move out, an expunge is no flag change.
pub fn flag_change(entry: &Entry) -> Option<(bool, Vec<String>)> {
    match entry.event.as_str() {
        "MessageRead" => Some((true, vec!["\\Seen".to_string()])),
        "MessageTrash" => Some((true, vec!["\\Deleted".to_string()])),
        "FlagsSet" => Some((true, entry.flags.clone())),
        "FlagsClear" => Some((false, entry.flags.clone())),
        _ => None,
    }
}

/// A flag as one spelling: system flags (case-insensitive in IMAP) as RFC 9051 writes them,
/// keywords as they are.
pub fn canonical_flag(flag: &str) -> String {
    const SYSTEM: [&str; 6] = [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "\\Recent",
    ];
    SYSTEM
        .iter()
        .find(|system| system.eq_ignore_ascii_case(flag))
        .map_or_else(|| flag.to_string(), |system| system.to_string())
}

/// True if `rename` came while the message was in `place`: after its arrival, not after the
/// folder's deletion (`deleted_ms`).
fn during(place: &Place, deleted_ms: Option<i64>, rename: &Rename) -> bool {
    rename.at_ms > place.from_ms && deleted_ms.is_none_or(|d| rename.at_ms <= d)
}

/// One stretch of a place's life at one path: the folder was at `path` from `from_ms` until
/// `until_ms` (a rename, the folder's deletion, or never).
struct Stretch {
    path: String,
    from_ms: i64,
    until_ms: Option<i64>,
}

/// The state being read.
struct Walk<'a> {
    storage: &'a StorageClient,
    /// The folder views read so far, by uniqueid.
    folders: HashMap<String, Option<Facts>>,
    /// The views of each owner's folders read so far (uniqueid and facts), by owner.
    owned: HashMap<String, Vec<(String, Facts)>>,
    places: Vec<Place>,
    flag_changes: Vec<FlagChange>,
}

impl Walk<'_> {
    /// What the folder views say of the folder with this uniqueid.
    fn folder(&mut self, uniqueid: &str) -> Result<Option<Facts>, DiscoveryError> {
        if let Some(facts) = self.folders.get(uniqueid) {
            return Ok(facts.clone());
        }
        let view =
            self.storage
                .get(folders::CURRENT, uniqueid)
                .map_err(DiscoveryError::storage(format!(
                    "reading the view of folder {uniqueid}"
                )))?;
        let facts = match view.map(|r| r.json()).transpose() {
            Ok(Some(Value::Object(view))) => Some(Facts::of_view(&view)),
            Ok(_) => None,
            Err(e) => {
                return Err(DiscoveryError::Unreadable {
                    what: format!("the view of folder {uniqueid}"),
                    reason: e.message.to_string(),
                });
            }
        };
        self.folders.insert(uniqueid.to_string(), facts.clone());
        Ok(facts)
    }

    /// The views of the folders `owner` has had, with their uniqueids.
    fn owned(&mut self, owner: &str) -> Result<&[(String, Facts)], DiscoveryError> {
        if !self.owned.contains_key(owner) {
            let query = RecordQuery {
                collection: folders::CURRENT.to_string(),
                index: Some((OWNER_TERM.to_string(), owner.to_string())),
                all: true,
                ..RecordQuery::default()
            };
            let views = self
                .storage
                .query(&query)
                .map_err(DiscoveryError::storage(format!(
                    "reading the folder views of {owner}"
                )))?;
            let facts = views
                .iter()
                .filter_map(|record| match record.json() {
                    Ok(Value::Object(view)) => {
                        Some((record.key.to_string(), Facts::of_view(&view)))
                    }
                    _ => None,
                })
                .collect();
            self.owned.insert(owner.to_string(), facts);
        }
        Ok(self.owned.get(owner).map(Vec::as_slice).unwrap_or_default())
    }

    /// The folder's own renames (`own`) and those it took part in as a subfolder of a renamed
    /// folder of its owner's (Cyrus notifies the rename it was asked for, not the implied
    /// renames of the subfolders; the renamed folder's view has it), each as a rename of the
    /// folder from the path it was at then to its new one, in time order, between the place's
    /// arrival and the folder's deletion (`deleted_ms`).
    fn with_inherited(
        &mut self,
        place: &Place,
        own: Vec<Rename>,
        deleted_ms: Option<i64>,
    ) -> Result<Vec<Rename>, DiscoveryError> {
        let start = Mailbox::from_path(&place.folder);
        // Only a subfolder has folders above it whose views are worth reading.
        let Some(owner) = start.owner.clone().filter(|_| start.name.contains('/')) else {
            return Ok(own);
        };
        let mut all: Vec<(Rename, bool)> = own.into_iter().map(|r| (r, true)).collect();
        for (uniqueid, facts) in self.owned(&owner)? {
            if place.uniqueid.as_deref() == Some(uniqueid.as_str()) {
                continue;
            }
            all.extend(
                facts
                    .renames
                    .iter()
                    .filter(|r| during(place, deleted_ms, r))
                    .map(|r| (r.clone(), false)),
            );
        }
        all.sort_by(|(a, _), (b, _)| (a.at_ms, &a.from).cmp(&(b.at_ms, &b.from)));
        let mut current = start;
        let mut renames = Vec::new();
        for (rename, own) in all {
            if own {
                current = Mailbox::from_path(&rename.to.path);
                renames.push(rename);
                continue;
            }
            let (from, to) = (
                Mailbox::from_path(&rename.from),
                Mailbox::from_path(&rename.to.path),
            );
            let below = current
                .name
                .strip_prefix(from.name.as_str())
                .and_then(|rest| rest.strip_prefix('/'));
            let (Some(rest), true) = (
                below,
                from.owner == current.owner && to.owner == current.owner,
            ) else {
                continue;
            };
            let moved = Mailbox::of_user(&owner, &format!("{}/{rest}", to.name));
            renames.push(Rename {
                at_ms: rename.at_ms,
                at: rename.at.clone(),
                from: current.path.clone(),
                from_name: Some(current.name.clone()),
                to: folder_view::Place {
                    path: moved.path.clone(),
                    name: Some(moved.name.clone()),
                    owner: Some(owner.clone()),
                    server: rename.to.server.clone(),
                },
            });
            current = moved;
        }
        Ok(renames)
    }

    /// The trail entries whose index term `field` names the stretch's path and `uid`, within
    /// the stretch: those at that place ([`mail_history::MESSAGE_FIELD`]) or the copies and
    /// moves from it ([`mail_history::FROM_FIELD`]).
    fn entries(
        &self,
        field: &str,
        stretch: &Stretch,
        uid: u64,
    ) -> Result<Vec<Entry>, DiscoveryError> {
        let found = mail_history::entries_with(self.storage, field, &stretch.path, uid).map_err(
            DiscoveryError::storage(format!("reading the trail of {}/{uid}", stretch.path)),
        )?;
        Ok(found
            .into_iter()
            .filter(|e| e.time_ms >= stretch.from_ms)
            .filter(|e| stretch.until_ms.is_none_or(|until| e.time_ms < until))
            .collect())
    }

    /// Follows `place` from its arrival to its end: its flag changes, its renames, and the
    /// places it was copied or moved to (queued).
    fn live(
        &mut self,
        mut place: Place,
        queue: &mut VecDeque<Place>,
    ) -> Result<(), DiscoveryError> {
        let index = self.places.len();
        let facts = match &place.uniqueid {
            Some(uniqueid) => self.folder(uniqueid)?,
            None => None,
        };
        let deleted_ms = facts
            .as_ref()
            .filter(|f| f.deleted())
            .and_then(|f| f.deleted_ms)
            .filter(|&d| d >= place.from_ms);
        let own: Vec<Rename> = facts
            .iter()
            .flat_map(|f| f.renames.iter())
            .filter(|r| during(&place, deleted_ms, r))
            .cloned()
            .collect();
        let renames = self.with_inherited(&place, own, deleted_ms)?;
        let mut stretches = vec![Stretch {
            path: place.folder.clone(),
            from_ms: place.from_ms,
            until_ms: None,
        }];
        for rename in &renames {
            if let Some(last) = stretches.last_mut() {
                last.until_ms = Some(rename.at_ms);
            }
            stretches.push(Stretch {
                path: rename.to.path.clone(),
                from_ms: rename.at_ms,
                until_ms: None,
            });
        }
        if let Some(last) = stretches.last_mut() {
            last.until_ms = deleted_ms;
        }
        // Paths no rename event explains: Cyrus notifies the rename of a folder, not the
        // implied renames of its subfolders; the view knows their new paths from the events
        // there. The trail at those paths (and, since the old path may then be another
        // folder's, at every path) is taken only where its log entry names this folder.
        let known: HashSet<&str> = stretches.iter().map(|s| s.path.as_str()).collect();
        // Each with the time of the latest event the view saw there.
        let implied: Vec<(String, String, i64)> = facts
            .iter()
            .flat_map(|f| f.places.values())
            .filter(|seen| seen.at_ms > place.from_ms && !known.contains(seen.place.path.as_str()))
            .map(|seen| {
                let name = seen.place.name.clone();
                let path = seen.place.path.clone();
                (
                    path.clone(),
                    name.unwrap_or_else(|| Mailbox::from_path(&path).name),
                    seen.at_ms,
                )
            })
            .collect();
        let implied_stretches: Vec<Stretch> = implied
            .iter()
            .map(|(path, _, _)| Stretch {
                path: path.clone(),
                from_ms: place.from_ms,
                until_ms: deleted_ms,
            })
            .collect();
        let mut trail: Vec<(Entry, bool)> = Vec::new();
        for stretch in stretches.iter().chain(&implied_stretches) {
            for (field, outgoing) in [
                (mail_history::MESSAGE_FIELD, false),
                (mail_history::FROM_FIELD, true),
            ] {
                for entry in self.entries(field, stretch, place.uid)? {
                    if implied.is_empty() || self.in_folder(&entry, outgoing, &place)? {
                        trail.push((entry, outgoing));
                    }
                }
            }
        }
        trail.sort_by(|(a, _), (b, _)| (a.time_ms, &a.job).cmp(&(b.time_ms, &b.job)));
        trail.dedup_by(|a, b| a == b);
        // When the message was first seen at each implied path, by its trail.
        let mut implied_names: Vec<(i64, String)> = implied
            .iter()
            .filter_map(|(path, name, _)| {
                let seen = trail.iter().find(|(e, outgoing)| {
                    let at = if *outgoing {
                        e.from.as_ref().map(|f| &f.0)
                    } else {
                        Some(&e.folder)
                    };
                    at == Some(path)
                });
                seen.map(|(e, _)| (e.time_ms, name.clone()))
            })
            .collect();
        let current_path = facts
            .as_ref()
            .and_then(Facts::place)
            .map(|p| p.path.clone());

        let mut flags: BTreeSet<String> = place.flags_on_arrival.iter().cloned().collect();
        for (entry, outgoing) in trail {
            if outgoing {
                queue.push_back(self.destination(&entry, &flags)?);
                if entry.event.ends_with("MessageMove") {
                    place.until_ms = Some(entry.time_ms);
                    place.ended_by = Some(entry.event);
                    place.ended_job = Some(entry.job);
                    break;
                }
                continue;
            }
            if matches!(entry.event.as_str(), "MessageExpunge" | "MessageExpire") {
                place.until_ms = Some(entry.time_ms);
                place.ended_by = Some(entry.event);
                place.ended_job = Some(entry.job);
                break;
            }
            // Any other event that changes no flag is its own arrival, or what a trail holds
            // that is no change of this message.
            let Some((set, named)) = flag_change(&entry) else {
                continue;
            };
            let named: Vec<String> = named.iter().map(|f| canonical_flag(f)).collect();
            if named.is_empty() {
                continue;
            }
            for flag in &named {
                if set {
                    flags.insert(flag.clone());
                } else {
                    flags.remove(flag);
                }
            }
            self.flag_changes.push(FlagChange {
                place: index,
                time_ms: entry.time_ms,
                set,
                flags: named,
                login: entry.login.filter(|l| !l.is_empty()),
                job: entry.job,
            });
        }
        if place.until_ms.is_none()
            && let Some(deleted_ms) = deleted_ms
        {
            place.until_ms = Some(deleted_ms);
            place.ended_by = Some("MailboxDelete".to_string());
        }
        // A message still in a folder whose implied path it has no trail at is there now,
        // since the view saw the folder there.
        if place.until_ms.is_none()
            && let Some((_, name, seen_ms)) = implied
                .iter()
                .find(|(path, _, _)| Some(path) == current_path.as_ref())
            && !implied_names.iter().any(|(_, n)| n == name)
        {
            implied_names.push((*seen_ms, name.clone()));
        }
        let mut names: Vec<(i64, String)> = renames
            .iter()
            .map(|r| {
                let name = r.to.name.clone();
                (
                    r.at_ms,
                    name.unwrap_or_else(|| Mailbox::from_path(&r.to.path).name),
                )
            })
            .chain(implied_names)
            .filter(|(at_ms, _)| place.until_ms.is_none_or(|until| *at_ms <= until))
            .collect();
        names.sort();
        (place.renamed_at_ms, place.renamed_to) = names.into_iter().unzip();
        self.places.push(place);
        Ok(())
    }

    /// The place a copy or move (`entry`, from the trail) put the message in, with the flags
    /// it had where it came from unless the event names its own; what the copy's log entry
    /// tells of the folder when the log still has it.
    fn destination(
        &self,
        entry: &Entry,
        flags: &BTreeSet<String>,
    ) -> Result<Place, DiscoveryError> {
        let logged = self.logged(&entry.job)?;
        let mut place = place_at(
            &entry.folder,
            entry.uid,
            entry.time_ms,
            &entry.job,
            logged.as_ref(),
        );
        place.flags_on_arrival = if entry.flags.is_empty() {
            flags.iter().cloned().collect()
        } else {
            entry.flags.iter().map(|f| canonical_flag(f)).collect()
        };
        Ok(place)
    }

    /// The record of log entry `job`, if the log still has it (not purged).
    fn logged(&self, job: &str) -> Result<Option<Object>, DiscoveryError> {
        let entry = self
            .storage
            .get(LOG, job)
            .map_err(DiscoveryError::storage(format!("reading log entry {job}")))?;
        Ok(
            entry.and_then(|r| match serde_json::from_str(r.body.as_str()) {
                Ok(Value::Object(logged)) => Some(logged),
                _ => None,
            }),
        )
    }

    /// True if the trail entry's log entry names the folder of `place`: by its uniqueid for
    /// an event there, by the UIDVALIDITY it came from for a copy or move out.
    fn in_folder(
        &self,
        entry: &Entry,
        outgoing: bool,
        place: &Place,
    ) -> Result<bool, DiscoveryError> {
        let Some(logged) = self.logged(&entry.job)? else {
            return Ok(false);
        };
        Ok(if outgoing {
            let from = logged.get("old_uidvalidity").and_then(Value::as_u64);
            from.is_some() && from == place.uidvalidity
        } else {
            let at = text(&logged, "folder_uniqueid");
            at.is_some() && at == place.uniqueid.as_deref()
        })
    }

    /// The places in order of arrival, the flag changes in time order.
    fn into_state(self) -> ItemState {
        let mut order: Vec<usize> = (0..self.places.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.places[a], &self.places[b]);
            (a.from_ms, &a.job, &a.folder, a.uid).cmp(&(b.from_ms, &b.job, &b.folder, b.uid))
        });
        let mut new_index = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut places: Vec<Option<Place>> = self.places.into_iter().map(Some).collect();
        let places = order.iter().filter_map(|&old| places[old].take()).collect();
        let mut flag_changes: Vec<FlagChange> = self
            .flag_changes
            .into_iter()
            .map(|c| FlagChange {
                place: new_index[c.place],
                ..c
            })
            .collect();
        flag_changes
            .sort_by(|a, b| (a.time_ms, a.place, &a.job).cmp(&(b.time_ms, b.place, &b.job)));
        ItemState {
            places,
            flag_changes,
        }
    }
}
