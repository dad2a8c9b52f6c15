//! The error contract: every BAD_USER_INPUT names the input path it concerns in
//! `extensions.field`, whether our validation or the engine's type checks refused it.
#![allow(clippy::unwrap_used)]

mod support;

on_both_databases!(
    bad_input_errors_carry_the_input_path_in_extensions_field,
    |t| {
        let app = support::TestApp::on(t);
        let due = "2030-01-01T09:00:00Z";
        for (query, field) in [
        (
            r#"mutation { createTask(input: { title: "  " }) { id } }"#.to_owned(),
            "input.title",
        ),
        (
            format!(
                r#"mutation {{ createTask(input: {{ title: "t", dueAt: "{due}", recurrence: {{ rule: "FREQ=SOMETIMES" }} }}) {{ id }} }}"#
            ),
            "input.recurrence.rule",
        ),
        (
            format!(
                r#"mutation {{ createTask(input: {{ title: "t", dueAt: "{due}", recurrence: {{ rule: "FREQ=DAILY", timezone: "Mars/Olympus" }} }}) {{ id }} }}"#
            ),
            "input.recurrence.timezone",
        ),
        (
            r#"mutation { createTask(input: { title: "t", tags: ["ok", ""] }) { id } }"#.to_owned(),
            "input.tags[1]",
        ),
        (
            r#"mutation { updateSettings(input: { webhookUrl: "ftp://x" }) { id } }"#.to_owned(),
            "input.webhookUrl",
        ),
        (
            r#"{ tasks(filter: { or: [{ completed: true }, { dueBefore: "0001-01-01T00:00:00Z" }] }) { totalCount } }"#.to_owned(),
            "filter.or[1].dueBefore",
        ),
        (
            r#"{ tasks(sort: [{ field: RELEVANCE }]) { totalCount } }"#.to_owned(),
            "sort[0]",
        ),
        (r#"{ tasks(first: 0) { totalCount } }"#.to_owned(), "first"),
        (r#"{ tasks(after: "nonsense") { totalCount } }"#.to_owned(), "after"),
        // The engine's own type check: an enum value that does not exist.
        (
            r#"mutation { createTask(input: { title: "t", priority: WHENEVER }) { id } }"#.to_owned(),
            "input.priority",
        ),
    ] {
        let (code, got) = app.error_field("alice", &query).await;
        assert_eq!(code, "BAD_USER_INPUT", "{query}");
        assert_eq!(got.as_deref(), Some(field), "{query}");
    }
        assert_eq!(app.count("tasks").await, 0, "nothing was written");
    }
);
