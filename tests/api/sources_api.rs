//! The sources API: admins only, every bad input refused whole; ingest URLs that stop working
//! when rotated or deleted; webhooks' event-type filters; relayed deliveries redelivered.

use crate::helpers::{spawn_app, TestReceiver, SECRET_A};
use crate::sources::{fixture, post, requests, source, CREATE_SOURCE};
use serde_json::{json, Value};

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

fn errors(r: &Value, mutation: &str) -> Vec<(String, Value)> {
    r["data"][mutation]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or("").to_owned(),
                e["path"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn invalid_sources_are_refused_with_the_field_at_fault_and_nothing_is_made() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "S", "kind": "STRAVA"}), "verifyToken"),
        (json!({"name": "G", "kind": "GITHUB"}), "secret"),
        (
            json!({"name": "W", "kind": "STANDARD_WEBHOOKS", "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "P", "kind": "PLEX", "secret": "0123456789abcdef0123"}),
            "secret",
        ),
        (
            json!({"name": "P", "kind": "PLEX", "verifyToken": "x"}),
            "verifyToken",
        ),
        (json!({"name": " ", "kind": "PLEX"}), "name"),
        (
            json!({"name": "P", "kind": "PLEX", "events": ["media play"]}),
            "events",
        ),
        (json!({"name": "P", "kind": "PLEX", "events": []}), "events"),
        (
            json!({"name": "P", "kind": "PLEX", "allowedUsers": [""]}),
            "allowedUsers",
        ),
        (
            json!({"name": "G", "kind": "GITHUB", "secret": "It's a Secret to Everybody", "allowedServers": ["x"]}),
            "allowedServers",
        ),
    ];
    for (input, field) in cases {
        let r = app.graphql(CREATE_SOURCE, json!({ "i": input })).await;
        let errs = errors(&r, "createSource");
        assert!(
            errs.iter()
                .any(|(_, path)| *path == json!(["input", field])),
            "{input} should be refused at {field}: {r}"
        );
        assert_eq!(r["data"]["createSource"]["source"], Value::Null);
    }
    let r = app
        .graphql(
            CREATE_SOURCE,
            json!({"i": {"name": "X", "kind": "SPOTIFY"}}),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .expect("refused")
            .contains("SPOTIFY"),
        "{r}"
    );
    let r = app
        .graphql_as(
            &app.member_token,
            CREATE_SOURCE,
            json!({"i": {"name": "P", "kind": "PLEX"}}),
        )
        .await;
    assert_eq!(
        errors(&r, "createSource")[0].0,
        "Only channel admins may view or modify sources"
    );
    let r = app
        .graphql("{ channel { sources { nodes { id } } } }", json!({}))
        .await;
    assert_eq!(r["data"]["channel"]["sources"]["nodes"], json!([]), "{r}");
    assert_eq!(app.db.count("SELECT COUNT(*) FROM sources").await, 0);
}

#[tokio::test]
async fn a_rotated_or_deleted_ingest_url_is_refused_and_the_url_is_shown_only_when_made() {
    let app = spawn_app().await;
    let (id, old) = source(&app, json!({"name": "Jellyfin", "kind": "JELLYFIN"})).await;
    assert!(old.starts_with("/ingest/src_"), "{old}");
    let body = fixture("jellyfin/playbackstop-movie.send-all-properties.constructed.json");
    assert_eq!(post(&app, &old, &JSON, body.clone()).await.0, 200);
    let r = app
        .graphql(
            "{ channel { sources { nodes { id name kind ingestUrl events } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["channel"]["sources"]["nodes"],
        json!([{"id": id, "name": "Jellyfin", "kind": "JELLYFIN", "ingestUrl": null,
                "events": ["PlaybackStart", "PlaybackStop"]}]),
        "herald keeps only the token's hash"
    );
    let r = app
        .graphql(
            "mutation ($i: RotateSourceTokenInput!) { rotateSourceToken(input: $i) { source { ingestUrl } errors { message } } }",
            json!({"i": {"sourceId": id}}),
        )
        .await;
    let url = r["data"]["rotateSourceToken"]["source"]["ingestUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    let new = url[url.find("/ingest/").expect("path")..].to_owned();
    assert_ne!(new, old);
    let (status, answer) = post(&app, &old, &JSON, body.clone()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["errors"][0]["message"].as_str().is_some());
    assert_eq!(
        requests(&app, &id).await.len(),
        1,
        "a refused token stores nothing"
    );
    assert_eq!(post(&app, &new, &JSON, body.clone()).await.0, 200);
    assert_eq!(
        post(&app, "/ingest/not-a-token", &JSON, body.clone())
            .await
            .0,
        403
    );

    let r = app
        .graphql(
            "mutation ($i: DeleteSourceInput!) { deleteSource(input: $i) { deletedSourceId errors { message } } }",
            json!({"i": {"sourceId": id}}),
        )
        .await;
    assert_eq!(
        r["data"]["deleteSource"]["deletedSourceId"],
        json!(id),
        "{r}"
    );
    assert_eq!(post(&app, &new, &JSON, body).await.0, 403);
    assert_eq!(
        app.db.count("SELECT COUNT(*) FROM source_requests").await,
        0
    );
}

#[tokio::test]
async fn an_update_is_checked_whole_and_a_new_kind_brings_its_default_events() {
    let app = spawn_app().await;
    let (id, path) = source(&app, json!({"name": "Media", "kind": "PLEX"})).await;
    let update = "mutation ($i: UpdateSourceInput!) { updateSource(input: $i) { source { kind events allowedUsers enabled } errors { message path } } }";
    let r = app
        .graphql(
            update,
            json!({"i": {"sourceId": id, "kind": "STRAVA", "secret": "0123456789abcdef"}}),
        )
        .await;
    let paths: Vec<Value> = errors(&r, "updateSource")
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert!(paths.contains(&json!(["input", "verifyToken"])), "{r}");
    assert!(paths.contains(&json!(["input", "secret"])), "{r}");
    let r = app
        .graphql(
            update,
            json!({"i": {"sourceId": id, "kind": "EMBY", "allowedUsers": ["admin"]}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateSource"]["source"],
        json!({"kind": "EMBY", "allowedUsers": ["admin"], "enabled": true,
               "events": ["playback.start", "playback.pause", "playback.unpause", "playback.stop"]}),
        "{r}"
    );
    let r = app
        .graphql(update, json!({"i": {"sourceId": id, "enabled": false}}))
        .await;
    assert_eq!(r["data"]["updateSource"]["source"]["enabled"], false, "{r}");
    let body = fixture("emby/playback-stop-movie.emby-4.7.13.moviepilot.json");
    let (status, answer) = post(&app, &path, &JSON, body).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        requests(&app, &id).await[0]["message"],
        "the source is disabled"
    );
}

#[tokio::test]
async fn event_types_narrow_what_a_webhook_gets_and_are_checked_against_its_events() {
    let app = spawn_app().await;
    let (jellyfin_rx, all_rx) = (TestReceiver::start().await, TestReceiver::start().await);
    let create = "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id eventTypes } errors { message path } } }";
    let hook = |url: String, events: Value, types: Value| json!({"i": {"url": url, "events": events, "secrets": [SECRET_A], "eventTypes": types}});
    let r = app
        .graphql(
            create,
            hook(
                jellyfin_rx.url(),
                json!(["SOURCE", "COLLECTION"]),
                json!(["jellyfin.*", "collection.deleted"]),
            ),
        )
        .await;
    let narrowed = r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    assert_eq!(
        r["data"]["createWebhook"]["webhook"]["eventTypes"],
        json!(["jellyfin.*", "collection.deleted"])
    );
    app.create_webhook(&all_rx.url(), &["SOURCE", "COLLECTION"], &[SECRET_A], 3)
        .await;
    for (events, types) in [
        (json!(["VIDEO"]), json!(["vdeo.deleted"])),
        (json!(["VIDEO"]), json!(["plex.*"])),
        (json!(["SOURCE"]), json!(["pl ex"])),
    ] {
        let r = app.graphql(create, hook(all_rx.url(), events, types)).await;
        assert_eq!(
            errors(&r, "createWebhook")[0].1,
            json!(["input", "eventTypes"]),
            "{r}"
        );
    }

    let (_, jellyfin) = source(&app, json!({"name": "J", "kind": "JELLYFIN"})).await;
    let (_, emby) = source(&app, json!({"name": "E", "kind": "EMBY"})).await;
    let jf = fixture("jellyfin/playbackstop-movie.send-all-properties.constructed.json");
    assert_eq!(
        post(
            &app,
            &emby,
            &JSON,
            fixture("emby/playback-stop-movie.emby-4.7.13.moviepilot.json")
        )
        .await
        .0,
        200
    );
    assert_eq!(post(&app, &jellyfin, &JSON, jf).await.0, 200);
    let c = crate::helpers::collection(&app, "Kept").await;
    app.graphql(
        "mutation ($i: DeleteCollectionInput!) { deleteCollection(input: $i) { errors { message } } }",
        json!({"i": {"collectionId": c}}),
    )
    .await;
    let events = |log: Vec<Value>| -> Vec<String> {
        let mut names: Vec<String> = log
            .iter()
            .map(|d| d["eventName"].as_str().unwrap_or("").to_owned())
            .collect();
        names.sort();
        names
    };
    let log = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { ... on Webhook { deliveries { nodes { event eventName } } } } }",
            json!({"id": narrowed}),
        )
        .await;
    let nodes = log["data"]["node"]["deliveries"]["nodes"]
        .as_array()
        .expect("log")
        .clone();
    assert_eq!(
        events(nodes.clone()),
        ["collection.deleted", "jellyfin.playback.stop"]
    );
    assert!(nodes.iter().any(|d| d["event"] == "SOURCE"));
    assert_eq!(all_rx.wait_for(4).await.len(), 4);

    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { webhook { eventTypes } errors { message path } } }",
            json!({"i": {"webhookId": narrowed, "events": ["VIDEO"]}}),
        )
        .await;
    assert_eq!(
        errors(&r, "updateWebhook")[0].1,
        json!(["input", "eventTypes"]),
        "the filter no longer fits: {r}"
    );
    let r = app
        .graphql(
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { webhook { eventTypes } errors { message path } } }",
            json!({"i": {"webhookId": narrowed, "eventTypes": null}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateWebhook"]["webhook"]["eventTypes"],
        Value::Null,
        "{r}"
    );
}

#[tokio::test]
async fn a_relayed_delivery_is_retried_and_can_be_redelivered_with_its_nonce() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    rx.script([crate::helpers::Reply::status(500)]);
    let hook = app
        .create_webhook(&rx.url(), &["SOURCE"], &[SECRET_A], 3)
        .await;
    let (_, path) = source(&app, json!({"name": "J", "kind": "JELLYFIN"})).await;
    let body = fixture("jellyfin/playbackstart-episode.send-all-properties.moviepilot.json");
    assert_eq!(
        post(&app, &path, &[("content-type", "text/plain")], body)
            .await
            .0,
        200
    );
    let log = app
        .wait_for_deliveries(&hook, crate::helpers::first_is("SUCCEEDED"))
        .await;
    assert_eq!(
        log[0]["attempts"].as_array().expect("attempts").len(),
        2,
        "retried once"
    );
    let r = app
        .graphql(
            "mutation ($i: RedeliverWebhookDeliveryInput!) { redeliverWebhookDelivery(input: $i) { delivery { status } errors { message } } }",
            json!({"i": {"deliveryId": log[0]["id"]}}),
        )
        .await;
    assert_eq!(
        r["data"]["redeliverWebhookDelivery"]["delivery"]["status"], "SUCCEEDED",
        "{r}"
    );
    let got = rx.wait_for(3).await;
    let nonces: Vec<&str> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert!(nonces.iter().all(|n| *n == nonces[0]), "{nonces:?}");
    assert_eq!(got[2].json()["event"], "jellyfin.playback.start");
}

#[tokio::test]
async fn herald_listen_forwards_relayed_events() {
    let app = spawn_app().await;
    let local = TestReceiver::start().await;
    let mut listen = crate::helpers::Process::spawn(
        crate::helpers::herald()
            .args([
                "listen",
                "--server",
                &app.url(""),
                "--forward-to",
                &local.url(),
            ])
            .args(["--events", "SOURCE"])
            .env("HERALD_TOKEN", &app.token),
    );
    listen.expect_line("Ready. Forwarding SOURCE events").await;
    let secret_line = listen.expect_line("Webhook secret").await;
    let secret = secret_line.rsplit(' ').next().expect("secret").to_owned();
    let (_, path) = source(&app, json!({"name": "J", "kind": "JELLYFIN"})).await;
    let body = fixture("jellyfin/playbackstart-episode.send-all-properties.moviepilot.json");
    assert_eq!(post(&app, &path, &JSON, body).await.0, 200);
    let got = local.wait_for(1).await;
    herald_verify::Verifier::new([&secret])
        .verify(&got[0].header_pairs(), &got[0].body)
        .expect("signed with the listener's secret");
    assert_eq!(got[0].json()["event"], "jellyfin.playback.start");
    listen.expect_line("jellyfin.playback.start").await;
}
