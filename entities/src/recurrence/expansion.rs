//! Expansion of a validated rule into the occurrences of a series, and the bounds that keep
//! every expansion cheap. It deliberately does no parsing: the rule was normalised and checked
//! by [`RecurrenceRule::parse`](super::RecurrenceRule::parse).
//!
//! The rule is expanded in floating wall-clock time (the `rrule` crate sees the local times as
//! if they were UTC, so no zone rule can hide a day from it), and every local time is then read
//! in the rule's zone as RFC 5545 §3.3.5 says ([`instant_of`]). Because a time in a
//! daylight-saving gap moves back by the offset before the gap, instants can come out of
//! wall-clock order and two local times can give one instant; the walk keeps a short buffer,
//! hands the instants out in order and drops duplicates.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use rrule::{Frequency, RRule, RRuleError, RRuleSet, Unvalidated};

use super::local_time::instant_of;
use super::rule_text::invalid_from;
use super::{MAX_UPCOMING, Occurrence, PROBE_YEAR, RecurrenceError, RecurrenceRule};
use crate::limits::LATEST_DATE;

/// Most local times one expansion may step through, counting those skipped before `after`.
const MAX_EXPANSION_STEPS: u16 = 60_000;

/// Most rule periods (`FREQ` times `INTERVAL`) one expansion may walk through. It matches the
/// per-step guard of the `rrule` crate: 100,000 days is about 274 years of a daily rule.
const MAX_EXPANSION_PERIODS: i64 = 100_000;

/// How far a later local time's instant can lie before an earlier one's: more than any UTC
/// offset the time-zone database has ever had. An instant this far behind the newest local time
/// is final.
const REORDER_WINDOW: Duration = Duration::hours(30);

impl RecurrenceRule {
    /// The next occurrences of the series after `current`: at most `count` (and at most
    /// [`MAX_UPCOMING`]) occurrences due strictly after both `current.due_at` and `after`,
    /// in order, each a distinct instant.
    ///
    /// Positions count every date of the series after `current`, including those at or before
    /// `after` that are skipped. The series ends with `COUNT` (positions beyond it are no
    /// occurrences), with `UNTIL` (an instant; inclusive), and after [`LATEST_DATE`] (the end
    /// of the accepted date range).
    ///
    /// The rule is expanded from `current.local`, the occurrence's own wall-clock time: from an
    /// occurrence of the series, the rule gives the same later dates as from the series' start,
    /// because each of its parts accepts or refuses a date by itself, with one exception.
    /// `BYSETPOS` picks positions within a period, and the expansion (as python-dateutil's, which
    /// the tests compare with) cuts a `WEEKLY` rule's first period at DTSTART, so a rule with
    /// `BYSETPOS` is expanded from the series' start (`current.start`) instead.
    ///
    /// The work is bounded: a rule that cannot produce the dates within the iteration budget
    /// (one that never matches from this start, is extremely sparse, or whose `current` lies
    /// too far before `after`) returns [`RecurrenceError::TooExpensive`].
    pub fn following(
        &self,
        current: &Occurrence,
        after: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<Occurrence>, RecurrenceError> {
        let wanted = count.min(MAX_UPCOMING);
        if wanted == 0 || self.count.is_some_and(|n| current.index >= n) {
            return Ok(Vec::new());
        }
        let end = self
            .until
            .map_or(LATEST_DATE, |until| until.min(LATEST_DATE));
        if current.due_at >= end {
            return Ok(Vec::new());
        }

        // A cheap check first: the rule's defaults (day of month, weekday, time) come from the
        // start, and some starts leave the rule without any date (BYMONTH=2 from the 30th).
        let start = if self.by_set_pos {
            current.start
        } else {
            current.local
        };
        let reference = NaiveDate::from_ymd_opt(PROBE_YEAR, start.month(), start.day())
            .and_then(|d| d.and_hms_opt(start.hour(), start.minute(), start.second()))
            .expect("BUG: the probe year is a leap year, so every month and day exist");
        if !probe_has_date(&self.probe, reference).map_err(|e| invalid_from(&e))? {
            return Err(RecurrenceError::TooExpensive);
        }

        let floating = rrule::Tz::UTC.from_utc_datetime(&start);
        let rule = self
            .floating
            .clone()
            .validate(floating)
            .map_err(|e| invalid_from(&e))?;
        let set = RRuleSet::new(floating).rrule(rule).limit();
        let period_seconds =
            period_seconds(self.floating.get_freq()) * i64::from(self.floating.get_interval());

        let mut walk = Walk {
            last: current.due_at,
            index: current.index,
            after: after.max(current.due_at),
            end,
            count: self.count,
            wanted,
            found: Vec::with_capacity(wanted),
            start: current.start,
        };
        let mut pending: BTreeMap<DateTime<Utc>, NaiveDateTime> = BTreeMap::new();
        let mut iter = (&set).into_iter();
        let mut steps: u16 = 0;
        loop {
            if steps >= MAX_EXPANSION_STEPS {
                return Err(RecurrenceError::TooExpensive);
            }
            steps += 1;
            let Some(next) = iter.next() else {
                // The iterator stops when the crate's own loop guard trips, or at its last
                // supported year; replaying the same steps through `all` tells which.
                if steps == 1 || set.clone().all(steps).limited {
                    return Err(RecurrenceError::TooExpensive);
                }
                walk.take_all(pending);
                return Ok(walk.found);
            };
            let local = next.naive_utc();
            if (local - start).num_seconds() / period_seconds > MAX_EXPANSION_PERIODS {
                return Err(RecurrenceError::TooExpensive);
            }
            let at = instant_of(self.timezone, local);
            // Two local times can give one instant; the first one the rule gave is its
            // wall-clock time.
            pending.entry(at).or_insert(local);
            let settled = Utc.from_utc_datetime(&local) - REORDER_WINDOW;
            while let Some(entry) = pending.first_entry() {
                if *entry.key() > settled {
                    break;
                }
                let (at, local) = entry.remove_entry();
                if walk.take(at, local) {
                    return Ok(walk.found);
                }
            }
            if settled > walk.end {
                walk.take_all(pending);
                return Ok(walk.found);
            }
        }
    }

    /// The next `count` dates of a series that starts at `due_at` (its first occurrence), as
    /// `previewRecurrence` shows them: [`RecurrenceRule::following`] from
    /// [`Occurrence::first`].
    pub fn upcoming(
        &self,
        due_at: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<DateTime<Utc>>, RecurrenceError> {
        let first = Occurrence::first(self, due_at);
        Ok(self
            .following(&first, due_at, count)?
            .into_iter()
            .map(|o| o.due_at)
            .collect())
    }
}

/// The state of one walk through the instants of a series, in order.
struct Walk {
    /// The newest instant of the series seen (duplicates and earlier instants are dropped).
    last: DateTime<Utc>,
    /// The position of `last`.
    index: u32,
    /// Occurrences due at or before this are counted but not returned.
    after: DateTime<Utc>,
    /// The last instant the series may have (`UNTIL`, or the end of the date range).
    end: DateTime<Utc>,
    /// The rule's `COUNT`.
    count: Option<u32>,
    /// How many occurrences to return.
    wanted: usize,
    /// The occurrences found so far.
    found: Vec<Occurrence>,
    /// The wall-clock time the series started at.
    start: NaiveDateTime,
}

impl Walk {
    /// Takes the next instant in order; returns whether the walk is over.
    fn take(&mut self, at: DateTime<Utc>, local: NaiveDateTime) -> bool {
        if at <= self.last {
            return false;
        }
        if at > self.end {
            return true;
        }
        self.last = at;
        self.index = self.index.saturating_add(1);
        if self.count.is_some_and(|n| self.index > n) {
            return true;
        }
        if at > self.after {
            self.found.push(Occurrence {
                due_at: at,
                local,
                index: self.index,
                start: self.start,
            });
        }
        self.found.len() >= self.wanted || self.count.is_some_and(|n| self.index >= n)
    }

    /// Takes every remaining instant, in order, until the walk is over.
    fn take_all(&mut self, pending: BTreeMap<DateTime<Utc>, NaiveDateTime>) {
        for (at, local) in pending {
            if self.take(at, local) {
                break;
            }
        }
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
