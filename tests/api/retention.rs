//! Retention (`HERALD_RETENTION_DAYS`): old finished deliveries go with their attempts, then the
//! events nothing refers to any more; queued deliveries and recent ones stay; SQLite reuses the
//! pages freed.

use crate::helpers::{
    collection, eventually, first_is, spawn_app_with, Reply, TestReceiver, DEADLINE, SECRET_A,
};
use crate::metrics::sample;
use herald::config::Config;
use serde_json::json;

/// Retention looks every 50 ms; retries are a minute apart, so a failed delivery stays queued.
fn quick_retention(config: &mut Config) {
    config.retention_every_ms = 50;
    config.retry_base_ms = 60_000;
    config.retry_cap_ms = 60_000;
}

#[tokio::test]
async fn old_finished_deliveries_and_unreferenced_events_are_deleted_queued_ones_kept() {
    let app = spawn_app_with(quick_retention).await;
    // An event no webhook receives.
    collection(&app, "Before any webhook").await;
    let ok = TestReceiver::start().await;
    let down = TestReceiver::start().await;
    down.always(Reply::status(500));
    let kept = app
        .create_webhook(&ok.url(), &["COLLECTION", "VIDEO"], &[SECRET_A], 3)
        .await;
    let failing = app.collection_hook(&down, 3).await;
    collection(&app, "Old one").await;
    collection(&app, "Old two").await;
    let r = app
        .graphql(
            "mutation { createVideo(input: {title: \"Old video\"}) { errors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["createVideo"]["errors"], json!([]), "{r}");
    app.wait_for_deliveries(&kept, |log| {
        log.len() == 3 && log.iter().all(|d| d["status"] == "SUCCEEDED")
    })
    .await;
    app.wait_for_deliveries(&failing, |log| {
        log.len() == 2 && log.iter().all(|d| d["status"] == "RETRYING")
    })
    .await;
    // Everything so far happened long ago.
    app.db
        .execute("UPDATE deliveries SET created_at = 0, updated_at = 0; UPDATE events SET at = 0; UPDATE delivery_attempts SET at = 0")
        .await;
    collection(&app, "Recent").await;
    // Retention may already be deleting the old ones meanwhile.
    app.wait_for_deliveries(&kept, |log| {
        log.first().is_some_and(|d| {
            d["status"] == "SUCCEEDED" && d["body"].as_str().is_some_and(|b| b.contains("Recent"))
        })
    })
    .await;

    let left = eventually(DEADLINE, || async {
        let counts = (
            app.db.count("SELECT COUNT(*) FROM deliveries").await,
            app.db.count("SELECT COUNT(*) FROM events").await,
        );
        if counts == (4, 3) {
            Ok(counts)
        } else {
            Err(counts)
        }
    })
    .await;
    assert_eq!(left, (4, 3));
    let log = app.deliveries(&kept).await;
    assert_eq!(log.len(), 1, "only the recent delivery is left: {log:?}");
    assert_eq!(
        log[0]["body"].as_str().map(|b| b.contains("Recent")),
        Some(true)
    );
    let queued = app.deliveries(&failing).await;
    assert_eq!(queued.len(), 3, "queued deliveries stay, however old");
    assert!(queued.iter().all(|d| d["status"] == "RETRYING"));
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)")
            .await,
        0,
        "attempts go with their deliveries"
    );
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(
        sample(&text, "herald_retention_deleted_total{kind=\"deliveries\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "herald_retention_deleted_total{kind=\"events\"}"),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn sqlite_reuses_the_pages_retention_frees() {
    let app = spawn_app_with(|c| c.retention_days = 0).await;
    if !app.db.is_sqlite() {
        return;
    }
    let ok = TestReceiver::start().await;
    let hook = app.collection_hook(&ok, 0).await;
    collection(&app, "Seed").await;
    app.wait_for_deliveries(&hook, first_is("SUCCEEDED")).await;
    // Many finished deliveries of that event, with an attempt each, long ago.
    let seed = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
        INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, created_at, updated_at) \
        SELECT d.webhook_id, d.event_id, printf('%040x', random() & 0xffffffffff) || i, 'SUCCEEDED', 0, d.url, 0, 0, 0 \
        FROM n, (SELECT * FROM deliveries LIMIT 1) d; \
        INSERT INTO delivery_attempts (delivery_id, at, url, code, result, duration_ms, response_body) \
        SELECT id, 0, url, 200, 'SUCCESS', 1, printf('%.500c', 'x') FROM deliveries WHERE updated_at = 0";
    app.db.execute(seed).await;
    let pages = app
        .db
        .count("SELECT page_count FROM pragma_page_count()")
        .await;
    let mut after = Some(0);
    while let Some(from) = after {
        after = app
            .store
            .prune_deliveries(1, 1, from, 500)
            .await
            .expect("prune")
            .next;
    }
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM deliveries WHERE updated_at = 0")
            .await,
        0
    );
    let free = app
        .db
        .count("SELECT freelist_count FROM pragma_freelist_count()")
        .await;
    assert!(free > 0, "the deleted rows' pages are free");
    app.db.execute(seed).await;
    let again = app
        .db
        .count("SELECT page_count FROM pragma_page_count()")
        .await;
    assert!(
        again <= pages + 4,
        "the same rows again fit in the freed pages: {pages} pages, then {again}"
    );
}
