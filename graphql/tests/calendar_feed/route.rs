//! `GET /calendar/<secret>.ics` on the real server.

use crate::on_both_databases;
use serde_json::json;

use super::support::wait_until;
use super::{ALICE, BOB, CREATE_FEED, FeedServer, uid, uids, unfolded};

const NOT_FOUND_BODY: &str = graphql::calendar::route::NOT_FOUND_BODY;

on_both_databases!(
    a_feed_is_served_with_validators_and_revalidated_with_304,
    |t| {
        // Arrange: one task in the feed.
        let server = FeedServer::start(t).await;
        let task = server
            .create_task(
                ALICE,
                json!({ "title": "Pay rent", "dueAt": "2030-03-01T09:00:00Z" }),
            )
            .await;
        let (_, path) = server.create_feed(ALICE, "Bills", json!(null)).await;

        // Act
        let first = server.get(&path, &[]).await;

        // Assert: 200, the calendar type, a strong ETag and Last-Modified, private revalidation.
        assert_eq!(first.status(), 200);
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header(&first, "content-type").as_deref(),
            Some("text/calendar; charset=utf-8")
        );
        assert_eq!(
            header(&first, "cache-control").as_deref(),
            Some("private, no-cache")
        );
        let etag = header(&first, "etag").unwrap();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let modified = header(&first, "last-modified").unwrap();
        let body = first.text().await.unwrap();
        assert_eq!(uids(&body), [uid(&task)]);
        let body = unfolded(&body);
        assert!(body.contains("\r\nSUMMARY:Pay rent\r\n"), "{body}");
        assert!(body.contains("\r\nDUE:20300301T090000Z\r\n"), "{body}");

        // The same ETag, or the Last-Modified date, answers 304 without a body, with the same
        // validators; another ETag does not.
        for headers in [
            [("if-none-match", etag.as_str())],
            [("if-modified-since", modified.as_str())],
        ] {
            let response = server.get(&path, &headers).await;
            assert_eq!(response.status(), 304, "{headers:?}");
            assert_eq!(header(&response, "etag").as_deref(), Some(etag.as_str()));
            assert_eq!(
                header(&response, "last-modified").as_deref(),
                Some(modified.as_str())
            );
            assert!(response.text().await.unwrap().is_empty());
        }
        assert_eq!(
            server
                .get(&path, &[("if-none-match", "\"other\", W/\"x\"")])
                .await
                .status(),
            200
        );
        let weak = format!("W/{etag}");
        assert_eq!(
            server
                .get(&path, &[("if-none-match", weak.as_str())])
                .await
                .status(),
            304
        );
        // If-None-Match wins over a matching If-Modified-Since.
        assert_eq!(
            server
                .get(
                    &path,
                    &[
                        ("if-none-match", "\"stale\""),
                        ("if-modified-since", modified.as_str())
                    ]
                )
                .await
                .status(),
            200
        );

        // Act: the task changes, so the body does.
        server
        .gql(
            ALICE,
            "mutation($id: ID!) { updateTask(id: $id, input: { title: \"Pay the rent\" }) { id } }",
            json!({ "id": task["id"] }),
        )
        .await;
        let changed = server.get(&path, &[("if-none-match", etag.as_str())]).await;

        // Assert: a full answer with a new ETag and a later Last-Modified; the old date no longer
        // matches either.
        assert_eq!(changed.status(), 200);
        let new_etag = header(&changed, "etag").unwrap();
        let new_modified = header(&changed, "last-modified").unwrap();
        assert_ne!(new_etag, etag);
        let parse = |s: &str| chrono::DateTime::parse_from_rfc2822(s).unwrap();
        assert!(
            parse(&new_modified) > parse(&modified),
            "{modified} -> {new_modified}"
        );
        assert!(
            changed
                .text()
                .await
                .unwrap()
                .contains("SUMMARY:Pay the rent\r\n")
        );
        assert_eq!(
            server
                .get(&path, &[("if-modified-since", modified.as_str())])
                .await
                .status(),
            200
        );
        // A change within the second of the previous one is stamped a second later, and a
        // date later than the server's clock is ignored: the new date answers 304 once it has
        // passed.
        wait_until("the new Last-Modified answers 304", || async {
            server
                .get(&path, &[("if-modified-since", new_modified.as_str())])
                .await
                .status()
                == 304
        })
        .await;
        server.stop().await;
    }
);

on_both_databases!(a_wrong_malformed_or_revoked_secret_is_the_same_404, |t| {
    let server = FeedServer::start(t).await;
    let (id, path) = server.create_feed(ALICE, "Mine", json!(null)).await;
    let secret = path
        .trim_start_matches("/calendar/")
        .trim_end_matches(".ics")
        .to_owned();
    assert_eq!(server.get(&path, &[]).await.status(), 200);

    let mut wrong = secret.clone();
    wrong.replace_range(0..1, if secret.starts_with('A') { "B" } else { "A" });
    let paths = [
        format!("/calendar/{wrong}.ics"),
        "/calendar/nope.ics".to_owned(),
        format!("/calendar/{secret}"),
        format!("/calendar/{secret}.ICS"),
        format!("/calendar/{}.ics", "x".repeat(5000)),
    ];
    let mut bodies = Vec::new();
    for p in &paths {
        let response = server.get(p, &[]).await;
        assert_eq!(response.status(), 404, "{p}");
        bodies.push(response.text().await.unwrap());
    }

    // Revoked: the URL that worked is now the same 404.
    server
        .gql(
            ALICE,
            "mutation($id: ID!) { revokeCalendarFeed(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    let revoked = server.get(&path, &[]).await;
    assert_eq!(revoked.status(), 404);
    assert_eq!(
        revoked
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "text/plain; charset=utf-8"
    );
    bodies.push(revoked.text().await.unwrap());
    assert!(bodies.iter().all(|b| b == NOT_FOUND_BODY), "{bodies:?}");
    server.stop().await;
});

on_both_databases!(too_many_requests_get_429_with_retry_after, |t| {
    // Arrange: 3 a minute per address.
    let server = FeedServer::start_with(t, |config| {
        config.calendar_feed_rate_per_address = 3;
    })
    .await;
    let (_, path) = server.create_feed(ALICE, "Mine", json!(null)).await;

    // Act and assert: three requests from one address pass (a wrong secret counts too), the
    // fourth does not.
    let statuses = [
        server.get(&path, &[]).await.status().as_u16(),
        server
            .get("/calendar/unknown.ics", &[])
            .await
            .status()
            .as_u16(),
        server.get(&path, &[]).await.status().as_u16(),
    ];
    assert_eq!(statuses, [200, 404, 200]);
    let by_address = server.get(&path, &[]).await;
    assert_eq!(by_address.status(), 429);
    let retry: u64 = by_address
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    server.stop().await;
});

on_both_databases!(the_per_feed_limit_applies_to_each_feed, |t| {
    let server = FeedServer::start_with(t, |config| {
        config.calendar_feed_rate_per_feed = 1;
    })
    .await;
    let (_, first) = server.create_feed(ALICE, "One", json!(null)).await;
    let (_, second) = server.create_feed(ALICE, "Two", json!(null)).await;
    assert_eq!(server.get(&first, &[]).await.status(), 200);
    let limited = server.get(&first, &[]).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(server.get(&second, &[]).await.status(), 200);
    server.stop().await;
});

on_both_databases!(
    a_feed_lists_its_owners_open_tasks_with_a_due_date_that_match,
    |t| {
        // Arrange
        let server = FeedServer::start(t).await;
        let work = server
            .create_task(
                ALICE,
                json!({ "title": "Report", "dueAt": "2030-05-02T10:00:00Z", "tags": ["work"] }),
            )
            .await;
        let home = server
            .create_task(
                ALICE,
                json!({ "title": "Plants", "dueAt": "2030-05-01T10:00:00Z", "tags": ["home"] }),
            )
            .await;
        server
            .create_task(ALICE, json!({ "title": "Someday", "tags": ["work"] }))
            .await;
        let done = server
            .create_task(
                ALICE,
                json!({ "title": "Done", "dueAt": "2030-04-01T10:00:00Z", "tags": ["work"] }),
            )
            .await;
        server
            .gql(
                ALICE,
                "mutation($id: ID!) { completeTask(id: $id) { id } }",
                json!({ "id": done["id"] }),
            )
            .await;
        server
            .create_task(
                BOB,
                json!({ "title": "Bob's", "dueAt": "2030-04-01T10:00:00Z", "tags": ["work"] }),
            )
            .await;
        let (_, everything) = server.create_feed(ALICE, "All", json!(null)).await;
        let (_, only_work) = server
            .create_feed(ALICE, "Work", json!({ "tags": { "any": ["work"] } }))
            .await;
        let (_, not_home) = server
            .create_feed(ALICE, "Not home", json!({ "tags": { "none": ["home"] } }))
            .await;

        // Act and assert: due order; completed, undated and other users' tasks left out.
        assert_eq!(
            uids(&server.feed_text(&everything).await),
            [uid(&home), uid(&work)]
        );
        assert_eq!(uids(&server.feed_text(&only_work).await), [uid(&work)]);
        assert_eq!(uids(&server.feed_text(&not_home).await), [uid(&work)]);

        // A tag the filter excludes that is deleted later excludes nothing.
        let tags = server.gql(ALICE, "{ tags { id name } }", json!({})).await;
        let home_tag = tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "home")
            .unwrap()["id"]
            .clone();
        server
            .gql(
                ALICE,
                "mutation($id: ID!) { deleteTag(id: $id) }",
                json!({ "id": home_tag }),
            )
            .await;
        assert_eq!(
            uids(&server.feed_text(&not_home).await),
            [uid(&home), uid(&work)]
        );
        server.stop().await;
    }
);

on_both_databases!(a_feed_url_over_http_starts_with_the_requests_origin, |t| {
    let server = FeedServer::start(t).await;
    let (headers, body) = server
        .graphql_raw(ALICE, CREATE_FEED, json!({ "name": "Mine" }))
        .await;
    let url = body["data"]["createCalendarFeed"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/calendar/", server.base)),
        "{url}"
    );
    assert!(url.ends_with(".ics"));
    assert_eq!(headers["cache-control"], "no-store");
    server.stop().await;

    // With PUBLIC_URL, that instead.
    let server = FeedServer::start_with(t, |config| {
        config.public_url = Some("https://tasks.example.com".to_owned());
    })
    .await;
    let (_, body) = server
        .graphql_raw(ALICE, CREATE_FEED, json!({ "name": "Mine" }))
        .await;
    let url = body["data"]["createCalendarFeed"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://tasks.example.com/calendar/"),
        "{url}"
    );
    server.stop().await;
});

#[tokio::test]
async fn no_log_line_or_span_holds_a_feeds_secret() {
    // Arrange: every event and closed span at DEBUG, captured on this thread (the
    // current-thread runtime runs the server here too).
    let logs = super::support::CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let t = super::support::TestDb::migrated(super::support::Backend::Sqlite)
        .await
        .unwrap();
    let server = FeedServer::start(&t).await;
    let (_, path) = server.create_feed(ALICE, "Mine", json!(null)).await;
    let secret = path
        .trim_start_matches("/calendar/")
        .trim_end_matches(".ics")
        .to_owned();

    // Act: the feed, and a near miss.
    assert_eq!(server.get(&path, &[]).await.status(), 200);
    let wrong = format!("/calendar/{}x.ics", &secret[..42]);
    assert_eq!(server.get(&wrong, &[]).await.status(), 404);
    server.stop().await;
    t.cleanup().await;

    // Assert: no secret, and the requests were logged with the path redacted.
    let text = logs.text();
    assert!(
        !text.contains(&secret[..20]),
        "a secret was logged:\n{text}"
    );
    assert!(
        text.contains(graphql::calendar::REDACTED_PATH),
        "the feed requests were not logged:\n{text}"
    );
}
