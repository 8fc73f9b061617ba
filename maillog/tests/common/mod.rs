//! What the tests share: the test logs of `tests/data`, the instant they are read as
//! received at, and every trace of a stitched state in a stable order.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use bonnie_maillog::{ParsedLine, Stitcher, SyslogParser, parse_line};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

/// The test logs (see `data/README.md`).
pub const FILES: [&str; 3] = [
    include_str!("../data/edge-rfc3339.log"),
    include_str!("../data/mx1-syslog.log"),
    include_str!("../data/mx1-relay-maillog_file.log"),
];

/// When the test logs were received: after New Year, so that their December is 2026's.
pub fn received() -> Timestamp {
    "2027-01-01T00:10:00Z".parse().expect("an instant")
}

/// Every line of the test logs.
pub fn data_lines() -> Vec<&'static str> {
    FILES.iter().flat_map(|file| file.lines()).collect()
}

/// `line` read as received at [`received`], zone-less stamps in UTC.
pub fn read(line: &str) -> ParsedLine {
    parse_line(&SyslogParser::new(TimeZone::UTC), line, received())
}

/// Every trace of `stitcher` as JSON, sorted, each once.
pub fn all_traces(stitcher: &Stitcher) -> Vec<Value> {
    let mut traces: Vec<Value> = stitcher
        .queues()
        .keys()
        .filter_map(|key| stitcher.trace(key))
        .map(|trace| serde_json::to_value(&trace).expect("a trace as JSON"))
        .collect();
    traces.sort_by_key(|trace| trace.to_string());
    traces.dedup();
    traces
}
