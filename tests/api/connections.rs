//! Clients that hold connections: half a request line and nothing more, a kept-alive
//! connection left idle, more connections than herald serves at once. herald closes them in
//! time and keeps answering everyone else.

use crate::helpers::{graphql_at, spawn_app_with, TestApp, DEADLINE};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection that sent half a request line.
async fn half_a_request(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HT").await.expect("write");
    stream
}

/// Waits until herald closes `stream` (end of stream, or a reset), reading and dropping what
/// it sends; fails at the deadline.
async fn closed_by_herald(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("herald closes the connection");
}

/// `/healthz` and a GraphQL query answer, each on a new connection.
async fn still_answers(app: &TestApp) {
    let fresh = reqwest::Client::new();
    let health = fresh
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let r = graphql_at(
        &fresh,
        &app.url(""),
        &app.token,
        "{ viewer { id } }",
        json!({}),
    )
    .await;
    assert!(r["data"]["viewer"]["id"].is_string(), "{r}");
}

#[tokio::test]
async fn connections_that_send_half_a_request_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.header_timeout_ms = 500).await;
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(half_a_request(&app).await);
    }
    still_answers(&app).await;
    for stream in &mut slow {
        closed_by_herald(stream).await;
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(450),
        "closed for the timeout, not at once: {:?}",
        opened.elapsed()
    );
    still_answers(&app).await;
}

/// A connection that made one request and read its answer.
async fn after_one_request(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    stream
}

/// herald with these header and idle timeouts (ms).
async fn app_with_timeouts(header_ms: u64, idle_ms: u64) -> TestApp {
    spawn_app_with(|c| {
        c.header_timeout_ms = header_ms;
        c.idle_timeout_ms = idle_ms;
    })
    .await
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = app_with_timeouts(60_000, 300).await;
    let mut stream = after_one_request(&app).await;
    let answered = Instant::now();
    closed_by_herald(&mut stream).await;
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(250), "{idle:?}");
}

#[tokio::test]
async fn on_a_kept_alive_connection_the_next_request_has_the_header_timeout_from_its_first_byte() {
    let app = app_with_timeouts(300, 60_000).await;
    // Waiting longer than the header timeout between requests is fine...
    let mut stream = after_one_request(&app).await;
    let mut probe = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(600), stream.read(&mut probe)).await;
    assert!(early.is_err(), "closed while idle: {early:?}");
    // ...but once a request starts, its headers must arrive within the header timeout.
    stream.write_all(b"GET /healthz HT").await.expect("write");
    let started = Instant::now();
    closed_by_herald(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// A new client's answer to `request` while herald is at its connection limit.
async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let resp = request.send().await.expect("an answer");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.expect("body");
    (
        status,
        retry_after,
        serde_json::from_str(&body).unwrap_or(json!(body)),
    )
}

#[tokio::test]
async fn past_the_connection_limit_health_answers_and_the_rest_is_refused_at_once() {
    let app = spawn_app_with(|c| {
        c.header_timeout_ms = 60_000;
        c.max_connections = 20;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_a_request(&app).await);
    }
    let fresh = reqwest::Client::new;
    let (status, _, body) = status_and_body(fresh().get(app.url("/healthz"))).await;
    assert_eq!((status, body), (200, json!("ok")));
    let (status, _, body) = status_and_body(fresh().get(app.url("/readyz"))).await;
    assert_eq!((status, body), (200, json!("ready")));
    let refused = Instant::now();
    let query = json!({ "query": "{ viewer { id } }" });
    let post = fresh()
        .post(app.url("/api/graphql"))
        .bearer_auth(&app.token)
        .json(&query);
    let (status, retry_after, body) = status_and_body(post).await;
    assert_eq!(status, 503, "{body}");
    assert!(refused.elapsed() < Duration::from_secs(1));
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "TOO_MANY_CONNECTIONS"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HERALD_MAX_CONNECTIONS")),
        "{body}"
    );
    // A slow client past the limit is let go within a second, not the header timeout.
    let mut extra = half_a_request(&app).await;
    let started = Instant::now();
    closed_by_herald(&mut extra).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    drop(held);
    served_again(&app).await;
}

/// A GraphQL query on a new connection answers, once herald has noticed the connections that
/// went.
async fn served_again(app: &TestApp) {
    crate::helpers::eventually(DEADLINE, || async {
        let post = reqwest::Client::new()
            .post(app.url("/api/graphql"))
            .bearer_auth(&app.token)
            .json(&json!({ "query": "{ viewer { id } }" }));
        match status_and_body(post).await {
            (200, _, body) if body["data"]["viewer"]["id"].is_string() => Ok(()),
            seen => Err(seen),
        }
    })
    .await;
}

#[tokio::test]
async fn a_websocket_counts_against_the_connection_limit_while_it_is_open() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app_with(|c| c.max_connections = 1).await;
    let mut request = format!("ws://{}/api/graphql/ws", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgraded");
    let post = reqwest::Client::new()
        .post(app.url("/api/graphql"))
        .bearer_auth(&app.token)
        .json(&json!({ "query": "{ viewer { id } }" }));
    let (status, _, body) = status_and_body(post).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "TOO_MANY_CONNECTIONS"
    );
    drop(socket);
    served_again(&app).await;
}
