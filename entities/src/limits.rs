//! Size limits on user input. Each is a decision: large enough for real use, small enough that
//! one request cannot make a row (or an index entry, or an event) unreasonably large.
//!
//! Two rules apply to every input, whatever its size: text never contains a NUL character
//! ([`no_nul`]), and a date-time lies in [`EARLIEST_DATE`]..=[`LATEST_DATE`] ([`date_in_range`])
//! with whole microseconds ([`whole_microseconds`]).

use chrono::{DateTime, Utc};

/// Longest task title, in characters. A title is a line, not a document.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest task description, in characters (about 20 pages of text).
pub const MAX_DESCRIPTION_CHARS: usize = 50_000;
/// Longest tag name, in characters.
pub const MAX_TAG_NAME_CHARS: usize = 64;
/// Most tags on one task.
pub const MAX_TAGS_PER_TASK: usize = 50;
/// Most reminders on one task.
pub const MAX_REMINDERS_PER_TASK: usize = 20;
/// Longest search string, in characters.
pub const MAX_SEARCH_CHARS: usize = 500;
/// Longest webhook URL, in characters.
pub const MAX_URL_CHARS: usize = 2_048;
/// Most tag names in one `TagMatch` list.
pub const MAX_TAG_MATCH_NAMES: usize = 50;

/// Earliest accepted date-time (due dates, filter bounds, reminder times): 1000-01-01T00:00:00Z.
/// Every date, and everything derived from it (a reminder up to a year earlier, the local
/// wall-clock time in any zone), keeps a positive four-digit year, so it formats and parses as
/// RFC 3339 and sorts the same as text (SQLite) and as a timestamp (PostgreSQL).
pub const EARLIEST_DATE: DateTime<Utc> = match DateTime::from_timestamp(-30_610_224_000, 0) {
    Some(t) => t,
    None => panic!("BUG: 1000-01-01 is a valid timestamp"),
};

/// Latest accepted date-time: any instant of 9000-12-31 (UTC), i.e. before 9001-01-01T00:00:00Z.
/// A thousand years short of the four-digit limit of RFC 3339 and of the `rrule` crate (year
/// 10,000), so a recurring task's successors, reminders shifted with them and the expansion of
/// a rule never reach a date the server cannot format, parse back from a cursor, or sort; a
/// successor that would land after it ends the series instead.
pub const LATEST_DATE: DateTime<Utc> = match DateTime::from_timestamp(221_876_927_999, 999_999_999)
{
    Some(t) => t,
    None => panic!("BUG: 9000-12-31T23:59:59 is a valid timestamp"),
};

/// Checks that `value` contains no NUL character (U+0000). PostgreSQL cannot store one in a
/// text column or take one as a text parameter, and SQLite would store it and truncate it in
/// C strings; so no text input may contain one, on either database. The error names `field`.
pub fn no_nul(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{field} must not contain a NUL character"))
    } else {
        Ok(())
    }
}

/// Checks that `value` lies in [`EARLIEST_DATE`]..=[`LATEST_DATE`]. The error names `field` and
/// the range.
pub fn date_in_range(field: &str, value: DateTime<Utc>) -> Result<(), String> {
    if (EARLIEST_DATE..=LATEST_DATE).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field} must be between 1000-01-01T00:00:00Z and 9000-12-31T23:59:59Z, not {}",
            value.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ))
    }
}

/// Checks that `value` has no digits below the microsecond: timestamps are stored, compared and
/// carried in cursors to the microsecond (PostgreSQL's precision, and SQLite's as stored here),
/// so a finer input could only be truncated silently, and a bound of `…00.5000001Z` would
/// behave like `…00.5Z`. Filter bounds are checked with it (date-times that are stored are cut
/// to the microsecond instead, see [`crate::to_db_precision`]). The error names `field` and the
/// value.
pub fn whole_microseconds(field: &str, value: DateTime<Utc>) -> Result<(), String> {
    use chrono::Timelike;
    if value.nanosecond().is_multiple_of(1_000) {
        Ok(())
    } else {
        Err(format!(
            "{field} has digits below the microsecond ({}); date-times are stored to the \
             microsecond, so give at most 6 fractional digits",
            value.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        ))
    }
}

/// Checks that `value` is not blank, has no NUL and is at most `max` characters; returns the
/// trimmed value.
/// The error is a sentence naming `field`.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, String> {
    no_nul(field, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(format!(
            "{field} is {chars} characters long; the limit is {max}"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks that `value` is at most `max` characters (it may be empty) and has no NUL.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, String> {
    no_nul(field, value)?;
    let chars = value.chars().count();
    if chars > max {
        return Err(format!(
            "{field} is {chars} characters long; the limit is {max}"
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_rejected_with_the_field_name() {
        let err = required_text("title", "   ", 10).unwrap_err();
        assert_eq!(err, "title must not be empty");
    }

    #[test]
    fn over_long_text_is_rejected_with_the_limit() {
        let err = required_text("title", &"x".repeat(11), 10).unwrap_err();
        assert!(err.contains("title") && err.contains("10"), "{err}");
        assert!(optional_text("description", &"é".repeat(11), 10).is_err());
    }

    #[test]
    fn text_within_limits_is_trimmed() {
        assert_eq!(
            required_text("title", "  Buy milk ", 10).unwrap(),
            "Buy milk"
        );
        assert_eq!(optional_text("d", "", 10).unwrap(), "");
    }

    #[test]
    fn text_with_a_nul_character_is_rejected_naming_the_field() {
        assert_eq!(
            required_text("input.title", "a\0b", 10).unwrap_err(),
            "input.title must not contain a NUL character"
        );
        assert_eq!(
            optional_text("input.description", "\0", 10).unwrap_err(),
            "input.description must not contain a NUL character"
        );
        assert!(no_nul("search", "no nul here, only \u{1} and \u{7f}").is_ok());
    }

    #[test]
    fn the_date_range_is_1000_01_01_to_the_end_of_9000_12_31() {
        use chrono::TimeZone;
        let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
        assert_eq!(EARLIEST_DATE, at(1000, 1, 1, 0, 0, 0));
        assert_eq!(
            LATEST_DATE + chrono::Duration::nanoseconds(1),
            at(9001, 1, 1, 0, 0, 0)
        );
        assert!(date_in_range("input.dueAt", at(1000, 1, 1, 0, 0, 0)).is_ok());
        assert!(date_in_range("input.dueAt", at(9000, 12, 31, 23, 59, 59)).is_ok());
        let late = date_in_range("input.dueAt", at(9001, 1, 1, 0, 0, 0)).unwrap_err();
        assert!(late.starts_with("input.dueAt must be between"), "{late}");
        assert!(date_in_range("filter.dueAfter", at(999, 12, 31, 23, 59, 59)).is_err());
    }

    #[test]
    fn date_times_finer_than_a_microsecond_are_rejected_naming_the_field() {
        let at = |nanos| DateTime::from_timestamp(1_800_000_000, nanos).unwrap();
        for nanos in [0, 500_000_000, 500_001_000, 999_999_000] {
            assert!(
                whole_microseconds("filter.dueAfter", at(nanos)).is_ok(),
                "{nanos}"
            );
        }
        for nanos in [1, 500_000_100, 999_999_999] {
            let err = whole_microseconds("filter.or[1].dueBefore", at(nanos)).unwrap_err();
            assert!(
                err.starts_with("filter.or[1].dueBefore has digits below the microsecond"),
                "{err}"
            );
        }
        let err = whole_microseconds("input.dueAt", at(500_000_100)).unwrap_err();
        assert!(err.contains("2027-01-15T08:00:00.500000100Z"), "{err}");
    }
}
