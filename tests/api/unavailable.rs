//! A database that cannot serve: a PostgreSQL server that stops answering, a SQLite database
//! locked by another program, a full disk. Requests fail within `HERALD_DB_TIMEOUT_MS` saying
//! why, `/readyz` says so within a second, and herald recovers when the database does.

use crate::helpers::{collection, start, test_config, TestApp, TestDb, TestReceiver, DEADLINE};
use serde_json::{json, Value};
use sqlx::Connection;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// `HERALD_DB_TIMEOUT_MS` in these tests.
const DB_TIMEOUT: Duration = Duration::from_millis(1000);

/// What a client gets back: the HTTP status and the JSON body.
async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(json!(body)))
}

/// `/readyz`, which must answer within a second.
async fn readyz(app: &TestApp) -> (u16, Value) {
    let asked = Instant::now();
    let got = answer(app.get("/readyz").await).await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "/readyz took {:?}",
        asked.elapsed()
    );
    got
}

const CREATE: &str =
    "mutation ($n: String!, $d: String) { createCollection(input: {name: $n, description: $d}) { collection { id } errors { message } } }";

/// Creates a collection with a 1000-character description; the status and the body.
async fn create(app: &TestApp, name: &str) -> (u16, Value) {
    let request = json!({ "query": CREATE, "variables": { "n": name, "d": "d".repeat(1000) } });
    let resp = app
        .http()
        .post(app.url("/api/graphql"))
        .bearer_auth(&app.token)
        .json(&request)
        .send()
        .await
        .expect("an answer");
    answer(resp).await
}

/// The answer is the error of a database in state `code`, with its message: 503 before the
/// request reaches GraphQL (the token could not be checked), or a GraphQL error within it.
#[track_caller]
fn says(answer: &(u16, Value), code: &str, message: &str) {
    let (status, body) = answer;
    assert!(*status == 503 || *status == 200, "{status} {body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], code, "{status} {body}");
    assert_eq!(error["message"], message, "{status} {body}");
}

/// A TCP proxy to the PostgreSQL server at `server`, which can be cut: its connections are
/// dropped, and new ones accepted and never answered, as a server that hangs or a network
/// that lost it.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<Mutex<bool>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn to(server: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(Mutex::new(false));
        let links = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (cut, links) = (cut.clone(), links.clone());
            async move {
                let mut silent = Vec::new();
                while let Ok((mut client, _)) = listener.accept().await {
                    if *cut.lock().expect("lock") {
                        silent.push(client);
                        continue;
                    }
                    links.lock().expect("lock").push(tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(server).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    }));
                }
            }
        });
        Proxy {
            addr,
            cut,
            links,
            accept,
        }
    }

    /// From now on nothing gets through.
    fn cut(&self) {
        *self.cut.lock().expect("lock") = true;
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    /// From now on new connections get through again.
    fn mend(&self) {
        *self.cut.lock().expect("lock") = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("database URL");
    url.set_ip_host(addr.ip()).expect("host");
    url.set_port(Some(addr.port())).expect("port");
    url.to_string()
}

#[tokio::test]
async fn a_database_that_cannot_serve_fails_requests_fast_saying_so() {
    let db = TestDb::new().await;
    let mut config = test_config(&db.url);
    config.db_timeout_ms = DB_TIMEOUT.as_millis() as u64;
    if db.url.starts_with("postgres") {
        let server = url::Url::parse(&db.url).expect("URL");
        let server = format!(
            "{}:{}",
            server.host_str().expect("host"),
            server.port().unwrap_or(5432)
        );
        let server = tokio::net::lookup_host(server)
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let proxy = Proxy::to(server).await;
        config.database_url = through(&db.url, proxy.addr);
        let app = start(db, config).await;
        collection(&app, "before").await;

        proxy.cut();
        let unavailable = "The database is unavailable; try again later";
        fails_fast_saying(&app, "DATABASE_UNAVAILABLE", unavailable).await;
        proxy.mend();
        recovers(&app).await;
    } else {
        let app = start(db, config).await;
        collection(&app, "before").await;
        // Another program holds SQLite's write lock (as a shell's open transaction would).
        let mut other = other_program(&app, &["BEGIN IMMEDIATE"]).await;
        let locked = "The database is locked by another program";
        fails_fast_saying(&app, "DATABASE_LOCKED", locked).await;
        run(&mut other, "ROLLBACK").await;
        recovers(&app).await;
    }
}

/// A change fails within `HERALD_DB_TIMEOUT_MS` (and a little), saying why, and so does
/// `/readyz`.
async fn fails_fast_saying(app: &TestApp, code: &str, message: &str) {
    let asked = Instant::now();
    let failed = create(app, "while the database cannot serve").await;
    let took = asked.elapsed();
    assert!(took < DB_TIMEOUT + Duration::from_secs(2), "took {took:?}");
    says(&failed, code, message);
    says(&readyz(app).await, code, message);
}

/// Another program's connection to herald's SQLite database, which has run `statements`.
async fn other_program(app: &TestApp, statements: &[&str]) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(&app.db.url)
        .await
        .expect("connect");
    for sql in statements {
        run(&mut conn, sql).await;
    }
    conn
}

async fn run(conn: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Changes work again, and `/readyz` says ready.
async fn recovers(app: &TestApp) {
    crate::helpers::eventually(DEADLINE, || async {
        match create(app, "after").await {
            (200, body) if body["data"]["createCollection"]["errors"] == json!([]) => Ok(()),
            seen => Err(seen),
        }
    })
    .await;
    assert_eq!(readyz(app).await, (200, json!("ready")));
}

/// On SQLite, a full disk: the database is given a size limit (`HERALD_SQLITE_MAX_SIZE_MB`,
/// which fails a write past it as a full disk does), and another program fills it. (A
/// PostgreSQL server's disk cannot be filled on purpose here; its disk-full SQLSTATE, 53100,
/// gets the same answer: see the store's unit tests.)
#[tokio::test]
async fn a_full_disk_is_said_and_the_next_write_after_room_is_made_works() {
    let db = TestDb::new().await;
    if db.url.starts_with("postgres") {
        eprintln!("a full disk is simulated on SQLite only");
        return;
    }
    let mut config = test_config(&db.url);
    config.sqlite_max_size_mb = 1;
    config.db_timeout_ms = DB_TIMEOUT.as_millis() as u64;
    let app = start(db, config).await;
    // Deliveries too, so that the delivery engine's writes fail as well.
    let rx = TestReceiver::start().await;
    app.collection_hook(&rx, 0).await;

    // Another program fills the database to the limit herald was given.
    let mut other = other_program(
        &app,
        &[
            "PRAGMA max_page_count = 256", // 1 MiB of 4 KiB pages
            "CREATE TABLE ballast (b BLOB NOT NULL)",
        ],
    )
    .await;
    for size in [16384, 1024, 64] {
        while sqlx::query("INSERT INTO ballast (b) VALUES (zeroblob($1))")
            .bind(size)
            .execute(&mut other)
            .await
            .is_ok()
        {}
    }

    let full = "The database cannot write: disk full";
    let mut failures = 0;
    for n in 0..60 {
        let got = create(&app, &format!("filling {n}")).await;
        if got.1["errors"].is_array() {
            says(&got, "DATABASE_FULL", full);
            failures += 1;
        }
        if failures == 10 {
            break;
        }
    }
    assert_eq!(failures, 10, "writes past the limit fail");
    says(&readyz(&app).await, "DATABASE_FULL", full);

    // Room is made; the next write works, on a connection not left in a failed transaction.
    run(&mut other, "DELETE FROM ballast").await;
    for n in 0..10 {
        let (status, body) = create(&app, &format!("after {n}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["data"]["createCollection"]["errors"],
            json!([]),
            "{body}"
        );
    }
    assert_eq!(readyz(&app).await, (200, json!("ready")));
}
