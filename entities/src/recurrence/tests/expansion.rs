//! Tests of [`RecurrenceRule::following`] and [`RecurrenceRule::upcoming`]: local wall-clock
//! times across daylight-saving changes (gaps, repeated hours, zones that change at midnight),
//! `COUNT` and `UNTIL`, and the iteration bounds.

use super::*;
use chrono::{Datelike, Duration, Timelike, Weekday};

#[test]
fn weekly_on_monday_and_wednesday_from_a_monday() {
    let london = Tz::Europe__London;
    let r = rule("FREQ=WEEKLY;BYDAY=MO,WE", "Europe/London");
    let monday = local(london, 2026, 3, 2, 9, 0);
    assert_eq!(monday.weekday(), Weekday::Mon);
    assert_eq!(
        r.upcoming(monday, 5).expect("expands"),
        vec![
            utc(2026, 3, 4, 9, 0),
            utc(2026, 3, 9, 9, 0),
            utc(2026, 3, 11, 9, 0),
            utc(2026, 3, 16, 9, 0),
            utc(2026, 3, 18, 9, 0),
        ]
    );
    // Across the start of British Summer Time the local time stays 09:00.
    let monday = local(london, 2026, 3, 23, 9, 0);
    assert_eq!(
        r.upcoming(monday, 3).expect("expands"),
        vec![
            utc(2026, 3, 25, 9, 0),
            utc(2026, 3, 30, 8, 0),
            utc(2026, 4, 1, 8, 0)
        ]
    );
}

#[test]
fn occurrences_are_strictly_after_the_current_one_and_after() {
    let r = rule("FREQ=WEEKLY;BYDAY=MO,WE", "Europe/London");
    let start = local(Tz::Europe__London, 2026, 3, 2, 9, 0);
    let first = Occurrence::first(&r, start);
    let next = r.following(&first, start, 2).expect("expands");
    assert_eq!(
        next.iter().map(|o| (o.due_at, o.index)).collect::<Vec<_>>(),
        vec![(utc(2026, 3, 4, 9, 0), 2), (utc(2026, 3, 9, 9, 0), 3)]
    );
    // An `after` that equals a rule date excludes it, and the skipped dates keep their places.
    let wednesday = utc(2026, 3, 4, 9, 0);
    let later = r.following(&first, wednesday, 1).expect("expands");
    assert_eq!(
        (later[0].due_at, later[0].index),
        (utc(2026, 3, 9, 9, 0), 3)
    );
    // Sub-second precision on the start does not shift or duplicate dates.
    let fuzzy = start + Duration::microseconds(250);
    assert_eq!(
        r.upcoming(fuzzy, 1).expect("expands"),
        vec![utc(2026, 3, 4, 9, 0)]
    );
}

/// Expands a daily 09:00 rule in `zone` from `first` and checks that every date is 09:00
/// local on consecutive local days. Returns the dates.
fn daily_at_nine(zone: Tz, first: (i32, u32, u32), days: usize) -> Vec<DateTime<Utc>> {
    let r = rule("FREQ=DAILY", zone.name());
    let start = local(zone, first.0, first.1, first.2, 9, 0);
    let mut dates = vec![start];
    dates.extend(r.upcoming(start, days - 1).expect("expands"));
    assert_eq!(dates.len(), days);
    for pair in dates.windows(2) {
        let (a, b) = (pair[0].with_timezone(&zone), pair[1].with_timezone(&zone));
        assert_eq!(
            b.date_naive() - a.date_naive(),
            Duration::days(1),
            "{a} then {b}"
        );
    }
    for date in &dates {
        let wall = date.with_timezone(&zone);
        assert_eq!(
            (wall.hour(), wall.minute(), wall.second()),
            (9, 0, 0),
            "{wall}"
        );
    }
    dates
}

#[test]
fn daily_stays_at_local_nine_across_dst_in_london() {
    let spring = daily_at_nine(Tz::Europe__London, (2026, 3, 27), 5);
    assert_eq!(spring[1], utc(2026, 3, 28, 9, 0));
    assert_eq!(spring[2], utc(2026, 3, 29, 8, 0));
    let autumn = daily_at_nine(Tz::Europe__London, (2026, 10, 23), 5);
    assert_eq!(autumn[1], utc(2026, 10, 24, 8, 0));
    assert_eq!(autumn[2], utc(2026, 10, 25, 9, 0));
}

#[test]
fn daily_stays_at_local_nine_across_dst_in_new_york() {
    let spring = daily_at_nine(Tz::America__New_York, (2026, 3, 6), 5);
    assert_eq!(spring[1], utc(2026, 3, 7, 14, 0));
    assert_eq!(spring[2], utc(2026, 3, 8, 13, 0));
    let autumn = daily_at_nine(Tz::America__New_York, (2026, 10, 30), 5);
    assert_eq!(autumn[1], utc(2026, 10, 31, 13, 0));
    assert_eq!(autumn[2], utc(2026, 11, 1, 14, 0));
}

#[test]
fn daily_stays_at_local_nine_across_dst_in_auckland() {
    // New Zealand summer time ends on 5 April 2026 and starts on 27 September 2026.
    let april = daily_at_nine(Tz::Pacific__Auckland, (2026, 4, 3), 5);
    assert_eq!(april[1], utc(2026, 4, 3, 20, 0));
    assert_eq!(april[2], utc(2026, 4, 4, 21, 0));
    let september = daily_at_nine(Tz::Pacific__Auckland, (2026, 9, 25), 5);
    assert_eq!(september[1], utc(2026, 9, 25, 21, 0));
    assert_eq!(september[2], utc(2026, 9, 26, 20, 0));
}

#[test]
fn monthly_last_day_of_month() {
    let r = rule("FREQ=MONTHLY;BYMONTHDAY=-1", "UTC");
    let leap = r.upcoming(utc(2028, 1, 15, 9, 0), 4).expect("expands");
    assert_eq!(
        leap,
        vec![
            utc(2028, 1, 31, 9, 0),
            utc(2028, 2, 29, 9, 0),
            utc(2028, 3, 31, 9, 0),
            utc(2028, 4, 30, 9, 0),
        ]
    );
    let common = r.upcoming(utc(2027, 1, 31, 9, 0), 2).expect("expands");
    assert_eq!(common, vec![utc(2027, 2, 28, 9, 0), utc(2027, 3, 31, 9, 0)]);
}

#[test]
fn count_counts_the_first_due_date_as_the_first_occurrence() {
    let r = rule("FREQ=DAILY;COUNT=3", "UTC");
    let start = utc(2026, 6, 1, 9, 0);
    assert_eq!(
        r.upcoming(start, 10).expect("expands"),
        vec![utc(2026, 6, 2, 9, 0), utc(2026, 6, 3, 9, 0)]
    );
    let third = Occurrence::stored(&r, utc(2026, 6, 3, 9, 0), None, None, 3);
    assert_eq!(r.following(&third, third.due_at, 10), Ok(Vec::new()));
    // A first due date that does not match the rule still counts (RFC 5545 §3.3.10): a
    // Wednesday start of a Monday rule with COUNT=3 has two more dates.
    let mondays = rule("FREQ=WEEKLY;BYDAY=MO;COUNT=3", "UTC");
    assert_eq!(
        mondays
            .upcoming(utc(2026, 6, 3, 9, 0), 10)
            .expect("expands"),
        vec![utc(2026, 6, 8, 9, 0), utc(2026, 6, 15, 9, 0)]
    );
    // Dates skipped by `after` take their places: from the first, after the second date, only
    // the third is left.
    let first = Occurrence::first(&r, start);
    let left = r
        .following(&first, utc(2026, 6, 2, 9, 0), 10)
        .expect("expands");
    assert_eq!(
        left.iter().map(|o| (o.due_at, o.index)).collect::<Vec<_>>(),
        vec![(utc(2026, 6, 3, 9, 0), 3)]
    );
}

#[test]
fn until_ends_the_series() {
    let past = rule("FREQ=DAILY;UNTIL=20200101T000000Z", "UTC");
    assert_eq!(past.upcoming(utc(2026, 6, 1, 9, 0), 5), Ok(Vec::new()));
    let soon = rule("FREQ=DAILY;UNTIL=20260603", "Europe/London");
    assert_eq!(
        soon.upcoming(utc(2026, 6, 1, 8, 0), 5).expect("expands"),
        vec![utc(2026, 6, 2, 8, 0), utc(2026, 6, 3, 8, 0)]
    );
}

#[test]
fn the_series_ends_at_the_end_of_the_accepted_date_range() {
    let daily = rule("FREQ=DAILY", "UTC");
    assert_eq!(
        daily.upcoming(utc(9000, 12, 29, 9, 0), 5).expect("expands"),
        vec![utc(9000, 12, 30, 9, 0), utc(9000, 12, 31, 9, 0)]
    );
    assert_eq!(daily.upcoming(utc(9000, 12, 31, 9, 0), 5), Ok(Vec::new()));
    // A zone east of UTC: 9001-01-01 08:00 in Auckland is still 9000-12-31 in UTC.
    let auckland = rule("FREQ=DAILY", "Pacific/Auckland");
    let last = auckland
        .upcoming(utc(9000, 12, 29, 19, 0), 5)
        .expect("expands");
    assert_eq!(last.last(), Some(&utc(9000, 12, 31, 19, 0)));
    let yearly = rule("FREQ=YEARLY;INTERVAL=500", "UTC");
    assert_eq!(yearly.upcoming(utc(8800, 6, 1, 9, 0), 5), Ok(Vec::new()));
}

#[test]
fn count_is_clamped_to_max_upcoming() {
    let r = rule("FREQ=DAILY", "UTC");
    let start = utc(2026, 1, 1, 9, 0);
    let dates = r.upcoming(start, 500).expect("expands");
    assert_eq!(dates.len(), MAX_UPCOMING);
    assert_eq!(dates.last(), Some(&(start + Duration::days(50))));
    assert_eq!(r.upcoming(start, 0), Ok(Vec::new()));
}

#[test]
fn hourly_rules_expand() {
    let r = rule("FREQ=HOURLY;INTERVAL=6", "UTC");
    assert_eq!(
        r.upcoming(utc(2026, 1, 1, 3, 0), 3).expect("expands"),
        vec![
            utc(2026, 1, 1, 9, 0),
            utc(2026, 1, 1, 15, 0),
            utc(2026, 1, 1, 21, 0)
        ]
    );
}

#[test]
fn a_start_that_leaves_the_rule_without_dates_is_too_expensive() {
    // Valid in general, but a series that starts on the 30th asks for 30 February.
    let r = rule("FREQ=YEARLY;BYMONTH=2", "UTC");
    assert_eq!(
        r.upcoming(utc(2026, 2, 10, 9, 0), 2).expect("expands"),
        vec![utc(2027, 2, 10, 9, 0), utc(2028, 2, 10, 9, 0)]
    );
    assert_eq!(
        r.upcoming(utc(2026, 1, 30, 9, 0), 1),
        Err(RecurrenceError::TooExpensive)
    );
    // Only leap years match, but an interval of four from 2025 never meets one.
    let r = rule("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "UTC");
    assert_eq!(
        r.upcoming(utc(2025, 1, 1, 9, 0), 1),
        Err(RecurrenceError::TooExpensive)
    );
    assert_eq!(
        r.upcoming(utc(2024, 1, 1, 9, 0), 2).expect("expands"),
        vec![utc(2024, 2, 29, 9, 0), utc(2028, 2, 29, 9, 0)]
    );
}

#[test]
fn extremely_sparse_rules_are_too_expensive() {
    // 29 February on a Monday happens a few times a century.
    let r = rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "UTC");
    let start = utc(2026, 1, 1, 9, 0);
    assert_eq!(
        r.upcoming(start, 1).expect("expands"),
        vec![utc(2044, 2, 29, 9, 0)]
    );
    assert_eq!(
        r.upcoming(start, MAX_UPCOMING),
        Err(RecurrenceError::TooExpensive)
    );
}

#[test]
fn a_start_far_before_after_is_too_expensive() {
    let r = rule("FREQ=HOURLY", "UTC");
    let now = utc(2026, 1, 1, 0, 0);
    let recent = Occurrence::first(&r, now - Duration::days(30));
    let next = r.following(&recent, now, 1).expect("expands");
    assert_eq!(next[0].due_at, now + Duration::hours(1));
    let ancient = Occurrence::first(&r, now - Duration::days(365 * 20));
    assert_eq!(
        r.following(&ancient, now, 1),
        Err(RecurrenceError::TooExpensive)
    );
}

#[test]
fn a_rule_whose_interval_and_byhour_never_meet_is_too_expensive() {
    // Every 24 hours from 09:00 is always 09:00, never 05:00.
    let r = rule("FREQ=HOURLY;INTERVAL=24;BYHOUR=5", "UTC");
    assert_eq!(
        r.upcoming(utc(2026, 1, 1, 9, 0), 1),
        Err(RecurrenceError::TooExpensive)
    );
    assert_eq!(
        r.upcoming(utc(2026, 1, 1, 5, 0), 1).expect("expands"),
        vec![utc(2026, 1, 2, 5, 0)]
    );
}

// ------------------------------------------------- daylight saving (RFC 5545 §3.3.5, §3.3.10, §3.8.5.3)

#[test]
fn an_hourly_rule_through_a_gap_gives_each_instant_once_in_order() {
    // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST. 02:30 is read as 01:30 UTC, as 03:30 is.
    let r = rule("FREQ=HOURLY", "Europe/Berlin");
    assert_eq!(
        r.upcoming(utc(2027, 3, 28, 0, 30), 3).expect("expands"),
        vec![
            utc(2027, 3, 28, 1, 30),
            utc(2027, 3, 28, 2, 30),
            utc(2027, 3, 28, 3, 30)
        ]
    );
}

#[test]
fn a_series_keeps_its_wall_clock_time_after_a_gap() {
    // Daily at 02:30 in Berlin: on the gap day the occurrence is 03:30 CEST (01:30 UTC), and the
    // day after it is 02:30 CEST again, not 03:30.
    let berlin = Tz::Europe__Berlin;
    let r = rule("FREQ=DAILY", "Europe/Berlin");
    let first = Occurrence::first(&r, local(berlin, 2027, 3, 27, 2, 30));
    let gap_day = r.following(&first, first.due_at, 1).expect("expands")[0];
    assert_eq!(gap_day.due_at, utc(2027, 3, 28, 1, 30));
    assert_eq!(gap_day.local.time().to_string(), "02:30:00");
    assert_eq!(gap_day.stored_local(&r), Some(gap_day.local));
    let stored = Occurrence::stored(
        &r,
        gap_day.due_at,
        gap_day.stored_local(&r),
        Some(gap_day.start),
        2,
    );
    let after = r.following(&stored, stored.due_at, 2).expect("expands");
    assert_eq!(
        after.iter().map(|o| o.due_at).collect::<Vec<_>>(),
        vec![utc(2027, 3, 29, 0, 30), utc(2027, 3, 30, 0, 30)]
    );
    assert_eq!(after[0].stored_local(&r), None);
}

#[test]
fn zones_that_change_at_midnight_lose_no_days() {
    // Santiago skips from 00:00 to 01:00 on 2026-09-06; Azores on 2027-03-28.
    for (zone, (y, m, d)) in [
        (Tz::America__Santiago, (2026, 9, 4)),
        (Tz::Atlantic__Azores, (2027, 3, 26)),
        (Tz::America__Havana, (2027, 3, 12)),
    ] {
        let dates = daily_at_nine(zone, (y, m, d), 5);
        assert_eq!(dates.len(), 5, "{zone}");
    }
    // A daily 00:30 rule in Santiago: on the gap day 00:30 is read with the offset before the
    // gap (-04), which is 01:30 local.
    let r = rule("FREQ=DAILY", "America/Santiago");
    let start = local(Tz::America__Santiago, 2026, 9, 5, 0, 30);
    assert_eq!(
        r.upcoming(start, 2).expect("expands"),
        vec![utc(2026, 9, 6, 4, 30), utc(2026, 9, 7, 3, 30)]
    );
}

#[test]
fn count_from_the_second_of_a_repeated_hour_counts_the_due_date_first() {
    // Berlin, 2027-10-31: 02:30 happens at 00:30 and at 01:30 UTC. A series due at the second
    // one starts there; the first 02:30 is before it and not an occurrence.
    let r = rule("FREQ=HOURLY;COUNT=3", "Europe/Berlin");
    assert_eq!(
        r.upcoming(utc(2027, 10, 31, 1, 30), 5).expect("expands"),
        vec![utc(2027, 10, 31, 2, 30), utc(2027, 10, 31, 3, 30)]
    );
}

#[test]
fn an_hourly_rule_skips_the_second_of_a_repeated_hour() {
    // Wall-clock 02:30 is its first occurrence (RFC 5545 §3.3.5), so the hour repeated when
    // clocks go back is not given twice.
    let r = rule("FREQ=HOURLY", "Europe/Berlin");
    assert_eq!(
        r.upcoming(utc(2027, 10, 30, 23, 30), 3).expect("expands"),
        vec![
            utc(2027, 10, 31, 0, 30),
            utc(2027, 10, 31, 2, 30),
            utc(2027, 10, 31, 3, 30)
        ]
    );
}

#[test]
fn instants_out_of_wall_clock_order_in_a_gap_are_sorted() {
    // Lord Howe skips from 02:00 to 02:30 (+10:30 to +11) on 2027-10-03: 02:20 does not exist
    // and is read at +10:30 (15:50 UTC), after 02:40 at +11 (15:40 UTC).
    let r = rule("FREQ=DAILY;BYHOUR=2;BYMINUTE=20,40", "Australia/Lord_Howe");
    let start = local(Tz::Australia__Lord_Howe, 2027, 10, 2, 2, 40);
    assert_eq!(
        r.upcoming(start, 3).expect("expands"),
        vec![
            utc(2027, 10, 2, 15, 40),
            utc(2027, 10, 2, 15, 50),
            utc(2027, 10, 3, 15, 20)
        ]
    );
}

#[test]
fn a_bysetpos_rule_continues_from_the_series_start() {
    // Weeks start on Saturday; the first week is cut at the start (Sunday 27 August 2000, as
    // python-dateutil cuts it), so its second date is Wednesday 30; later weeks are whole, and
    // their second date is Tuesday.
    let r = rule("FREQ=WEEKLY;BYDAY=TU,WE,FR,SA;BYSETPOS=2;WKST=SA", "UTC");
    let first = Occurrence::first(&r, utc(2000, 8, 27, 2, 38));
    let second = r.following(&first, first.due_at, 1).expect("expands")[0];
    assert_eq!(second.due_at, utc(2000, 8, 30, 2, 38));
    assert_eq!(second.start, first.local);
    // Stored and read back, the second occurrence continues the same series: the next date is
    // Tuesday 5 September, not Friday 1 (the second date of a week cut at Wednesday).
    let stored = Occurrence::stored(
        &r,
        second.due_at,
        second.stored_local(&r),
        Some(second.start),
        2,
    );
    let next = r.following(&stored, stored.due_at, 2).expect("expands");
    assert_eq!(
        next.iter().map(|o| o.due_at).collect::<Vec<_>>(),
        vec![utc(2000, 9, 5, 2, 38), utc(2000, 9, 12, 2, 38)]
    );
}
