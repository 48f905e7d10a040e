//! `herald listen`: a herald server, the listen CLI and a local receiver, all on loopback; and
//! what listen refuses before it connects.

use crate::helpers::{
    all_are, closed_port, collection, fails, first_is, herald, spawn_app, start_at, Process,
    TestApp, TestReceiver,
};
use herald_verify::{Scheme, Verifier};
use serde_json::json;

pub(crate) fn listen(app: &TestApp, forward_to: &str) -> Process {
    Process::spawn(
        herald()
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

/// Runs `herald listen` against `server` with `token`, forwarding to `forward_to`; it must
/// fail. Returns its stderr.
async fn listen_fails(server: &str, token: &str, forward_to: &str) -> String {
    fails(herald().args([
        "listen",
        "--server",
        server,
        "--token",
        token,
        "--forward-to",
        forward_to,
    ]))
    .await
}

/// Runs `herald listen` against `app` with `token`, which herald must refuse; returns its
/// stderr.
async fn refused(app: &TestApp, token: &str) -> String {
    listen_fails(&app.url(""), token, "http://127.0.0.1:9/hook").await
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

    collection(&app, "Local one").await;
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
    let log = app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    assert_eq!(log[0]["attempts"][0]["code"], 200);
    assert_eq!(log[0]["attempts"][0]["responseBody"], "receiver says hi");

    // The server goes away and comes back on the same address; an event that happens before
    // the CLI has reconnected still reaches the local receiver.
    let (config, addr) = (app.config.clone(), app.addr.to_string());
    let db = app.stop().await;
    let app = start_at(db, config, &addr).await;
    collection(&app, "While reconnecting").await;
    listen.expect_line("Reconnected").await;
    let got = local.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "While reconnecting");
    app.wait_for_deliveries(&hook, all_are(2, "SUCCEEDED"))
        .await;

    // Ctrl-C (SIGINT) removes the listener.
    let exit = listen.stop_with("INT").await;
    assert!(exit.success(), "{exit}");
    assert_eq!(app.webhook_count().await, 0);
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
        let err = listen_fails(&server, "hrld_x", bad).await;
        assert!(err.contains("--forward-to"), "{err}");
        assert!(err.contains("absolute http:// or https:// URL"), "{err}");
        assert!(!err.contains("Connection refused"), "{err}");
    }
}

#[tokio::test]
async fn listen_to_a_server_that_never_answered_fails_with_the_cause() {
    let server = format!("http://127.0.0.1:{}", closed_port());
    let err = listen_fails(&server, "hrld_x", "http://127.0.0.1:9/hook").await;
    assert!(err.contains("cannot reach herald at"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("reconnecting"), "{err}");
}
