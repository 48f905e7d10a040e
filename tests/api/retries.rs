//! When a receiver fails: retries with one nonce, backoff, Retry-After, 410 Gone, and
//! disabling a webhook that keeps failing.

use crate::helpers::{
    collection, eventually, finished, spawn_app, spawn_app_with, Reply, TestApp, TestReceiver,
    DEADLINE,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// When each attempt of `delivery` (an entry of the delivery log) was made.
fn attempt_times(delivery: &Value) -> Vec<DateTime<Utc>> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["at"].as_str().expect("at").parse().expect("time"))
        .collect()
}

/// A receiver that always answers `status`, a webhook to it with `retries`, and one event:
/// the receiver, the webhook, and its delivery log once the delivery has finished.
async fn always_answering(
    app: &TestApp,
    status: u16,
    retries: i64,
) -> (TestReceiver, String, Vec<Value>) {
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(status));
    let hook = app.collection_hook(&rx, retries).await;
    collection(app, "Unlucky").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
    (rx, hook, log)
}

/// What a webhook that herald turned off for failing looks like.
fn disabled_for_failing() -> Value {
    json!({"enabled": false, "disabledReason": "FAILING"})
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_with_one_nonce_until_it_succeeds() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(502)]);
    let hook = app.collection_hook(&rx, 3).await;
    collection(&app, "Flaky").await;
    let got = rx.wait_for(3).await;
    let nonces: Vec<&str> = got
        .iter()
        .map(|r| r.header("rewatch-hook-delivery-nonce"))
        .collect();
    assert!(nonces.iter().all(|n| *n == nonces[0]));
    assert!(
        got.windows(2).all(|w| w[0].body == w[1].body),
        "every attempt sends the same body"
    );
    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(log[0]["status"], "SUCCEEDED");
    assert_eq!(log[0]["retries"], 2);
    let attempts = log[0]["attempts"].as_array().expect("attempts");
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["code"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(codes, [500, 502, 200]);
    let results: Vec<&str> = attempts
        .iter()
        .map(|a| a["result"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(results, ["REQUEST_FAILURE", "REQUEST_FAILURE", "SUCCESS"]);
}

#[tokio::test]
async fn zero_retries_means_one_attempt() {
    let app = spawn_app().await;
    let (rx, _, log) = always_answering(&app, 500, 0).await;
    assert_eq!(log[0]["status"], "FAILED");
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn exhausted_retries_end_failed_with_growing_gaps() {
    // Steps long enough that a stall of a loaded machine (a round or two of the engine's
    // database work) stays small beside the ±20 % jitter that separates them.
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 300;
        c.retry_factor = 2.0;
    })
    .await;
    let (_, _, log) = always_answering(&app, 500, 3).await;
    assert_eq!(log[0]["status"], "FAILED");
    assert_eq!(log[0]["retries"], 3);
    let times = attempt_times(&log[0]);
    assert_eq!(times.len(), 4);
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    // 300, 600, 1,200 ms, each ±20 %.
    for (gap, base) in gaps.iter().zip([300, 600, 1_200]) {
        assert!(
            *gap >= base * 8 / 10,
            "gap {gap} ms for a {base} ms step: {gaps:?}"
        );
    }
    assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "{gaps:?}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(503).with_header("retry-after", "1")]);
    let hook = app.collection_hook(&rx, 3).await;
    collection(&app, "Later").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
    let times = attempt_times(&log[0]);
    assert_eq!(times.len(), 2);
    assert!(
        (times[1] - times[0]).num_milliseconds() >= 1000,
        "{times:?}"
    );
}

#[tokio::test]
async fn gone_fails_at_once_and_disables_the_webhook() {
    let app = spawn_app().await;
    let (_, hook, log) = always_answering(&app, 410, 5).await;
    assert_eq!(log[0]["status"], "FAILED");
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.webhook(&hook, "enabled disabledReason").await,
        disabled_for_failing()
    );
    // A disabled webhook gets no new deliveries.
    collection(&app, "After").await;
    assert_eq!(app.deliveries(&hook).await.len(), 1);
}

#[tokio::test]
async fn a_webhook_failing_past_the_limit_is_disabled() {
    let app = spawn_app_with(|c| c.disable_after_secs = 0).await;
    let (_, hook, _) = always_answering(&app, 500, 0).await;
    // The webhook is disabled after the failure is recorded, in the background.
    eventually(DEADLINE, || async {
        let webhook = app.webhook(&hook, "enabled disabledReason").await;
        if webhook == disabled_for_failing() {
            Ok(())
        } else {
            Err(webhook)
        }
    })
    .await;
}
