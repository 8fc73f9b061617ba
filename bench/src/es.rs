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

/// What the server itself takes: `count` one-field documents (`{"n": 1}`) into one index
/// without bonnie's template, in `_bulk` requests of `per_request` encoded beforehand, sent by
/// `in_flight` threads over plain HTTP (one connection a request). No client does less per
/// document, so this is the ceiling any client's rate on this server and machine stays under.
fn server_ceiling(
    url: &str,
    count: u64,
    per_request: u64,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let authority = url
        .strip_prefix("http://")
        .context("the search server's URL is not http://")?;
    let bodies: Vec<String> = (0..count)
        .step_by(per_request as usize)
        .map(|start| {
            (start..(start + per_request).min(count))
                .map(|n| {
                    format!(
                        "{{\"create\":{{\"_index\":\"ceiling\",\"_id\":\"{n}\"}}}}\n{{\"n\":{n}}}\n"
                    )
                })
                .collect()
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..in_flight)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(body) = bodies.get(n) else {
                            return Ok(());
                        };
                        let request = format!(
                            "POST /_bulk HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let answer = bonnie_tests::api::exchange(authority, request.as_bytes())
                            .context("no answer to a bulk request")?;
                        if answer.status != 200 || answer.body.contains("\"errors\":true") {
                            anyhow::bail!("a bulk request failed ({}): {:.300}", answer.status, answer.body);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a ceiling thread panicked"))?
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

/// One batching configuration of the bulk figures: `DOCS×IN_FLIGHT×CALLERS` on the command
/// line (an ASCII `x` will do).
#[derive(Debug, Clone, Copy)]
pub struct BulkConfig {
    /// Documents per `_bulk` request (the plugin's `bulk_docs`).
    pub bulk_docs: usize,
    /// Requests in flight at once (the plugin's `concurrency`).
    pub concurrency: usize,
    /// Threads calling `write_log` at once (a worker's threads).
    pub callers: u64,
}

impl std::str::FromStr for BulkConfig {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(['x', '×']).map(str::trim).collect();
        let number = |part: &str| -> Result<usize, String> {
            match part.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{part:?} in {text:?} is not a positive number")),
            }
        };
        match parts.as_slice() {
            [docs, in_flight, callers] => Ok(Self {
                bulk_docs: number(docs)?,
                concurrency: number(in_flight)?,
                callers: number(callers)? as u64,
            }),
            _ => Err(format!(
                "{text:?} is not DOCSxIN_FLIGHTxCALLERS (for example 1000x4x1)"
            )),
        }
    }
}

/// What `--only-es` measures.
pub struct EsArgs {
    /// Documents per bulk configuration.
    pub bulk_events: u64,
    /// The batching configurations measured.
    pub bulk_configs: Vec<BulkConfig>,
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
    // Every measurement on a server of its own: osmem-server keeps everything in memory (about
    // 7 KB a record here), and what an earlier measurement left would weigh on the next.
    let dir = tempfile::Builder::new()
        .prefix("bonnie-bench-es-")
        .tempdir_in(root)?;
    let dead_letter = dir.path().join("dead-letter.jsonl");
    let mut bulk = Vec::new();
    for &BulkConfig {
        bulk_docs,
        concurrency,
        callers,
    } in &args.bulk_configs
    {
        let (_server, url) = storage::start_search_server(&binary)?;
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
    let ceiling = {
        let (_server, url) = storage::start_search_server(&binary)?;
        server_ceiling(&url, args.bulk_events, 1000, 4)?
    };
    eprintln!(
        "the server's own ceiling: {ceiling:.0} one-field docs/s (1000 per request, 4 in flight, plain HTTP)"
    );
    let mut changelog = serde_json::Map::new();
    let (_server, url) = storage::start_search_server(&binary)?;
    for (name, target) in [
        ("sqlite", storage::Target::Sqlite),
        ("elasticsearch", storage::Target::Search(&url)),
    ] {
        let figures = changelog::latency(
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
    Ok(json!({
        "bulk": bulk,
        "server_ceiling": {
            "what": "one-field documents, 1000 per _bulk request encoded beforehand, 4 in flight over plain HTTP, no template",
            "documents": args.bulk_events,
            "docs_per_s": super::round(ceiling, 0),
        },
        "changelog": changelog,
    }))
}
