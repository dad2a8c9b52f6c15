//! `consumer_members`: the live instances of each consumer on its topic, renewed by their
//! heartbeats (`stream::consumer::leases`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consumer_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub consumer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
    /// The instance's id (host, process id and a random suffix unless configured).
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance: String,
    /// When the membership lapses unless renewed: milliseconds since the Unix epoch by the
    /// database's clock.
    pub expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
