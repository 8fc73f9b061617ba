//! What retention would remove: every log entry old enough to have expired under some rule,
//! decided by the policy, with the holds that keep it. `bonnie retention plan` prints this and
//! changes nothing; the purge walks the very same decisions.

use std::collections::{BTreeMap, HashSet};

use bonnie_plugin_api::{RecordQuery, storage::StorageClient};
use jiff::Timestamp;
use serde::Serialize;

use crate::{
    RetentionError,
    holds::Holds,
    rules::{Entry, Policy},
};

/// Log entries read per query.
const PAGE: u32 = 5_000;

/// Entries of each rule shown in a plan.
const SAMPLE: usize = 5;

/// What the policy decided for one entry.
#[derive(Debug, Clone)]
pub struct Decided<'a> {
    /// The entry.
    pub entry: &'a Entry,
    /// The rule deciding its keep.
    pub rule: &'a str,
    /// Whether it outlived its keep.
    pub expired: bool,
    /// The cases whose holds keep it.
    pub held_by: Vec<&'a str>,
}

/// True if a log record is a purged entry's tombstone (what the storage leaves in its place).
pub fn is_tombstone(record: &serde_json::Value) -> bool {
    record.get("purged") == Some(&serde_json::Value::Bool(true))
}

/// Calls `visit` with the decision for every log entry older than the newest cutoff of the
/// policy at `now` (no younger entry can have expired), oldest first; stops at the first error
/// `visit` returns. How many entries were examined.
pub fn walk(
    storage: &StorageClient,
    policy: &Policy,
    holds: &Holds,
    now: Timestamp,
    mut visit: impl FnMut(Decided<'_>) -> Result<(), RetentionError>,
) -> Result<u64, RetentionError> {
    let Some(cutoff) = policy.latest_cutoff_ms(now) else {
        return Ok(0);
    };
    let mut examined = 0;
    // Pages by time: the next starts at the last time seen, skipping the keys seen at it.
    let mut from_ms: Option<i64> = None;
    let mut seen_at_from: HashSet<String> = HashSet::new();
    let mut limit = PAGE;
    loop {
        let query = RecordQuery {
            collection: "log".into(),
            from_ms,
            to_ms: Some(cutoff),
            limit,
            ..RecordQuery::default()
        };
        let page = storage.query(&query).map_err(RetentionError::Storage)?;
        let full = page.len() as u32 >= limit;
        let time = |r: &bonnie_plugin_api::Record| r.time_ms.into_option();
        let last_ms = page.last().and_then(time);
        if full && page.first().and_then(time) == last_ms {
            // A whole page at one millisecond: read more of it at once.
            limit = limit.saturating_mul(2);
            continue;
        }
        for record in &page {
            let key = record.key.as_str();
            let time_ms = time(record);
            if time_ms == from_ms && seen_at_from.contains(key) {
                continue;
            }
            let body: serde_json::Value =
                serde_json::from_str(record.body.as_str()).unwrap_or_default();
            if is_tombstone(&body) {
                continue;
            }
            let entry = Entry::of_record(key, time_ms, &body);
            let decision = policy.decide(&entry);
            examined += 1;
            visit(Decided {
                entry: &entry,
                rule: decision.rule,
                expired: policy.expired(&entry, now),
                held_by: holds.covering(&entry),
            })?;
        }
        let (true, Some(last_ms)) = (full, last_ms) else {
            // A page that is not full is the last.
            return Ok(examined);
        };
        if Some(last_ms) != from_ms {
            seen_at_from.clear();
        }
        seen_at_from.extend(
            page.iter()
                .filter(|r| time(r) == Some(last_ms))
                .map(|r| r.key.to_string()),
        );
        from_ms = Some(last_ms);
        limit = PAGE;
    }
}

/// One entry shown in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Sampled {
    /// The job id keying it.
    pub id: String,
    /// Its time (RFC 3339).
    pub time: String,
    /// Its event.
    pub event: String,
    /// Its user and folder owner.
    pub users: Vec<String>,
    /// Its folder.
    pub folder: Option<String>,
    /// The holds keeping it, if any.
    pub held_by: Vec<String>,
}

/// What one rule would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RulePlan {
    /// Its keep, as configured.
    pub keep: String,
    /// Entries it decides that outlived their keep.
    pub expired: u64,
    /// Of those, kept by a hold.
    pub held: u64,
    /// Of those, what a purge would remove.
    pub purged: u64,
    /// A few of those it would remove.
    pub sample: Vec<Sampled>,
    /// A few of those a hold keeps.
    pub held_sample: Vec<Sampled>,
}

/// What `bonnie retention plan` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// When it was computed (RFC 3339).
    pub at: String,
    /// Entries examined (those older than the newest cutoff).
    pub examined: u64,
    /// Standing holds.
    pub holds: usize,
    /// By rule name (`default` for the default).
    pub rules: BTreeMap<String, RulePlan>,
    /// Over all rules: what a purge would remove.
    pub purged: u64,
    /// Over all rules: what holds keep.
    pub held: u64,
}

fn sampled(decided: &Decided<'_>) -> Sampled {
    Sampled {
        id: decided.entry.id.clone(),
        time: decided
            .entry
            .time_ms
            .and_then(|t| Timestamp::from_millisecond(t).ok())
            .map(|t| t.to_string())
            .unwrap_or_default(),
        event: decided.entry.event.clone(),
        users: decided.entry.users.clone(),
        folder: decided.entry.folder.clone(),
        held_by: decided.held_by.iter().map(|c| c.to_string()).collect(),
    }
}

/// The plan at `now`: counts per rule and a sample of each; changes nothing.
pub fn plan(
    storage: &StorageClient,
    policy: &Policy,
    holds: &Holds,
    now: Timestamp,
) -> Result<Plan, RetentionError> {
    let mut rules: BTreeMap<String, RulePlan> = policy
        .rules
        .iter()
        .map(|r| (r.name.clone(), r.keep))
        .chain([(crate::rules::DEFAULT_RULE.to_string(), policy.default)])
        .map(|(name, keep)| {
            (
                name,
                RulePlan {
                    keep: keep.to_string(),
                    ..RulePlan::default()
                },
            )
        })
        .collect();
    let examined = walk(storage, policy, holds, now, |decided| {
        if !decided.expired {
            return Ok(());
        }
        let Some(rule) = rules.get_mut(decided.rule) else {
            return Ok(());
        };
        rule.expired += 1;
        if decided.held_by.is_empty() {
            rule.purged += 1;
            if rule.sample.len() < SAMPLE {
                rule.sample.push(sampled(&decided));
            }
        } else {
            rule.held += 1;
            if rule.held_sample.len() < SAMPLE {
                rule.held_sample.push(sampled(&decided));
            }
        }
        Ok(())
    })?;
    Ok(Plan {
        at: now.to_string(),
        examined,
        holds: holds.len(),
        purged: rules.values().map(|r| r.purged).sum(),
        held: rules.values().map(|r| r.held).sum(),
        rules,
    })
}
