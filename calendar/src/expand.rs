//! The expansion of recurrence rules into wall-clock start times. It walks the rule's
//! periods (second, minute, hour, day, week from WKST, month, year) from DTSTART's,
//! `INTERVAL` apart; in each it takes the days the BY-parts allow (BYMONTH, BYWEEKNO,
//! BYYEARDAY, BYMONTHDAY, BYDAY with ordinals such as `2MO` or `-1FR` counted in the month,
//! or in the year for a yearly rule without BYMONTH), times from BYHOUR/BYMINUTE/BYSECOND or
//! DTSTART (expanding below the frequency, limiting at and above it), then BYSETPOS. DTSTART
//! is always the first instance and counts for COUNT. Without COUNT the periods before the
//! asked range are skipped, and nothing after it is generated.
//! `tests/tests/rrule_differential.rs` compares it with python-dateutil's.

use jiff::civil::{self, Weekday};

use crate::{
    error::CalendarError,
    rrule::{Frequency, Rule, WeekdayNum, add_days, date_of, epoch_day},
};

/// At most this many days are looked at for one rule in one expansion.
const MAX_DAYS: u64 = 4_000_000;
/// At most this many periods of an hourly, minutely or secondly rule are looked at in one
/// expansion (days the BY-parts exclude are skipped whole).
const MAX_PERIODS: u64 = 20_000_000;
/// At most this many instances are generated for one rule in one expansion.
pub(crate) const MAX_INSTANCES: usize = 200_000;

/// A rule ready to expand from one DTSTART: defaults from DTSTART filled in.
struct Expansion<'a> {
    rule: &'a Rule,
    start: civil::DateTime,
    by_day: Vec<WeekdayNum>,
    by_month_day: Vec<i8>,
    by_month: Vec<i8>,
    times: Vec<civil::Time>,
    /// The first day of DTSTART's week (from WKST), as an epoch day.
    week0: i64,
    /// DTSTART's month as `year * 12 + month - 1`.
    month0: i64,
}

impl<'a> Expansion<'a> {
    fn new(rule: &'a Rule, start: civil::DateTime, all_day: bool) -> Self {
        let mut by_day = rule.by_day.clone();
        let mut by_month_day = rule.by_month_day.clone();
        let mut by_month = rule.by_month.clone();
        // RFC 5545: what the rule leaves open is taken from DTSTART.
        if by_day.is_empty()
            && by_month_day.is_empty()
            && rule.by_year_day.is_empty()
            && rule.by_week_no.is_empty()
        {
            match rule.freq {
                Frequency::Secondly
                | Frequency::Minutely
                | Frequency::Hourly
                | Frequency::Daily => {}
                Frequency::Weekly => by_day.push(WeekdayNum {
                    nth: None,
                    weekday: start.date().weekday(),
                }),
                Frequency::Monthly => by_month_day.push(start.day()),
                Frequency::Yearly => {
                    if by_month.is_empty() {
                        by_month.push(start.month());
                    }
                    by_month_day.push(start.day());
                }
            }
        }
        let times = if all_day && level(rule.freq) == 0 {
            vec![civil::Time::midnight()]
        } else {
            // Below the frequency a BY-part expands (else DTSTART's value is taken). At and
            // above it, it limits: the period's own hour, minute or second stands (0 here,
            // filled in by `sub_daily`) and is checked there.
            let level = level(rule.freq);
            let or_start = |v: &[i8], own: i8, limits: bool| {
                if limits {
                    vec![-1]
                } else if v.is_empty() {
                    vec![own]
                } else {
                    v.to_vec()
                }
            };
            let mut times = Vec::new();
            for h in or_start(&rule.by_hour, start.hour(), level >= 1) {
                for m in or_start(&rule.by_minute, start.minute(), level >= 2) {
                    for s in or_start(&rule.by_second, start.second(), level >= 3) {
                        let (h, m, s) = (h.max(0), m.max(0), s.max(0));
                        if let Ok(t) = civil::Time::new(h, m, s, 0) {
                            times.push(t);
                        }
                    }
                }
            }
            times.sort();
            times.dedup();
            times
        };
        let since_week_start = i64::from(start.date().weekday().since(rule.week_start));
        Self {
            rule,
            start,
            by_day,
            by_month_day,
            by_month,
            times,
            week0: epoch_day(start.date()) - since_week_start,
            month0: i64::from(start.year()) * 12 + i64::from(start.month()) - 1,
        }
    }

    /// The first day and the length in days of period `k` (0 is DTSTART's) of a rule of a day
    /// or more; none for shorter ones (see [`sub_daily`]).
    fn period(&self, k: i64) -> Option<(civil::Date, i64)> {
        let step = k.checked_mul(i64::from(self.rule.interval))?;
        match self.rule.freq {
            Frequency::Secondly | Frequency::Minutely | Frequency::Hourly => None,
            Frequency::Daily => Some((add_days(self.start.date(), step)?, 1)),
            Frequency::Weekly => Some((date_of(self.week0.checked_add(step.checked_mul(7)?)?)?, 7)),
            Frequency::Monthly => {
                let month = self.month0.checked_add(step)?;
                let first = civil::Date::new(
                    i16::try_from(month.div_euclid(12)).ok()?,
                    (month.rem_euclid(12) + 1) as i8,
                    1,
                )
                .ok()?;
                Some((first, i64::from(first.days_in_month())))
            }
            Frequency::Yearly => {
                let year = i16::try_from(i64::from(self.start.year()).checked_add(step)?).ok()?;
                let first = civil::Date::new(year, 1, 1).ok()?;
                Some((first, i64::from(first.days_in_year())))
            }
        }
    }

    /// The last period that starts on or before `date` (0 if `date` is before DTSTART's).
    fn period_before(&self, date: civil::Date) -> i64 {
        let interval = i64::from(self.rule.interval);
        let periods = match self.rule.freq {
            Frequency::Secondly | Frequency::Minutely | Frequency::Hourly => 0,
            Frequency::Daily => epoch_day(date) - epoch_day(self.start.date()),
            Frequency::Weekly => (epoch_day(date) - self.week0).div_euclid(7),
            Frequency::Monthly => {
                i64::from(date.year()) * 12 + i64::from(date.month()) - 1 - self.month0
            }
            Frequency::Yearly => i64::from(date.year()) - i64::from(self.start.year()),
        };
        periods.div_euclid(interval).max(0)
    }

    /// Whether the BY-parts allow `day`.
    fn allows(&self, day: civil::Date) -> bool {
        if !self.by_month.is_empty() && !self.by_month.contains(&day.month()) {
            return false;
        }
        if !self.rule.by_week_no.is_empty() && !week_matches(day, self.rule) {
            return false;
        }
        if !self.rule.by_year_day.is_empty() {
            let (doy, len) = (day.day_of_year(), day.days_in_year());
            if !self
                .rule
                .by_year_day
                .iter()
                .any(|&n| n == doy || n == doy - len - 1)
            {
                return false;
            }
        }
        if !self.by_month_day.is_empty() {
            let (d, len) = (day.day(), day.days_in_month());
            if !self
                .by_month_day
                .iter()
                .any(|&n| n == d || n == d - len - 1)
            {
                return false;
            }
        }
        if !self.by_day.is_empty() {
            // Ordinals count within the month (monthly, or yearly with BYMONTH) or the year.
            let in_month = self.rule.freq == Frequency::Monthly
                || (self.rule.freq == Frequency::Yearly && !self.by_month.is_empty());
            let (index, len) = if in_month {
                (i64::from(day.day()) - 1, i64::from(day.days_in_month()))
            } else {
                (
                    i64::from(day.day_of_year()) - 1,
                    i64::from(day.days_in_year()),
                )
            };
            let ordinals_count = matches!(self.rule.freq, Frequency::Monthly | Frequency::Yearly);
            let from_start = index / 7 + 1;
            let from_end = -((len - 1 - index) / 7 + 1);
            if !self.by_day.iter().any(|d| {
                d.weekday == day.weekday()
                    && match (d.nth, ordinals_count) {
                        (Some(n), true) => i64::from(n) == from_start || i64::from(n) == from_end,
                        _ => true,
                    }
            }) {
                return false;
            }
        }
        true
    }
}

/// The wall-clock starts of a rule's instances for an event starting at `start` (DTSTART
/// first), up to `until` (the rule's UNTIL in DTSTART's wall-clock time, inclusive) and
/// `limit` (nothing after it is needed); without COUNT, periods wholly before `from` are
/// skipped.
pub(crate) fn occurrences(
    rule: &Rule,
    start: civil::DateTime,
    all_day: bool,
    until: Option<civil::DateTime>,
    from: civil::Date,
    limit: civil::DateTime,
) -> Result<Vec<civil::DateTime>, CalendarError> {
    let expansion = Expansion::new(rule, start, all_day);
    let mut taken = Taken {
        start,
        until,
        limit,
        count: rule.count.map(u64::from),
        found: vec![start],
    };
    if level(rule.freq) > 0 {
        sub_daily(&expansion, &mut taken, from)?;
        return Ok(taken.found);
    }
    let mut k = if taken.count.is_none() {
        expansion.period_before(from)
    } else {
        0
    };
    let mut days_seen: u64 = 0;
    let mut candidates = Vec::new();
    loop {
        if taken.full() {
            break;
        }
        let Some((first, len)) = expansion.period(k) else {
            break;
        };
        if taken.beyond(first.to_datetime(civil::Time::midnight())) {
            break;
        }
        days_seen += len as u64;
        if days_seen > MAX_DAYS {
            return Err(CalendarError::TooManyInstances(MAX_INSTANCES));
        }
        candidates.clear();
        let first_day = epoch_day(first);
        for offset in 0..len {
            let Some(day) = date_of(first_day + offset) else {
                continue;
            };
            if expansion.allows(day) {
                candidates.extend(expansion.times.iter().map(|t| day.to_datetime(*t)));
            }
        }
        if !taken.take(set_positions(&rule.by_set_pos, &mut candidates))? {
            break;
        }
        k += 1;
    }
    Ok(taken.found)
}

/// How far below a day a frequency goes: 0 for a day or more, 1 hourly, 2 minutely, 3
/// secondly.
fn level(freq: Frequency) -> u8 {
    match freq {
        Frequency::Secondly => 3,
        Frequency::Minutely => 2,
        Frequency::Hourly => 1,
        Frequency::Daily | Frequency::Weekly | Frequency::Monthly | Frequency::Yearly => 0,
    }
}

/// The instances found so far and where finding stops.
struct Taken {
    start: civil::DateTime,
    until: Option<civil::DateTime>,
    limit: civil::DateTime,
    count: Option<u64>,
    found: Vec<civil::DateTime>,
}

impl Taken {
    /// Whether COUNT instances are found.
    fn full(&self) -> bool {
        self.count.is_some_and(|c| self.found.len() as u64 >= c)
    }

    /// Whether a time is past UNTIL or the limit.
    fn beyond(&self, at: civil::DateTime) -> bool {
        at > self.limit || self.until.is_some_and(|u| at > u)
    }

    /// Takes the chosen starts of one period, in order; false once nothing more is wanted.
    fn take(&mut self, chosen: Vec<civil::DateTime>) -> Result<bool, CalendarError> {
        for at in chosen {
            if at <= self.start {
                continue;
            }
            if self.beyond(at) || self.full() {
                return Ok(false);
            }
            self.found.push(at);
            if self.found.len() > MAX_INSTANCES {
                return Err(CalendarError::TooManyInstances(MAX_INSTANCES));
            }
        }
        Ok(true)
    }
}

/// The candidates of one period that BYSETPOS picks (all without it), sorted.
fn set_positions(
    by_set_pos: &[i32],
    candidates: &mut Vec<civil::DateTime>,
) -> Vec<civil::DateTime> {
    if by_set_pos.is_empty() {
        return std::mem::take(candidates);
    }
    let n = candidates.len() as i64;
    let mut picked: Vec<civil::DateTime> = by_set_pos
        .iter()
        .filter_map(|&p| {
            let index = if p > 0 {
                i64::from(p) - 1
            } else {
                n + i64::from(p)
            };
            (0..n).contains(&index).then(|| candidates[index as usize])
        })
        .collect();
    picked.sort();
    picked.dedup();
    picked
}

/// Seconds since 1970-01-01 on the wall clock, for arithmetic on periods shorter than a day.
fn clock_seconds(at: civil::DateTime) -> i64 {
    epoch_day(at.date()) * 86_400
        + i64::from(at.hour()) * 3600
        + i64::from(at.minute()) * 60
        + i64::from(at.second())
}

/// The wall-clock time `seconds` ([`clock_seconds`]) stands for.
fn clock_time(seconds: i64) -> Option<civil::DateTime> {
    let day = date_of(seconds.div_euclid(86_400))?;
    let second = seconds.rem_euclid(86_400);
    let time = civil::Time::new(
        (second / 3600) as i8,
        (second / 60 % 60) as i8,
        (second % 60) as i8,
        0,
    )
    .ok()?;
    Some(day.to_datetime(time))
}

/// The instances of an hourly, minutely or secondly rule: periods of `INTERVAL` hours,
/// minutes or seconds from DTSTART's, on the wall clock; a day the BY-parts exclude, or an
/// hour or minute they exclude, is skipped whole.
fn sub_daily(
    expansion: &Expansion<'_>,
    taken: &mut Taken,
    from: civil::Date,
) -> Result<(), CalendarError> {
    let rule = expansion.rule;
    let start = expansion.start;
    let (unit, base) = match rule.freq {
        Frequency::Hourly => (3600, start.with().minute(0).second(0).build()),
        Frequency::Minutely => (60, start.with().second(0).build()),
        _ => (1, Ok(start)),
    };
    let base = clock_seconds(base.map_err(|e| CalendarError::property("DTSTART", e.to_string()))?);
    let step = i64::from(rule.interval) * unit;
    // The first period at or after `at` (clock seconds), but never before `k`.
    let first_from = |at: i64, k: i64| k.max((at - base + step - 1).div_euclid(step));
    let mut k = match taken.count {
        None => first_from(clock_seconds(from.to_datetime(civil::Time::midnight())), 0),
        Some(_) => 0,
    };
    let mut visited: u64 = 0;
    let mut candidates = Vec::new();
    while !taken.full() {
        let Some(at) = k.checked_mul(step).and_then(|s| s.checked_add(base)) else {
            break;
        };
        let Some(period) = clock_time(at) else {
            break;
        };
        if taken.beyond(period) {
            break;
        }
        visited += 1;
        if visited > MAX_PERIODS {
            return Err(CalendarError::TooManyInstances(MAX_INSTANCES));
        }
        let day = period.date();
        if !expansion.allows(day) {
            k = first_from(epoch_day(day).saturating_add(1) * 86_400, k + 1);
            continue;
        }
        let hour_start = at - i64::from(period.minute()) * 60 - i64::from(period.second());
        if !rule.by_hour.is_empty() && !rule.by_hour.contains(&period.hour()) {
            k = first_from(hour_start + 3600, k + 1);
            continue;
        }
        let minute_out = rule.freq != Frequency::Hourly
            && !rule.by_minute.is_empty()
            && !rule.by_minute.contains(&period.minute());
        if minute_out {
            k = first_from(at - i64::from(period.second()) + 60, k + 1);
            continue;
        }
        let second_out = rule.freq == Frequency::Secondly
            && !rule.by_second.is_empty()
            && !rule.by_second.contains(&period.second());
        candidates.clear();
        if !second_out {
            for t in &expansion.times {
                let (minute, second) = match rule.freq {
                    Frequency::Hourly => (t.minute(), t.second()),
                    Frequency::Minutely => (period.minute(), t.second()),
                    _ => (period.minute(), period.second()),
                };
                if let Ok(time) = civil::Time::new(period.hour(), minute, second, 0) {
                    candidates.push(day.to_datetime(time));
                }
            }
        }
        if !taken.take(set_positions(&rule.by_set_pos, &mut candidates))? {
            break;
        }
        k += 1;
    }
    Ok(())
}

/// Whether `day` is in a week BYWEEKNO names. Weeks start on WKST; week 1 is the first with
/// at least four days in the year, so the first days of January may belong to the last week
/// of the year before (named by its number or -1), and the last days of December to week 1
/// of the next year (named by 1 or by the next year's negative number of it).
fn week_matches(day: civil::Date, rule: &Rule) -> bool {
    let Some(this) = WeekYear::of(day.year(), rule.week_start) else {
        return false;
    };
    let index = i64::from(day.day_of_year()) - 1;
    let names = |number: i64, weeks: i64| {
        rule.by_week_no
            .iter()
            .any(|&n| i64::from(n) == number || i64::from(n) == number - weeks - 1)
    };
    if index < this.first {
        let weeks = i16::try_from(i64::from(day.year()) - 1)
            .ok()
            .and_then(|y| WeekYear::of(y, rule.week_start))
            .map_or(52, |last| last.weeks);
        return names(weeks, weeks);
    }
    let week = (index - this.first) / 7 + 1;
    if week > this.weeks {
        let weeks = i16::try_from(i64::from(day.year()) + 1)
            .ok()
            .and_then(|y| WeekYear::of(y, rule.week_start))
            .map_or(52, |next| next.weeks);
        return names(1, weeks);
    }
    names(week, this.weeks)
}

/// A year's weeks for BYWEEKNO.
struct WeekYear {
    /// The day of the year (from 0) that week 1 starts on; -3 to -1 when it starts in
    /// December of the year before.
    first: i64,
    /// How many weeks the year has: 52 or 53.
    weeks: i64,
}

impl WeekYear {
    fn of(year: i16, week_start: Weekday) -> Option<Self> {
        let january = civil::Date::new(year, 1, 1).ok()?;
        let to_week_start = i64::from(week_start.since(january.weekday()));
        let first = if to_week_start >= 4 {
            to_week_start - 7
        } else {
            to_week_start
        };
        let days = i64::from(january.days_in_year()) - first;
        Some(Self {
            first,
            weeks: days / 7 + i64::from(days % 7 >= 4),
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::When;
    use jiff::civil::{date, datetime};

    fn expand(rule: &str, start: civil::DateTime, limit: civil::DateTime) -> Vec<String> {
        let rule: Rule = rule.parse().unwrap();
        let until = match &rule.until {
            Some(When::Utc { time }) => Some(jiff::tz::TimeZone::UTC.to_datetime(*time)),
            Some(When::Date { date, .. }) => Some(date.to_datetime(civil::Time::MAX)),
            Some(When::Floating { time }) => Some(*time),
            _ => None,
        };
        occurrences(&rule, start, false, until, start.date(), limit)
            .unwrap()
            .iter()
            .map(|d| d.strftime("%Y-%m-%d %H:%M %a").to_string())
            .collect()
    }

    #[test]
    fn weekly_with_byday_and_count_counts_dtstart() {
        assert_eq!(
            expand(
                "FREQ=WEEKLY;COUNT=5;BYDAY=TU,TH",
                datetime(2026, 12, 1, 10, 0, 0, 0),
                datetime(2027, 12, 31, 0, 0, 0, 0)
            ),
            [
                "2026-12-01 10:00 Tue",
                "2026-12-03 10:00 Thu",
                "2026-12-08 10:00 Tue",
                "2026-12-10 10:00 Thu",
                "2026-12-15 10:00 Tue",
            ]
        );
    }

    #[test]
    fn weekly_interval_weeks_start_on_wkst() {
        // RFC 5545's example: the same rule gives other days with WKST=SU.
        let start = datetime(1997, 8, 5, 9, 0, 0, 0);
        let limit = datetime(1998, 1, 1, 0, 0, 0, 0);
        assert_eq!(
            expand(
                "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
                start,
                limit
            ),
            [
                "1997-08-05 09:00 Tue",
                "1997-08-10 09:00 Sun",
                "1997-08-19 09:00 Tue",
                "1997-08-24 09:00 Sun",
            ]
        );
        assert_eq!(
            expand(
                "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
                start,
                limit
            ),
            [
                "1997-08-05 09:00 Tue",
                "1997-08-17 09:00 Sun",
                "1997-08-19 09:00 Tue",
                "1997-08-31 09:00 Sun",
            ]
        );
    }

    #[test]
    fn monthly_ordinal_weekdays() {
        let start = datetime(2026, 1, 12, 9, 0, 0, 0); // the 2nd Monday of January
        let limit = datetime(2026, 12, 31, 0, 0, 0, 0);
        assert_eq!(
            expand("FREQ=MONTHLY;COUNT=4;BYDAY=2MO", start, limit),
            [
                "2026-01-12 09:00 Mon",
                "2026-02-09 09:00 Mon",
                "2026-03-09 09:00 Mon",
                "2026-04-13 09:00 Mon",
            ]
        );
        let start = datetime(2026, 1, 30, 16, 0, 0, 0); // the last Friday of January
        assert_eq!(
            expand(
                "FREQ=MONTHLY;UNTIL=20260601T000000Z;BYDAY=-1FR",
                start,
                limit
            ),
            [
                "2026-01-30 16:00 Fri",
                "2026-02-27 16:00 Fri",
                "2026-03-27 16:00 Fri",
                "2026-04-24 16:00 Fri",
                "2026-05-29 16:00 Fri",
            ]
        );
        // The last weekday of the month, the way Outlook writes it.
        assert_eq!(
            expand(
                "FREQ=MONTHLY;COUNT=3;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                datetime(2026, 1, 30, 8, 0, 0, 0),
                limit
            ),
            [
                "2026-01-30 08:00 Fri",
                "2026-02-27 08:00 Fri",
                "2026-03-31 08:00 Tue",
            ]
        );
    }

    #[test]
    fn monthly_by_month_day_skips_short_months_and_counts_from_the_end() {
        let limit = datetime(2026, 12, 31, 0, 0, 0, 0);
        assert_eq!(
            expand(
                "FREQ=MONTHLY;COUNT=4",
                datetime(2026, 1, 31, 12, 0, 0, 0),
                limit
            ),
            [
                "2026-01-31 12:00 Sat",
                "2026-03-31 12:00 Tue",
                "2026-05-31 12:00 Sun",
                "2026-07-31 12:00 Fri",
            ]
        );
        assert_eq!(
            expand(
                "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=-1",
                datetime(2026, 1, 31, 12, 0, 0, 0),
                limit
            ),
            [
                "2026-01-31 12:00 Sat",
                "2026-02-28 12:00 Sat",
                "2026-03-31 12:00 Tue",
            ]
        );
    }

    #[test]
    fn yearly_rules() {
        let limit = datetime(2040, 1, 1, 0, 0, 0, 0);
        assert_eq!(
            expand(
                "FREQ=YEARLY;COUNT=3",
                datetime(2024, 2, 29, 8, 0, 0, 0),
                limit
            ),
            [
                "2024-02-29 08:00 Thu",
                "2028-02-29 08:00 Tue",
                "2032-02-29 08:00 Sun",
            ],
            "no 29 February in common years"
        );
        // US Thanksgiving.
        assert_eq!(
            expand(
                "FREQ=YEARLY;COUNT=3;BYMONTH=11;BYDAY=4TH",
                datetime(2026, 11, 26, 12, 0, 0, 0),
                limit
            ),
            [
                "2026-11-26 12:00 Thu",
                "2027-11-25 12:00 Thu",
                "2028-11-23 12:00 Thu",
            ]
        );
        // The 20th Monday of the year (RFC 5545's example).
        assert_eq!(
            expand(
                "FREQ=YEARLY;COUNT=3;BYDAY=20MO",
                datetime(1997, 5, 19, 9, 0, 0, 0),
                limit
            ),
            [
                "1997-05-19 09:00 Mon",
                "1998-05-18 09:00 Mon",
                "1999-05-17 09:00 Mon",
            ]
        );
    }

    #[test]
    fn daily_with_interval_until_and_filters() {
        let limit = datetime(2030, 1, 1, 0, 0, 0, 0);
        assert_eq!(
            expand(
                "FREQ=DAILY;INTERVAL=2;UNTIL=20261207",
                datetime(2026, 12, 1, 9, 0, 0, 0),
                limit
            ),
            [
                "2026-12-01 09:00 Tue",
                "2026-12-03 09:00 Thu",
                "2026-12-05 09:00 Sat",
                "2026-12-07 09:00 Mon",
            ]
        );
        assert_eq!(
            expand(
                "FREQ=DAILY;COUNT=3;BYDAY=MO,WE,FR;BYHOUR=9,14",
                datetime(2026, 12, 2, 9, 0, 0, 0),
                limit
            ),
            [
                "2026-12-02 09:00 Wed",
                "2026-12-02 14:00 Wed",
                "2026-12-04 09:00 Fri",
            ]
        );
    }

    #[test]
    fn unbounded_rules_stop_at_the_limit_and_skip_to_the_range() {
        let rule: Rule = "FREQ=DAILY".parse().unwrap();
        let start = datetime(2000, 1, 1, 9, 0, 0, 0);
        let found = occurrences(
            &rule,
            start,
            false,
            None,
            date(2026, 12, 1),
            datetime(2026, 12, 3, 23, 0, 0, 0),
        )
        .unwrap();
        let shown: Vec<String> = found.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown,
            [
                "2000-01-01T09:00:00",
                "2026-12-01T09:00:00",
                "2026-12-02T09:00:00",
                "2026-12-03T09:00:00",
            ],
            "DTSTART, then only the range"
        );
    }

    #[test]
    fn weeks_are_numbered_from_wkst_with_week_1_the_first_of_four_days() {
        let limit = datetime(2040, 1, 1, 0, 0, 0, 0);
        // RFC 5545: Monday of week number 20.
        assert_eq!(
            expand(
                "FREQ=YEARLY;COUNT=3;BYWEEKNO=20;BYDAY=MO",
                datetime(1997, 5, 12, 9, 0, 0, 0),
                limit
            ),
            [
                "1997-05-12 09:00 Mon",
                "1998-05-11 09:00 Mon",
                "1999-05-17 09:00 Mon",
            ]
        );
        // Week 1 of 2026 starts on Monday 29 December 2025; 2020 has 53 weeks, the last of
        // them ending on 3 January 2021.
        assert_eq!(
            expand(
                "FREQ=YEARLY;COUNT=3;BYWEEKNO=1,-1;BYDAY=MO,SU",
                datetime(2020, 12, 27, 9, 0, 0, 0),
                limit
            ),
            [
                "2020-12-27 09:00 Sun",
                "2020-12-28 09:00 Mon",
                "2021-01-03 09:00 Sun",
            ]
        );
    }

    #[test]
    fn hourly_minutely_and_secondly_rules() {
        let limit = datetime(1997, 12, 31, 0, 0, 0, 0);
        // RFC 5545: every 3 hours from 9:00 to 17:00 on one day.
        assert_eq!(
            expand(
                "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z",
                datetime(1997, 9, 2, 9, 0, 0, 0),
                limit
            ),
            [
                "1997-09-02 09:00 Tue",
                "1997-09-02 12:00 Tue",
                "1997-09-02 15:00 Tue",
            ]
        );
        // RFC 5545: every 20 minutes from 9:00 to 16:40, here its first hour and the next day.
        let every_20 = expand(
            "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
            datetime(1997, 9, 2, 9, 0, 0, 0),
            datetime(1997, 9, 3, 9, 20, 0, 0),
        );
        assert_eq!(every_20.len(), 24 + 2);
        assert_eq!(
            every_20[..3],
            [
                "1997-09-02 09:00 Tue",
                "1997-09-02 09:20 Tue",
                "1997-09-02 09:40 Tue"
            ]
        );
        assert_eq!(every_20[23], "1997-09-02 16:40 Tue");
        assert_eq!(every_20[24], "1997-09-03 09:00 Wed");
        // BYSECOND limits a secondly rule; BYSETPOS picks within an hour's minutes.
        assert_eq!(
            expand(
                "FREQ=SECONDLY;COUNT=3;BYSECOND=0,30",
                datetime(2026, 12, 1, 10, 0, 0, 0),
                limit.with().year(2027).build().unwrap()
            ),
            [
                "2026-12-01 10:00 Tue",
                "2026-12-01 10:00 Tue",
                "2026-12-01 10:01 Tue"
            ]
        );
        assert_eq!(
            expand(
                "FREQ=HOURLY;COUNT=3;BYMINUTE=0,15,45;BYSETPOS=-1",
                datetime(2026, 12, 1, 10, 45, 0, 0),
                limit.with().year(2027).build().unwrap()
            ),
            [
                "2026-12-01 10:45 Tue",
                "2026-12-01 11:45 Tue",
                "2026-12-01 12:45 Tue"
            ]
        );
    }
}
