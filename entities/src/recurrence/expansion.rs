//! Expansion of a validated rule into concrete dates, and the bounds that keep every
//! expansion cheap. It deliberately does no parsing: the rule was normalised and checked by
//! [`RecurrenceRule::parse`](super::RecurrenceRule::parse).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc};
use rrule::{Frequency, RRule, RRuleError, RRuleSet, Unvalidated, ValidationError};

use super::rule_text::invalid_from;
use super::{MAX_UPCOMING, PROBE_YEAR, RecurrenceError, RecurrenceRule};
use crate::limits::LATEST_DATE;

/// Most dates one expansion may step through, counting the dates skipped before `after`.
const MAX_EXPANSION_STEPS: u16 = 60_000;

/// Most rule periods (`FREQ` times `INTERVAL`) one expansion may walk through. It matches the
/// per-step guard of the `rrule` crate: 100,000 days is about 274 years of a daily rule.
const MAX_EXPANSION_PERIODS: i64 = 100_000;

impl RecurrenceRule {
    /// The next `count` rule dates strictly after `after`, with the series started (DTSTART) at
    /// `start`, evaluated as wall-clock times in the rule's zone (DST-safe: 09:00 stays 09:00
    /// local across DST), returned in UTC.
    ///
    /// At most [`MAX_UPCOMING`] dates are returned, and fewer when `COUNT` or `UNTIL` ends the
    /// series, or when the next date would be after [`LATEST_DATE`] (the end of the accepted
    /// date range ends every series); `COUNT` and `UNTIL` are counted from `start`, so an
    /// `UNTIL` before `start` gives no dates. `start` is truncated to whole seconds, and so are the returned dates.
    ///
    /// The work is bounded: a rule that cannot produce the dates within the iteration budget
    /// (one that never matches from this start, or is extremely sparse, or whose `start` lies
    /// too far before `after`) returns [`RecurrenceError::TooExpensive`].
    pub fn occurrences_after(
        &self,
        start: DateTime<Utc>,
        after: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<DateTime<Utc>>, RecurrenceError> {
        let wanted = count.min(MAX_UPCOMING);
        if wanted == 0 {
            return Ok(Vec::new());
        }

        let start = start.trunc_subsecs(0);
        let zone = rrule::Tz::Tz(self.timezone);
        let dt_start = start.with_timezone(&zone);
        let rule = match self.parsed.clone().validate(dt_start) {
            Ok(rule) => rule,
            Err(RRuleError::ValidationError(ValidationError::UntilBeforeStart { .. })) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(invalid_from(&e)),
        };

        // A cheap check first: the rule's defaults (day of month, weekday, time) come from the
        // start, and some starts leave the rule without any date (BYMONTH=2 from the 30th).
        let local_start = dt_start.naive_local();
        let reference = NaiveDate::from_ymd_opt(PROBE_YEAR, local_start.month(), local_start.day())
            .and_then(|d| {
                d.and_hms_opt(
                    local_start.hour(),
                    local_start.minute(),
                    local_start.second(),
                )
            })
            .expect("BUG: the probe year is a leap year, so every month and day exist");
        if !probe_has_date(&self.probe, reference).map_err(|e| invalid_from(&e))? {
            return Err(RecurrenceError::TooExpensive);
        }

        let period_seconds =
            period_seconds(self.parsed.get_freq()) * i64::from(self.parsed.get_interval());
        let unbounded = self.parsed.get_count().is_none() && self.parsed.get_until().is_none();
        let set = RRuleSet::new(dt_start).rrule(rule).limit();
        let mut iter = (&set).into_iter();
        let mut dates = Vec::with_capacity(wanted);
        let mut steps: u16 = 0;
        while dates.len() < wanted {
            if steps >= MAX_EXPANSION_STEPS {
                return Err(RecurrenceError::TooExpensive);
            }
            steps += 1;
            let Some(next) = iter.next() else {
                // The iterator also stops when the crate's own loop guard trips; replaying the
                // same steps through `all` reports which of the two happened.
                if (unbounded && steps == 1) || set.clone().all(steps).limited {
                    return Err(RecurrenceError::TooExpensive);
                }
                break;
            };
            let next = next.with_timezone(&Utc);
            if next > LATEST_DATE {
                // The series ends where the accepted date range does (see `LATEST_DATE`).
                break;
            }
            if (next - start).num_seconds() / period_seconds > MAX_EXPANSION_PERIODS {
                return Err(RecurrenceError::TooExpensive);
            }
            if next > after {
                dates.push(next);
            }
        }
        Ok(dates)
    }

    /// Convenience used by the GraphQL `Recurrence.upcoming`: `occurrences_after(due_at,
    /// due_at, count)`.
    pub fn upcoming(
        &self,
        due_at: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<DateTime<Utc>>, RecurrenceError> {
        self.occurrences_after(due_at, due_at, count)
    }
}

/// Length in seconds of the shortest period of `freq`; used to estimate how many periods an
/// expansion walked through.
fn period_seconds(freq: Frequency) -> i64 {
    const DAY: i64 = 24 * 60 * 60;
    match freq {
        Frequency::Yearly => 365 * DAY,
        Frequency::Monthly => 28 * DAY,
        Frequency::Weekly => 7 * DAY,
        Frequency::Daily => DAY,
        Frequency::Hourly => 60 * 60,
        Frequency::Minutely => 60,
        Frequency::Secondly => 1,
    }
}

/// Whether `probe` yields any date when started at `reference` (a UTC wall-clock time in
/// [`PROBE_YEAR`]). The walk is bounded by the `rrule` crate's loop guard and its last
/// supported year.
pub(super) fn probe_has_date(
    probe: &RRule<Unvalidated>,
    reference: NaiveDateTime,
) -> Result<bool, RRuleError> {
    let start = rrule::Tz::UTC.from_utc_datetime(&reference);
    let set = probe.clone().build(start)?;
    Ok(!set.all(1).dates.is_empty())
}
