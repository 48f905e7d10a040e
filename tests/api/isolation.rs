//! Receivers that time out, hang, refuse connections or resolve to loopback: each is contained
//! (timeouts, per-webhook shares, the circuit breaker, the SSRF guard) and the others flow.

use crate::helpers::{
    all_are, closed_url, collection, finished, spawn_app_with, Reply, TestApp, TestReceiver,
    SECRET_A,
};
use herald::domain::ids::{ChannelId, Typed, UserId};
use herald::domain::net::NetPolicy;
use herald::domain::webhook::{parse_events, parse_secrets, NewWebhook, WebhookEvent, WebhookUrl};
use std::time::Duration;

#[tokio::test]
async fn a_slow_receiver_times_out_and_a_closed_port_is_a_connection_error() {
    let app = spawn_app_with(|c| c.delivery_timeout_ms = 300).await;
    let slow = TestReceiver::start().await;
    slow.always(Reply::ok_after(Duration::from_secs(5)));
    let slow_hook = app.collection_hook(&slow, 0).await;
    let closed_hook = app
        .create_webhook(&closed_url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    collection(&app, "Unlucky").await;
    let log = app.wait_for_deliveries(&slow_hook, finished).await;
    assert_eq!(log[0]["attempts"][0]["result"], "REQUEST_TIMEOUT");
    let log = app.wait_for_deliveries(&closed_hook, finished).await;
    assert_eq!(log[0]["attempts"][0]["result"], "CONNECTION_ERROR");
    assert!(log[0]["attempts"][0]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_the_others() {
    let app = spawn_app_with(|c| {
        c.webhook_concurrency = 4;
        c.max_in_flight = 16;
        c.delivery_timeout_ms = 10_000;
    })
    .await;
    let stuck = TestReceiver::start().await;
    stuck.always(Reply::ok_after(Duration::from_secs(20)));
    let healthy = TestReceiver::start().await;
    app.collection_hook(&stuck, 0).await;
    let good = app.collection_hook(&healthy, 0).await;
    for i in 0..30 {
        collection(&app, &format!("C{i}")).await;
    }
    // The stuck receiver holds at most its share of the workers (4 of 16); every delivery to
    // the healthy one completes meanwhile.
    healthy.wait_for(30).await;
    app.wait_for_deliveries(&good, all_are(30, "SUCCEEDED"))
        .await;
    assert!(
        stuck.received().len() <= 4,
        "the stuck receiver got {} concurrent attempts",
        stuck.received().len()
    );
}

#[tokio::test]
async fn a_dead_receiver_is_paused_by_the_circuit_breaker_while_others_flow() {
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 10;
        c.retry_cap_ms = 10;
    })
    .await;
    let dead_hook = app
        .create_webhook(&closed_url(), &["COLLECTION"], &[SECRET_A], 10)
        .await;
    let healthy = TestReceiver::start().await;
    let good = app.collection_hook(&healthy, 0).await;
    for i in 0..40 {
        collection(&app, &format!("C{i}")).await;
    }
    app.wait_for_deliveries(&good, all_are(40, "SUCCEEDED"))
        .await;
    let log = app.deliveries(&dead_hook).await;
    let attempts: usize = log
        .iter()
        .map(|d| d["attempts"].as_array().map_or(0, Vec::len))
        .sum();
    // One in flight once failing, then paused after 10 failures in a row (plus at most a probe
    // or two while the healthy deliveries finished): not 40 × 11 attempts.
    assert!(
        (1..=13).contains(&attempts),
        "{attempts} attempts to the dead receiver"
    );
    assert!(
        log.iter().all(|d| d["status"] != "FAILED"),
        "waiting deliveries keep their retries"
    );
}

/// A webhook stored directly, bypassing the URL rules (as if created in dev mode).
async fn raw_webhook(app: &TestApp, url: &str) -> String {
    let dev = NetPolicy {
        dev: true,
        allowed: vec![],
    };
    let new = NewWebhook {
        url: WebhookUrl::parse(url, &dev).expect("url"),
        description: None,
        events: parse_events(&[WebhookEvent::Collection]).expect("events"),
        secrets: parse_secrets(&[SECRET_A.to_owned()]).expect("secrets"),
        retries: 0,
        enabled: true,
        listener: false,
        event_types: None,
    };
    let w = app
        .store
        .create_webhook(ChannelId(1), UserId(1), &new)
        .await
        .expect("webhook");
    w.id.global()
}

#[tokio::test]
async fn outside_dev_mode_a_name_resolving_to_loopback_is_not_contacted() {
    let app = spawn_app_with(|c| c.dev = false).await;
    let rx = TestReceiver::start().await;
    let by_name = raw_webhook(&app, &format!("http://localhost:{}/hook", rx.addr.port())).await;
    let by_ip = raw_webhook(&app, &rx.url()).await;
    collection(&app, "Nope").await;
    for hook in [by_name, by_ip] {
        let log = app.wait_for_deliveries(&hook, finished).await;
        let attempt = &log[0]["attempts"][0];
        assert_eq!(attempt["result"], "CONNECTION_ERROR", "{attempt}");
        assert!(
            attempt["message"]
                .as_str()
                .expect("message")
                .contains("loopback"),
            "{attempt}"
        );
    }
    assert!(rx.received().is_empty());
}
