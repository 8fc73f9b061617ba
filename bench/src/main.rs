//! `bonnie-bench`: measures the real binaries on this machine and prints one JSON object:
//! the dealer's whole-process time, the broker's durable submission rate, the end-to-end
//! rate and latency (dealer daemon → broker → two workers → SQLite, every commit synced),
//! and a plain ZeroMQ round trip on the same machine as the reference.
#![forbid(unsafe_code)]

mod archive;
mod backfill;
mod changelog;
mod chaos;
mod cyrus;
mod discovery;
mod dlp;
mod es;
mod lab;
mod ledger;
mod load;
mod maillog;
mod mailtext;
mod payload;
mod payload_store;
mod restore;
mod scale;
mod storage;

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bonnie_core::transport;
use clap::Parser;
use serde_json::{Value, json};

use crate::lab::Lab;

/// Measures bonnie on this machine and prints the figures as one JSON object.
#[derive(Parser)]
#[command(name = "bonnie-bench", version)]
struct Args {
    /// Notifications for the end-to-end throughput run
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Cyrus connections (dlist requests) open at once in the end-to-end runs
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Offered load for the latency run, notifications per second
    #[arg(long, default_value_t = 2000)]
    latency_rate: u64,
    /// Dealer processes started for the exec-mode timing
    #[arg(long, default_value_t = 500)]
    dealer_runs: usize,
    /// Submissions for the broker's durable rate
    #[arg(long, default_value_t = 100_000)]
    submits: usize,
    /// Notifications replayed into each storage for the records-per-second figures
    #[arg(long, default_value_t = 50_000)]
    records: u64,
    /// APPENDs per Cyrus run (notifications off, exec dealer, dealer daemon)
    #[arg(long, default_value_t = 1000)]
    appends: usize,
    /// Message events whose history is stored before the changelog requests
    #[arg(long, default_value_t = 1_000_000)]
    changelog_events: u64,
    /// Changelog requests timed against bonnie-api
    #[arg(long, default_value_t = 2000)]
    changelog_requests: usize,
    /// Run only the changelog figures
    #[arg(long)]
    only_changelog: bool,
    /// Run only the end-to-end throughput and latency figures
    #[arg(long, conflicts_with = "only_changelog")]
    only_e2e: bool,
    /// Run only the end-to-end figure through the shipped archive (every archive handler,
    /// changelog, free/busy, SQLite, CURVE on), with --events and --connections
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e"])]
    only_archive: bool,
    /// Workers of the shipped archive's run and the handler threads of each (0: one per
    /// core, as etc/bonnie.toml ships), as WORKERSxTHREADS; one worker alone is its storage's
    /// sole writer (as shipped) unless the shape ends in -shared. The headline is 1x0, the
    /// shipped worker
    #[arg(long, default_value = "1x0", value_parser = archive::parse_shape)]
    archive_workers: archive::Shape,
    /// Notifications for the chaos run (processes killed at random while they go through)
    #[arg(long, default_value_t = 100_000)]
    chaos_events: u64,
    /// Offered load of the chaos run, notifications per second
    #[arg(long, default_value_t = 2000)]
    chaos_rate: u64,
    /// Shortest pause between two kills in the chaos run, in seconds
    #[arg(long, default_value_t = 3)]
    chaos_kill_min_s: u64,
    /// Longest pause between two kills in the chaos run, in seconds
    #[arg(long, default_value_t = 10)]
    chaos_kill_max_s: u64,
    /// Messages of the mixed corpus for the body-text figures
    #[arg(long, default_value_t = 1000)]
    mail_messages: usize,
    /// Run only the body-text figures
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e"])]
    only_mail: bool,
    /// Run only the chaos run
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e"])]
    only_chaos: bool,
    /// Run only the Elasticsearch figures (bulk indexing rate; changelog latency on
    /// es-storage and on SQLite with --es-changelog-events each)
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos"])]
    only_es: bool,
    /// Log documents bulk-indexed into osmem-server per batching configuration
    #[arg(long, default_value_t = 100_000)]
    es_bulk_events: u64,
    /// Batching configurations of the bulk figures, each DOCS×IN_FLIGHT×CALLERS (documents
    /// per `_bulk` request, requests in flight, threads calling write_log), comma separated;
    /// 256x1x2 is what a worker's two threads send with the default `[worker] batch_size`
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256x1x2,500x2x1,1000x4x1,1000x8x1"
    )]
    es_bulk: Vec<es::BulkConfig>,
    /// Message events whose history fills es-storage (and SQLite, for comparison) before the
    /// changelog requests of --only-es
    #[arg(long, default_value_t = 1_000_000)]
    es_changelog_events: u64,
    /// Threads filling each store for --only-es
    #[arg(long, default_value_t = 4)]
    es_fill_threads: u64,
    /// Run only the scaling table and the broker's memory with jobs pending
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es"])]
    only_scale: bool,
    /// Worker counts of the scaling table
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    scale_workers: Vec<usize>,
    /// Log entries the store holds before each scaling run; 10000000 takes about 10 minutes
    /// more to fill (and about 10 GB of disk), so it is not in the default
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1_000_000])]
    scale_stores: Vec<u64>,
    /// Notifications archived per scaling run
    #[arg(long, default_value_t = 30_000)]
    scale_events: u64,
    /// Handler threads of each worker in the scaling table, a run for each
    #[arg(long, value_delimiter = ',', default_values_t = [2])]
    scale_threads: Vec<usize>,
    /// Jobs pending at the broker (no worker) when its memory is read
    #[arg(long, default_value_t = 1_000_000)]
    broker_pending: usize,
    /// Run only the payload ingest on a real Cyrus spool
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale"])]
    only_payload: bool,
    /// Messages of the body-text corpus delivered to Cyrus for the payload ingest
    #[arg(long, default_value_t = 1000)]
    payload_messages: usize,
    /// Workers of the payload ingest
    #[arg(long, default_value_t = 2)]
    payload_workers: usize,
    /// Run only the payload store figures (payload folder and moto's S3 server: write and
    /// read MB/s)
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload"])]
    only_payload_store: bool,
    /// Payloads (4 KB to 1 MB) written and read per payload store
    #[arg(long, default_value_t = 2000)]
    payload_store_payloads: usize,
    /// Run only the Postfix log figures (intake, parse and stitch, pflogsumm)
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload"])]
    only_maillog: bool,
    /// Lines of the generated Postfix log
    #[arg(long, default_value_t = 200_000)]
    maillog_lines: usize,
    /// Only the verifiable log's figures: `bonnie verify` over records and over payloads, and
    /// a checkpoint of a large tree
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload", "only_maillog"])]
    only_ledger: bool,
    /// Records in the archive `bonnie verify` reads (--only-ledger)
    #[arg(long, default_value_t = 50_000)]
    verify_records: u64,
    /// Messages of the body-text corpus, delivered to a real Cyrus and collected, whose
    /// payloads `bonnie verify` reads
    #[arg(long, default_value_t = 1_000)]
    verify_messages: usize,
    /// Leaves of the tree a checkpoint is made of
    #[arg(long, default_value_t = 10_000_000)]
    checkpoint_leaves: u64,
    /// Only the DLP figures: the shipped rules' scanning rate, and the payload ingest without
    /// and with the DLP handler
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload", "only_maillog", "only_ledger"])]
    only_dlp: bool,
    /// Messages of the DLP scanning corpus (--only-dlp)
    #[arg(long, default_value_t = 1_000)]
    dlp_messages: usize,
    /// Only the back-fill figures: messages/s and MB/s from a real Cyrus (--payload-messages,
    /// --payload-workers), and Cyrus's APPEND rate for another user during the run and before
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload", "only_maillog", "only_ledger", "only_dlp"])]
    only_backfill: bool,
    /// The --rate of the throttled half of --only-backfill (messages a second)
    #[arg(long, default_value_t = 50)]
    backfill_rate: u32,
    /// Only the restore figures: `bonnie restore` into a real Cyrus and `mbsync` pushing the
    /// same messages from a Maildir into it, messages/s and MB/s (--payload-messages)
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload", "only_maillog", "only_ledger", "only_dlp", "only_backfill"])]
    only_restore: bool,
    /// Only the e-discovery figures: search latency and export throughput over a generated
    /// archive with body text, and a real Cyrus's IMAP SEARCH beside bonnie's search
    #[arg(long, conflicts_with_all = ["only_changelog", "only_e2e", "only_chaos", "only_mail", "only_es", "only_scale", "only_payload", "only_maillog", "only_ledger", "only_dlp", "only_backfill"])]
    only_discovery: bool,
    /// Messages of the archive searched (--only-discovery); the store takes about 1.3 GB per
    /// 100,000 under $BONNIE_BENCH_DIR
    #[arg(long, default_value_t = 1_000_000)]
    discovery_messages: usize,
    /// Queries timed per kind (--only-discovery)
    #[arg(long, default_value_t = 210)]
    discovery_queries: usize,
    /// Only the queries of these kinds, e.g. user_and_word (--only-discovery; every kind
    /// when not given): to profile one
    #[arg(long, value_delimiter = ',')]
    discovery_kinds: Vec<String>,
    /// Items exported per format (--only-discovery)
    #[arg(long, default_value_t = 10_000)]
    discovery_export_items: usize,
    /// Messages appended to a real Cyrus for the side-by-side IMAP SEARCH (--only-discovery)
    #[arg(long, default_value_t = 20_000)]
    discovery_cyrus_messages: usize,
    /// IMAP searches timed per kind and index state (--only-discovery)
    #[arg(long, default_value_t = 50)]
    discovery_cyrus_queries: usize,
    /// Threads filling the archive (--only-discovery)
    #[arg(long, default_value_t = 2)]
    discovery_fill_threads: usize,
    /// Fill the archive without the custodian records the archive handlers write, and search
    /// it unnarrowed (--only-discovery): what they cost and what they save
    #[arg(long)]
    discovery_without_custodians: bool,
    /// Seconds squatter may take to build Cyrus's Xapian index (--only-discovery)
    #[arg(long, default_value_t = 600)]
    discovery_squatter_timeout_s: u64,
    /// Keep the searched archive in this folder, and search the one already there when it
    /// holds the same messages (--only-discovery): an archive of 1,000,000 takes over an hour
    /// to fill
    #[arg(long)]
    discovery_archive: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bonnie-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn changelog_figures(args: &Args) -> anyhow::Result<Value> {
    let figures = changelog::latency(
        storage::Target::Sqlite,
        args.changelog_events,
        args.changelog_requests,
        1,
    )?;
    eprintln!(
        "changelog requests with {} events stored: p50 {:.2} ms, p99 {:.2} ms",
        figures.events, figures.p50_ms, figures.p99_ms
    );
    Ok(json!({
        "changelog_events_stored": figures.events,
        "changelog_events_recorded_per_s": round(figures.recorded_per_s, 0),
        "changelog_requests": args.changelog_requests,
        "changelog_ms_p50": round(figures.p50_ms, 2),
        "changelog_ms_p99": round(figures.p99_ms, 2),
        "changelog_server_ms_p50": round(figures.server_p50_ms, 2),
        "changelog_server_ms_p99": round(figures.server_p99_ms, 2),
    }))
}

fn chaos_figures(args: &Args) -> anyhow::Result<Value> {
    let bin = lab::bin_dir()?;
    let report = chaos::run(
        &bin,
        &chaos::Settings {
            events: args.chaos_events,
            rate: args.chaos_rate,
            exec_every: 10,
            exec_parallel: 8,
            connections: args.connections,
            kill_every_s: (
                args.chaos_kill_min_s,
                args.chaos_kill_max_s.max(args.chaos_kill_min_s + 1),
            ),
        },
    )?;
    eprintln!(
        "chaos: {} accepted, {} stored, {} lost, {} duplicated, drained in {} s",
        report["accepted"],
        report["stored"],
        report["lost"],
        report["duplicated"],
        report["drain_s"]
    );
    Ok(report)
}

fn mail_figures(args: &Args) -> anyhow::Result<Value> {
    let f = mailtext::throughput(&lab::bin_dir()?, &lab::bench_root()?, args.mail_messages)?;
    eprintln!(
        "body text: extracted {:.0} messages/s ({:.1} MB/s), stored and indexed {:.0} messages/s ({:.1} MB/s)",
        f.extract.0, f.extract.1, f.index.0, f.index.1
    );
    Ok(json!({
        "messages": f.messages,
        "mb": round(f.bytes as f64 / 1e6, 1),
        "extract_messages_per_s": round(f.extract.0, 0),
        "extract_mb_per_s": round(f.extract.1, 1),
        "index_messages_per_s": round(f.index.0, 0),
        "index_mb_per_s": round(f.index.1, 1),
    }))
}

fn scale_figures(args: &Args) -> anyhow::Result<Value> {
    let broker_memory = scale::broker_memory(args.broker_pending)?;
    let table = scale::table(&scale::Settings {
        workers: args.scale_workers.clone(),
        stores: args.scale_stores.clone(),
        events: args.scale_events,
        threads: args.scale_threads.clone(),
    })?;
    Ok(json!({ "broker_memory": broker_memory, "archive_scaling": table }))
}

fn payload_figures(args: &Args) -> anyhow::Result<Value> {
    payload::ingest(&payload::Settings {
        messages: args.payload_messages,
        workers: args.payload_workers,
        ledger: false,
        dlp: false,
    })
}

fn ledger_figures(args: &Args) -> anyhow::Result<Value> {
    ledger::figures(&ledger::Settings {
        records: args.verify_records,
        messages: args.verify_messages,
        checkpoint_leaves: args.checkpoint_leaves,
    })
}

fn run(args: &Args) -> anyhow::Result<Value> {
    if args.only_discovery {
        let figures = discovery::figures(&discovery::Settings {
            messages: args.discovery_messages,
            queries: args.discovery_queries,
            kinds: args.discovery_kinds.clone(),
            export_items: args.discovery_export_items,
            cyrus_messages: args.discovery_cyrus_messages,
            cyrus_queries: args.discovery_cyrus_queries,
            fill_threads: args.discovery_fill_threads.max(1),
            without_custodians: args.discovery_without_custodians,
            squatter_timeout_s: args.discovery_squatter_timeout_s,
            keep: args.discovery_archive.clone(),
        })?;
        return Ok(json!({ "machine": machine(), "discovery": figures }));
    }
    if args.only_restore {
        let figures = restore::figures(args.payload_messages, args.payload_workers)?;
        return Ok(json!({ "machine": machine(), "restore": figures }));
    }
    if args.only_backfill {
        let figures = backfill::figures(
            args.payload_messages,
            args.payload_workers,
            args.backfill_rate,
        )?;
        return Ok(json!({ "machine": machine(), "backfill": figures }));
    }
    if args.only_dlp {
        let figures = dlp::figures(&dlp::DlpSettings {
            messages: args.dlp_messages,
            pipeline_messages: args.payload_messages,
            workers: args.payload_workers,
        })?;
        return Ok(json!({ "machine": machine(), "dlp": figures }));
    }
    if args.only_payload_store {
        let figures = payload_store::figures(args.payload_store_payloads)?;
        return Ok(json!({ "machine": machine(), "payload_store": figures }));
    }
    if args.only_ledger {
        return Ok(json!({ "machine": machine(), "ledger": ledger_figures(args)? }));
    }
    if args.only_maillog {
        let figures = maillog::figures(args.maillog_lines)?;
        return Ok(json!({ "machine": machine(), "maillog": figures }));
    }
    if args.only_payload {
        return Ok(json!({ "machine": machine(), "payload_ingest": payload_figures(args)? }));
    }
    if args.only_scale {
        return Ok(json!({ "machine": machine(), "scale": scale_figures(args)? }));
    }
    if args.only_mail {
        return Ok(json!({ "machine": machine(), "body_text": mail_figures(args)? }));
    }
    if args.only_chaos {
        return Ok(json!({ "machine": machine(), "chaos": chaos_figures(args)? }));
    }
    if args.only_es {
        let figures = es::figures(
            &lab::bin_dir()?,
            &lab::bench_root()?,
            &es::EsArgs {
                bulk_events: args.es_bulk_events,
                bulk_configs: args.es_bulk.clone(),
                changelog_events: args.es_changelog_events,
                changelog_requests: args.changelog_requests,
                fill_threads: args.es_fill_threads,
            },
        )?;
        return Ok(json!({ "machine": machine(), "elasticsearch": figures }));
    }
    if args.only_changelog {
        return Ok(json!({ "machine": machine(), "changelog": changelog_figures(args)? }));
    }
    if args.only_archive {
        let mut report = archive::figures(args.events, args.connections, args.archive_workers)?;
        report.insert("machine".into(), machine());
        return Ok(Value::Object(report));
    }
    if args.only_e2e {
        let (e2e, processes) = end_to_end_per_s(args.events, args.connections)?;
        eprintln!("end to end: {e2e:.0}/s");
        let (p50, p99) = end_to_end_latency_ms(args.latency_rate, args.connections)?;
        return Ok(json!({
            "machine": machine(),
            "e2e_events_per_s": round(e2e, 0),
            "e2e_events": args.events,
            "e2e_latency_ms_p50": round(p50, 1),
            "e2e_latency_ms_p99": round(p99, 1),
            "e2e_latency_offered_per_s": args.latency_rate,
            "processes": processes,
        }));
    }
    let roundtrips = zmq_roundtrip_per_s(20_000)?;
    eprintln!("zmq round trips: {roundtrips:.0}/s");
    let (submits_per_s, dealer) = {
        let lab = Lab::new()?;
        let broker = lab.broker()?;
        let submits = broker_durable_submits_per_s(&lab, args.submits)?;
        eprintln!("broker durable submits: {submits:.0}/s");
        let dealer = dealer_exec_ms(&lab, args.dealer_runs)?;
        eprintln!(
            "dealer exec: p50 {:.2} ms, p99 {:.2} ms",
            dealer.0, dealer.1
        );
        drop(broker);
        (submits, dealer)
    };
    let (e2e, memory) = end_to_end_per_s(args.events, args.connections)?;
    eprintln!("end to end: {e2e:.0}/s");
    let shipped_archive = archive::figures(args.events, args.connections, args.archive_workers)?;
    let (latency_p50, latency_p99) = end_to_end_latency_ms(args.latency_rate, args.connections)?;
    eprintln!(
        "end-to-end latency at {}/s: p50 {latency_p50:.1} ms, p99 {latency_p99:.1} ms",
        args.latency_rate
    );
    let bin = lab::bin_dir()?;
    let root = lab::bench_root()?;
    let sqlite = storage::records_per_s(&bin, &root, storage::Target::Sqlite, false, args.records)?;
    eprintln!("records into SQLite: {sqlite:.0}/s");
    let archive = storage::records_per_s(&bin, &root, storage::Target::Sqlite, true, args.records)?;
    eprintln!("records into SQLite through every archive handler: {archive:.0}/s");
    let (_server, url) = storage::start_search_server(&storage::search_server_binary(&bin)?)?;
    let search = storage::records_per_s(
        &bin,
        &root,
        storage::Target::Search(&url),
        false,
        args.records,
    )?;
    eprintln!("records into osmem-server: {search:.0}/s");
    let mut cyrus_appends = serde_json::Map::new();
    for (name, mode) in [
        ("notifications_off", cyrus::Mode::Off),
        ("exec_dealer", cyrus::Mode::Exec),
        ("dealer_daemon", cyrus::Mode::Daemon),
    ] {
        let rate = cyrus::appends_per_s(mode, args.appends)?;
        eprintln!("Cyrus APPENDs, {name}: {rate:.0}/s");
        cyrus_appends.insert(name.to_string(), json!(round(rate, 0)));
    }
    let changelog = changelog_figures(args)?;
    let body_text = mail_figures(args)?;
    let chaos = chaos_figures(args)?;
    let scale = scale_figures(args)?;
    let payload_ingest = payload_figures(args)?;
    let payload_store = payload_store::figures(args.payload_store_payloads)?;
    let maillog = maillog::figures(args.maillog_lines)?;
    let ledger = ledger_figures(args)?;
    let mut report = json!({
        "machine": machine(),
        "ledger": ledger,
        "payload_ingest": payload_ingest,
        "payload_store": payload_store,
        "maillog": maillog,
        "scale": scale,
        "body_text": body_text,
        "chaos": chaos,
        "changelog": changelog,
        "cyrus_appends_per_s": cyrus_appends,
        "sqlite_records_per_s": round(sqlite, 0),
        "sqlite_records_per_s_with_handlers": round(archive, 0),
        "osmem_server_records_per_s": round(search, 0),
        "records": args.records,
        "dealer_exec_ms_p50": round(dealer.0, 2),
        "dealer_exec_ms_p99": round(dealer.1, 2),
        "broker_durable_submits_per_s": round(submits_per_s, 0),
        "e2e_events_per_s": round(e2e, 0),
        "e2e_events": args.events,
        "e2e_latency_ms_p50": round(latency_p50, 1),
        "e2e_latency_ms_p99": round(latency_p99, 1),
        "e2e_latency_offered_per_s": args.latency_rate,
        "zmq_roundtrip_per_s": round(roundtrips, 0),
        "processes": memory,
    });
    if let Value::Object(fields) = &mut report {
        fields.extend(shipped_archive);
    }
    Ok(report)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// CPU seconds spread over `events`, in µs per event to a tenth.
fn us_per_event(cpu_s: f64, events: u64) -> f64 {
    round(cpu_s * 1e6 / events as f64, 1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    json!({ "cores": cores, "memory_gib": memory_kib.map(|k| round(k as f64 / 1048576.0, 1)), "cpu": cpu })
}

/// Sequential request/reply round trips between a DEALER and a ROUTER over loopback TCP.
fn zmq_roundtrip_per_s(count: usize) -> anyhow::Result<f64> {
    let context = transport::context();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("tcp://127.0.0.1:{port}");
    let router = transport::router(&context, &address, 1 << 20)?;
    let dealer = transport::dealer(&context, &address, b"bench", Duration::ZERO)?;
    let echo = std::thread::spawn(move || -> anyhow::Result<()> {
        for _ in 0..count {
            transport::poll(&[&router], Duration::from_secs(10))?;
            let frames = transport::try_recv(&router)?.context("no request")?;
            let (identity, body) = frames.split_first().context("no identity")?;
            transport::send_to(&router, identity, body)?;
        }
        Ok(())
    });
    let started = Instant::now();
    for _ in 0..count {
        transport::send(&dealer, &[b"PING".to_vec()])?;
        transport::poll(&[&dealer], Duration::from_secs(10))?;
        transport::try_recv(&dealer)?.context("no reply")?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(rate)
}

/// Submissions acknowledged per second, each stored and synced before its ACK.
fn broker_durable_submits_per_s(lab: &Lab, total: usize) -> anyhow::Result<f64> {
    let payload = br#"{"event":"MessageAppend","timestamp":"2026-11-28T17:13:36.258Z","user":"john.doe@example.org","uri":"imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=1795885999/;UID=1"}"#;
    lab.submit(0..total as u64, |_| payload.to_vec())
}

/// Whole-process time of `bonnie-dealer` in exec mode (start, submit, ACK, exit), broker up.
fn dealer_exec_ms(lab: &Lab, runs: usize) -> anyhow::Result<(f64, f64)> {
    let notification = br#"{"event":"Login","timestamp":"2026-11-28T17:13:17.506Z","service":"imap","user":"john.doe@example.org"}"#;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = lab
            .command("bonnie-dealer")
            .args(["-c", "EVENT", "-p", "", "-u", "", "-m", "", "-f"])
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("the dealer's stdin")?;
        stdin.write_all(notification)?;
        stdin.write_all(b"\n")?;
        drop(stdin);
        let status = child.wait()?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            bail!("bonnie-dealer failed: {status}");
        }
    }
    if std::fs::metadata(lab.path().join("var/dealer-spool/exec-0/queue")).map_or(0, |m| m.len())
        > 0
    {
        bail!(
            "the dealer spooled: the broker did not acknowledge in time, so the timing is not of the normal path"
        );
    }
    times.sort_by(f64::total_cmp);
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

/// A MessageAppend as Cyrus sends it, numbered, stamped with the time it is sent. Written
/// out by hand: the load generator shares the two cores with bonnie, so it is kept cheap.
fn event(n: u64) -> String {
    format!(
        r#"{{"event":"MessageAppend","timestamp":"2026-11-28T17:13:36.258Z","service":"imap","mailboxID":"wrp915vo4ftuwc6ncu10wvjw","uri":"imap://cyrus-lab.example.org/user/john.doe%40example.org;UIDVALIDITY=1795885999/;UID=1","user":"john.doe@example.org","messageSize":290,"n":{n},"sent_ms":{}}}"#,
        bonnie_core::time::now_ms()
    )
}

/// A bonnie with a broker, two workers and the dealer daemon.
fn full_lab() -> anyhow::Result<(Lab, Vec<lab::Running>)> {
    let lab = Lab::new()?;
    let broker = lab.broker()?;
    let workers = [lab.worker()?, lab.worker()?];
    let daemon = lab.dealer_daemon()?;
    let mut running = vec![broker, daemon];
    running.extend(workers);
    Ok((lab, running))
}

/// Notifications per second from Cyrus-style dlist connections to synced SQLite records,
/// with `connections` connections in parallel: from the first send to the last record.
fn end_to_end_per_s(total: u64, connections: usize) -> anyhow::Result<(f64, Value)> {
    let (lab, running) = full_lab()?;
    let socket = lab.path().join("var/dealer.sock");
    let started = Instant::now();
    load::drive(
        &socket,
        total,
        connections,
        |_| started,
        event,
        load::OnFailure::Stop,
    )?;
    wait_archived(&lab, total, started)?;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let names = ["broker", "dealer_daemon", "worker_1", "worker_2"];
    let mut running = running;
    for (name, process) in names.iter().zip(running.iter_mut()) {
        if !process.alive() {
            bail!(
                "the {name} process ended during the run; see its log in {}",
                lab.path().display()
            );
        }
    }
    let memory: serde_json::Map<String, Value> = names
        .iter()
        .zip(&running)
        .map(|(name, r)| {
            let cpu_us = r.cpu_s().map(|s| us_per_event(s, total));
            (
                name.to_string(),
                json!({ "peak_rss_kib": r.peak_rss_kib(), "cpu_us_per_event": cpu_us }),
            )
        })
        .collect();
    Ok((rate, Value::Object(memory)))
}

fn wait_archived(lab: &Lab, total: u64, started: Instant) -> anyhow::Result<()> {
    let mut last = (0, Instant::now());
    loop {
        let archived = lab.archived();
        if archived >= total {
            return Ok(());
        }
        if archived != last.0 {
            last = (archived, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            bail!(
                "stuck at {archived} of {total} archived after {:?}",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Latency from the dlist request to the synced record at a fixed offered load, evenly
/// spaced, for five seconds of notifications.
fn end_to_end_latency_ms(rate: u64, connections: usize) -> anyhow::Result<(f64, f64)> {
    let (lab, _running) = full_lab()?;
    let socket = lab.path().join("var/dealer.sock");
    let total = rate * 5;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    load::drive(
        &socket,
        total,
        connections,
        |n| started + interval.mul_f64(n as f64),
        event,
        load::OnFailure::Stop,
    )?;
    wait_archived(&lab, total, started)?;
    let mut latencies = lab.latencies_ms()?;
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        bail!("no latencies measured");
    }
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}
