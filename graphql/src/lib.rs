//! The Taskstream gateway (binary `taskstream`): the GraphQL API over HTTP.
//!
//! It deliberately knows nothing of the broker (the `stream` crate does) and does no domain
//! arithmetic (the `entities` crate does); it validates input, runs service functions in
//! transactions that also write the outbox, and maps errors to `extensions.code`.
//!
//! Module map:
//! - [`config`]: flags with environment fallbacks;
//! - [`startup`]: wiring from configuration to a running server, development mode;
//! - [`http`]: routes, body limit, request ids, timeout, health, the WebSocket transport;
//! - [`web`]: the embedded web app at `/` and, in development mode, `GET /dev/token`;
//! - [`ws`]: the graphql-transport-ws close codes the WebSocket transport enforces;
//! - [`live`]: the live fan-out: one `task-events` consumer feeding every subscription;
//! - [`events`]: embedded or distributed mode, the outbox relay task, `events tail`;
//! - [`dlq`]: `taskstream dlq list|show|replay|discard`;
//! - [`auth`]: bearer JWT verification (HS256 secret, JWKS, development key);
//! - [`oidc`]: the web app's OpenID Connect sign-in settings (`OIDC_*`, `GET /auth/oidc`);
//! - [`schema`]: the transport-free GraphQL schema, one module per resource;
//! - [`service`]: database work behind the resolvers;
//! - [`error`]: the one error enum and its `extensions.code` table;
//! - [`db`]: connection pool and migrations;
//! - [`observability`]: the request and operation spans, operation metrics, `GET /metrics`.

pub mod auth;
pub mod config;
pub mod db;
pub mod dlq;
pub mod error;
pub mod events;
pub mod http;
pub mod live;
pub mod observability;
pub mod oidc;
pub mod schema;
pub mod service;
pub mod startup;
pub mod web;
pub mod ws;
