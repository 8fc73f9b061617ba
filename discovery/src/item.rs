//! An item as a search answers it: the message's document (what it is, from the storage's
//! items index) and its state (every place it lived, from when to when, and every flag change
//! there), read from the archive's log. Times are ms since the epoch (UTC).

use std::collections::BTreeSet;

use bonnie_model::restores::RestoredBy;
use bonnie_plugin_api::items::ItemDoc;
use serde::{Deserialize, Serialize};

/// One place a message lived: a folder and UID, from the event that put it there until the one
/// that took it away (an expunge, a move out, the folder's deletion), if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The custodian: the folder's owner (the user of `user/<name>/...`; for a shared folder,
    /// its path's first segment).
    pub user: String,
    /// The folder's full Cyrus path, as the event that put the message there named it
    /// (`user/john.doe/Sent@example.org`).
    pub folder: String,
    /// The folder's name as its owner sees it (`INBOX`, `Sent`, `Работа/Проекты`).
    pub name: String,
    /// Every later name (as its owner sees it) of the folder while the message was there
    /// (renames), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_to: Vec<String>,
    /// When the folder took each name of `renamed_to` (ms since the epoch), in the same
    /// order, so that a question `--as-of` a moment reads the name the folder had then. A
    /// subfolder renamed with its parent has no rename event of its own: its time is when the
    /// message's trail first names the new path, or else the latest event the folder's view
    /// saw there (later than the rename, never earlier). A name without a
    /// time counts from the place's arrival.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_at_ms: Vec<i64>,
    /// The folder's uniqueid, when the event gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniqueid: Option<String>,
    /// The folder's UIDVALIDITY, when the event gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uidvalidity: Option<u64>,
    /// The message's UID there.
    pub uid: u64,
    /// When it arrived (the placing event's time).
    pub from_ms: i64,
    /// When it left, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// The event that ended the place (`MessageExpunge`, `MessageMove`, `MailboxDelete`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// The job (log entry) of the event that ended the place, when the message's trail names
    /// it (an expunge, an expiry, a move out; a folder's deletion is known from its view, which
    /// names no job). A legal hold placed from a case keeps it with the item's other entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_job: Option<String>,
    /// The flags the message had on arrival.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags_on_arrival: Vec<String>,
    /// The job (log entry) that placed it.
    pub job: String,
    /// True if the placing record was back-filled or reconciled rather than a live event.
    #[serde(default)]
    pub backfilled: bool,
    /// The restore that put the message here (its run, its moment, the archived folder and
    /// UID it is a copy of), when it was one rather than the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_by: Option<RestoredBy>,
}

impl Place {
    /// True if the message was in this place at `at` (now when `None`).
    pub fn active_at(&self, at: Option<i64>) -> bool {
        match at {
            None => self.until_ms.is_none(),
            Some(t) => self.from_ms <= t && self.until_ms.is_none_or(|until| t < until),
        }
    }

    /// Every name (as its owner sees it) the folder had while the message was there.
    pub fn folder_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.renamed_to.iter().map(String::as_str))
    }

    /// The place as the archive knew it at `at` (as it is now when `None`): the renames and
    /// the end that came later left out.
    pub fn known_at(&self, at: Option<i64>) -> Place {
        let Some(t) = at else {
            return self.clone();
        };
        let mut place = self.clone();
        let known = |index: usize| {
            self.renamed_at_ms
                .get(index)
                .is_none_or(|since| *since <= t)
        };
        place.renamed_to = (self.renamed_to.iter().enumerate())
            .filter(|(index, _)| known(*index))
            .map(|(_, name)| name.clone())
            .collect();
        place.renamed_at_ms.retain(|since| *since <= t);
        if place.until_ms.is_some_and(|until| until > t) {
            place.until_ms = None;
            place.ended_by = None;
            place.ended_job = None;
        }
        place
    }

    /// The name (as its owner sees it) the folder had at `at`: its last one when `None`.
    pub fn name_at(&self, at: Option<i64>) -> &str {
        let mut name = self.name.as_str();
        for (index, later) in self.renamed_to.iter().enumerate() {
            let since = self.renamed_at_ms.get(index).copied();
            if at.is_none_or(|t| since.is_none_or(|since| since <= t)) {
                name = later;
            }
        }
        name
    }
}

/// One flag change of a message in one of its places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChange {
    /// The index of the place in [`ItemState::places`].
    pub place: usize,
    /// When.
    pub time_ms: i64,
    /// True for flags set, false for flags cleared.
    pub set: bool,
    /// The flags (system flags with their backslash, keywords as they are).
    pub flags: Vec<String>,
    /// Who, by login, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The job (log entry) that recorded it.
    pub job: String,
}

/// Where an item lived and what happened to it there, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// Every place, in order of arrival.
    pub places: Vec<Place>,
    /// Every flag change, in time order.
    pub flag_changes: Vec<FlagChange>,
}

impl ItemState {
    /// When the archive first saw the item: its earliest arrival.
    pub fn first_seen_ms(&self) -> Option<i64> {
        self.places.iter().map(|p| p.from_ms).min()
    }

    /// True if the item existed at `at` (now when `None`): it had arrived by then.
    pub fn existed_at(&self, at: Option<i64>) -> bool {
        match at {
            None => !self.places.is_empty(),
            Some(t) => self.first_seen_ms().is_some_and(|first| first <= t),
        }
    }

    /// The places the message was in at `at` (now when `None`).
    pub fn places_at(&self, at: Option<i64>) -> impl Iterator<Item = (usize, &Place)> {
        self.places
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.active_at(at))
    }

    /// When the item was deleted as of `at` (now when `None`): it had arrived, and no place
    /// held it any more; the time its last place ended.
    pub fn deleted_at(&self, at: Option<i64>) -> Option<i64> {
        if !self.existed_at(at) || self.places_at(at).next().is_some() {
            return None;
        }
        self.places
            .iter()
            .filter_map(|p| p.until_ms)
            .filter(|until| at.is_none_or(|t| *until <= t))
            .max()
    }

    /// The places it had arrived in by `at` (now when `None`).
    pub fn places_begun(&self, at: Option<i64>) -> impl Iterator<Item = &Place> {
        self.places
            .iter()
            .filter(move |p| at.is_none_or(|t| p.from_ms <= t))
    }

    /// Its custodians as of `at` (now when `None`): the owners of the folders it had been in
    /// by then, each once, in order of arrival.
    pub fn custodians(&self, at: Option<i64>) -> Vec<&str> {
        let mut custodians: Vec<&str> = Vec::new();
        for place in self.places_begun(at) {
            if !custodians.contains(&place.user.as_str()) {
                custodians.push(&place.user);
            }
        }
        custodians
    }

    /// Where it was at `at` (now when `None`), in order of arrival; for an item deleted by
    /// then, where it was last (every place that ended at its deletion).
    pub fn places_then(&self, at: Option<i64>) -> Vec<&Place> {
        let deleted = self.deleted_at(at);
        self.places_begun(at)
            .filter(|p| match deleted {
                Some(ms) => p.until_ms == Some(ms),
                None => p.active_at(at),
            })
            .collect()
    }

    /// The flags of the message in place `place` at `at` (now when `None`): those it arrived
    /// with, then each change up to and including `at`.
    pub fn flags_at(&self, place: usize, at: Option<i64>) -> BTreeSet<String> {
        let Some(p) = self.places.get(place) else {
            return BTreeSet::new();
        };
        let mut flags: BTreeSet<String> = p.flags_on_arrival.iter().cloned().collect();
        for change in self
            .flag_changes
            .iter()
            .filter(|c| c.place == place && at.is_none_or(|t| c.time_ms <= t))
        {
            for flag in &change.flags {
                if change.set {
                    flags.insert(flag.clone());
                } else {
                    flags.remove(flag);
                }
            }
        }
        flags
    }
}

/// An item: its document and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// What it is.
    pub doc: ItemDoc,
    /// Where it lived.
    pub state: ItemState,
}

pub use bonnie_model::items::ItemText;
