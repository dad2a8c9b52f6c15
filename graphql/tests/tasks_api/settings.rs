//! Recurrence previews in the task's zone, and user settings (validation, the webhook
//! secret).

use super::*;

on_both_databases!(recurrence_previews_upcoming_dates_in_the_tasks_zone, |t| {
    let app = TestApp::on(t);
    let task = app
        .create_task(
            ALICE,
            json!({
                "title": "Gym", "dueAt": "2030-03-25T08:00:00Z",
                "recurrence": { "rule": "FREQ=WEEKLY;BYDAY=MO,WE", "timezone": "Europe/London" }
            }),
        )
        .await;
    let data = app
        .ok(
            ALICE,
            "query($id: ID!) { task(id: $id) { recurrence { upcoming(count: 3) } } }",
            json!({ "id": task["id"] }),
        )
        .await;
    // 2030-03-25 is a Monday; 08:00 UTC is 08:00 GMT there. Summer time starts on 2030-03-31.
    let upcoming = data["task"]["recurrence"]["upcoming"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(upcoming.len(), 3);
    assert_eq!(upcoming[0], "2030-03-27T08:00:00+00:00");
    assert_eq!(
        upcoming[1], "2030-04-01T07:00:00+00:00",
        "08:00 GMT wall clock becomes 07:00 UTC in summer time"
    );
    let (code, message) = app
        .err(
            ALICE,
            "query($id: ID!) { task(id: $id) { recurrence { upcoming(count: 51) } } }",
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("count"), "{message}");
});

on_both_databases!(recurrence_timezone_defaults_to_the_users_setting, |t| {
    let app = TestApp::on(t);
    app.ok(
        ALICE,
        "mutation { updateSettings(input: { timezone: \"America/New_York\" }) { timezone } }",
        json!({}),
    )
    .await;
    let task = app
        .create_task(ALICE, json!({ "title": "Standup", "dueAt": "2030-01-01T14:00:00Z", "recurrence": { "rule": "FREQ=DAILY", "anchor": "COMPLETION" } }))
        .await;
    assert_eq!(
        task["recurrence"],
        json!({ "rule": "FREQ=DAILY", "timezone": "America/New_York", "anchor": "COMPLETION" })
    );
});

on_both_databases!(
    settings_are_validated_and_the_secret_is_never_returned,
    |t| {
        let app = TestApp::on(t);
        let me = app
            .ok(ALICE, "{ me { id timezone webhookUrl } }", json!({}))
            .await;
        assert_eq!(
            me["me"],
            json!({ "id": "alice", "timezone": "UTC", "webhookUrl": null })
        );
        let updated = app
        .ok(ALICE, "mutation($i: SettingsInput!) { updateSettings(input: $i) { timezone webhookUrl } }",
            json!({ "i": { "timezone": "Pacific/Auckland", "webhookUrl": "https://hooks.example.com/t", "webhookSecret": "0123456789abcdef" } }))
        .await;
        assert_eq!(
            updated["updateSettings"],
            json!({ "timezone": "Pacific/Auckland", "webhookUrl": "https://hooks.example.com/t" })
        );
        for (input, field) in [
            (json!({ "timezone": "Atlantis/Capital" }), "input.timezone"),
            (json!({ "timezone": null }), "input.timezone"),
            (
                json!({ "webhookUrl": "ftp://example.com/x" }),
                "input.webhookUrl",
            ),
            // The SSRF guard: private, loopback and link-local targets are refused.
            (
                json!({ "webhookUrl": "http://127.0.0.1:9000/hook" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://169.254.169.254/latest/meta-data" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://localhost/hook" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "http://[fd00::1]/hook" }),
                "input.webhookUrl",
            ),
            (json!({ "webhookSecret": "short" }), "input.webhookSecret"),
        ] {
            let (code, message) = app
                .err(
                    ALICE,
                    "mutation($i: SettingsInput!) { updateSettings(input: $i) { id } }",
                    json!({ "i": input }),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT");
            assert!(message.contains(field), "{message}");
        }
        let me = app.ok(ALICE, "{ me { timezone } }", json!({})).await;
        assert_eq!(me["me"]["timezone"], "Pacific/Auckland");
    }
);
