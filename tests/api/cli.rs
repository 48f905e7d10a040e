//! The `herald` binary: migrate, token and user commands, listen's refusals, serve's start-up
//! (its log lines, its first token, its database and address troubles), `--help`, and serve
//! killed with SIGKILL mid-delivery to show that no delivery is lost.

use crate::helpers::{spawn_app, Reply, TestApp, TestDb, TestReceiver, DEADLINE, SECRET_A};
use serde_json::json;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

fn herald(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn");
    c
}

#[tokio::test]
async fn token_create_prints_only_the_token_and_it_works() {
    let db = TestDb::new().await;
    let out = herald(&db.url)
        .args(["migrate"])
        .output()
        .expect("run herald migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = herald(&db.url)
        .args([
            "token",
            "create",
            "--channel",
            "acme",
            "--email",
            "ops@acme.test",
            "--role",
            "member",
            "--first-name",
            "Ops",
        ])
        .output()
        .expect("run herald token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(lines[0].starts_with("hrld_") && lines[0].len() == 69);

    let bad = herald(&db.url)
        .args([
            "token",
            "create",
            "--channel",
            "no spaces!",
            "--email",
            "x@y.z",
        ])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--channel"));
}

#[tokio::test]
async fn a_bad_setting_is_refused_with_its_name() {
    let db = TestDb::new().await;
    let out = herald(&db.url)
        .env("HERALD_RETRY_FACTOR", "0.1")
        .args(["serve"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HERALD_RETRY_FACTOR"));
    let out = herald("mysql://nope")
        .args(["migrate"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(db: &str) -> Server {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let child = herald(db)
        .args(["serve"])
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_DEV", "true")
        .env("HERALD_DELIVERY_TIMEOUT_MS", "1000")
        .env("HERALD_RETRY_BASE_MS", "50")
        .env("HERALD_POLL_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn herald serve");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < until,
            "herald serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { child, url }
}

async fn gql(
    server: &Server,
    token: &str,
    query: &str,
    vars: serde_json::Value,
) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{}/api/graphql", server.url))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_delivery_cut_off_by_sigkill_is_made_after_restart() {
    let db = TestDb::new().await;
    let out = herald(&db.url)
        .args([
            "token",
            "create",
            "--channel",
            "acme",
            "--email",
            "a@acme.test",
        ])
        .output()
        .expect("token");
    let token = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let receiver = TestReceiver::start().await;
    // The first attempt hangs (the process is killed during it); later ones succeed.
    receiver.script([Reply {
        status: 200,
        headers: vec![],
        delay: Duration::from_secs(30),
    }]);

    let server = serve(&db.url).await;
    let r = gql(&server, &token, "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message } } }",
        json!({"i": {"url": receiver.url(), "events": ["COLLECTION"], "secrets": [SECRET_A]}})).await;
    assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
    let r = gql(
        &server,
        &token,
        "mutation { createCollection(input: {name: \"Survives\"}) { errors { message } } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]));
    let first = receiver.wait_for(1).await;
    drop(server); // SIGKILL while the attempt is in flight

    let server = serve(&db.url).await; // the lease (2 × timeout + 1 s) runs out, then it is claimed again
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Survives");
    assert_eq!(
        got[0].header("rewatch-hook-delivery-nonce"),
        got[1].header("rewatch-hook-delivery-nonce")
    );
    assert_eq!(first[0].body, got[1].body, "the same body is sent again");
    drop(server);
}

/// Runs `cmd` to its end, which must come before the deadline.
async fn finish(cmd: Command) -> Output {
    let run = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("herald exits in time")
        .expect("run herald")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `herald ARGS` on database `db` with the environment `env`; it must fail. Returns its
/// stderr.
async fn fails(db: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = herald(db);
    cmd.args(args).envs(env.iter().copied());
    let out = finish(cmd).await;
    assert!(!out.status.success(), "herald {args:?} succeeded");
    stderr(&out)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

/// A herald process whose stderr (its log) is read line by line as it comes; killed when
/// dropped.
struct Logged {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Logged {
    fn spawn(cmd: Command) -> Logged {
        let mut child = tokio::process::Command::from(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn herald");
        let stderr = child.stderr.take().expect("stderr");
        Logged {
            child,
            lines: tokio::io::BufReader::new(stderr).lines(),
            seen: Vec::new(),
        }
    }

    /// The first line, from here on, that contains `needle`; fails if none comes within
    /// `within` or the process ends first.
    async fn line(&mut self, needle: &str, within: Duration) -> String {
        let until = tokio::time::Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let next = tokio::time::timeout(left, self.lines.next_line()).await;
            let line = match next {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!("herald ended before logging {needle:?}:\n{}", self.log()),
                Err(_) => panic!("herald did not log {needle:?} in time:\n{}", self.log()),
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }
}

/// `herald serve` on a free port of loopback, in `dir`, logging at `info`.
fn serve_command(db: &str, dir: &std::path::Path) -> (Command, String) {
    let port = closed_port();
    let mut cmd = herald(db);
    cmd.args(["serve"])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"));
    (cmd, format!("127.0.0.1:{port}"))
}

/// `herald serve` on a fresh database with `HERALD_DEV` set to `dev`, until it listens: its
/// log, its start-up line and its address (and what must outlive it).
async fn serve_with_dev(dev: &str) -> (Logged, String, String, TestDb, tempfile::TempDir) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut cmd, address) = serve_command(&db.url, dir.path());
    cmd.env("HERALD_DEV", dev);
    let mut serve = Logged::spawn(cmd);
    let start = serve.line("starting", DEADLINE).await;
    serve.line("herald is listening", DEADLINE).await;
    (serve, start, address, db, dir)
}

#[tokio::test]
async fn serve_says_what_it_runs_warns_of_dev_mode_and_writes_no_colour_codes_to_a_pipe() {
    let (serve, start, address, _db, _dir) = serve_with_dev("1").await;
    let version = format!("herald {} starting", env!("CARGO_PKG_VERSION"));
    assert!(start.contains(&version), "{start}");
    assert!(start.contains(&format!("listen={address}")), "{start}");
    assert!(start.contains("dev=true"), "{start}");
    assert!(start.contains("database=sqlite:") || start.contains("database=postgres:"));
    let log = serve.log();
    let warning = log.lines().find(|l| l.contains("SSRF")).expect("a warning");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("http://") && warning.contains("loopback"));
    assert!(!log.contains('\x1b'), "colour codes in:\n{log}");
}

#[tokio::test]
async fn without_dev_mode_there_is_no_warning() {
    let (serve, start, _, _db, _dir) = serve_with_dev("off").await;
    assert!(start.contains("dev=false"), "{start}");
    assert!(!serve.log().contains("SSRF"), "{}", serve.log());
}

#[tokio::test]
async fn a_boolean_setting_that_is_not_one_is_refused_with_its_name() {
    let db = TestDb::new().await;
    for value in ["maybe", "enabled", "2"] {
        let err = fails(&db.url, &["serve"], &[("HERALD_DEV", value)]).await;
        assert!(err.contains("HERALD_DEV"), "{err}");
        assert!(err.contains(&format!("{value:?}")), "{err}");
        assert!(err.contains("true/false, 1/0, yes/no or on/off"), "{err}");
    }
}

/// Where `serve` writes the first token by default: beside the SQLite file, or in the working
/// directory for PostgreSQL.
fn default_token_file(db: &str, dir: &std::path::Path) -> std::path::PathBuf {
    match db.strip_prefix("sqlite://") {
        Some(path) => format!("{path}.initial-token").into(),
        None => dir.join("herald-initial-token"),
    }
}

async fn viewer_status(address: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{address}/api/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": "{ viewer { id } }"}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_first_admin_token_goes_to_a_private_file_and_never_to_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (cmd, address) = serve_command(&db.url, dir.path());
    let mut serve = Logged::spawn(cmd);
    let hint = serve.line("More tokens:", DEADLINE).await;
    serve.line("herald is listening", DEADLINE).await;

    let file = default_token_file(&db.url, dir.path());
    let mode = std::fs::metadata(&file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let token = std::fs::read_to_string(&file).expect("read token file");
    let token = token.trim();
    assert!(token.starts_with("hrld_"), "{token:?}");
    let log = serve.log();
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
    assert_eq!(viewer_status(&address, token).await, 200);
}

#[tokio::test]
async fn the_first_token_file_can_be_chosen() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let chosen = dir.path().join("secrets").join("first-token");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    let (mut cmd, _) = serve_command(&db.url, dir.path());
    cmd.env("HERALD_INITIAL_TOKEN_FILE", &chosen);
    let mut serve = Logged::spawn(cmd);
    serve.line("herald is listening", DEADLINE).await;
    let token = std::fs::read_to_string(&chosen).expect("token file");
    assert!(token.trim().starts_with("hrld_"));
    assert!(!default_token_file(&db.url, dir.path()).exists());
}

#[tokio::test]
async fn serve_on_an_address_in_use_names_it() {
    let db = TestDb::new().await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("addr").to_string();
    let err = fails(&db.url, &["serve"], &[("HERALD_LISTEN", &address)]).await;
    assert!(
        err.contains(&format!("{address} is already in use")),
        "{err}"
    );
}

#[tokio::test]
async fn serve_says_within_seconds_that_postgres_cannot_be_reached_and_keeps_trying() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cmd, _) = serve_command("postgres://postgres:sekret@127.0.0.1:1/x", dir.path());
    let mut serve = Logged::spawn(cmd);
    let first = serve.line("cannot connect", Duration::from_secs(5)).await;
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("127.0.0.1:1:"), "{first}");
    assert!(first.contains("Connection refused"), "{first}");
    // It keeps trying rather than giving up.
    let again = serve.line("Connection refused", DEADLINE).await;
    assert!(again.contains("trying again"), "{again}");
    assert!(
        serve.child.try_wait().expect("status").is_none(),
        "serve gave up"
    );
    assert!(!serve.log().contains("sekret"), "{}", serve.log());
}

#[tokio::test]
async fn one_off_commands_give_up_on_an_unreachable_postgres_with_the_cause() {
    for args in [&["migrate"][..], &["token", "list"]] {
        let err = fails("postgres://postgres:sekret@127.0.0.1:1/x", args, &[]).await;
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
        assert!(!err.contains("sekret"), "{err}");
    }
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run herald --help");
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn each_subcommand_help_shows_only_its_own_options() {
    let serve_only = [
        "--listen",
        "--dev",
        "--retry-base-ms",
        "--initial-token-file",
    ];
    let serve = help(&["serve"]);
    for option in serve_only.iter().chain(&["--database-url"]) {
        assert!(
            serve.contains(option),
            "serve --help lacks {option}:\n{serve}"
        );
    }
    assert!(serve.contains("Examples:"), "{serve}");

    let listen = help(&["listen"]);
    for option in ["--forward-to", "--server", "--token", "--events"] {
        assert!(listen.contains(option), "{listen}");
    }
    assert!(listen.contains("Example"), "{listen}");
    assert!(!listen.contains("--database-url"), "{listen}");

    let create = help(&["token", "create"]);
    for option in ["--channel", "--email", "--role", "--database-url"] {
        assert!(create.contains(option), "{create}");
    }
    assert!(create.contains("Examples:"), "{create}");

    let database_only = [
        help(&["migrate"]),
        help(&["token", "list"]),
        help(&["token", "revoke"]),
        help(&["user", "set-role"]),
        create,
        listen,
    ];
    for text in database_only {
        for option in serve_only {
            assert!(!text.contains(option), "{option} shown in:\n{text}");
        }
    }
}

#[tokio::test]
async fn listen_refuses_a_forward_to_that_is_not_an_http_url_before_connecting() {
    for bad in [
        "nonsense",
        "localhost:3000",
        "ftp://example.com/hook",
        "/hook",
    ] {
        // Nothing listens there: the URL is refused before any connection is tried.
        let server = format!("http://127.0.0.1:{}", closed_port());
        let args = ["listen", "--token", "hrld_x", "--server", &server];
        let err = fails("", &[&args[..], &["--forward-to", bad]].concat(), &[]).await;
        assert!(err.contains("--forward-to"), "{err}");
        assert!(err.contains("absolute http:// or https:// URL"), "{err}");
        assert!(!err.contains("Connection refused"), "{err}");
    }
}

#[tokio::test]
async fn listen_to_a_server_that_never_answered_fails_with_the_cause() {
    let server = format!("http://127.0.0.1:{}", closed_port());
    let args = ["listen", "--token", "hrld_x", "--server", &server];
    let err = fails(
        "",
        &[&args[..], &["--forward-to", "http://127.0.0.1:9/hook"]].concat(),
        &[],
    )
    .await;
    assert!(err.contains("cannot reach herald at"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("reconnecting"), "{err}");
}

/// Runs a herald command on `app`'s database; it must succeed. Returns (stdout, stderr).
async fn cli_ok(app: &TestApp, args: &[&str]) -> (String, String) {
    let mut cmd = herald(&app.db.url);
    cmd.args(args);
    let out = finish(cmd).await;
    let err = stderr(&out);
    assert!(out.status.success(), "herald {args:?}: {err}");
    (String::from_utf8(out.stdout).expect("utf-8"), err)
}

/// Runs a herald command on `app`'s database; it must fail. Returns its stderr.
async fn cli_fails(app: &TestApp, args: &[&str]) -> String {
    fails(&app.db.url, args, &[]).await
}

/// The `token list` row of `email`'s token, split into words.
async fn token_row(app: &TestApp, email: &str) -> Vec<String> {
    let (table, _) = cli_ok(app, &["token", "list", "--channel", "acme"]).await;
    let line = table
        .lines()
        .find(|l| l.contains(email))
        .unwrap_or_else(|| panic!("no row for {email}:\n{table}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn tokens_are_listed_and_a_revoked_one_gets_401() {
    let app = spawn_app().await;
    let ops = ["--channel", "acme", "--email", "ops@acme.test"];
    let (out, _) = cli_ok(&app, &[&["token", "create"][..], &ops].concat()).await;
    let token = out.trim().to_owned();

    let (table, _) = cli_ok(&app, &["token", "list"]).await;
    let header = table.lines().next().expect("header").split("  ");
    let header: Vec<&str> = header.map(str::trim).filter(|c| !c.is_empty()).collect();
    let expected = "ID|CHANNEL|USER|ROLE|CREATED (UTC)|LAST USED (UTC)|REVOKED (UTC)";
    assert_eq!(header.join("|"), expected, "{table}");
    assert!(table.contains("admin@example.com"), "all channels: {table}");
    let row = token_row(&app, "ops@acme.test").await;
    // ID, channel, user, role, created (date and time), last used, revoked.
    assert_eq!(row[1..4], ["acme", "ops@acme.test", "admin"], "{row:?}");
    assert_eq!(row[6..], ["never", "-"], "{row:?}");
    let (other, _) = cli_ok(&app, &["token", "list", "--channel", "acme"]).await;
    assert!(!other.contains("admin@example.com"), "{other}");

    // A use is noted (in the background: wait for it).
    assert_eq!(viewer_status(&app.addr.to_string(), &token).await, 200);
    let until = tokio::time::Instant::now() + DEADLINE;
    while token_row(&app, "ops@acme.test").await[6] == "never" {
        assert!(tokio::time::Instant::now() < until, "last use never noted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let id = row[0].clone();
    let (_, said) = cli_ok(&app, &["token", "revoke", &id]).await;
    assert!(said.contains("revoked"), "{said}");
    assert_eq!(viewer_status(&app.addr.to_string(), &token).await, 401);
    let row = token_row(&app, "ops@acme.test").await;
    assert_ne!(row.last().map(String::as_str), Some("-"), "{row:?}");
    // The server's own tokens still work.
    assert_eq!(viewer_status(&app.addr.to_string(), &app.token).await, 200);

    let err = cli_fails(&app, &["token", "revoke", "999999"]).await;
    assert!(err.contains("no token has ID 999999"), "{err}");
}

async fn can_see_webhooks(app: &TestApp, token: &str) -> bool {
    let r = app
        .graphql_as(
            token,
            "{ channel { webhooks { nodes { id } } } }",
            json!({}),
        )
        .await;
    match r["errors"][0]["message"].as_str() {
        None => true,
        Some(m) if m.contains("Only channel admins") => false,
        Some(m) => panic!("unexpected error {m}"),
    }
}

/// Runs `herald ARGS --channel acme --email m@acme.test`; returns (stdout, stderr).
async fn for_m(app: &TestApp, args: &[&str]) -> (String, String) {
    let user = ["--channel", "acme", "--email", "m@acme.test"];
    cli_ok(app, &[args, &user].concat()).await
}

#[tokio::test]
async fn roles_are_changed_by_token_create_and_user_set_role_and_said_so() {
    let app = spawn_app().await;
    let (out, said) = for_m(&app, &["token", "create", "--role", "member"]).await;
    assert!(!said.contains("now"), "{said}");
    let token = out.trim().to_owned();
    assert!(!can_see_webhooks(&app, &token).await);

    // Without --role, an existing user keeps the role they have.
    let (_, said) = for_m(&app, &["token", "create"]).await;
    assert!(!said.contains("now"), "{said}");
    assert!(!can_see_webhooks(&app, &token).await);

    let (_, said) = for_m(&app, &["token", "create", "--role", "admin"]).await;
    let promoted = "herald: user m@acme.test was a member of channel acme; now an admin";
    assert!(said.contains(promoted), "{said}");
    assert!(
        can_see_webhooks(&app, &token).await,
        "all the user's tokens"
    );
    assert_eq!(token_row(&app, "m@acme.test").await[3], "admin");

    let (_, said) = for_m(&app, &["user", "set-role", "--role", "member"]).await;
    let demoted = "herald: user m@acme.test was an admin of channel acme; now a member";
    assert!(said.contains(demoted), "{said}");
    assert!(!can_see_webhooks(&app, &token).await);
    let (_, said) = for_m(&app, &["user", "set-role", "--role", "member"]).await;
    assert!(said.contains("is already a member"), "{said}");

    let unknown = [
        "--channel",
        "acme",
        "--email",
        "x@acme.test",
        "--role",
        "admin",
    ];
    let err = cli_fails(&app, &[&["user", "set-role"][..], &unknown].concat()).await;
    assert!(err.contains("no user x@acme.test in channel acme"), "{err}");
}
