//! Busy periods: the instances of one calendar object (a recurring event with its EXDATEs,
//! RDATEs and exceptions, or single events) that block time in a range, and the merging of
//! many objects' periods into one free/busy answer.
//!
//! Times are placed in the event's own zone: a recurrence keeps its wall-clock time across
//! DST changes. Floating times and dates without a zone are the calendar owner's: they are
//! placed in the zone the caller gives (an all-day event in Berlin is busy from midnight to
//! midnight in Berlin).

use std::collections::BTreeMap;

use jiff::{Timestamp, civil, tz::TimeZone};

use crate::{
    error::CalendarError,
    expand::{self, MAX_INSTANCES},
    model::{Duration, End, Event, RDate, When},
    rrule, zone,
};

/// How a period shows in free/busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BusyKind {
    /// `BUSY-TENTATIVE`: only tentative events.
    Tentative,
    /// `BUSY`.
    Busy,
}

impl BusyKind {
    /// The RFC 5545 FBTYPE: `BUSY` or `BUSY-TENTATIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "BUSY",
            Self::Tentative => "BUSY-TENTATIVE",
        }
    }
}

/// A busy period: `[start_ms, end_ms)`, in ms since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Busy {
    /// The start, inclusive.
    pub start_ms: i64,
    /// The end, exclusive.
    pub end_ms: i64,
    /// Busy or tentative.
    pub kind: BusyKind,
}

/// The periods the events of one calendar object block within `[start_ms, end_ms)`, clipped
/// to it, unmerged; floating times and dates without a zone are in `owner_zone`, the calendar
/// owner's. Events are grouped by UID: an event with RECURRENCE-ID replaces the instance of
/// its group's recurring event that starts then (cancelled, it just removes it).
pub fn busy_periods(
    events: &[Event],
    owner_zone: &TimeZone,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Busy>, CalendarError> {
    let mut groups: BTreeMap<Option<&str>, (Vec<&Event>, Vec<&Event>)> = BTreeMap::new();
    for event in events {
        let group = groups.entry(event.uid.as_deref()).or_default();
        if event.recurrence_id.is_some() {
            group.1.push(event);
        } else {
            group.0.push(event);
        }
    }
    let range = Range { start_ms, end_ms };
    let mut found = Vec::new();
    for (masters, exceptions) in groups.values() {
        for master in masters {
            let series = Series::of(master, owner_zone)?;
            let replaced = exceptions
                .iter()
                .filter_map(|e| e.recurrence_id.as_ref())
                .map(|id| series.key(id))
                .collect::<Result<Vec<_>, _>>()?;
            let removed = master
                .exdates
                .iter()
                .map(|x| series.key(x))
                .collect::<Result<Vec<_>, _>>()?;
            let Some(kind) = master.busy_kind() else {
                continue;
            };
            for instance in series.instances(range)? {
                if replaced
                    .iter()
                    .chain(&removed)
                    .any(|r| r.matches(&instance))
                {
                    continue;
                }
                range.push(&mut found, instance.start_ms, instance.end_ms, kind);
            }
        }
        for exception in exceptions {
            let Some(kind) = exception.busy_kind() else {
                continue;
            };
            let own = Series::of(exception, owner_zone)?;
            let (start, end) = match (&exception.end, masters.first()) {
                // An exception that gives no end lasts as long as the instances it replaces.
                (None, Some(master)) if master.end.is_some() => {
                    let of_master = Series::of(master, owner_zone)?;
                    let start = own.start_ms;
                    (start, of_master.end_of(of_master.local(start), start)?)
                }
                _ => (own.start_ms, own.end_of(own.start, own.start_ms)?),
            };
            range.push(&mut found, start, end, kind);
        }
    }
    Ok(found)
}

/// Merges busy periods of any objects: sorted, overlapping or touching periods of one kind
/// joined, and where a busy and a tentative period overlap, busy wins.
pub fn merge(mut periods: Vec<Busy>) -> Vec<Busy> {
    periods.retain(|p| p.end_ms > p.start_ms);
    // A sweep over the boundaries, counting what covers each stretch.
    let mut edges: Vec<(i64, i32, BusyKind)> = Vec::with_capacity(periods.len() * 2);
    for p in &periods {
        edges.push((p.start_ms, 1, p.kind));
        edges.push((p.end_ms, -1, p.kind));
    }
    edges.sort_by_key(|&(at, delta, _)| (at, delta));
    let (mut busy, mut tentative) = (0i32, 0i32);
    let mut merged: Vec<Busy> = Vec::new();
    let mut i = 0;
    while i < edges.len() {
        let at = edges[i].0;
        while i < edges.len() && edges[i].0 == at {
            let (_, delta, kind) = edges[i];
            match kind {
                BusyKind::Busy => busy += delta,
                BusyKind::Tentative => tentative += delta,
            }
            i += 1;
        }
        let Some(&(next, _, _)) = edges.get(i) else {
            break;
        };
        let kind = if busy > 0 {
            Some(BusyKind::Busy)
        } else if tentative > 0 {
            Some(BusyKind::Tentative)
        } else {
            None
        };
        if let Some(kind) = kind {
            match merged.last_mut() {
                Some(last) if last.kind == kind && last.end_ms == at => last.end_ms = next,
                _ => merged.push(Busy {
                    start_ms: at,
                    end_ms: next,
                    kind,
                }),
            }
        }
    }
    merged
}

#[derive(Debug, Clone, Copy)]
struct Range {
    start_ms: i64,
    end_ms: i64,
}

impl Range {
    /// Adds a period clipped to the range, if anything of it is inside.
    fn push(self, found: &mut Vec<Busy>, start_ms: i64, end_ms: i64, kind: BusyKind) {
        let (start_ms, end_ms) = (start_ms.max(self.start_ms), end_ms.min(self.end_ms));
        if start_ms < end_ms {
            found.push(Busy {
                start_ms,
                end_ms,
                kind,
            });
        }
    }
}

/// One instance: its start (wall-clock, and exact) and end.
#[derive(Debug, Clone, Copy)]
struct Instance {
    local: civil::DateTime,
    start_ms: i64,
    end_ms: i64,
}

/// What identifies an instance for EXDATE and RECURRENCE-ID: its exact start, or for a date
/// its day.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    At(i64),
    Day(civil::Date),
}

impl Key {
    /// Whether an EXDATE or RECURRENCE-ID (`self`) names this instance; a date names every
    /// instance on that day.
    fn matches(&self, instance: &Instance) -> bool {
        match self {
            Self::At(ms) => *ms == instance.start_ms,
            Self::Day(day) => *day == instance.local.date(),
        }
    }
}

/// An event's timeline: its zone, whether it is all-day, its first start.
struct Series<'a> {
    event: &'a Event,
    zone: TimeZone,
    all_day: bool,
    start: civil::DateTime,
    start_ms: i64,
}

impl<'a> Series<'a> {
    fn of(event: &'a Event, owner_zone: &TimeZone) -> Result<Self, CalendarError> {
        let (zone, all_day, start) = match &event.start {
            When::Date { date, zone: z } => (
                match z {
                    Some(z) => zone::resolve(z)?,
                    None => owner_zone.clone(),
                },
                true,
                date.to_datetime(civil::Time::midnight()),
            ),
            When::Floating { time } => (owner_zone.clone(), false, *time),
            When::Utc { time } => (TimeZone::UTC, false, TimeZone::UTC.to_datetime(*time)),
            When::Zoned { time, zone: z } => (zone::resolve(z)?, false, *time),
        };
        let start_ms = to_ms(&zone, start)?;
        Ok(Self {
            event,
            zone,
            all_day,
            start,
            start_ms,
        })
    }

    /// Where a moment is on this series' wall clock.
    fn local(&self, ms: i64) -> civil::DateTime {
        // Ranges beyond the calendar (asked for "all time") end at about the year ±9987.
        const EDGE_MS: i64 = 253_000_000_000_000;
        let at = Timestamp::from_millisecond(ms.clamp(-EDGE_MS, EDGE_MS)).unwrap_or_default();
        self.zone.to_datetime(at)
    }

    /// The instant a date or time stands for; floating times are on this series' clock.
    fn instant(&self, when: &When) -> Result<i64, CalendarError> {
        match when {
            When::Date { date, zone: z } => {
                let zone = match z {
                    Some(z) => zone::resolve(z)?,
                    None => self.zone.clone(),
                };
                to_ms(&zone, date.to_datetime(civil::Time::midnight()))
            }
            When::Floating { time } => to_ms(&self.zone, *time),
            When::Utc { time } => Ok(time.as_millisecond()),
            When::Zoned { time, zone: z } => to_ms(&zone::resolve(z)?, *time),
        }
    }

    /// How an EXDATE or RECURRENCE-ID names an instance of this series.
    fn key(&self, when: &When) -> Result<Key, CalendarError> {
        Ok(match when {
            When::Date { date, .. } => Key::Day(*date),
            _ if self.all_day => Key::Day(self.local(self.instant(when)?).date()),
            _ => Key::At(self.instant(when)?),
        })
    }

    /// UNTIL on this series' wall clock.
    fn until(&self, until: &When) -> Result<civil::DateTime, CalendarError> {
        Ok(match until {
            When::Date { date, .. } => date.to_datetime(civil::Time::MAX),
            When::Floating { time } => *time,
            _ => self.local(self.instant(until)?),
        })
    }

    /// The end of the instance starting at `local` (`start_ms`).
    fn end_of(&self, local: civil::DateTime, start_ms: i64) -> Result<i64, CalendarError> {
        match &self.event.end {
            None if self.all_day => self.add(
                local,
                Duration {
                    days: 1,
                    seconds: 0,
                },
            ),
            None => Ok(start_ms),
            Some(End::Lasting { duration }) => self.add(local, *duration),
            Some(End::At { when: end }) => match end {
                When::Date { date, .. } if self.all_day => {
                    let days = rrule::epoch_day(*date) - rrule::epoch_day(self.start.date());
                    self.add(
                        local,
                        Duration {
                            days: days.max(1),
                            seconds: 0,
                        },
                    )
                }
                _ => {
                    let exact = self.instant(end)? - self.start_ms;
                    Ok(start_ms.saturating_add(exact.max(0)))
                }
            },
        }
    }

    /// `local` plus a duration: days on the wall clock, then exact seconds.
    fn add(&self, local: civil::DateTime, duration: Duration) -> Result<i64, CalendarError> {
        let day = rrule::add_days(local.date(), duration.days).ok_or_else(|| {
            CalendarError::property(
                "DURATION",
                format!("{} days is out of range", duration.days),
            )
        })?;
        let ms = to_ms(&self.zone, day.to_datetime(local.time()))?;
        Ok(ms.saturating_add(duration.seconds.saturating_mul(1000)))
    }

    /// A generous bound on how long an instance lasts, in whole days.
    fn span_days(&self) -> Result<i64, CalendarError> {
        let end = self.end_of(self.start, self.start_ms)?;
        Ok((end - self.start_ms).max(0) / 86_400_000 + 2)
    }

    /// The instances that may overlap `range` (and DTSTART's).
    fn instances(&self, range: Range) -> Result<Vec<Instance>, CalendarError> {
        let event = self.event;
        let mut starts: Vec<(civil::DateTime, Option<i64>)> = Vec::new();
        if event.rules.is_empty() {
            starts.push((self.start, None));
        } else {
            let from = rrule::add_days(self.local(range.start_ms).date(), -self.span_days()?)
                .unwrap_or(civil::Date::MIN);
            let limit = self.local(range.end_ms);
            for rule in &event.rules {
                let until = rule.until.as_ref().map(|u| self.until(u)).transpose()?;
                for local in
                    expand::occurrences(rule, self.start, self.all_day, until, from, limit)?
                {
                    starts.push((local, None));
                }
            }
        }
        for rdate in &event.rdates {
            let (start, end) = match rdate {
                RDate::At { when } => (when, None),
                RDate::Period { start, end } => (start, Some(end)),
            };
            let local = match start {
                When::Date { date, .. } => date.to_datetime(civil::Time::midnight()),
                other => self.local(self.instant(other)?),
            };
            let end_ms = match end {
                None => None,
                Some(End::At { when }) => Some(self.instant(when)?),
                Some(End::Lasting { duration }) => Some(self.add(local, *duration)?),
            };
            starts.push((local, end_ms));
        }
        if starts.len() > MAX_INSTANCES {
            return Err(CalendarError::TooManyInstances(MAX_INSTANCES));
        }
        let mut instances = Vec::with_capacity(starts.len());
        for (local, end_ms) in starts {
            let start_ms = to_ms(&self.zone, local)?;
            if start_ms >= range.end_ms {
                continue;
            }
            let end_ms = match end_ms {
                Some(end) => end,
                None => self.end_of(local, start_ms)?,
            };
            if end_ms > range.start_ms {
                instances.push(Instance {
                    local,
                    start_ms,
                    end_ms,
                });
            }
        }
        instances.sort_by_key(|i| i.start_ms);
        instances.dedup_by_key(|i| i.start_ms);
        Ok(instances)
    }
}

/// A wall-clock time in a zone as ms since the epoch; a time in a DST gap moves forward by
/// the gap, a time in a fold takes the earlier instant (RFC 5545 3.3.5).
fn to_ms(zone: &TimeZone, local: civil::DateTime) -> Result<i64, CalendarError> {
    zone.to_timestamp(local)
        .map(Timestamp::as_millisecond)
        .map_err(|_| CalendarError::Time {
            time: local.to_string(),
            zone: zone.iana_name().unwrap_or("(unnamed)").to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_ical, value::utc};

    fn ms(text: &str) -> i64 {
        utc(text).as_millisecond()
    }

    /// The merged periods of VEVENTs (iCalendar lines) in a range, as `start end TYPE`.
    fn periods(vevents: &str, from: &str, to: &str) -> Vec<String> {
        periods_of(&TimeZone::UTC, vevents, from, to)
    }

    /// [`periods`] of an owner in `owner_zone`.
    fn periods_of(owner_zone: &TimeZone, vevents: &str, from: &str, to: &str) -> Vec<String> {
        let events = parse_ical(&format!("BEGIN:VCALENDAR\n{vevents}END:VCALENDAR\n")).unwrap();
        show(&merge(
            busy_periods(&events, owner_zone, ms(from), ms(to)).unwrap(),
        ))
    }

    #[test]
    fn all_day_events_and_floating_times_are_in_the_owners_zone() {
        let berlin = zone::resolve("Europe/Berlin").unwrap();
        let vevents = "BEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261226\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:f\nDTSTART:20260701T100000\nDTEND:20260701T110000\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:w\nDTSTART;VALUE=DATE:20260328\nRRULE:FREQ=DAILY;COUNT=2\nEND:VEVENT\n";
        assert_eq!(
            periods_of(
                &berlin,
                vevents,
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z"
            ),
            [
                // 28 March is a day of 24 hours, 29 March (summer time from 02:00) of 23.
                "2026-03-27T23:00:00Z 2026-03-29T22:00:00Z BUSY",
                "2026-07-01T08:00:00Z 2026-07-01T09:00:00Z BUSY",
                // Midnight to midnight in Berlin, not in UTC.
                "2026-12-23T23:00:00Z 2026-12-25T23:00:00Z BUSY",
            ]
        );
        assert_eq!(
            periods(vevents, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            ["2026-12-24T00:00:00Z 2026-12-26T00:00:00Z BUSY"],
            "an owner in UTC"
        );
    }

    /// RFC 5545's own example (3.6.5): New York before and after the US change of 2007, as a
    /// VTIMEZONE that IANA does not name.
    const US_EASTERN: &str = "BEGIN:VTIMEZONE\nTZID:US-Eastern\n\
BEGIN:DAYLIGHT\nDTSTART:19870405T020000\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z\n\
TZOFFSETFROM:-0500\nTZOFFSETTO:-0400\nEND:DAYLIGHT\n\
BEGIN:STANDARD\nDTSTART:19671029T020000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\n\
TZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nEND:STANDARD\n\
BEGIN:DAYLIGHT\nDTSTART:20070311T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\n\
TZOFFSETFROM:-0500\nTZOFFSETTO:-0400\nEND:DAYLIGHT\n\
BEGIN:STANDARD\nDTSTART:20071104T020000\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\n\
TZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nEND:STANDARD\nEND:VTIMEZONE\n";

    #[test]
    fn a_vtimezone_keeps_every_historical_rule_and_iana_names_keep_theirs() {
        // 20 March at 10:00 each year, and 1 November: summer time began on the first Sunday
        // of April and ended on the last of October until 2006, and runs from the second
        // Sunday of March to the first of November since 2007.
        for tzid in [
            "US-Eastern",
            "America/New_York",
            "/kolab.org/America/New_York",
        ] {
            let vevents = format!(
                "{US_EASTERN}BEGIN:VEVENT\nUID:m\nDTSTART;TZID={tzid}:20050320T100000\n\
DTEND;TZID={tzid}:20050320T110000\nRRULE:FREQ=YEARLY;COUNT=5\n\
RDATE;TZID={tzid}:20061101T100000,20071101T100000\nEND:VEVENT\n"
            );
            assert_eq!(
                periods(&vevents, "2005-01-01T00:00:00Z", "2010-01-01T00:00:00Z"),
                [
                    "2005-03-20T15:00:00Z 2005-03-20T16:00:00Z BUSY",
                    "2006-03-20T15:00:00Z 2006-03-20T16:00:00Z BUSY",
                    "2006-11-01T15:00:00Z 2006-11-01T16:00:00Z BUSY",
                    "2007-03-20T14:00:00Z 2007-03-20T15:00:00Z BUSY",
                    "2007-11-01T14:00:00Z 2007-11-01T15:00:00Z BUSY",
                    "2008-03-20T14:00:00Z 2008-03-20T15:00:00Z BUSY",
                    "2009-03-20T14:00:00Z 2009-03-20T15:00:00Z BUSY",
                ],
                "{tzid}"
            );
        }
        // Moscow: MSK/MSD until 2010, +04 all year from March 2011, +03 from October 2014.
        let moscow = "BEGIN:VEVENT\nUID:r\nDTSTART;TZID=Europe/Moscow:20100115T100000\n\
DURATION:PT1H\nRDATE;TZID=Europe/Moscow:20100715T100000,20120115T100000,20120715T100000,20150115T100000,20150715T100000\nEND:VEVENT\n";
        assert_eq!(
            periods(moscow, "2010-01-01T00:00:00Z", "2016-01-01T00:00:00Z"),
            [
                "2010-01-15T07:00:00Z 2010-01-15T08:00:00Z BUSY",
                "2010-07-15T06:00:00Z 2010-07-15T07:00:00Z BUSY",
                "2012-01-15T06:00:00Z 2012-01-15T07:00:00Z BUSY",
                "2012-07-15T06:00:00Z 2012-07-15T07:00:00Z BUSY",
                "2015-01-15T07:00:00Z 2015-01-15T08:00:00Z BUSY",
                "2015-07-15T07:00:00Z 2015-07-15T08:00:00Z BUSY",
            ]
        );
    }

    #[test]
    fn a_vtimezone_whose_daylight_time_was_abolished_keeps_its_last_offset() {
        // Moscow as a VTIMEZONE with a name of its own: MSK/MSD to 2010, +04 from 27 March
        // 2011 (a STANDARD without a rule), +03 from 26 October 2014.
        let vtimezone = "BEGIN:VTIMEZONE\nTZID:Moscow (historic)\n\
BEGIN:DAYLIGHT\nDTSTART:19930328T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=20100327T230000Z\n\
TZOFFSETFROM:+0300\nTZOFFSETTO:+0400\nEND:DAYLIGHT\n\
BEGIN:STANDARD\nDTSTART:19961027T030000\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20101030T230000Z\n\
TZOFFSETFROM:+0400\nTZOFFSETTO:+0300\nEND:STANDARD\n\
BEGIN:STANDARD\nDTSTART:20110327T020000\nRDATE:20110327T020000\nTZOFFSETFROM:+0300\nTZOFFSETTO:+0400\nEND:STANDARD\n\
BEGIN:STANDARD\nDTSTART:20141026T020000\nTZOFFSETFROM:+0400\nTZOFFSETTO:+0300\nEND:STANDARD\nEND:VTIMEZONE\n";
        let tzid = "Moscow (historic)";
        let vevents = format!(
            "{vtimezone}BEGIN:VEVENT\nUID:r\nDTSTART;TZID={tzid}:20100115T100000\nDURATION:PT1H\n\
RDATE;TZID={tzid}:20100715T100000,20120115T100000,20150115T100000,20300715T100000\nEND:VEVENT\n"
        );
        assert_eq!(
            periods(&vevents, "2010-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),
            [
                "2010-01-15T07:00:00Z 2010-01-15T08:00:00Z BUSY",
                "2010-07-15T06:00:00Z 2010-07-15T07:00:00Z BUSY",
                "2012-01-15T06:00:00Z 2012-01-15T07:00:00Z BUSY",
                "2015-01-15T07:00:00Z 2015-01-15T08:00:00Z BUSY",
                "2030-07-15T07:00:00Z 2030-07-15T08:00:00Z BUSY",
            ]
        );
    }

    fn show(busy: &[Busy]) -> Vec<String> {
        busy.iter()
            .map(|b| {
                format!(
                    "{} {} {}",
                    bonnie_core::time::format_rfc3339_s(b.start_ms),
                    bonnie_core::time::format_rfc3339_s(b.end_ms),
                    b.kind.as_str()
                )
            })
            .collect()
    }

    #[test]
    fn a_weekly_series_keeps_its_wall_clock_time_across_the_dst_change() {
        let found = periods(
            "BEGIN:VEVENT\nUID:dst\nDTSTART;TZID=/kolab.org/Europe/Berlin:20260317T100000\n\
DTEND;TZID=/kolab.org/Europe/Berlin:20260317T110000\nRRULE:FREQ=WEEKLY;COUNT=4;BYDAY=TU\nEND:VEVENT\n",
            "2026-03-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
        );
        assert_eq!(
            found,
            [
                "2026-03-17T09:00:00Z 2026-03-17T10:00:00Z BUSY",
                "2026-03-24T09:00:00Z 2026-03-24T10:00:00Z BUSY",
                // Summer time from 29 March: 10:00 in Berlin is 08:00 UTC.
                "2026-03-31T08:00:00Z 2026-03-31T09:00:00Z BUSY",
                "2026-04-07T08:00:00Z 2026-04-07T09:00:00Z BUSY",
            ]
        );
    }

    #[test]
    fn a_night_event_across_the_dst_change_lasts_its_exact_duration() {
        // 01:30 to 03:30 lasts two hours on the night the clocks go forward too.
        let found = periods(
            "BEGIN:VEVENT\nUID:n\nDTSTART;TZID=Europe/Berlin:20260328T013000\n\
DTEND;TZID=Europe/Berlin:20260328T033000\nRRULE:FREQ=DAILY;COUNT=2\nEND:VEVENT\n",
            "2026-03-27T00:00:00Z",
            "2026-03-30T00:00:00Z",
        );
        assert_eq!(
            found,
            [
                "2026-03-28T00:30:00Z 2026-03-28T02:30:00Z BUSY",
                // 01:30 is still winter time; two exact hours end at 04:30 summer time.
                "2026-03-29T00:30:00Z 2026-03-29T02:30:00Z BUSY",
            ]
        );
    }

    const SERIES: &str = "BEGIN:VEVENT\nUID:s\nDTSTART;TZID=Europe/Berlin:20261201T100000\n\
DTEND;TZID=Europe/Berlin:20261201T110000\nRRULE:FREQ=WEEKLY;COUNT=6;BYDAY=TU\n\
EXDATE;TZID=Europe/Berlin:20261222T100000\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:s\nRECURRENCE-ID;TZID=Europe/Berlin:20261215T100000\n\
DTSTART;TZID=Europe/Berlin:20261215T140000\nDTEND;TZID=Europe/Berlin:20261215T150000\nEND:VEVENT\n";

    #[test]
    fn exceptions_replace_their_instance_and_exdates_remove_theirs() {
        let found = periods(SERIES, "2026-12-01T00:00:00Z", "2027-01-31T00:00:00Z");
        assert_eq!(
            found,
            [
                "2026-12-01T09:00:00Z 2026-12-01T10:00:00Z BUSY",
                "2026-12-08T09:00:00Z 2026-12-08T10:00:00Z BUSY",
                "2026-12-15T13:00:00Z 2026-12-15T14:00:00Z BUSY",
                "2026-12-29T09:00:00Z 2026-12-29T10:00:00Z BUSY",
                "2027-01-05T09:00:00Z 2027-01-05T10:00:00Z BUSY",
            ]
        );
        let events = parse_ical(&format!("BEGIN:VCALENDAR\n{SERIES}END:VCALENDAR\n")).unwrap();
        assert_eq!(
            busy_periods(&events, &TimeZone::UTC, i64::MIN, i64::MAX)
                .unwrap()
                .len(),
            5,
            "a range of all time"
        );
        // Only what lies in the range, clipped to it.
        assert_eq!(
            periods(SERIES, "2026-12-08T09:30:00Z", "2026-12-16T00:00:00Z"),
            [
                "2026-12-08T09:30:00Z 2026-12-08T10:00:00Z BUSY",
                "2026-12-15T13:00:00Z 2026-12-15T14:00:00Z BUSY",
            ]
        );
    }

    #[test]
    fn a_cancelled_exception_removes_its_instance_and_a_tentative_one_is_tentative() {
        let vevents = format!(
            "{SERIES}BEGIN:VEVENT\nUID:s\nRECURRENCE-ID;TZID=Europe/Berlin:20261229T100000\n\
DTSTART;TZID=Europe/Berlin:20261229T100000\nDTEND;TZID=Europe/Berlin:20261229T110000\n\
STATUS:CANCELLED\nEND:VEVENT\nBEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20261208T090000Z\n\
DTSTART;TZID=Europe/Berlin:20261208T100000\nSTATUS:TENTATIVE\nEND:VEVENT\n"
        );
        assert_eq!(
            periods(&vevents, "2026-12-01T00:00:00Z", "2027-01-31T00:00:00Z"),
            [
                "2026-12-01T09:00:00Z 2026-12-01T10:00:00Z BUSY",
                // No end of its own: as long as the series' instances.
                "2026-12-08T09:00:00Z 2026-12-08T10:00:00Z BUSY-TENTATIVE",
                "2026-12-15T13:00:00Z 2026-12-15T14:00:00Z BUSY",
                "2027-01-05T09:00:00Z 2027-01-05T10:00:00Z BUSY",
            ]
        );
    }

    #[test]
    fn all_day_events_are_whole_days_of_their_zone_or_utc() {
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261226\nEND:VEVENT\n",
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z"
            ),
            ["2026-12-24T00:00:00Z 2026-12-26T00:00:00Z BUSY"]
        );
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:b\nDTSTART;TZID=Europe/Berlin;VALUE=DATE:20261224\nEND:VEVENT\n",
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z"
            ),
            ["2026-12-23T23:00:00Z 2026-12-24T23:00:00Z BUSY"],
            "a day of Berlin; no end: one day"
        );
        // A yearly birthday with an EXDATE.
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:c\nDTSTART;VALUE=DATE:20200301\nDTEND;VALUE=DATE:20200302\n\
RRULE:FREQ=YEARLY\nEXDATE;VALUE=DATE:20270301\nEND:VEVENT\n",
                "2026-01-01T00:00:00Z",
                "2029-01-01T00:00:00Z"
            ),
            [
                "2026-03-01T00:00:00Z 2026-03-02T00:00:00Z BUSY",
                "2028-03-01T00:00:00Z 2028-03-02T00:00:00Z BUSY",
            ]
        );
    }

    #[test]
    fn transparent_and_cancelled_events_are_free_tentative_ones_tentative() {
        let vevents = "BEGIN:VEVENT\nUID:t\nDTSTART:20261201T080000Z\nDTEND:20261201T090000Z\nTRANSP:TRANSPARENT\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:c\nDTSTART:20261201T100000Z\nDTEND:20261201T110000Z\nSTATUS:CANCELLED\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:p\nDTSTART:20261201T120000Z\nDTEND:20261201T140000Z\nSTATUS:TENTATIVE\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:b\nDTSTART:20261201T130000Z\nDURATION:PT2H\nSTATUS:CONFIRMED\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:z\nDTSTART:20261201T200000Z\nEND:VEVENT\n";
        assert_eq!(
            periods(vevents, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"),
            [
                "2026-12-01T12:00:00Z 2026-12-01T13:00:00Z BUSY-TENTATIVE",
                "2026-12-01T13:00:00Z 2026-12-01T15:00:00Z BUSY",
            ],
            "busy wins where they overlap; no end: no time"
        );
    }

    #[test]
    fn floating_times_are_utc_and_durations_are_nominal_days() {
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:f\nDTSTART:20261201T100000\nDURATION:P1DT1H\nEND:VEVENT\n",
                "2026-12-01T00:00:00Z",
                "2026-12-05T00:00:00Z"
            ),
            ["2026-12-01T10:00:00Z 2026-12-02T11:00:00Z BUSY"]
        );
        // A day across the change to summer time has 23 hours.
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:d\nDTSTART;TZID=Europe/Berlin:20260328T120000\nDURATION:P1D\nEND:VEVENT\n",
                "2026-03-28T00:00:00Z",
                "2026-03-31T00:00:00Z"
            ),
            ["2026-03-28T11:00:00Z 2026-03-29T10:00:00Z BUSY"]
        );
    }

    #[test]
    fn rdates_add_instances_and_unbounded_rules_expand_only_in_range() {
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:r\nDTSTART:20000103T090000Z\nDTEND:20000103T093000Z\n\
RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR\nRDATE:20261205T100000Z\n\
RDATE;VALUE=PERIOD:20261206T100000Z/20261206T120000Z\nEND:VEVENT\n",
                "2026-12-04T00:00:00Z",
                "2026-12-08T00:00:00Z"
            ),
            [
                "2026-12-04T09:00:00Z 2026-12-04T09:30:00Z BUSY",
                "2026-12-05T10:00:00Z 2026-12-05T10:30:00Z BUSY",
                "2026-12-06T10:00:00Z 2026-12-06T12:00:00Z BUSY",
                "2026-12-07T09:00:00Z 2026-12-07T09:30:00Z BUSY",
            ]
        );
    }

    #[test]
    fn an_instance_that_began_before_the_range_still_counts() {
        assert_eq!(
            periods(
                "BEGIN:VEVENT\nUID:l\nDTSTART:20261130T220000Z\nDTEND:20261201T020000Z\n\
RRULE:FREQ=WEEKLY\nEND:VEVENT\n",
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z"
            ),
            ["2026-12-01T00:00:00Z 2026-12-01T02:00:00Z BUSY"]
        );
    }

    #[test]
    fn merging_joins_overlaps_and_lets_busy_win() {
        let b = |s, e, kind| Busy {
            start_ms: s,
            end_ms: e,
            kind,
        };
        use BusyKind::{Busy as B, Tentative as T};
        assert_eq!(
            merge(vec![
                b(50, 60, T),
                b(0, 10, B),
                b(5, 20, B),
                b(20, 30, B),
                b(25, 28, T),
                b(28, 40, T),
                b(70, 70, B),
                b(55, 58, B),
            ]),
            [
                b(0, 30, B),
                b(30, 40, T),
                b(50, 55, T),
                b(55, 58, B),
                b(58, 60, T),
            ]
        );
        assert_eq!(merge(Vec::new()), []);
    }
}
