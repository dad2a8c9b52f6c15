//! `updateSettings` is atomic: a change that fails, in validation or in the database, creates
//! no user row and changes nothing.

use chrono::Utc;
use graphql::service::user::{SettingsPatch, update_settings};
use sea_orm::DbBackend;

use super::*;

on_both_databases!(
    a_fresh_users_failed_update_settings_creates_no_user_row,
    |t| {
        // Arrange: each input has a valid part that would be written if the change were not
        // atomic.
        let app = TestApp::on(t);
        let failing = [
            (
                json!({ "timezone": "Europe/London", "webhookUrl": "http://127.0.0.1:9/hook" }),
                "input.webhookUrl",
            ),
            (
                json!({ "webhookUrl": "https://hooks.example.com/t", "timezone": "Atlantis/Capital" }),
                "input.timezone",
            ),
            (
                json!({ "timezone": "Europe/London", "webhookSecret": "short" }),
                "input.webhookSecret",
            ),
            (
                json!({ "webhookUrl": "https://hooks.example.com/t", "webhookSecret": "0123456789abcdef\u{0}" }),
                "input.webhookSecret",
            ),
        ];

        for (input, field) in failing {
            // Act
            let error = app.err(ALICE, UPDATE_SETTINGS, json!({ "i": input })).await;

            // Assert
            assert_bad_input(error, field);
            assert_eq!(app.count("users").await, 0, "no user row after {input}");
        }
        let me = app
            .ok(ALICE, "{ me { id timezone webhookUrl } }", json!({}))
            .await;
        assert_eq!(
            me["me"],
            json!({ "id": ALICE, "timezone": "UTC", "webhookUrl": null })
        );
    }
);

on_both_databases!(
    an_existing_users_failed_update_settings_changes_nothing,
    |t| {
        // Arrange
        let app = TestApp::on(t);
        let settings =
            json!({ "timezone": "Pacific/Auckland", "webhookUrl": "https://hooks.example.com/a" });
        app.ok(ALICE, UPDATE_SETTINGS, json!({ "i": settings }))
            .await;
        let before = app
            .ok(ALICE, "{ me { id timezone webhookUrl } }", json!({}))
            .await;

        // Act
        let error = app
            .err(
                ALICE,
                UPDATE_SETTINGS,
                json!({ "i": { "timezone": "Europe/London", "webhookUrl": "http://[::ffff:10.0.0.1]/x" } }),
            )
            .await;

        // Assert
        assert_bad_input(error, "input.webhookUrl");
        let after = app
            .ok(ALICE, "{ me { id timezone webhookUrl } }", json!({}))
            .await;
        assert_eq!(after, before);
        assert_eq!(app.count("users").await, 1);
    }
);

on_both_databases!(
    a_settings_change_the_database_refuses_leaves_no_user_row,
    |t| {
        // Arrange: an unvalidated patch with a time zone longer than the column (VARCHAR(64)),
        // which PostgreSQL refuses after the row was created in the same transaction. SQLite
        // does not enforce the length and stores it whole.
        let app = TestApp::on(t);
        let patch = SettingsPatch {
            timezone: Some("Z".repeat(65)),
            webhook_url: Some(Some("https://hooks.example.com/t".to_owned())),
            ..SettingsPatch::default()
        };

        // Act
        let result = update_settings(&app.db, ALICE, patch, Utc::now()).await;

        // Assert: all or nothing.
        let users = app.count("users").await;
        if app.db.get_database_backend() == DbBackend::Postgres {
            assert!(result.is_err(), "PostgreSQL enforces VARCHAR(64)");
        }
        match result {
            Ok(user) => {
                assert_eq!(users, 1);
                assert_eq!(user.timezone.len(), 65);
            }
            Err(_) => assert_eq!(users, 0, "the created row must be rolled back"),
        }
    }
);
