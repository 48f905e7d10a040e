//! herald's fault run: streams events into a `herald` process while killing it with SIGKILL
//! (`kill -9`) several times, restarting it on the same database each time, and then checks that
//! every event whose mutation was answered with success reached every webhook.
//!
//! ```sh
//! cargo build --bin herald --example chaos          # a debug build is enough
//! target/debug/examples/chaos --db sqlite
//! target/debug/examples/chaos --db postgres         # a server at 127.0.0.1:5432 (--pg)
//! target/debug/examples/chaos --db sqlite --kills 5 --duration 60 --rate 80 --seed 7
//! ```
//!
//! What it does:
//!
//! - starts the `herald` binary (`--herald`, by default the one beside this example's directory)
//!   on a fresh SQLite file in a temporary directory, or on a fresh PostgreSQL database created
//!   on `--pg` and dropped at the end, in dev mode and with retries of 50 ms to 1 s;
//! - runs a receiver on loopback with four webhooks pointing at it, all subscribed to
//!   `COLLECTION`, with 10 retries: one answers at once, one after 20-400 ms, one answers 500 to
//!   a quarter of the attempts, one does both. Failed attempts are retried, across the kills too.
//!   The receiver verifies both signatures of every request (a request that fails verification
//!   is answered 401 and counted) and records, for each webhook, which collection each delivery
//!   was about and under which nonce;
//! - streams `createCollection` mutations at `--rate` for `--duration` seconds, each naming its
//!   collection `chaos <n>`, and sorts them by their answer: accepted (the mutation answered
//!   with no error: its deliveries must all arrive), refused (herald was down: nothing was
//!   sent), or unconfirmed (the connection was cut after the request was sent, or herald
//!   answered with an error: the event may or may not exist);
//! - kills herald `--kills` times (by default 3 to 5, at random moments of the load), restarting
//!   it at once on the same database (on a new port; the load follows it);
//! - once the load has stopped, waits (at most `--drain` seconds) until every accepted event has
//!   reached every webhook and herald's queue is empty, stops herald with SIGTERM, and prints
//!   events accepted, deliveries expected, delivered, duplicated (a delivery answered 2xx more
//!   than once: allowed, delivery is at-least-once, but counted) and lost.
//!
//! It also reads herald's database: its deliveries by status, and how many have two successful
//! attempts in the log (a delivery attempted again after its success was recorded: must be 0).
//!
//! It exits with status 1 when a delivery was lost, a signature failed, a webhook got an event
//! that no mutation asked for, or a success was recorded twice. `CHAOS_HERALD_STDERR=1` shows
//! herald's log.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use clap::Parser;
use herald_verify::Verifier;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &str = "chaos-secret-chaos-secret-chaos-secret-42";

#[derive(Parser, Debug)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    db: String,
    /// The PostgreSQL server for `--db postgres` (a fresh database is created there and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg: String,
    /// The herald binary (default: `herald` beside this example's directory).
    #[arg(long)]
    herald: Option<PathBuf>,
    /// How many times herald is killed (default: 3 to 5, at random).
    #[arg(long)]
    kills: Option<usize>,
    /// Seconds of load.
    #[arg(long, default_value_t = 40)]
    duration: u64,
    /// Mutations (events) offered per second.
    #[arg(long, default_value_t = 60)]
    rate: u64,
    /// Seconds to wait, after the load, for every delivery to arrive.
    #[arg(long, default_value_t = 180)]
    drain: u64,
    /// Seed of the kill schedule (default: random; printed).
    #[arg(long)]
    seed: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The receiver.

/// How the webhook at an index answers.
#[derive(Clone, Copy)]
struct Behaviour {
    name: &'static str,
    slow: bool,
    flaky: bool,
}

const WEBHOOKS: [Behaviour; 4] = [
    Behaviour {
        name: "fast",
        slow: false,
        flaky: false,
    },
    Behaviour {
        name: "slow",
        slow: true,
        flaky: false,
    },
    Behaviour {
        name: "flaky",
        slow: false,
        flaky: true,
    },
    Behaviour {
        name: "slow+flaky",
        slow: true,
        flaky: true,
    },
];

/// A flaky webhook answers 500 to this share of the attempts.
const FLAKY_SHARE: f64 = 0.25;

/// The re-attempts each webhook allows: with a quarter of attempts failing, all eleven fail once
/// in four million deliveries.
const RETRIES: i64 = 10;

/// What the receiver got.
#[derive(Default)]
struct Ledger {
    /// For each (webhook index, collection name): how many times each nonce was answered 2xx.
    delivered: Mutex<HashMap<(usize, String), HashMap<String, u32>>>,
    /// Every request that reached the receiver.
    requests: AtomicU64,
    /// Requests answered 500 on purpose.
    failed_on_purpose: AtomicU64,
    /// Requests whose signatures did not verify (answered 401).
    bad_signatures: AtomicU64,
    /// Requests that were not a well-formed `collection.created` delivery (answered 400).
    malformed: AtomicU64,
}

struct Receiver {
    ledger: Ledger,
    verifier: Verifier,
}

/// `POST /hook/{index}`: verifies, maybe stalls or fails on purpose, then records the delivery.
async fn receive(
    State(rx): State<Arc<Receiver>>,
    Path(index): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    rx.ledger.requests.fetch_add(1, Ordering::Relaxed);
    let Some(behaviour) = WEBHOOKS.get(index).copied() else {
        return StatusCode::NOT_FOUND;
    };
    let (delay, fail) = {
        let mut rng = rand::rng();
        let delay = behaviour.slow.then(|| rng.random_range(20..=400));
        (delay, behaviour.flaky && rng.random_bool(FLAKY_SHARE))
    };
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let now = chrono::Utc::now().timestamp();
    // Both schemes: the Standard Webhooks one covers the body, the Rewatch one the headers.
    let verified = rx.verifier.verify_standard_at(&pairs, &body, now).is_ok()
        && rx.verifier.verify_rewatch_at(&pairs, now).is_ok();
    if !verified {
        rx.ledger.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    if fail {
        rx.ledger.failed_on_purpose.fetch_add(1, Ordering::Relaxed);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let nonce = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(|b| b["event"] == "collection.created")
        .and_then(|b| b["collection"]["name"].as_str().map(str::to_owned));
    let (Some(nonce), Some(name)) = (nonce, name) else {
        rx.ledger.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    if let Ok(mut delivered) = rx.ledger.delivered.lock() {
        *delivered
            .entry((index, name))
            .or_default()
            .entry(nonce)
            .or_default() += 1;
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(rx: Arc<Receiver>) -> Result<std::net::SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Router::new()
        .route("/hook/{index}", post(receive))
        .with_state(rx);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("receiver stopped: {e}");
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// The database and herald.

struct Db {
    url: String,
    /// On PostgreSQL: the server's URL and the database's name, to drop it.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn new(args: &Args) -> Result<Db, Error> {
        match args.db.as_str() {
            "postgres" => {
                let name = format!("herald_chaos_{}", hex::encode(rand::random::<[u8; 6]>()));
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&args.pg).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                let mut url = url::Url::parse(&args.pg)?;
                url.set_path(&name);
                Ok(Db {
                    url: url.to_string(),
                    pg: Some((args.pg.clone(), name)),
                    _dir: None,
                })
            }
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                Ok(Db {
                    url: format!("sqlite://{}", dir.path().join("chaos.db").display()),
                    pg: None,
                    _dir: Some(dir),
                })
            }
            other => Err(format!("--db must be sqlite or postgres, not {other:?}").into()),
        }
    }

    async fn drop_database(&self) {
        if let Some((server, name)) = &self.pg {
            if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(server).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    /// herald's deliveries by status, read straight from its database.
    async fn delivery_statuses(&self) -> Result<Vec<(String, i64)>, Error> {
        self.counts("SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status")
            .await
    }

    /// Deliveries with more than one successful attempt in herald's log. A success is
    /// recorded before anything else can claim the delivery again, so this is 0 unless a
    /// delivery was attempted again after its success was recorded; the duplicates a kill
    /// causes have one success recorded, the one after the restart.
    async fn recorded_twice(&self) -> Result<i64, Error> {
        let sql = "SELECT 'twice', COUNT(*) FROM (SELECT delivery_id FROM delivery_attempts \
                   WHERE result = 'SUCCESS' GROUP BY delivery_id HAVING COUNT(*) > 1) AS t";
        Ok(self.counts(sql).await?.iter().map(|(_, n)| n).sum())
    }

    /// Rows of (label, count) that `sql` selects.
    async fn counts(&self, sql: &str) -> Result<Vec<(String, i64)>, Error> {
        Ok(if self.pg.is_some() {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url).await?;
            sqlx::query_as(sql).fetch_all(&mut c).await?
        } else {
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url).await?;
            sqlx::query_as(sql).fetch_all(&mut c).await?
        })
    }

    /// Deliveries still waiting for an attempt (`PENDING` or `RETRYING`).
    async fn queued(&self) -> Result<i64, Error> {
        Ok(self
            .delivery_statuses()
            .await?
            .iter()
            .filter(|(status, _)| status == "PENDING" || status == "RETRYING")
            .map(|(_, n)| n)
            .sum())
    }
}

struct Herald {
    child: Child,
    url: String,
}

impl Drop for Herald {
    /// A herald left running (the run failed half-way) is killed, not orphaned.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Herald {
    async fn start(bin: &PathBuf, db: &str) -> Result<Herald, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", db)
            .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
            .env("HERALD_DEV", "true")
            .env("HERALD_RETRY_BASE_MS", "50")
            .env("HERALD_RETRY_FACTOR", "2")
            .env("HERALD_RETRY_CAP_MS", "1000")
            // A killed attempt's lease (2 × this + 1 s) runs out after 5 s.
            .env("HERALD_DELIVERY_TIMEOUT_MS", "2000")
            .env("HERALD_POLL_MS", "200")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("CHAOS_HERALD_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let mut herald = Herald {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        herald.ready().await?;
        Ok(herald)
    }

    /// Waits until `/readyz` answers 200; fails if herald exits or takes over 60 s.
    async fn ready(&mut self) -> Result<(), Error> {
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = client
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("herald exited while starting: {status}").into());
            }
            if Instant::now() > until {
                return Err("herald did not become ready within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as `kill -9`: no grace, nothing recorded, leases left behind.
    fn kill(&mut self) -> Result<(), Error> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Stops herald as an operator would (SIGTERM); it is killed if it has not stopped in 30 s.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A new API token, made with `herald token create` on `db`.
fn token(bin: &PathBuf, db: &str) -> Result<String, Error> {
    let out = Command::new(bin)
        .args(["token", "create", "--channel", "chaos"])
        .args(["--email", "chaos@herald.test"])
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "herald token create: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn create_webhook(
    client: &reqwest::Client,
    herald: &str,
    token: &str,
    url: &str,
) -> Result<(), Error> {
    let r: Value = client
        .post(format!("{herald}/api/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
            "variables": {"i": {"url": url, "events": ["COLLECTION"], "secrets": [SECRET], "retries": RETRIES}},
        }))
        .send()
        .await?
        .json()
        .await?;
    if r["data"]["createWebhook"]["webhook"]["id"].is_string() {
        Ok(())
    } else {
        Err(format!("createWebhook: {r}").into())
    }
}

// ---------------------------------------------------------------------------------------------
// The load.

/// What the mutations' answers said, by collection name.
#[derive(Default)]
struct Outcomes {
    /// Answered with success: the event and its deliveries exist.
    accepted: Vec<String>,
    /// Never reached herald (the connection was refused while it was down).
    refused: Vec<String>,
    /// Sent, then cut off by a kill: the event may exist.
    cut_off: Vec<String>,
    /// Answered with an error (or not as GraphQL): the event may exist.
    errored: Vec<String>,
}

impl Outcomes {
    /// Mutations whose event may or may not exist.
    fn unconfirmed(&self) -> impl Iterator<Item = &String> {
        self.cut_off.iter().chain(&self.errored)
    }
}

enum Outcome {
    Accepted,
    Refused,
    CutOff,
    Errored,
}

async fn create_collection(
    client: &reqwest::Client,
    herald: &str,
    token: &str,
    name: &str,
) -> Outcome {
    let sent = client
        .post(format!("{herald}/api/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation ($n: String!) { createCollection(input: {name: $n}) { collection { id } errors { message } } }",
            "variables": {"n": name},
        }))
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Outcome::Refused,
        Err(_) => return Outcome::CutOff,
    };
    let Ok(text) = response.text().await else {
        return Outcome::CutOff;
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(r)
            if r["data"]["createCollection"]["errors"] == json!([])
                && r["data"]["createCollection"]["collection"]["id"].is_string() =>
        {
            Outcome::Accepted
        }
        _ => Outcome::Errored,
    }
}

/// Offers `rate` mutations per second for `duration`, each to the herald `current` names then.
async fn offer(
    current: Arc<RwLock<String>>,
    token: String,
    rate: u64,
    duration: Duration,
) -> Outcomes {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let next = Arc::new(AtomicU64::new(0));
    let workers = 64u64;
    let period = Duration::from_secs_f64(workers as f64 / rate.max(1) as f64);
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, outcomes, next, current, token) = (
            client.clone(),
            outcomes.clone(),
            next.clone(),
            current.clone(),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now() + period.mul_f64(w as f64 / workers as f64);
            let mut tick = tokio::time::interval_at(start, period);
            // While herald restarts, requests fail at once: no catching up afterwards.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < until {
                tick.tick().await;
                let name = format!("chaos {}", next.fetch_add(1, Ordering::Relaxed));
                let herald = current.read().map(|u| u.clone()).unwrap_or_default();
                let outcome = create_collection(&client, &herald, &token, &name).await;
                if let Ok(mut o) = outcomes.lock() {
                    match outcome {
                        Outcome::Accepted => o.accepted.push(name),
                        Outcome::Refused => o.refused.push(name),
                        Outcome::CutOff => o.cut_off.push(name),
                        Outcome::Errored => o.errored.push(name),
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut outcomes = outcomes
        .lock()
        .map(|mut o| std::mem::take(&mut *o))
        .unwrap_or_default();
    for names in [
        &mut outcomes.accepted,
        &mut outcomes.refused,
        &mut outcomes.cut_off,
        &mut outcomes.errored,
    ] {
        names.sort();
    }
    outcomes
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The least time a herald runs before it is killed.
const MIN_UPTIME: Duration = Duration::from_secs(1);

/// The moments, from the start of the load, at which herald is killed: spread at random over
/// its middle 80 %, sorted.
fn kill_schedule(rng: &mut StdRng, kills: usize, duration: Duration) -> Vec<Duration> {
    let mut at: Vec<Duration> = (0..kills)
        .map(|_| duration.mul_f64(rng.random_range(0.1..0.9)))
        .collect();
    at.sort();
    at
}

/// What the receiver got, held against what the mutations were told.
struct Tally {
    expected: usize,
    /// Expected deliveries that arrived (once or more).
    delivered: usize,
    /// Deliveries (nonces) answered 2xx more than once.
    duplicated: usize,
    /// (webhook, event) pairs that arrived under more than one nonce.
    doubled_events: usize,
    /// Expected deliveries that did not arrive: (webhook index, collection name).
    lost: Vec<(usize, String)>,
    /// Events of unconfirmed mutations that reached at least one webhook.
    unconfirmed_delivered: usize,
    /// Events that reached a webhook although no mutation was accepted or unconfirmed for them.
    unexpected: usize,
}

fn tally(ledger: &Ledger, outcomes: &Outcomes) -> Tally {
    let delivered = ledger
        .delivered
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    let mut lost = Vec::new();
    for name in &outcomes.accepted {
        for index in 0..WEBHOOKS.len() {
            if !delivered.contains_key(&(index, name.clone())) {
                lost.push((index, name.clone()));
            }
        }
    }
    let accepted: HashSet<&String> = outcomes.accepted.iter().collect();
    let unconfirmed: HashSet<&String> = outcomes.unconfirmed().collect();
    let arrived: HashSet<&String> = delivered.keys().map(|(_, name)| name).collect();
    Tally {
        expected: outcomes.accepted.len() * WEBHOOKS.len(),
        delivered: outcomes.accepted.len() * WEBHOOKS.len() - lost.len(),
        duplicated: delivered
            .values()
            .flat_map(|nonces| nonces.values())
            .filter(|&&n| n > 1)
            .count(),
        doubled_events: delivered.values().filter(|nonces| nonces.len() > 1).count(),
        lost,
        unconfirmed_delivered: arrived.iter().filter(|n| unconfirmed.contains(*n)).count(),
        unexpected: arrived
            .iter()
            .filter(|n| !accepted.contains(*n) && !unconfirmed.contains(*n))
            .count(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the whole scenario; returns whether nothing was lost or wrong.
async fn run(args: Args) -> Result<bool, Error> {
    let bin = match &args.herald {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|dir| dir.join("herald"))
            .ok_or("cannot tell where the herald binary is: pass --herald")?,
    };
    if !bin.exists() {
        return Err(format!("{} is missing: cargo build --bin herald", bin.display()).into());
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let kills = args.kills.unwrap_or_else(|| rng.random_range(3..=5));
    let duration = Duration::from_secs(args.duration);
    let schedule = kill_schedule(&mut rng, kills, duration);

    let db = Db::new(&args).await?;
    let result = scenario(&args, &bin, &db, seed, &schedule).await;
    db.drop_database().await;
    result
}

async fn scenario(
    args: &Args,
    bin: &PathBuf,
    db: &Db,
    seed: u64,
    schedule: &[Duration],
) -> Result<bool, Error> {
    let token = token(bin, &db.url)?;
    let receiver = Arc::new(Receiver {
        ledger: Ledger::default(),
        verifier: Verifier::new([SECRET]),
    });
    let addr = start_receiver(receiver.clone()).await?;
    let mut herald = Herald::start(bin, &db.url).await?;
    let client = reqwest::Client::new();
    for index in 0..WEBHOOKS.len() {
        create_webhook(
            &client,
            &herald.url,
            &token,
            &format!("http://{addr}/hook/{index}"),
        )
        .await?;
    }
    eprintln!(
        "chaos on {}: {} events/s for {} s, herald killed at {} s (seed {seed})",
        args.db,
        args.rate,
        args.duration,
        schedule
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
    );

    let current = Arc::new(RwLock::new(herald.url.clone()));
    let duration = Duration::from_secs(args.duration);
    let load = tokio::spawn(offer(current.clone(), token.clone(), args.rate, duration));
    let started = Instant::now();
    let mut downtime = Duration::ZERO;
    let mut up_since = started;
    for at in schedule {
        // Each herald works a while before it is killed, so that every kill cuts work off.
        let when = (started + *at).max(up_since + MIN_UPTIME);
        tokio::time::sleep_until(when.into()).await;
        let down = Instant::now();
        herald.kill()?;
        herald = Herald::start(bin, &db.url).await?;
        if let Ok(mut url) = current.write() {
            url.clone_from(&herald.url);
        }
        up_since = Instant::now();
        downtime += up_since - down;
        eprintln!(
            "  killed at {:.1} s, ready again {:.2} s later",
            (down - started).as_secs_f64(),
            (up_since - down).as_secs_f64()
        );
    }
    let outcomes = load.await?;
    let load_ended = Instant::now();
    let load_lasted = load_ended - started;

    // Every accepted event at every webhook, and nothing left in herald's queue.
    let until = load_ended + Duration::from_secs(args.drain);
    let mut queued = db.queued().await?;
    while Instant::now() < until {
        queued = db.queued().await?;
        if queued == 0 && tally(&receiver.ledger, &outcomes).lost.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_in = load_ended.elapsed();
    herald.stop();
    let statuses = db.delivery_statuses().await?;
    let recorded_twice = db.recorded_twice().await?;
    let t = tally(&receiver.ledger, &outcomes);
    let ledger = &receiver.ledger;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);

    let sent = outcomes.accepted.len()
        + outcomes.refused.len()
        + outcomes.cut_off.len()
        + outcomes.errored.len();
    println!(
        "\nherald chaos, {}: {} webhooks ({}), {} events/s offered for {} s, herald killed {} times (kill -9), down {:.1} s in all",
        args.db,
        WEBHOOKS.len(),
        WEBHOOKS.map(|b| b.name).join(", "),
        args.rate,
        args.duration,
        schedule.len(),
        downtime.as_secs_f64()
    );
    println!(
        "mutations sent: {sent} ({:.0}/s); accepted {}, refused while herald was down {}, cut off by a kill {}, answered with an error {}",
        sent as f64 / load_lasted.as_secs_f64(),
        outcomes.accepted.len(),
        outcomes.refused.len(),
        outcomes.cut_off.len(),
        outcomes.errored.len()
    );
    println!("events accepted:     {}", outcomes.accepted.len());
    println!("deliveries expected: {}", t.expected);
    println!(
        "delivered:           {} ({:.1} s after the load stopped, {queued} left queued)",
        t.delivered,
        drained_in.as_secs_f64()
    );
    println!(
        "duplicated:          {} (the same delivery answered 2xx more than once); {} events delivered under two nonces",
        t.duplicated, t.doubled_events
    );
    println!("lost:                {}", t.lost.len());
    println!(
        "unconfirmed mutations whose event was delivered: {} of {}; events no mutation asked for: {}",
        t.unconfirmed_delivered,
        outcomes.unconfirmed().count(),
        t.unexpected
    );
    println!(
        "receiver: {} requests, {} answered 500 on purpose, {} bad signatures, {} malformed",
        load(&ledger.requests),
        load(&ledger.failed_on_purpose),
        load(&ledger.bad_signatures),
        load(&ledger.malformed)
    );
    println!(
        "herald's deliveries by status: {}; with two successes recorded: {recorded_twice}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (index, name) in t.lost.iter().take(20) {
        println!(
            "  lost: {name:?} to webhook {index} ({})",
            WEBHOOKS[*index].name
        );
    }
    Ok(t.lost.is_empty()
        && t.unexpected == 0
        && recorded_twice == 0
        && load(&ledger.bad_signatures) == 0
        && load(&ledger.malformed) == 0)
}
