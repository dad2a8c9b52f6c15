//! The accept loop: HTTP/1.1 connections (with upgrades, for the WebSocket) on an
//! already-bound listener, bounded so that idle or slow clients cannot hold the server's file
//! descriptors or memory.
//!
//! - At most [`ConnectionLimits::max_connections`] connections are open at once (an upgraded
//!   WebSocket keeps its connection's slot until it closes); one more is
//!   accepted and closed at once (so the kernel's backlog never fills with them), and a warning
//!   is logged at most once a minute.
//! - A connection must send a complete request head within
//!   [`ConnectionLimits::header_timeout`], counted from the moment the server starts waiting
//!   for it: for a new connection, and again for each next request on a keep-alive connection,
//!   so the same bound is the keep-alive idle timeout. (A request body has its own bound, see
//!   [`crate::http`]; an upgraded WebSocket is governed by its own protocol from then on.)
//! - On shutdown the listener closes, every HTTP connection finishes its in-flight request
//!   and closes, and the loop returns once they have.
//!
//! axum's `serve` has none of these knobs, so this loop drives hyper directly with the same
//! router.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Bounds on connections (flags `MAX_CONNECTIONS`, `HTTP_HEADER_TIMEOUT_SECS`).
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            // Below the usual 20k+ descriptor limits of containers, far above what one gateway
            // serves well; `effective_max_connections` lowers it under a smaller limit.
            max_connections: 10_000,
            // A client on a slow mobile link sends its request head in well under a second;
            // 15 s keeps idle keep-alive connections briefly for reuse, then frees them.
            header_timeout: Duration::from_secs(15),
        }
    }
}

/// Descriptors kept free for everything but client connections: the database pool, the
/// brokers, log files, the webhook client.
const RESERVED_DESCRIPTORS: usize = 128;

/// `requested`, lowered to fit the process's open-file limit (`RLIMIT_NOFILE`, read from
/// `/proc/self/limits` on Linux) minus [`RESERVED_DESCRIPTORS`], so that the cap is reached
/// before the descriptors run out.
pub fn effective_max_connections(requested: usize) -> usize {
    match open_file_limit() {
        Some(limit) if limit.saturating_sub(RESERVED_DESCRIPTORS) < requested => {
            let lowered = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            tracing::warn!(
                requested,
                open_file_limit = limit,
                lowered,
                "MAX_CONNECTIONS is above what the open-file limit allows; lowered (raise \
                 `ulimit -n` to allow more)"
            );
            lowered
        }
        _ => requested,
    }
}

/// The soft open-file limit, when the platform says.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let (stop, stopped) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all have ended.
    let (running, mut drained) = mpsc::channel::<()>(1);
    let mut last_refusal_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // instead of spinning, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached (MAX_CONNECTIONS); closing new connections \
                     until some end"
                );
                last_refusal_log = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The slot travels with the socket, so an upgraded WebSocket keeps holding it.
        let io = TokioIo::new(CountedStream {
            stream,
            _slot: slot,
        });
        // Handlers that need the client's address (the calendar feed's rate limit) read it
        // as axum's `ConnectInfo`.
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: axum::http::Request<_>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            })
            .service(router.clone());
        let connection = builder
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopped = stopped.clone();
        let running = running.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(running);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(running);
    let _ = drained.recv().await;
    Ok(())
}

/// A client socket that holds its connection slot until it is dropped.
struct CountedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        assert_eq!(parse_open_file_limit("Max processes 10 10"), None);
    }
}
