//! `CalendarFeed`, the `calendarFeeds` query and the feed mutations (`createCalendarFeed`,
//! `revokeCalendarFeed`). The feed itself is served over HTTP by [`crate::calendar`].

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entities::calendar_feed;

use super::task_list::TaskFilter;
use super::{change_context, db, parse_id, viewer};
use crate::service::calendar_feed as service;

/// Where feed URLs point: `PUBLIC_URL` (e.g. `https://tasks.example.com`), when set.
#[derive(Clone, Debug, Default)]
pub struct PublicUrl(pub Option<String>);

/// The scheme and host a request was sent to (`http://127.0.0.1:8080`), when the transport
/// knows them; feed URLs use it when `PUBLIC_URL` is not set.
#[derive(Clone, Debug)]
pub struct RequestOrigin(pub String);

/// The path of a feed with `secret`, under the gateway's root.
pub fn feed_path(secret: &str) -> String {
    format!("/calendar/{secret}.ics")
}

/// An iCalendar feed of the caller's open tasks that have a due date.
pub struct CalendarFeed {
    feed: calendar_feed::Model,
    url: Option<String>,
}

#[Object]
impl CalendarFeed {
    async fn id(&self) -> ID {
        ID(self.feed.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.feed.name
    }

    /// The address to subscribe to (`.../calendar/<secret>.ics`); whoever has it can read the
    /// feed, without signing in. Only `createCalendarFeed` returns it: the server keeps just a
    /// hash of the secret, so `calendarFeeds` lists every feed with `url: null`. A lost URL
    /// cannot be shown again: revoke the feed and create a new one.
    async fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.feed.created_at
    }
}

#[derive(Default)]
pub struct CalendarFeedQuery;

#[Object]
impl CalendarFeedQuery {
    /// The caller's calendar feeds, oldest first, without their URLs (see `CalendarFeed.url`).
    async fn calendar_feeds(&self, ctx: &Context<'_>) -> Result<Vec<CalendarFeed>> {
        let user = viewer(ctx)?;
        Ok(service::list_feeds(db(ctx), &user.id)
            .await?
            .into_iter()
            .map(|feed| CalendarFeed { feed, url: None })
            .collect())
    }
}

#[derive(Default)]
pub struct CalendarFeedMutation;

#[Object]
impl CalendarFeedMutation {
    /// Creates a feed of the caller's open tasks that have a due date, narrowed by `filter`
    /// (the `tasks` filter, checked the same way; `overdue` is judged when the feed is read).
    /// The response's `url` is the only time the secret address is shown. `name`: 1 to 100
    /// characters. At most 20 feeds per user (CONFLICT beyond).
    async fn create_calendar_feed(
        &self,
        ctx: &Context<'_>,
        name: String,
        filter: Option<TaskFilter>,
    ) -> Result<CalendarFeed> {
        let cx = change_context(ctx)?;
        let filter = filter.map(Into::into);
        let created = service::create_feed(db(ctx), &cx, &name, filter.as_ref()).await?;
        // The response holds a secret: no cache keeps it, nor does an `Idempotency-Key`.
        ctx.insert_http_header("cache-control", "no-store");
        let path = feed_path(&created.secret);
        let base = ctx
            .data_opt::<PublicUrl>()
            .and_then(|p| p.0.clone())
            .or_else(|| ctx.data_opt::<RequestOrigin>().map(|o| o.0.clone()))
            .unwrap_or_default();
        Ok(CalendarFeed {
            feed: created.feed,
            url: Some(format!("{base}{path}")),
        })
    }

    /// Revokes one of the caller's feeds: its URL stops working at once. Returns its id.
    async fn revoke_calendar_feed(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let user = viewer(ctx)?;
        let uuid = parse_id("calendar feed", &id)?;
        service::revoke_feed(db(ctx), &user.id, uuid).await?;
        Ok(id)
    }
}
