//! The current view of each folder (`folders-current`, by uniqueid) as a merge of what its
//! events tell, so that any number of threads and workers, taking events in any order, reach
//! the same view. Each event adds its facts; merging is commutative, associative and
//! idempotent, and the view is written back with a compare-and-swap, so no update is lost.
//!
//! The ordering rules, checked on what Cyrus 3.6 really sends:
//! - Highest modseq, uidnext and UIDVALIDITY seen: the maximum, whatever the order.
//! - Name and path: the latest by time of the renames' new paths and of the paths other events
//!   named, leaving out a path some rename moved the folder away from. Cyrus 3.6 sends the
//!   old name's MailboxModseq *after* the MailboxRename with a later timestamp (29.961 against
//!   29.939 in `examples/cyrus-3.6-scenario.jsonl`), so the latest event's name is not the
//!   folder's name; a path no known rename explains (a rename whose event was lost, a parent
//!   renamed) is still followed.
//! - Deleted: a MailboxDelete, unless a rename came later (a restored folder). Cyrus never
//!   reuses a uniqueid and sends a last MailboxModseq after the delete, which changes nothing.
//! - ACL and metadata: those of the latest event that carried them (by event time; at the
//!   same millisecond by their text, so the choice is the same on every replay).
//! - The folder state the view is in (`folder_id`): the latest state an event told at the
//!   folder's current path (by time, then id). The view only points at states events told;
//!   it never stores one of its own, since a merge of some of the events so far is a state
//!   that depends on which of them came first.

use std::{cmp::Ordering, collections::BTreeMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::record::Object;

/// Where a folder is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Place {
    /// The full path (`user/john.doe/Archive@example.org`).
    pub path: String,
    /// The folder's name (`Archive`).
    #[serde(default)]
    pub name: Option<String>,
    /// The owner's login, none for a shared folder.
    #[serde(default)]
    pub owner: Option<String>,
    /// The server's name.
    #[serde(default)]
    pub server: String,
}

/// A place an event that is not a rename named, at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seen {
    /// The event's time (ms since the epoch).
    pub at_ms: i64,
    /// Where the folder was.
    pub place: Place,
}

/// A rename.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rename {
    /// The rename's time (ms since the epoch).
    pub at_ms: i64,
    /// The rename's time as Cyrus gave it.
    pub at: String,
    /// The old path.
    pub from: String,
    /// The old name.
    #[serde(default)]
    pub from_name: Option<String>,
    /// Where the folder went.
    pub to: Place,
}

/// Something of the folder's state (ACL, metadata) as of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The event's time (ms since the epoch).
    pub at_ms: i64,
    /// The value (an object).
    pub value: Object,
    /// For the ACL: the subjects mapped to user ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Object>,
}

/// A folder state an event told (its id in `folders`), at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StateSeen {
    /// The event's time (ms since the epoch).
    pub at_ms: i64,
    /// The state's id (its checksum).
    pub folder_id: String,
}

impl Stamped {
    fn rank(&self) -> (i64, String) {
        (self.at_ms, Value::Object(self.value.clone()).to_string())
    }
}

/// What events told of one folder: one event's facts, or the merge of many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Each path events that are not renames named, with the latest of them (by time, then
    /// place).
    pub places: BTreeMap<String, Seen>,
    /// Every rename, in time order.
    pub renames: Vec<Rename>,
    /// For each path, the latest folder state an event told there (by time, then id).
    pub states: BTreeMap<String, StateSeen>,
    /// The ACL (subject → rights) of the latest event that carried one.
    pub acl_state: Option<Stamped>,
    /// The metadata of the latest event that carried it.
    pub metadata_state: Option<Stamped>,
    /// The highest modseq seen.
    pub modseq_max: Option<u64>,
    /// The highest uidnext seen.
    pub uidnext_max: Option<u64>,
    /// The highest UIDVALIDITY seen.
    pub uidvalidity: Option<u64>,
    /// The time of the latest MailboxDelete.
    pub deleted_ms: Option<i64>,
    /// The same, as Cyrus gave it.
    pub deleted_at: Option<String>,
    /// The latest event's time.
    pub event_ms: i64,
}

fn max_by_key<T: Clone, K: Ord>(a: &Option<T>, b: &Option<T>, key: impl Fn(&T) -> K) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if key(y).cmp(&key(x)) == Ordering::Greater {
            y.clone()
        } else {
            x.clone()
        }),
        (x, y) => x.clone().or_else(|| y.clone()),
    }
}

impl Facts {
    /// Adds what `other` tells; the result does not depend on the order facts are merged in.
    pub fn merge(&mut self, other: &Facts) {
        for (path, seen) in &other.places {
            let mine = self.places.get(path).cloned();
            if let Some(latest) = max_by_key(&mine, &Some(seen.clone()), Seen::clone) {
                self.places.insert(path.clone(), latest);
            }
        }
        for (path, state) in &other.states {
            let mine = self.states.get(path).cloned();
            if let Some(latest) = max_by_key(&mine, &Some(state.clone()), StateSeen::clone) {
                self.states.insert(path.clone(), latest);
            }
        }
        self.renames.extend(other.renames.iter().cloned());
        self.renames.sort();
        self.renames.dedup();
        self.acl_state = max_by_key(&self.acl_state, &other.acl_state, Stamped::rank);
        self.metadata_state =
            max_by_key(&self.metadata_state, &other.metadata_state, Stamped::rank);
        self.modseq_max = self.modseq_max.max(other.modseq_max);
        self.uidnext_max = self.uidnext_max.max(other.uidnext_max);
        self.uidvalidity = self.uidvalidity.max(other.uidvalidity);
        let deleted = max_by_key(
            &self.deleted_ms.zip(self.deleted_at.clone()),
            &other.deleted_ms.zip(other.deleted_at.clone()),
            Clone::clone,
        );
        (self.deleted_ms, self.deleted_at) = deleted.unzip();
        self.event_ms = self.event_ms.max(other.event_ms);
    }

    /// The facts of an event that is not a rename and names `place`.
    pub fn seen_at(at_ms: i64, place: Place) -> Facts {
        Facts {
            places: BTreeMap::from([(place.path.clone(), Seen { at_ms, place })]),
            ..Facts::default()
        }
    }

    /// Where the folder is now: the latest of where the renames took it and of the places
    /// other events named that no rename left (at the same time, the rename).
    pub fn place(&self) -> Option<&Place> {
        let left = |path: &str| self.renames.iter().any(|r| r.from == path);
        let renamed = self.renames.last().map(|r| ((r.at_ms, 1), &r.to));
        let seen = self
            .places
            .values()
            .filter(|s| !left(&s.place.path))
            .map(|s| ((s.at_ms, 0), &s.place))
            .max();
        renamed
            .into_iter()
            .chain(seen)
            .max()
            .map(|(_, place)| place)
    }

    /// The state the folder is in: the latest an event told at its current path.
    pub fn folder_id(&self) -> Option<&str> {
        let place = self.place()?;
        self.states.get(&place.path).map(|s| s.folder_id.as_str())
    }

    /// Whether the folder is deleted: a MailboxDelete with no rename after it.
    pub fn deleted(&self) -> bool {
        self.deleted_ms
            .is_some_and(|d| self.renames.last().is_none_or(|r| r.at_ms <= d))
    }

    /// The facts of a view written before facts were kept (fields of the view itself).
    fn of_old_view(view: &Object) -> Facts {
        let text = |key: &str| view.get(key).and_then(Value::as_str).map(str::to_string);
        let event_ms = view.get("event_ms").and_then(Value::as_i64).unwrap_or(0);
        let deleted = view.get("deleted").and_then(Value::as_bool) == Some(true);
        let stamped = |key: &str| {
            view.get(key)
                .and_then(Value::as_object)
                .map(|value| Stamped {
                    at_ms: event_ms,
                    value: value.clone(),
                    ids: None,
                })
        };
        Facts {
            places: text("path")
                .map(|path| {
                    let place = Place {
                        path: path.clone(),
                        name: text("name"),
                        owner: text("owner"),
                        server: text("server").unwrap_or_default(),
                    };
                    (
                        path,
                        Seen {
                            at_ms: event_ms,
                            place,
                        },
                    )
                })
                .into_iter()
                .collect(),
            acl_state: stamped("acl"),
            metadata_state: stamped("metadata"),
            deleted_ms: deleted.then_some(event_ms),
            deleted_at: deleted.then(|| text("deleted_at").unwrap_or_default()),
            ..serde_json::from_value(Value::Object(view.clone())).unwrap_or_default()
        }
    }

    /// The facts kept in a stored view.
    pub fn of_view(view: &Object) -> Facts {
        let mut facts = if view.contains_key("renames") {
            serde_json::from_value(Value::Object(view.clone())).unwrap_or_default()
        } else {
            Self::of_old_view(view)
        };
        // A view written before states were kept: the state it was in, at its path.
        let text = |key: &str| view.get(key).and_then(Value::as_str).map(str::to_string);
        if facts.states.is_empty()
            && let (Some(path), Some(folder_id)) = (text("path"), text("folder_id"))
        {
            let at_ms = view.get("event_ms").and_then(Value::as_i64).unwrap_or(0);
            facts.states.insert(path, StateSeen { at_ms, folder_id });
        }
        facts
    }
}

/// The view of a folder: its facts and what follows from them (name, path, owner, type, ACL,
/// metadata, deleted, former names, `folder_id`: the folder state it is in, if an event told
/// one at its path).
pub fn view(uniqueid: &str, facts: &Facts) -> Object {
    let mut view = match serde_json::to_value(facts) {
        Ok(Value::Object(map)) => map,
        _ => Object::new(),
    };
    let place = facts.place();
    view.insert("uniqueid".to_string(), json!(uniqueid));
    view.insert("path".to_string(), json!(place.map(|p| &p.path)));
    view.insert(
        "name".to_string(),
        json!(place.and_then(|p| p.name.as_ref())),
    );
    view.insert(
        "owner".to_string(),
        json!(place.and_then(|p| p.owner.as_ref())),
    );
    view.insert("server".to_string(), json!(place.map(|p| &p.server)));
    view.insert("folder_id".to_string(), json!(facts.folder_id()));
    view.insert(
        "acl".to_string(),
        Value::Object(
            facts
                .acl_state
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default(),
        ),
    );
    let metadata = facts.metadata_state.as_ref().map(|m| &m.value);
    if let Some(metadata) = metadata {
        view.insert("metadata".to_string(), Value::Object(metadata.clone()));
    }
    view.insert(
        "type".to_string(),
        json!(metadata.map(|m| crate::folders::folder_type(m).unwrap_or_else(|| "mail".into()))),
    );
    view.insert("deleted".to_string(), json!(facts.deleted()));
    if let Some(last) = facts.renames.last() {
        view.insert("renamed_from".to_string(), json!(last.from_name));
    }
    let history: Vec<Value> = facts
        .renames
        .iter()
        .map(|r| json!({ "name": r.from_name, "path": r.from, "until": r.at }))
        .collect();
    view.insert("history".to_string(), Value::Array(history));
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(path: &str) -> Place {
        Place {
            path: path.into(),
            name: Some(path.rsplit('/').next().unwrap().into()),
            owner: Some("john".into()),
            server: "imap".into(),
        }
    }

    fn seen(at_ms: i64, path: &str) -> Facts {
        Facts {
            places: Facts::seen_at(at_ms, place(path)).places,
            event_ms: at_ms,
            ..Facts::default()
        }
    }

    fn renamed(at_ms: i64, from: &str, to: &str) -> Facts {
        Facts {
            renames: vec![Rename {
                at_ms,
                at: at_ms.to_string(),
                from: from.into(),
                from_name: Some(from.rsplit('/').next().unwrap().into()),
                to: place(to),
            }],
            event_ms: at_ms,
            ..Facts::default()
        }
    }

    fn deleted(at_ms: i64) -> Facts {
        Facts {
            deleted_ms: Some(at_ms),
            deleted_at: Some(at_ms.to_string()),
            event_ms: at_ms,
            ..Facts::default()
        }
    }

    fn counters(modseq: u64, uidnext: u64) -> Facts {
        Facts {
            modseq_max: Some(modseq),
            uidnext_max: Some(uidnext),
            ..Facts::default()
        }
    }

    /// Every order of `facts` merged one by one gives the same facts.
    fn merged_in_every_order(facts: &[Facts]) -> Facts {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut all = Vec::new();
            for p in permutations(n - 1) {
                for i in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(i, n - 1);
                    all.push(q);
                }
            }
            all
        }
        let mut results = permutations(facts.len()).into_iter().map(|order| {
            let mut merged = Facts::default();
            for i in order {
                merged.merge(&facts[i]);
                // Merging again (a redelivered job) changes nothing.
                merged.merge(&facts[i]);
            }
            merged
        });
        let first = results.next().unwrap();
        for other in results {
            assert_eq!(other, first);
        }
        first
    }

    #[test]
    fn cyrus_late_modseq_of_the_old_name_does_not_undo_a_rename() {
        // examples/cyrus-3.6-scenario.jsonl, lines 15 to 19: Tmp is renamed to Tmp2 and
        // deleted; the old name's MailboxModseq comes after the rename with a later time.
        let facts = merged_in_every_order(&[
            seen(29_233, "user/john/Tmp"),
            seen(29_961, "user/john/Tmp"),
            renamed(29_939, "user/john/Tmp", "user/john/Tmp2"),
            seen(30_690, "user/john/Tmp2"),
            deleted(30_665),
        ]);
        assert_eq!(facts.place().unwrap().path, "user/john/Tmp2");
        assert!(
            facts.deleted(),
            "the MailboxModseq after the delete changes nothing"
        );
        // Lines 90 and 91: Archive is renamed, its late MailboxModseq is the last event.
        let facts = merged_in_every_order(&[
            seen(24_925, "user/john/Archive"),
            seen(61_021, "user/john/Archive"),
            renamed(60_997, "user/john/Archive", "user/john/Archive2"),
        ]);
        assert_eq!(facts.place().unwrap().path, "user/john/Archive2");
        assert!(!facts.deleted());
        let view = view("r92w", &facts);
        assert_eq!(view["renamed_from"], "Archive");
        assert_eq!(view["history"][0]["name"], "Archive");
        // A path no known rename explains, named later (its rename's event was lost), is
        // followed; the old name's late MailboxModseq still is not.
        let facts = merged_in_every_order(&[
            renamed(60_997, "user/john/Archive", "user/john/Archive2"),
            seen(61_021, "user/john/Archive"),
            seen(70_000, "user/john/Old/Archive2"),
        ]);
        assert_eq!(facts.place().unwrap().path, "user/john/Old/Archive2");
    }

    #[test]
    fn the_view_is_in_the_latest_state_told_at_its_current_path() {
        let told = |facts: Facts, path: &str, folder_id: &str| {
            let mut facts = facts;
            let at_ms = facts.event_ms;
            facts.states.insert(
                path.into(),
                StateSeen {
                    at_ms,
                    folder_id: folder_id.into(),
                },
            );
            facts
        };
        // Lines 14 to 17 of the scenario: the late MailboxModseq of the old name tells the
        // latest state by time, but at a path the rename left.
        let facts = merged_in_every_order(&[
            told(seen(29_233, "user/john/Tmp"), "user/john/Tmp", "created"),
            told(seen(29_961, "user/john/Tmp"), "user/john/Tmp", "late"),
            told(
                renamed(29_939, "user/john/Tmp", "user/john/Tmp2"),
                "user/john/Tmp2",
                "renamed",
            ),
            told(seen(30_690, "user/john/Tmp2"), "user/john/Tmp2", "modseq"),
            // A subscription tells no state.
            seen(31_000, "user/john/Tmp2"),
        ]);
        assert_eq!(facts.folder_id(), Some("modseq"));
        assert_eq!(view("i5zj", &facts)["folder_id"], "modseq");
        // A view written before states were kept is in the state it named.
        let old: Object = serde_json::from_value(json!({
            "uniqueid": "u", "path": "user/john/A", "folder_id": "f", "event_ms": 5
        }))
        .unwrap();
        assert_eq!(Facts::of_view(&old).folder_id(), Some("f"));
    }

    #[test]
    fn counters_keep_their_highest_and_a_later_rename_restores_a_folder() {
        let facts = merged_in_every_order(&[counters(5, 3), counters(9, 2), counters(7, 4)]);
        assert_eq!((facts.modseq_max, facts.uidnext_max), (Some(9), Some(4)));
        let restored = merged_in_every_order(&[
            seen(1, "user/john/A"),
            deleted(2),
            renamed(3, "DELETED/user/john/A", "user/john/A"),
        ]);
        assert!(!restored.deleted());
    }

    #[test]
    fn the_latest_acl_wins_and_ties_are_broken_by_text() {
        let acl = |at_ms: i64, rights: &str| Facts {
            acl_state: Some(Stamped {
                at_ms,
                value: serde_json::from_value(json!({ "jane": rights })).unwrap(),
                ids: None,
            }),
            ..Facts::default()
        };
        let facts =
            merged_in_every_order(&[acl(1, "lrs"), acl(3, "lr"), acl(3, "lrswi"), acl(2, "")]);
        assert_eq!(facts.acl_state.unwrap().value["jane"], "lrswi");
    }

    #[test]
    fn a_view_written_before_facts_were_kept_keeps_its_deletion() {
        let old: Object = serde_json::from_value(json!({
            "uniqueid": "u", "name": "Tmp2", "path": "user/john/Tmp2", "deleted": true,
            "deleted_at": "t", "event_ms": 5, "modseq_max": 4
        }))
        .unwrap();
        let facts = Facts::of_view(&old);
        assert!(facts.deleted());
        assert_eq!(facts.place().unwrap().path, "user/john/Tmp2");
        assert_eq!(facts.modseq_max, Some(4));
    }
}
