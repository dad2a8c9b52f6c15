//! Per-request batch loaders: every `Task.tags`, `Task.reminders` and `Tag.taskCount` on one
//! response is loaded with one query per relation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{reminder, tag};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::ApiError;
use crate::service;

/// Errors are shared between every field waiting on one batch.
pub type LoadError = Arc<ApiError>;

pub struct TaskTagsLoader(pub DatabaseConnection);
pub struct TaskRemindersLoader(pub DatabaseConnection);
pub struct TagTaskCountLoader(pub DatabaseConnection);

impl Loader<Uuid> for TaskTagsLoader {
    type Value = Vec<tag::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::tag::tags_of_tasks(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

impl Loader<Uuid> for TaskRemindersLoader {
    type Value = Vec<reminder::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::task::reminders_of_tasks(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

impl Loader<Uuid> for TagTaskCountLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::tag::task_counts(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Adds fresh loaders to `request` (fresh per request: nothing is cached across requests).
pub fn attach(request: async_graphql::Request, db: &DatabaseConnection) -> async_graphql::Request {
    request
        .data(DataLoader::new(TaskTagsLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(
            TaskRemindersLoader(db.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            TagTaskCountLoader(db.clone()),
            tokio::spawn,
        ))
}

/// Adds fresh loaders to a WebSocket connection's data. They do not cache, so a long-lived
/// connection still reads the current rows.
pub fn insert(data: &mut async_graphql::Data, db: &DatabaseConnection) {
    data.insert(DataLoader::new(TaskTagsLoader(db.clone()), tokio::spawn));
    data.insert(DataLoader::new(
        TaskRemindersLoader(db.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        TagTaskCountLoader(db.clone()),
        tokio::spawn,
    ));
}

/// Turns a shared loader error back into a GraphQL error.
pub fn to_gql(err: LoadError) -> async_graphql::Error {
    match Arc::try_unwrap(err) {
        Ok(e) => e.into(),
        Err(shared) => ApiError::internal(anyhow::anyhow!("{shared:?}")).into(),
    }
}
