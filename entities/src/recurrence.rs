//! Recurrence rules for repeating tasks: validation of an RFC 5545 `RRULE` body together with
//! an IANA time zone and an anchor, and a bounded expansion of the rule into concrete dates.
//!
//! A rule is stored as its normalised body (for example `FREQ=WEEKLY;BYDAY=MO,WE`), without the
//! `RRULE:` prefix and without a `DTSTART`: the series always starts at the task's due date.
//! Dates are computed as wall-clock times in the rule's zone, so a task due at 09:00 in
//! `Europe/London` stays at 09:00 local time across daylight-saving changes, and they are
//! returned in UTC.
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

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, TimeZone, Timelike, Utc,
};
use rrule::{Frequency, RRule, RRuleError, RRuleSet, Unvalidated, ValidationError};

/// Whether the next occurrence follows the schedule or restarts from the completion time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecurrenceAnchor {
    /// The next occurrence is the next rule date after the previous due date.
    #[default]
    Schedule,
    /// The next occurrence is the next rule date after the moment the task was completed.
    Completion,
}

impl RecurrenceAnchor {
    /// Returns the stored and GraphQL name: `SCHEDULE` or `COMPLETION`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecurrenceAnchor::Schedule => "SCHEDULE",
            RecurrenceAnchor::Completion => "COMPLETION",
        }
    }

    /// Parses the exact upper-case name returned by [`RecurrenceAnchor::as_str`].
    pub fn parse(s: &str) -> Option<RecurrenceAnchor> {
        match s {
            "SCHEDULE" => Some(RecurrenceAnchor::Schedule),
            "COMPLETION" => Some(RecurrenceAnchor::Completion),
            _ => None,
        }
    }
}

/// Longest accepted rule text, in characters.
pub const MAX_RULE_CHARS: usize = 500;

/// Most dates `upcoming` returns.
pub const MAX_UPCOMING: usize = 50;

/// Most times a day a rule may fire; tasks do not recur more often than this.
const MAX_TIMES_PER_DAY: usize = 96;

/// Most dates one expansion may step through, counting the dates skipped before `after`.
const MAX_EXPANSION_STEPS: u16 = 60_000;

/// Most rule periods (`FREQ` times `INTERVAL`) one expansion may walk through. It matches the
/// per-step guard of the `rrule` crate: 100,000 days is about 274 years of a daily rule.
const MAX_EXPANSION_PERIODS: i64 = 100_000;

/// Year in which feasibility probes start. It is a multiple of 400, so the 400 years up to the
/// `rrule` crate's last supported year (10,000) hold one full cycle of the Gregorian calendar.
const PROBE_YEAR: i32 = 9_600;

/// Longest zone name echoed back in an error message, in characters.
const MAX_ECHOED_ZONE_CHARS: usize = 64;

/// Rule parts in the order RFC 5545 lists them; the normalised rule uses this order.
const PART_NAMES: [&str; 14] = [
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
];

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
    /// The rule is valid but its expansion exceeded the iteration budget (pathological rule).
    #[error("rule needs too many iterations to expand; simplify it")]
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
    /// The rule body as parsed by the `rrule` crate.
    parsed: RRule<Unvalidated>,
    /// The rule without `COUNT`, `UNTIL` and `INTERVAL`, used to check that dates exist at all.
    probe: RRule<Unvalidated>,
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
            parsed,
            probe,
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

    /// The next `count` rule dates strictly after `after`, with the series started (DTSTART) at
    /// `start`, evaluated as wall-clock times in the rule's zone (DST-safe: 09:00 stays 09:00
    /// local across DST), returned in UTC.
    ///
    /// At most [`MAX_UPCOMING`] dates are returned, and fewer when `COUNT` or `UNTIL` ends the
    /// series; `COUNT` and `UNTIL` are counted from `start`, so an `UNTIL` before `start` gives
    /// no dates. `start` is truncated to whole seconds, and so are the returned dates.
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

/// Builds an [`RecurrenceError::InvalidRule`] from a plain message.
fn invalid(message: impl Into<String>) -> RecurrenceError {
    RecurrenceError::InvalidRule(message.into())
}

/// Builds an [`RecurrenceError::InvalidRule`] from an `rrule` error, in plain words.
fn invalid_from(error: &RRuleError) -> RecurrenceError {
    let detail = match error {
        RRuleError::ParserError(e) => e.to_string(),
        RRuleError::ValidationError(e) => e.to_string(),
        RRuleError::IterError(e) => e.clone(),
    };
    let detail = detail
        .replace(" See 'validator limits' in docs for more info.", "")
        .replace('`', "'")
        .replace("..=", " to ");
    invalid(detail.trim().trim_end_matches('.'))
}

/// Splits rule text into its parts as `(index in PART_NAMES, normalised value)`, sorted by
/// index, after the checks that need no parser.
fn split_parts(rule: &str, zone: chrono_tz::Tz) -> Result<Vec<(usize, String)>, RecurrenceError> {
    if rule.chars().count() > MAX_RULE_CHARS {
        return Err(invalid(format!(
            "the rule is longer than {MAX_RULE_CHARS} characters"
        )));
    }
    let text = rule.trim();
    if text.is_empty() {
        return Err(invalid("the rule is empty"));
    }
    let upper = text.to_ascii_uppercase();
    if upper.contains("DTSTART") {
        return Err(invalid(
            "DTSTART is not allowed; the task's dueAt starts the series",
        ));
    }
    if text.contains(['\n', '\r']) {
        return Err(invalid(
            "only a single RRULE line is allowed; EXRULE, RDATE and EXDATE are not supported",
        ));
    }
    let body = match text.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => &text[6..],
        _ => text,
    };
    if body.contains(':') {
        let property = ["EXRULE", "RDATE", "EXDATE"]
            .into_iter()
            .find(|p| upper.starts_with(p));
        return Err(invalid(match property {
            Some(p) => format!("{p} is not supported; give only the RRULE body"),
            None => "give only the rule body, for example FREQ=WEEKLY;BYDAY=MO".to_owned(),
        }));
    }

    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let mut parts: Vec<(usize, String)> = Vec::new();
    for raw in compact.split(';').filter(|raw| !raw.is_empty()) {
        let Some((name, value)) = raw.split_once('=') else {
            return Err(invalid(format!("'{raw}' is not a NAME=VALUE rule part")));
        };
        let name = name.to_ascii_uppercase();
        let canonical = if name == "BYWEEKDAY" {
            "BYDAY"
        } else {
            name.as_str()
        };
        let Some(index) = PART_NAMES.iter().position(|p| *p == canonical) else {
            return Err(invalid(format!("'{name}' is not a supported rule part")));
        };
        if value.is_empty() {
            return Err(invalid(format!("{canonical} has no value")));
        }
        if parts.iter().any(|(i, _)| *i == index) {
            return Err(invalid(format!("{canonical} appears more than once")));
        }
        let value = value.to_ascii_uppercase();
        let value = match canonical {
            "UNTIL" => normalise_until(&value, zone)?,
            "COUNT" | "INTERVAL" if value.parse::<u64>() == Ok(0) => {
                return Err(invalid(format!("{canonical} must be at least 1")));
            }
            _ => value,
        };
        parts.push((index, value));
    }
    if !parts.iter().any(|(i, _)| *i == 0) {
        return Err(invalid("FREQ is required, for example FREQ=WEEKLY"));
    }
    parts.sort_by_key(|(i, _)| *i);
    Ok(parts)
}

/// Joins the parts whose name passes `keep` into rule text.
fn join_parts(parts: &[(usize, String)], keep: impl Fn(&str) -> bool) -> String {
    parts
        .iter()
        .filter(|(i, _)| keep(PART_NAMES[*i]))
        .map(|(i, value)| format!("{}={value}", PART_NAMES[*i]))
        .collect::<Vec<_>>()
        .join(";")
}

/// Rewrites an `UNTIL` value (`YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`) as a UTC
/// date-time. Floating values are wall-clock times in `zone`; a bare date is the end of that day.
fn normalise_until(value: &str, zone: chrono_tz::Tz) -> Result<String, RecurrenceError> {
    let malformed = || {
        invalid(format!(
            "UNTIL '{value}' must be a date like 20261231 or a date-time like 20261231T170000 \
             or 20261231T170000Z"
        ))
    };
    let digits = |s: &str| -> Option<u32> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (date, rest) = value.split_at_checked(8).ok_or_else(malformed)?;
    let date = match (date.get(..4), date.get(4..6), date.get(6..)) {
        (Some(y), Some(m), Some(d)) => digits(y)
            .and_then(|y| i32::try_from(y).ok())
            .zip(digits(m))
            .zip(digits(d))
            .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d)),
        _ => None,
    }
    .ok_or_else(malformed)?;

    let (time, utc) = match rest {
        "" => (NaiveTime::from_hms_opt(23, 59, 59), false),
        _ => {
            let time = rest.strip_prefix('T').ok_or_else(malformed)?;
            let (time, utc) = match time.strip_suffix('Z') {
                Some(time) => (time, true),
                None => (time, false),
            };
            let time = match (time.len(), time.get(..2), time.get(2..4), time.get(4..)) {
                (6, Some(h), Some(m), Some(s)) => digits(h)
                    .zip(digits(m))
                    .zip(digits(s))
                    .and_then(|((h, m), s)| NaiveTime::from_hms_opt(h, m, s)),
                _ => None,
            };
            (time, utc)
        }
    };
    let local = NaiveDateTime::new(date, time.ok_or_else(malformed)?);
    let instant = if utc {
        Utc.from_utc_datetime(&local)
    } else {
        zone.from_local_datetime(&local)
            .latest()
            .ok_or_else(|| {
                invalid(format!(
                    "UNTIL '{value}' does not exist in {} (it falls in a daylight-saving gap)",
                    zone.name()
                ))
            })?
            .with_timezone(&Utc)
    };
    Ok(instant.format("%Y%m%dT%H%M%SZ").to_string())
}

/// Upper bound of how many times a day `rule` fires.
fn times_per_day(rule: &RRule<Unvalidated>) -> usize {
    let count_or_one = |n: usize| n.max(1);
    let hours = match rule.get_freq() {
        Frequency::Hourly if rule.get_by_hour().is_empty() => {
            let interval = usize::from(rule.get_interval().max(1));
            (24 / interval + 1).min(24)
        }
        _ => count_or_one(rule.get_by_hour().len()),
    };
    hours * count_or_one(rule.get_by_minute().len()) * count_or_one(rule.get_by_second().len())
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
fn probe_has_date(
    probe: &RRule<Unvalidated>,
    reference: NaiveDateTime,
) -> Result<bool, RRuleError> {
    let start = rrule::Tz::UTC.from_utc_datetime(&reference);
    let set = probe.clone().build(start)?;
    Ok(!set.all(1).dates.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Weekday};
    use chrono_tz::Tz;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid UTC time")
    }

    fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("unambiguous local time")
            .with_timezone(&Utc)
    }

    fn rule(text: &str, zone: &str) -> RecurrenceRule {
        RecurrenceRule::parse(text, zone, RecurrenceAnchor::Schedule).expect("valid rule")
    }

    fn invalid_message(text: &str) -> String {
        match RecurrenceRule::parse(text, "UTC", RecurrenceAnchor::Schedule) {
            Err(RecurrenceError::InvalidRule(message)) => message,
            other => panic!("expected InvalidRule for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn anchor_names_round_trip_and_are_exact() {
        for anchor in [RecurrenceAnchor::Schedule, RecurrenceAnchor::Completion] {
            assert_eq!(RecurrenceAnchor::parse(anchor.as_str()), Some(anchor));
        }
        assert_eq!(RecurrenceAnchor::Schedule.as_str(), "SCHEDULE");
        assert_eq!(RecurrenceAnchor::Completion.as_str(), "COMPLETION");
        assert_eq!(RecurrenceAnchor::default(), RecurrenceAnchor::Schedule);
        assert_eq!(RecurrenceAnchor::parse("schedule"), None);
        assert_eq!(RecurrenceAnchor::parse(""), None);
    }

    #[test]
    fn parse_timezone_accepts_iana_names_and_utc() {
        assert_eq!(parse_timezone("UTC"), Ok(Tz::UTC));
        assert_eq!(parse_timezone("Europe/London"), Ok(Tz::Europe__London));
        assert_eq!(
            parse_timezone(" America/New_York "),
            Ok(Tz::America__New_York)
        );
    }

    #[test]
    fn parse_timezone_accepts_other_case_and_keeps_canonical_name() {
        assert_eq!(parse_timezone("europe/london"), Ok(Tz::Europe__London));
        assert_eq!(parse_timezone("utc"), Ok(Tz::UTC));
        let r = rule("FREQ=DAILY", "europe/london");
        assert_eq!(r.timezone(), Tz::Europe__London);
        assert_eq!(r.timezone_name(), "Europe/London");
    }

    #[test]
    fn parse_timezone_rejects_unknown_names() {
        assert_eq!(
            parse_timezone("Mars/Olympus"),
            Err(RecurrenceError::UnknownTimezone("Mars/Olympus".into()))
        );
        assert!(matches!(
            parse_timezone(""),
            Err(RecurrenceError::UnknownTimezone(_))
        ));
        assert_eq!(
            RecurrenceRule::parse("FREQ=DAILY", "Mars/Olympus", RecurrenceAnchor::Schedule),
            Err(RecurrenceError::UnknownTimezone("Mars/Olympus".into()))
        );
        let long = "X".repeat(1_000);
        match parse_timezone(&long) {
            Err(RecurrenceError::UnknownTimezone(echoed)) => {
                assert_eq!(echoed.chars().count(), MAX_ECHOED_ZONE_CHARS);
            }
            other => panic!("expected UnknownTimezone, got {other:?}"),
        }
    }

    #[test]
    fn parse_keeps_zone_and_anchor() {
        let r = RecurrenceRule::parse(
            "FREQ=DAILY",
            "Pacific/Auckland",
            RecurrenceAnchor::Completion,
        )
        .expect("valid rule");
        assert_eq!(r.timezone_name(), "Pacific/Auckland");
        assert_eq!(r.anchor(), RecurrenceAnchor::Completion);
    }

    #[test]
    fn parse_normalises_prefix_case_whitespace_and_order() {
        assert_eq!(
            rule("FREQ=WEEKLY;BYDAY=MO,WE", "UTC").rule(),
            "FREQ=WEEKLY;BYDAY=MO,WE"
        );
        assert_eq!(
            rule("RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "UTC").rule(),
            "FREQ=WEEKLY;BYDAY=MO,WE"
        );
        assert_eq!(
            rule("  rrule: byday = mo, we ; freq = weekly ;\t", "UTC").rule(),
            "FREQ=WEEKLY;BYDAY=MO,WE"
        );
        assert_eq!(
            rule("INTERVAL=2;BYWEEKDAY=1MO,-1FR;FREQ=MONTHLY;COUNT=5", "UTC").rule(),
            "FREQ=MONTHLY;COUNT=5;INTERVAL=2;BYDAY=1MO,-1FR"
        );
    }

    #[test]
    fn normalised_rule_reparses_identically() {
        for text in [
            "rrule:freq=weekly;byday=mo,we",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "BYDAY=1MO;FREQ=MONTHLY",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;WKST=SU",
            "FREQ=DAILY;UNTIL=20261231;INTERVAL=3",
            "FREQ=HOURLY;INTERVAL=4;BYMINUTE=0,30",
        ] {
            let first = rule(text, "Europe/London");
            let again = rule(first.rule(), "Europe/London");
            assert_eq!(again, first, "{text}");
            assert_eq!(again.rule(), first.rule());
            // The `rrule` crate parses the normalised text to the rule that is stored.
            let reparsed: RRule<Unvalidated> = first.rule().parse().expect("rrule parses it");
            assert_eq!(reparsed, first.parsed, "{text}");
        }
    }

    #[test]
    fn until_is_stored_in_utc() {
        assert_eq!(
            rule("FREQ=DAILY;UNTIL=20260105T090000Z", "America/New_York").rule(),
            "FREQ=DAILY;UNTIL=20260105T090000Z"
        );
        // A floating date-time is a wall-clock time in the rule's zone.
        assert_eq!(
            rule("FREQ=DAILY;UNTIL=20260705T090000", "Europe/London").rule(),
            "FREQ=DAILY;UNTIL=20260705T080000Z"
        );
        // A bare date means the end of that day in the rule's zone.
        assert_eq!(
            rule("FREQ=DAILY;UNTIL=20260105", "America/New_York").rule(),
            "FREQ=DAILY;UNTIL=20260106T045959Z"
        );
    }

    #[test]
    fn rejects_empty_and_whitespace_rules() {
        assert_eq!(invalid_message(""), "the rule is empty");
        assert_eq!(invalid_message("  \t "), "the rule is empty");
        assert_eq!(
            invalid_message("RRULE:"),
            "FREQ is required, for example FREQ=WEEKLY"
        );
    }

    #[test]
    fn rejects_overlong_rules() {
        let text = format!("FREQ=DAILY;{}", ";".repeat(MAX_RULE_CHARS));
        assert!(invalid_message(&text).contains("longer than 500 characters"));
        let padded = format!("FREQ=DAILY{}", " ".repeat(MAX_RULE_CHARS - 10));
        assert_eq!(rule(&padded, "UTC").rule(), "FREQ=DAILY");
    }

    #[test]
    fn rejects_text_that_is_not_an_rrule() {
        assert!(invalid_message("every monday").contains("not a NAME=VALUE rule part"));
        assert!(invalid_message("FREQ=DAILY;FOO=1").contains("'FOO' is not a supported rule part"));
        assert!(invalid_message("BYDAY=MO").contains("FREQ is required"));
        assert!(invalid_message("FREQ=").contains("FREQ has no value"));
        assert!(invalid_message("FREQ=DAILY;FREQ=WEEKLY").contains("FREQ appears more than once"));
        assert!(invalid_message("FREQ=DAILY;BYEASTER=0").contains("'BYEASTER' is not a supported"));
    }

    #[test]
    fn rejects_unknown_frequency() {
        let message = invalid_message("FREQ=FORTNIGHTLY");
        assert!(
            message.contains("'FORTNIGHTLY' is not a valid frequency"),
            "{message}"
        );
    }

    #[test]
    fn rejects_malformed_parts_with_the_parser_detail() {
        let message = invalid_message("FREQ=WEEKLY;BYDAY=XX");
        assert!(message.contains("'XX' is not a valid weekday"), "{message}");
        assert!(!message.contains('`'), "{message}");
        assert_eq!(
            invalid_message("FREQ=DAILY;INTERVAL=0"),
            "INTERVAL must be at least 1"
        );
        assert_eq!(
            invalid_message("FREQ=DAILY;COUNT=0"),
            "COUNT must be at least 1"
        );
        let message = invalid_message("FREQ=DAILY;COUNT=-1");
        assert!(
            message.contains("'-1' is not a valid COUNT value"),
            "{message}"
        );
        let message = invalid_message("FREQ=DAILY;BYHOUR=24");
        assert!(message.contains("0 to 23"), "{message}");
        let message = invalid_message("FREQ=WEEKLY;BYMONTHDAY=1");
        assert!(message.contains("BYMONTHDAY"), "{message}");
        assert!(invalid_message("FREQ=DAILY;UNTIL=tomorrow").contains("UNTIL 'TOMORROW' must be"));
        assert!(invalid_message("FREQ=DAILY;UNTIL=20261301").contains("must be a date"));
        assert!(invalid_message("FREQ=DAILY;UNTIL=20260101T250000Z").contains("must be a date"));
    }

    #[test]
    fn invalid_rule_error_reads_as_a_sentence() {
        let error =
            RecurrenceRule::parse("FREQ=DAILY;INTERVAL=0", "UTC", RecurrenceAnchor::Schedule)
                .expect_err("INTERVAL=0 is refused");
        assert_eq!(
            error.to_string(),
            "rule is not a valid RFC 5545 RRULE: INTERVAL must be at least 1"
        );
    }

    #[test]
    fn rejects_dtstart_and_other_properties() {
        let dtstart = "DTSTART is not allowed; the task's dueAt starts the series";
        assert_eq!(
            invalid_message("DTSTART:20260101T090000Z\nRRULE:FREQ=DAILY"),
            dtstart
        );
        assert_eq!(
            invalid_message("FREQ=DAILY;DTSTART=20260101T090000Z"),
            dtstart
        );
        assert!(
            invalid_message("RRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY").contains("single RRULE line")
        );
        assert!(
            invalid_message("RRULE:FREQ=DAILY\nRDATE:20260101T090000Z")
                .contains("single RRULE line")
        );
        assert!(invalid_message("EXDATE:20260101T090000Z").contains("EXDATE is not supported"));
        assert!(invalid_message("EXRULE:FREQ=DAILY").contains("EXRULE is not supported"));
        assert!(invalid_message("RRULE:RRULE:FREQ=DAILY").contains("only the rule body"));
    }

    #[test]
    fn rejects_secondly_and_minutely_but_accepts_hourly() {
        for text in ["FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=30"] {
            assert!(invalid_message(text).contains("at most hourly"), "{text}");
        }
        for text in [
            "FREQ=HOURLY",
            "FREQ=DAILY",
            "FREQ=WEEKLY",
            "FREQ=MONTHLY",
            "FREQ=YEARLY",
        ] {
            rule(text, "UTC");
        }
    }

    #[test]
    fn rejects_rules_that_fire_too_often_in_a_day() {
        let every_minute_in_hour = (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",");
        let message = invalid_message(&format!("FREQ=HOURLY;BYMINUTE={every_minute_in_hour}"));
        assert!(message.contains("1440 times a day"), "{message}");
        let seconds = (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",");
        let message = invalid_message(&format!("FREQ=YEARLY;BYSECOND={seconds};BYMINUTE=0,1"));
        assert!(message.contains("at most 96"), "{message}");
        // Every quarter of an hour is the most that is allowed.
        rule("FREQ=HOURLY;BYMINUTE=0,15,30,45", "UTC");
    }

    #[test]
    fn rejects_rules_that_never_produce_a_date() {
        for text in [
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31",
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
            "FREQ=HOURLY;BYMONTH=11;BYMONTHDAY=31",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=3",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;UNTIL=20300101T000000Z",
        ] {
            assert!(
                invalid_message(text).contains("never produces a date"),
                "{text}"
            );
        }
        // A rule that only matches in leap years is fine whatever the interval.
        rule("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "UTC");
        rule("FREQ=MONTHLY;INTERVAL=12;BYMONTH=2", "UTC");
    }

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
}
