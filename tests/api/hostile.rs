//! Hostile input: other spellings of IDs, NUL characters, odd content types, requests the
//! router has no handler for, and queries whose fragments multiply.

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

/// `mutation ($i: <Name>Input!) { <name>(input: $i) { errors { message path } } }`.
fn mutation(name: &str) -> String {
    let mut input = name.to_owned();
    input[..1].make_ascii_uppercase();
    format!("mutation ($i: {input}Input!) {{ {name}(input: $i) {{ errors {{ message path }} }} }}")
}

const NUL: &str = "a\u{0}b";

#[tokio::test]
async fn text_with_a_nul_character_is_refused_on_every_input() {
    let app = spawn_app().await;
    let webhook_id = app
        .create_webhook("https://example.com/hook", &["VIDEO"], &[SECRET_A], 3)
        .await;
    let r = app
        .graphql(
            "mutation { createVideo(input: { title: \"Kept\" }) { video { id } } \
             createCollection(input: { name: \"Kept\" }) { collection { id } } }",
            json!({}),
        )
        .await;
    let video_id = r["data"]["createVideo"]["video"]["id"].clone();
    let collection_id = r["data"]["createCollection"]["collection"]["id"].clone();
    let hook = |extra: serde_json::Value| {
        let mut input =
            json!({ "url": "https://example.com/new", "events": ["VIDEO"], "secrets": [SECRET_A] });
        if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        input
    };
    let cases = [
        ("createVideo", json!({ "title": NUL }), "title"),
        (
            "createVideo",
            json!({ "title": "t", "summary": NUL }),
            "summary",
        ),
        (
            "updateVideo",
            json!({ "videoId": video_id, "title": NUL }),
            "title",
        ),
        (
            "updateVideo",
            json!({ "videoId": video_id, "summary": NUL }),
            "summary",
        ),
        ("createCollection", json!({ "name": NUL }), "name"),
        (
            "createCollection",
            json!({ "name": "n", "description": NUL }),
            "description",
        ),
        (
            "updateCollection",
            json!({ "collectionId": collection_id, "name": NUL }),
            "name",
        ),
        (
            "updateCollection",
            json!({ "collectionId": collection_id, "description": NUL }),
            "description",
        ),
        (
            "createWebhook",
            hook(json!({ "description": NUL })),
            "description",
        ),
        (
            "createWebhook",
            hook(json!({ "verifyToken": NUL })),
            "verifyToken",
        ),
        (
            "createWebhook",
            hook(json!({ "url": format!("https://example.com/{NUL}") })),
            "url",
        ),
        (
            "createWebhook",
            hook(json!({ "secrets": [format!("{SECRET_A}{NUL}")] })),
            "secrets",
        ),
        (
            "updateWebhook",
            json!({ "webhookId": webhook_id, "description": NUL }),
            "description",
        ),
        (
            "updateWebhook",
            json!({ "webhookId": webhook_id, "url": format!("https://example.com/{NUL}") }),
            "url",
        ),
        (
            "updateWebhook",
            json!({ "webhookId": webhook_id, "secrets": [format!("{SECRET_A}{NUL}")] }),
            "secrets",
        ),
    ];
    for (name, input, field) in cases {
        let r = app.graphql(&mutation(name), json!({ "i": input })).await;
        assert_eq!(r["errors"], json!(null), "{name} {field}: {r}");
        let errors = &r["data"][name]["errors"];
        assert_eq!(errors[0]["path"], json!(["input", field]), "{name}: {r}");
        assert!(
            errors[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("NUL")),
            "{name}: {r}"
        );
    }
    let r = app
        .graphql(
            "query ($id: ID!, $n: [String!]) { node(id: $id) { ... on Webhook { deliveries(nonces: $n) { nodes { id } } } } }",
            json!({ "id": webhook_id, "n": [NUL] }),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NUL")),
        "a filter is refused with a request error: {r}"
    );
    let r = app
        .graphql(
            "{ channel { videos { nodes { title summary } } collections { nodes { name description } } \
               webhooks { nodes { url description } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["channel"],
        json!({
            "videos": { "nodes": [{ "title": "Kept", "summary": "" }] },
            "collections": { "nodes": [{ "name": "Kept", "description": null }] },
            "webhooks": { "nodes": [{ "url": "https://example.com/hook", "description": null }] },
        }),
        "nothing changed: {r}"
    );
}

#[tokio::test]
async fn a_receiver_answer_with_nul_characters_is_recorded() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().fallback(|| async { "ok\u{0}then" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let app = spawn_app().await;
    let id = app
        .create_webhook(&format!("http://{addr}/hook"), &["VIDEO"], &[SECRET_A], 0)
        .await;
    let r = app
        .graphql(&mutation("createVideo"), json!({ "i": { "title": "t" } }))
        .await;
    assert_eq!(r["data"]["createVideo"]["errors"], json!([]), "{r}");
    let d = app
        .wait_for_deliveries(&id, |d| {
            d.first().is_some_and(|d| d["status"] == "SUCCEEDED")
        })
        .await;
    assert_eq!(d[0]["attempts"][0]["responseBody"], "ok\u{FFFD}then");
}

/// POSTs `{ viewer { id } }` with this `Content-Type`; returns the status and the JSON body.
async fn post_with_content_type(
    app: &crate::helpers::TestApp,
    content_type: &str,
) -> (u16, serde_json::Value) {
    let resp = app
        .http()
        .post(app.url("/api/graphql"))
        .header("Authorization", format!("Bearer {}", app.token))
        .header("Content-Type", content_type)
        .body(r#"{"query":"{ viewer { id } }"}"#)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{content_type}: a JSON body, got {text:?}"));
    (status, body)
}

#[tokio::test]
async fn only_json_in_utf_8_is_accepted() {
    let app = spawn_app().await;
    for content_type in [
        "application/json",
        "Application/JSON; Charset=\"UTF-8\"",
        "application/json;charset=utf-8",
        " application/json ; charset=utf-8 ; q=1",
    ] {
        let (status, body) = post_with_content_type(&app, content_type).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert!(body["data"]["viewer"]["id"].is_string(), "{body}");
    }
    for content_type in [
        "application/jsonp",
        "application/json-seq",
        "application/json; charset=utf-16",
        "application/json; charset=latin1",
        "application/json; charset",
        "application/json, text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
    ] {
        let (status, body) = post_with_content_type(&app, content_type).await;
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("application/json")),
            "{content_type}: {body}"
        );
    }
}

/// Sends `head` (a request line and headers, without the blank line) and a body over a new
/// connection, and reads the whole answer: (status, body).
async fn raw_request(app: &crate::helpers::TestApp, head: &[u8], body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "\r\nHost: herald\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    conn.write_all(&request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(crate::helpers::DEADLINE, conn.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, body.to_owned())
}

#[tokio::test]
async fn every_error_has_a_json_body() {
    let app = spawn_app().await;
    let post = |headers: &str| {
        format!(
            "POST /api/graphql HTTP/1.1\r\nAuthorization: Bearer {}\r\n{headers}",
            app.token
        )
        .into_bytes()
    };
    let query = br#"{"query":"{ viewer { id } }"}"#.to_vec();
    // A header value that is valid HTTP but not text (Latin-1 `é`).
    let latin1 = |mut head: Vec<u8>| {
        head.push(0xE9);
        head
    };
    let cases = [
        (b"GET /nowhere HTTP/1.1".to_vec(), vec![], 404),
        (b"DELETE /api/graphql HTTP/1.1".to_vec(), vec![], 405),
        (b"POST /healthz HTTP/1.1".to_vec(), vec![], 405),
        (b"GET /api/graphql/assets/nothing.js HTTP/1.1".to_vec(), vec![], 404),
        (b"GET /api/graphql/ws HTTP/1.1".to_vec(), vec![], 400),
        (post("Content-Type: text/plain"), query.clone(), 415),
        (post("Content-Type: application/json"), b"{not json".to_vec(), 400),
        (latin1(post("Content-Type: application/json")), query.clone(), 415),
        (
            latin1(b"POST /api/graphql HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ".to_vec()),
            query.clone(),
            401,
        ),
    ];
    for (head, body, expected) in cases {
        let shown = String::from_utf8_lossy(&head).into_owned();
        let (status, answer) = raw_request(&app, &head, &body).await;
        assert_eq!(status, expected, "{shown:?}: {answer}");
        let json: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|_| panic!("{shown:?}: a JSON body, got {answer:?}"));
        assert!(
            json["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{shown:?}: {json}"
        );
    }
    let resp = app
        .http()
        .delete(app.url("/api/graphql"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.headers()["allow"], "GET,HEAD,POST");
}

/// A request that is not HTTP (a control character in a header or the URI, a malformed
/// method) is answered by the HTTP library before the router sees it; the answer still has a
/// JSON body, and says what is wrong.
#[tokio::test]
async fn a_request_that_is_not_http_gets_a_json_error() {
    let app = spawn_app().await;
    let query = br#"{"query":"{ viewer { id } }"}"#;
    for head in [
        format!(
            "POST /api/graphql HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\u{0}x",
            app.token
        ),
        "POST /api/graphql HTTP/1.1\r\nX-Note: a\u{1}b".to_owned(),
        "POST /api/gr\u{7f}aphql HTTP/1.1".to_owned(),
        "P(ST /api/graphql HTTP/1.1".to_owned(),
    ] {
        let (status, answer) = raw_request(&app, head.as_bytes(), query).await;
        assert_eq!(status, 400, "{head:?}: {answer}");
        let json: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|_| panic!("{head:?}: a JSON body, got {answer:?}"));
        assert_eq!(json["errors"][0]["extensions"]["code"], "MALFORMED_REQUEST", "{json}");
        assert!(
            json["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not valid HTTP")),
            "{json}"
        );
    }
    // The server goes on serving.
    let r = app.graphql("{ viewer { id } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
}

/// `query { ...F1 }`, each of `levels` fragments spreading the next one twice, the last one
/// selecting `viewer { id }`: about 1 KB that expands to 2^levels fields.
fn fragment_bomb(levels: usize) -> String {
    let mut q = String::from("query { ...F1 }");
    for n in 1..levels {
        q.push_str(&format!(
            " fragment F{n} on Query {{ ...F{m} ...F{m} }}",
            m = n + 1
        ));
    }
    q.push_str(&format!(
        " fragment F{levels} on Query {{ viewer {{ id }} }}"
    ));
    q
}

// Several threads, so that the deadline can fire while a worker is busy with the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_bomb_is_refused_at_once() {
    let app = spawn_app().await;
    let bomb = fragment_bomb(30);
    assert!(bomb.len() < 1200, "{}", bomb.len());
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        app.graphql(&bomb, json!({})),
    )
    .await
    .expect("an answer within 2 s");
    assert_eq!(r["data"], json!(null), "{r}");
    let message = r["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("fragments"), "{r}");
    assert!(message.contains("5000"), "{r}");

    let r = app
        .graphql(
            "query { ...V ...V } fragment V on Query { viewer { id } }",
            json!({}),
        )
        .await;
    assert!(r["data"]["viewer"]["id"].is_string(), "{r}");
    let r = app.graphql(&fragment_bomb(8), json!({})).await;
    assert!(
        r["data"]["viewer"]["id"].is_string(),
        "256 fields are fine: {r}"
    );
}
