//! The small HTTP server of the processes that have no other (the subscriber binaries and
//! `taskstream relay`): `GET /healthz` (liveness: the process runs) and `GET /metrics`
//! (Prometheus text), on `METRICS_ADDR`. It serves nothing else and reads no request body.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::DatabaseConnection;

/// The routes. With `db`, each scrape first refreshes the database-derived gauges (outbox
/// backlog, parked dead letters): the relay process passes its database, the subscribers
/// do not (the gateway and the relay already report them).
pub fn router(db: Option<DatabaseConnection>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let db = db.clone();
                async move { metrics(db.as_ref()).await }
            }),
        )
}

/// The `/metrics` response: refreshes the database gauges when `db` is given, then renders.
pub async fn metrics(db: Option<&DatabaseConnection>) -> axum::response::Response {
    if let Some(db) = db {
        stream::relay::refresh_backlog_gauges(db, true).await;
    }
    (
        [(header::CONTENT_TYPE, telemetry::metrics::CONTENT_TYPE)],
        telemetry::metrics::render(),
    )
        .into_response()
}

/// Binds `addr` and serves [`router`] in the background until the process exits.
pub async fn spawn(
    addr: SocketAddr,
    db: Option<DatabaseConnection>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on METRICS_ADDR {addr}"))?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(db)).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    }))
}

/// Starts the server on `METRICS_ADDR` (`value`), or on `default` when it is unset. An address
/// that was asked for must work (error otherwise); the default is a convenience, so when it is
/// taken (two binaries of the same kind on one machine, tests in parallel) the process logs a
/// warning and runs without the server.
pub async fn start(
    value: Option<&str>,
    default: SocketAddr,
    db: Option<DatabaseConnection>,
) -> anyhow::Result<()> {
    let Some(addr) = parse_addr(value, default)? else {
        return Ok(());
    };
    let explicit = value.is_some_and(|v| !v.trim().is_empty());
    match spawn(addr, db).await {
        Ok(_) => Ok(()),
        Err(e) if !explicit => {
            tracing::warn!(error = %format!("{e:#}"), "no /metrics server: the default address is taken; set METRICS_ADDR");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Parses a `METRICS_ADDR` value: `off` disables the server, empty or absent means
/// `default`.
pub fn parse_addr(value: Option<&str>, default: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    match value.map(str::trim) {
        None | Some("") => Ok(Some(default)),
        Some("off") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .with_context(|| format!("METRICS_ADDR {v:?} is not `off` or host:port")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn healthz_answers_and_metrics_are_prometheus_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(None)).await });
        telemetry::metrics::metrics().count_webhook("delivered");
        let client = reqwest::Client::new();
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(
            metrics.headers()["content-type"],
            telemetry::metrics::CONTENT_TYPE
        );
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains("taskstream_webhook_delivery_attempts_total{outcome=\"delivered\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn metrics_addr_is_an_address_off_or_the_default() {
        let default: SocketAddr = "127.0.0.1:9091".parse().unwrap();
        assert_eq!(parse_addr(None, default).unwrap(), Some(default));
        assert_eq!(parse_addr(Some("off"), default).unwrap(), None);
        assert_eq!(
            parse_addr(Some("0.0.0.0:9090"), default).unwrap(),
            Some("0.0.0.0:9090".parse().unwrap())
        );
        assert!(parse_addr(Some("localhost"), default).is_err());
    }
}
