//! When the next occurrence of a completed recurring task is due: pure rule arithmetic on
//! [`RecurrenceRule`], no IO, no clock (the caller passes `now`).
//!
//! - Anchor `SCHEDULE`: the next occurrence of the series ([`RecurrenceRule::following`]) due
//!   strictly after the completed occurrence *and* strictly after `now`. Dates already past are
//!   skipped, so completing late never piles up overdue occurrences; skipped dates still take
//!   their positions in the series, so `COUNT` bounds the series exactly as RFC 5545 does (a
//!   calendar showing the rule shows the same last date). The series is expanded from the
//!   completed occurrence's own wall-clock time ([`Occurrence::local`]), so an occurrence moved
//!   by a daylight-saving gap does not move the ones after it.
//! - Anchor `COMPLETION`: the rule restarted at the completion day, at the occurrence's
//!   wall-clock time of day in the rule's zone; the next occurrence is the first rule date
//!   strictly after both that restart and the completion time (the restart itself is
//!   "occurrence zero"). Each completion is one step of the series: `COUNT` counts tasks.
//! - `UNTIL` is absolute: when no rule date remains, the series is over.
//! - The accepted date range ends every series: a next date after
//!   [`entities::limits::LATEST_DATE`] (9000-12-31, UTC) is no date at all, so no successor is
//!   created with a due date the API would refuse (and could not page through by cursor).

use chrono::{DateTime, Utc};
use entities::recurrence::{Occurrence, RecurrenceAnchor, RecurrenceError, RecurrenceRule};

/// The next occurrence, or `None` when `COUNT`, `UNTIL` or the end of the accepted date range
/// ([`entities::limits::LATEST_DATE`]) ended the series.
///
/// `current` is the completed occurrence, `completed_at` when it was completed. Errors come from
/// the rule itself (expanding it is too expensive) and will not go away on retry.
pub fn next_due(
    rule: &RecurrenceRule,
    current: &Occurrence,
    completed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Occurrence>, RecurrenceError> {
    let next = match rule.anchor() {
        RecurrenceAnchor::Schedule => rule.following(current, now, 1)?.into_iter().next(),
        RecurrenceAnchor::Completion => {
            if rule.count().is_some_and(|n| current.index >= n) {
                return Ok(None);
            }
            let day = completed_at.with_timezone(&rule.timezone()).date_naive();
            let restart = Occurrence::at_local(rule, day.and_time(current.local.time()), 0);
            rule.without_count()
                .following(&restart, completed_at, 1)?
                .into_iter()
                .next()
                .map(|next| Occurrence {
                    index: current.index.saturating_add(1),
                    ..next
                })
        }
    };
    // `following` stops at `LATEST_DATE`; the filter states the rule here too.
    Ok(next.filter(|next| next.due_at <= entities::limits::LATEST_DATE))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn rule(text: &str, zone: &str, anchor: RecurrenceAnchor) -> RecurrenceRule {
        RecurrenceRule::parse(text, zone, anchor).unwrap()
    }

    /// [`next_due`] for a stored occurrence without its own wall-clock time, as a due date.
    fn next_due_at(
        rule: &RecurrenceRule,
        due_at: DateTime<Utc>,
        completed_at: DateTime<Utc>,
        index: i32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RecurrenceError> {
        let current = Occurrence::stored(rule, due_at, None, None, index);
        Ok(next_due(rule, &current, completed_at, now)?.map(|next| next.due_at))
    }

    #[test]
    fn schedule_takes_the_next_rule_date_after_the_due_date() {
        let r = rule("FREQ=WEEKLY", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let next = next_due_at(&r, due, utc(2026, 3, 1, 12, 0), 1, utc(2026, 3, 1, 12, 0));
        assert_eq!(next.unwrap(), Some(utc(2026, 3, 9, 9, 0)));
    }

    #[test]
    fn schedule_completed_late_skips_past_dates() {
        let r = rule("FREQ=WEEKLY", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let now = utc(2026, 3, 25, 12, 0);
        assert_eq!(
            next_due_at(&r, due, now, 1, now).unwrap(),
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
            next_due_at(&r, due, now, 1, now).unwrap(),
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
            next_due_at(&r, due, done, 1, done).unwrap(),
            Some(utc(2026, 3, 7, 9, 0))
        );
        // Completed early in the morning, before the due time: still one interval later.
        let early = utc(2026, 3, 4, 7, 0);
        assert_eq!(
            next_due_at(&r, due, early, 1, early).unwrap(),
            Some(utc(2026, 3, 7, 9, 0))
        );
    }

    #[test]
    fn count_counts_the_tasks_of_the_series() {
        let r = rule("FREQ=DAILY;COUNT=2", "UTC", RecurrenceAnchor::Schedule);
        let due = utc(2026, 3, 2, 9, 0);
        let now = utc(2026, 3, 2, 10, 0);
        assert_eq!(
            next_due_at(&r, due, now, 1, now).unwrap(),
            Some(utc(2026, 3, 3, 9, 0))
        );
        let second = utc(2026, 3, 3, 9, 0);
        assert_eq!(next_due_at(&r, second, now, 2, now).unwrap(), None);
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
            next_due_at(&r, utc(2026, 3, 2, 9, 0), now, 1, now).unwrap(),
            Some(utc(2026, 3, 3, 9, 0))
        );
        assert_eq!(
            next_due_at(&r, utc(2026, 3, 3, 9, 0), now, 2, now).unwrap(),
            None
        );
        // Completed so late that every remaining date has passed.
        let late = utc(2026, 4, 1, 0, 0);
        assert_eq!(
            next_due_at(&r, utc(2026, 3, 2, 9, 0), late, 1, late).unwrap(),
            None
        );
    }

    #[test]
    fn a_successor_after_the_end_of_the_date_range_ends_the_series() {
        let now = utc(2026, 3, 2, 10, 0);
        let daily = rule("FREQ=DAILY", "UTC", RecurrenceAnchor::Schedule);
        assert_eq!(
            next_due_at(&daily, utc(9000, 12, 30, 9, 0), now, 1, now).unwrap(),
            Some(utc(9000, 12, 31, 9, 0))
        );
        assert_eq!(
            next_due_at(&daily, utc(9000, 12, 31, 9, 0), now, 2, now).unwrap(),
            None
        );
        let done = utc(9000, 12, 31, 12, 0);
        let completion = rule("FREQ=DAILY", "UTC", RecurrenceAnchor::Completion);
        assert_eq!(
            next_due_at(&completion, utc(9000, 12, 31, 9, 0), done, 1, done).unwrap(),
            None
        );
    }
}
