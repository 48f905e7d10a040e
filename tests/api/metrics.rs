//! `GET /metrics`: Prometheus' text format, what the engine counts, what the database holds,
//! and its own listener when `HERALD_METRICS_LISTEN` gives one.

use crate::helpers::{
    closed_port, collection, eventually, first_is, spawn_app, spawn_app_with, Reply, TestApp,
    TestReceiver, DEADLINE,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The value of the sample `series` (a name with its labels, as written) in `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.expect("text")
}

#[tokio::test]
async fn deliveries_attempts_and_events_are_counted_without_urls_in_labels() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 0).await;
    rx.script([Reply::status(503)]);
    collection(&app, "One").await;
    app.wait_for_deliveries(&hook, first_is("FAILED")).await;
    collection(&app, "Two").await;
    app.wait_for_deliveries(&hook, |log| {
        log.len() == 2 && log[0]["status"] == "SUCCEEDED"
    })
    .await;
    let text = scrape(&app).await;
    let expect = [
        ("herald_events_total{event=\"collection.created\"}", 2.0),
        ("herald_events_total{event=\"video.updated\"}", 0.0),
        (
            "herald_attempts_total{result=\"SUCCESS\",status_class=\"2xx\"}",
            1.0,
        ),
        (
            "herald_attempts_total{result=\"REQUEST_FAILURE\",status_class=\"5xx\"}",
            1.0,
        ),
        (
            "herald_deliveries_finished_total{status=\"succeeded\"}",
            1.0,
        ),
        ("herald_deliveries_finished_total{status=\"failed\"}", 1.0),
        ("herald_attempt_duration_seconds_count", 2.0),
        ("herald_queued_deliveries", 0.0),
        ("herald_oldest_due_delivery_age_seconds", 0.0),
        ("herald_webhooks_paused", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    for series in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "herald_engine_rounds_total",
        "herald_engine_unrecorded_outcomes",
    ] {
        assert!(sample(&text, series).is_some(), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE herald_attempt_duration_seconds histogram"));
    assert!(!text.contains("127.0.0.1"), "no URL is a label: {text}");
}

#[tokio::test]
async fn the_queue_and_disabled_webhooks_are_read_from_the_database() {
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 60_000;
        c.retry_cap_ms = 60_000;
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app.collection_hook(&rx, 3).await;
    let idle = app.collection_hook(&rx, 3).await;
    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
            json!({ "i": { "webhookId": idle, "enabled": false } }),
        )
        .await;
    assert_eq!(r["data"]["updateWebhook"]["errors"], json!([]), "{r}");
    collection(&app, "Queued").await;
    app.wait_for_deliveries(&hook, first_is("RETRYING")).await;
    let text = scrape(&app).await;
    // One delivery retries in a minute; the disabled webhook's waits.
    assert_eq!(
        sample(&text, "herald_queued_deliveries"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "herald_webhooks_disabled{reason=\"manual\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "herald_webhooks_disabled{reason=\"failing\"}"),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn ingest_requests_are_counted_by_source_kind_and_outcome() {
    use crate::sources::{fixture, post, source};
    let app = spawn_app().await;
    let (_, jellyfin) = source(&app, json!({"name": "Jellyfin", "kind": "JELLYFIN"})).await;
    let (_, filtered) = source(
        &app,
        json!({"name": "Only pauses", "kind": "JELLYFIN", "events": ["jellyfin.playback.pause"]}),
    )
    .await;
    let body = fixture("jellyfin/playbackstop-movie.send-all-properties.constructed.json");
    let json_type = [("content-type", "application/json")];
    for (path, body, expected) in [
        (&jellyfin, body.clone(), 200),
        (&jellyfin, body.clone(), 200),
        (&filtered, body, 200),
        (&jellyfin, b"{not json".to_vec(), 400),
    ] {
        let (status, answer) = post(&app, path, &json_type, body).await;
        assert_eq!(status, expected, "{answer}");
    }
    let (status, _) = post(&app, "/ingest/no-such-token", &json_type, "{}").await;
    assert_eq!(status, 403);

    let text = scrape(&app).await;
    let expect = [
        ("accepted", "jellyfin", 1.0),
        ("duplicate", "jellyfin", 1.0),
        ("filtered", "jellyfin", 1.0),
        ("rejected", "jellyfin", 1.0),
        ("error", "jellyfin", 0.0),
        ("accepted", "plex", 0.0),
        ("rejected", "unknown", 1.0),
    ];
    for (outcome, kind, value) in expect {
        let series =
            format!("herald_ingest_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
        assert_eq!(sample(&text, &series), Some(value), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_can_be_served_on_a_listener_of_their_own() {
    let port = closed_port();
    let app = spawn_app_with(|c| {
        c.metrics_listen = Some(([127, 0, 0, 1], port).into());
        c.header_timeout_ms = 300;
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = eventually(DEADLINE, || async {
        match app.http().get(&url).send().await {
            Ok(r) if r.status() == 200 => r.text().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!("status {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    assert!(text.contains("herald_events_total"), "{text}");

    // It has the API's limits: a client that sends half a request is not kept waiting for.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    slow.write_all(b"GET /metr").await.expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, slow.read_to_end(&mut rest))
        .await
        .expect("the metrics listener closes a connection past its header timeout")
        .ok();
}
