//! Lines per second through parsing and stitching, on a generated mail log of 1,000,000 lines
//! ([`sample::mail_log`]: local deliveries, relays, bounces and rejects on three hosts).
//! `cargo run --release -p bonnie-maillog --example throughput [LINES]`

use bonnie_maillog::{Stitcher, SyslogParser, parse_line, sample};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::time::Instant;

fn main() {
    let wanted: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let log = sample::mail_log(wanted);
    let parser = SyslogParser::new(TimeZone::UTC);
    let received: Timestamp = "2026-12-31T12:00:00Z".parse().expect("an instant");

    let started = Instant::now();
    let parsed: Vec<_> = log
        .iter()
        .map(|line| parse_line(&parser, line, received))
        .collect();
    let parse_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut stitcher = Stitcher::new();
    for line in &parsed {
        stitcher.ingest(line);
    }
    let stitch_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let traces = stitcher
        .queues()
        .keys()
        .step_by(100)
        .filter_map(|key| stitcher.trace(key))
        .count();
    let trace_seconds = started.elapsed().as_secs_f64();

    let lines = log.len() as f64;
    println!("lines: {}", log.len());
    println!("queue files: {}", stitcher.queues().len());
    println!("counts: {:?}", stitcher.counts());
    println!("parse: {:.0} lines/s", lines / parse_seconds);
    println!("stitch: {:.0} lines/s", lines / stitch_seconds);
    println!(
        "parse + stitch: {:.0} lines/s",
        lines / (parse_seconds + stitch_seconds)
    );
    println!(
        "trace look-ups: {traces} in {trace_seconds:.3} s ({:.0}/s)",
        traces as f64 / trace_seconds
    );
}
