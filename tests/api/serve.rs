//! `herald serve` as a process: what it says at start-up, its first token, its database and
//! address troubles, and a delivery cut off by SIGKILL that is made after a restart.

use crate::helpers::{
    cli_token, closed_port, fails, graphql_at, herald_on, viewer_status, Process, Reply, TestDb,
    TestReceiver, SECRET_A,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `herald serve` on a free port of loopback, logging at `info`, in a working directory of its
/// own (where it writes the first token for PostgreSQL); killed when dropped.
struct Serve {
    /// Its log (stderr), read as it comes.
    log: Process,
    /// `host:port`.
    address: String,
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `herald serve` on `db` with the settings `env`; see [`Serve::listening`].
    fn spawn(db: &str, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        let address = format!("127.0.0.1:{}", closed_port());
        let log = Process::spawn_logged(
            herald_on(db)
                .arg("serve")
                .current_dir(dir.path())
                .env("RUST_LOG", "info")
                .env("HERALD_LISTEN", &address)
                .envs(env.iter().copied()),
        );
        Serve { log, address, dir }
    }

    /// Waits until it says it listens.
    async fn listening(&mut self) {
        self.log.expect_line("herald is listening").await;
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// `herald serve` on a fresh database with `HERALD_DEV` set to `dev`, until it listens; its
/// start-up line, and the database, which must outlive it.
async fn serve_with_dev(dev: &str) -> (Serve, String, TestDb) {
    let db = TestDb::new().await;
    let mut serve = Serve::spawn(&db.url, &[("HERALD_DEV", dev)]);
    let start = serve.log.expect_line("starting").await;
    serve.listening().await;
    (serve, start, db)
}

#[tokio::test]
async fn serve_says_what_it_runs_warns_of_dev_mode_and_writes_no_colour_codes_to_a_pipe() {
    let (serve, start, _db) = serve_with_dev("1").await;
    let version = format!("herald {} starting", env!("CARGO_PKG_VERSION"));
    assert!(start.contains(&version), "{start}");
    assert!(
        start.contains(&format!("listen={}", serve.address)),
        "{start}"
    );
    assert!(start.contains("dev=true"), "{start}");
    assert!(start.contains("database=sqlite:") || start.contains("database=postgres:"));
    let log = serve.log.log();
    let warning = log.lines().find(|l| l.contains("SSRF")).expect("a warning");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("http://") && warning.contains("loopback"));
    assert!(!log.contains('\x1b'), "colour codes in:\n{log}");
}

#[tokio::test]
async fn without_dev_mode_there_is_no_warning() {
    let (serve, start, _db) = serve_with_dev("off").await;
    assert!(start.contains("dev=false"), "{start}");
    assert!(!serve.log.log().contains("SSRF"), "{}", serve.log.log());
}

/// Where `serve` writes the first token by default: beside the SQLite file, or in the working
/// directory for PostgreSQL.
fn default_token_file(db: &str, dir: &Path) -> PathBuf {
    match db.strip_prefix("sqlite://") {
        Some(path) => format!("{path}.initial-token").into(),
        None => dir.join("herald-initial-token"),
    }
}

#[tokio::test]
async fn the_first_admin_token_goes_to_a_private_file_and_never_to_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new().await;
    let mut serve = Serve::spawn(&db.url, &[]);
    let hint = serve.log.expect_line("More tokens:").await;
    serve.listening().await;

    let file = default_token_file(&db.url, serve.dir.path());
    let mode = std::fs::metadata(&file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let token = std::fs::read_to_string(&file).expect("read token file");
    let token = token.trim();
    assert!(token.starts_with("hrld_"), "{token:?}");
    let log = serve.log.log();
    assert!(!log.contains(token), "the token is in the log:\n{log}");
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(log.contains(&name), "the log names the file:\n{log}");
    // The database is not the default one, so the hint names it.
    assert!(
        hint.contains(&format!("DATABASE_URL='{}' herald token create", db.url)),
        "{hint}"
    );
    assert_eq!(viewer_status(&serve.base_url(), token).await, 200);
}

#[tokio::test]
async fn the_first_token_file_can_be_chosen() {
    let db = TestDb::new().await;
    let secrets = tempfile::tempdir().expect("temp dir");
    let chosen = secrets.path().join("first-token");
    let chosen_setting = chosen.to_str().expect("UTF-8 path");
    let mut serve = Serve::spawn(&db.url, &[("HERALD_INITIAL_TOKEN_FILE", chosen_setting)]);
    serve.listening().await;
    let token = std::fs::read_to_string(&chosen).expect("token file");
    assert!(token.trim().starts_with("hrld_"));
    assert!(!default_token_file(&db.url, serve.dir.path()).exists());
}

#[tokio::test]
async fn serve_on_an_address_in_use_names_it() {
    let db = TestDb::new().await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("addr").to_string();
    let err = fails(
        herald_on(&db.url)
            .arg("serve")
            .env("HERALD_LISTEN", &address),
    )
    .await;
    assert!(
        err.contains(&format!("{address} is already in use")),
        "{err}"
    );
}

#[tokio::test]
async fn serve_says_within_seconds_that_postgres_cannot_be_reached_and_keeps_trying() {
    let mut serve = Serve::spawn("postgres://postgres:sekret@127.0.0.1:1/x", &[]);
    let first = serve
        .log
        .expect_line_within("cannot connect", Duration::from_secs(5))
        .await;
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("127.0.0.1:1:"), "{first}");
    assert!(first.contains("Connection refused"), "{first}");
    // It keeps trying rather than giving up.
    let again = serve.log.expect_line("Connection refused").await;
    assert!(again.contains("trying again"), "{again}");
    assert!(
        serve.log.child.try_wait().expect("status").is_none(),
        "serve gave up"
    );
    assert!(!serve.log.log().contains("sekret"), "{}", serve.log.log());
}

/// Dev mode (deliveries to loopback) and short timings, for a delivery through `herald serve`.
const FAST: [(&str, &str); 4] = [
    ("HERALD_DEV", "true"),
    ("HERALD_DELIVERY_TIMEOUT_MS", "1000"),
    ("HERALD_RETRY_BASE_MS", "50"),
    ("HERALD_POLL_MS", "50"),
];

#[tokio::test]
async fn a_delivery_cut_off_by_sigkill_is_made_after_restart() {
    let db = TestDb::new().await;
    let token = cli_token(&db.url).await;
    let receiver = TestReceiver::start().await;
    // The first attempt hangs (the process is killed during it); later ones succeed.
    receiver.script([Reply::ok_after(Duration::from_secs(30))]);

    let mut server = Serve::spawn(&db.url, &FAST);
    server.listening().await;
    let http = reqwest::Client::new();
    let r = graphql_at(&http, &server.base_url(), &token, "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
        json!({"i": {"url": receiver.url(), "events": ["COLLECTION"], "secrets": [SECRET_A]}})).await;
    assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
    let r = graphql_at(
        &http,
        &server.base_url(),
        &token,
        "mutation { createCollection(input: {name: \"Survives\"}) { errors { message } } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]));
    let first = receiver.wait_for(1).await;
    // SIGKILL while the attempt is in flight.
    server.log.child.kill().await.expect("SIGKILL herald");

    // The lease (2 × timeout + 1 s) runs out, then the delivery is claimed again.
    let mut server = Serve::spawn(&db.url, &FAST);
    server.listening().await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Survives");
    assert_eq!(
        got[0].header("rewatch-hook-delivery-nonce"),
        got[1].header("rewatch-hook-delivery-nonce")
    );
    assert_eq!(first[0].body, got[1].body, "the same body is sent again");
}
