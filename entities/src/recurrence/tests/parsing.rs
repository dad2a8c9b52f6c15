//! Tests of [`RecurrenceRule::parse`], [`parse_timezone`] and [`RecurrenceAnchor`]: what is
//! accepted, how it is normalised, and the plain-words message for what is refused.

use super::*;

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
        // The `rrule` crate parses the normalised text, and its COUNT and UNTIL are the ones
        // the series applies.
        let reparsed: RRule<Unvalidated> = first.rule().parse().expect("rrule parses it");
        assert_eq!(reparsed.get_count(), first.count, "{text}");
        assert_eq!(
            reparsed.get_until().map(|u| u.with_timezone(&Utc)),
            first.until,
            "{text}"
        );
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
    let error = RecurrenceRule::parse("FREQ=DAILY;INTERVAL=0", "UTC", RecurrenceAnchor::Schedule)
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
    assert!(invalid_message("RRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY").contains("single RRULE line"));
    assert!(
        invalid_message("RRULE:FREQ=DAILY\nRDATE:20260101T090000Z").contains("single RRULE line")
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
    // Every other hour, 8 times each: 12 hours of a calendar day, 96 times.
    rule(
        "FREQ=HOURLY;INTERVAL=2;BYMINUTE=0,7,15,22,30,37,45,52",
        "UTC",
    );
    // Every five hours lands on 5 hours of some days (0, 5, 10, 15, 20): 20 minutes each is 100.
    let message = invalid_message(&format!(
        "FREQ=HOURLY;INTERVAL=5;BYMINUTE={}",
        (0..20).map(|m| m.to_string()).collect::<Vec<_>>().join(",")
    ));
    assert!(message.contains("100 times a day"), "{message}");
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
