//! The GraphQL schema, transport-free: built from injected dependencies and executed with
//! `schema.execute(request.data(user))` by the HTTP layer or by tests.
//!
//! One module per resource; their query and mutation roots are merged here.
//! - [`task`]: `Task`, `Recurrence`, `Reminder`, task queries and mutations;
//! - [`task_history`]: `TaskVersion`, `Task.history`'s connection and `deletedTasks`;
//! - [`task_list`]: `tasks(...)` inputs (`TaskFilter`, `TaskSort`) and `TaskConnection`;
//! - [`tag`]: `Tag` and tag mutations;
//! - [`user`]: `me` and `updateSettings`;
//! - [`notification`]: `Notification`, the `notifications` inbox and `markNotificationRead`;
//! - [`calendar_feed`]: `CalendarFeed`, `calendarFeeds` and the feed mutations;
//! - [`subscription`]: `taskChanged`, live from the [`crate::live::LiveHub`];
//! - [`loaders`]: per-request batch loaders (tags, reminders, counts), so a page of tasks costs
//!   one query per relation, never one per row.

pub mod calendar_feed;
pub mod loaders;
pub mod notification;
pub mod subscription;
pub mod tag;
pub mod task;
pub mod task_history;
pub mod task_list;
pub mod user;

use std::sync::Arc;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::auth::AuthUser;
use crate::document_limits::{DocumentGuard, DocumentLimits, ParsedDocuments};
use crate::error::{ApiError, ApiResult};
use crate::live::LiveHub;
use crate::service::task::TaskChangeContext;
use crate::service::user::KnownUsers;

/// The executable schema.
pub type TaskstreamSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    task::TaskQuery,
    task_history::TaskHistoryQuery,
    task_list::TaskListQuery,
    tag::TagQuery,
    user::UserQuery,
    notification::NotificationQuery,
    calendar_feed::CalendarFeedQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    task::TaskMutation,
    tag::TagMutation,
    user::UserMutation,
    notification::NotificationMutation,
    calendar_feed::CalendarFeedMutation,
);

#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(
    subscription::TaskSubscription,
    notification::NotificationSubscription,
);

/// Where "now" comes from. Tests inject a fixed instant.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

/// Query cost limits. The document's shape (nesting, depth, fields, root fields, aliases) is
/// bounded by [`DocumentLimits`] before parsing and validation; complexity counts fields, with
/// a page of tasks costing its page size times its selection.
#[derive(Clone, Debug)]
pub struct SchemaLimits {
    pub document: DocumentLimits,
    pub max_complexity: usize,
    pub introspection: bool,
    /// How long a query or mutation may execute (`REQUEST_TIMEOUT_SECS`), on every transport.
    pub execution_timeout: std::time::Duration,
    /// How long an `Idempotency-Key` is remembered (`IDEMPOTENCY_KEY_TTL_HOURS`).
    pub idempotency_ttl: std::time::Duration,
    /// Where webhook URLs may point (`updateSettings` refuses private IP literals and
    /// `localhost` outside the allow-list; the dispatcher checks resolved addresses).
    pub webhook_targets: subscribers::webhook::TargetPolicy,
    /// The gateway's public base URL (`PUBLIC_URL`), which calendar feed URLs start with;
    /// `None`: the origin the request was sent to.
    pub public_url: Option<String>,
}

impl Default for SchemaLimits {
    fn default() -> SchemaLimits {
        SchemaLimits {
            document: DocumentLimits::default(),
            // A full page of 100 tasks with ~30 fields each, plus headroom.
            max_complexity: 5_000,
            introspection: true,
            execution_timeout: std::time::Duration::from_secs(10),
            idempotency_ttl: std::time::Duration::from_secs(24 * 3600),
            webhook_targets: subscribers::webhook::TargetPolicy::public_only(),
            public_url: None,
        }
    }
}

/// Per-request data the HTTP layer (or a test) attaches to every request.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub user: AuthUser,
    pub request_id: Option<String>,
}

/// Builds the schema over `db`; subscriptions read their changes from `live`.
pub fn build_schema(
    db: DatabaseConnection,
    clock: Clock,
    limits: &SchemaLimits,
    live: LiveHub,
) -> TaskstreamSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(db)
    .data(KnownUsers::default())
    .data(live)
    .data(clock)
    .data(limits.webhook_targets.clone())
    .data(calendar_feed::PublicUrl(limits.public_url.clone()))
    .limit_complexity(limits.max_complexity)
    // First, so that nothing else sees a document before its shape is bounded. (Depth is one
    // of its limits: the engine's own depth limit would count introspection too.)
    .extension(DocumentGuard::new(
        limits.document.clone(),
        Arc::new(ParsedDocuments::default()),
    ))
    .extension(crate::observability::OperationTelemetry)
    .extension(crate::selection_order::SelectionOrder)
    // Outside the timeout, so that it sees an execution cut off and marks its key.
    .extension(crate::idempotency::Idempotency {
        ttl: limits.idempotency_ttl,
    })
    .extension(crate::execution_timeout::ExecutionTimeout(
        limits.execution_timeout,
    ));
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema (what `schema.graphql` holds).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}

/// Attaches the per-request data: the caller, the request id and the batch loaders.
pub fn prepare_request(
    request: async_graphql::Request,
    db: &DatabaseConnection,
    meta: RequestMeta,
) -> async_graphql::Request {
    loaders::attach(request.data(meta), db)
}

/// The data of one WebSocket connection (the subscription counterpart of [`prepare_request`]):
/// the caller and fresh batch loaders, shared by every subscription on the socket.
pub fn connection_data(db: &DatabaseConnection, meta: RequestMeta) -> async_graphql::Data {
    let mut data = async_graphql::Data::default();
    data.insert(meta);
    loaders::insert(&mut data, db);
    data
}

/// Executes `request` and gives every error an `extensions.code`: parse, validation, depth
/// and complexity errors come from the engine without one, and are all the client's to fix.
pub async fn execute(
    schema: &TaskstreamSchema,
    request: async_graphql::Request,
) -> async_graphql::Response {
    let mut response = schema.execute(request).await;
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            let extensions = err.extensions.get_or_insert_with(Default::default);
            extensions.set("code", "BAD_USER_INPUT");
            if let Some(field) = engine_error_field(&err.message) {
                extensions.set("field", field);
            }
        }
    }
    response
}

/// The argument path an engine validation error names: async-graphql words a value that does
/// not fit its argument's type as `Invalid value for argument "input.priority", ...`. (Its
/// errors carry no structured path; this is the one shape that names an input field.)
pub fn engine_error_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    let end = rest.find('"')?;
    let field = &rest[..end];
    (!field.is_empty()).then(|| field.to_owned())
}

pub(crate) fn db<'a>(ctx: &Context<'a>) -> &'a DatabaseConnection {
    ctx.data_unchecked::<DatabaseConnection>()
}

pub(crate) fn now(ctx: &Context<'_>) -> DateTime<Utc> {
    ctx.data::<Clock>()
        .map(Clock::now)
        .unwrap_or_else(|_| Utc::now())
}

/// The authenticated caller; UNAUTHENTICATED when the request carries none.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> ApiResult<&'a AuthUser> {
    ctx.data::<RequestMeta>()
        .map(|m| &m.user)
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))
}

pub(crate) fn change_context(ctx: &Context<'_>) -> ApiResult<TaskChangeContext> {
    let meta = ctx
        .data::<RequestMeta>()
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))?;
    Ok(TaskChangeContext {
        owner_id: meta.user.id.clone(),
        now: now(ctx),
        correlation_id: meta.request_id.clone(),
        known_users: ctx.data::<KnownUsers>().cloned().unwrap_or_default(),
    })
}

/// Parses an `ID!` argument that must be a UUID. A malformed id cannot name any task, so it
/// is reported as NOT_FOUND like any other unknown id.
pub(crate) fn parse_id(what: &str, id: &async_graphql::ID) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| ApiError::not_found(what, id.as_str()))
}
