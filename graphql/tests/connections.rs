//! Connection-level bounds against the real router on port 0: idle and slow clients are cut
//! off, and connections past the cap are closed at once, so they cannot exhaust descriptors.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use graphql::config::ServerConfig;
use graphql::serve::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "a-connections-test-secret-long-enough";
const DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    addr: std::net::SocketAddr,
    _db: support::TestDb,
    _stop: support::StopOnDrop,
}

async fn start(limits: ConnectionLimits, body_timeout_secs: u64) -> Server {
    let db = support::TestDb::empty(support::Backend::Sqlite)
        .await
        .unwrap();
    let config = ServerConfig {
        database_url: db.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        http_body_timeout_secs: body_timeout_secs,
        max_connections: limits.max_connections as u64,
        http_header_timeout_secs: limits.header_timeout.as_secs(),
        ..ServerConfig::default()
    };
    let app = support::start_app(config).await;
    Server {
        addr: app.addr,
        _db: db,
        _stop: support::StopOnDrop(app.shutdown),
    }
}

async fn start_with_a_one_second_header_timeout() -> Server {
    start(
        ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        },
        15,
    )
    .await
}

/// Everything the server sends until it closes the connection (or the deadline passes).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

async fn healthz(addr: std::net::SocketAddr) -> u16 {
    reqwest::get(format!("http://{addr}/healthz"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    // Arrange
    let server = start_with_a_one_second_header_timeout().await;
    let started = tokio::time::Instant::now();

    // Act: connect and say nothing.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    // Assert
    read_until_closed(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_request_head_trickled_past_the_header_timeout_is_cut_off() {
    // Arrange
    let server = start_with_a_one_second_header_timeout().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    // Act: half a request head, then silence.
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();

    // Assert: no response to a request that never completed, and the connection is gone.
    let received = read_until_closed(&mut stream).await;
    assert!(!received.contains("200 OK"), "{received}");
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_once_idle_past_the_header_timeout() {
    // Arrange
    let server = start_with_a_one_second_header_timeout().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    // Act: one complete request, then nothing.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();

    // Assert
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}

#[tokio::test]
async fn a_body_trickled_past_the_body_timeout_gets_408() {
    // Arrange
    let server = start(ConnectionLimits::default(), 1).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    let token = graphql::auth::Authenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue_token("alice", Duration::from_secs(600))
        .unwrap();

    // Act: a complete head announcing 100 bytes, then only 10 of them.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n{{\"query\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    // Assert
    let mut received = vec![0; 4096];
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut received))
        .await
        .expect("no answer before the deadline")
        .unwrap();
    let head = String::from_utf8_lossy(&received[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("HTTP_BODY_TIMEOUT_SECS"), "{head}");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_service_resumes_when_one_ends() {
    // Arrange: three idle connections fill the cap.
    let server = start(
        ConnectionLimits {
            max_connections: 3,
            header_timeout: Duration::from_secs(60),
        },
        15,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }

    // Act
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();

    // Assert: closed without an answer, long before the header timeout.
    assert_eq!(read_until_closed(&mut fourth).await, "");
    drop(held.pop());
    support::wait_until("/healthz answers after a slot freed", || async {
        healthz(server.addr).await == 200
    })
    .await;
}
