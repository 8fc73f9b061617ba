//! Property tests of bonnie-maillog: no string, no bytes and no damaged Postfix line panic the
//! parser or the stitcher, and the stitched traces do not depend on the order of the lines
//! nor on how they are split between workers.

mod common;

use bonnie_maillog::Stitcher;
use common::{all_traces, data_lines, read};
use proptest::{collection::vec, prelude::*};
use serde_json::Value;

/// `line` read and stitched, and every trace of it built.
fn read_and_stitch(line: &str) {
    let mut stitcher = Stitcher::new();
    stitcher.ingest(&read(line));
    all_traces(&stitcher);
}

/// The traces of `lines` dealt out to workers in the order `workers` repeats, then merged.
fn traces_through_workers(lines: &[&str], workers: &[usize]) -> Vec<Value> {
    let mut parts = vec![Stitcher::new(); workers.iter().max().map_or(1, |m| m + 1)];
    for (line, worker) in lines.iter().zip(workers.iter().cycle()) {
        parts[*worker].ingest(&read(line));
    }
    let mut merged = Stitcher::new();
    for part in &parts {
        merged.merge(part);
    }
    all_traces(&merged)
}

proptest! {
    #[test]
    fn no_string_panics_the_parser(line in any::<String>()) {
        read_and_stitch(&line);
    }

    #[test]
    fn no_bytes_panic_the_parser(bytes in vec(any::<u8>(), 0..300)) {
        read_and_stitch(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn postfix_like_lines_do_not_panic(
        stamp in "<[0-9]{1,3}>(1 )?|Dec [ 0-3][0-9] [0-9:.]{0,12}|2026-[0-9T:.+-]{0,24}|- ",
        tag in "(postfix|postfix-relay)/(smtpd|smtp|lmtp|cleanup|qmgr|bounce|postscreen|pickup)(\\[[0-9]{0,6}\\])?: ",
        queue_id in "(NOQUEUE|[0-9A-F]{6,12}|[0-9B-Zb-y]{10}z[0-9B-Yb-y]{1,4}|): ",
        body in "(to=<|from=<|client=|message-id=|uid=|reject: |milter-hold: |warning: |PASS |DNSBL rank |sender non-delivery notification: )[ -~é€]{0,60}",
    ) {
        read_and_stitch(&format!("{stamp} mx1 {tag}{queue_id}{body}"));
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
        read_and_stitch(&format!("{}{insert}{}", &line[..at], &line[at..]));
        read_and_stitch(&line[..at]);
    }

    #[test]
    fn traces_do_not_depend_on_order_or_workers(
        order in Just(data_lines()).prop_shuffle(),
        workers in vec(0usize..4, 1..8),
    ) {
        let expected = traces_through_workers(&data_lines(), &[0]);
        prop_assert_eq!(traces_through_workers(&order, &workers), expected);
    }
}
