//! Authentication, roles, channel isolation and hostile requests.

use crate::helpers::{spawn_app, token_for, TestApp, SECRET_A};
use herald::domain::content::Role;
use serde_json::{json, Value};

async fn post(
    app: &TestApp,
    auth: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut req = app
        .http()
        .post(app.url("/api/graphql"))
        .header("content-type", content_type)
        .body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON error body, got {text:?}")),
    )
}

const VIEWER: &str = r#"{"query":"{ viewer { id user { email role } } }"}"#;

#[tokio::test]
async fn both_authorization_forms_are_accepted() {
    let app = spawn_app().await;
    for auth in [
        format!("Token token=\"{}\"", app.token),
        format!("Bearer {}", app.token),
    ] {
        let (status, body) = post(&app, Some(&auth), "application/json", VIEWER).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["viewer"]["user"]["email"], "admin@example.com");
        assert_eq!(body["data"]["viewer"]["user"]["role"], "ADMIN");
    }
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_get_401_with_errors() {
    let app = spawn_app().await;
    for auth in [
        None,
        Some("Basic abc"),
        Some("Token abc"),
        Some("Bearer hrld_0000"),
    ] {
        let (status, body) = post(&app, auth, "application/json", VIEWER).await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(body.get("data").is_none());
    }
}

#[tokio::test]
async fn wrong_content_type_garbage_and_huge_bodies_get_clear_errors() {
    let app = spawn_app().await;
    let auth = format!("Bearer {}", app.token);
    let (status, body) = post(&app, Some(&auth), "text/plain", VIEWER).await;
    assert_eq!(status, 415);
    assert!(body["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("application/json"));

    let (status, body) = post(&app, Some(&auth), "application/json", "{not json").await;
    assert_eq!(status, 400);
    assert!(body["errors"][0]["message"].is_string());

    let huge = format!(
        r#"{{"query":"{{ viewer {{ id }} }}","x":"{}"}}"#,
        "a".repeat(herald::http::MAX_BODY_BYTES + 1)
    );
    let (status, body) = post(&app, Some(&auth), "application/json", huge).await;
    assert_eq!(status, 413);
    assert!(body["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("larger"));
}

#[tokio::test]
async fn too_deep_and_too_complex_queries_are_refused() {
    let app = spawn_app().await;
    let mut deep = String::from("id");
    for _ in 0..20 {
        deep = format!("parent {{ {deep} }}");
    }
    let q = format!("{{ channel {{ collections {{ nodes {{ {deep} }} }} }} }}");
    let r = app.graphql(&q, json!({})).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .expect("error")
            .to_lowercase()
            .contains("nested too deep"),
        "{r}"
    );

    let fields: String = (0..3000)
        .map(|i| format!("a{i}: viewer {{ id }} "))
        .collect();
    let r = app.graphql(&format!("{{ {fields} }}"), json!({})).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .expect("error")
            .to_lowercase()
            .contains("complex"),
        "{r}"
    );
}

#[tokio::test]
async fn a_member_cannot_view_or_modify_webhooks() {
    let app = spawn_app().await;
    let hook = app
        .create_webhook("https://example.com/hook", &["VIDEO"], &[SECRET_A], 3)
        .await;
    let r = app
        .graphql_as(
            &app.member_token,
            "{ channel { webhooks { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );

    let r = app
        .graphql_as(
            &app.member_token,
            "mutation ($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } errors { message path } } }",
            json!({ "i": { "url": "https://example.com/x", "events": ["VIDEO"], "secrets": [SECRET_A] } }),
        )
        .await;
    assert_eq!(
        r["data"]["createWebhook"]["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    assert_eq!(r["data"]["createWebhook"]["webhook"], Value::Null);

    let r = app
        .graphql_as(
            &app.member_token,
            "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { errors { message } } }",
            json!({ "i": { "webhookId": hook } }),
        )
        .await;
    assert_eq!(
        r["data"]["deleteWebhook"]["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    // Nothing changed: the admin still sees exactly one webhook.
    let r = app
        .graphql("{ channel { webhooks { nodes { id } } } }", json!({}))
        .await;
    assert_eq!(
        r["data"]["channel"]["webhooks"]["nodes"],
        json!([{ "id": hook }])
    );
}

#[tokio::test]
async fn members_may_change_channel_content() {
    let app = spawn_app().await;
    let r = app
        .graphql_as(
            &app.member_token,
            "mutation { createCollection(input: { name: \"Team\" }) { collection { name } errors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["createCollection"]["collection"]["name"], "Team");
}

#[tokio::test]
async fn another_channels_objects_are_not_found() {
    let app = spawn_app().await;
    let hook = app
        .create_webhook("https://example.com/hook", &["VIDEO"], &[SECRET_A], 3)
        .await;
    let other = token_for(&app.store, "other", "boss@other.test", Role::Admin).await;
    let r = app
        .graphql_as(
            &other,
            "query ($id: ID!) { node(id: $id) { id } }",
            json!({ "id": hook }),
        )
        .await;
    assert_eq!(r["data"]["node"], Value::Null);
    let r = app
        .graphql_as(
            &other,
            "mutation ($i: UpdateWebhookInput!) { updateWebhook(input: $i) { webhook { id } errors { message path } } }",
            json!({ "i": { "webhookId": hook, "enabled": false } }),
        )
        .await;
    assert_eq!(
        r["data"]["updateWebhook"]["errors"],
        json!([{ "message": "No object found", "path": ["input", "webhookId"] }])
    );
    let r = app
        .graphql_as(
            &other,
            "{ channel { subdomain webhooks { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["channel"]["subdomain"], "other");
    assert_eq!(r["data"]["channel"]["webhooks"]["nodes"], json!([]));
    // And the webhook is untouched for its own channel.
    assert_eq!(app.webhook(&hook, "enabled").await["enabled"], true);
}

#[tokio::test]
async fn health_and_readiness_answer_200_and_graphiql_is_served() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let g = app.get("/api/graphql").await;
    assert_eq!(g.status(), 200);
    assert!(g
        .text()
        .await
        .expect("html")
        .to_lowercase()
        .contains("graphiql"));
}
