//! Property tests of bonnie-maillog: no string, no bytes and no damaged Postfix line panic the
//! parser or the stitcher, and the stitched traces do not depend on the order of the lines
//! nor on how they are split between workers.

use bonnie_maillog::{ParsedLine, Stitcher, SyslogParser, parse_line};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::{collection::vec, prelude::*};

const FILES: [&str; 3] = [
    include_str!("data/edge-rfc3339.log"),
    include_str!("data/mx1-syslog.log"),
    include_str!("data/mx1-relay-maillog_file.log"),
];

fn received() -> Timestamp {
    "2027-01-01T00:10:00Z".parse().expect("an instant")
}

fn read(line: &str) -> ParsedLine {
    let parser = SyslogParser::new(TimeZone::UTC);
    let parsed = parse_line(&parser, line, received());
    let mut stitcher = Stitcher::new();
    stitcher.ingest(&parsed);
    for key in stitcher.queues().keys() {
        let _ = stitcher.trace(key);
    }
    parsed
}

fn data_lines() -> Vec<&'static str> {
    FILES.iter().flat_map(|file| file.lines()).collect()
}

fn traces_json(lines: &[&str], workers: &[usize]) -> Vec<String> {
    let parser = SyslogParser::new(TimeZone::UTC);
    let mut parts = vec![Stitcher::new(); workers.iter().max().map_or(1, |m| m + 1)];
    for (line, worker) in lines.iter().zip(workers.iter().cycle()) {
        parts[*worker].ingest(&parse_line(&parser, line, received()));
    }
    let mut merged = Stitcher::new();
    for part in &parts {
        merged.merge(part);
    }
    let mut traces: Vec<String> = merged
        .queues()
        .keys()
        .filter_map(|key| merged.trace(key))
        .map(|trace| serde_json::to_string(&trace).expect("a trace as JSON"))
        .collect();
    traces.sort();
    traces.dedup();
    traces
}

proptest! {
    #[test]
    fn no_string_panics_the_parser(line in any::<String>()) {
        let parsed = read(&line);
        prop_assert!(parsed.frame.message.len() <= line.len());
    }

    #[test]
    fn no_bytes_panic_the_parser(bytes in vec(any::<u8>(), 0..300)) {
        read(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn postfix_like_lines_do_not_panic(
        stamp in "<[0-9]{1,3}>(1 )?|Dec [ 0-3][0-9] [0-9:.]{0,12}|2026-[0-9T:.+-]{0,24}|- ",
        tag in "(postfix|postfix-relay)/(smtpd|smtp|lmtp|cleanup|qmgr|bounce|postscreen|pickup)(\\[[0-9]{0,6}\\])?: ",
        queue_id in "(NOQUEUE|[0-9A-F]{6,12}|[0-9B-Zb-y]{10}z[0-9B-Yb-y]{1,4}|): ",
        body in "(to=<|from=<|client=|message-id=|uid=|reject: |milter-hold: |warning: |PASS |DNSBL rank |sender non-delivery notification: )[ -~é€]{0,60}",
    ) {
        read(&format!("{stamp} mx1 {tag}{queue_id}{body}"));
    }

    #[test]
    fn damaged_data_lines_do_not_panic(
        index in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        insert in "[ -~é€<>\\[\\];:,=()]{0,3}",
    ) {
        let lines = data_lines();
        let line = lines[index.index(lines.len())];
        let boundaries: Vec<usize> = line.char_indices().map(|(at, _)| at).collect();
        let at = boundaries[cut.index(boundaries.len())];
        read(&format!("{}{insert}{}", &line[..at], &line[at..]));
        read(&line[..at]);
    }

    #[test]
    fn traces_do_not_depend_on_order_or_workers(
        order in Just(data_lines()).prop_shuffle(),
        workers in vec(0usize..4, 1..8),
    ) {
        let expected = traces_json(&data_lines(), &[0]);
        prop_assert_eq!(traces_json(&order, &workers), expected);
    }
}
