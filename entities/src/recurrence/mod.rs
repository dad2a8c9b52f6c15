//! Recurrence rules for repeating tasks: validation of an RFC 5545 `RRULE` body together with
//! an IANA time zone and an anchor, and a bounded expansion of the rule into concrete dates.
//!
//! A rule is stored as its normalised body (for example `FREQ=WEEKLY;BYDAY=MO,WE`), without the
//! `RRULE:` prefix and without a `DTSTART`: the series always starts at the task's due date.
//! Dates are computed as wall-clock times in the rule's zone, so a task due at 09:00 in
//! `Europe/London` stays at 09:00 local time across daylight-saving changes, and they are
//! returned in UTC.
//!
//! A series follows RFC 5545 (see [`RecurrenceRule::following`]):
//! - the rule is expanded in wall-clock time from the first due date's local time (DTSTART);
//! - a wall-clock time that happens twice is its first occurrence, and one that does not exist
//!   (a daylight-saving gap) is read with the offset before the gap (§3.3.5), so 02:30 on the
//!   day Berlin skips from 02:00 to 03:00 is 01:30 UTC; a series keeps its wall-clock time after
//!   such a day, because every occurrence remembers the local time the rule gave it
//!   ([`Occurrence::local`]);
//! - two wall-clock times that give one instant are one occurrence ("duplicate instances are
//!   ignored", §3.8.5.3), and occurrences are in instant order;
//! - the first due date is always the first occurrence and counts toward `COUNT` ("the DTSTART
//!   property value always counts as the first occurrence", §3.3.10), even when it does not
//!   match the rule; `UNTIL` is an instant and inclusive.
//!
//! Normalisation rules, applied by [`RecurrenceRule::parse`]:
//! - an optional leading `RRULE:` (any case) and all whitespace are removed;
//! - part names and values are upper-cased, `BYWEEKDAY` is spelled `BYDAY`, and the parts are
//!   put in the order RFC 5545 lists them (`FREQ`, `UNTIL`, `COUNT`, `INTERVAL`, `BYSECOND`,
//!   `BYMINUTE`, `BYHOUR`, `BYDAY`, `BYMONTHDAY`, `BYYEARDAY`, `BYWEEKNO`, `BYMONTH`,
//!   `BYSETPOS`, `WKST`);
//! - `UNTIL` is always stored in UTC (`20261231T170000Z`). A floating date-time is read as a
//!   wall-clock time in the rule's zone, and a bare date means the end (23:59:59) of that day
//!   in the rule's zone. The `rrule` crate would otherwise read a floating `UNTIL` in the
//!   machine's local zone.
//!
//! Every expansion is bounded. `SECONDLY` and `MINUTELY` rules are refused, as are rules that
//! fire more than 96 times a day. A rule that can never produce a date is refused when it is
//! parsed, and an expansion that would have to walk through too many periods returns
//! [`RecurrenceError::TooExpensive`] instead of spinning.
//!
//! Module map: this file (the public types, [`RecurrenceRule::parse`] and [`parse_timezone`]);
//! `rule_text` (splitting, checking and normalising the rule text, and the plain-words errors);
//! `local_time` (wall-clock times read in a zone as RFC 5545 reads them); `expansion`
//! ([`RecurrenceRule::following`] and its iteration bounds); `tests` (unit tests, split into
//! `tests::parsing` and `tests::expansion`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use rrule::{Frequency, RRule, Unvalidated};

use expansion::probe_has_date;
use rule_text::{invalid, invalid_from, join_parts, split_parts, times_per_day};

mod expansion;
mod local_time;
mod rule_text;
#[cfg(test)]
mod tests;

text_enum! {
    /// Whether the next occurrence follows the schedule or restarts from the completion time.
    /// Stored in `tasks.recurrence_anchor` (`ck_tasks_recurrence_anchor`) and carried in task
    /// snapshots as `SCHEDULE` or `COMPLETION`, also its GraphQL name.
    #[derive(Default)]
    pub enum RecurrenceAnchor("recurrence anchor") {
        /// The next occurrence is the next rule date after the previous due date.
        #[default]
        Schedule = "SCHEDULE",
        /// The next occurrence is the next rule date after the moment the task was completed.
        Completion = "COMPLETION",
    }
}

/// Longest accepted rule text, in characters.
pub const MAX_RULE_CHARS: usize = 500;

/// Most dates `upcoming` returns.
pub const MAX_UPCOMING: usize = 50;

/// Most times a day a rule may fire; tasks do not recur more often than this.
const MAX_TIMES_PER_DAY: usize = 96;

/// Year in which feasibility probes start. It is a multiple of 400, so the 400 years up to the
/// `rrule` crate's last supported year (10,000) hold one full cycle of the Gregorian calendar.
const PROBE_YEAR: i32 = 9_600;

/// Longest zone name echoed back in an error message, in characters.
const MAX_ECHOED_ZONE_CHARS: usize = 64;

/// Why a recurrence rule or time zone was refused, or why a rule could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    /// The rule text is not an acceptable RFC 5545 `RRULE` body; the message says why in plain
    /// words and is safe to show to the user.
    #[error("rule is not a valid RFC 5545 RRULE: {0}")]
    InvalidRule(String),
    /// The time zone is not a known IANA time zone name.
    #[error("timezone '{0}' is not a known IANA time zone name")]
    UnknownTimezone(String),
    /// The rule is valid but its expansion from this start exceeded the iteration budget: it
    /// never meets from this start, or is pathologically sparse.
    #[error(
        "the rule gives no next date from this due date within the iteration budget (it may never \
         match from here, e.g. INTERVAL=24 with another BYHOUR than the due hour's, or be \
         extremely sparse); change the rule or the due date"
    )]
    TooExpensive,
}

/// A validated recurrence: normalised RRULE body (no "RRULE:" prefix, no DTSTART), IANA zone,
/// anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurrenceRule {
    /// The normalised rule body.
    rule: String,
    /// The zone the rule's wall-clock times are evaluated in.
    timezone: chrono_tz::Tz,
    /// Whether the next occurrence follows the schedule or the completion time.
    anchor: RecurrenceAnchor,
    /// The rule without `COUNT` and `UNTIL`, expanded in floating wall-clock time.
    floating: RRule<Unvalidated>,
    /// The rule without `COUNT`, `UNTIL` and `INTERVAL`, used to check that dates exist at all.
    probe: RRule<Unvalidated>,
    /// The rule's `COUNT`: how many occurrences the series has, the first due date included.
    count: Option<u32>,
    /// The rule's `UNTIL`: the last instant an occurrence may have.
    until: Option<DateTime<Utc>>,
    /// Whether the rule has `BYSETPOS` (it is then expanded from the series' start).
    by_set_pos: bool,
}

/// One occurrence of a series: when it is due, the wall-clock time the rule gave it, and its
/// position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// When the occurrence is due.
    pub due_at: DateTime<Utc>,
    /// The wall-clock time in the rule's zone that the rule gave this occurrence (RFC 5545's
    /// RECURRENCE-ID). It differs from the local time of `due_at` only when that time fell in a
    /// daylight-saving gap, or when `due_at` is the second of a repeated hour.
    pub local: NaiveDateTime,
    /// The 1-based position in the series; the first due date is 1.
    pub index: u32,
    /// The wall-clock time the series started at (its DTSTART): the first occurrence's `local`,
    /// or where a `COMPLETION` rule restarted.
    pub start: NaiveDateTime,
}

impl Occurrence {
    /// The first occurrence of a series that starts at `due_at` (truncated to whole seconds).
    pub fn first(rule: &RecurrenceRule, due_at: DateTime<Utc>) -> Occurrence {
        let due_at = due_at.trunc_subsecs(0);
        let local = due_at.with_timezone(&rule.timezone).naive_local();
        Occurrence {
            due_at,
            local,
            index: 1,
            start: local,
        }
    }

    /// An occurrence as a task stores it: `local` is absent when it is the local time of
    /// `due_at` (the first occurrence, or any whose time did not fall in a gap), `start` is
    /// absent when this occurrence started its series, and an index below 1 (never stored) is
    /// read as 1.
    pub fn stored(
        rule: &RecurrenceRule,
        due_at: DateTime<Utc>,
        local: Option<NaiveDateTime>,
        start: Option<NaiveDateTime>,
        index: i32,
    ) -> Occurrence {
        let first = Occurrence::first(rule, due_at);
        let local = local.map_or(first.local, |l| l.trunc_subsecs(0));
        Occurrence {
            due_at: first.due_at,
            local,
            index: u32::try_from(index).unwrap_or(1).max(1),
            start: start.map_or(local, |s| s.trunc_subsecs(0).min(local)),
        }
    }

    /// The occurrence at the wall-clock time `local` in `rule`'s zone, at position `index`; its
    /// due date is `local` read as RFC 5545 reads local times (the first of a repeated time, the
    /// offset before a gap).
    pub fn at_local(rule: &RecurrenceRule, local: NaiveDateTime, index: u32) -> Occurrence {
        let local = local.trunc_subsecs(0);
        Occurrence {
            due_at: local_time::instant_of(rule.timezone, local),
            local,
            index,
            start: local,
        }
    }

    /// The wall-clock time to store for this occurrence: `None` when it is just the local time
    /// of `due_at` in `rule`'s zone.
    pub fn stored_local(&self, rule: &RecurrenceRule) -> Option<NaiveDateTime> {
        let plain = self.due_at.with_timezone(&rule.timezone).naive_local();
        (self.local != plain).then_some(self.local)
    }
}

impl RecurrenceRule {
    /// Parses and validates. `rule` may carry an optional leading "RRULE:" (case-insensitive),
    /// which is stripped.
    ///
    /// The zone is checked with [`parse_timezone`]. The rule must be a single `RRULE` body with
    /// a `FREQ` of `HOURLY` or slower, must not contain `DTSTART`, `EXRULE`, `RDATE` or
    /// `EXDATE`, and must be able to produce at least one date.
    pub fn parse(
        rule: &str,
        timezone: &str,
        anchor: RecurrenceAnchor,
    ) -> Result<RecurrenceRule, RecurrenceError> {
        let timezone = parse_timezone(timezone)?;
        let parts = split_parts(rule, timezone)?;
        let normalised = join_parts(&parts, |_| true);
        let parsed: RRule<Unvalidated> = normalised.parse().map_err(|e| invalid_from(&e))?;
        let floating: RRule<Unvalidated> =
            join_parts(&parts, |name| !matches!(name, "COUNT" | "UNTIL"))
                .parse()
                .map_err(|e| invalid_from(&e))?;
        let count = parsed.get_count();
        let by_set_pos = !parsed.get_by_set_pos().is_empty();
        let until = parsed.get_until().map(|until| until.with_timezone(&Utc));

        match parsed.get_freq() {
            Frequency::Secondly | Frequency::Minutely => {
                return Err(invalid(
                    "FREQ=SECONDLY and FREQ=MINUTELY are not supported; tasks recur at most hourly",
                ));
            }
            Frequency::Yearly
            | Frequency::Monthly
            | Frequency::Weekly
            | Frequency::Daily
            | Frequency::Hourly => {}
        }
        let per_day = times_per_day(&parsed);
        if per_day > MAX_TIMES_PER_DAY {
            return Err(invalid(format!(
                "the rule fires up to {per_day} times a day; at most {MAX_TIMES_PER_DAY} are allowed"
            )));
        }

        // The probe drops the parts that only shorten the series or thin it out by phase, so a
        // probe without dates means no start date can ever give the rule a date.
        let probe_text = join_parts(&parts, |name| {
            !matches!(name, "COUNT" | "UNTIL" | "INTERVAL")
        });
        let probe: RRule<Unvalidated> = probe_text.parse().map_err(|e| invalid_from(&e))?;
        let reference = NaiveDate::from_ymd_opt(PROBE_YEAR, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("BUG: the probe reference date exists");
        if !probe_has_date(&probe, reference).map_err(|e| invalid_from(&e))? {
            return Err(invalid(
                "the rule never produces a date (for example, February has no 30th)",
            ));
        }

        Ok(RecurrenceRule {
            rule: normalised,
            timezone,
            anchor,
            floating,
            probe,
            count,
            until,
            by_set_pos,
        })
    }

    /// Returns the normalised rule body, for example `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Returns the zone the rule is evaluated in.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.timezone
    }

    /// Returns the canonical IANA name of the rule's zone, for example `Europe/London`.
    pub fn timezone_name(&self) -> &str {
        self.timezone.name()
    }

    /// Returns whether the next occurrence follows the schedule or the completion time.
    pub fn anchor(&self) -> RecurrenceAnchor {
        self.anchor
    }

    /// Returns the rule's `COUNT`: how many occurrences the series has, the first included.
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// The same rule without `COUNT`, for callers that count occurrences themselves. The rule
    /// text ([`RecurrenceRule::rule`]) is unchanged.
    pub fn without_count(&self) -> RecurrenceRule {
        RecurrenceRule {
            count: None,
            ..self.clone()
        }
    }
}

/// Parses an IANA zone name (exact, case-sensitive as IANA names are, but also accept "UTC").
///
/// Surrounding whitespace is ignored, and a name that matches a zone only when case is ignored
/// (`europe/london`) is accepted as that zone; [`chrono_tz::Tz::name`] then gives the canonical
/// spelling.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, RecurrenceError> {
    let trimmed = name.trim();
    if let Ok(zone) = trimmed.parse::<chrono_tz::Tz>() {
        return Ok(zone);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .find(|zone| zone.name().eq_ignore_ascii_case(trimmed))
        .ok_or_else(|| {
            RecurrenceError::UnknownTimezone(trimmed.chars().take(MAX_ECHOED_ZONE_CHARS).collect())
        })
}
