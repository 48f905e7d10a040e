//! The delivery log: filtering it, and what deleting a webhook leaves of it.

use crate::helpers::{
    all_are, collection, finished, first_is, spawn_app, spawn_app_with, webhook_id, Reply,
    TestReceiver,
};
use herald::config::Config;
use serde_json::json;

/// Retries a minute apart: a failed delivery stays queued for the rest of the test.
fn retries_a_minute_apart(config: &mut Config) {
    config.retry_base_ms = 60_000;
    config.retry_cap_ms = 60_000;
}

#[tokio::test]
async fn the_log_filters_by_status_and_nonce() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 0).await;
    rx.script([Reply::status(500)]);
    collection(&app, "One").await;
    app.wait_for_deliveries(&hook, finished).await;
    collection(&app, "Two").await;
    let log = app
        .wait_for_deliveries(&hook, |d| d.len() == 2 && finished(d))
        .await;
    let q = "query ($id: ID!, $s: WebhookDeliveryStatus, $n: [String!]) { node(id: $id) { ... on Webhook { deliveries(status: $s, nonces: $n) { nodes { nonce status } } } } }";
    let r = app.graphql(q, json!({"id": hook, "s": "FAILED"})).await;
    let failed = r["data"]["node"]["deliveries"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(failed.len(), 1);
    let r = app
        .graphql(q, json!({"id": hook, "n": [log[0]["nonce"]]}))
        .await;
    assert_eq!(
        r["data"]["node"]["deliveries"]["nodes"],
        json!([{"nonce": log[0]["nonce"], "status": log[0]["status"]}])
    );
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { __typename ... on WebhookDelivery { nonce } } }",
            json!({"id": log[0]["id"]}),
        )
        .await;
    assert_eq!(r["data"]["node"]["nonce"], log[0]["nonce"]);
    let r = app
        .graphql_as(
            &app.member_token,
            "query ($id: ID!) { node(id: $id) { id } }",
            json!({"id": log[0]["id"]}),
        )
        .await;
    assert_eq!(
        r["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
}

#[tokio::test]
async fn deleting_a_webhook_drops_its_queued_deliveries() {
    let app = spawn_app_with(retries_a_minute_apart).await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app.collection_hook(&rx, 3).await;
    collection(&app, "Queued").await;
    app.wait_for_deliveries(&hook, first_is("RETRYING")).await;
    app.delete_webhook(&hook).await;
    let id = webhook_id(&hook);
    let left = app.store.due_webhooks(i64::MAX).await.expect("due");
    assert!(!left.contains(&id));
    let log = app
        .store
        .list_deliveries(
            herald::domain::ids::ChannelId(1),
            id,
            &Default::default(),
            herald::store::Page::first(10),
        )
        .await
        .expect("log");
    assert!(log.is_empty());
}

#[tokio::test]
async fn deleting_a_webhook_deletes_its_deliveries_and_attempts_and_no_others() {
    let app = spawn_app_with(retries_a_minute_apart).await;
    let failing = TestReceiver::start().await;
    failing.always(Reply::status(500));
    let healthy = TestReceiver::start().await;
    let hook = app.collection_hook(&failing, 3).await;
    let other = app.collection_hook(&healthy, 3).await;
    collection(&app, "One").await;
    collection(&app, "Two").await;
    app.wait_for_deliveries(&hook, all_are(2, "RETRYING")).await;
    app.wait_for_deliveries(&other, |d| d.len() == 2 && finished(d))
        .await;
    let (id, other_id) = (webhook_id(&hook), webhook_id(&other));
    let of = |webhook: herald::domain::ids::WebhookId| {
        format!(
            "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.webhook_id = {}",
            webhook.get()
        )
    };
    assert_eq!(app.db.count(&of(id)).await, 2, "one failed attempt each");
    assert_eq!(app.db.count(&of(other_id)).await, 2);

    app.delete_webhook(&hook).await;

    let deliveries = format!("SELECT COUNT(*) FROM deliveries WHERE webhook_id = {id}");
    assert_eq!(app.db.count(&deliveries).await, 0);
    let orphans = "SELECT COUNT(*) FROM delivery_attempts a \
                   WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)";
    assert_eq!(app.db.count(orphans).await, 0, "attempts left behind");
    assert_eq!(
        app.db.count("SELECT COUNT(*) FROM delivery_attempts").await,
        2
    );
    assert_eq!(
        app.db.count(&of(other_id)).await,
        2,
        "the other webhook's log stays"
    );
    assert_eq!(app.deliveries(&other).await.len(), 2);
}
