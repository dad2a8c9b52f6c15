//! `VTIMEZONE` components (RFC 5545 §3.6.5) generated from chrono-tz, the zone data the API
//! computes recurrences with (IANA 2025b), so a calendar reads a task's `TZID` times exactly
//! as the API does.
//!
//! Construction: the zone's offsets are scanned over a window of years, one probe a day (UTC
//! midnight), and each change between two probes is narrowed to the second by bisection.
//! Every change is one onset: `TZOFFSETFROM`/`TZOFFSETTO`, `TZNAME` (the abbreviation), and
//! `DAYLIGHT` when the new offset has a positive daylight-saving part, else `STANDARD`. Onsets
//! with the same kind, offsets and name share one observance: the first is its `DTSTART`, the
//! others its `RDATE`s (local times in the offset before the onset, as §3.6.5 says). A first
//! observance at the window's start gives the offset in force then (`TZOFFSETFROM` =
//! `TZOFFSETTO`), so a zone without changes (UTC, Asia/Kolkata) has that one observance.
//!
//! Why not `RRULE` observances: chrono-tz exposes offsets, not the zone's rules, and an
//! explicit list of onsets is exact for every year it covers (rules change: a yearly RRULE
//! would need splitting wherever a government moved the date). The cost is a horizon: beyond
//! the window a calendar that reads the `VTIMEZONE` rather than its own copy of the IANA zone
//! (most clients use their own for a known `TZID`) extends the last observance. The window
//! ([`window`]) runs from the start of the year of the zone's earliest due date to the end of
//! the year five years after its latest, and stops at 2100 (chrono-tz tabulates transitions
//! through 2099 and keeps one fixed offset after, as the API does).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use super::ics::{self, Writer};

/// Years after the latest due date that the window covers.
pub const YEARS_AHEAD: i32 = 5;

/// The first year chrono-tz no longer tabulates: nothing changes from then on.
const TABLE_END_YEAR: i32 = 2100;

/// Distance between two probes of the zone's offset. A change between two probes is found to
/// the second; two changes within one day that undo each other would go unseen, which no
/// zone's rules of recent decades do (the feed test checks its zones' `VTIMEZONE`s against
/// tzdata with an independent parser).
const PROBE_STEP: Duration = Duration::days(1);

/// The years `[first, end)` a zone's `VTIMEZONE` covers, for due dates from `earliest` to
/// `latest`.
pub fn window(earliest: DateTime<Utc>, latest: DateTime<Utc>) -> (i32, i32) {
    let first = earliest.year();
    let end = (latest.year().max(first) + YEARS_AHEAD + 1)
        .min(TABLE_END_YEAR)
        .max(first + 1);
    (first, end)
}

/// What an instant's offset is, as a `VTIMEZONE` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observed {
    /// Seconds east of UTC.
    offset: i32,
    daylight: bool,
    name: Option<String>,
}

fn observed(zone: Tz, at: DateTime<Utc>) -> Observed {
    let offset = zone.offset_from_utc_datetime(&at.naive_utc());
    Observed {
        offset: offset.fix().local_minus_utc(),
        daylight: offset.dst_offset() > Duration::zero(),
        name: offset.abbreviation().map(str::to_owned),
    }
}

/// A change of offset (or of its name) at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Onset {
    at: DateTime<Utc>,
    from: i32,
    to: Observed,
}

/// The changes of `zone` in the years `[first, end)`, in order.
fn onsets(zone: Tz, first: i32, end: i32) -> (Observed, Vec<Onset>) {
    let start = year_start(first);
    let stop = year_start(end);
    let initial = observed(zone, start);
    let mut found = Vec::new();
    let (mut t, mut current) = (start, initial.clone());
    while t < stop {
        let next = (t + PROBE_STEP).min(stop);
        let seen = observed(zone, next);
        if seen != current {
            // Bisect to the first whole second with the new observance (the probes are at
            // whole seconds, and zones change at whole seconds).
            let (mut lo, mut hi) = (t.timestamp(), next.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if observed(zone, second(mid)) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hi = second(hi);
            let to = observed(zone, hi);
            found.push(Onset {
                at: hi,
                from: current.offset,
                to: to.clone(),
            });
            current = to;
            // Continue from the onset, in case the day holds a second one.
            t = hi;
            continue;
        }
        t = next;
    }
    (initial, found)
}

fn second(timestamp: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(timestamp, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn year_start(year: i32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |t| Utc.from_utc_datetime(&t))
}

/// One observance: the onsets that share a kind, offsets and name.
#[derive(Debug, PartialEq, Eq)]
struct Observance {
    daylight: bool,
    from: i32,
    to: i32,
    name: Option<String>,
    /// In time order: the first is `DTSTART`, the others `RDATE`s.
    onsets: Vec<DateTime<Utc>>,
}

/// Writes the `VTIMEZONE` of `zone` (its `TZID` is the IANA name) for the years
/// `[first, end)` (see [`window`]).
pub fn write(w: &mut Writer, zone: Tz, (first, end): (i32, i32)) {
    let (initial, changes) = onsets(zone, first, end);
    let mut all = vec![Onset {
        at: year_start(first),
        from: initial.offset,
        to: initial,
    }];
    all.extend(changes);
    // Onsets come in time order, so observances are in the order of their first onset.
    let mut observances: Vec<Observance> = Vec::new();
    for onset in all {
        let found = observances.iter_mut().find(|o| {
            o.daylight == onset.to.daylight
                && o.from == onset.from
                && o.to == onset.to.offset
                && o.name == onset.to.name
        });
        match found {
            Some(observance) => observance.onsets.push(onset.at),
            None => observances.push(Observance {
                daylight: onset.to.daylight,
                from: onset.from,
                to: onset.to.offset,
                name: onset.to.name,
                onsets: vec![onset.at],
            }),
        }
    }

    w.begin("VTIMEZONE");
    w.property("TZID", &[], &ics::escape_text(zone.name()));
    for o in observances {
        let component = if o.daylight { "DAYLIGHT" } else { "STANDARD" };
        // Onsets are local times in the offset in force before them.
        let local =
            |at: DateTime<Utc>| ics::local((at + Duration::seconds(o.from.into())).naive_utc());
        w.begin(component);
        w.property("DTSTART", &[], &local(o.onsets[0]));
        w.property("TZOFFSETFROM", &[], &ics::utc_offset(o.from));
        w.property("TZOFFSETTO", &[], &ics::utc_offset(o.to));
        if let Some(name) = &o.name {
            w.text("TZNAME", name);
        }
        if o.onsets.len() > 1 {
            let dates: Vec<String> = o.onsets[1..].iter().map(|at| local(*at)).collect();
            w.property("RDATE", &[], &dates.join(","));
        }
        w.end(component);
    }
    w.end("VTIMEZONE");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn berlin_changes_twice_a_year_at_one_utc() {
        let (initial, found) = onsets(Tz::Europe__Berlin, 2030, 2031);
        assert_eq!(initial.offset, 3600);
        assert!(!initial.daylight);
        assert_eq!(initial.name.as_deref(), Some("CET"));
        let changes: Vec<(DateTime<Utc>, i32, i32, bool)> = found
            .iter()
            .map(|o| (o.at, o.from, o.to.offset, o.to.daylight))
            .collect();
        assert_eq!(
            changes,
            [
                (at(2030, 3, 31, 1, 0, 0), 3600, 7200, true),
                (at(2030, 10, 27, 1, 0, 0), 7200, 3600, false),
            ]
        );
    }

    #[test]
    fn a_zone_without_changes_has_one_standard_observance() {
        let mut w = Writer::new();
        write(&mut w, Tz::Asia__Kolkata, (2030, 2036));
        assert_eq!(
            w.finish(),
            "BEGIN:VTIMEZONE\r\nTZID:Asia/Kolkata\r\nBEGIN:STANDARD\r\nDTSTART:20300101T053000\r\n\
             TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nTZNAME:IST\r\nEND:STANDARD\r\n\
             END:VTIMEZONE\r\n"
        );
    }

    #[test]
    fn onsets_of_one_kind_share_an_observance_with_rdates_in_local_time() {
        let mut w = Writer::new();
        write(&mut w, Tz::America__New_York, (2030, 2032));
        let text = w.finish();
        let unfolded = text.replace("\r\n ", "");
        assert!(
            unfolded.contains(
                "BEGIN:DAYLIGHT\r\nDTSTART:20300310T020000\r\nTZOFFSETFROM:-0500\r\n\
                 TZOFFSETTO:-0400\r\nTZNAME:EDT\r\nRDATE:20310309T020000\r\nEND:DAYLIGHT\r\n"
            ),
            "{unfolded}"
        );
        assert!(
            unfolded.contains(
                "BEGIN:STANDARD\r\nDTSTART:20301103T020000\r\nTZOFFSETFROM:-0400\r\n\
                 TZOFFSETTO:-0500\r\nTZNAME:EST\r\nRDATE:20311102T020000\r\nEND:STANDARD\r\n"
            ),
            "{unfolded}"
        );
        // The window's first observance: EST from 1 January 2030, local time.
        assert!(unfolded.contains(
            "BEGIN:STANDARD\r\nDTSTART:20291231T190000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0500"
        ));
    }

    #[test]
    fn a_skipped_day_is_one_onset() {
        // Apia moved from UTC-10 to UTC+14 at the end of 29 December 2011 (local time).
        let (_, found) = onsets(Tz::Pacific__Apia, 2011, 2012);
        let change = found
            .iter()
            .find(|o| o.to.offset == 50_400)
            .expect("the date-line change");
        assert_eq!(change.at, at(2011, 12, 30, 10, 0, 0));
        assert_eq!(change.from, -36_000);
    }

    #[test]
    fn the_window_covers_five_years_past_the_latest_due_date_and_stops_at_2100() {
        assert_eq!(
            window(at(2030, 5, 1, 0, 0, 0), at(2031, 1, 1, 0, 0, 0)),
            (2030, 2037)
        );
        assert_eq!(
            window(at(2098, 5, 1, 0, 0, 0), at(2098, 6, 1, 0, 0, 0)),
            (2098, 2100)
        );
        assert_eq!(
            window(at(2500, 5, 1, 0, 0, 0), at(2500, 6, 1, 0, 0, 0)),
            (2500, 2501)
        );
    }
}
