//! Recurrence rules (RFC 5545 RRULE): their parts, read from and written to their text form
//! (every FREQ and BY-part; RSCALE other than GREGORIAN is refused as unsupported), and the
//! day arithmetic that their expansion (`expand.rs`) and the busy periods share.

use std::{fmt, str::FromStr};

use jiff::civil::{self, Weekday};

use crate::{error::CalendarError, model::When, value};

/// `FREQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// `SECONDLY`.
    Secondly,
    /// `MINUTELY`.
    Minutely,
    /// `HOURLY`.
    Hourly,
    /// `DAILY`.
    Daily,
    /// `WEEKLY`.
    Weekly,
    /// `MONTHLY`.
    Monthly,
    /// `YEARLY`.
    Yearly,
}

/// One `BYDAY` entry: a weekday, with an ordinal in monthly and yearly rules (`-1FR`: the
/// last Friday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayNum {
    /// The ordinal, ±1 to ±53; none for every such weekday.
    pub nth: Option<i8>,
    /// The weekday.
    pub weekday: Weekday,
}

/// A parsed RRULE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `FREQ`.
    pub freq: Frequency,
    /// `INTERVAL`, at least 1.
    pub interval: u32,
    /// `COUNT`.
    pub count: Option<u32>,
    /// `UNTIL`, inclusive (a date, a UTC instant, or a wall-clock time in DTSTART's zone).
    pub until: Option<When>,
    /// `BYDAY`.
    pub by_day: Vec<WeekdayNum>,
    /// `BYMONTHDAY`, ±1 to ±31.
    pub by_month_day: Vec<i8>,
    /// `BYYEARDAY`, ±1 to ±366.
    pub by_year_day: Vec<i16>,
    /// `BYWEEKNO`, ±1 to ±53: weeks starting on WKST, week 1 the first with four days in
    /// the year (ISO 8601 with WKST Monday).
    pub by_week_no: Vec<i8>,
    /// `BYMONTH`, 1 to 12.
    pub by_month: Vec<i8>,
    /// `BYSETPOS`, ±1 to ±366.
    pub by_set_pos: Vec<i32>,
    /// `BYHOUR`.
    pub by_hour: Vec<i8>,
    /// `BYMINUTE`.
    pub by_minute: Vec<i8>,
    /// `BYSECOND`.
    pub by_second: Vec<i8>,
    /// `WKST`, Monday by default.
    pub week_start: Weekday,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("MO", Weekday::Monday),
    ("TU", Weekday::Tuesday),
    ("WE", Weekday::Wednesday),
    ("TH", Weekday::Thursday),
    ("FR", Weekday::Friday),
    ("SA", Weekday::Saturday),
    ("SU", Weekday::Sunday),
];

fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(_, d)| *d == day)
        .map_or("MO", |(n, _)| n)
}

fn weekday(text: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text))
        .map(|(_, d)| *d)
}

impl FromStr for Rule {
    type Err = CalendarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: String| CalendarError::property("RRULE", format!("{text:?}: {reason}"));
        let unsupported = |reason: &str| CalendarError::Unsupported {
            rule: text.to_string(),
            reason: reason.to_string(),
        };
        let mut freq = None;
        let mut rule = Rule {
            freq: Frequency::Daily,
            interval: 1,
            count: None,
            until: None,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_year_day: Vec::new(),
            by_week_no: Vec::new(),
            by_month: Vec::new(),
            by_set_pos: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            by_second: Vec::new(),
            week_start: Weekday::Monday,
        };
        for part in text.trim().split(';').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("{part:?} is not KEY=VALUE")))?;
            let (key, value) = (key.trim().to_ascii_uppercase(), value.trim());
            let list = |lo: i32, hi: i32, signed: bool| -> Result<Vec<i32>, CalendarError> {
                value
                    .split(',')
                    .map(|v| {
                        let n: i32 = v
                            .trim()
                            .parse()
                            .map_err(|_| invalid(format!("{key}: {v:?} is not a number")))?;
                        let ok = (lo..=hi).contains(&n) || (signed && (-hi..=-lo).contains(&n));
                        if ok {
                            Ok(n)
                        } else {
                            Err(invalid(format!("{key}: {n} is out of range")))
                        }
                    })
                    .collect()
            };
            let narrow = |v: Vec<i32>| v.into_iter().map(|n| n as i8).collect::<Vec<i8>>();
            match key.as_str() {
                "FREQ" => {
                    freq = Some(match value.to_ascii_uppercase().as_str() {
                        "DAILY" => Frequency::Daily,
                        "WEEKLY" => Frequency::Weekly,
                        "MONTHLY" => Frequency::Monthly,
                        "YEARLY" => Frequency::Yearly,
                        "SECONDLY" => Frequency::Secondly,
                        "MINUTELY" => Frequency::Minutely,
                        "HOURLY" => Frequency::Hourly,
                        other => return Err(invalid(format!("FREQ {other:?}"))),
                    })
                }
                "INTERVAL" => rule.interval = list(1, i32::MAX, false)?[0] as u32,
                "COUNT" => rule.count = Some(list(1, i32::MAX, false)?[0] as u32),
                "UNTIL" => {
                    rule.until =
                        Some(value::when(value, None).map_err(|e| invalid(format!("UNTIL: {e}")))?)
                }
                "BYDAY" => {
                    for v in value.split(',') {
                        let v = v.trim();
                        let split = v.len().saturating_sub(2);
                        let (nth, day) = v.split_at(split);
                        let weekday = weekday(day)
                            .ok_or_else(|| invalid(format!("BYDAY: {v:?} names no weekday")))?;
                        let nth = if nth.is_empty() {
                            None
                        } else {
                            let n: i8 = nth
                                .trim_start_matches('+')
                                .parse()
                                .map_err(|_| invalid(format!("BYDAY: {v:?}")))?;
                            if n == 0 || !(-53..=53).contains(&n) {
                                return Err(invalid(format!("BYDAY: {v:?} is out of range")));
                            }
                            Some(n)
                        };
                        rule.by_day.push(WeekdayNum { nth, weekday });
                    }
                }
                "BYMONTHDAY" => rule.by_month_day = narrow(list(1, 31, true)?),
                "BYYEARDAY" => {
                    rule.by_year_day = list(1, 366, true)?.into_iter().map(|n| n as i16).collect()
                }
                "BYMONTH" => rule.by_month = narrow(list(1, 12, false)?),
                "BYSETPOS" => rule.by_set_pos = list(1, 366, true)?,
                "BYHOUR" => rule.by_hour = narrow(list(0, 23, false)?),
                "BYMINUTE" => rule.by_minute = narrow(list(0, 59, false)?),
                "BYSECOND" => rule.by_second = narrow(list(0, 59, false)?),
                "WKST" => {
                    rule.week_start =
                        weekday(value).ok_or_else(|| invalid(format!("WKST {value:?}")))?
                }
                "BYWEEKNO" => rule.by_week_no = narrow(list(1, 53, true)?),
                "RSCALE" if value.eq_ignore_ascii_case("GREGORIAN") => {}
                "RSCALE" => return Err(unsupported("RSCALE other than GREGORIAN")),
                "SKIP" => {}
                k if k.starts_with("X-") => {}
                other => return Err(invalid(format!("unknown part {other}"))),
            }
        }
        rule.freq = freq.ok_or_else(|| invalid("no FREQ".to_string()))?;
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    /// The rule in RRULE form; it reads back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let freq = match self.freq {
            Frequency::Secondly => "SECONDLY",
            Frequency::Minutely => "MINUTELY",
            Frequency::Hourly => "HOURLY",
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        };
        write!(f, "FREQ={freq}")?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        if let Some(count) = self.count {
            write!(f, ";COUNT={count}")?;
        }
        match &self.until {
            Some(When::Date { date, .. }) => write!(f, ";UNTIL={}", date.strftime("%Y%m%d"))?,
            Some(When::Utc { time }) => write!(f, ";UNTIL={}", time.strftime("%Y%m%dT%H%M%SZ"))?,
            Some(When::Floating { time } | When::Zoned { time, .. }) => {
                write!(f, ";UNTIL={}", time.strftime("%Y%m%dT%H%M%S"))?
            }
            None => {}
        }
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, key: &str, v: &[T]) -> fmt::Result {
            if v.is_empty() {
                return Ok(());
            }
            let items: Vec<String> = v.iter().map(ToString::to_string).collect();
            write!(f, ";{key}={}", items.join(","))
        }
        let days: Vec<String> = self
            .by_day
            .iter()
            .map(|d| {
                let nth = d.nth.map(|n| n.to_string()).unwrap_or_default();
                format!("{nth}{}", weekday_name(d.weekday))
            })
            .collect();
        list(f, "BYDAY", &days)?;
        list(f, "BYMONTHDAY", &self.by_month_day)?;
        list(f, "BYYEARDAY", &self.by_year_day)?;
        list(f, "BYWEEKNO", &self.by_week_no)?;
        list(f, "BYMONTH", &self.by_month)?;
        list(f, "BYSETPOS", &self.by_set_pos)?;
        list(f, "BYHOUR", &self.by_hour)?;
        list(f, "BYMINUTE", &self.by_minute)?;
        list(f, "BYSECOND", &self.by_second)?;
        if self.week_start != Weekday::Monday {
            write!(f, ";WKST={}", weekday_name(self.week_start))?;
        }
        Ok(())
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::model::as_text::serialize(self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::model::as_text::deserialize(deserializer)
    }
}

/// Days since 1970-01-01, for cheap day arithmetic.
pub(crate) fn epoch_day(date: civil::Date) -> i64 {
    bonnie_core::time::days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// The date `days` days after 1970-01-01; none outside jiff's range (years -9999 to 9999).
pub(crate) fn date_of(days: i64) -> Option<civil::Date> {
    // Far outside jiff's range the arithmetic below would overflow first.
    if days.unsigned_abs() > 10_000 * 366 {
        return None;
    }
    let (y, m, d) = bonnie_core::time::civil_from_days(days);
    civil::Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

/// `date` moved by `days`.
pub(crate) fn add_days(date: civil::Date, days: i64) -> Option<civil::Date> {
    date_of(epoch_day(date).checked_add(days)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn rules_read_back_from_their_text() {
        for text in [
            "FREQ=WEEKLY;COUNT=6;BYDAY=TU",
            "FREQ=MONTHLY;INTERVAL=2;UNTIL=20271231T235959Z;BYDAY=2MO,-1FR",
            "FREQ=YEARLY;UNTIL=20300101;BYMONTHDAY=-1;BYMONTH=2,3;BYSETPOS=1,-1;WKST=SU",
            "FREQ=DAILY;BYYEARDAY=100;BYHOUR=9,17;BYMINUTE=30;BYSECOND=0",
        ] {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
            assert_eq!(rule.to_string().parse::<Rule>().unwrap(), rule);
        }
        let lower: Rule = "freq=weekly;byday=mo,+2we;x-name=1".parse().unwrap();
        assert_eq!(lower.to_string(), "FREQ=WEEKLY;BYDAY=MO,2WE");
    }

    #[test]
    fn bad_and_unsupported_rules_are_refused() {
        for bad in [
            "",
            "COUNT=3",
            "FREQ=FORTNIGHTLY",
            "FREQ=DAILY;INTERVAL=0",
            "FREQ=DAILY;COUNT=x",
            "FREQ=MONTHLY;BYDAY=0MO",
            "FREQ=MONTHLY;BYDAY=XX",
            "FREQ=MONTHLY;BYMONTHDAY=32",
            "FREQ=YEARLY;BYMONTH=13",
            "FREQ=DAILY;FOO=1",
            "FREQ=DAILY;UNTIL=someday",
            "FREQ=YEARLY;BYWEEKNO=0",
            "FREQ=YEARLY;BYWEEKNO=54",
        ] {
            assert!(
                matches!(bad.parse::<Rule>(), Err(CalendarError::Property { .. })),
                "{bad}"
            );
        }
        assert!(
            matches!(
                "RSCALE=HEBREW;FREQ=YEARLY".parse::<Rule>(),
                Err(CalendarError::Unsupported { .. })
            ),
            "a calendar other than the Gregorian"
        );
    }

    #[test]
    fn day_arithmetic_round_trips() {
        for d in [
            date(1970, 1, 1),
            date(2024, 2, 29),
            date(1600, 3, 1),
            date(9999, 12, 31),
        ] {
            assert_eq!(date_of(epoch_day(d)), Some(d));
        }
        assert_eq!(epoch_day(date(1970, 1, 2)), 1);
        assert_eq!(add_days(date(2026, 12, 31), 1), Some(date(2027, 1, 1)));
        assert_eq!(add_days(date(9999, 12, 31), 1), None);
    }
}
