//! `redeliverWebhookDeliveries` (a bulk replay) and the operator's alert: `webhook.disabled`
//! delivered to the channel's webhooks subscribed to `WEBHOOK`.

use crate::helpers::{collection, spawn_app, statuses, Reply, TestReceiver, SECRET_A};
use crate::metrics::sample;
use herald::domain::ids::Typed;
use serde_json::json;

const REPLAY: &str = "mutation ($i: RedeliverWebhookDeliveriesInput!) { redeliverWebhookDeliveries(input: $i) { count errors { message path } } }";

#[tokio::test]
async fn failed_deliveries_are_queued_again_with_their_nonces() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app.collection_hook(&rx, 0).await;
    for name in ["One", "Two", "Three"] {
        collection(&app, name).await;
    }
    let failed = app
        .wait_for_deliveries(&hook, |log| {
            log.len() == 3 && statuses(log) == ["FAILED"; 3]
        })
        .await;
    rx.always(Reply::status(200));

    let r = app
        .graphql_as(
            &app.member_token,
            REPLAY,
            json!({ "i": { "webhookId": hook } }),
        )
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDeliveries"]["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    let r = app
        .graphql(
            REPLAY,
            json!({ "i": { "webhookId": hook, "status": "PENDING" } }),
        )
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDeliveries"]["errors"][0]["path"],
        json!(["input", "status"]),
        "{r}"
    );
    let r = app
        .graphql(
            REPLAY,
            json!({ "i": { "webhookId": hook, "since": "2000-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDeliveries"],
        json!({ "count": 3, "errors": [] }),
        "{r}"
    );
    let log = app
        .wait_for_deliveries(&hook, |log| statuses(log) == ["SUCCEEDED"; 3])
        .await;
    for (before, after) in failed.iter().zip(&log) {
        assert_eq!(before["nonce"], after["nonce"], "the same delivery");
        assert_eq!(before["body"], after["body"], "the same body");
        assert_eq!(after["attempts"].as_array().map(Vec::len), Some(2));
    }
    let r = app
        .graphql(
            REPLAY,
            json!({ "i": { "webhookId": hook, "until": "2000-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(r["data"]["redeliverWebhookDeliveries"]["count"], 0, "{r}");
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(sample(&text, "herald_deliveries_replayed_total"), Some(3.0));
}

#[tokio::test]
async fn a_webhook_herald_disables_is_announced_to_subscribers() {
    let app = spawn_app().await;
    let watcher = TestReceiver::start().await;
    let gone = TestReceiver::start().await;
    gone.always(Reply::status(410));
    let watching = app
        .create_webhook(&watcher.url(), &["WEBHOOK"], &[SECRET_A], 3)
        .await;
    let hook = app.collection_hook(&gone, 3).await;
    collection(&app, "Unwanted").await;
    let got = watcher.wait_for(1).await;
    let body = got[0].json();
    assert_eq!(
        got[0].header("rewatch-hook-delivery-event"),
        "webhook.disabled"
    );
    assert_eq!(body["hookId"], json!(watching));
    assert_eq!(body["event"], "webhook.disabled");
    assert_eq!(body["webhook"]["id"], json!(hook));
    assert_eq!(body["webhook"]["url"], json!(gone.url()));
    assert_eq!(body["webhook"]["disabledReason"], "FAILING");
    assert_eq!(body["webhook"]["cause"], "gone");
    assert_eq!(body["channel"]["subdomain"], "example");
    assert!(body.get("actor").is_none(), "herald itself did it: {body}");
    let state = app.webhook(&hook, "enabled disabledReason").await;
    assert_eq!(
        state,
        json!({ "enabled": false, "disabledReason": "FAILING" })
    );
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(
        sample(
            &text,
            "herald_webhooks_disabled_by_herald_total{reason=\"gone\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        herald::domain::ids::WebhookId::decode(&hook).map(|w| w.get() > 0),
        Some(true)
    );
}
