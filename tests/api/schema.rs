//! `schema.graphql` is exactly the served schema.

use crate::helpers::spawn_app;

#[test]
fn schema_file_matches_the_served_schema() {
    let served = herald::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    if std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, &served).expect("write schema.graphql");
    }
    let file = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        file == served,
        "schema.graphql differs from the served schema; run `UPDATE_SCHEMA=1 cargo test --test api schema` to rewrite it"
    );
}

#[tokio::test]
async fn the_server_introspects_the_same_types_as_the_file() {
    let app = spawn_app().await;
    let r = app
        .graphql("{ __schema { types { name } } }", serde_json::json!({}))
        .await;
    let names: Vec<&str> = r["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let builtin = ["Boolean", "String", "Int", "Float", "ID"];
    for name in names
        .iter()
        .filter(|n| !n.starts_with("__") && !builtin.contains(n))
    {
        assert!(
            file.contains(&format!(" {name} ")) || file.contains(&format!("scalar {name}")),
            "{name} is served but not in schema.graphql"
        );
    }
    for required in [
        "createWebhook",
        "updateWebhook",
        "deleteWebhook",
        "WebhookDeliveryStatus",
        "WebhookDeliveryAttemptResult",
    ] {
        assert!(file.contains(required), "{required}");
    }
}
