//! Webhook mutations and queries: Rewatch's documented example, every validation rule,
//! updates, deletion and pagination.

use crate::helpers::{spawn_app, spawn_app_with, SECRET_A, SECRET_B, SECRET_C};
use serde_json::{json, Value};

const CREATE: &str = "mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { viewer { id } webhook { id url description enabled retries events } errors { message path } } }";
const UPDATE: &str = "mutation ($input: UpdateWebhookInput!) { updateWebhook(input: $input) { clientMutationId webhook { id url description enabled disabledReason retries events secretCount } errors { message path } } }";

#[tokio::test]
async fn rewatchs_documented_example_works_verbatim() {
    let app = spawn_app().await;
    let r = app
        .graphql(
            CREATE,
            json!({"input": {"url": "https://example.com/webhooks", "description": "Example hook", "events": ["VIDEO", "COLLECTION"],
                "secrets": [SECRET_A, SECRET_B, SECRET_C], "retries": 3, "enabled": false}}),
        )
        .await;
    assert_eq!(r.get("errors"), None, "{r}");
    let payload = &r["data"]["createWebhook"];
    assert_eq!(payload["errors"], json!([]));
    assert_eq!(
        payload["viewer"]["id"],
        herald::domain::ids::encode(herald::domain::ids::Kind::User, 1)
    );
    assert_eq!(
        payload["webhook"],
        json!({"id": "V2ViaG9vay0x", "url": "https://example.com/webhooks", "description": "Example hook", "enabled": false, "retries": 3, "events": ["VIDEO", "COLLECTION"]})
    );
}

/// Each case: an input that breaks one rule, and the field the error must name.
fn invalid_inputs() -> Vec<(Value, &'static str)> {
    let ok = |f: &dyn Fn(&mut Value)| {
        let mut v =
            json!({"url": "https://example.com/hook", "events": ["VIDEO"], "secrets": [SECRET_A]});
        f(&mut v);
        v
    };
    vec![
        (ok(&|v| v["url"] = json!("http://example.com/hook")), "url"),
        (ok(&|v| v["url"] = json!("ftp://example.com/hook")), "url"),
        (ok(&|v| v["url"] = json!("not a url")), "url"),
        (
            ok(&|v| v["url"] = json!("https://user:pw@example.com/hook")),
            "url",
        ),
        (
            ok(&|v| v["url"] = json!(format!("https://example.com/{}", "a".repeat(2048)))),
            "url",
        ),
        (ok(&|v| v["url"] = json!("https://localhost/hook")), "url"),
        (ok(&|v| v["url"] = json!("https://127.0.0.1/hook")), "url"),
        (ok(&|v| v["url"] = json!("https://10.0.0.7/hook")), "url"),
        (
            ok(&|v| v["url"] = json!("https://169.254.169.254/latest/meta-data")),
            "url",
        ),
        (ok(&|v| v["url"] = json!("https://[::1]/hook")), "url"),
        (
            ok(&|v| v["description"] = json!("d".repeat(1001))),
            "description",
        ),
        (ok(&|v| v["events"] = json!([])), "events"),
        (ok(&|v| v["secrets"] = json!([])), "secrets"),
        (ok(&|v| v["secrets"] = json!(["short"])), "secrets"),
        (ok(&|v| v["secrets"] = json!(["x".repeat(257)])), "secrets"),
        (
            ok(&|v| v["secrets"] = json!([SECRET_A, SECRET_A])),
            "secrets",
        ),
        (
            ok(&|v| {
                v["secrets"] = json!((0..6)
                    .map(|i| format!("{i}").repeat(40))
                    .collect::<Vec<_>>())
            }),
            "secrets",
        ),
        (ok(&|v| v["retries"] = json!(-1)), "retries"),
        (ok(&|v| v["retries"] = json!(11)), "retries"),
    ]
}

#[tokio::test]
async fn every_rule_is_enforced_with_a_path_and_nothing_is_saved() {
    let app = spawn_app_with(|c| c.dev = false).await;
    for (input, field) in invalid_inputs() {
        let r = app.graphql(CREATE, json!({ "input": input })).await;
        let p = &r["data"]["createWebhook"];
        assert_eq!(p["webhook"], Value::Null, "{input}");
        assert_eq!(
            p["errors"][0]["path"],
            json!(["input", field]),
            "{input}: {r}"
        );
        assert!(
            p["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 10),
            "{r}"
        );
    }
    assert_eq!(app.webhook_count().await, 0);
}

#[tokio::test]
async fn several_broken_rules_are_all_reported() {
    let app = spawn_app_with(|c| c.dev = false).await;
    let r = app
        .graphql(CREATE, json!({"input": {"url": "http://x.test", "events": [], "secrets": ["short"], "retries": 42}}))
        .await;
    let paths: Vec<Value> = r["data"]["createWebhook"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            json!(["input", "url"]),
            json!(["input", "events"]),
            json!(["input", "secrets"]),
            json!(["input", "retries"])
        ]
    );
}

#[tokio::test]
async fn allowed_networks_permit_private_literal_addresses() {
    let app = spawn_app_with(|c| {
        c.dev = false;
        c.allowed_networks = vec!["10.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let r = app.graphql(CREATE, json!({"input": {"url": "https://10.1.2.3/hook", "events": ["VIDEO"], "secrets": [SECRET_A]}})).await;
    assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
}

#[tokio::test]
async fn defaults_are_three_retries_and_enabled() {
    let app = spawn_app().await;
    let r = app.graphql(CREATE, json!({"input": {"url": "https://example.com/h", "events": ["COLLECTION", "COLLECTION"], "secrets": [SECRET_A]}})).await;
    let w = &r["data"]["createWebhook"]["webhook"];
    assert_eq!(w["retries"], 3);
    assert_eq!(w["enabled"], true);
    assert_eq!(w["events"], json!(["COLLECTION"]));
}

#[tokio::test]
async fn update_rotates_secrets_toggles_enabled_and_validates() {
    let app = spawn_app().await;
    let id = app
        .create_webhook("https://example.com/h", &["VIDEO"], &[SECRET_A], 3)
        .await;
    let r = app
        .graphql(UPDATE, json!({"input": {"clientMutationId": "m1", "webhookId": id, "secrets": [SECRET_B, SECRET_A], "enabled": false, "description": "now described"}}))
        .await;
    let p = &r["data"]["updateWebhook"];
    assert_eq!(p["clientMutationId"], "m1");
    assert_eq!(p["errors"], json!([]));
    assert_eq!(p["webhook"]["secretCount"], 2);
    assert_eq!(p["webhook"]["enabled"], false);
    assert_eq!(p["webhook"]["disabledReason"], "MANUAL");
    assert_eq!(p["webhook"]["description"], "now described");

    let r = app
        .graphql(
            UPDATE,
            json!({"input": {"webhookId": id, "enabled": true, "description": null}}),
        )
        .await;
    let w = &r["data"]["updateWebhook"]["webhook"];
    assert_eq!(w["enabled"], true);
    assert_eq!(w["disabledReason"], Value::Null);
    assert_eq!(w["description"], Value::Null);

    // Invalid input changes nothing, even the valid parts of it.
    let r = app.graphql(UPDATE, json!({"input": {"webhookId": id, "retries": 99, "url": "https://example.com/changed"}})).await;
    assert_eq!(
        r["data"]["updateWebhook"]["errors"][0]["path"],
        json!(["input", "retries"])
    );
    assert_eq!(
        app.webhook(&id, "url retries").await,
        json!({"url": "https://example.com/h", "retries": 3})
    );
}

#[tokio::test]
async fn unknown_or_foreign_ids_are_no_object_found() {
    let app = spawn_app().await;
    let video_id = herald::domain::ids::encode(herald::domain::ids::Kind::Video, 1);
    for id in ["V2ViaG9vay05OTk=", "garbage", video_id.as_str()] {
        let r = app.graphql("mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message path } } }", json!({"i": {"webhookId": id}})).await;
        assert_eq!(
            r["data"]["deleteWebhook"]["errors"],
            json!([{"message": "No object found", "path": ["input", "webhookId"]}]),
            "{id}"
        );
        let r = app
            .graphql(UPDATE, json!({"input": {"webhookId": id, "retries": 1}}))
            .await;
        assert_eq!(
            r["data"]["updateWebhook"]["errors"][0]["message"],
            "No object found"
        );
    }
}

#[tokio::test]
async fn delete_removes_the_webhook() {
    let app = spawn_app().await;
    let id = app
        .create_webhook("https://example.com/h", &["VIDEO"], &[SECRET_A], 3)
        .await;
    let r = app
        .graphql("mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { clientMutationId deletedWebhookId errors { message } viewer { id } } }", json!({"i": {"webhookId": id, "clientMutationId": "x"}}))
        .await;
    assert_eq!(r["data"]["deleteWebhook"]["errors"], json!([]));
    assert_eq!(r["data"]["deleteWebhook"]["deletedWebhookId"], json!(id));
    assert_eq!(r["data"]["deleteWebhook"]["clientMutationId"], "x");
    assert_eq!(app.webhook_count().await, 0);
}

#[tokio::test]
async fn webhooks_are_paged_and_filtered_and_bad_page_arguments_are_refused() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let events: &[&str] = if i % 2 == 0 {
            &["VIDEO"]
        } else {
            &["COLLECTION"]
        };
        ids.push(
            app.create_webhook(&format!("https://example.com/{i}"), events, &[SECRET_A], 3)
                .await,
        );
    }
    let q = "query ($after: String) { channel { webhooks(first: 2, after: $after) { nodes { id } edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app.graphql(q, json!({ "after": after })).await;
        let conn = &r["data"]["channel"]["webhooks"];
        for n in conn["nodes"].as_array().expect("nodes") {
            seen.push(n["id"].as_str().expect("id").to_owned());
        }
        assert_eq!(
            conn["nodes"].as_array().map(Vec::len),
            conn["edges"].as_array().map(Vec::len)
        );
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids);

    let r = app
        .graphql(
            "{ channel { webhooks(event: COLLECTION) { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["channel"]["webhooks"]["nodes"],
        json!([{"id": ids[1]}, {"id": ids[3]}])
    );
    app.graphql(
        UPDATE,
        json!({"input": {"webhookId": ids[0], "enabled": false}}),
    )
    .await;
    let r = app
        .graphql(
            "{ channel { webhooks(enabled: false) { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["channel"]["webhooks"]["nodes"],
        json!([{"id": ids[0]}])
    );

    let r = app
        .graphql(
            "{ channel { webhooks(first: 101) { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert!(r["errors"][0]["message"]
        .as_str()
        .expect("error")
        .contains("first"));
    let r = app
        .graphql(
            "{ channel { webhooks(after: \"nonsense\") { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert!(r["errors"][0]["message"]
        .as_str()
        .expect("error")
        .contains("cursor"));
}

#[tokio::test]
async fn secrets_are_never_readable() {
    let app = spawn_app().await;
    let r = app
        .graphql(
            "{ __type(name: \"Webhook\") { fields { name } } }",
            json!({}),
        )
        .await;
    let fields = r["data"]["__type"]["fields"].to_string();
    assert!(!fields.contains("\"secrets\""), "{fields}");
}
