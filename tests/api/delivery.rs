//! End-to-end deliveries to receivers on loopback: payloads, signatures, retries, failures,
//! pausing, the SSRF guard, shutdown and the bounds of the engine.

use crate::helpers::{
    spawn_app, spawn_app_with, start, Reply, TestApp, TestReceiver, DEADLINE, SECRET_A, SECRET_B,
    SECRET_C,
};
use herald::domain::ids::{ChannelId, Kind, Typed, UserId, WebhookId};
use herald::domain::net::NetPolicy;
use herald::domain::webhook::{parse_events, parse_secrets, NewWebhook, WebhookEvent, WebhookUrl};
use herald::store::{Actor, Quota, Round};
use herald_verify::{Scheme, Verifier};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

async fn collection(app: &TestApp, name: &str) -> String {
    let r = app.graphql("mutation ($n: String!) { createCollection(input: {name: $n}) { collection { id } errors { message } } }", json!({"n": name})).await;
    r["data"]["createCollection"]["collection"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

fn statuses(d: &[Value]) -> Vec<&str> {
    d.iter()
        .map(|x| x["status"].as_str().unwrap_or(""))
        .collect()
}

fn finished(d: &[Value]) -> bool {
    !d.is_empty()
        && d.iter()
            .all(|x| x["status"] == "SUCCEEDED" || x["status"] == "FAILED")
}

#[tokio::test]
async fn every_event_type_arrives_with_its_payload_and_drafts_and_noops_emit_nothing() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(&rx.url(), &["VIDEO", "COLLECTION"], &[SECRET_A], 3)
        .await;

    let parent = collection(&app, "All-hands").await;
    let child = collection(&app, "Q and A Sessions").await;
    app.graphql("mutation ($i: UpdateCollectionInput!) { updateCollection(input: $i) { errors { message } } }", json!({"i": {"collectionId": child, "parentId": parent}})).await;
    let r = app.graphql(crate::content::CREATE_VIDEO, json!({"i": {"title": "All-hands presentation", "collectionIds": [child], "duration": 25.7}})).await;
    let video = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .expect("video")
        .to_owned();
    let r = app
        .graphql(
            crate::content::CREATE_VIDEO,
            json!({"i": {"title": "Draft", "draft": true}}),
        )
        .await;
    let draft = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .expect("draft")
        .to_owned();
    app.graphql(
        crate::content::UPDATE_VIDEO,
        json!({"i": {"videoId": draft, "title": "Still a draft"}}),
    )
    .await;
    app.graphql(
        "mutation ($i: PublishVideoInput!) { publishVideo(input: $i) { errors { message } } }",
        json!({"i": {"videoId": draft}}),
    )
    .await;
    app.graphql(
        crate::content::UPDATE_VIDEO,
        json!({"i": {"videoId": video, "title": "API Design Session"}}),
    )
    .await;
    app.graphql(
        crate::content::UPDATE_VIDEO,
        json!({"i": {"videoId": video, "title": "API Design Session"}}),
    )
    .await; // no-op
    app.graphql(
        "mutation ($i: DeleteVideoInput!) { deleteVideo(input: $i) { errors { message } } }",
        json!({"i": {"videoId": video}}),
    )
    .await;
    app.graphql("mutation ($i: DeleteCollectionInput!) { deleteCollection(input: $i) { errors { message } } }", json!({"i": {"collectionId": child}})).await;

    let expected = [
        "collection.created",
        "collection.created",
        "collection.updated",
        "video.addedToChannel",
        "video.addedToChannel",
        "video.updated",
        "video.deleted",
        "collection.deleted",
    ];
    // Deliveries are written with the change, so the log is complete now.
    let log = app.deliveries(&hook).await;
    assert_eq!(log.len(), expected.len(), "{log:#?}");
    let got = rx.wait_for(expected.len()).await;
    let mut by_event: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &got {
        let body = r.json();
        by_event
            .entry(body["event"].as_str().expect("event").to_owned())
            .or_default()
            .push(body);
    }
    let mut names: Vec<&str> = got
        .iter()
        .map(|r| r.header("rewatch-hook-delivery-event"))
        .collect();
    names.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);

    let keys = |v: &Value| {
        v.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    let updated = &by_event["collection.updated"][0];
    assert_eq!(
        keys(updated),
        [
            "hookId",
            "nonce",
            "at",
            "event",
            "actor",
            "channel",
            "collection",
            "updates"
        ]
    );
    assert_eq!(updated["updates"]["parent"]["from"], Value::Null);
    assert_eq!(updated["updates"]["parent"]["to"]["id"], json!(parent));
    assert_eq!(
        updated["updates"]["parent"]["to"]["children"][0]["id"],
        json!(child)
    );
    assert_eq!(
        keys(&updated["collection"]),
        [
            "id",
            "url",
            "name",
            "description",
            "createdAt",
            "secret",
            "children",
            "admins",
            "members",
            "parent"
        ]
    );
    assert_eq!(updated["actor"]["email"], "admin@example.com");
    assert_eq!(
        keys(&updated["channel"]),
        ["url", "name", "subdomain", "description", "createdAt"]
    );
    assert_eq!(updated["channel"]["url"], "https://example.example.test");

    let added = by_event["video.addedToChannel"]
        .iter()
        .find(|b| b["video"]["title"] == "All-hands presentation")
        .expect("added");
    assert_eq!(
        keys(added),
        ["hookId", "nonce", "at", "event", "actor", "channel", "video"]
    );
    assert_eq!(
        keys(&added["video"]),
        [
            "id",
            "url",
            "title",
            "summary",
            "visibility",
            "presentedAt",
            "duration",
            "collections",
            "taggedUsers",
            "createdAt"
        ]
    );
    assert_eq!(added["video"]["collections"][0]["id"], json!(child));
    assert!(
        added["video"]["collections"][0].get("parent").is_none(),
        "nested collections have no parent key"
    );
    assert_eq!(added["video"]["duration"], 25.7);
    assert!(
        added["at"].as_str().expect("at").len() == 24
            && added["at"].as_str().expect("at").ends_with('Z')
    );

    let vu = &by_event["video.updated"][0];
    assert_eq!(
        vu["updates"],
        json!({"title": {"from": "All-hands presentation", "to": "API Design Session"}})
    );
    assert_eq!(
        vu["video"]["url"], added["video"]["url"],
        "the slug is fixed at creation"
    );
    assert_eq!(
        by_event["video.deleted"][0]["video"]["title"],
        "API Design Session"
    );
    assert!(by_event["collection.deleted"][0]["collection"]
        .get("parent")
        .is_none());
    assert_eq!(
        by_event["collection.deleted"][0]["collection"]["name"],
        "Q and A Sessions"
    );

    let log = app.wait_for_deliveries(&hook, finished).await;
    assert!(statuses(&log).iter().all(|s| *s == "SUCCEEDED"));
}

#[tokio::test]
async fn deliveries_carry_every_header_and_verify_under_both_schemes() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(
            &rx.url(),
            &["COLLECTION"],
            &[SECRET_A, SECRET_B, SECRET_C],
            3,
        )
        .await;
    collection(&app, "Signed").await;
    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(r.header("accept"), "application/json; charset=utf-8");
    assert!(r.header("user-agent").starts_with("Herald Webhooks/"));
    assert_eq!(r.header("rewatch-hook-id"), hook);
    assert_eq!(
        r.header("rewatch-hook-delivery-event"),
        "collection.created"
    );
    let nonce = r.header("rewatch-hook-delivery-nonce");
    assert!(
        nonce.len() == 40
            && nonce
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(r.header("webhook-id"), nonce);
    let ts = r.header("rewatch-hook-delivery-timestamp");
    assert_eq!(
        herald_verify::parse_timestamp(ts),
        r.header("webhook-timestamp").parse().ok()
    );
    assert_eq!(
        r.header("rewatch-hook-delivery-signatures")
            .split(',')
            .count(),
        3
    );
    assert_eq!(r.header("webhook-signature").split(' ').count(), 3);
    let body = r.json();
    assert_eq!(body["hookId"], json!(hook));
    assert_eq!(body["nonce"], json!(nonce));

    let headers = r.header_pairs();
    for (i, secret) in [SECRET_A, SECRET_B, SECRET_C].iter().enumerate() {
        let v = Verifier::new([secret]);
        let std = v
            .verify(&headers, &r.body)
            .expect("standard webhooks verifies");
        assert_eq!(
            (std.scheme, std.secret_index),
            (Scheme::StandardWebhooks, 0)
        );
        let rw = v
            .verify_rewatch_at(&headers, chrono::Utc::now().timestamp())
            .expect("rewatch verifies");
        assert_eq!(rw.scheme, Scheme::Rewatch);
        let whsec = herald_verify::standard_webhooks_secret(secret.as_bytes());
        assert!(
            Verifier::new([whsec]).verify(&headers, &r.body).is_ok(),
            "secret {i} in whsec_ form"
        );
    }
    // A receiver written from Rewatch's docs: recompute the HMAC of the four header values.
    let signed = format!(
        "{};{};{};{}",
        r.header("rewatch-hook-id"),
        r.header("rewatch-hook-delivery-event"),
        nonce,
        ts
    );
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET_B.as_bytes()).expect("key");
    mac.update(signed.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert!(r
        .header("rewatch-hook-delivery-signatures")
        .split(',')
        .any(|s| s == expected));

    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(
        log[0]["body"].as_str().expect("body").as_bytes(),
        &r.body[..],
        "the log shows the body as sent"
    );
    assert_eq!(log[0]["attempts"][0]["responseBody"], "receiver says hi");
    assert!(log[0]["attempts"][0]["durationMs"].as_i64().is_some());
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_with_one_nonce_until_it_succeeds() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(502)]);
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
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
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    collection(&app, "Once").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
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
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    collection(&app, "Doomed").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(log[0]["status"], "FAILED");
    assert_eq!(log[0]["retries"], 3);
    let times: Vec<chrono::DateTime<chrono::Utc>> = log[0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["at"].as_str().expect("at").parse().expect("time"))
        .collect();
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
async fn gone_fails_at_once_and_disables_the_webhook() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(410));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 5)
        .await;
    collection(&app, "Gone").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(log[0]["status"], "FAILED");
    assert_eq!(log[0]["attempts"].as_array().map(Vec::len), Some(1));
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { ... on Webhook { enabled disabledReason } } }",
            json!({"id": hook}),
        )
        .await;
    assert_eq!(
        r["data"]["node"],
        json!({"enabled": false, "disabledReason": "FAILING"})
    );
    // A disabled webhook gets no new deliveries.
    collection(&app, "After").await;
    assert_eq!(app.deliveries(&hook).await.len(), 1);
}

#[tokio::test]
async fn a_webhook_failing_past_the_limit_is_disabled() {
    let app = spawn_app_with(|c| c.disable_after_secs = 0).await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    collection(&app, "Failing").await;
    app.wait_for_deliveries(&hook, finished).await;
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let r = app
            .graphql(
                "query ($id: ID!) { node(id: $id) { ... on Webhook { enabled disabledReason } } }",
                json!({"id": hook}),
            )
            .await;
        if r["data"]["node"] == json!({"enabled": false, "disabledReason": "FAILING"}) {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "{r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_a_closed_port_is_a_connection_error() {
    let app = spawn_app_with(|c| c.delivery_timeout_ms = 300).await;
    let slow = TestReceiver::start().await;
    slow.always(Reply {
        status: 200,
        headers: vec![],
        delay: Duration::from_secs(5),
    });
    let slow_hook = app
        .create_webhook(&slow.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let closed_hook = app
        .create_webhook(
            &format!("http://{closed}/hook"),
            &["COLLECTION"],
            &[SECRET_A],
            0,
        )
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
async fn retry_after_is_honoured() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply {
        status: 503,
        headers: vec![("retry-after", "1".into())],
        delay: Duration::ZERO,
    }]);
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    collection(&app, "Later").await;
    let log = app.wait_for_deliveries(&hook, finished).await;
    let times: Vec<chrono::DateTime<chrono::Utc>> = log[0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["at"].as_str().expect("at").parse().expect("time"))
        .collect();
    assert_eq!(times.len(), 2);
    assert!(
        (times[1] - times[0]).num_milliseconds() >= 1000,
        "{times:?}"
    );
}

#[tokio::test]
async fn rotated_secrets_sign_each_attempt_with_the_current_list() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    collection(&app, "Before").await;
    rx.wait_for(1).await;
    app.graphql(
        "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { errors { message } } }",
        json!({"i": {"webhookId": hook, "secrets": [SECRET_B, SECRET_A]}}),
    )
    .await;
    collection(&app, "After").await;
    let got = rx.wait_for(2).await;
    let after = &got[1];
    assert_eq!(after.json()["collection"]["name"], "After");
    let headers = after.header_pairs();
    assert!(
        Verifier::new([SECRET_B])
            .verify(&headers, &after.body)
            .is_ok(),
        "the new secret verifies"
    );
    assert!(
        Verifier::new([SECRET_A])
            .verify(&headers, &after.body)
            .is_ok(),
        "the old secret still verifies"
    );
    assert!(Verifier::new([SECRET_C])
        .verify(&headers, &after.body)
        .is_err());
}

#[tokio::test]
async fn a_paused_webhook_gets_nothing_and_resumes_when_enabled() {
    let app = spawn_app_with(|c| c.retry_base_ms = 300).await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    let update = "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { webhook { enabled } errors { message } } }";
    collection(&app, "Queued").await;
    rx.wait_for(1).await;
    app.graphql(update, json!({"i": {"webhookId": hook, "enabled": false}}))
        .await;
    collection(&app, "While paused").await;
    // The retry falls due while the webhook is paused; nothing may be sent. Absence cannot be
    // awaited, so give the engine several of its polls and retry delays to misbehave.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.received().len(), 1);
    let log = app.deliveries(&hook).await;
    assert_eq!(log.len(), 1, "events while disabled create no deliveries");
    assert_eq!(log[0]["status"], "RETRYING");

    app.graphql(update, json!({"i": {"webhookId": hook, "enabled": true}}))
        .await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Queued");
    let log = app.wait_for_deliveries(&hook, finished).await;
    assert_eq!(statuses(&log), ["SUCCEEDED"]);
}

#[tokio::test]
async fn deleting_a_webhook_drops_its_queued_deliveries() {
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 60_000;
        c.retry_cap_ms = 60_000;
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.always(Reply::status(500));
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    collection(&app, "Queued").await;
    app.wait_for_deliveries(&hook, |d| {
        d.first().is_some_and(|x| x["status"] == "RETRYING")
    })
    .await;
    app.graphql(
        "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }",
        json!({"i": {"webhookId": hook}}),
    )
    .await;
    let id = WebhookId::decode(&hook).expect("id");
    let left = app.store.due_webhooks(i64::MAX).await.expect("due");
    assert!(!left.contains(&id));
    let log = app
        .store
        .list_deliveries(
            ChannelId(1),
            id,
            &Default::default(),
            herald::store::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("log");
    assert!(log.is_empty());
}

#[tokio::test]
async fn deleting_a_webhook_deletes_its_deliveries_and_attempts_and_no_others() {
    let app = spawn_app_with(|c| {
        c.retry_base_ms = 60_000;
        c.retry_cap_ms = 60_000;
    })
    .await;
    let failing = TestReceiver::start().await;
    failing.always(Reply::status(500));
    let healthy = TestReceiver::start().await;
    let hook = app
        .create_webhook(&failing.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    let other = app
        .create_webhook(&healthy.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    collection(&app, "One").await;
    collection(&app, "Two").await;
    app.wait_for_deliveries(&hook, |d| {
        d.len() == 2 && d.iter().all(|x| x["status"] == "RETRYING")
    })
    .await;
    app.wait_for_deliveries(&other, |d| d.len() == 2 && finished(d))
        .await;
    let id = herald::domain::ids::decode(Kind::Webhook, &hook).expect("id");
    let other_id = herald::domain::ids::decode(Kind::Webhook, &other).expect("id");
    let of = |webhook: i64| {
        format!(
            "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.webhook_id = {webhook}"
        )
    };
    assert_eq!(app.db.count(&of(id)).await, 2, "one failed attempt each");
    assert_eq!(app.db.count(&of(other_id)).await, 2);

    let r = app.graphql(
        "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }",
        json!({"i": {"webhookId": hook}}),
    )
    .await;
    assert_eq!(r["data"]["deleteWebhook"]["errors"], json!([]));

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

/// A webhook to `rx` and the channel's admin, for tests that work the store directly.
async fn webhook_and_admin(app: &TestApp, rx: &TestReceiver) -> (WebhookId, Actor) {
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 3)
        .await;
    let webhook_id = WebhookId::decode(&hook).expect("id");
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
async fn the_log_filters_by_status_and_nonce() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
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

#[tokio::test]
async fn shutdown_hands_back_attempts_in_flight_and_a_restart_delivers_them() {
    let app = spawn_app_with(|c| {
        c.delivery_timeout_ms = 10_000;
        c.shutdown_grace_ms = 100;
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.script([Reply {
        status: 200,
        headers: vec![],
        delay: Duration::from_secs(30),
    }]);
    let hook = app
        .create_webhook(&rx.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    collection(&app, "Interrupted").await;
    rx.wait_for(1).await;
    let config = app.config.clone();
    let db = app.stop().await;
    let app = start(db, config).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["collection"]["name"], "Interrupted");
    let log = app
        .wait_for_deliveries(&hook, |d| {
            d.first().is_some_and(|x| x["status"] == "SUCCEEDED")
        })
        .await;
    assert_eq!(log.len(), 1);
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
    stuck.always(Reply {
        status: 200,
        headers: vec![],
        delay: Duration::from_secs(20),
    });
    let healthy = TestReceiver::start().await;
    app.create_webhook(&stuck.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    let good = app
        .create_webhook(&healthy.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    for i in 0..30 {
        collection(&app, &format!("C{i}")).await;
    }
    // The stuck receiver holds at most its share of the workers (4 of 16); every delivery to
    // the healthy one completes meanwhile.
    healthy.wait_for(30).await;
    app.wait_for_deliveries(&good, |d| {
        d.len() == 30 && d.iter().all(|x| x["status"] == "SUCCEEDED")
    })
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
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dead_hook = app
        .create_webhook(
            &format!("http://{dead}/hook"),
            &["COLLECTION"],
            &[SECRET_A],
            10,
        )
        .await;
    let healthy = TestReceiver::start().await;
    let good = app
        .create_webhook(&healthy.url(), &["COLLECTION"], &[SECRET_A], 0)
        .await;
    for i in 0..40 {
        collection(&app, &format!("C{i}")).await;
    }
    app.wait_for_deliveries(&good, |d| {
        d.len() == 40 && d.iter().all(|x| x["status"] == "SUCCEEDED")
    })
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
