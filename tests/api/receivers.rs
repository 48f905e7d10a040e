//! The receiving side: test pings, redelivery, endpoint handshakes and the example receiver.

use crate::helpers::{
    collection, first_is, spawn_app, Process, Reply, TestReceiver, SECRET_A, SECRET_B,
};
use herald_verify::Verifier;
use serde_json::{json, Value};
use std::time::Duration;

const TEST: &str = "mutation ($i: TestWebhookInput!) { testWebhook(input: $i) { delivery { id nonce event status body attempts { code result } } errors { message path } } }";
const REDELIVER: &str = "mutation ($i: RedeliverWebhookDeliveryInput!) { redeliverWebhookDelivery(input: $i) { delivery { id nonce status attempts { code result } } errors { message path } } }";
const CREATE: &str = "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message path } } }";

#[tokio::test]
async fn a_test_ping_is_sent_at_once_even_to_a_disabled_webhook() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let r = app.graphql(CREATE, json!({"i": {"url": rx.url(), "events": ["VIDEO"], "secrets": [SECRET_A], "enabled": false}})).await;
    let hook = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = app.graphql(TEST, json!({"i": {"webhookId": hook}})).await;
    let d = &r["data"]["testWebhook"]["delivery"];
    assert_eq!(r["data"]["testWebhook"]["errors"], json!([]), "{r}");
    assert_eq!(d["event"], "PING");
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["attempts"], json!([{"code": 200, "result": "SUCCESS"}]));
    let got = rx.received();
    assert_eq!(
        got.len(),
        1,
        "the ping was sent before the mutation answered"
    );
    let body = got[0].json();
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["hookId", "nonce", "at", "event", "actor", "channel"]);
    assert_eq!(body["event"], "ping");
    assert_eq!(got[0].header("rewatch-hook-delivery-event"), "ping");
    assert_eq!(
        d["body"].as_str().expect("body").as_bytes(),
        &got[0].body[..]
    );
    assert!(Verifier::new([SECRET_A])
        .verify(&got[0].header_pairs(), &got[0].body)
        .is_ok());
}

#[tokio::test]
async fn a_failing_ping_reports_the_failure_and_is_not_retried() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["VIDEO"], &[SECRET_A], 3)
        .await;
    let r = app.graphql(TEST, json!({"i": {"webhookId": hook}})).await;
    let d = &r["data"]["testWebhook"]["delivery"];
    assert_eq!(d["status"], "FAILED");
    assert_eq!(
        d["attempts"],
        json!([{"code": 500, "result": "REQUEST_FAILURE"}])
    );
    let r = app
        .graphql_as(&app.member_token, TEST, json!({"i": {"webhookId": hook}}))
        .await;
    assert_eq!(
        r["data"]["testWebhook"]["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    let r = app
        .graphql(TEST, json!({"i": {"webhookId": "V2ViaG9vay05OQ=="}}))
        .await;
    assert_eq!(
        r["data"]["testWebhook"]["errors"],
        json!([{"message": "No object found", "path": ["input", "webhookId"]}])
    );
}

#[tokio::test]
async fn redelivery_sends_the_same_nonce_and_body_and_appends_an_attempt() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 3).await;
    collection(&app, "Again").await;
    let log = app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    let r = app
        .graphql(REDELIVER, json!({"i": {"deliveryId": log[0]["id"]}}))
        .await;
    let d = &r["data"]["redeliverWebhookDelivery"]["delivery"];
    assert_eq!(d["nonce"], log[0]["nonce"]);
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(2));
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let r = app
        .graphql_as(
            &app.member_token,
            REDELIVER,
            json!({"i": {"deliveryId": log[0]["id"]}}),
        )
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDelivery"]["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    let r = app
        .graphql(REDELIVER, json!({"i": {"deliveryId": "bm9wZQ=="}}))
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDelivery"]["errors"][0]["message"],
        "No object found"
    );
}

#[tokio::test]
async fn endpoints_that_fail_the_handshake_are_refused_and_nothing_is_saved() {
    let app = spawn_app().await;
    let plain = TestReceiver::start().await; // answers 200 "receiver says hi": not the challenge
    let missing = TestReceiver::start().await;
    missing.always(Reply::status(404));
    let slow = TestReceiver::start().await;
    slow.always(Reply::ok_after(Duration::from_secs(5)));
    for (rx, expect) in [
        (&plain, "not JSON"),
        (&missing, "404"),
        (&slow, "within 2 s"),
    ] {
        let r = app.graphql(CREATE, json!({"i": {"url": rx.url(), "events": ["VIDEO"], "secrets": [SECRET_A], "verifyToken": "tok"}})).await;
        let p = &r["data"]["createWebhook"];
        assert_eq!(p["webhook"], Value::Null);
        assert_eq!(p["errors"][0]["path"], json!(["input", "verifyToken"]));
        assert!(
            p["errors"][0]["message"]
                .as_str()
                .expect("message")
                .contains(expect),
            "{r}"
        );
    }
    assert_eq!(app.webhook_count().await, 0);
}

/// The example receiver, started as a process.
struct ExampleReceiver {
    process: Process,
    url: String,
}

impl ExampleReceiver {
    async fn start(secrets: &str, verify_token: &str) -> ExampleReceiver {
        let herald = std::path::PathBuf::from(env!("CARGO_BIN_EXE_herald"));
        let exe = herald
            .parent()
            .expect("target dir")
            .join("examples")
            .join("receiver");
        let mut process = Process::spawn(
            tokio::process::Command::new(&exe)
                .env("HERALD_SECRETS", secrets)
                .env("HERALD_VERIFY_TOKEN", verify_token)
                .env("PORT", "0"),
        );
        let first = process.expect_line("listening on ").await;
        let addr = first.trim_start_matches("listening on ").to_owned();
        ExampleReceiver {
            process,
            url: format!("http://{addr}/hook"),
        }
    }

    async fn expect_line(&mut self, needle: &str) -> String {
        self.process.expect_line(needle).await
    }
}

#[tokio::test]
async fn the_example_receiver_verifies_dedupes_and_answers_the_handshake() {
    let app = spawn_app().await;
    let mut example = ExampleReceiver::start(&format!("{SECRET_B},{SECRET_A}"), "let-me-in").await;
    let r = app
        .graphql(CREATE, json!({"i": {"url": example.url, "events": ["COLLECTION"], "secrets": [SECRET_A], "verifyToken": "let-me-in"}}))
        .await;
    assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
    let hook = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    example.expect_line("handshake answered").await;
    let r = app.graphql(CREATE, json!({"i": {"url": example.url, "events": ["COLLECTION"], "secrets": [SECRET_A], "verifyToken": "wrong"}})).await;
    assert!(
        r["data"]["createWebhook"]["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("403"),
        "{r}"
    );

    collection(&app, "From herald").await;
    let line = example.expect_line("collection.created").await;
    assert!(line.contains("\"From herald\""), "{line}");
    let log = app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    app.graphql(REDELIVER, json!({"i": {"deliveryId": log[0]["id"]}}))
        .await;
    example.expect_line("duplicate").await;
    app.graphql(TEST, json!({"i": {"webhookId": hook}})).await;
    example.expect_line("ping from example").await;

    // Any path reaches it, as the README's walk-through lets a user choose one.
    let elsewhere = example.url.replace("/hook", "/webhooks/herald");
    let r = app
        .graphql(
            CREATE,
            json!({"i": {"url": elsewhere, "events": ["VIDEO"], "secrets": [SECRET_A]}}),
        )
        .await;
    let other = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = app.graphql(TEST, json!({"i": {"webhookId": other}})).await;
    assert_eq!(
        r["data"]["testWebhook"]["delivery"]["attempts"][0]["code"], 200,
        "{r}"
    );
    let _ = example.process.child.kill().await;
}
