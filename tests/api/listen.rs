//! `herald listen`: a herald server, the listen CLI and a local receiver, all on loopback.

use crate::helpers::{spawn_app, start_at, Process, TestApp, TestReceiver, DEADLINE};
use herald_verify::{Scheme, Verifier};
use serde_json::json;

pub(crate) fn listen(app: &TestApp, forward_to: &str) -> Process {
    Process::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .env_clear()
            .env("RUST_LOG", "warn")
            .args([
                "listen",
                "--server",
                &app.url(""),
                "--forward-to",
                forward_to,
                "--events",
                "COLLECTION",
            ])
            .env("HERALD_TOKEN", &app.token),
    )
}

/// Runs `herald listen` with `token`, which herald must refuse; returns its stderr.
async fn refused(app: &TestApp, token: &str) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .args([
            "listen",
            "--server",
            &app.url(""),
            "--forward-to",
            "http://127.0.0.1:9/hook",
            "--token",
            token,
        ])
        .output();
    let out = tokio::time::timeout(DEADLINE, out)
        .await
        .expect("exits")
        .expect("run");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) async fn listener_webhook(app: &TestApp) -> String {
    let r = app
        .graphql("{ channel { webhooks { nodes { id url } } } }", json!({}))
        .await;
    let nodes = r["data"]["channel"]["webhooks"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    let hook = nodes
        .iter()
        .find(|n| {
            n["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("herald-listen://"))
        })
        .expect("a listener webhook");
    hook["id"].as_str().expect("id").to_owned()
}

pub(crate) async fn create_collection(app: &TestApp, name: &str) {
    let r = app
        .graphql(
            "mutation ($n: String!) { createCollection(input: {name: $n}) { errors { message } } }",
            json!({"n": name}),
        )
        .await;
    assert_eq!(r["data"]["createCollection"]["errors"], json!([]), "{r}");
}

#[tokio::test]
async fn listen_forwards_signed_deliveries_reports_them_and_survives_a_server_restart() {
    let app = spawn_app().await;
    let local = TestReceiver::start().await;
    let mut listen = listen(&app, &local.url());
    listen
        .expect_line("Ready. Forwarding COLLECTION events")
        .await;
    let secret_line = listen.expect_line("Webhook secret").await;
    let secret = secret_line.rsplit(' ').next().expect("secret").to_owned();

    create_collection(&app, "Local one").await;
    let got = local.wait_for(1).await;
    assert_eq!(got[0].json()["collection"]["name"], "Local one");
    let headers = got[0].header_pairs();
    let verifier = Verifier::new([&secret]);
    assert_eq!(
        verifier.verify(&headers, &got[0].body).map(|v| v.scheme),
        Ok(Scheme::StandardWebhooks)
    );
    assert!(verifier
        .verify_rewatch_at(&headers, chrono::Utc::now().timestamp())
        .is_ok());
    let line = listen.expect_line("collection.created").await;
    assert!(line.contains("-> 200"), "{line}");

    let hook = listener_webhook(&app).await;
    let log = app
        .wait_for_deliveries(&hook, |d| {
            d.first().is_some_and(|x| x["status"] == "SUCCEEDED")
        })
        .await;
    assert_eq!(log[0]["attempts"][0]["code"], 200);
    assert_eq!(log[0]["attempts"][0]["responseBody"], "receiver says hi");

    // The server goes away and comes back on the same address; an event that happens before
    // the CLI has reconnected still reaches the local receiver.
    let (config, addr) = (app.config.clone(), app.addr.to_string());
    let db = app.stop().await;
    let app = start_at(db, config, &addr).await;
    create_collection(&app, "While reconnecting").await;
    listen.expect_line("Reconnected").await;
    let got = local.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "While reconnecting");
    app.wait_for_deliveries(&hook, |d| {
        d.len() == 2 && d.iter().all(|x| x["status"] == "SUCCEEDED")
    })
    .await;

    // Ctrl-C (SIGINT) removes the listener.
    let pid = listen.child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(DEADLINE, listen.child.wait())
        .await
        .expect("listen exits")
        .expect("wait");
    assert!(exit.success(), "{exit}");
    let r = app
        .graphql("{ channel { webhooks { nodes { id } } } }", json!({}))
        .await;
    assert_eq!(r["data"]["channel"]["webhooks"]["nodes"], json!([]));
}

#[tokio::test]
async fn a_bad_token_is_refused_without_retrying_forever() {
    let app = spawn_app().await;
    let stderr = refused(&app, "hrld_wrong").await;
    assert!(stderr.contains("token"), "{stderr}");
}

#[tokio::test]
async fn a_member_cannot_listen() {
    let app = spawn_app().await;
    let stderr = refused(&app, &app.member_token).await;
    assert!(stderr.contains("Only channel admins"), "{stderr}");
}
