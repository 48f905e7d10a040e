//! Delivery state a user can trust: `retries` counts what was made, a fixed webhook is not held
//! back by its circuit breaker, and a `herald listen` CLI that is killed leaves nothing pending.

use crate::helpers::collection as create_collection;
use crate::helpers::{spawn_app_with, Reply, TestApp, TestReceiver, DEADLINE, SECRET_A};
use crate::listen::{listen, listener_webhook};
use chrono::{DateTime, Utc};
use herald_verify::Verifier;
use serde_json::{json, Value};
use std::time::Duration;

/// The webhook `id` as the API shows it.
async fn webhook(app: &TestApp, id: &str) -> Value {
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { ... on Webhook { enabled disabledReason pausedUntil } } }",
            json!({ "id": id }),
        )
        .await;
    r["data"]["node"].clone()
}

/// Waits until the webhook's deliveries are held back for at least `at_least` more; returns
/// until when.
async fn paused_for(app: &TestApp, id: &str, at_least: Duration) -> DateTime<Utc> {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let paused = webhook(app, id).await["pausedUntil"].clone();
        if let Some(at) = paused.as_str() {
            let at: DateTime<Utc> = at.parse().expect("a time");
            if (at - Utc::now())
                .to_std()
                .is_ok_and(|left| left >= at_least)
            {
                return at;
            }
        }
        assert!(
            tokio::time::Instant::now() < until,
            "never paused for {at_least:?}: {paused}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the webhook is no longer paused.
async fn unpaused(app: &TestApp, id: &str) {
    let until = tokio::time::Instant::now() + DEADLINE;
    while !webhook(app, id).await["pausedUntil"].is_null() {
        assert!(tokio::time::Instant::now() < until, "still paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A webhook to `url` with 10 retries, and three deliveries queued for it.
async fn webhook_with_three_deliveries(app: &TestApp, url: &str) -> String {
    let hook = app
        .create_webhook(url, &["COLLECTION"], &[SECRET_A], 10)
        .await;
    for name in ["One", "Two", "Three"] {
        create_collection(app, name).await;
    }
    hook
}

/// Retries due at once: only the circuit breaker holds a failing webhook back.
fn breaker_config(c: &mut herald::config::Config) {
    c.retry_base_ms = 10;
    c.retry_cap_ms = 10;
}

#[tokio::test]
async fn retries_counts_the_re_attempts_made_not_the_one_scheduled() {
    // Gaps of 1 and 2 s (±20 %): long beside one read of the log, which reads a delivery and
    // its attempts in two statements, even on a busy machine.
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 1_000;
        c.retry_factor = 2.0;
        c.retry_cap_ms = 10_000;
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 5)
        .await;
    create_collection(&app, "Flaky").await;
    for made in 1..=3_usize {
        app.wait_for_deliveries(&hook, |d| {
            d.first()
                .and_then(|x| x["attempts"].as_array())
                .is_some_and(|a| a.len() == made)
        })
        .await;
        // Read again: the read that first saw the attempt may have read the delivery itself
        // (one statement) just before the attempt was recorded and its attempts (another) just
        // after. This read begins after the record; the next attempt is a second away.
        let log = app.deliveries(&hook).await;
        assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(made));
        assert_eq!(log[0]["status"], "RETRYING");
        assert_eq!(log[0]["retries"], made - 1, "after {made} attempts");
    }
}

#[tokio::test]
async fn a_new_url_closes_the_circuit_breaker_and_the_queue_flows_at_once() {
    let app = spawn_app_with(breaker_config).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let hook = webhook_with_three_deliveries(&app, &format!("http://{dead}/hook")).await;
    // Ten failures in a row pause it for 1 s, each failed probe then doubles the pause.
    let paused_until = paused_for(&app, &hook, Duration::from_secs(3)).await;

    let healthy = TestReceiver::start().await;
    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
            json!({ "i": { "webhookId": hook, "url": healthy.url() } }),
        )
        .await;
    assert_eq!(r["data"]["updateWebhook"]["errors"], json!([]), "{r}");
    let left = (paused_until - Utc::now()).to_std().expect("still paused");
    tokio::time::timeout(left, healthy.wait_for(3))
        .await
        .expect("the queued deliveries arrive before the pause would have ended");
    unpaused(&app, &hook).await;
}

#[tokio::test]
async fn a_successful_test_ping_closes_the_circuit_breaker() {
    let app = spawn_app_with(breaker_config).await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = webhook_with_three_deliveries(&app, &rx.url()).await;
    let paused_until = paused_for(&app, &hook, Duration::from_secs(3)).await;
    let failed_so_far = rx.received().len();

    rx.always(Reply::status(200));
    let r = app
        .graphql(
            "mutation ($i: TestWebhookInput!) { testWebhook(input: $i) { delivery { status } errors { message } } }",
            json!({ "i": { "webhookId": hook } }),
        )
        .await;
    assert_eq!(
        r["data"]["testWebhook"]["delivery"]["status"], "SUCCEEDED",
        "{r}"
    );
    let left = (paused_until - Utc::now()).to_std().expect("still paused");
    tokio::time::timeout(left, rx.wait_for(failed_so_far + 1 + 3))
        .await
        .expect("the queued deliveries arrive before the pause would have ended");
    unpaused(&app, &hook).await;
}

#[tokio::test]
async fn a_listener_whose_cli_is_killed_ends_its_deliveries_as_failed() {
    let app = spawn_app_with(|c| c.listener_grace_ms = 300).await;
    let local = TestReceiver::start().await;
    // The local receiver never answers in time: the delivery is in flight when the CLI dies.
    local.always(Reply {
        status: 200,
        headers: Vec::new(),
        delay: Duration::from_secs(30),
    });
    let mut cli = listen(&app, &local.url());
    let secret_line = cli.expect_line("Webhook secret").await;
    let secret = secret_line.rsplit(' ').next().expect("secret").to_owned();
    create_collection(&app, "Unheard").await;
    let got = local.wait_for(1).await;
    assert!(Verifier::new([&secret])
        .verify(&got[0].header_pairs(), &got[0].body)
        .is_ok());
    cli.child.kill().await.expect("kill -9");

    let hook = listener_webhook(&app).await;
    let log = app
        .wait_for_deliveries(&hook, |d| {
            d.first().is_some_and(|x| x["status"] == "FAILED")
        })
        .await;
    let messages: Vec<&str> = log[0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["message"].as_str())
        .collect();
    assert!(
        messages.contains(&herald::outbox::LISTENER_GONE),
        "{messages:?}"
    );
    let w = webhook(&app, &hook).await;
    assert_eq!(w["enabled"], false, "{w}");
    assert_eq!(w["disabledReason"], "FAILING");
}
