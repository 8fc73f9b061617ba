//! Elasticsearch figures (`--only-es`): the bulk indexing rate of the event log through
//! bonnie-es's `write_log`, the code es-output and es-storage run, with the plugin's batching
//! (`bulk_docs` per `_bulk` request, `concurrency` requests in flight) into osmem-server; and
//! the API's changelog latency with the history of many events in es-storage, next to the
//! same count in SQLite.

use std::{path::Path, time::Instant};

use anyhow::Context as _;
use bonnie_es::{Es, Settings};
use bonnie_plugin_api::{ItemStatus, OutputItem};
use serde_json::{Value, json};

use crate::{changelog, storage};

/// Log documents per second with `bulk_docs` per request and `concurrency` requests in flight,
/// from `callers` threads each handing `write_log` batches of `bulk_docs × concurrency` items
/// (as the host hands an output its batches), `count` documents in all.
fn bulk_rate(
    url: &str,
    dead_letter: &Path,
    count: u64,
    bulk_docs: usize,
    concurrency: usize,
    callers: u64,
) -> anyhow::Result<f64> {
    let settings: Settings = serde_json::from_value(json!({
        "url": url,
        "log_prefix": format!("bench-{bulk_docs}-{concurrency}-{callers}"),
        "bulk_docs": bulk_docs,
        "concurrency": concurrency,
    }))?;
    let es = Es::new(settings, dead_letter).map_err(|e| anyhow::anyhow!("{e}"))?;
    es.ensure_templates().map_err(|e| anyhow::anyhow!("{e}"))?;
    let batch = (bulk_docs * concurrency) as u64;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..callers)
            .map(|caller| {
                let es = &es;
                scope.spawn(move || -> anyhow::Result<()> {
                    let mine: Vec<u64> = (caller..count).step_by(callers as usize).collect();
                    for chunk in mine.chunks(batch as usize) {
                        let items: Vec<OutputItem> = chunk
                            .iter()
                            .map(|n| {
                                OutputItem::new(format!("bulk-{n}"), storage::notification(*n))
                            })
                            .collect();
                        let statuses = es.write_log(&items).map_err(|e| anyhow::anyhow!("{e}"))?;
                        if let Some(bad) =
                            statuses.iter().find(|s| !matches!(s, ItemStatus::Stored))
                        {
                            anyhow::bail!("a document was not written: {bad:?}");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a bulk thread panicked"))?
        })
    })?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn changelog_json(figures: &changelog::Figures, requests: usize) -> Value {
    json!({
        "events_stored": figures.events,
        "events_recorded_per_s": super::round(figures.recorded_per_s, 0),
        "requests": requests,
        "ms_p50": super::round(figures.p50_ms, 2),
        "ms_p99": super::round(figures.p99_ms, 2),
        "server_ms_p50": super::round(figures.server_p50_ms, 2),
        "server_ms_p99": super::round(figures.server_p99_ms, 2),
    })
}

/// What `--only-es` measures.
pub struct EsArgs {
    /// Documents per bulk configuration.
    pub bulk_events: u64,
    /// Events whose history fills each store before the changelog requests.
    pub changelog_events: u64,
    /// Changelog requests timed on each store.
    pub changelog_requests: usize,
    /// Threads filling each store.
    pub fill_threads: u64,
}

/// The figures, as JSON.
pub fn figures(bin: &Path, root: &Path, args: &EsArgs) -> anyhow::Result<Value> {
    let binary = storage::search_server_binary(bin)?;
    let (_server, url) = storage::start_search_server(&binary)?;
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-es-")
        .tempdir_in(root)?;
    let dead_letter = dir.path().join("dead-letter.jsonl");
    let mut bulk = Vec::new();
    // The plugin's defaults, then more requests in flight, then a second caller (a worker's
    // second thread) on the defaults.
    for (bulk_docs, concurrency, callers) in [
        (500, 2, 1),
        (500, 4, 1),
        (1000, 4, 1),
        (500, 2, 2),
        (500, 4, 2),
    ] {
        let rate = bulk_rate(
            &url,
            &dead_letter,
            args.bulk_events,
            bulk_docs,
            concurrency,
            callers,
        )
        .with_context(|| format!("bulk of {bulk_docs} × {concurrency}, {callers} callers"))?;
        eprintln!(
            "bulk {bulk_docs} docs × {concurrency} in flight, {callers} callers: {rate:.0} docs/s"
        );
        bulk.push(json!({
            "bulk_docs": bulk_docs,
            "concurrency": concurrency,
            "callers": callers,
            "documents": args.bulk_events,
            "docs_per_s": super::round(rate, 0),
        }));
    }
    let mut changelog = serde_json::Map::new();
    for (name, target) in [
        ("sqlite", storage::Target::Sqlite),
        ("elasticsearch", storage::Target::Search(&url)),
    ] {
        let figures = changelog::latency(
            bin,
            root,
            target,
            args.changelog_events,
            args.changelog_requests,
            args.fill_threads,
        )
        .with_context(|| format!("changelog on {name}"))?;
        eprintln!(
            "changelog on {name} with {} events: p50 {:.2} ms, p99 {:.2} ms (filled at {:.0} events/s)",
            figures.events, figures.p50_ms, figures.p99_ms, figures.recorded_per_s
        );
        changelog.insert(
            name.into(),
            changelog_json(&figures, args.changelog_requests),
        );
    }
    Ok(json!({ "bulk": bulk, "changelog": changelog }))
}
