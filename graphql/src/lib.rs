//! The Taskstream gateway (binary `taskstream`): the GraphQL API over HTTP.
//!
//! It deliberately knows nothing of the broker (the `stream` crate does) and does no domain
//! arithmetic (the `entities` crate does); it validates input, runs service functions in
//! transactions that also write the outbox, and maps errors to `extensions.code`.
//!
//! Module map:
//! - [`config`]: flags with environment fallbacks;
//! - [`app`]: the one lifecycle: [`app::App::start`] runs the HTTP server and every
//!   long-lived task under one cancellation token and one task tracker (`main`, tests and
//!   benchmarks; `taskstream relay` is [`app::App::start_relay`]);
//! - [`startup`]: wiring from configuration to a built gateway, the command-line entry
//!   points, development mode;
//! - [`serve`]: the accept loop (connection cap, header and keep-alive timeout, draining);
//! - [`graphiql`]: GraphiQL at `/graphiql`;
//! - [`health`]: the long-lived tasks `/readyz` reports on (halted ones fail it by name);
//! - [`apq`]: automatic persisted queries (Apollo's protocol), a bounded per-user cache;
//! - [`cors`]: `CORS_ALLOWED_ORIGINS`, off by default;
//! - [`http`]: routes, body limit, request ids, timeout, health, the WebSocket transport;
//! - [`web`]: the embedded web app at `/` and, in development mode, `GET /dev/token`;
//! - [`calendar`]: iCalendar feeds at `GET /calendar/<secret>.ics` (the body, `VTIMEZONE`s,
//!   rate limits, ETag and 304s);
//! - [`sockets`]: per-user caps on WebSockets and live subscriptions;
//! - [`ws`]: the graphql-transport-ws close codes the WebSocket transport enforces;
//! - [`live`]: the live fan-out: one `task-events` consumer feeding every subscription;
//! - [`events`]: embedded or distributed mode, the outbox relay task, `events tail`;
//! - [`dlq`]: `taskstream dlq list|show|replay|discard`;
//! - [`retention`]: the pruning loop that bounds every growing table, in both modes;
//! - [`auth`]: bearer JWT verification (HS256 secret, JWKS, development key);
//! - [`oidc`]: the web app's OpenID Connect sign-in settings (`OIDC_*`, `GET /auth/oidc`);
//! - [`execution_timeout`]: queries and mutations cut off after `REQUEST_TIMEOUT_SECS` on
//!   every transport;
//! - [`idempotency`]: `Idempotency-Key` on mutations (retries never run twice);
//! - [`document_limits`]: bounds on a GraphQL document's shape, checked before parsing;
//! - [`selection_order`]: responses in selection order (async-graphql 7.2 collects fields in
//!   completion order);
//! - [`schema`]: the transport-free GraphQL schema, one module per resource;
//! - [`service`]: database work behind the resolvers;
//! - [`error`]: the one error enum, its `extensions.code` table and the database constraint
//!   table (`error::constraints`: violations mapped by constraint name);
//! - [`db`]: connection pool and migrations;
//! - [`observability`]: the request and operation spans, operation metrics, `GET /metrics`.

pub mod app;
pub mod apq;
pub mod auth;
pub mod calendar;
pub mod config;
pub mod cors;
pub mod db;
pub mod dlq;
pub mod document_limits;
pub mod error;
pub mod events;
pub mod execution_timeout;
pub mod graphiql;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod live;
pub mod observability;
pub mod oidc;
pub mod retention;
pub mod schema;
pub mod selection_order;
pub mod serve;
pub mod service;
pub mod sockets;
pub mod startup;
pub mod web;
pub mod ws;
