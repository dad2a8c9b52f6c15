//! When the next occurrence of a completed recurring task is due: pure rule arithmetic on
//! [`RecurrenceRule`], no IO, no clock (the caller passes `now`).
//!
//! - Anchor `SCHEDULE`: the first rule date strictly after the completed occurrence's due date
//!   *and* strictly after `now`, with the series started at that due date. Dates already past
//!   are skipped, so completing late never piles up overdue occurrences.
//! - Anchor `COMPLETION`: the rule restarted at the completion day, at the due date's wall-clock
//!   time of day in the rule's zone; the next occurrence is the first rule date strictly after
//!   both that restart and the completion time (the restart itself is "occurrence zero").
//! - `COUNT` counts the tasks of the series: with `COUNT=n`, the occurrence with index `n` is
//!   the last and its completion ends the series. Skipped past dates do not count (they never
//!   became tasks). `COUNT` is therefore checked here against the occurrence index and removed
//!   from the rule before expanding it, since [`RecurrenceRule::occurrences_after`] would count
//!   it from the start it is given.
//! - `UNTIL` is absolute: when no rule date remains, the series is over.
//! - The accepted date range ends every series: a next date after
//!   [`entities::limits::LATEST_DATE`] (9000-12-31, UTC) is no date at all, so no successor is
//!   created with a due date the API would refuse (and could not page through by cursor).

use chrono::{DateTime, TimeZone, Utc};
use entities::recurrence::{RecurrenceAnchor, RecurrenceError, RecurrenceRule};

/// The due date of the next occurrence, or `None` when `COUNT`, `UNTIL` or the end of the
/// accepted date range ([`entities::limits::LATEST_DATE`]) ended the series.
///
/// `due_at` and `completed_at` are those of the completed occurrence, `occurrence_index` its
/// 1-based position in the series. Errors come from the rule itself (it no longer parses, or
/// expanding it is too expensive) and will not go away on retry.
pub fn next_due(
    rule: &RecurrenceRule,
    due_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    occurrence_index: i32,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, RecurrenceError> {
    let (count, without_count) = split_count(rule)?;
    if count.is_some_and(|n| i64::from(occurrence_index) >= i64::from(n)) {
        return Ok(None);
    }
    let (start, after) = match rule.anchor() {
        RecurrenceAnchor::Schedule => (due_at, due_at.max(now)),
        RecurrenceAnchor::Completion => {
            let start = restart_at(rule.timezone(), due_at, completed_at);
            (start, start.max(completed_at))
        }
    };
    // `occurrences_after` stops at `LATEST_DATE`; the filter states the rule here too.
    Ok(without_count
        .occurrences_after(start, after, 1)?
        .into_iter()
        .next()
        .filter(|next| *next <= entities::limits::LATEST_DATE))
}

/// The rule's `COUNT`, and the rule without it.
fn split_count(rule: &RecurrenceRule) -> Result<(Option<u32>, RecurrenceRule), RecurrenceError> {
    let mut count = None;
    let mut kept = Vec::new();
    for part in rule.rule().split(';') {
        match part.strip_prefix("COUNT=") {
            Some(n) => {
                count = Some(n.parse::<u32>().map_err(|_| {
                    RecurrenceError::InvalidRule(format!("COUNT={n} is not a count"))
                })?);
            }
            None => kept.push(part),
        }
    }
    if count.is_none() {
        return Ok((None, rule.clone()));
    }
    let stripped = RecurrenceRule::parse(&kept.join(";"), rule.timezone_name(), rule.anchor())?;
    Ok((count, stripped))
}

/// The completion day at the due date's wall-clock time of day, in `zone`. A time that does not
/// exist that day (a daylight-saving gap) falls back to the completion time itself.
fn restart_at(
    zone: chrono_tz::Tz,
    due_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let day = completed_at.with_timezone(&zone).date_naive();
    let time = due_at.with_timezone(&zone).time();
    zone.from_local_datetime(&day.and_time(time))
        .earliest()
        .map_or(completed_at, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn rule(text: &str, zone: &str, anchor: RecurrenceAnchor) -> RecurrenceRule {
        RecurrenceRule::parse(text, zone, anchor).unwrap()
    }

    #[test]
    fn schedule_takes_the_next_rule_date_after_the_due_date() {
        let r = rule("FREQ=WEEKLY", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let next = next_due(&r, due, utc(2026, 3, 1, 12, 0), 1, utc(2026, 3, 1, 12, 0));
        assert_eq!(next.unwrap(), Some(utc(2026, 3, 9, 9, 0)));
    }

    #[test]
    fn schedule_completed_late_skips_past_dates() {
        let r = rule("FREQ=WEEKLY", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let now = utc(2026, 3, 25, 12, 0);
        assert_eq!(
            next_due(&r, due, now, 1, now).unwrap(),
            Some(utc(2026, 3, 30, 9, 0))
        );
    }

    #[test]
    fn schedule_keeps_wall_clock_time_across_daylight_saving() {
        // 09:00 in London is 09:00 UTC in winter and 08:00 UTC in summer (BST from 29 March).
        let r = rule("FREQ=WEEKLY", "Europe/London", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 23, 9, 0);
        let now = utc(2026, 3, 23, 10, 0);
        assert_eq!(
            next_due(&r, due, now, 1, now).unwrap(),
            Some(utc(2026, 3, 30, 8, 0))
        );
    }

    #[test]
    fn completion_restarts_the_rule_from_the_completion_day() {
        let r = rule("FREQ=DAILY;INTERVAL=3", "UTC", RecurrenceAnchor::Completion);
        let due = utc(2026, 3, 2, 9, 0);
        // Completed two days late in the afternoon: three days after the completion day, 09:00.
        let done = utc(2026, 3, 4, 15, 0);
        assert_eq!(
            next_due(&r, due, done, 1, done).unwrap(),
            Some(utc(2026, 3, 7, 9, 0))
        );
        // Completed early in the morning, before the due time: still one interval later.
        let early = utc(2026, 3, 4, 7, 0);
        assert_eq!(
            next_due(&r, due, early, 1, early).unwrap(),
            Some(utc(2026, 3, 7, 9, 0))
        );
    }

    #[test]
    fn count_counts_the_tasks_of_the_series() {
        let r = rule("FREQ=DAILY;COUNT=2", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let now = utc(2026, 3, 2, 10, 0);
        assert_eq!(
            next_due(&r, due, now, 1, now).unwrap(),
            Some(utc(2026, 3, 3, 9, 0))
        );
        let second = utc(2026, 3, 3, 9, 0);
        assert_eq!(next_due(&r, second, now, 2, now).unwrap(), None);
    }

    #[test]
    fn until_ends_the_series() {
        let r = rule(
            "FREQ=DAILY;UNTIL=20260303T090000Z",
            "UTC",
            RecurrenceAnchor::Schedule,
        );
        let now = utc(2026, 3, 2, 10, 0);
        assert_eq!(
            next_due(&r, utc(2026, 3, 2, 9, 0), now, 1, now).unwrap(),
            Some(utc(2026, 3, 3, 9, 0))
        );
        assert_eq!(
            next_due(&r, utc(2026, 3, 3, 9, 0), now, 2, now).unwrap(),
            None
        );
        // Completed so late that every remaining date has passed.
        let late = utc(2026, 4, 1, 0, 0);
        assert_eq!(
            next_due(&r, utc(2026, 3, 2, 9, 0), late, 1, late).unwrap(),
            None
        );
    }

    #[test]
    fn a_successor_after_the_end_of_the_date_range_ends_the_series() {
        let now = utc(2026, 3, 2, 10, 0);
        let daily = rule("FREQ=DAILY", "UTC", RecurrenceAnchor::Schedule);
        assert_eq!(
            next_due(&daily, utc(9000, 12, 30, 9, 0), now, 1, now).unwrap(),
            Some(utc(9000, 12, 31, 9, 0))
        );
        assert_eq!(
            next_due(&daily, utc(9000, 12, 31, 9, 0), now, 2, now).unwrap(),
            None
        );
        let done = utc(9000, 12, 31, 12, 0);
        let completion = rule("FREQ=DAILY", "UTC", RecurrenceAnchor::Completion);
        assert_eq!(
            next_due(&completion, utc(9000, 12, 31, 9, 0), done, 1, done).unwrap(),
            None
        );
    }
}
