//! Shared test helpers: a real herald on port 0 with a fresh database, a GraphQL client, a
//! receiver on loopback that records what it gets and answers as told, the `herald` binary as a
//! child process, a headless browser, and [`eventually`] for what can only be polled.

mod browser;
mod process;
mod receiver;

pub use browser::{loaded_urls, screenshot, Browser};
pub use process::{cli_token, fails, herald, herald_on, succeeds, Process};
pub use receiver::{Received, Reply, TestReceiver};

use herald::app::{create_token, App, TokenRequest};
use herald::config::Config;
use herald::domain::content::Role;
use herald::domain::ids::{Typed, WebhookId};
use herald::store::SharedStore;
use serde_json::{json, Value};
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long any wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The pause between two looks in [`eventually`].
const POLL: Duration = Duration::from_millis(20);

pub const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const SECRET_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// The key webhook secrets are sealed with in tests, in-process and in child processes alike,
/// so that no key file is written beside the tests and processes on one database agree.
pub const TEST_SECRET_KEY: &str =
    "746865207465737420736563726574206b6579206f6620686572616c64212121";

/// Polls `check` until it returns `Ok`, and returns what it holds; fails at `deadline`,
/// showing the last `Err` (what was seen instead).
///
/// For state that announces no change: rows in the database, another process, a browser page.
/// What can be awaited (a request reaching a [`TestReceiver`], a line a [`Process`] prints) is
/// awaited instead.
pub async fn eventually<T, E, F, Fut>(deadline: Duration, mut check: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) => assert!(
                tokio::time::Instant::now() < until,
                "not so within {deadline:?}; last seen: {seen:#?}"
            ),
        }
        // What is polled here tells no one when it changes, so there is nothing to await: this
        // is the pause between two looks, not a guess at how long something takes.
        tokio::time::sleep(POLL).await;
    }
}

/// A port on loopback where nothing listens (it was free a moment ago).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

/// A webhook URL on loopback where nothing listens.
pub fn closed_url() -> String {
    format!("http://127.0.0.1:{}/hook", closed_port())
}

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

/// Evaluates `$body` with `$c`, a new connection to `$db` on its backend.
macro_rules! with_connection {
    ($db:expr, |$c:ident| $body:expr) => {{
        macro_rules! on {
            ($conn:ty) => {{
                let mut $c = <$conn as sqlx::Connection>::connect(&$db.url)
                    .await
                    .expect("connect");
                $body
            }};
        }
        if $db.pg.is_some() {
            on!(sqlx::PgConnection)
        } else {
            on!(sqlx::SqliteConnection)
        }
    }};
}

impl TestDb {
    /// The number `sql` (a `SELECT COUNT(*) …`) counts, read straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        with_connection!(self, |c| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut c)
            .await
            .expect(sql))
    }

    /// Runs `sql` straight on the database (to age rows, or seed many), as written.
    pub async fn execute(&self, sql: &str) {
        macro_rules! execute_on {
            ($conn:ty) => {{
                let mut c = <$conn as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql).execute(&mut c).await.expect(sql);
            }};
        }
        if self.pg.is_some() {
            execute_on!(sqlx::PgConnection)
        } else {
            execute_on!(sqlx::SqliteConnection)
        }
    }

    /// Whether this is a SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.pg.is_none()
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
        secret_keys: herald::config::SecretKeyArgs {
            secret_key: Some(TEST_SECRET_KEY.into()),
            ..Default::default()
        },
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
        graphql_at(&self.http, &self.url(""), token, query, variables).await
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

    /// A webhook to `rx` for COLLECTION events, signed with [`SECRET_A`], with `retries`;
    /// returns its global ID.
    pub async fn collection_hook(&self, rx: &TestReceiver, retries: i64) -> String {
        self.create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], retries)
            .await
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
        let done = &done;
        eventually(DEADLINE, || async move {
            let log = self.deliveries(webhook_id).await;
            if done(&log) {
                Ok(log)
            } else {
                Err(log)
            }
        })
        .await
    }

    /// Deletes the webhook `id` (as admin).
    pub async fn delete_webhook(&self, id: &str) {
        let r = self
            .graphql(
                "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }",
                json!({ "i": { "webhookId": id } }),
            )
            .await;
        assert_eq!(r["data"]["deleteWebhook"]["errors"], json!([]), "{r}");
    }

    /// The webhook `id`'s `fields` (e.g. `"enabled disabledReason"`), as read by the admin.
    pub async fn webhook(&self, id: &str, fields: &str) -> Value {
        let r = self
            .graphql(
                &format!(
                    "query ($id: ID!) {{ node(id: $id) {{ ... on Webhook {{ {fields} }} }} }}"
                ),
                json!({ "id": id }),
            )
            .await;
        r["data"]["node"].clone()
    }

    /// How many webhooks the channel has.
    pub async fn webhook_count(&self) -> usize {
        let r = self
            .graphql(
                "{ channel { webhooks(first: 100) { nodes { id } } } }",
                json!({}),
            )
            .await;
        r["data"]["channel"]["webhooks"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("webhooks: {r}"))
            .len()
    }
}

/// Sends a GraphQL request to the herald at `base` (`http://host:port`) with `token`.
pub async fn post_graphql(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> reqwest::Response {
    http.post(format!("{base}/api/graphql"))
        .header("Authorization", format!("Token token=\"{token}\""))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
}

/// [`post_graphql`]'s whole JSON answer, which GraphQL over HTTP sends with 200.
pub async fn graphql_at(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let resp = post_graphql(http, base, token, query, variables).await;
    assert_eq!(resp.status(), 200, "GraphQL over HTTP answers 200");
    resp.json().await.expect("JSON answer")
}

/// The HTTP status of `{ viewer { id } }` with `token`: 200 if the token works, else 401.
pub async fn viewer_status(base: &str, token: &str) -> u16 {
    post_graphql(
        &reqwest::Client::new(),
        base,
        token,
        "{ viewer { id } }",
        json!({}),
    )
    .await
    .status()
    .as_u16()
}

/// Creates a collection named `name` (as admin); returns its global ID.
pub async fn collection(app: &TestApp, name: &str) -> String {
    let r = app
        .graphql(
            "mutation ($n: String!) { createCollection(input: {name: $n}) { collection { id } errors { message } } }",
            json!({ "n": name }),
        )
        .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]), "{r}");
    r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

/// The numeric ID behind a webhook's global ID, for tests that work the store directly.
pub fn webhook_id(global: &str) -> WebhookId {
    WebhookId::decode(global).expect("a webhook ID")
}

/// Each delivery's status, in log order.
pub fn statuses(log: &[Value]) -> Vec<&str> {
    log.iter()
        .map(|x| x["status"].as_str().unwrap_or(""))
        .collect()
}

/// The log has deliveries, and each one has SUCCEEDED or FAILED for good.
pub fn finished(log: &[Value]) -> bool {
    !log.is_empty()
        && log
            .iter()
            .all(|x| x["status"] == "SUCCEEDED" || x["status"] == "FAILED")
}

/// The log holds exactly `n` deliveries, each with `status`.
pub fn all_are(n: usize, status: &'static str) -> impl Fn(&[Value]) -> bool {
    move |log| log.len() == n && log.iter().all(|x| x["status"] == status)
}

/// The newest delivery has `status`.
pub fn first_is(status: &'static str) -> impl Fn(&[Value]) -> bool {
    move |log| log.first().is_some_and(|x| x["status"] == status)
}
