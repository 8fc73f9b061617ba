//! Legal holds: a case's custodians (and optionally a folder pattern, a time range and a
//! full-text query) whose archived entries no purge may remove while the hold stands, whenever
//! they were archived, before or after the hold was placed. Holds are records of the storage's
//! `holds` collection keyed by case; placing and releasing one is an audited admin action, so
//! the verifiable log has every hold's whole history.
//!
//! A hold placed from an e-discovery case ([`Hold::discovery`]) covers instead every entry of
//! the items the case's queries match among its custodians' ([`crate::discovery`]).

use std::collections::HashSet;

use bonnie_plugin_api::{Record, RecordQuery, storage::StorageClient};
use serde::{Deserialize, Serialize};

use crate::{
    RetentionError,
    discovery::{self, DiscoveryCriteria},
    pattern,
    rules::Entry,
};

/// The storage collection of holds.
pub const COLLECTION: &str = "holds";

/// The longest case name, in characters (it keys a record and is shown everywhere).
pub const MAX_CASE_CHARS: usize = 200;

/// A release of a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Who released it.
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Why.
    pub reason: String,
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The case it is for; unique among standing holds.
    pub case: String,
    /// Whose entries it covers (lowercase addresses): an entry of theirs, as actor or as folder
    /// owner.
    pub custodians: Vec<String>,
    /// Only entries in folders matching this pattern (IMAP LIST's `*` and `%`), if set.
    pub folder: Option<String>,
    /// Only entries from this time on (ms since the epoch), if set.
    pub from_ms: Option<i64>,
    /// Only entries before this time, if set.
    pub to_ms: Option<i64>,
    /// Only entries whose text holds every word of this (the storage's full-text search).
    pub query: Option<String>,
    /// Why it was placed.
    pub reason: String,
    /// Who placed it.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_ms: i64,
    /// Its release, once released.
    pub released: Option<Release>,
    /// For a hold placed from an e-discovery case: the case's queries and custodians. It then
    /// covers every entry of the items they match ([`crate::discovery`]), and `custodians`
    /// are the case's; absent from holds placed otherwise (and from those written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryCriteria>,
}

impl Hold {
    /// Checks what an admin asked for.
    pub fn validate(&self) -> Result<(), RetentionError> {
        let bad = |why: &str| Err(RetentionError::Hold(format!("hold {:?}: {why}", self.case)));
        if self.case.trim().is_empty() || self.case.chars().count() > MAX_CASE_CHARS {
            return bad(&format!("a case name has 1 to {MAX_CASE_CHARS} characters"));
        }
        if self.case.chars().any(char::is_control) {
            return bad("a case name has no control characters");
        }
        if self.custodians.is_empty() {
            return bad("a hold names at least one custodian");
        }
        if self.reason.trim().is_empty() {
            return bad("a hold gives its reason");
        }
        if let (Some(from), Some(to)) = (self.from_ms, self.to_ms)
            && from >= to
        {
            return bad("--from is before --to");
        }
        if let Some(criteria) = &self.discovery {
            if self.folder.is_some()
                || self.from_ms.is_some()
                || self.to_ms.is_some()
                || self.query.is_some()
            {
                return bad(
                    "a hold placed from a case's queries has no folder, time range or text query of its own",
                );
            }
            criteria
                .context()
                .and_then(|ctx| criteria.query(&ctx))
                .map(drop)
                .or_else(|why| bad(&why))?;
        }
        Ok(())
    }

    /// True while it stands.
    pub fn standing(&self) -> bool {
        self.released.is_none()
    }

    /// True if the hold's custodian, folder and time criteria cover `entry` (its query is
    /// checked by [`Holds::covering`]). An entry without a time is covered by any time range:
    /// a hold errs on the side of keeping.
    fn covers_without_query(&self, entry: &Entry) -> bool {
        entry
            .users
            .iter()
            .any(|u| self.custodians.iter().any(|c| c.eq_ignore_ascii_case(u)))
            && self.folder.as_deref().is_none_or(|p| {
                entry
                    .folder
                    .as_deref()
                    .is_some_and(|f| pattern::matches_folder(p, f))
            })
            && entry.time_ms.is_none_or(|t| {
                self.from_ms.is_none_or(|from| t >= from) && self.to_ms.is_none_or(|to| t < to)
            })
    }

    /// True if the hold covers `entry`, given what its query or case found (`found`, the job
    /// ids): a case's hold the entries of its items, any other its criteria.
    fn covers(&self, entry: &Entry, found: Option<&HashSet<String>>) -> bool {
        match (&self.discovery, found) {
            (Some(_), Some(jobs)) => jobs.contains(&entry.id),
            _ => {
                self.covers_without_query(entry) && found.is_none_or(|ids| ids.contains(&entry.id))
            }
        }
    }

    /// What the hold's query (or case) finds now: the job ids of the entries it may cover;
    /// `None` when it has no query (its criteria alone decide).
    fn found(&self, storage: &StorageClient) -> Result<Option<HashSet<String>>, RetentionError> {
        if let Some(criteria) = &self.discovery {
            return discovery::held_jobs(&self.case, criteria, storage).map(Some);
        }
        let Some(text) = &self.query else {
            return Ok(None);
        };
        let query = RecordQuery {
            collection: "log".into(),
            text: Some(text.clone()),
            all: true,
            ..RecordQuery::default()
        };
        let ids = storage
            .query(&query)
            .map_err(RetentionError::Storage)?
            .into_iter()
            .map(|r| r.key.to_string())
            .collect();
        Ok(Some(ids))
    }

    fn record(&self) -> Record {
        // A struct of strings, numbers and options always serializes.
        let body = serde_json::to_value(self).unwrap_or_default();
        Record::new(COLLECTION, &self.case, &body).at(self.created_ms)
    }
}

/// Every hold in the storage.
pub fn list(storage: &StorageClient) -> Result<Vec<Hold>, RetentionError> {
    let query = RecordQuery {
        collection: COLLECTION.into(),
        all: true,
        ..RecordQuery::default()
    };
    let mut holds = Vec::new();
    for record in storage.query(&query).map_err(RetentionError::Storage)? {
        let hold: Hold = serde_json::from_str(record.body.as_str()).map_err(|e| {
            RetentionError::Hold(format!(
                "the stored hold {:?} cannot be read ({e}); no purge runs while it cannot",
                record.key.as_str()
            ))
        })?;
        holds.push(hold);
    }
    holds.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.case.cmp(&b.case)));
    Ok(holds)
}

/// Places `hold`; refused while a hold of the same case stands. A released case may be held
/// again: the earlier hold and its release stay in the audit log.
pub fn create(storage: &StorageClient, hold: &Hold) -> Result<(), RetentionError> {
    hold.validate()?;
    let expected = match storage
        .get(COLLECTION, &hold.case)
        .map_err(RetentionError::Storage)?
    {
        Some(existing) => {
            let existing_hold: Hold =
                serde_json::from_str(existing.body.as_str()).map_err(|e| {
                    RetentionError::Hold(format!("the stored hold cannot be read: {e}"))
                })?;
            if existing_hold.standing() {
                return Err(RetentionError::Hold(format!(
                    "case {:?} is on hold already (since {} by {}): release it first, or use another case name",
                    hold.case,
                    jiff::Timestamp::from_millisecond(existing_hold.created_ms)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    existing_hold.created_by
                )));
            }
            Some(existing.body.to_string())
        }
        None => None,
    };
    if !storage
        .put_if(hold.record(), expected.as_deref())
        .map_err(RetentionError::Storage)?
    {
        return Err(RetentionError::Hold(format!(
            "case {:?} changed while it was being placed: try again",
            hold.case
        )));
    }
    Ok(())
}

/// Releases the standing hold of `case`; the released hold.
pub fn release(
    storage: &StorageClient,
    case: &str,
    release: Release,
) -> Result<Hold, RetentionError> {
    if release.reason.trim().is_empty() {
        return Err(RetentionError::Hold(format!(
            "releasing {case:?}: a release gives its reason"
        )));
    }
    let Some(existing) = storage
        .get(COLLECTION, case)
        .map_err(RetentionError::Storage)?
    else {
        return Err(RetentionError::Hold(format!("no hold of case {case:?}")));
    };
    let mut hold: Hold = serde_json::from_str(existing.body.as_str())
        .map_err(|e| RetentionError::Hold(format!("the stored hold cannot be read: {e}")))?;
    if !hold.standing() {
        return Err(RetentionError::Hold(format!(
            "the hold of case {case:?} was released already"
        )));
    }
    hold.released = Some(release);
    if !storage
        .put_if(hold.record(), Some(existing.body.as_str()))
        .map_err(RetentionError::Storage)?
    {
        return Err(RetentionError::Hold(format!(
            "case {case:?} changed while it was being released: try again"
        )));
    }
    Ok(hold)
}

/// The standing holds, ready to say which cover an entry: each query's matches read once.
#[derive(Default)]
pub struct Holds {
    holds: Vec<(Hold, Option<HashSet<String>>)>,
}

impl Holds {
    /// The standing holds in the storage, with the entries each one's query (or case) finds;
    /// an error when one cannot be evaluated.
    pub fn standing(storage: &StorageClient) -> Result<Holds, RetentionError> {
        Holds::default().refreshed(storage)
    }

    /// The standing holds read again (a purge does so before every batch): those placed or
    /// released since count. A case's hold standing unchanged keeps the items found for it
    /// earlier (its search reads every matching item's history, too much to repeat for every
    /// batch); a text query is asked again.
    pub fn refreshed(self, storage: &StorageClient) -> Result<Holds, RetentionError> {
        let mut earlier = self.holds;
        let mut holds = Vec::new();
        for hold in list(storage)?.into_iter().filter(Hold::standing) {
            let known = earlier
                .iter()
                .position(|(h, _)| h.discovery.is_some() && *h == hold)
                .map(|at| earlier.swap_remove(at).1);
            let found = match known {
                Some(found) => found,
                None => hold.found(storage)?,
            };
            holds.push((hold, found));
        }
        Ok(Holds { holds })
    }

    /// The cases whose standing holds cover `entry`.
    pub fn covering(&self, entry: &Entry) -> Vec<&str> {
        self.holds
            .iter()
            .filter(|(hold, found)| hold.covers(entry, found.as_ref()))
            .map(|(hold, _)| hold.case.as_str())
            .collect()
    }

    /// How many holds stand.
    pub fn len(&self) -> usize {
        self.holds.len()
    }

    /// True if none stands.
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Kind;

    fn hold(case: &str) -> Hold {
        Hold {
            case: case.into(),
            custodians: vec!["anna@example.org".into()],
            folder: None,
            from_ms: None,
            to_ms: None,
            query: None,
            reason: "litigation".into(),
            created_by: "root".into(),
            created_ms: 1,
            released: None,
            discovery: None,
        }
    }

    fn entry(user: &str, folder: &str, time_ms: i64) -> Entry {
        Entry {
            id: "job".into(),
            time_ms: Some(time_ms),
            users: vec![user.into()],
            folder: Some(folder.into()),
            event: "MessageNew".into(),
            kind: Kind::Messages,
        }
    }

    #[test]
    fn a_hold_covers_its_custodians_entries_in_its_folders_and_time_range() {
        let mut held = hold("case-1");
        held.folder = Some("Projects/*".into());
        held.from_ms = Some(100);
        held.to_ms = Some(200);
        assert!(held.covers_without_query(&entry("Anna@example.org", "Projects/X", 150)));
        assert!(!held.covers_without_query(&entry("bob@example.org", "Projects/X", 150)));
        assert!(!held.covers_without_query(&entry("anna@example.org", "INBOX", 150)));
        assert!(!held.covers_without_query(&entry("anna@example.org", "Projects/X", 200)));
        assert!(!held.covers_without_query(&entry("anna@example.org", "Projects/X", 99)));
        let timeless = Entry {
            time_ms: None,
            ..entry("anna@example.org", "Projects/X", 0)
        };
        assert!(
            held.covers_without_query(&timeless),
            "a hold errs on keeping"
        );
    }

    fn case_hold(queries: &[&str]) -> Hold {
        Hold {
            discovery: Some(DiscoveryCriteria {
                queries: queries.iter().map(|q| q.to_string()).collect(),
                custodians: vec!["anna@example.org".into()],
                time_zone: "Europe/Berlin".into(),
                local_domains: vec![],
            }),
            ..hold("case-2")
        }
    }

    #[test]
    fn a_hold_stored_before_case_holds_existed_reads_and_is_written_as_before() {
        let stored = r#"{"case":"case-1","custodians":["anna@example.org"],"folder":null,"from_ms":null,"to_ms":null,"query":null,"reason":"litigation","created_by":"root","created_ms":1,"released":null}"#;
        let read: Hold = serde_json::from_str(stored).unwrap();
        assert_eq!(read, hold("case-1"));
        let written: serde_json::Value = serde_json::to_value(&read).unwrap();
        assert_eq!(
            written,
            serde_json::from_str::<serde_json::Value>(stored).unwrap()
        );
    }

    #[test]
    fn a_case_hold_covers_the_entries_of_its_items_whoever_acted_and_no_other() {
        let held = case_hold(&["subject:budget"]);
        let found: HashSet<String> = ["job".to_string()].into();
        assert!(held.covers(&entry("bob@example.org", "INBOX", 5), Some(&found)));
        let other = Entry {
            id: "other".into(),
            ..entry("anna@example.org", "INBOX", 5)
        };
        assert!(
            !held.covers(&other, Some(&found)),
            "a custodian's entry of no item"
        );
    }

    #[test]
    fn a_case_hold_whose_query_does_not_parse_or_with_criteria_of_its_own_is_refused() {
        assert!(case_hold(&["subject:budget"]).validate().is_ok());
        let error = case_hold(&["subject:(budget"]).validate().unwrap_err();
        assert!(error.to_string().contains("column"), "{error}");
        let mut with_folder = case_hold(&["subject:budget"]);
        with_folder.folder = Some("INBOX".into());
        assert!(with_folder.validate().is_err());
        let mut no_custodian = case_hold(&["subject:budget"]);
        if let Some(criteria) = &mut no_custodian.discovery {
            criteria.custodians.clear();
        }
        assert!(no_custodian.validate().is_err());
    }

    #[test]
    fn a_hold_without_custodian_reason_or_with_a_reversed_range_is_refused() {
        let mut no_custodian = hold("c");
        no_custodian.custodians.clear();
        assert!(no_custodian.validate().is_err());
        let mut no_reason = hold("c");
        no_reason.reason = " ".into();
        assert!(no_reason.validate().is_err());
        let mut reversed = hold("c");
        reversed.from_ms = Some(5);
        reversed.to_ms = Some(5);
        assert!(reversed.validate().is_err());
        assert!(
            hold("\u{1b}[31mcase").validate().is_err(),
            "control characters"
        );
        assert!(hold("c").validate().is_ok());
    }
}
