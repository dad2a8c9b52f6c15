//! GraphiQL at `GET /graphiql`: the page, with the development token filled in when there is
//! one. (`DISABLE_GRAPHIQL` turns it off: 404.)

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

/// The GraphiQL routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/graphiql", get(graphiql))
}

/// The GraphiQL page; with `dev_token`, its requests and subscriptions carry it.
pub fn page(dev_token: Option<&str>) -> String {
    let bearer = dev_token.map(|t| format!("Bearer {t}"));
    let mut source = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .title("Taskstream");
    if let Some(b) = &bearer {
        source = source
            .header("Authorization", b)
            .ws_connection_param("Authorization", b);
    }
    source.finish()
}

async fn graphiql(State(state): State<Arc<AppState>>) -> Response {
    match &state.graphiql_html {
        Some(html) => Html(html.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "GraphiQL is disabled").into_response(),
    }
}
