//! `calendar_feeds`: a user's iCalendar feed URLs. The URL's secret is never stored: only its
//! SHA-256 (`secret_hash`), by which a feed request finds its row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_feeds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: String,
    /// The user's name for the feed (what `calendarFeeds` lists).
    pub name: String,
    /// SHA-256 of the URL's secret, lower-case hex; unique (`uq_calendar_feeds_secret_hash`).
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// The `TaskFilter` that narrows the feed, as JSON; `None`: every open task with a due date.
    pub filter: Option<String>,
    pub created_at: DateTimeUtc,
    /// The strong ETag of the body served last (a hash of it), and when the body last changed:
    /// the feed's `Last-Modified`. Both `None` until the feed is first served.
    pub content_etag: Option<String>,
    pub content_changed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
