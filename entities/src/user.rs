//! `users`: one row per JWT subject, created on first write; holds per-user settings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The JWT `sub` claim, verbatim.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// IANA time zone name; the default zone for recurrence rules and the web app.
    pub timezone: String,
    pub webhook_url: Option<String>,
    /// Secret used to sign webhook bodies (HMAC-SHA256). Never returned by the API.
    pub webhook_secret: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
