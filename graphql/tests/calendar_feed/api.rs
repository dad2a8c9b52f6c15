//! The feed mutations and query through `schema.execute`.

use crate::on_both_databases;
use sea_orm::EntityTrait as _;
use serde_json::{Value, json};

use super::support::TestApp;
use super::{ALICE, BOB, CREATE_FEED};

const LIST: &str = "{ calendarFeeds { id name url createdAt } }";
const REVOKE: &str = "mutation($id: ID!) { revokeCalendarFeed(id: $id) }";

/// The first error's code and field.
async fn error_of(app: &TestApp, user: &str, query: &str, variables: Value) -> (String, String) {
    let response = app.exec(user, query, variables).await;
    let error = response
        .errors
        .first()
        .unwrap_or_else(|| panic!("no error for {query}: {:?}", response.data));
    let ext = error.extensions.as_ref().unwrap();
    let text = |key: &str| {
        ext.get(key)
            .map(|v| v.clone().into_json().unwrap().as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    (text("code"), text("field"))
}

on_both_databases!(a_feed_shows_its_url_once_and_is_listed_without_it, |t| {
    // Arrange
    let app = TestApp::on(t);

    // Act
    let created = app
        .ok(
            ALICE,
            CREATE_FEED,
            json!({ "name": "  Work  ", "filter": { "tags": { "any": ["work"] } } }),
        )
        .await["createCalendarFeed"]
        .clone();
    let listed = app.ok(ALICE, LIST, json!({})).await;

    // Assert: the name trimmed; outside HTTP there is no origin, so the URL is a path.
    assert_eq!(created["name"], "Work");
    let url = created["url"].as_str().unwrap();
    let secret = url
        .strip_prefix("/calendar/")
        .and_then(|rest| rest.strip_suffix(".ics"))
        .unwrap_or_else(|| panic!("{url}"));
    assert_eq!(secret.len(), 43);
    assert_eq!(
        listed["calendarFeeds"],
        json!([{ "id": created["id"], "name": "Work", "url": null, "createdAt": created["createdAt"] }])
    );
    // Only the secret's SHA-256 is stored, with the filter as JSON.
    let row = entities::calendar_feed::Entity::find()
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.secret_hash,
        graphql::service::calendar_feed::secret_hash(secret)
    );
    assert!(!format!("{row:?}").contains(secret));
    assert_eq!(row.filter.as_deref(), Some(r#"{"tags":{"any":["work"]}}"#));
});

on_both_databases!(
    revoking_deletes_the_feed_and_another_users_id_is_not_found,
    |t| {
        let app = TestApp::on(t);
        let id = app.ok(ALICE, CREATE_FEED, json!({ "name": "Mine" })).await["createCalendarFeed"]
            ["id"]
            .clone();
        app.ok(BOB, CREATE_FEED, json!({ "name": "Bob's" })).await;

        // Bob can neither see nor revoke Alice's feed; his refusal is the one for a missing id.
        let bobs = app.ok(BOB, LIST, json!({})).await;
        assert_eq!(bobs["calendarFeeds"].as_array().unwrap().len(), 1);
        let stranger = error_of(&app, BOB, REVOKE, json!({ "id": id })).await;
        let missing = error_of(
            &app,
            BOB,
            REVOKE,
            json!({ "id": "01900000-0000-7000-8000-000000000000" }),
        )
        .await;
        let malformed = error_of(&app, BOB, REVOKE, json!({ "id": "nope" })).await;
        assert_eq!(stranger.0, "NOT_FOUND");
        assert_eq!(stranger, missing);
        assert_eq!(stranger, malformed);
        assert_eq!(app.count("calendar_feeds").await, 2);

        // Alice revokes hers: it is gone, and revoking again is NOT_FOUND.
        let revoked = app.ok(ALICE, REVOKE, json!({ "id": id })).await;
        assert_eq!(revoked["revokeCalendarFeed"], id);
        assert_eq!(
            app.ok(ALICE, LIST, json!({})).await["calendarFeeds"],
            json!([])
        );
        assert_eq!(
            error_of(&app, ALICE, REVOKE, json!({ "id": id })).await.0,
            "NOT_FOUND"
        );
        assert_eq!(app.count("calendar_feeds").await, 1);
    }
);

on_both_databases!(bad_input_names_its_field_and_writes_nothing, |t| {
    let app = TestApp::on(t);
    app.ok(
        ALICE,
        "mutation { createTag(name: \"work\") { id } }",
        json!({}),
    )
    .await;
    let before = (app.count("calendar_feeds").await, app.count("users").await);
    let long = "x".repeat(101);
    let nested = (0..9).fold(
        json!({ "completed": false }),
        |inner, _| json!({ "not": inner }),
    );
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "name": "" }), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": long }), "name"),
        (json!({ "name": "a\u{0}b" }), "name"),
        (
            json!({ "name": "f", "filter": { "priority": [] } }),
            "filter.priority",
        ),
        (
            json!({ "name": "f", "filter": { "tags": { "none": ["nope"] } } }),
            "filter.tags.none",
        ),
        (
            json!({ "name": "f", "filter": { "tags": { "any": [] } } }),
            "filter.tags.any",
        ),
        (
            json!({ "name": "f", "filter": { "dueBefore": "2030-01-01T00:00:00.0000001Z" } }),
            "filter.dueBefore",
        ),
        (
            json!({ "name": "f", "filter": { "or": [{ "dueAfter": "0999-12-31T00:00:00Z" }] } }),
            "filter.or[0].dueAfter",
        ),
        (json!({ "name": "f", "filter": { "or": [] } }), "filter.or"),
        (
            json!({ "name": "f", "filter": nested }),
            "filter.not.not.not.not.not.not.not.not",
        ),
    ];
    for (variables, field) in cases {
        let (code, got) = error_of(&app, ALICE, CREATE_FEED, variables.clone()).await;
        assert_eq!(
            (code.as_str(), got.as_str()),
            ("BAD_USER_INPUT", field),
            "{variables}"
        );
    }
    // The same filter is valid for the task list: the feed checks it the same way.
    let (_, list_field) = error_of(
        &app,
        ALICE,
        "query($f: TaskFilter) { tasks(filter: $f) { totalCount } }",
        json!({ "f": { "tags": { "none": ["nope"] } } }),
    )
    .await;
    assert_eq!(list_field, "filter.tags.none");
    assert_eq!(
        (app.count("calendar_feeds").await, app.count("users").await),
        before
    );
});

on_both_databases!(a_user_has_at_most_twenty_feeds, |t| {
    let app = TestApp::on(t);
    for i in 0..20 {
        app.ok(ALICE, CREATE_FEED, json!({ "name": format!("f{i}") }))
            .await;
    }
    let (code, _) = error_of(&app, ALICE, CREATE_FEED, json!({ "name": "one more" })).await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(app.count("calendar_feeds").await, 20);
    // Other users are not affected.
    app.ok(BOB, CREATE_FEED, json!({ "name": "mine" })).await;
});

on_both_databases!(an_idempotency_key_never_stores_the_secret, |t| {
    let app = TestApp::on(t);
    let send = || async {
        let mut request = async_graphql::Request::new(CREATE_FEED).variables(
            async_graphql::Variables::from_json(json!({ "name": "Phone" })),
        );
        request.extensions.insert(
            graphql::idempotency::EXTENSION.to_owned(),
            async_graphql::Value::String("feed-key-1".into()),
        );
        let request = graphql::schema::prepare_request(
            request,
            &app.db,
            graphql::schema::RequestMeta {
                user: graphql::auth::AuthUser {
                    id: ALICE.to_owned(),
                },
                request_id: None,
            },
        );
        graphql::schema::execute(&app.schema, request).await
    };
    let first = send().await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(
        first
            .http_headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let url = first.data.into_json().unwrap()["createCalendarFeed"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = url
        .trim_start_matches("/calendar/")
        .trim_end_matches(".ics");

    // A retry runs nothing and says why it has no URL.
    let retry = send().await;
    assert_eq!(app.count("calendar_feeds").await, 1);
    assert_eq!(
        retry.errors[0].message,
        graphql::idempotency::SECRET_NOT_STORED
    );
    // No stored response holds the secret.
    let stored = entities::idempotency_key::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].response.as_deref().unwrap_or("").contains(secret));
});
