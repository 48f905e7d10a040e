//! The delivery queue: claims and their leases, stale records, pausing, shutdown and restart,
//! and two engines sharing one database.

use crate::helpers::{
    collection, finished, first_is, spawn_app, spawn_app_with, start, statuses, webhook_id, Reply,
    TestApp, TestReceiver, SECRET_A,
};
use herald::domain::ids::{ChannelId, WebhookId};
use herald::store::{Actor, Quota, Round};
use serde_json::json;
use std::time::Duration;

/// A webhook to `rx` and the channel's admin, for tests that work the store directly.
async fn webhook_and_admin(app: &TestApp, rx: &TestReceiver) -> (WebhookId, Actor) {
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    let webhook_id = webhook_id(&hook);
    let token = herald::domain::token::hash(&app.token);
    let admin = app.store.authenticate(&token).await.expect("authenticate");
    (webhook_id, admin.expect("the admin"))
}

#[tokio::test]
async fn a_stale_record_adds_only_its_attempt_and_a_deleted_delivery_gets_none() {
    use herald::domain::delivery::{Attempt, AttemptResult, DeliveryStatus, Fate};
    use herald::store::Recorded;
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let (webhook_id, admin) = webhook_and_admin(&app, &rx).await;
    let now = herald::domain::time::now_ms();
    // Claimed for an hour: the engine leaves it alone, the test records its attempts.
    let claimed = app
        .store
        .claim_ping(&admin, webhook_id, now, now + 3_600_000)
        .await
        .expect("ping");
    let record = |lease: i64| Recorded {
        attempt: Attempt {
            delivery_id: claimed.delivery_id,
            at: now,
            url: rx.url(),
            code: Some(200),
            result: AttemptResult::Success,
            message: None,
            duration_ms: 1,
            response_body: None,
        },
        webhook_id,
        lease,
        fate: Fate::Succeeded,
    };
    let status = || async {
        app.store
            .delivery(ChannelId(1), claimed.delivery_id)
            .await
            .expect("delivery")
            .status
    };

    app.store
        .record(&[record(claimed.lease ^ 1)], now, 60_000)
        .await
        .expect("stale record");
    let attempts = app.store.attempts(claimed.delivery_id).await.expect("log");
    assert_eq!(attempts.len(), 1, "a stale record still logs its attempt");
    assert_eq!(
        status().await,
        DeliveryStatus::Pending,
        "and changes nothing else"
    );

    app.store
        .record(&[record(claimed.lease)], now, 60_000)
        .await
        .expect("record");
    let attempts = app.store.attempts(claimed.delivery_id).await.expect("log");
    assert_eq!(attempts.len(), 2);
    assert_eq!(status().await, DeliveryStatus::Succeeded);

    app.store
        .delete_webhook(ChannelId(1), webhook_id)
        .await
        .expect("delete");
    app.store
        .record(
            &[record(claimed.lease), record(claimed.lease ^ 1)],
            now,
            60_000,
        )
        .await
        .expect("a record of a deleted delivery is dropped, not an error");
    let attempts = app.store.attempts(claimed.delivery_id).await.expect("log");
    assert!(attempts.is_empty(), "{attempts:?}");
    let all = "SELECT COUNT(*) FROM delivery_attempts";
    assert_eq!(app.db.count(all).await, 0);
}

#[tokio::test]
async fn a_claim_holds_a_delivery_until_it_runs_out_and_leaves_its_due_time_alone() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let (webhook_id, admin) = webhook_and_admin(&app, &rx).await;
    // Ten hours ahead, so the running engine (on the real clock) never finds it due.
    let hour = 3_600_000;
    let due = herald::domain::time::now_ms() + 10 * hour;
    let first = app
        .store
        .claim_ping(&admin, webhook_id, due, due + hour)
        .await
        .expect("ping");
    let claim_at = |now: i64| {
        let store = app.store.clone();
        async move {
            let quotas = [Quota {
                webhook: webhook_id,
                limit: 10,
            }];
            store
                .record_and_claim(Round {
                    records: &[],
                    quotas: &quotas,
                    listeners: &[],
                    now,
                    lease_until: now + hour,
                    disable_after_ms: 60_000,
                })
                .await
                .expect("claim")
                .claimed
        }
    };
    assert!(
        claim_at(due + 1_000).await.is_empty(),
        "due, but claimed: not claimable"
    );
    let again = claim_at(due + hour + 1).await;
    assert_eq!(again.len(), 1, "claimable once the claim ran out");
    assert_eq!(again[0].delivery_id, first.delivery_id);
    assert_ne!(again[0].lease, first.lease, "a new claim, a new lease");
    assert!(claim_at(due + hour + 2).await.is_empty(), "claimed again");
    let delivery = app
        .store
        .delivery(ChannelId(1), first.delivery_id)
        .await
        .expect("delivery");
    assert_eq!(
        delivery.next_attempt_at, due,
        "claims leave the due time alone"
    );

    app.store
        .release(&[first.lease()])
        .await
        .expect("stale release");
    assert!(
        claim_at(due + hour + 3).await.is_empty(),
        "a release under a stale lease changes nothing"
    );
    app.store
        .release(&[again[0].lease()])
        .await
        .expect("release");
    let back = claim_at(due + hour + 4).await;
    assert_eq!(back.len(), 1, "handed back: claimable at once");
}

#[tokio::test]
async fn a_paused_webhook_gets_nothing_and_resumes_when_enabled() {
    let app = spawn_app_with(|c| c.retry_base_ms = 300).await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let hook = app.collection_hook(&rx, 3).await;
    let update = "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { webhook { enabled } errors { message } } }";
    collection(&app, "Queued").await;
    // Once the failure is recorded, the retry falls due within 360 ms (300 ms + 20 %).
    app.wait_for_deliveries(&hook, first_is("RETRYING")).await;
    app.graphql(update, json!({"i": {"webhookId": hook, "enabled": false}}))
        .await;
    // Absence cannot be awaited; a later delivery can. The marker's third attempt falls due at
    // least 240 + 480 ms (300 and 600 ms, −20 %) after its first, which comes after the pause:
    // well after the paused retry. Once the marker has it, the engine has had every chance to
    // send the paused one.
    let marker = TestReceiver::start().await;
    marker.script([Reply::status(500), Reply::status(500)]);
    let marker_hook = app.collection_hook(&marker, 3).await;
    collection(&app, "While paused").await;
    let marked = app.wait_for_deliveries(&marker_hook, finished).await;
    assert_eq!(marked[0]["attempts"].as_array().map(Vec::len), Some(3));
    assert_eq!(statuses(&marked), ["SUCCEEDED"]);

    assert_eq!(rx.received().len(), 1, "nothing is sent while paused");
    let log = app.deliveries(&hook).await;
    assert_eq!(log.len(), 1, "events while disabled create no deliveries");
    assert_eq!(log[0]["status"], "RETRYING");
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(1));

    app.graphql(update, json!({"i": {"webhookId": hook, "enabled": true}}))
        .await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Queued");
    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(statuses(&log), ["SUCCEEDED"]);
}

#[tokio::test]
async fn shutdown_hands_back_attempts_in_flight_and_a_restart_delivers_them() {
    let app = spawn_app_with(|c| {
        c.delivery_timeout_ms = 10_000;
        c.shutdown_grace_ms = 100;
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::ok_after(Duration::from_secs(30))]);
    let hook = app.collection_hook(&rx, 0).await;
    collection(&app, "Interrupted").await;
    rx.wait_for(1).await;
    let config = app.config.clone();
    let db = app.stop().await;
    let app = start(db, config).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Interrupted");
    let log = app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    assert_eq!(log.len(), 1);
}
