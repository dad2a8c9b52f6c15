//! Wall-clock times read in a time zone as RFC 5545 §3.3.5 reads a `DATE-TIME` with a `TZID`:
//!
//! > If, based on the definition of the referenced time zone, the local time described occurs
//! > more than once (when changing from daylight to standard time), the DATE-TIME value refers
//! > to the first occurrence of the referenced time. [...] If the local time described does not
//! > occur (when changing from standard to daylight time), the DATE-TIME value is interpreted
//! > using the UTC offset before the gap in local times.
//!
//! This is also what Python's `zoneinfo` does with `fold=0`.

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};

/// Step back through a gap in local time while looking for the offset in force before it.
const GAP_STEP: Duration = Duration::minutes(15);

/// Longest gap in local time the zone database has (a whole day: Pacific/Apia skipped
/// 30 December 2011), with room to spare.
const LONGEST_GAP: Duration = Duration::hours(30);

/// The instant of the wall-clock time `local` in `zone`: the earlier instant of a repeated
/// time, and for a time in a gap the instant it has with the offset in force before the gap
/// (02:30 on the day clocks go from 02:00 to 03:00 in Berlin is 01:30 UTC, as 03:30 is).
pub(crate) fn instant_of(zone: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => {
            let mut before = local;
            while local - before < LONGEST_GAP {
                before -= GAP_STEP;
                if let Some(earlier) = zone.from_local_datetime(&before).latest() {
                    let offset = earlier.offset().fix();
                    return Utc.from_utc_datetime(&(local - offset));
                }
            }
            // No zone has a gap this long; read the time as UTC rather than fail.
            Utc.from_utc_datetime(&local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Tz;

    fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("valid date")
    }

    #[test]
    fn a_time_in_a_gap_uses_the_offset_before_the_gap() {
        // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST.
        let berlin = Tz::Europe__Berlin;
        assert_eq!(
            instant_of(berlin, naive(2027, 3, 28, 2, 30)),
            Utc.from_utc_datetime(&naive(2027, 3, 28, 1, 30))
        );
        assert_eq!(
            instant_of(berlin, naive(2027, 3, 28, 3, 30)),
            Utc.from_utc_datetime(&naive(2027, 3, 28, 1, 30))
        );
        // Apia skipped 30 December 2011 entirely (UTC-10 to UTC+14).
        assert_eq!(
            instant_of(Tz::Pacific__Apia, naive(2011, 12, 30, 9, 0)),
            Utc.from_utc_datetime(&naive(2011, 12, 30, 19, 0))
        );
        // Santiago, 2026-09-06: midnight becomes 01:00.
        assert_eq!(
            instant_of(Tz::America__Santiago, naive(2026, 9, 6, 0, 30)),
            Utc.from_utc_datetime(&naive(2026, 9, 6, 4, 30))
        );
    }

    #[test]
    fn a_repeated_time_is_its_first_occurrence() {
        // Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
        assert_eq!(
            instant_of(Tz::Europe__Berlin, naive(2027, 10, 31, 2, 30)),
            Utc.from_utc_datetime(&naive(2027, 10, 31, 0, 30))
        );
    }

    #[test]
    fn an_ordinary_time_is_read_in_the_zone() {
        assert_eq!(
            instant_of(Tz::Asia__Kolkata, naive(2027, 1, 1, 9, 0)),
            Utc.from_utc_datetime(&naive(2027, 1, 1, 3, 30))
        );
    }
}
