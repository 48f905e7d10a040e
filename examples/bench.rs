//! herald's benchmark: starts the release `herald` binary on SQLite or PostgreSQL, a fast
//! receiver on loopback (checking signatures on a sample) and a load generator, runs the
//! scenarios, and prints a table. After each scenario, and for longer at the end, it measures the
//! machine's own limit: the rate at which a plain HTTP client POSTs the same body to the same
//! receiver over loopback. Each row's ratio is to the limit measured right after it.
//!
//! ```sh
//! cargo build --release --bin herald --example bench
//! target/release/examples/bench --db sqlite            # every scenario
//! target/release/examples/bench --db postgres --scenario fanout --duration 30
//! ```
//!
//! Set `BENCH_HERALD_STDERR=1` to see herald's warnings (slow rounds, for one).
//!
//! Scenarios: `fanout` (events to 50 webhooks; when herald falls behind the rate offered, the
//! highest rate it keeps up with is searched for, and shown as `fanout, kept up`),
//! `latency` (1,000 events/s to one webhook),
//! `backlog` (a million deliveries queued for a dead receiver beside the fan-out), `metrics`
//! (the fan-out while `GET /metrics` is scraped every second), `retention` (the fan-out while
//! herald deletes a million old finished deliveries), `slow` (a third of the webhooks
//! answer after 5 s), `two` (two herald processes on one PostgreSQL),
//! `ingest` (Strava-style POSTs to an inbound source at `--ingest-rate`, each relayed to three
//! webhooks: requests/s accepted, the ingest answer's p99, end-to-end latency to the receiver).

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-bench-secret-bench-secret-42";

#[derive(Parser, Debug, Clone)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    db: String,
    /// The PostgreSQL server for `--db postgres` (a fresh database is created there and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// `fanout`, `latency`, `backlog`, `metrics`, `retention`, `slow`, `two`, `ingest` or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Events per second offered in the fan-out scenarios (each goes to 50 webhooks).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Deliveries queued for the dead receiver in `backlog`.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: i64,
    /// Finished deliveries, older than the retention, that `retention` seeds for herald to
    /// delete while the fan-out runs.
    #[arg(long, default_value_t = 1_000_000)]
    old: i64,
    /// Requests per second offered to the source in `ingest`.
    #[arg(long, default_value_t = 500)]
    ingest_rate: u64,
    /// The herald binary (default: `herald` beside this one's directory).
    #[arg(long)]
    herald: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// The receiver.

#[derive(Default)]
struct Stats {
    received: AtomicU64,
    /// Of `received`, those to the slow webhooks.
    received_slow: AtomicU64,
    measuring: AtomicBool,
    /// Latency from the event's `at` to arrival, ms, while measuring.
    latencies: Mutex<Vec<u32>>,
    /// Every nonce seen, as its 20 bytes.
    nonces: Mutex<HashSet<[u8; 20]>>,
    duplicates: AtomicU64,
    checked: AtomicU64,
    bad_signatures: AtomicU64,
    /// Webhooks whose index is below this answer after 5 s.
    slow_below: AtomicUsize,
    sample_body: Mutex<Option<Bytes>>,
}

impl Stats {
    /// Counts one delivery to webhook `index`: its nonce, its latency, a signature check on
    /// every hundredth. Returns whether its webhook is a slow one.
    fn count(&self, index: usize, headers: &HeaderMap, body: &Bytes) -> bool {
        let n = self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(nonce) = headers
            .get("webhook-id")
            .and_then(|v| nonce_bytes(v.as_bytes()))
        {
            let fresh = self
                .nonces
                .lock()
                .map(|mut s| s.insert(nonce))
                .unwrap_or(true);
            if !fresh {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.measuring.load(Ordering::Relaxed) {
            if let Some(at) = event_time(body) {
                let ms = (chrono::Utc::now() - at).num_milliseconds().max(0);
                if let Ok(mut l) = self.latencies.lock() {
                    l.push(u32::try_from(ms).unwrap_or(u32::MAX));
                }
            }
        }
        if n % 100 == 0 {
            let pairs: Vec<(String, String)> = headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            self.checked.fetch_add(1, Ordering::Relaxed);
            if herald_verify::Verifier::new([SECRET])
                .verify(&pairs, body)
                .is_err()
            {
                self.bad_signatures.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut s) = self.sample_body.lock() {
                s.get_or_insert(body.clone());
            }
        }
        let slow = index < self.slow_below.load(Ordering::Relaxed);
        if slow {
            self.received_slow.fetch_add(1, Ordering::Relaxed);
        }
        slow
    }

    /// A delivery's body as the receiver got it (the first one checked), for the plain client
    /// to POST; a filler of about that size when nothing was delivered.
    /// Lets the rest arrive (every delivery is made; `expected` since `base` received, or two
    /// minutes), still measuring latency, then stops measuring. Returns how many arrived since
    /// `base` and the latencies measured, sorted.
    async fn settle(&self, base: u64, expected: u64) -> (u64, Vec<u32>) {
        let until = Instant::now() + Duration::from_secs(120);
        while self.received.load(Ordering::Relaxed) - base < expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.measuring.store(false, Ordering::Relaxed);
        let delivered = self.received.load(Ordering::Relaxed) - base;
        let mut lat = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        lat.sort_unstable();
        (delivered, lat)
    }

    fn sample_body(&self) -> Bytes {
        self.sample_body
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or_else(|| Bytes::from(vec![b'x'; 650]))
    }
}

/// A nonce's 40 hex characters as its 20 bytes.
fn nonce_bytes(hex_text: &[u8]) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// Answers one request: `POST /hook/{index}` is a delivery, `POST /plain` the plain client's.
/// A plain hyper service, so that the receiver spends as little of the machine as it can.
async fn receive(
    stats: Arc<Stats>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let index = req
        .uri()
        .path()
        .strip_prefix("/hook/")
        .and_then(|i| i.parse::<usize>().ok());
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    if let Some(index) = index {
        if stats.count(index, &parts.headers, &body) {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    Ok(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// The payload's `at`, read without parsing the whole body.
fn event_time(body: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"at\":\"")? + 6;
    let end = start + text[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&text[start..end])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Threads of the receiver's own runtime are named this, so that its CPU time can be told apart
/// from the load generator's and the plain client's (see `threads_cpu`).
const RECEIVER_THREADS: &str = "receiver";

/// Starts the receiver (HTTP/1.1, keep-alive) on a runtime of its own, on two threads of its
/// own, for the process's lifetime.
fn start_receiver(stats: Arc<Stats>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(RECEIVER_THREADS)
        .enable_all()
        .build()
        .expect("receiver runtime");
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let stats = stats.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| receive(stats.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Where the machine's CPU goes.

/// User + system CPU time from the fields after the command name of a `/proc/.../stat` line.
fn stat_cpu(stat: &str) -> Duration {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// CPU time of this process's live threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|stat| {
            stat.split_once('(')
                .is_some_and(|(_, rest)| rest.starts_with(prefix))
        })
        .map(|stat| stat_cpu(&stat))
        .sum()
}

/// The whole machine's CPU time so far: (busy, total), both summed over its CPUs.
fn machine_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let ms = |t: u64| Duration::from_millis(t * 10);
    (ms(total - idle.min(total)), ms(total))
}

/// CPU spent over a window, split by who spent it.
#[derive(Clone, Copy)]
struct CpuSample {
    herald: Duration,
    receiver: Duration,
    bench: Duration,
    busy: Duration,
    total: Duration,
}

impl CpuSample {
    fn now(heralds: &[Herald]) -> CpuSample {
        let (busy, total) = machine_cpu();
        CpuSample {
            herald: heralds.iter().map(Herald::cpu).sum(),
            receiver: threads_cpu(RECEIVER_THREADS),
            bench: stat_cpu(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default()),
            busy,
            total,
        }
    }

    /// From `self` to `later`.
    fn until(&self, later: &CpuSample) -> CpuSplit {
        let d = |a: Duration, b: Duration| b.saturating_sub(a);
        let (herald, receiver, bench) = (
            d(self.herald, later.herald),
            d(self.receiver, later.receiver),
            d(self.bench, later.bench),
        );
        let busy = d(self.busy, later.busy);
        CpuSplit {
            herald,
            receiver,
            // The load generator, or the plain client: the bench's threads but the receiver's.
            client: bench.saturating_sub(receiver),
            // PostgreSQL's backends, the kernel's own threads, anything else running.
            rest: busy.saturating_sub(herald + bench),
            busy_share: busy.as_secs_f64() / d(self.total, later.total).as_secs_f64().max(1e-9),
        }
    }
}

struct CpuSplit {
    herald: Duration,
    receiver: Duration,
    client: Duration,
    rest: Duration,
    busy_share: f64,
}

impl CpuSplit {
    /// "herald / receiver / client / rest" in µs per unit of work, and the machine's busy share.
    fn per(&self, units: u64) -> String {
        let us = |d: Duration| d.as_micros() as f64 / units.max(1) as f64;
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0} µs; machine {:.0} % busy",
            us(self.herald),
            us(self.receiver),
            us(self.client),
            us(self.rest),
            100.0 * self.busy_share
        )
    }
}

// ---------------------------------------------------------------------------------------------
// herald processes and databases.

struct Db {
    url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn new(args: &Args) -> Db {
        if args.db == "postgres" {
            let name = format!("herald_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&args.pg)
                .await
                .expect("connect to --pg");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let mut url = url::Url::parse(&args.pg).expect("--pg URL");
            url.set_path(&name);
            Db {
                url: url.to_string(),
                admin: Some((args.pg.clone(), name)),
                _dir: None,
            }
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            Db {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                admin: None,
                _dir: Some(dir),
            }
        }
    }

    async fn drop_database(&self) {
        if let Some((admin, name)) = &self.admin {
            if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        if self.admin.is_some() {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&mut c)
                .await
                .expect("query")
        } else {
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&mut c)
                .await
                .expect("query")
        }
    }

    /// On PostgreSQL, the row writes to `deliveries` per delivery made: how often a delivery was
    /// updated (claimed, recorded, handed back), and how many of those updates were HOT. Read
    /// once the server's statistics have settled after herald stopped.
    async fn delivery_writes(&self) -> Option<String> {
        self.admin.as_ref()?;
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
            .await
            .ok()?;
        let mut last = None;
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let now: (i64, i64, i64) = sqlx::query_as(
                "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'deliveries'",
            )
            .fetch_one(&mut c)
            .await
            .ok()?;
            if last == Some(now) || Instant::now() > until {
                let (ins, upd, hot) = now;
                return Some(format!(
                    "{:.2} updates per delivery ({:.0} % HOT)",
                    upd as f64 / ins.max(1) as f64,
                    100.0 * hot as f64 / upd.max(1) as f64
                ));
            }
            last = Some(now);
            // pg_stat_clear_snapshot: read the counters afresh, not the transaction's snapshot.
            let _ = sqlx::query("SELECT pg_stat_clear_snapshot()")
                .execute(&mut c)
                .await;
            tokio::time::sleep(Duration::from_millis(1_500)).await;
        }
    }

    /// A connection to the PostgreSQL database.
    async fn pg(&self) -> sqlx::PgConnection {
        <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
            .await
            .expect("connect")
    }

    /// A connection to the SQLite database that waits for herald's writer.
    async fn sqlite(&self) -> sqlx::SqliteConnection {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
            .await
            .expect("connect");
        sqlx::query("PRAGMA busy_timeout = 30000")
            .execute(&mut c)
            .await
            .expect("pragma");
        c
    }

    /// Writes `n` deliveries that finished long ago (`updated_at` 0, so past any retention),
    /// each with an attempt, of the newest event to the first webhook, straight in the database.
    async fn seed_old(&self, n: i64) {
        let deliveries = "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, created_at, updated_at) \
             SELECT w.id, e.id, NONCE, 'SUCCEEDED', 0, w.url, 0, 0, 0 \
             FROM SERIES, (SELECT MIN(id) AS id, MIN(url) AS url FROM webhooks) w, (SELECT MAX(id) AS id FROM events) e";
        let attempts = "INSERT INTO delivery_attempts (delivery_id, at, url, code, result, duration_ms, response_body) \
             SELECT id, 0, url, 200, 'SUCCESS', 2, 'ok' FROM deliveries WHERE updated_at = 0";
        if self.admin.is_some() {
            let mut c = self.pg().await;
            let sql = deliveries
                .replace("NONCE", "'f' || lpad(to_hex(i), 39, '0')")
                .replace("SERIES", "generate_series(1, $1::bigint) AS i");
            sqlx::query(&sql)
                .bind(n)
                .execute(&mut c)
                .await
                .expect("seed");
            sqlx::query(attempts).execute(&mut c).await.expect("seed");
        } else {
            let mut c = self.sqlite().await;
            let sql = format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) {}",
                deliveries
                    .replace("NONCE", "printf('f%039x', i)")
                    .replace("SERIES", "n")
            );
            sqlx::query(&sql)
                .bind(n)
                .execute(&mut c)
                .await
                .expect("seed");
            sqlx::query(attempts).execute(&mut c).await.expect("seed");
        }
    }

    /// Queues `n` deliveries of one event for a webhook, straight in the database.
    async fn seed(&self, webhook_id: i64, event_id: i64, url: &str, n: i64) {
        let now = chrono::Utc::now().timestamp_millis();
        if self.admin.is_some() {
            let mut c = self.pg().await;
            sqlx::query(
                "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, lpad(to_hex(i), 40, '0'), 'PENDING', 0, $3, $4, $4, $4 FROM generate_series(1, $5::bigint) AS i",
            )
            .bind(webhook_id).bind(event_id).bind(url).bind(now).bind(n)
            .execute(&mut c).await.expect("seed");
        } else {
            let mut c = self.sqlite().await;
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $5) \
                 INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, printf('%040x', i), 'PENDING', 0, $3, $4, $4, $4 FROM n",
            )
            .bind(webhook_id).bind(event_id).bind(url).bind(now).bind(n)
            .execute(&mut c).await.expect("seed");
        }
    }
}

struct Herald {
    child: Child,
    url: String,
    pid: u32,
}

impl Drop for Herald {
    /// Stops herald as an operator would (SIGTERM, so it records what is in flight), and kills
    /// it if it has not stopped within 30 s.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Herald {
    /// Starts `herald serve` on `db`, retention looking for old deliveries every `retention`
    /// (by default once a minute: never, within a scenario).
    async fn start(bin: &PathBuf, db: &str, retention: Option<Duration>) -> Herald {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", db)
            .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
            .env("HERALD_DEV", "true")
            .env(
                "HERALD_RETENTION_EVERY_MS",
                retention.map_or(3_600_000, |d| d.as_millis()).to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("BENCH_HERALD_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start herald");
        let pid = child.id();
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < until, "herald did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Herald { child, url, pid }
    }

    /// User + system CPU time so far.
    fn cpu(&self) -> Duration {
        stat_cpu(&std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default())
    }

    /// Peak resident set size, MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

fn token(bin: &PathBuf, db: &str) -> String {
    let out = Command::new(bin)
        .args([
            "token",
            "create",
            "--channel",
            "bench",
            "--email",
            "bench@herald.test",
        ])
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("herald token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn gql(client: &reqwest::Client, url: &str, token: &str, query: &str, vars: Value) -> Value {
    client
        .post(format!("{url}/api/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("GraphQL request")
        .json()
        .await
        .expect("GraphQL answer")
}

async fn create_webhook(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    hook_url: &str,
    event: &str,
) -> String {
    let r = gql(
        client,
        url,
        token,
        "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
        json!({"i": {"url": hook_url, "events": [event], "secrets": [SECRET], "retries": 3}}),
    )
    .await;
    r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Load and measurement.

/// Offers `rate` events per second for `duration`, spread over `servers`. Returns events sent.
async fn offer(servers: &[String], token: &str, rate: u64, duration: Duration) -> u64 {
    let client = reqwest::Client::new();
    let sent = Arc::new(AtomicU64::new(0));
    let workers = 128u64;
    let period = Duration::from_secs_f64(workers as f64 / rate.max(1) as f64);
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, sent, token) = (client.clone(), sent.clone(), token.to_owned());
        let server = servers[(w as usize) % servers.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period.mul_f64(w as f64 / workers as f64), period);
            // A request slower than the period delays the next ones, which then catch up: the
            // rate offered is the rate asked for whenever herald keeps up on average, and a
            // slow answer is not hidden by skipping the events that would have followed it.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < until {
                tick.tick().await;
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let r = gql(&client, &server, &token, "mutation ($n: String!) { createCollection(input: {name: $n}) { errors { message } } }", json!({"n": format!("event {n}")})).await;
                if r["data"]["createCollection"]["errors"] != json!([]) {
                    eprintln!("mutation failed: {r}");
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    sent.load(Ordering::Relaxed)
}

/// The plain-client limit: POSTs of `body` to the receiver, 64 at a time, for `duration`.
async fn plain_limit(addr: std::net::SocketAddr, body: Bytes, duration: Duration) -> (f64, String) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let done = Arc::new(AtomicU64::new(0));
    let cpu0 = CpuSample::now(&[]);
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, done, body) = (client.clone(), done.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if client
                    .post(format!("http://{addr}/plain"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let posts = done.load(Ordering::Relaxed);
    let cpu = cpu0.until(&CpuSample::now(&[]));
    (posts as f64 / duration.as_secs_f64(), cpu.per(posts))
}

struct Row {
    scenario: String,
    /// Events offered per second.
    events_per_s: f64,
    /// Events per second asked of the load generator.
    asked: u64,
    deliveries_per_s: f64,
    p50: u32,
    p90: u32,
    p99: u32,
    max: u32,
    rss_mib: f64,
    cpu_us_per_delivery: f64,
    /// Every process's CPU per delivery during the load (see `CpuSplit::per`).
    cpu_split: String,
    /// The plain client's POSTs/s, measured right after this run.
    limit: f64,
    note: String,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    webhooks: usize,
    slow: usize,
    rate: u64,
    backlog: i64,
    processes: usize,
    /// Scrape `GET /metrics` every second while the load runs.
    scrape: bool,
    /// Finished deliveries (with an attempt each) seeded older than the retention, for herald
    /// to delete while the load runs.
    old: i64,
}

impl Row {
    /// Whether herald sent (nearly) all it was offered, at the rate asked for, while it was
    /// offered, with no queue growing behind it (p99 under [`KEPT_UP_P99_MS`]).
    fn kept_up(&self, webhooks: usize) -> bool {
        self.events_per_s >= 0.97 * self.asked as f64
            && self.deliveries_per_s >= 0.97 * self.events_per_s * webhooks as f64
            && self.p99 < KEPT_UP_P99_MS
    }
}

/// A fan-out run whose p99 reached this had a queue growing behind it.
const KEPT_UP_P99_MS: u32 = 250;

/// Runs of the search for the highest rate herald keeps up with, at most.
const KEPT_UP_TRIES: usize = 5;

/// After a fan-out that fell behind (`offered` events/s, `sent` deliveries/s), the highest rate
/// herald keeps up with, in at most [`KEPT_UP_TRIES`] runs: starting from what it sent, going
/// up a tenth at a time (never above `offered`) while every run keeps up, then bisecting
/// between the highest rate kept up with and the lowest that fell behind, until the two are
/// within 3 %. The row is the best kept-up run (or the last try, when none kept up); its note
/// lists every rate tried.
async fn highest_kept_up(
    args: &Args,
    bin: &PathBuf,
    stats: &Arc<Stats>,
    addr: std::net::SocketAddr,
    sc: &Scenario,
    offered: f64,
    sent: f64,
) -> Row {
    let ceiling = (offered.floor() as u64).max(1);
    let mut rate = ((sent / sc.webhooks as f64).floor() as u64).clamp(1, ceiling);
    // The lowest rate that fell behind (the first run did, at `offered`, but it also paid for
    // queueing the excess, so herald may keep up just below); `kept` holds the highest kept up.
    let mut high: Option<u64> = None;
    let mut kept: Option<Row> = None;
    let mut last = None;
    let mut tried = Vec::new();
    for _ in 0..KEPT_UP_TRIES {
        let scenario = Scenario {
            name: "fanout, kept up",
            rate,
            ..*sc
        };
        eprintln!(
            "running {} on {} at {} events/s for {} s …",
            scenario.name, args.db, rate, args.duration
        );
        let row = run(args, bin, stats, addr, &scenario).await;
        let ok = row.kept_up(sc.webhooks);
        tried.push(format!("{rate} {}", if ok { "kept up" } else { "behind" }));
        if ok {
            kept = Some(row);
        } else {
            high = Some(rate);
            last = Some(row);
        }
        let next = match (high, &kept) {
            // Every run kept up: a tenth higher.
            (None, _) => (rate + rate.div_ceil(10)).min(ceiling),
            (Some(high), Some(best)) => {
                // Stop within 3 % of a rate that fell behind.
                if (high - best.asked) * 100 <= 3 * high {
                    break;
                }
                (best.asked + high) / 2
            }
            // Nothing kept up yet: a tenth lower.
            (Some(_), None) => rate * 9 / 10,
        };
        if next == rate || next == 0 {
            break;
        }
        rate = next;
    }
    let mut row = kept.or(last).expect("at least one rate is tried");
    row.note = format!("{}; events/s tried: {}", row.note, tried.join(", "));
    row
}

async fn run(
    args: &Args,
    bin: &PathBuf,
    stats: &Arc<Stats>,
    addr: std::net::SocketAddr,
    sc: &Scenario,
) -> Row {
    let db = Db::new(args).await;
    let token = token(bin, &db.url);
    let mut heralds = Vec::new();
    for _ in 0..sc.processes {
        let retention = (sc.old > 0).then_some(Duration::from_secs(1));
        heralds.push(Herald::start(bin, &db.url, retention).await);
    }
    let client = reqwest::Client::new();
    let first = heralds[0].url.clone();
    stats.slow_below.store(sc.slow, Ordering::Relaxed);
    for i in 0..sc.webhooks {
        create_webhook(
            &client,
            &first,
            &token,
            &format!("http://{addr}/hook/{i}"),
            "COLLECTION",
        )
        .await;
    }
    let mut note = String::new();
    if sc.backlog > 0 {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let dead_url = format!("http://{dead}/hook");
        let id = create_webhook(&client, &first, &token, &dead_url, "VIDEO").await;
        let n = herald::domain::ids::decode(herald::domain::ids::Kind::Webhook, &id).expect("id");
        let r = gql(
            &client,
            &first,
            &token,
            "mutation { createVideo(input: {title: \"backlog\"}) { errors { message } } }",
            json!({}),
        )
        .await;
        assert_eq!(r["data"]["createVideo"]["errors"], json!([]));
        let event = db.scalar("SELECT MAX(id) FROM events").await;
        let t = Instant::now();
        db.seed(n, event, &dead_url, sc.backlog).await;
        note = format!(
            "{} queued for a dead receiver (seeded in {:.0} s)",
            sc.backlog,
            t.elapsed().as_secs_f64()
        );
    }

    if sc.old > 0 {
        let r = gql(
            &client,
            &first,
            &token,
            "mutation { createCollection(input: {name: \"old\"}) { errors { message } } }",
            json!({}),
        )
        .await;
        assert_eq!(r["data"]["createCollection"]["errors"], json!([]));
        let t = Instant::now();
        db.seed_old(sc.old).await;
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&format!(
            "{} old finished deliveries seeded in {:.0} s",
            sc.old,
            t.elapsed().as_secs_f64()
        ));
    }
    let servers: Vec<String> = heralds.iter().map(|h| h.url.clone()).collect();
    let expected_per_event = sc.webhooks as u64;
    let duration = Duration::from_secs(args.duration);
    if let Ok(mut l) = stats.latencies.lock() {
        l.clear();
    }
    let base = stats.received.load(Ordering::Relaxed);
    let slow_base = stats.received_slow.load(Ordering::Relaxed);
    let dup_base = stats.duplicates.load(Ordering::Relaxed);
    let cpu0 = CpuSample::now(&heralds);
    stats.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let scraper = sc
        .scrape
        .then(|| tokio::spawn(scrape_metrics(first.clone(), duration)));
    let events = offer(&servers, &token, sc.rate, duration).await;
    let elapsed = started.elapsed();
    if let Some(scraper) = scraper {
        let (scrapes, slowest) = scraper.await.unwrap_or_default();
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&format!(
            "{scrapes} scrapes of /metrics, the slowest {} ms",
            slowest.as_millis()
        ));
    }
    let in_window_all = stats.received.load(Ordering::Relaxed) - base;
    // With slow receivers, the throughput that matters is the healthy webhooks'.
    let in_window_slow = stats.received_slow.load(Ordering::Relaxed) - slow_base;
    let in_window = in_window_all - in_window_slow;
    let cpu = cpu0.until(&CpuSample::now(&heralds));
    let expected = events * expected_per_event;
    let (delivered, lat) = stats.settle(base, expected).await;
    let rss: f64 = heralds.iter().map(Herald::peak_rss_mib).fold(0.0, f64::max);
    // Every attempt is recorded: wait (up to a deadline) for the last rounds to commit.
    let until = Instant::now() + Duration::from_secs(30);
    let mut recorded = 0;
    while Instant::now() < until {
        recorded = db
            .scalar("SELECT COUNT(*) FROM delivery_attempts WHERE result = 'SUCCESS'")
            .await;
        if recorded >= delivered as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if sc.old > 0 {
        let left = db
            .scalar("SELECT COUNT(*) FROM deliveries WHERE updated_at = 0")
            .await;
        note.push_str(&format!(
            "; retention deleted {} of them by the end of the load ({:.0}/s)",
            sc.old - left,
            (sc.old - left) as f64 / elapsed.as_secs_f64()
        ));
    }
    let dups = stats.duplicates.load(Ordering::Relaxed) - dup_base;
    if !note.is_empty() {
        note.push_str("; ");
    }
    if sc.slow > 0 {
        note.push_str(&format!(
            "deliveries/s counts the {} healthy webhooks ({:.0}/s each); the {} slow ones completed {:.0}/s; ",
            sc.webhooks - sc.slow,
            in_window as f64 / elapsed.as_secs_f64() / (sc.webhooks - sc.slow) as f64,
            sc.slow,
            in_window_slow as f64 / elapsed.as_secs_f64()
        ));
    }
    note.push_str(&format!(
        "{delivered}/{expected} delivered, {recorded} successes recorded, {dups} duplicates"
    ));
    drop(heralds);
    if let Some(writes) = db.delivery_writes().await {
        note.push_str(&format!("; {writes}"));
    }
    db.drop_database().await;
    // The machine's own limit right after the load, with herald stopped: its speed moves by
    // a third within an hour here, so each row is compared with the machine as it was then.
    let (limit, _) = plain_limit(addr, stats.sample_body(), PLAIN_AFTER_EACH).await;
    Row {
        scenario: format!(
            "{} ({}{})",
            sc.name,
            args.db,
            if sc.processes > 1 {
                ", 2 processes"
            } else {
                ""
            }
        ),
        events_per_s: events as f64 / elapsed.as_secs_f64(),
        asked: sc.rate,
        deliveries_per_s: in_window as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p90: percentile(&lat, 0.9),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0),
        rss_mib: rss,
        cpu_us_per_delivery: cpu.herald.as_micros() as f64 / in_window_all.max(1) as f64,
        cpu_split: cpu.per(in_window_all),
        limit,
        note,
    }
}

/// Scrapes `GET /metrics` every second for `duration`, as Prometheus would; returns how many
/// scrapes answered 200 and the slowest.
async fn scrape_metrics(base: String, duration: Duration) -> (u64, Duration) {
    let client = reqwest::Client::new();
    let until = Instant::now() + duration;
    let (mut scrapes, mut slowest) = (0, Duration::ZERO);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < until {
        tick.tick().await;
        let t = Instant::now();
        let ok = match client.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
            _ => false,
        };
        if ok {
            scrapes += 1;
            slowest = slowest.max(t.elapsed());
        }
    }
    (scrapes, slowest)
}

/// How long the plain client runs after each scenario.
const PLAIN_AFTER_EACH: Duration = Duration::from_secs(5);

/// The `ingest` scenario: a Strava source, POSTed to as Strava would, each event relayed to
/// [`ingest::WEBHOOKS`] webhooks.
mod ingest {
    use super::*;

    /// Webhooks subscribed to `SOURCE`.
    pub const WEBHOOKS: usize = 3;

    /// Offers `rate` Strava events per second to `url` for `duration`, each a new activity.
    /// Returns the requests sent, those answered 200 `ACCEPTED`, and each answer's time (µs).
    async fn offer(url: &str, rate: u64, duration: Duration) -> (u64, u64, Vec<u32>) {
        let client = reqwest::Client::new();
        let sent = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let workers = 64u64;
        let period = Duration::from_secs_f64(workers as f64 / rate.max(1) as f64);
        let until = Instant::now() + duration;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (client, url) = (client.clone(), url.to_owned());
            let (sent, accepted, answers) = (sent.clone(), accepted.clone(), answers.clone());
            tasks.push(tokio::spawn(async move {
                let start = tokio::time::Instant::now() + period.mul_f64(w as f64 / workers as f64);
                let mut tick = tokio::time::interval_at(start, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while Instant::now() < until {
                    tick.tick().await;
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    let body = json!({
                        "aspect_type": "create", "event_time": chrono::Utc::now().timestamp(),
                        "object_id": n, "object_type": "activity", "owner_id": 134815,
                        "subscription_id": 120475, "updates": {}
                    });
                    let t = Instant::now();
                    let answer = client.post(&url).json(&body).send().await;
                    let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
                    if let Ok(mut a) = answers.lock() {
                        a.push(us);
                    }
                    match answer {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            if v["outcome"] == "ACCEPTED" {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(r) => eprintln!("ingest answered {}", r.status()),
                        Err(e) => eprintln!("ingest request failed: {e}"),
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
        (
            sent.load(Ordering::Relaxed),
            accepted.load(Ordering::Relaxed),
            answers,
        )
    }

    pub async fn run(
        args: &Args,
        bin: &PathBuf,
        stats: &Arc<Stats>,
        addr: std::net::SocketAddr,
    ) -> Row {
        let db = Db::new(args).await;
        let token = token(bin, &db.url);
        let herald = Herald::start(bin, &db.url, None).await;
        let client = reqwest::Client::new();
        stats.slow_below.store(0, Ordering::Relaxed);
        for i in 0..WEBHOOKS {
            let hook = format!("http://{addr}/hook/{i}");
            create_webhook(&client, &herald.url, &token, &hook, "SOURCE").await;
        }
        let r = gql(
            &client,
            &herald.url,
            &token,
            "mutation { createSource(input: {name: \"bench\", kind: STRAVA, verifyToken: \"bench\"}) { source { ingestUrl } errors { message } } }",
            json!({}),
        )
        .await;
        let public = r["data"]["createSource"]["source"]["ingestUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        let path = &public[public.find("/ingest/").expect("an ingest URL")..];
        let url = format!("{}{path}", herald.url);

        if let Ok(mut l) = stats.latencies.lock() {
            l.clear();
        }
        let base = stats.received.load(Ordering::Relaxed);
        let dup_base = stats.duplicates.load(Ordering::Relaxed);
        let cpu0 = CpuSample::now(std::slice::from_ref(&herald));
        stats.measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let duration = Duration::from_secs(args.duration);
        let (sent, accepted, mut answers) = offer(&url, args.ingest_rate, duration).await;
        let elapsed = started.elapsed();
        let in_window = stats.received.load(Ordering::Relaxed) - base;
        let cpu = cpu0.until(&CpuSample::now(std::slice::from_ref(&herald)));
        let expected = accepted * WEBHOOKS as u64;
        let (delivered, lat) = stats.settle(base, expected).await;
        answers.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let dups = stats.duplicates.load(Ordering::Relaxed) - dup_base;
        let rss = herald.peak_rss_mib();
        drop(herald);
        let events = db.scalar("SELECT COUNT(*) FROM events").await;
        db.drop_database().await;
        let (limit, _) = plain_limit(addr, stats.sample_body(), PLAIN_AFTER_EACH).await;
        Row {
            scenario: format!("ingest ({}, {WEBHOOKS} webhooks)", args.db),
            events_per_s: accepted as f64 / elapsed.as_secs_f64(),
            asked: args.ingest_rate,
            deliveries_per_s: in_window as f64 / elapsed.as_secs_f64(),
            p50: percentile(&lat, 0.5),
            p90: percentile(&lat, 0.9),
            p99: percentile(&lat, 0.99),
            max: lat.last().copied().unwrap_or(0),
            rss_mib: rss,
            cpu_us_per_delivery: cpu.herald.as_micros() as f64 / in_window.max(1) as f64,
            cpu_split: cpu.per(in_window),
            limit,
            note: format!(
                "events/s offered = requests/s accepted ({accepted}/{sent}); ingest answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; latency columns: received by herald to received by the receiver; {delivered}/{expected} delivered, {events} events, {dups} duplicates",
                ms(percentile(&answers, 0.5)),
                ms(percentile(&answers, 0.99)),
                ms(answers.last().copied().unwrap_or(0)),
            ),
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let bin = args.herald.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("current exe");
        me.parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("herald"))
            .expect("target dir")
    });
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release --bin herald",
        bin.display()
    );
    let stats = Arc::new(Stats::default());
    let addr = start_receiver(stats.clone());

    let all = [
        Scenario {
            name: "fanout",
            webhooks: 50,
            slow: 0,
            rate: args.rate,
            backlog: 0,
            processes: 1,
            scrape: false,
            old: 0,
        },
        Scenario {
            name: "latency",
            webhooks: 1,
            slow: 0,
            rate: 1000,
            backlog: 0,
            processes: 1,
            scrape: false,
            old: 0,
        },
        Scenario {
            name: "backlog",
            webhooks: 50,
            slow: 0,
            rate: args.rate,
            backlog: args.backlog,
            processes: 1,
            scrape: false,
            old: 0,
        },
        Scenario {
            name: "metrics",
            webhooks: 50,
            slow: 0,
            rate: args.rate,
            backlog: 0,
            processes: 1,
            scrape: true,
            old: 0,
        },
        Scenario {
            name: "retention",
            webhooks: 50,
            slow: 0,
            rate: args.rate,
            backlog: 0,
            processes: 1,
            scrape: false,
            old: args.old,
        },
        Scenario {
            name: "slow",
            webhooks: 50,
            slow: 17,
            rate: args.rate,
            backlog: 0,
            processes: 1,
            scrape: false,
            old: 0,
        },
        Scenario {
            name: "two",
            webhooks: 50,
            slow: 0,
            rate: args.rate,
            backlog: 0,
            processes: 2,
            scrape: false,
            old: 0,
        },
    ];
    let chosen: Vec<&Scenario> = all
        .iter()
        .filter(|s| args.scenario == "all" || args.scenario == s.name)
        .filter(|s| s.processes == 1 || args.db == "postgres")
        .collect();
    let with_ingest = args.scenario == "all" || args.scenario == "ingest";
    assert!(
        !chosen.is_empty() || with_ingest,
        "no scenario {:?} for --db {}",
        args.scenario,
        args.db
    );

    let mut rows = Vec::new();
    for sc in chosen {
        eprintln!(
            "running {} on {} for {} s …",
            sc.name, args.db, args.duration
        );
        let row = run(&args, &bin, &stats, addr, sc).await;
        // Offered more than it sends, herald builds a backlog: the deliveries/s above is what
        // it sends while also writing the excess, and claiming it later.
        let behind = !row.kept_up(sc.webhooks);
        let (offered, sent) = (row.events_per_s, row.deliveries_per_s);
        rows.push(row);
        if sc.name == "fanout" && behind {
            rows.push(highest_kept_up(&args, &bin, &stats, addr, sc, offered, sent).await);
        }
    }
    if with_ingest {
        eprintln!("running ingest on {} for {} s …", args.db, args.duration);
        rows.push(ingest::run(&args, &bin, &stats, addr).await);
    }
    let body = stats.sample_body();
    let (limit, limit_cpu) = plain_limit(addr, body.clone(), Duration::from_secs(10)).await;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "\nherald benchmark — {} CPUs ({cpu}), {} s per scenario, body {} bytes, 1 secret",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.duration,
        body.len()
    );
    println!("plain-client limit (64 concurrent keep-alive POSTs to the same receiver), at the end: {limit:.0} req/s");
    println!("CPU per POST then, herald / receiver / client / rest: {limit_cpu}");
    println!(
        "each row's ratio is to the plain client measured for {} s right after its run\n",
        PLAIN_AFTER_EACH.as_secs()
    );
    println!("| scenario | events/s offered | deliveries/s | plain client/s | vs plain client | p50 ms | p90 ms | p99 ms | max ms | peak RSS MiB | CPU µs/delivery | CPU per delivery: herald / receiver / load / rest | notes |");
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    );
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} % | {} | {} | {} | {} | {:.0} | {:.0} | {} | {} |",
            r.scenario,
            r.events_per_s,
            r.deliveries_per_s,
            r.limit,
            100.0 * r.deliveries_per_s / r.limit.max(1.0),
            r.p50,
            r.p90,
            r.p99,
            r.max,
            r.rss_mib,
            r.cpu_us_per_delivery,
            r.cpu_split,
            r.note
        );
    }
    let checked = stats.checked.load(Ordering::Relaxed);
    println!(
        "\nsignatures checked on a sample: {checked}, failed: {}",
        stats.bad_signatures.load(Ordering::Relaxed)
    );
}
