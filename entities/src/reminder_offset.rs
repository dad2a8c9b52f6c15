//! Reminder specifications: minutes before the due date, or an absolute time.

use chrono::{DateTime, Duration, Utc};

/// Longest lead time of a relative reminder: 365 days, in minutes.
pub const MAX_MINUTES_BEFORE_DUE: i32 = 365 * 24 * 60;

/// What a reminder is relative to. Exactly one kind per reminder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderSpec {
    MinutesBeforeDue(i32),
    At(DateTime<Utc>),
}

text_enum! {
    /// Lifecycle of a stored reminder: `reminders.status` (`ck_reminders_status`) and the
    /// `status` of a reminder in task snapshots.
    pub enum ReminderStatus("reminder status") {
        Pending = "PENDING",
        Fired = "FIRED",
        Cancelled = "CANCELLED",
        Missed = "MISSED",
    }
}

impl ReminderSpec {
    /// Builds a spec from the two optional input fields; exactly one must be present.
    /// `field` names the input in error messages (e.g. `input.reminders[0]`).
    pub fn from_input(
        field: &str,
        minutes_before_due: Option<i32>,
        at: Option<DateTime<Utc>>,
    ) -> Result<ReminderSpec, String> {
        match (minutes_before_due, at) {
            (Some(_), Some(_)) => Err(format!(
                "{field}: give exactly one of minutesBeforeDue and at, not both"
            )),
            (None, None) => Err(format!(
                "{field}: give exactly one of minutesBeforeDue and at"
            )),
            (Some(m), None) if !(0..=MAX_MINUTES_BEFORE_DUE).contains(&m) => Err(format!(
                "{field}.minutesBeforeDue must be between 0 and {MAX_MINUTES_BEFORE_DUE}"
            )),
            (Some(m), None) => Ok(ReminderSpec::MinutesBeforeDue(m)),
            (None, Some(t)) => Ok(ReminderSpec::At(crate::to_db_precision(t))),
        }
    }

    /// When the reminder fires for a task due at `due_at`; `None` for a relative reminder on a
    /// task without a due date (it waits until one is set).
    pub fn fire_at(self, due_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self {
            ReminderSpec::At(t) => Some(t),
            ReminderSpec::MinutesBeforeDue(m) => {
                due_at.map(|d| d - Duration::minutes(i64::from(m)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn both_or_neither_field_is_rejected_naming_the_field() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let both = ReminderSpec::from_input("input.reminders[0]", Some(5), Some(t)).unwrap_err();
        assert!(both.starts_with("input.reminders[0]"), "{both}");
        assert!(ReminderSpec::from_input("r", None, None).is_err());
    }

    #[test]
    fn negative_or_huge_lead_time_is_rejected() {
        assert!(ReminderSpec::from_input("r", Some(-1), None).is_err());
        assert!(ReminderSpec::from_input("r", Some(MAX_MINUTES_BEFORE_DUE + 1), None).is_err());
    }

    #[test]
    fn fire_time_is_due_minus_lead_or_the_absolute_time() {
        let due = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let spec = ReminderSpec::MinutesBeforeDue(30);
        assert_eq!(
            spec.fire_at(Some(due)),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 8, 30, 0).unwrap())
        );
        assert_eq!(spec.fire_at(None), None);
        assert_eq!(ReminderSpec::At(due).fire_at(None), Some(due));
    }
}
