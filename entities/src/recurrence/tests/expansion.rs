//! Tests of [`RecurrenceRule::occurrences_after`] and [`RecurrenceRule::upcoming`]: local
//! wall-clock times across daylight-saving changes, `COUNT` and `UNTIL`, and the iteration
//! bounds.

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
fn occurrences_are_strictly_after_after() {
    let r = rule("FREQ=WEEKLY;BYDAY=MO,WE", "Europe/London");
    let start = local(Tz::Europe__London, 2026, 3, 2, 9, 0);
    // The start itself is the first date of the series when `after` is earlier.
    let from_before = r
        .occurrences_after(start, start - Duration::seconds(1), 2)
        .expect("expands");
    assert_eq!(from_before, vec![start, utc(2026, 3, 4, 9, 0)]);
    // An `after` that equals a rule date excludes it.
    let wednesday = utc(2026, 3, 4, 9, 0);
    assert_eq!(
        r.occurrences_after(start, wednesday, 1).expect("expands"),
        vec![utc(2026, 3, 9, 9, 0)]
    );
    // Sub-second precision on the inputs does not shift or duplicate dates.
    let fuzzy = start + Duration::microseconds(250);
    assert_eq!(
        r.occurrences_after(fuzzy, fuzzy, 1).expect("expands"),
        vec![utc(2026, 3, 4, 9, 0)]
    );
}

/// Expands a daily 09:00 rule in `zone` from `first` and checks that every date is 09:00
/// local on consecutive local days. Returns the dates.
fn daily_at_nine(zone: Tz, first: (i32, u32, u32), days: usize) -> Vec<DateTime<Utc>> {
    let r = rule("FREQ=DAILY", zone.name());
    let start = local(zone, first.0, first.1, first.2, 9, 0);
    let dates = r
        .occurrences_after(start, start - Duration::seconds(1), days)
        .expect("expands");
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
fn count_limits_the_series_from_its_start() {
    let r = rule("FREQ=DAILY;COUNT=3", "UTC");
    let start = utc(2026, 6, 1, 9, 0);
    assert_eq!(
        r.occurrences_after(start, start - Duration::hours(1), 10)
            .expect("expands"),
        vec![start, utc(2026, 6, 2, 9, 0), utc(2026, 6, 3, 9, 0)]
    );
    assert_eq!(
        r.upcoming(start, 10).expect("expands"),
        vec![utc(2026, 6, 2, 9, 0), utc(2026, 6, 3, 9, 0)]
    );
    assert_eq!(
        r.occurrences_after(start, utc(2026, 6, 5, 0, 0), 10),
        Ok(Vec::new())
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
    assert_eq!(
        r.occurrences_after(now - Duration::days(30), now, 1)
            .expect("expands"),
        vec![now + Duration::hours(1)]
    );
    assert_eq!(
        r.occurrences_after(now - Duration::days(365 * 20), now, 1),
        Err(RecurrenceError::TooExpensive)
    );
}
