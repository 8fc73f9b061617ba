//! bonnie's recurrence expansion against python-dateutil's, rule for rule: 1,500 seeded
//! random RRULEs of every frequency (SECONDLY to YEARLY) and every BY-part RFC 5545 allows
//! with it (BYWEEKNO and BYSETPOS included), with INTERVAL, COUNT, UNTIL and WKST, are read
//! by `bonnie_calendar` as floating events of an owner in UTC and expanded by
//! `busy_periods`, and expanded by `dateutil.rrule.rrulestr` in the test venv
//! (`scripts/test` installs python-dateutil into `.venv`). Every occurrence must agree.
//!
//! RFC 5545 makes DTSTART the first instance even when the rule would not produce it, and
//! counts it for COUNT; dateutil yields only what the rule produces. The script applies
//! bonnie's reading (DTSTART, then dateutil's occurrences after it, COUNT in all), so rules
//! whose DTSTART is not one of their own occurrences are compared too. The generator leaves
//! out four things where dateutil departs from RFC 5545 (each checked in the last test):
//! a BYDAY that mixes plain and ordinal weekdays (dateutil intersects `MO,2TU` to nothing),
//! BYWEEKNO 52 and 53 (dateutil counts the weeks of the year before wrongly when its last
//! week reaches into January), BYWEEKNO below -51 (dateutil never gives December days of
//! the next year's week 1 for the next year's negative number of it), and a weekly rule with
//! BYSETPOS whose DTSTART is not on WKST (dateutil's first week starts at DTSTART, so
//! BYSETPOS counts in part of it): there DTSTART is moved back to the week's first day.
//! And BYSETPOS of a sub-daily rule stays within the candidates of one period, because
//! dateutil walks every period to the end of the year looking for more (not a difference,
//! just minutes of time).

use std::{
    io::Write,
    process::{Command, Stdio},
};

use bonnie_core::time;
use bonnie_tests::paths;
use serde_json::{Value, json};

/// How many rules are compared.
const RULES: usize = 1500;
/// The seed of the rules (any value; fixed so a failure can be run again).
const SEED: u64 = 0x5eed_2026_1201;

/// The reference: reads one JSON case per line, writes one JSON list of occurrences per line.
const SCRIPT: &str = r#"
import datetime, json, sys
import dateutil.rrule as rr

def parse(text):
    return datetime.datetime.strptime(text, "%Y%m%dT%H%M%S")

for line in sys.stdin:
    case = json.loads(line)
    start, limit, count = parse(case["dtstart"]), parse(case["limit"]), case["count"]
    # dateutil walks periods up to datetime.MAXYEAR when a rule never matches; nothing past
    # the limit is wanted.
    rr.datetime.MAXYEAR = limit.year
    found = [start]
    try:
        rule = rr.rrulestr(case["rule"], dtstart=start)
    except ValueError:
        # A sub-daily rule whose INTERVAL never reaches its BYHOUR, BYMINUTE or BYSECOND:
        # dateutil refuses it; it has no occurrences but DTSTART.
        rule = []
    if count is None or count > 1:
        for at in rule:
            if at >= limit:
                break
            if at > start:
                found.append(at)
                if count is not None and len(found) >= count:
                    break
    print(json.dumps([at.strftime("%Y%m%dT%H%M%S") for at in found]), flush=True)
"#;

/// splitmix64: a small seeded generator, so that the rules are the same on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A number in `lo..=hi` or its negative, never 0.
    fn signed(&mut self, lo: i64, hi: i64) -> i64 {
        let n = self.range(lo, hi);
        if self.chance(30) { -n } else { n }
    }

    /// 1 to `most` distinct values from `pick`, comma-separated.
    fn list(&mut self, most: i64, mut pick: impl FnMut(&mut Self) -> i64) -> String {
        let mut values: Vec<i64> = Vec::new();
        for _ in 0..self.range(1, most) {
            let v = pick(self);
            if !values.contains(&v) {
                values.push(v);
            }
        }
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// One generated case: DTSTART, the rule, its COUNT, and the end of the compared range.
struct Case {
    dtstart: String,
    rule: String,
    count: Option<i64>,
    limit: String,
}

fn compact(ms: i64) -> String {
    time::format_rfc3339_s(ms)
        .trim_end_matches('Z')
        .replace(['-', ':'], "")
}

/// A rule RFC 5545 allows: each BY-part only with the frequencies its table allows.
fn generate(random: &mut Random) -> Case {
    const FREQS: [&str; 7] = [
        "YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY",
    ];
    let freq = FREQS[random.range(0, 6) as usize];
    let sub_daily = matches!(freq, "HOURLY" | "MINUTELY" | "SECONDLY");
    let mut start_ms = time::parse_rfc3339_ms(&format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        random.range(1995, 2030),
        random.range(1, 12),
        random.range(1, 28),
        random.range(0, 23),
        random.range(0, 59),
        random.range(0, 59)
    ))
    .expect("a valid start");
    // Far enough for several periods of the rule, near enough to expand quickly.
    let horizon_s: i64 = match freq {
        "YEARLY" => 40 * 366 * 86_400,
        "MONTHLY" => 6 * 366 * 86_400,
        "WEEKLY" => 3 * 366 * 86_400,
        "DAILY" => 400 * 86_400,
        "HOURLY" => 40 * 86_400,
        "MINUTELY" => 3 * 86_400,
        _ => 4 * 3600,
    };
    let mut parts = vec![format!("FREQ={freq}")];
    if random.chance(40) {
        parts.push(format!("INTERVAL={}", random.range(2, 7)));
    }
    let by_week_no = freq == "YEARLY" && random.chance(30);
    if by_week_no {
        parts.push(format!("BYWEEKNO={}", random.list(2, |r| r.signed(1, 51))));
    }
    if random.chance(25) {
        parts.push(format!("BYMONTH={}", random.list(3, |r| r.range(1, 12))));
    }
    if (freq == "YEARLY" || sub_daily) && random.chance(15) {
        parts.push(format!(
            "BYYEARDAY={}",
            random.list(3, |r| r.signed(1, 366))
        ));
    }
    if freq != "WEEKLY" && random.chance(25) {
        parts.push(format!(
            "BYMONTHDAY={}",
            random.list(3, |r| r.signed(1, 31))
        ));
    }
    if random.chance(40) {
        let ordinals = matches!(freq, "MONTHLY" | "YEARLY") && !by_week_no && random.chance(50);
        let mut days: Vec<String> = Vec::new();
        for _ in 0..random.range(1, 3) {
            let day = DAYS[random.range(0, 6) as usize];
            let entry = if ordinals {
                let most = if freq == "MONTHLY" || parts.iter().any(|p| p.starts_with("BYMONTH=")) {
                    5
                } else {
                    53
                };
                format!("{}{day}", random.signed(1, most))
            } else {
                day.to_string()
            };
            if !days.contains(&entry) {
                days.push(entry);
            }
        }
        parts.push(format!("BYDAY={}", days.join(",")));
    }
    // How many candidates one period of a sub-daily rule has: the values of the BY-parts
    // below its frequency.
    let mut per_period: i64 = 1;
    if random.chance(25) {
        parts.push(format!("BYHOUR={}", random.list(3, |r| r.range(0, 23))));
    }
    if random.chance(25) {
        let list = random.list(3, |r| r.range(0, 59));
        if freq == "HOURLY" {
            per_period *= list.split(',').count() as i64;
        }
        parts.push(format!("BYMINUTE={list}"));
    }
    if random.chance(20) {
        let list = random.list(3, |r| r.range(0, 59));
        if matches!(freq, "HOURLY" | "MINUTELY") {
            per_period *= list.split(',').count() as i64;
        }
        parts.push(format!("BYSECOND={list}"));
    }
    if random.chance(20) {
        // A sub-daily rule's BYSETPOS beyond its few candidates per period selects nothing
        // ever; dateutil then walks every second to the end of the year, for minutes.
        let most = if sub_daily { per_period } else { 6 };
        parts.push(format!(
            "BYSETPOS={}",
            random.list(2, |r| r.signed(1, most))
        ));
    }
    let mut week_start = 0;
    if random.chance(30) {
        week_start = random.range(0, 6);
        parts.push(format!("WKST={}", DAYS[week_start as usize]));
    }
    if freq == "WEEKLY" && parts.iter().any(|p| p.starts_with("BYSETPOS=")) {
        // dateutil's first week starts at DTSTART, not at WKST: BYSETPOS then counts in a
        // shorter set. From a week's first day both count in the whole week.
        let weekday = (start_ms.div_euclid(86_400_000) + 3).rem_euclid(7);
        start_ms -= (weekday - week_start).rem_euclid(7) * 86_400_000;
    }
    let limit_ms = start_ms + horizon_s * 1000;
    let mut count = None;
    match random.range(0, 9) {
        0..=4 => {
            let n = random.range(1, 40);
            parts.push(format!("COUNT={n}"));
            count = Some(n);
        }
        5..=7 => {
            let until = start_ms + random.range(0, horizon_s) * 1000;
            parts.push(format!("UNTIL={}", compact(until)));
        }
        _ => {}
    }
    // Shuffle the parts after FREQ: their order must not matter.
    for i in (2..parts.len()).rev() {
        let j = random.range(1, i as i64) as usize;
        parts.swap(i, j);
    }
    Case {
        dtstart: compact(start_ms),
        rule: parts.join(";"),
        count,
        limit: compact(limit_ms),
    }
}

/// bonnie's occurrences: the starts of a floating event's busy periods, the owner in UTC.
fn bonnie(case: &Case) -> Result<Vec<String>, String> {
    let text = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\nDTSTART:{}\r\nDURATION:PT1S\r\nRRULE:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        case.dtstart, case.rule
    );
    let events = bonnie_calendar::parse_ical(&text).map_err(|e| e.to_string())?;
    let ms = |t: &str| {
        let (d, c) = t.split_at(8);
        let iso = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &d[0..4],
            &d[4..6],
            &d[6..8],
            &c[1..3],
            &c[3..5],
            &c[5..7]
        );
        time::parse_rfc3339_ms(&iso).expect("a generated time")
    };
    let busy = bonnie_calendar::busy_periods(
        &events,
        &bonnie_calendar::TimeZone::UTC,
        ms(&case.dtstart),
        ms(&case.limit),
    )
    .map_err(|e| e.to_string())?;
    Ok(busy.iter().map(|b| compact(b.start_ms)).collect())
}

/// dateutil's occurrences of every case, read the way bonnie reads RFC 5545.
fn dateutil(cases: &[Case]) -> Vec<Vec<String>> {
    let python = paths::repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs python-dateutil into .venv",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut input = String::new();
    for case in cases {
        let rule = case
            .rule
            .split(';')
            .filter(|p| !p.starts_with("COUNT="))
            .collect::<Vec<_>>()
            .join(";");
        let line = json!({ "dtstart": case.dtstart, "rule": rule, "count": case.count, "limit": case.limit });
        input.push_str(&line.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("python's stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python runs");
    writer
        .join()
        .expect("the writer")
        .expect("python reads the cases");
    assert!(
        output.status.success(),
        "python-dateutil failed (is it installed in .venv? scripts/test installs it)"
    );
    let text = String::from_utf8(output.stdout).expect("python writes UTF-8");
    let lists: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            let list: Value = serde_json::from_str(l).expect("a JSON list");
            list.as_array()
                .expect("a list")
                .iter()
                .map(|v| v.as_str().expect("a time").to_string())
                .collect()
        })
        .collect();
    assert_eq!(lists.len(), cases.len(), "one answer per rule");
    lists
}

#[test]
fn fifteen_hundred_generated_rules_expand_exactly_as_python_dateutil_expands_them() {
    let mut random = Random(SEED);
    let cases: Vec<Case> = (0..RULES).map(|_| generate(&mut random)).collect();
    let expected = dateutil(&cases);
    let mut disagreements = Vec::new();
    let (mut occurrences, mut with_more_than_one) = (0, 0);
    let mut frequencies = std::collections::BTreeMap::new();
    for (case, expected) in cases.iter().zip(&expected) {
        let found =
            bonnie(case).unwrap_or_else(|e| panic!("{} from {}: {e}", case.rule, case.dtstart));
        occurrences += found.len();
        with_more_than_one += usize::from(found.len() > 1);
        let freq = case.rule.split(';').next().unwrap_or_default().to_string();
        *frequencies.entry(freq).or_insert(0) += 1;
        if &found != expected {
            let first = found.iter().zip(expected).position(|(a, b)| a != b);
            disagreements.push(format!(
                "DTSTART:{} RRULE:{} (range to {}): bonnie {} occurrences, dateutil {}; first difference at {first:?}: bonnie {:?}, dateutil {:?}",
                case.dtstart,
                case.rule,
                case.limit,
                found.len(),
                expected.len(),
                first.map(|i| &found[i]),
                first.map(|i| &expected[i]),
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {RULES} rules disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The comparison compared something: most rules recur, every frequency is there.
    assert!(
        with_more_than_one > RULES / 2,
        "{with_more_than_one} rules recur"
    );
    assert!(occurrences > RULES * 5, "{occurrences} occurrences");
    assert_eq!(frequencies.len(), 7, "{frequencies:?}");
}

#[test]
fn where_dateutil_departs_from_rfc_5545_bonnie_follows_the_rfc() {
    let case = |dtstart: &str, rule: &str, limit: &str| Case {
        dtstart: dtstart.to_string(),
        rule: rule.to_string(),
        count: rule
            .split(';')
            .find_map(|p| p.strip_prefix("COUNT="))
            .map(|n| n.parse().expect("a count")),
        limit: limit.to_string(),
    };
    let cases = [
        // Every Monday and the second Tuesday of each month.
        case(
            "20260105T090000",
            "FREQ=MONTHLY;BYDAY=MO,2TU",
            "20260201T000000",
        ),
        // ISO week 52 of 2021 runs from 27 December 2021 to 2 January 2022.
        case(
            "20211227T090000",
            "FREQ=YEARLY;BYWEEKNO=52",
            "20220201T000000",
        ),
        // The second of Tuesday and Sunday at 9:00 and 11:00 in each week (from Monday):
        // Tuesday at 11:00.
        case(
            "19990704T100000",
            "FREQ=WEEKLY;COUNT=3;BYDAY=SU,TU;BYHOUR=9,11;BYSETPOS=2",
            "20000101T000000",
        ),
        // 2025 has 52 weeks; its week 1 (-52) starts on Monday 30 December 2024.
        case(
            "20241223T090000",
            "FREQ=YEARLY;BYWEEKNO=-52;BYDAY=MO,TU",
            "20250201T000000",
        ),
    ];
    let expected = dateutil(&cases);
    let found: Vec<Vec<String>> = cases.iter().map(|c| bonnie(c).unwrap()).collect();
    assert_eq!(
        found[0],
        [
            "20260105T090000",
            "20260112T090000",
            "20260113T090000",
            "20260119T090000",
            "20260126T090000"
        ]
    );
    assert_eq!(expected[0], ["20260105T090000"], "dateutil: DTSTART only");
    assert_eq!(
        found[1],
        [
            "20211227T090000",
            "20211228T090000",
            "20211229T090000",
            "20211230T090000",
            "20211231T090000",
            "20220101T090000",
            "20220102T090000"
        ]
    );
    assert_eq!(expected[1].len(), 5, "dateutil: not 1 and 2 January");
    // In the week of Monday 28 June the second is Tuesday 29 June, before DTSTART.
    assert_eq!(
        found[2],
        ["19990704T100000", "19990706T110000", "19990713T110000"]
    );
    assert_eq!(
        expected[2],
        ["19990704T100000", "19990704T110000", "19990706T110000"],
        "dateutil: the first week from Sunday 4 July only"
    );
    assert_eq!(
        found[3],
        ["20241223T090000", "20241230T090000", "20241231T090000"]
    );
    assert_eq!(expected[3], ["20241223T090000"], "dateutil: DTSTART only");
}
