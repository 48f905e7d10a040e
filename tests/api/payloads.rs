//! What a delivery carries: every event type and its payload, the headers, and signatures
//! under both schemes, before and after a secret rotation.

use crate::content::{CREATE_VIDEO, UPDATE_VIDEO};
use crate::helpers::{
    collection, finished, spawn_app, statuses, TestReceiver, SECRET_A, SECRET_B, SECRET_C,
};
use herald_verify::{Scheme, Verifier};
use serde_json::{json, Value};
use std::collections::HashMap;

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
    let r = app.graphql(CREATE_VIDEO, json!({"i": {"title": "All-hands presentation", "collectionIds": [child], "duration": 25.7}})).await;
    let video = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .expect("video")
        .to_owned();
    let r = app
        .graphql(
            CREATE_VIDEO,
            json!({"i": {"title": "Draft", "draft": true}}),
        )
        .await;
    let draft = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .expect("draft")
        .to_owned();
    app.graphql(
        UPDATE_VIDEO,
        json!({"i": {"videoId": draft, "title": "Still a draft"}}),
    )
    .await;
    app.graphql(
        "mutation ($i: PublishVideoInput!) { publishVideo(input: $i) { errors { message } } }",
        json!({"i": {"videoId": draft}}),
    )
    .await;
    app.graphql(
        UPDATE_VIDEO,
        json!({"i": {"videoId": video, "title": "API Design Session"}}),
    )
    .await;
    app.graphql(
        UPDATE_VIDEO,
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
async fn rotated_secrets_sign_each_attempt_with_the_current_list() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook = app.collection_hook(&rx, 3).await;
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
