//! Shared support for the gateway's tests: `testkit` (fresh SQLite/PostgreSQL databases,
//! `on_both_databases!`, the consumer helpers), re-exported, plus what needs `graphql`: the
//! schema-level [`TestApp`] and the gateway test server ([`start_app`]).
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use sea_orm::{ConnectionTrait, DatabaseConnection};
pub use testkit::*;

/// [`testkit::on_both_databases!`], at this test crate's root as before (tests name it bare).
#[macro_export]
macro_rules! on_both_databases {
    ($($body:tt)*) => {
        testkit::on_both_databases! { $($body)* }
    };
}

/// A schema over a test database, with one method per common operation (zero-to-production's
/// `TestApp`, minus HTTP: transport tests live in `http.rs`).
pub struct TestApp {
    pub schema: graphql::schema::TaskstreamSchema,
    pub db: DatabaseConnection,
}

/// The first error of a response: (extensions.code, message).
pub type GqlError = (String, String);

impl TestApp {
    pub fn on(t: &TestDb) -> TestApp {
        TestApp {
            schema: graphql::schema::build_schema(
                t.db.clone(),
                graphql::schema::Clock::System,
                &graphql::schema::SchemaLimits::default(),
                graphql::live::LiveHub::new(),
            ),
            db: t.db.clone(),
        }
    }

    /// Executes `query` as `user` with `variables`.
    pub async fn exec(
        &self,
        user: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> async_graphql::Response {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let request = graphql::schema::prepare_request(
            request,
            &self.db,
            graphql::schema::RequestMeta {
                user: graphql::auth::AuthUser {
                    id: user.to_owned(),
                },
                request_id: Some("test-request".to_owned()),
            },
        );
        graphql::schema::execute(&self.schema, request).await
    }

    /// Executes and asserts success; returns `data` as JSON.
    pub async fn ok(
        &self,
        user: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let resp = self.exec(user, query, variables).await;
        assert!(
            resp.errors.is_empty(),
            "unexpected errors: {:?}",
            resp.errors
        );
        resp.data.into_json().unwrap()
    }

    /// Executes and asserts failure; returns the first error's code and message.
    pub async fn err(&self, user: &str, query: &str, variables: serde_json::Value) -> GqlError {
        let resp = self.exec(user, query, variables).await;
        let err = resp
            .errors
            .first()
            .unwrap_or_else(|| panic!("expected an error, got data {:?}", resp.data));
        let code = err
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| {
                v.clone()
                    .into_json()
                    .unwrap()
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        (code, err.message.clone())
    }

    /// Executes `query` (no variables) as `user`, asserts failure and returns the first error's
    /// `extensions.code` and `extensions.field`.
    pub async fn error_field(&self, user: &str, query: &str) -> (String, Option<String>) {
        let response = self.exec(user, query, serde_json::json!({})).await;
        let error = response
            .errors
            .first()
            .unwrap_or_else(|| panic!("no error for {query}"));
        let ext = error.extensions.as_ref().unwrap();
        let text = |key: &str| {
            ext.get(key)
                .map(|v| v.clone().into_json().unwrap().as_str().unwrap().to_owned())
        };
        (text("code").unwrap(), text("field"))
    }

    /// The titles `tasks(<arguments>)` lists for `user`, in list order.
    pub async fn titles(&self, user: &str, arguments: &str) -> Vec<String> {
        let data = self
            .ok(
                user,
                &format!("{{ tasks({arguments}) {{ nodes {{ title }} }} }}"),
                serde_json::json!({}),
            )
            .await;
        data["tasks"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Creates a task from a `CreateTaskInput` JSON and returns it (id, version, tags...).
    pub async fn create_task(&self, user: &str, input: serde_json::Value) -> serde_json::Value {
        let data = self
            .ok(
                user,
                &format!("mutation($input: CreateTaskInput!) {{ createTask(input: $input) {{ {TASK_FIELDS} }} }}"),
                serde_json::json!({ "input": input }),
            )
            .await;
        data["createTask"].clone()
    }

    /// Every outbox row, in id order.
    pub async fn outbox(&self) -> Vec<entities::outbox::Model> {
        use sea_orm::{EntityTrait, QueryOrder};
        entities::outbox::Entity::find()
            .order_by_asc(entities::outbox::Column::Id)
            .all(&self.db)
            .await
            .unwrap()
    }

    /// How many rows a table holds (to check that nothing was written).
    pub async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

/// The task fields tests select.
pub const TASK_FIELDS: &str = "id title description priority completed completedAt dueAt \
    tags { name color } recurrence { rule timezone anchor } \
    reminders { minutesBeforeDue at fireAt status } seriesId version createdAt updatedAt";

/// The real gateway ([`graphql::app::App`], as `main` runs it: HTTP server, in-process
/// subscribers, live tail, retention) on `127.0.0.1:0`; it stops when
/// [`graphql::app::RunningApp::shutdown`] is cancelled (see [`StopOnDrop`]).
pub async fn start_app(config: graphql::config::ServerConfig) -> graphql::app::RunningApp {
    start_built(graphql::app::App::build(config).await.unwrap()).await
}

/// [`start_app`] for an [`graphql::app::App`] already built (and perhaps adjusted).
pub async fn start_built(app: graphql::app::App) -> graphql::app::RunningApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    app.run(listener, graphql::app::CancellationToken::new())
        .unwrap()
}

/// The real gateway on a fresh SQLite database, with an HTTP client for its routes: the page,
/// GraphiQL and web-app tests' server.
#[allow(dead_code)] // Each test binary uses its own part.
pub struct HttpServer {
    pub base: String,
    pub client: reqwest::Client,
    /// The token printed at start-up, in development mode.
    pub dev_token: Option<String>,
    _db: TestDb,
    _stop: StopOnDrop,
}

#[allow(dead_code)] // Each test binary uses its own part.
impl HttpServer {
    /// A server in development mode (`secret: None`) or with an HS256 secret.
    pub async fn start(secret: Option<&str>) -> HttpServer {
        HttpServer::start_with(graphql::config::ServerConfig {
            jwt_secret: secret.map(str::to_owned),
            jwt_jwks_url: None,
            ..graphql::config::ServerConfig::default()
        })
        .await
    }

    /// A server with `config` and a fresh database.
    pub async fn start_with(config: graphql::config::ServerConfig) -> HttpServer {
        let db = TestDb::empty(Backend::Sqlite).await.unwrap();
        let config = graphql::config::ServerConfig {
            database_url: db.url.clone(),
            ..config
        };
        let app = start_app(config).await;
        HttpServer {
            base: format!("http://{}", app.addr),
            client: reqwest::Client::new(),
            dev_token: app.dev_token,
            _db: db,
            _stop: StopOnDrop(app.shutdown),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

/// Cancels a test server's shutdown token when dropped.
pub struct StopOnDrop(pub graphql::app::CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Which broker a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Kafka,
    Nats,
}

/// A test's own broker process: tansu (Kafka protocol) or nats-server (JetStream), one per
/// test on a free port.
pub enum TestBroker {
    Kafka(stream::broker_process::TansuBroker),
    Nats(stream::nats_process::NatsServer),
}

impl TestBroker {
    pub async fn start(transport: Transport) -> TestBroker {
        match transport {
            Transport::Kafka => {
                TestBroker::Kafka(stream::broker_process::TansuBroker::start().await.unwrap())
            }
            Transport::Nats => {
                TestBroker::Nats(stream::nats_process::NatsServer::start().await.unwrap())
            }
        }
    }

    /// SIGKILL; the storage stays for [`TestBroker::restart`].
    pub fn kill(&mut self) {
        match self {
            TestBroker::Kafka(broker) => broker.kill(),
            TestBroker::Nats(server) => server.kill(),
        }
    }

    pub async fn restart(&mut self) -> anyhow::Result<()> {
        match self {
            TestBroker::Kafka(broker) => broker.restart().await,
            TestBroker::Nats(server) => server.restart().await,
        }
    }

    /// How the binaries are pointed at it: `KAFKA_BROKERS` or `NATS_URL`.
    pub fn env(&self) -> (&'static str, String) {
        match self {
            TestBroker::Kafka(broker) => ("KAFKA_BROKERS", broker.brokers()),
            TestBroker::Nats(server) => ("NATS_URL", server.url()),
        }
    }

    /// Short bounds, so a killed broker is noticed within seconds rather than the defaults' 20.
    pub fn config(&self) -> stream::broker::BrokerConfig {
        match self {
            TestBroker::Kafka(broker) => {
                let mut config =
                    stream::kafka::KafkaConfig::from_brokers(&broker.brokers()).unwrap();
                config.retry_deadline = std::time::Duration::from_secs(2);
                config.request_timeout = std::time::Duration::from_secs(5);
                config.connect_timeout = std::time::Duration::from_secs(5);
                stream::broker::BrokerConfig::Kafka(config)
            }
            TestBroker::Nats(server) => {
                let mut config = stream::nats::NatsConfig::from_url(&server.url()).unwrap();
                config.request_timeout = std::time::Duration::from_secs(5);
                config.connect_timeout = std::time::Duration::from_secs(5);
                stream::broker::BrokerConfig::Nats(config)
            }
        }
    }
}
