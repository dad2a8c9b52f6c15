//! Size limits on user input. Each is a decision: large enough for real use, small enough that
//! one request cannot make a row (or an index entry, or an event) unreasonably large.

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

/// Checks that `value` is not blank and at most `max` characters; returns the trimmed value.
/// The error is a sentence naming `field`.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, String> {
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

/// Checks that `value` is at most `max` characters (it may be empty).
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, String> {
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
}
