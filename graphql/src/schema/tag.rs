//! `Tag`, the `tags` query and the tag mutations.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, MaybeUndefined, Object, Result};
use entities::tag;

use super::loaders::{TagTaskCountLoader, to_gql};
use super::{change_context, db, now, parse_id, viewer};
use crate::service::tag as service;

/// A label; names are case-insensitive and unique per user.
pub struct Tag(pub tag::Model);

#[Object]
impl Tag {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Hex colour such as #1e90ff.
    async fn color(&self) -> Option<&str> {
        self.0.color.as_deref()
    }

    /// How many of the owner's tasks carry this tag.
    async fn task_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let loader = ctx.data_unchecked::<DataLoader<TagTaskCountLoader>>();
        let n = loader
            .load_one(self.0.id)
            .await
            .map_err(to_gql)?
            .unwrap_or(0);
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

#[derive(Default)]
pub struct TagQuery;

#[Object]
impl TagQuery {
    /// The caller's tags, ordered by name.
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        let user = viewer(ctx)?;
        Ok(service::list_tags(db(ctx), &user.id)
            .await?
            .into_iter()
            .map(Tag)
            .collect())
    }
}

#[derive(Default)]
pub struct TagMutation;

#[Object]
impl TagMutation {
    /// CONFLICT when a tag with that name (any case) exists.
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        name: String,
        color: Option<String>,
    ) -> Result<Tag> {
        let user = viewer(ctx)?;
        Ok(Tag(service::create_tag(
            db(ctx),
            &user.id,
            &name,
            color.as_deref(),
            now(ctx),
        )
        .await?))
    }

    /// Renames and/or recolours (`color: null` clears it).
    async fn update_tag(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
        color: MaybeUndefined<String>,
    ) -> Result<Tag> {
        let cx = change_context(ctx)?;
        let id = parse_id("tag", &id)?;
        let color = match &color {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(c) => Some(Some(c.as_str())),
        };
        Ok(Tag(service::update_tag(
            db(ctx),
            &cx,
            id,
            name.as_deref(),
            color,
        )
        .await?))
    }

    /// Deletes the tag and removes it from every task.
    async fn delete_tag(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let cx = change_context(ctx)?;
        let uuid = parse_id("tag", &id)?;
        service::delete_tag(db(ctx), &cx, uuid).await?;
        Ok(id)
    }
}
