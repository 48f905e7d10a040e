//! Hostile input: odd spellings of IDs, content types and text that other layers would accept
//! and get wrong.

use crate::helpers::{spawn_app, SECRET_A};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::json;

#[tokio::test]
async fn other_spellings_of_an_id_find_nothing_and_change_nothing() {
    let app = spawn_app().await;
    let id = app
        .create_webhook("https://example.com/hook", &["VIDEO"], &[SECRET_A], 3)
        .await;
    assert_eq!(id, BASE64.encode("Webhook-1"));
    let spellings = [
        BASE64.encode("Webhook-+1"),
        BASE64.encode("Webhook-01"),
        BASE64.encode("Webhook-0000000001"),
        format!(" {id} "),
        BASE64.encode("Webhook-1").trim_end_matches('=').to_owned() + " ",
    ];
    for other in spellings {
        let r = app
            .graphql(
                "query ($id: ID!) { node(id: $id) { id } }",
                json!({ "id": other }),
            )
            .await;
        assert_eq!(r["data"]["node"], json!(null), "{other:?}: {r}");
        let r = app
            .graphql(
                "mutation ($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { deletedWebhookId errors { message path } } }",
                json!({ "i": { "webhookId": other } }),
            )
            .await;
        assert_eq!(
            r["data"]["deleteWebhook"]["errors"],
            json!([{ "message": "No object found", "path": ["input", "webhookId"] }]),
            "{other:?}: {r}"
        );
    }
    let r = app
        .graphql(
            "query ($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        r["data"]["node"]["id"],
        json!(id),
        "the webhook is still there"
    );
}
