//! Documents written against Rewatch's schema, run unchanged: its scalars, interfaces and typed
//! errors, ordering and backward pagination, counts, users and videos as Rewatch has them, and
//! `webhooks` that answers `null` (not the whole channel) to a member.

use crate::content::CREATE_VIDEO;
use crate::helpers::{collection, spawn_app, TestApp, TestReceiver, SECRET_A};
use herald::domain::ids::{encode, Kind};
use serde_json::{json, Value};

const CREATE_HOOK: &str = r#"
mutation CreateHook($url: Url!, $events: [WebhookEvent!]!, $secrets: [String!]!, $retries: Int) {
  createWebhook(input: {url: $url, events: $events, secrets: $secrets, retries: $retries}) {
    webhook {
      id url
      creator { __typename id displayName avatarUrl ... on User { email channelRole isViewer url } }
    }
    errors { __typename message path }
    viewer { __typename id ... on User { displayName } }
  }
}"#;

/// Creates a webhook to `url` with a Rewatch client's document; returns its ID.
async fn hook(app: &TestApp, url: &str, events: &[&str]) -> String {
    let r = app
        .graphql(
            CREATE_HOOK,
            json!({"url": url, "events": events, "secrets": [SECRET_A], "retries": 0}),
        )
        .await;
    assert_eq!(r["data"]["createWebhook"]["errors"], json!([]), "{r}");
    r["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

fn ids(connection: &Value) -> Vec<&str> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("nodes: {connection}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_rewatch_client_creates_a_webhook_with_its_own_types() {
    let app = spawn_app().await;
    let r = app
        .graphql(
            CREATE_HOOK,
            json!({"url": "https://example.com/webhooks", "events": ["VIDEO"], "secrets": [SECRET_A], "retries": 5}),
        )
        .await;
    assert_eq!(r.get("errors"), None, "{r}");
    let admin = encode(Kind::User, 1);
    assert_eq!(
        r["data"]["createWebhook"],
        json!({
            "webhook": {
                "id": "V2ViaG9vay0x",
                "url": "https://example.com/webhooks",
                "creator": {
                    "__typename": "User", "id": admin, "displayName": "Example User", "avatarUrl": null,
                    "email": "admin@example.com", "channelRole": "ADMIN", "isViewer": true,
                    "url": "https://example.example.test/user/1"
                }
            },
            "errors": [],
            "viewer": {"__typename": "User", "id": admin, "displayName": "Example User"}
        })
    );
}

#[tokio::test]
async fn each_error_has_its_type() {
    let app = spawn_app().await;
    let errors = |r: &Value, mutation: &str| r["data"][mutation]["errors"].clone();

    let unknown = encode(Kind::Webhook, 99);
    let r = app
        .graphql(
            "mutation ($id: ID!) { deleteWebhook(input: {webhookId: $id}) { errors { __typename message path } } }",
            json!({"id": unknown}),
        )
        .await;
    assert_eq!(
        errors(&r, "deleteWebhook"),
        json!([{"__typename": "NotFoundError", "message": "No object found", "path": ["input", "webhookId"]}])
    );

    let r = app
        .graphql_as(
            &app.member_token,
            CREATE_HOOK,
            json!({"url": "https://example.com/webhooks", "events": ["VIDEO"], "secrets": [SECRET_A]}),
        )
        .await;
    assert_eq!(
        errors(&r, "createWebhook"),
        json!([{"__typename": "PermissionError", "message": "Only channel admins may view or modify webhooks", "path": null}])
    );

    let r = app
        .graphql(
            CREATE_HOOK,
            json!({"url": "ftp://example.com", "events": ["VIDEO"], "secrets": ["short"]}),
        )
        .await;
    let found = errors(&r, "createWebhook");
    let kinds: Vec<(&str, &Value)> = found
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| (e["__typename"].as_str().unwrap_or_default(), &e["path"]))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ValidationError", &json!(["input", "url"])),
            ("ValidationError", &json!(["input", "secrets"]))
        ],
        "{r}"
    );

    let r = app
        .graphql(
            "mutation ($c: [ID!]) { createVideo(input: {title: \"t\", collectionIds: $c}) { video { id } errors { ... on NotFoundError { path } } } }",
            json!({"c": [encode(Kind::Collection, 42)]}),
        )
        .await;
    assert_eq!(
        r["data"]["createVideo"],
        json!({"video": null, "errors": [{"path": ["input", "collectionIds"]}]}),
        "an unknown ID in a list is not found"
    );
}

#[tokio::test]
async fn a_member_gets_the_channel_with_webhooks_null() {
    let app = spawn_app().await;
    let id = hook(&app, "https://example.com/webhooks", &["VIDEO"]).await;
    let r = app
        .graphql_as(
            &app.member_token,
            "{ channel { name subdomain webhooks { totalCount nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["channel"],
        json!({"name": "Example Channel", "subdomain": "example", "webhooks": null}),
        "{r}"
    );
    assert_eq!(
        r["errors"][0]["message"],
        "Only channel admins may view or modify webhooks"
    );
    assert_eq!(r["errors"][0]["path"], json!(["channel", "webhooks"]));

    let r = app
        .graphql_as(
            &app.member_token,
            "query ($id: ID!) { viewer { id } node(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["node"], Value::Null, "{r}");
    assert!(r["data"]["viewer"]["id"].is_string(), "{r}");
    assert_eq!(r["errors"][0]["path"], json!(["node"]));
}

#[tokio::test]
async fn webhooks_are_ordered_counted_filtered_and_paged_backwards() {
    let app = spawn_app().await;
    let mut hooks = Vec::new();
    for n in 0..5 {
        hooks.push(hook(&app, &format!("https://example.com/{n}"), &["VIDEO"]).await);
    }
    let list = |args: &str| {
        let vars: Vec<&str> = [("$ids", "$ids: [ID!]"), ("$before", "$before: String")]
            .into_iter()
            .filter(|(name, _)| args.contains(name))
            .map(|(_, declared)| declared)
            .collect();
        let vars = if vars.is_empty() {
            String::new()
        } else {
            format!("({})", vars.join(", "))
        };
        format!(
            "query {vars} {{ channel {{ webhooks({args}) {{ totalCount nodes {{ id }} pageInfo {{ hasPreviousPage hasNextPage startCursor endCursor }} }} }} }}"
        )
    };
    let webhooks = |r: Value| r["data"]["channel"]["webhooks"].clone();

    let r = app
        .graphql(
            &list("first: 2, orderBy: {field: CREATED_AT, direction: DESC}"),
            json!({}),
        )
        .await;
    let newest = webhooks(r);
    assert_eq!(ids(&newest), vec![&*hooks[4], &*hooks[3]]);
    assert_eq!(newest["totalCount"], 5);
    assert_eq!(newest["pageInfo"]["hasNextPage"], true);

    let r = app.graphql(&list("last: 2"), json!({})).await;
    let latest = webhooks(r);
    assert_eq!(ids(&latest), vec![&*hooks[3], &*hooks[4]]);
    assert_eq!(latest["pageInfo"]["hasPreviousPage"], true);
    let r = app
        .graphql(
            &list("last: 2, before: $before"),
            json!({"before": latest["pageInfo"]["startCursor"]}),
        )
        .await;
    assert_eq!(ids(&webhooks(r)), vec![&*hooks[1], &*hooks[2]]);

    let r = app
        .graphql(
            &list("ids: $ids"),
            json!({"ids": [hooks[3], hooks[0], encode(Kind::Video, 1)]}),
        )
        .await;
    let chosen = webhooks(r);
    assert_eq!(ids(&chosen), vec![&*hooks[0], &*hooks[3]]);
    assert_eq!(chosen["totalCount"], 2, "the count is of the filtered list");

    let r = app.graphql(&list("first: 1, last: 1"), json!({})).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("first or last")),
        "{r}"
    );
}

#[tokio::test]
async fn deliveries_are_ordered_counted_and_paged_backwards() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let id = hook(&app, &rx.url(), &["COLLECTION"]).await;
    for name in ["One", "Two", "Three"] {
        collection(&app, name).await;
    }
    let query = |args: &str| {
        format!(
            "query ($id: ID!) {{ node(id: $id) {{ ... on Webhook {{ deliveries({args}) {{ totalCount nodes {{ nonce url }} }} }} }} }}"
        )
    };
    let nonces = |r: &Value| -> Vec<String> {
        r["data"]["node"]["deliveries"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|d| d["nonce"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let newest_first = nonces(&app.graphql(&query("first: 3"), json!({"id": id})).await);
    let r = app
        .graphql(
            &query("first: 3, orderBy: {field: CREATED_AT, direction: ASC}"),
            json!({"id": id}),
        )
        .await;
    let mut oldest_first = nonces(&r);
    assert_eq!(r["data"]["node"]["deliveries"]["totalCount"], 3);
    assert_eq!(r["data"]["node"]["deliveries"]["nodes"][0]["url"], rx.url());
    oldest_first.reverse();
    assert_eq!(oldest_first, newest_first);
    let r = app.graphql(&query("last: 1"), json!({"id": id})).await;
    assert_eq!(
        nonces(&r),
        vec![newest_first[2].clone()],
        "the last of newest-first is the oldest"
    );
}

#[tokio::test]
async fn users_are_as_rewatch_has_them() {
    let app = spawn_app().await;
    let member = encode(Kind::User, 2);
    let r = app
        .graphql(
            "query ($m: ID!, $other: ID!) { channel { url updatedAt user(id: $m) { id displayName channelRole isViewer email viewerIsSubscribed canUploadVideos }
                nobody: user(id: $other) { id } users(first: 1) { totalCount nodes { id } pageInfo { hasNextPage } } }
              viewer { ... on User { displayName isViewer } } }",
            json!({"m": member, "other": encode(Kind::Video, 2)}),
        )
        .await;
    assert_eq!(r.get("errors"), None, "{r}");
    let channel = &r["data"]["channel"];
    assert_eq!(channel["url"], "https://example.example.test");
    assert_eq!(
        channel["user"],
        json!({"id": member, "displayName": "Example User", "channelRole": "MEMBER", "isViewer": false,
            "email": "member@example.com", "viewerIsSubscribed": false, "canUploadVideos": true})
    );
    assert_eq!(channel["nobody"], Value::Null);
    assert_eq!(channel["users"]["totalCount"], 2);
    assert_eq!(ids(&channel["users"]), vec![encode(Kind::User, 1)]);
    assert_eq!(
        r["data"]["viewer"],
        json!({"displayName": "Example User", "isViewer": true})
    );
}

#[tokio::test]
async fn videos_are_as_rewatch_has_them() {
    let app = spawn_app().await;
    let r = app
        .graphql_as(
            &app.member_token,
            CREATE_VIDEO,
            json!({"i": {"title": "Stand-up", "duration": 60.466, "visibility": "LINK_ONLY"}}),
        )
        .await;
    let video = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let read = "query ($id: ID!) { node(id: $id) { ... on Video { visibility duration date presentedAt createdAt description bytes
        attendeesInfo thumbnailUrl externalSharingEnabled uploader { __typename displayName ... on User { email } } } } }";
    let r = app.graphql(read, json!({"id": video})).await;
    let v = &r["data"]["node"];
    assert_eq!(v["visibility"], "LINK_ONLY");
    assert_eq!(v["duration"], 60_466, "milliseconds");
    assert_eq!(v["presentedAt"], v["createdAt"], "not given: when added");
    let created = v["createdAt"].as_str().unwrap_or_default();
    assert_eq!(v["date"].as_str(), created.get(..10), "the day presented");
    assert_eq!(
        (&v["description"], &v["bytes"], &v["attendeesInfo"]),
        (&Value::Null, &json!(0), &json!([]))
    );
    assert_eq!(
        v["uploader"],
        json!({"__typename": "User", "displayName": "Example User", "email": "member@example.com"})
    );

    // A video whose uploader is gone keeps an actor: the placeholder.
    app.db
        .execute("DELETE FROM users WHERE email = 'member@example.com'")
        .await;
    let r = app.graphql(read, json!({"id": video})).await;
    assert_eq!(
        r["data"]["node"]["uploader"],
        json!({"__typename": "UnknownUser", "displayName": "Unknown user"})
    );
}

#[tokio::test]
async fn draft_is_a_visibility_only_a_draft_has() {
    let app = spawn_app().await;
    let rx = TestReceiver::start().await;
    let hook_id = hook(&app, &rx.url(), &["VIDEO"]).await;
    let r = app
        .graphql(
            CREATE_VIDEO,
            json!({"i": {"title": "Draft", "visibility": "DRAFT"}}),
        )
        .await;
    let v = &r["data"]["createVideo"]["video"];
    assert_eq!(
        (&v["draft"], &v["visibility"]),
        (&json!(true), &json!("DRAFT"))
    );
    let draft = v["id"].as_str().unwrap_or_default().to_owned();
    let update = "mutation ($i: UpdateVideoInput!) { updateVideo(input: $i) { video { visibility } errors { __typename path } } }";
    let r = app
        .graphql(
            update,
            json!({"i": {"videoId": draft, "visibility": "DRAFT"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateVideo"],
        json!({"video": {"visibility": "DRAFT"}, "errors": []})
    );

    let r = app
        .graphql(CREATE_VIDEO, json!({"i": {"title": "Live"}}))
        .await;
    let live = r["data"]["createVideo"]["video"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app
        .graphql(
            update,
            json!({"i": {"videoId": live, "visibility": "DRAFT"}}),
        )
        .await;
    assert_eq!(
        r["data"]["updateVideo"],
        json!({"video": null, "errors": [{"__typename": "ValidationError", "path": ["input", "visibility"]}]}),
        "a video on the channel cannot go back to draft"
    );
    // Deliveries are written with the change: the log is whole now.
    let log = app.deliveries(&hook_id).await;
    let events: Vec<&Value> = log.iter().map(|d| &d["event"]).collect();
    assert_eq!(
        events,
        vec!["VIDEO_ADDED_TO_CHANNEL"],
        "the draft sent nothing"
    );
}
