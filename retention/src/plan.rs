//! What retention would remove: every log entry old enough to have expired under some rule,
//! decided by the policy, with the holds that keep it. `bonnie retention plan` prints this and
//! changes nothing; the purge walks the very same decisions.

use std::collections::BTreeMap;

use bonnie_plugin_api::storage::StorageClient;
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
    bonnie_model::log_pages::walk(
        storage,
        (None, Some(cutoff)),
        PAGE,
        |record| {
            let body: serde_json::Value =
                serde_json::from_str(record.body.as_str()).unwrap_or_default();
            if is_tombstone(&body) {
                return Ok(());
            }
            let entry = Entry::of_record(record.key.as_str(), record.time_ms.into_option(), &body);
            let decision = policy.decide(&entry);
            examined += 1;
            visit(Decided {
                entry: &entry,
                rule: decision.rule,
                expired: policy.expired(&entry, now),
                held_by: holds.covering(&entry),
            })
        },
        |_, _| {},
    )?;
    Ok(examined)
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
