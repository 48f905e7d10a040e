//! Shared test helpers: a real herald on port 0 with a fresh database, a GraphQL client, and a
//! receiver on loopback that records what it gets and answers as told.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use herald::app::{create_token, App, TokenRequest};
use herald::config::Config;
use herald::domain::content::Role;
use herald::store::SharedStore;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// How long any wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const SECRET_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// A fresh database: a temporary SQLite file, or a new PostgreSQL database on the server of
/// `HERALD_TEST_DATABASE_URL` (dropped afterwards).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("HERALD_TEST_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => {
                let name = format!("herald_test_{}", hex::encode(rand::random::<[u8; 8]>()));
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to HERALD_TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&admin).expect("database URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
        }
    }
}

impl TestDb {
    /// The number `sql` (a `SELECT COUNT(*) …`) counts, read straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        macro_rules! count_on {
            ($conn:ty) => {{
                let mut c = <$conn as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect(sql)
            }};
        }
        if self.pg.is_some() {
            count_on!(sqlx::PgConnection)
        } else {
            count_on!(sqlx::SqliteConnection)
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside async; a short-lived runtime on its own thread does the I/O.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut conn) =
                        <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The configuration tests run with: dev mode (loopback receivers), fast retries.
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        channel_url: "https://{subdomain}.example.test".into(),
        dev: true,
        retry_base_ms: 40,
        retry_factor: 2.0,
        retry_cap_ms: 2_000,
        delivery_timeout_ms: 3_000,
        poll_ms: 50,
        ..Config::default()
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub token: String,
    pub member_token: String,
    pub store: SharedStore,
    pub db: TestDb,
    pub config: Config,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await;
    let mut config = test_config(&db.url);
    tweak(&mut config);
    start(db, config).await
}

/// Starts herald on `db` (which may already hold data).
pub async fn start(db: TestDb, config: Config) -> TestApp {
    start_at(db, config, "127.0.0.1:0").await
}

/// Starts herald on `db`, listening on `addr`.
pub async fn start_at(db: TestDb, config: Config, addr: &str) -> TestApp {
    let app = App::build(config.clone()).await.expect("app builds");
    let store = app.store.clone();
    let token = token_for(&store, "example", "admin@example.com", Role::Admin).await;
    let member_token = token_for(&store, "example", "member@example.com", Role::Member).await;
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        addr,
        token,
        member_token,
        store,
        db,
        config,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub async fn token_for(store: &SharedStore, channel: &str, email: &str, role: Role) -> String {
    create_token(
        store,
        &TokenRequest {
            channel: channel.into(),
            channel_name: Some("Example Channel".into()),
            email: email.into(),
            first_name: "Example".into(),
            last_name: "User".into(),
            role,
        },
    )
    .await
    .expect("token")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a GraphQL request as the channel admin; returns the whole JSON answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(&self.token, query, variables).await
    }

    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(self.url("/api/graphql"))
            .header("Authorization", format!("Token token=\"{token}\""))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "GraphQL over HTTP answers 200");
        resp.json().await.expect("JSON answer")
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET path`, without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(mut self) -> TestDb {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(DEADLINE, server)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
        self.db
    }

    /// Creates a webhook (as admin) to `url`; returns its global ID.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[&str],
        secrets: &[&str],
        retries: i64,
    ) -> String {
        let r = self
            .graphql(
                "mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } errors { message path } } }",
                json!({ "input": { "url": url, "events": events, "secrets": secrets, "retries": retries } }),
            )
            .await;
        assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
        r["data"]["createWebhook"]["webhook"]["id"]
            .as_str()
            .expect("webhook id")
            .to_owned()
    }

    /// The delivery log of a webhook, newest first, with attempts.
    pub async fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        let r = self
            .graphql(
                "query ($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 100) { nodes {
                    id nonce event status retries url body createdAt
                    attempts { at code message result durationMs responseBody } } } } } }",
                json!({ "id": webhook_id }),
            )
            .await;
        r["data"]["node"]["deliveries"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("deliveries: {r}"))
            .clone()
    }

    /// Polls the delivery log until `done` holds, or fails at the deadline.
    pub async fn wait_for_deliveries(
        &self,
        webhook_id: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let d = self.deliveries(webhook_id).await;
            if done(&d) {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "deliveries never reached the expected state: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The headers as (name, value) pairs, for herald-verify.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    notify: Notify,
}

/// A webhook receiver on loopback. Answers 200 unless told otherwise.
pub struct TestReceiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    _server: tokio::task::JoinHandle<()>,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let state = Arc::new(ReceiverState::default());
        let router = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestReceiver {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next requests get these answers, in order; then the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    /// Every request without a scripted answer gets this one.
    pub fn always(&self, reply: Reply) {
        *self.state.default.lock().expect("lock") = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived; fails at the deadline.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.state.notify.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} of {n} requests",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let scripted = state.script.lock().expect("lock").pop_front();
        scripted
            .or_else(|| state.default.lock().expect("lock").clone())
            .unwrap_or(Reply::status(200))
    };
    state
        .received
        .lock()
        .expect("lock")
        .push(Received { headers, body });
    state.notify.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        "receiver says hi",
    )
        .into_response();
    for (name, value) in reply.headers {
        if let Ok(v) = value.parse() {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// A child process whose stdout is read line by line as it comes.
pub struct Process {
    pub child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Process {
    /// Spawns `cmd` with stdout piped; the process is killed when this is dropped.
    pub fn spawn(cmd: &mut tokio::process::Command) -> Process {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        Process {
            child,
            lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
        }
    }

    /// The next line containing `needle`; fails at the deadline or if the process exits.
    pub async fn expect_line(&mut self, needle: &str) -> String {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let line = tokio::time::timeout(left, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("the process never printed {needle:?}"))
                .expect("read stdout")
                .unwrap_or_else(|| panic!("the process exited before printing {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}
