//! How the archive scales: its rate with 1, 2 and 4 workers on stores that already hold 0,
//! 1 million or 10 million log entries, and the broker's memory with a million jobs pending.
//! The archive rate is the worker side alone: the notifications are queued at the broker
//! first (no worker connected), then the workers start and the clock runs until the last
//! record is synced, so the figure is the handlers' and the store's, not the dealer's.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bonnie_plugin_api::{OutputItem, abi_stable::std_types::RVec};
use serde_json::{Value, json};

use crate::{chaos::ARCHIVE_HANDLERS, lab::Lab, storage::notification};

/// Log entries per transaction while a store is filled.
const FILL_BATCH: u64 = 10_000;

/// What the scaling run measures.
pub struct Settings {
    /// Worker processes of each run.
    pub workers: Vec<usize>,
    /// Log entries the store holds before each run.
    pub stores: Vec<u64>,
    /// Notifications archived per run.
    pub events: u64,
    /// Handler threads of each worker, a run for each.
    pub threads: Vec<usize>,
}

/// A lab whose workers run every archive handler into SQLite, fed by the broker.
fn archive_lab() -> anyhow::Result<Lab> {
    let mut libraries = vec!["libbonnie_zmq_input.so", "libbonnie_sqlite_storage.so"];
    libraries.extend(ARCHIVE_HANDLERS);
    Lab::with(&libraries, "")
}

/// Appends `count` log entries to the lab's store, numbered from `first`, through the storage
/// plugin itself (its schema, hash chain and text index), as a worker would store the mix of
/// `storage::notification`; entries per second.
fn fill(lab: &Lab, first: u64, count: u64) -> anyhow::Result<f64> {
    let config = bonnie_core::Config::load(&lab.path().join("bonnie.toml"))?;
    let (_, storage) = bonnie_host::open_storage(&config, Arc::new(AtomicBool::new(false)))?;
    let started = Instant::now();
    let mut n = first;
    while n < first + count {
        let end = (n + FILL_BATCH).min(first + count);
        let mut items = RVec::new();
        for i in n..end {
            let mut record: Value = serde_json::from_str(&notification(i))?;
            let time = record["timestamp"].clone();
            record["@timestamp"] = time;
            items.push(OutputItem::new(format!("fill-{i}"), record.to_string()));
        }
        storage
            .append_log(items)
            .into_result()
            .map_err(|e| anyhow::anyhow!("filling the store: {e}"))?;
        n = end;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Removes the SQLite file `var/<name>` of the lab, with its WAL.
fn remove_database(lab: &Lab, name: &str) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = lab.path().join(format!("var/{name}{suffix}"));
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Queues `events` notifications (numbered from `first`) at a broker with no worker, then
/// starts `workers` workers: records per second from their start to the last record synced,
/// and the CPU time per event each process used meanwhile (`{broker, workers: [..], total}`
/// in µs; a worker's from its start, so its plugin loading is in it).
fn archive_rate(
    lab: &Lab,
    first: u64,
    events: u64,
    workers: usize,
) -> anyhow::Result<(f64, Value)> {
    // A new job store for each run, so that its job ids are new.
    remove_database(lab, "broker.db")?;
    let broker = lab.broker()?;
    lab.submit(first..first + events, |n| notification(n).into_bytes())?;
    let before = lab.archived();
    let broker_before = broker.cpu_time("broker")?;
    let started = Instant::now();
    let running: Vec<_> = (0..workers)
        .map(|_| lab.worker())
        .collect::<Result<_, _>>()?;
    crate::wait_archived(lab, before + events, started)?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    let per_event = |cpu_s: f64| crate::us_per_event(cpu_s, events);
    let broker_cpu = broker.cpu_time("broker")? - broker_before;
    let worker_cpu: Vec<f64> = running
        .iter()
        .map(|w| w.cpu_time("worker"))
        .collect::<Result<_, _>>()?;
    let total = broker_cpu + worker_cpu.iter().sum::<f64>();
    let cpu = json!({
        "broker": per_event(broker_cpu),
        "workers": worker_cpu.iter().map(|&c| per_event(c)).collect::<Vec<_>>(),
        "total": per_event(total),
    });
    Ok((rate, cpu))
}

/// The scaling table: one row per store size and worker count, as
/// `{workers, threads, store_records, events_per_s, cpu_us_per_event}`. A store of 0 is new
/// for each run; a larger one is filled once and then grows by each run's events, and its row
/// says what it held.
pub fn table(settings: &Settings) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    for &store in &settings.stores {
        let lab = archive_lab()?;
        if store > 0 {
            let rate = fill(&lab, 0, store)?;
            eprintln!("store filled with {store} log entries at {rate:.0}/s");
        }
        for &workers in &settings.workers {
            for &threads in &settings.threads {
                if store == 0 {
                    remove_database(&lab, "bonnie.db")?;
                }
                lab.set_worker_threads(threads)?;
                // One worker alone is its storage's sole writer, as the package runs it.
                lab.set_sole_writer(workers == 1)?;
                let held = lab.archived();
                // Numbered after what the store holds, so that no session or message repeats.
                let (rate, cpu) = archive_rate(&lab, held, settings.events, workers)?;
                eprintln!(
                    "archive with {workers} workers of {threads} handler threads, {held} \
                     records stored: {rate:.0}/s, CPU per event {} µs",
                    cpu["total"]
                );
                rows.push(json!({
                    "workers": workers,
                    "threads": threads,
                    "store_records": held,
                    "events_per_s": crate::round(rate, 0),
                    "cpu_us_per_event": cpu,
                }));
            }
        }
    }
    Ok(Value::Array(rows))
}

/// The broker's resident memory with `pending` jobs waiting and no worker: right after they
/// were submitted, and after a restart that loads them from its store.
pub fn broker_memory(pending: usize) -> anyhow::Result<Value> {
    let lab = Lab::new()?;
    let mut broker = lab.broker()?;
    let rate = lab.submit(0..pending as u64, |n| notification(n).into_bytes())?;
    eprintln!("{pending} jobs submitted at {rate:.0}/s");
    // The last batch's writes and the allocator settle.
    std::thread::sleep(Duration::from_secs(1));
    let mib = |kib: Option<u64>| kib.map(|k| crate::round(k as f64 / 1024.0, 1));
    let (rss, peak) = (mib(broker.rss_kib()), mib(broker.peak_rss_kib()));
    broker.kill();
    let restarted = lab.broker()?;
    let (rss_restart, peak_restart) = (mib(restarted.rss_kib()), mib(restarted.peak_rss_kib()));
    eprintln!(
        "broker with {pending} pending: {rss:?} MiB resident ({peak:?} at peak); after a restart {rss_restart:?} MiB ({peak_restart:?})"
    );
    Ok(json!({
        "pending_jobs": pending,
        "broker_rss_mb_1m_pending": rss,
        "broker_peak_rss_mb": peak,
        "broker_rss_mb_after_restart": rss_restart,
        "broker_peak_rss_mb_after_restart": peak_restart,
    }))
}
