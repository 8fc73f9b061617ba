//! The one deletion path of the archive: what the policy says has expired and no hold
//! covers is purged, batch by batch. Each batch is first written to the verifiable log as a
//! purge record (the caller's `record` step: if it fails, nothing of the batch is deleted),
//! then each entry is purged in the storage with what the handlers derived from it alone (its
//! message trail entries, its groupware object facts, its session), and each payload no kept
//! entry names is removed.
//! Holds are read again before every batch, so a hold placed while a purge runs stops it for
//! what the hold covers.

use std::collections::HashSet;

use bonnie_core::ledger::LeafReport;
use bonnie_model::{dlp_incidents, mail_history, objects, sessions};
use bonnie_plugin_api::{RecordQuery, storage::StorageClient};
use jiff::Timestamp;
use serde::Serialize;

use crate::{
    RetentionError,
    holds::Holds,
    plan::walk,
    rules::{Entry, Policy},
};

/// The most a purge record's JSON holds (the broker takes audit records up to 64 KiB).
const MAX_RECORD_BYTES: usize = 40 * 1024;

/// Entries purged per batch at most.
const MAX_BATCH: usize = 200;

/// The storage's index term of the log that finds the entries naming a payload.
const PAYLOAD_TERM: &str = "payload";

/// One purged entry, as its purge record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgedEntry {
    /// The job id keying it.
    pub job_id: String,
    /// The rule that expired it.
    pub rule: String,
    /// Its time (RFC 3339), if it had one.
    pub time: Option<String>,
    /// The SHA-256 of its record's canonical bytes: what its leaf in the log commits to.
    pub record_digest: String,
    /// The payloads it named.
    pub payload_digests: Vec<String>,
}

/// What one purge record holds: the entries of a batch and the payloads removed with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeBatch {
    /// The entries purged.
    pub entries: Vec<PurgedEntry>,
    /// The payloads removed: named by those entries and by no entry kept.
    pub payloads_removed: Vec<String>,
}

/// What a purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeReport {
    /// When it ran (RFC 3339).
    pub at: String,
    /// Entries examined (those older than the newest cutoff).
    pub examined: u64,
    /// Entries purged.
    pub purged: u64,
    /// Expired entries a hold kept.
    pub held: u64,
    /// Payloads removed.
    pub payloads_removed: u64,
    /// Payloads of purged entries kept because an entry kept names them.
    pub payloads_kept: u64,
    /// Purge records written.
    pub records: u64,
    /// Records the handlers derived from purged entries alone, removed with them.
    pub derived_removed: u64,
}

/// The collections whose records are derived from one job each, keyed `<job id>/...`.
const DERIVED_BY_JOB: [&str; 4] = [
    mail_history::HISTORY,
    objects::FACTS,
    dlp_incidents::COLLECTION,
    dlp_incidents::OUTBOX,
];

/// A candidate: an entry the walk found expired and not held.
struct Candidate {
    id: String,
    rule: String,
}

/// Purges what `policy` says has expired at `now` and no standing hold covers. `record` writes
/// a batch's purge record before the batch is deleted; `progress` hears of every entry done.
pub fn purge(
    storage: &StorageClient,
    policy: &Policy,
    now: Timestamp,
    mut record: impl FnMut(&PurgeBatch) -> Result<(), RetentionError>,
    mut progress: impl FnMut(u64, u64),
) -> Result<PurgeReport, RetentionError> {
    let mut report = PurgeReport {
        at: now.to_string(),
        ..PurgeReport::default()
    };
    let mut holds = Holds::standing(storage)?;
    let mut candidates = Vec::new();
    report.examined = walk(storage, policy, &holds, now, |decided| {
        if decided.expired {
            if decided.held_by.is_empty() {
                candidates.push(Candidate {
                    id: decided.entry.id.clone(),
                    rule: decided.rule.to_string(),
                });
            } else {
                report.held += 1;
            }
        }
        Ok(())
    })?;
    let total = candidates.len() as u64;
    let mut done = 0;
    let mut rest = candidates.as_slice();
    while !rest.is_empty() {
        // Holds placed since the walk began count: read them again for every batch.
        holds = holds.refreshed(storage)?;
        let mut batch = PurgeBatch::default();
        let mut bodies = Vec::new();
        let mut bytes = 0;
        while let Some((candidate, after)) = rest.split_first() {
            if batch.entries.len() >= MAX_BATCH || bytes >= MAX_RECORD_BYTES {
                break;
            }
            rest = after;
            done += 1;
            let Some((entry, body)) = purgeable(storage, &holds, candidate, &mut report)? else {
                continue;
            };
            bytes += serde_json::to_string(&entry).map_or(0, |s| s.len());
            batch.entries.push(entry);
            bodies.push(body);
        }
        if !batch.entries.is_empty() {
            let (removed, kept) = removable_payloads(storage, &batch.entries)?;
            report.payloads_kept += kept;
            batch.payloads_removed = removed;
            record(&batch)?;
            report.records += 1;
            for (entry, body) in batch.entries.iter().zip(&bodies) {
                storage
                    .delete("log", &entry.job_id)
                    .map_err(RetentionError::Storage)?;
                report.derived_removed += remove_derived(storage, &entry.job_id, body)?;
            }
            for digest in &batch.payloads_removed {
                storage
                    .delete("payloads", digest)
                    .map_err(RetentionError::Storage)?;
            }
            report.purged += batch.entries.len() as u64;
            report.payloads_removed += batch.payloads_removed.len() as u64;
        }
        progress(done, total);
    }
    Ok(report)
}

/// Removes what the handlers derived from job `job_id` alone: its message trail entries and
/// groupware object facts (keyed by the job), and for a login or logout its session and its
/// logout's wait. How many records were removed.
fn remove_derived(
    storage: &StorageClient,
    job_id: &str,
    record: &serde_json::Value,
) -> Result<u64, RetentionError> {
    let mut removed = 0;
    for collection in DERIVED_BY_JOB {
        let query = RecordQuery {
            collection: collection.into(),
            key_prefix: Some(format!("{job_id}/")),
            all: true,
            ..RecordQuery::default()
        };
        for derived in storage.query(&query).map_err(RetentionError::Storage)? {
            if storage
                .delete(collection, derived.key.as_str())
                .map_err(RetentionError::Storage)?
            {
                removed += 1;
            }
        }
    }
    let event = record.get("event").and_then(serde_json::Value::as_str);
    if matches!(event, Some("Login" | "Logout")) {
        if let Some(session) = record.get("session_id").and_then(serde_json::Value::as_str)
            && storage
                .delete(sessions::SESSIONS, session)
                .map_err(RetentionError::Storage)?
        {
            removed += 1;
        }
        if storage
            .delete(sessions::LOGOUT_WAITS, job_id)
            .map_err(RetentionError::Storage)?
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The candidate's purged entry and its record, read again from the storage; `None` when it
/// is gone or purged already, or a hold placed since covers it (counted as held).
fn purgeable(
    storage: &StorageClient,
    holds: &Holds,
    candidate: &Candidate,
    report: &mut PurgeReport,
) -> Result<Option<(PurgedEntry, serde_json::Value)>, RetentionError> {
    let Some(stored) = storage
        .get("log", &candidate.id)
        .map_err(RetentionError::Storage)?
    else {
        return Ok(None);
    };
    let body: serde_json::Value = serde_json::from_str(stored.body.as_str()).unwrap_or_default();
    if crate::plan::is_tombstone(&body) {
        return Ok(None);
    }
    let time_ms = stored.time_ms.into_option();
    let entry = Entry::of_record(&candidate.id, time_ms, &body);
    if !holds.covering(&entry).is_empty() {
        report.held += 1;
        return Ok(None);
    }
    let leaf = LeafReport::of_stored(&candidate.id, stored.body.as_str())
        .map_err(RetentionError::Record)?;
    Ok(Some((
        PurgedEntry {
            job_id: candidate.id.clone(),
            rule: candidate.rule.clone(),
            time: time_ms
                .and_then(|t| Timestamp::from_millisecond(t).ok())
                .map(|t| t.to_string()),
            record_digest: leaf.record_digest,
            payload_digests: leaf.payload_digests,
        },
        body,
    )))
}

/// Of the payloads the batch's entries name, those no entry outside the batch names (to
/// remove), and how many others are kept for an entry kept.
fn removable_payloads(
    storage: &StorageClient,
    entries: &[PurgedEntry],
) -> Result<(Vec<String>, u64), RetentionError> {
    let purging: HashSet<&str> = entries.iter().map(|e| e.job_id.as_str()).collect();
    let mut named: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.payload_digests.iter().map(String::as_str))
        .collect();
    named.sort_unstable();
    named.dedup();
    let (mut removed, mut kept) = (Vec::new(), 0);
    for digest in named {
        let query = RecordQuery {
            collection: "log".into(),
            index: Some((PAYLOAD_TERM.into(), digest.into())),
            all: true,
            ..RecordQuery::default()
        };
        let naming = storage.query(&query).map_err(RetentionError::Storage)?;
        if naming.iter().all(|r| purging.contains(r.key.as_str())) {
            removed.push(digest.to_string());
        } else {
            kept += 1;
        }
    }
    Ok((removed, kept))
}
