//! `consumer_leases`: which instance of a consumer holds each partition of its topic, and
//! until when (`stream::consumer::leases`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consumer_leases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub consumer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub partition: i32,
    /// The holding instance; `None` for a free partition.
    pub owner: Option<String>,
    /// When the lease lapses unless renewed: milliseconds since the Unix epoch by the
    /// database's clock. An expired lease is free to take whatever its owner says.
    pub expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
