//! `tags`: per-user labels. Names keep the user's spelling; `name_key` (lower case) is unique
//! per owner, which makes names case-insensitive.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: String,
    pub name: String,
    /// `name` folded to lower case; `UNIQUE (owner_id, name_key)` is `uq_tags_owner_name`.
    pub name_key: String,
    pub color: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::task_tag::Entity")]
    TaskTag,
}

impl Related<super::task_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaskTag.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The case-folded key under which a tag name is unique.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}
