//! The `herald listen` client: local testing without a public URL or a tunnel.
//!
//! It subscribes to `listen` over WebSocket (`graphql-transport-ws`), which registers a
//! temporary listener webhook, then forwards every delivery it is pushed, headers and body
//! unchanged, to a local URL, and reports the local answer back (`reportListenerAttempt`), so it
//! shows in the delivery log as an attempt. A lost connection is re-established with backoff,
//! reattaching to the same listener, so deliveries queued meanwhile still arrive; a server that
//! never answered is an error instead, as nothing says it ever will. On shutdown the listener
//! webhook is deleted.

use crate::app::error_chain;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// How long the local receiver may take to answer a forwarded delivery.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

const SUBSCRIPTION: &str = "subscription ($events: [WebhookEvent!], $listenerId: ID) { listen(events: $events, listenerId: $listenerId) { kind webhookId secret delivery { deliveryId nonce event headers { name value } body } } }";
const REPORT: &str = "mutation ($input: ReportListenerAttemptInput!) { reportListenerAttempt(input: $input) { accepted errors { message } } }";
const DELETE: &str = "mutation ($input: DeleteWebhookInput!) { deleteWebhook(input: $input) { errors { message } } }";

#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// herald's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: url::Url,
    pub token: String,
    pub forward_to: url::Url,
    /// `VIDEO`, `COLLECTION`, `SOURCE`; empty means all.
    pub events: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// herald refused: a bad token, a member's token, a bad option. Retrying will not help.
    #[error("{0}")]
    Refused(String),
    #[error("bad --server URL: {0}")]
    BadServer(String),
    /// The URL given.
    #[error(
        "--forward-to must be an absolute http:// or https:// URL, e.g. http://localhost:3000/hook"
    )]
    BadForwardTo(String),
    /// The first connection failed: nothing says herald is there at all.
    #[error("cannot reach herald at {server}: {why}")]
    Unreachable { server: String, why: String },
}

/// Reads `--forward-to`: an absolute `http://` or `https://` URL with a host.
pub fn parse_forward_to(value: &str) -> Result<url::Url, ListenError> {
    url::Url::parse(value.trim())
        .ok()
        .filter(forwardable)
        .ok_or_else(|| ListenError::BadForwardTo(value.to_owned()))
}

fn forwardable(url: &url::Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host().is_some()
}

/// Why a session ended.
enum Ended {
    /// The connection was lost or closed: reconnect.
    Lost(String),
    Refused(String),
}

struct State {
    listener_id: Option<String>,
    announced: bool,
}

/// Runs until `shutdown` completes or herald refuses the listener.
pub async fn run(
    opts: ListenOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ListenError> {
    if !forwardable(&opts.forward_to) {
        return Err(ListenError::BadForwardTo(opts.forward_to.to_string()));
    }
    let ws = websocket_url(&opts.server)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FORWARD_TIMEOUT)
        .build()
        .map_err(|e| ListenError::BadServer(e.to_string()))?;
    let mut state = State {
        listener_id: None,
        announced: false,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let reconnect = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut backoff = reconnect();
    let result = loop {
        let was_connected = state.listener_id.is_some();
        let ended = tokio::select! {
            ended = session(&ws, &opts, &http, &mut state) => ended,
            _ = &mut shutdown => break Ok(()),
        };
        match ended {
            Ended::Refused(why) => break Err(ListenError::Refused(why)),
            Ended::Lost(why) if !state.announced => {
                break Err(ListenError::Unreachable {
                    server: opts.server.to_string(),
                    why,
                })
            }
            Ended::Lost(why) => {
                if state.listener_id.is_some() && !was_connected {
                    backoff = reconnect();
                }
                eprintln!("connection to herald lost ({why}); reconnecting");
            }
        }
        let delay = backoff.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut shutdown => break Ok(()),
        }
    };
    if let Some(id) = state.listener_id {
        let _ = graphql(&http, &opts, DELETE, json!({"input": {"webhookId": id}})).await;
        eprintln!("listener removed");
    }
    result
}

fn websocket_url(server: &url::Url) -> Result<url::Url, ListenError> {
    let mut ws = server.clone();
    let scheme = match server.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => {
            return Err(ListenError::BadServer(format!(
                "use http:// or https://, not {other}://"
            )))
        }
    };
    ws.set_scheme(scheme)
        .map_err(|_| ListenError::BadServer(server.to_string()))?;
    ws.set_path("/api/graphql/ws");
    Ok(ws)
}

async fn session(
    ws: &url::Url,
    opts: &ListenOptions,
    http: &reqwest::Client,
    state: &mut State,
) -> Ended {
    let mut request = match ws.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return Ended::Refused(format!("bad --server URL: {e}")),
    };
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(s) => s,
        Err(e) => return Ended::Lost(error_chain(&e)),
    };
    let (mut sink, mut stream) = socket.split();
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", opts.token)}});
    if let Err(e) = sink.send(Message::Text(init.to_string().into())).await {
        return Ended::Lost(error_chain(&e));
    }
    let events: Option<Vec<String>> = (!opts.events.is_empty()).then(|| opts.events.clone());
    let subscribe = |listener_id: &Option<String>| json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"events": events, "listenerId": listener_id}}});
    let mut acked = false;
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Close(frame)) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return if acked {
                    Ended::Lost(format!("closed: {why}"))
                } else {
                    Ended::Refused(format!("herald refused the connection: {why}"))
                };
            }
            Ok(_) => continue,
            Err(e) => return Ended::Lost(error_chain(&e)),
        };
        let Ok(msg) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match msg["type"].as_str().unwrap_or("") {
            "connection_ack" => {
                acked = true;
                if let Err(e) = sink
                    .send(Message::Text(
                        subscribe(&state.listener_id).to_string().into(),
                    ))
                    .await
                {
                    return Ended::Lost(error_chain(&e));
                }
            }
            "ping" => {
                let _ = sink
                    .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await;
            }
            "next" => {
                let payload = &msg["payload"];
                if let Some(errors) = payload["errors"].as_array().filter(|e| !e.is_empty()) {
                    return refused(errors, state);
                }
                handle(&payload["data"]["listen"], opts, http, state);
            }
            "error" => {
                return refused(
                    msg["payload"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    state,
                )
            }
            "complete" => return Ended::Lost("the subscription ended".into()),
            _ => {}
        }
    }
    Ended::Lost("connection closed".into())
}

fn refused(errors: &[Value], state: &mut State) -> Ended {
    let why: Vec<&str> = errors
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let why = why.join("; ");
    if why.contains("No listener found") {
        // The listener was deleted meanwhile: start a new one.
        state.listener_id = None;
        state.announced = false;
        return Ended::Lost(why);
    }
    Ended::Refused(why)
}

fn handle(msg: &Value, opts: &ListenOptions, http: &reqwest::Client, state: &mut State) {
    match msg["kind"].as_str() {
        Some("READY") => {
            state.listener_id = msg["webhookId"].as_str().map(str::to_owned);
            if !state.announced {
                state.announced = true;
                let events = if opts.events.is_empty() {
                    "all".to_owned()
                } else {
                    opts.events.join(", ")
                };
                println!("Ready. Forwarding {events} events to {}", opts.forward_to);
                println!(
                    "Webhook secret (verify deliveries with it): {}",
                    msg["secret"].as_str().unwrap_or("")
                );
            } else {
                println!("Reconnected.");
            }
        }
        Some("DELIVERY") => {
            let delivery = msg["delivery"].clone();
            let (opts, http) = (opts.clone(), http.clone());
            tokio::spawn(async move { forward(delivery, &opts, &http).await });
        }
        _ => {}
    }
}

async fn forward(delivery: Value, opts: &ListenOptions, http: &reqwest::Client) {
    let mut req = http
        .post(opts.forward_to.clone())
        .body(delivery["body"].as_str().unwrap_or("").to_owned());
    for h in delivery["headers"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (h["name"].as_str(), h["value"].as_str()) {
            req = req.header(name, value);
        }
    }
    let started = Instant::now();
    let answer = req.send().await;
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let event = delivery["event"].as_str().unwrap_or("");
    let time = chrono::Utc::now().format("%H:%M:%S");
    let report = match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            println!("{time}  {event:<22} -> {status}  {duration_ms} ms");
            json!({"deliveryId": delivery["deliveryId"], "statusCode": status, "durationMs": duration_ms, "responseBody": body})
        }
        Err(e) => {
            let why = error_chain(&e);
            println!("{time}  {event:<22} -> failed: {why}");
            json!({"deliveryId": delivery["deliveryId"], "durationMs": duration_ms, "error": why})
        }
    };
    if let Err(e) = graphql(http, opts, REPORT, json!({"input": report})).await {
        eprintln!("could not report to herald: {e}");
    }
}

async fn graphql(
    http: &reqwest::Client,
    opts: &ListenOptions,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let url = opts
        .server
        .join("/api/graphql")
        .map_err(|e| e.to_string())?;
    let resp = http
        .post(url)
        .bearer_auth(&opts.token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    resp.json().await.map_err(|e| error_chain(&e))
}
