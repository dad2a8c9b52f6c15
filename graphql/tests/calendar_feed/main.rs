//! Calendar feeds (issue 21), on SQLite and PostgreSQL:
//!
//! - `api`: `createCalendarFeed`, `calendarFeeds` and `revokeCalendarFeed` through
//!   `schema.execute`: the URL only at creation, bad input naming each field with nothing
//!   written, another user's feed indistinguishable from a missing one, the per-user cap, and
//!   an `Idempotency-Key` that never stores the secret;
//! - `route`: `GET /calendar/<secret>.ics` on the real server: 200 with its headers, 304 by
//!   `If-None-Match` and by `If-Modified-Since`, a new ETag and `Last-Modified` after a change,
//!   the same 404 for a wrong, malformed and revoked secret, 429 with `Retry-After` per
//!   address and per feed, the filter and what a feed leaves out;
//! - `interop`: a served feed checked by independent code, `scripts/interop/ical_check.py`
//!   (the `icalendar` package parses it, dateutil reads its `VTIMEZONE`s and expands its
//!   `RRULE`s, zoneinfo over tzdata is the reference for offsets), against what the API says
//!   of each task, including `Recurrence.upcoming`. python3 with icalendar 6.3.2,
//!   python-dateutil 2.9.0.post0 and tzdata 2025.2 must be installed: scripts/test installs
//!   them (scripts/lib/python.sh).
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod api;
mod interop;
mod route;

use std::time::Duration;

use graphql::config::ServerConfig;
use serde_json::{Value, json};
use support::TestDb;

const SECRET: &str = "a-calendar-feed-test-secret-long-enough";
const ALICE: &str = "alice";
const BOB: &str = "bob";

const CREATE_FEED: &str = "mutation($name: String!, $filter: TaskFilter) { \
    createCalendarFeed(name: $name, filter: $filter) { id name url createdAt } }";
const CREATE_TASK: &str =
    "mutation($input: CreateTaskInput!) { createTask(input: $input) { id dueAt version } }";

/// The real gateway on a test database, with a client; rate limits off unless configured.
struct FeedServer {
    base: String,
    client: reqwest::Client,
    app: graphql::app::RunningApp,
}

impl FeedServer {
    async fn start(t: &TestDb) -> FeedServer {
        FeedServer::start_with(t, |_| {}).await
    }

    async fn start_with(t: &TestDb, configure: impl FnOnce(&mut ServerConfig)) -> FeedServer {
        let mut config = ServerConfig {
            database_url: t.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            calendar_feed_rate_per_address: 0,
            calendar_feed_rate_per_feed: 0,
            ..ServerConfig::default()
        };
        configure(&mut config);
        let app = support::start_app(config).await;
        FeedServer {
            base: format!("http://{}", app.addr),
            client: reqwest::Client::new(),
            app,
        }
    }

    async fn stop(self) {
        self.app.stop().await.unwrap();
    }

    fn token(user: &str) -> String {
        graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token(user, Duration::from_secs(600))
            .unwrap()
    }

    /// POST /graphql as `user`; the response's headers and JSON body.
    async fn graphql_raw(
        &self,
        user: &str,
        query: &str,
        variables: Value,
    ) -> (reqwest::header::HeaderMap, Value) {
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(FeedServer::token(user))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        (headers, response.json().await.unwrap())
    }

    /// POST /graphql as `user`, asserting success; returns `data`.
    async fn gql(&self, user: &str, query: &str, variables: Value) -> Value {
        let (_, body) = self.graphql_raw(user, query, variables).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    async fn create_task(&self, user: &str, input: Value) -> Value {
        self.gql(user, CREATE_TASK, json!({ "input": input })).await["createTask"].clone()
    }

    /// Creates a feed; returns its id and the path of its URL (`/calendar/<secret>.ics`).
    async fn create_feed(&self, user: &str, name: &str, filter: Value) -> (String, String) {
        let data = self
            .gql(user, CREATE_FEED, json!({ "name": name, "filter": filter }))
            .await;
        let feed = &data["createCalendarFeed"];
        let url = feed["url"].as_str().unwrap();
        let path = url.strip_prefix(&self.base).unwrap_or_else(|| {
            panic!(
                "{url} does not start with the server's origin {}",
                self.base
            )
        });
        (feed["id"].as_str().unwrap().to_owned(), path.to_owned())
    }

    /// GET `path` with `headers`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// GET `path`, asserting 200; the body.
    async fn feed_text(&self, path: &str) -> String {
        let response = self.get(path, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    }
}

/// The iCalendar text with its folded lines joined (RFC 5545 §3.1).
fn unfolded(text: &str) -> String {
    text.replace("\r\n ", "")
}

/// The UIDs of a feed's VTODOs, in order.
fn uids(text: &str) -> Vec<String> {
    unfolded(text)
        .split("\r\n")
        .filter_map(|line| line.strip_prefix("UID:"))
        .map(str::to_owned)
        .collect()
}

fn uid(task: &Value) -> String {
    format!("{}@taskstream", task["id"].as_str().unwrap())
}
