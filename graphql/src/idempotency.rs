//! Idempotent mutations: a client that may retry sends a key of its choosing with each
//! mutation (the `Idempotency-Key` HTTP header, or `extensions.idempotencyKey` of a
//! WebSocket `subscribe` message), and a retry with the same key never runs the mutation again.
//!
//! Per (user, key), the first request claims a row in `idempotency_keys` with a hash of its
//! query, operation name and variables, runs, and stores its response:
//! - a retry with the same key and request gets the stored response back (nothing runs; HTTP
//!   adds `Idempotent-Replayed: true`);
//! - the same key with a different request is a `CONFLICT`;
//! - a retry while the first is still running is a `CONFLICT` (retry in a moment);
//! - a first request that was cut off (the execution timeout, or the process stopping) may
//!   have written some of its root fields, so its outcome is unknown: retries are a
//!   `CONFLICT` saying so, never a second run; query the data to see what happened.
//!
//! Keys live for `IDEMPOTENCY_KEY_TTL_HOURS` (default 24) and are pruned after. A key is 1 to
//! 255 visible ASCII characters (a UUID is typical). Queries and subscriptions ignore keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerError, ServerResult, Variables};
use chrono::Utc;
use entities::idempotency_key::{self, IdempotencyState};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::schema::RequestMeta;

/// The HTTP request header (the IETF HTTPAPI draft's name).
pub const HEADER: &str = "idempotency-key";
/// The key's name in a GraphQL request's `extensions` (how the WebSocket carries it).
pub const EXTENSION: &str = "idempotencyKey";
/// The response header on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key, in characters: room for any UUID or ULID, with a prefix.
pub const MAX_KEY_CHARS: usize = 255;

/// Checks a key: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the idempotency key must be 1 to {MAX_KEY_CHARS} visible ASCII characters \
             (for example a UUID)"
        ));
    }
    Ok(())
}

/// The engine extension (see the module documentation); keys live for `ttl`.
pub struct Idempotency {
    pub ttl: Duration,
}

impl ExtensionFactory for Idempotency {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(IdempotencyExtension {
            ttl: self.ttl,
            pending: Mutex::default(),
        })
    }
}

/// What `prepare_request` learnt, for `execute`.
#[derive(Clone, Debug)]
struct Pending {
    key: String,
    hash: String,
    operation_name: Option<String>,
    mutation: bool,
}

struct IdempotencyExtension {
    ttl: Duration,
    pending: Mutex<Option<Pending>>,
}

impl IdempotencyExtension {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for IdempotencyExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(value) = request.extensions.get(EXTENSION) {
            let key = match value {
                async_graphql::Value::String(key) => key.clone(),
                _ => {
                    return Err(server_error(ApiError::invalid(
                        "extensions.idempotencyKey",
                        "extensions.idempotencyKey must be a string",
                    )));
                }
            };
            validate_key(&key)
                .map_err(|m| server_error(ApiError::invalid("extensions.idempotencyKey", m)))?;
            *self.lock() = Some(Pending {
                key,
                hash: request_hash(
                    &request.query,
                    request.operation_name.as_deref(),
                    &request.variables,
                ),
                operation_name: request.operation_name.clone(),
                mutation: false,
            });
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(pending) = self.lock().as_mut() {
            pending.mutation = is_mutation(&doc, pending.operation_name.as_deref());
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let pending = self.lock().take().filter(|p| p.mutation);
        let (Some(pending), Ok(db), Ok(meta)) = (
            pending,
            ctx.data::<DatabaseConnection>(),
            ctx.data::<RequestMeta>(),
        ) else {
            return next.run(ctx, operation_name).await;
        };
        let owner = meta.user.id.clone();
        match claim(db, &owner, &pending, self.ttl).await {
            // Logged with its cause by the conversion.
            Err(e) => error_response(ApiError::internal(
                anyhow::Error::new(e).context("claiming an idempotency key"),
            )),
            Ok(Claim::Replay(mut response)) => {
                if let Ok(value) = axum::http::HeaderValue::from_str("true") {
                    response.http_headers.insert(REPLAYED_HEADER, value);
                }
                response
            }
            Ok(Claim::Refused(message)) => error_response(ApiError::Conflict {
                message,
                field: None,
            }),
            Ok(Claim::Claimed) => {
                let guard = UnknownOnDrop {
                    db: Some(db.clone()),
                    owner,
                    key: pending.key.clone(),
                };
                let response = next.run(ctx, operation_name).await;
                if crate::execution_timeout::is_timeout(&response) {
                    // Dropping the guard marks the key UNKNOWN.
                    return response;
                }
                guard.finish(&response).await;
                response
            }
        }
    }
}

enum Claim {
    /// This request owns the key: run it.
    Claimed,
    /// The key's first request finished: its response.
    Replay(Response),
    /// Not run; why.
    Refused(String),
}

/// Claims `pending.key` for `owner`, or says what happened to its earlier use.
async fn claim(
    db: &DatabaseConnection,
    owner: &str,
    pending: &Pending,
    ttl: Duration,
) -> Result<Claim, sea_orm::DbErr> {
    let now = entities::to_db_precision(Utc::now());
    let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
    let id = (owner.to_owned(), pending.key.clone());
    // A new key (the usual case) costs one insert. A row in the way is read; an expired one is
    // as good as none (pruning may not have run yet): it is deleted and the insert tried once
    // more.
    let mut attempts = 0;
    let row = loop {
        attempts += 1;
        let inserted = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
            owner_id: Set(owner.to_owned()),
            key: Set(pending.key.clone()),
            request_hash: Set(pending.hash.clone()),
            state: Set(IdempotencyState::InProgress),
            response: Set(None),
            created_at: Set(now),
            expires_at: Set(expires),
        })
        .on_conflict(
            OnConflict::columns([
                idempotency_key::Column::OwnerId,
                idempotency_key::Column::Key,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        match idempotency_key::Entity::find_by_id(id.clone())
            .one(db)
            .await?
        {
            Some(row) if row.expires_at > now => break row,
            _ if attempts >= 2 => return Ok(Claim::Refused(in_progress())),
            Some(_) => {
                idempotency_key::Entity::delete_many()
                    .filter(idempotency_key::Column::OwnerId.eq(owner))
                    .filter(idempotency_key::Column::Key.eq(pending.key.as_str()))
                    .filter(idempotency_key::Column::ExpiresAt.lte(now))
                    .exec(db)
                    .await?;
            }
            // Deleted between the insert and the read: try again.
            None => {}
        }
    };
    if row.request_hash != pending.hash {
        return Ok(Claim::Refused(
            "this Idempotency-Key was already used with a different request; use a new key \
             for a new request"
                .to_owned(),
        ));
    }
    Ok(match row.state {
        IdempotencyState::InProgress => Claim::Refused(in_progress()),
        IdempotencyState::Unknown => Claim::Refused(
            "the first request with this Idempotency-Key was cut off and its outcome is \
             unknown (some of its changes may be saved); query the data to see what \
             happened, then send what is missing with a new key"
                .to_owned(),
        ),
        IdempotencyState::Done => match row
            .response
            .as_deref()
            .map(serde_json::from_str::<Response>)
        {
            Some(Ok(response)) => Claim::Replay(response),
            _ => Claim::Refused(
                "the stored response of this Idempotency-Key cannot be read; query the data"
                    .to_owned(),
            ),
        },
    })
}

fn in_progress() -> String {
    "a request with this Idempotency-Key is still running; retry in a moment".to_owned()
}

/// Marks the key UNKNOWN when dropped before [`UnknownOnDrop::finish`]: the execution was
/// cut off after it may have written.
struct UnknownOnDrop {
    db: Option<DatabaseConnection>,
    owner: String,
    key: String,
}

impl UnknownOnDrop {
    async fn finish(mut self, response: &Response) {
        let Some(db) = self.db.take() else { return };
        let stored = if holds_secret(response) {
            serde_json::to_string(&error_response(ApiError::Conflict {
                message: SECRET_NOT_STORED.to_owned(),
                field: None,
            }))
        } else {
            serde_json::to_string(response)
        }
        .ok();
        let update = idempotency_key::ActiveModel {
            owner_id: Set(self.owner.clone()),
            key: Set(self.key.clone()),
            state: Set(if stored.is_some() {
                IdempotencyState::Done
            } else {
                IdempotencyState::Unknown
            }),
            response: Set(stored),
            ..Default::default()
        };
        if let Err(e) = update.update(&db).await {
            tracing::error!(error = %e, "cannot store the response of an idempotency key");
        }
    }
}

impl Drop for UnknownOnDrop {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let update = idempotency_key::ActiveModel {
            owner_id: Set(self.owner.clone()),
            key: Set(self.key.clone()),
            state: Set(IdempotencyState::Unknown),
            ..Default::default()
        };
        runtime.spawn(async move {
            if let Err(e) = update.update(&db).await {
                tracing::error!(error = %e, "cannot mark a cut-off idempotency key");
            }
        });
    }
}

/// What a retry gets instead of a response that held a secret.
pub const SECRET_NOT_STORED: &str = "the first request with this Idempotency-Key succeeded, \
    but its response held a secret (a calendar feed URL), which is never stored; query the \
    data (calendarFeeds) to see the result, and revoke and create the feed again if you lost \
    its URL";

/// Whether the response holds a secret that must not be kept: its resolver said so with
/// `Cache-Control: no-store` (`createCalendarFeed`). Its key then remembers only that the
/// mutation ran: a retry gets [`SECRET_NOT_STORED`] (a `CONFLICT`), never a second run.
fn holds_secret(response: &Response) -> bool {
    response
        .http_headers
        .get_all(axum::http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
        })
}

/// SHA-256 (hex) of what makes two requests the same request.
fn request_hash(query: &str, operation_name: Option<&str>, variables: &Variables) -> String {
    let mut hasher = Sha256::new();
    hasher.update(query.as_bytes());
    hasher.update([0]);
    hasher.update(operation_name.unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(
        serde_json::to_string(variables)
            .unwrap_or_default()
            .as_bytes(),
    );
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the operation `name` selects (the only one, when unnamed) is a mutation.
fn is_mutation(doc: &ExecutableDocument, name: Option<&str>) -> bool {
    let ty = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Mutation)
}

/// `err` with its code (and field) from the one error table, as the engine carries it.
fn server_error(err: ApiError) -> ServerError {
    async_graphql::Error::from(err).into_server_error(async_graphql::Pos::default())
}

fn error_response(err: ApiError) -> Response {
    Response::from_errors(vec![server_error(err)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(validate_key("0b7c7c3e-4f0e-4d9e-9a51-1b2c3d4e5f60").is_ok());
        assert!(validate_key(&"k".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "é", "k\u{0}", &"k".repeat(256)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_request_hash_covers_query_operation_and_variables() {
        let vars = |v: serde_json::Value| Variables::from_json(v);
        let base = request_hash("mutation { a }", None, &vars(serde_json::json!({"x": 1})));
        assert_eq!(
            base,
            request_hash("mutation { a }", None, &vars(serde_json::json!({"x": 1})))
        );
        assert_ne!(
            base,
            request_hash("mutation { b }", None, &vars(serde_json::json!({"x": 1})))
        );
        assert_ne!(
            base,
            request_hash(
                "mutation { a }",
                Some("A"),
                &vars(serde_json::json!({"x": 1}))
            )
        );
        assert_ne!(
            base,
            request_hash("mutation { a }", None, &vars(serde_json::json!({"x": 2})))
        );
    }
}
