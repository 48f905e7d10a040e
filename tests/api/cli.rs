//! The `herald` binary: migrate, token create, and serve (which is also killed with SIGKILL
//! mid-delivery to show that no delivery is lost).

use crate::helpers::{Reply, TestDb, TestReceiver, DEADLINE, SECRET_A};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        .args(["migrate"])
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
