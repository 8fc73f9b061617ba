//! How an item's times read in the JSON of both review front ends (`bonnie search` and
//! `bonnie show --json`, bonnie-api's `discovery.search` and `discovery.show`): RFC 3339 in
//! the `[discovery]` zone, with the zone's offset, so that a reviewer reads local times that
//! still compare across zones.

use jiff::{Timestamp, tz::TimeZone};

/// A time in `zone` as RFC 3339 with its offset (`2026-11-28T10:00:00+01:00`); the bare ms
/// when no calendar holds it.
pub fn time(ms: i64, zone: &TimeZone) -> String {
    Timestamp::from_millisecond(ms).map_or_else(
        |_| ms.to_string(),
        |t| {
            t.to_zoned(zone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_the_zone_offset() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            time(1_795_000_000_000, &berlin),
            "2026-11-18T12:06:40+01:00"
        );
        assert_eq!(
            time(1_784_000_000_000, &berlin),
            "2026-07-14T05:33:20+02:00"
        );
        assert_eq!(
            time(1_795_000_000_000, &TimeZone::UTC),
            "2026-11-18T11:06:40+00:00"
        );
    }
}
