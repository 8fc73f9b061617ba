//! Answers to the admin command line: the broker's status and the FAILED jobs, as JSON.

use anyhow::Context as _;
use bonnie_core::{protocol::AdminReply, time::now_ms};
use serde_json::json;

use crate::{counters::Counters, jobs::Jobs, metrics::STATES, server::printable, store::Store};

/// Jobs per state, workers and collectors with their last contact, the age of the oldest
/// unfinished job, and the routers' counters.
pub fn status(
    store: &Store,
    jobs: &Jobs,
    counters: &Counters,
    started_ms: i64,
) -> anyhow::Result<AdminReply> {
    let now = now_ms();
    let (counts, oldest_age_s) = job_counts(store, jobs, now)?;
    let job_counts: serde_json::Map<String, serde_json::Value> = STATES
        .iter()
        .zip(counts)
        .map(|(state, count)| (state.to_string(), json!(count)))
        .collect();
    let seconds = |ms: i64| (now - ms).max(0) as f64 / 1000.0;
    let peers = |map: &std::collections::HashMap<Vec<u8>, crate::jobs::Peer>, collectors: bool| {
        let mut list: Vec<serde_json::Value> = map
            .iter()
            .map(|(identity, peer)| {
                let mut entry = json!({
                    "identity": printable(identity),
                    "credit": peer.credit,
                    "jobs": peer.jobs.len(),
                    "last_seen_s_ago": seconds(peer.last_seen_ms),
                });
                if collectors {
                    entry["host"] = json!(peer.host);
                    entry["commands"] = json!(peer.commands);
                }
                entry
            })
            .collect();
        list.sort_by(|a, b| a["identity"].as_str().cmp(&b["identity"].as_str()));
        list
    };
    let body = json!({
        "jobs": job_counts,
        "waiting_for_collectors": jobs.counts().pending_collector,
        "oldest_unfinished_age_s": oldest_age_s,
        "workers": peers(&jobs.workers, false),
        "collectors": peers(&jobs.collectors, true),
        "routers": counters.snapshot(),
        "uptime_s": seconds(started_ms),
    });
    Ok(AdminReply::Ok(body.to_string()))
}

/// Jobs per state, in the order of [`STATES`], and the age in seconds of the oldest
/// unfinished job: what `bonnie status` shows and the metrics' gauges hold.
pub fn job_counts(
    store: &Store,
    jobs: &Jobs,
    now_ms: i64,
) -> anyhow::Result<([u64; 5], Option<f64>)> {
    let stored = store.counts().context("cannot count the jobs")?;
    let stored_count = |state: &str| stored.get(state).copied().unwrap_or(0);
    // Allocation lives in memory; the store still says PENDING for those jobs.
    let alloc = jobs.counts().alloc as u64;
    let counts = STATES.map(|state| match state {
        "PENDING" => stored_count("PENDING").saturating_sub(alloc),
        "ALLOC" => alloc,
        other => stored_count(other),
    });
    let oldest = store
        .oldest_unfinished_ms()
        .context("cannot read the oldest job")?;
    Ok((
        counts,
        oldest.map(|ms| (now_ms - ms).max(0) as f64 / 1000.0),
    ))
}

/// The newest FAILED jobs.
pub fn failed(store: &Store, limit: u32) -> anyhow::Result<AdminReply> {
    let failed = store.failed(limit).context("cannot list the FAILED jobs")?;
    Ok(AdminReply::Ok(serde_json::to_string(&failed)?))
}
