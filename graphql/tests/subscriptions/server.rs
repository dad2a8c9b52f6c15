//! The real gateway on port 0 with the live consumer, and helpers to speak
//! graphql-transport-ws to it.

use super::*;

const SECRET: &str = "a-subscription-test-secret-long-enough";

/// The real gateway ([`graphql::app::App`]) on port 0, as `main` runs it.
pub(crate) struct TestServer {
    addr: std::net::SocketAddr,
    pub(crate) state: Arc<graphql::http::AppState>,
    _db: support::TestDb,
    _stop: support::StopOnDrop,
    shutdown: graphql::app::CancellationToken,
    join: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with_init_timeout(graphql::http::WS_INIT_TIMEOUT).await
    }

    /// As [`TestServer::start`], with `init_timeout` for `connection_init`.
    pub(crate) async fn start_with_init_timeout(init_timeout: Duration) -> TestServer {
        TestServer::start_inner(init_timeout, None, None).await
    }

    /// As [`TestServer::start`], with per-user caps on sockets and subscriptions.
    pub(crate) async fn start_with_user_limits(
        max_sockets: usize,
        max_subscriptions: usize,
    ) -> TestServer {
        TestServer::start_inner(
            graphql::http::WS_INIT_TIMEOUT,
            None,
            Some((max_sockets, max_subscriptions)),
        )
        .await
    }

    /// With `webhooks` for the in-process webhook subscriber (every server runs in embedded
    /// mode, as `main` does: recurrence, reminders with the scheduler, notifications, webhooks).
    pub(crate) async fn start_embedded(
        webhooks: subscribers::webhook::WebhookSettings,
    ) -> TestServer {
        TestServer::start_inner(graphql::http::WS_INIT_TIMEOUT, Some(webhooks), None).await
    }

    async fn start_inner(
        init_timeout: Duration,
        webhooks: Option<subscribers::webhook::WebhookSettings>,
        user_limits: Option<(usize, usize)>,
    ) -> TestServer {
        let db = support::TestDb::empty(support::Backend::Sqlite)
            .await
            .unwrap();
        let config = graphql::config::ServerConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_owned()),
            jwt_jwks_url: None,
            jwt_audience: None,
            jwt_issuer: None,
            ..graphql::config::ServerConfig::default()
        };
        let mut app = graphql::app::App::build(config).await.unwrap();
        let state = app.state_mut();
        state.ws_init_timeout = init_timeout;
        if let Some((sockets, subscriptions)) = user_limits {
            state.user_sockets = graphql::sockets::UserSockets::new(sockets, subscriptions);
        }
        state.oidc = None;
        if let Some(webhooks) = webhooks {
            *app.webhooks_mut() = webhooks;
        }
        let app = support::start_built(app).await;
        tokio::time::timeout(DEADLINE, app.state.live.wait_until_consuming())
            .await
            .expect("the live consumer did not start");
        TestServer {
            addr: app.addr,
            state: app.state,
            _db: db,
            _stop: support::StopOnDrop(app.shutdown.clone()),
            shutdown: app.shutdown,
            join: Some(app.join),
        }
    }

    /// Shuts the gateway down (as SIGTERM does) and waits until it has stopped.
    pub(crate) async fn shut_down(&mut self) {
        self.shutdown.cancel();
        let join = self.join.take().expect("already shut down");
        tokio::time::timeout(DEADLINE, join)
            .await
            .expect("the gateway did not stop")
            .unwrap()
            .unwrap();
    }

    pub(crate) fn token(&self, sub: &str) -> String {
        self.token_for(sub, Duration::from_secs(600))
    }

    /// A token for `sub` that expires after `ttl` (whole seconds).
    pub(crate) fn token_for(&self, sub: &str, ttl: Duration) -> String {
        graphql::auth::Authenticator::hs256(SECRET.as_bytes())
            .unwrap()
            .issue_token(sub, ttl)
            .unwrap()
    }

    pub(crate) async fn connect(
        &self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let mut request = format!("ws://{}/graphql/ws", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(request).await.unwrap().0
    }

    pub(crate) async fn mutate(&self, token: &str, query: &str) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/graphql", self.addr))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub(crate) async fn send_json<S>(socket: &mut S, value: Value)
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Debug,
{
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next text message as JSON (pings and pongs skipped); `None` when the socket closed,
/// with the close code.
pub(crate) async fn receive<S>(socket: &mut S) -> Result<Value, Option<u16>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("no WebSocket message before the deadline");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Sends `connection_init` with `sub`'s token and expects `connection_ack`.
pub(crate) async fn handshake<S>(server: &TestServer, socket: &mut S, sub: &str)
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    let token = server.token(sub);
    send_json(
        socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(receive(socket).await.unwrap()["type"], "connection_ack");
}

/// The close frame the server ends with (other messages skipped), as code and reason.
pub(crate) async fn close_frame<S>(socket: &mut S) -> (u16, String)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("no close frame before the deadline");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the socket failed without a close frame: {e}"),
            None => panic!("the socket ended without a close frame"),
        }
    }
}

pub(crate) fn subscribe_message(id: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": TASK_CHANGED } })
}
