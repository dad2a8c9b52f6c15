//! The rule text before the `rrule` crate sees it: the checks that need no parser, splitting
//! into parts, normalising names, values, order and `UNTIL`, and turning errors into plain
//! words, plus the count of how many times a day a parsed rule fires. It is deliberately not a
//! full RFC 5545 parser: after normalisation the `rrule` crate parses the text, and its errors
//! are reworded here.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rrule::{Frequency, RRule, RRuleError, Unvalidated};

use super::{MAX_RULE_CHARS, RecurrenceError};

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

/// Builds an [`RecurrenceError::InvalidRule`] from a plain message.
pub(super) fn invalid(message: impl Into<String>) -> RecurrenceError {
    RecurrenceError::InvalidRule(message.into())
}

/// Builds an [`RecurrenceError::InvalidRule`] from an `rrule` error, in plain words.
pub(super) fn invalid_from(error: &RRuleError) -> RecurrenceError {
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
pub(super) fn split_parts(
    rule: &str,
    zone: chrono_tz::Tz,
) -> Result<Vec<(usize, String)>, RecurrenceError> {
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
pub(super) fn join_parts(parts: &[(usize, String)], keep: impl Fn(&str) -> bool) -> String {
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

/// Upper bound of how many times a local calendar day `rule` fires (rules are expanded in
/// wall-clock time, so a day has 24 hours; an `INTERVAL` that does not divide 24 can land on one
/// more hour on some days than on others, hence the rounding up).
pub(super) fn times_per_day(rule: &RRule<Unvalidated>) -> usize {
    let count_or_one = |n: usize| n.max(1);
    let hours = match rule.get_freq() {
        Frequency::Hourly if rule.get_by_hour().is_empty() => {
            let interval = usize::from(rule.get_interval().max(1));
            24usize.div_ceil(interval).min(24)
        }
        _ => count_or_one(rule.get_by_hour().len()),
    };
    hours * count_or_one(rule.get_by_minute().len()) * count_or_one(rule.get_by_second().len())
}
