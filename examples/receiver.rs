//! A webhook receiver done right, to copy from.
//!
//! ```sh
//! HERALD_SECRETS=<secret>[,<old secret>] HERALD_VERIFY_TOKEN=<token> PORT=3000 cargo run --example receiver
//! ```
//!
//! - verifies every delivery with `herald-verify` (the Standard Webhooks signature, which covers
//!   the body; the Rewatch signature when only that is present) against any of the secrets, so
//!   rotation `[new, old]` keeps working;
//! - drops duplicates by nonce (delivery is at-least-once);
//! - answers 2xx at once and does the work afterwards, so herald's timeout is never hit by slow work;
//! - answers 2xx to event types it does not handle, so herald does not retry them;
//! - answers herald's endpoint handshake (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`),
//!   comparing the token in constant time;
//! - accepts deliveries on any path (`/hook`, `/webhooks/herald`…): the webhook's URL decides.
//!
//! It prints `listening on ADDR` first, then one line per event.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use herald_verify::Verifier;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// How many nonces are remembered for dropping duplicates.
const REMEMBERED_NONCES: usize = 100_000;

struct Receiver {
    verifier: Verifier,
    verify_token: Option<String>,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    work: mpsc::UnboundedSender<Value>,
}

impl Receiver {
    /// True the first time a nonce is seen.
    fn first_time(&self, nonce: &str) -> bool {
        let Ok(mut guard) = self.seen.lock() else {
            return true;
        };
        let (set, order) = &mut *guard;
        if !set.insert(nonce.to_owned()) {
            return false;
        }
        order.push_back(nonce.to_owned());
        if order.len() > REMEMBERED_NONCES {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secrets: Vec<String> = std::env::var("HERALD_SECRETS")
        .map_err(|_| "set HERALD_SECRETS to the webhook's secret(s), comma-separated")?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let (work, mut jobs) = mpsc::unbounded_channel::<Value>();
    let state = Arc::new(Receiver {
        verifier: Verifier::new(secrets),
        verify_token: std::env::var("HERALD_VERIFY_TOKEN").ok(),
        seen: Mutex::new((HashSet::new(), VecDeque::new())),
        work,
    });

    // The slow part runs here, after the sender already has its 2xx.
    tokio::spawn(async move {
        while let Some(event) = jobs.recv().await {
            handle(&event);
        }
    });

    let hook = post(receive).get(handshake);
    let app = Router::new()
        .route("/", hook.clone())
        .route("/{*path}", hook)
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let verified = match rx.verifier.verify(&pairs, &body) {
        Ok(v) => v,
        Err(e) => {
            println!("rejected: {e}");
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
    };
    if !rx.first_time(&verified.nonce) {
        println!("duplicate {} (already handled)", verified.nonce);
        return StatusCode::OK.into_response();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            let _ = rx.work.send(event);
            StatusCode::OK.into_response()
        }
        // Signed by herald but not JSON: nothing to retry for.
        Err(_) => StatusCode::OK.into_response(),
    }
}

fn handle(event: &Value) {
    let name = event["event"].as_str().unwrap_or("");
    let nonce = event["nonce"].as_str().unwrap_or("");
    let line = match name {
        "video.addedToChannel" | "video.updated" | "video.deleted" => {
            format!(
                "{name} {} \"{}\"",
                event["video"]["id"].as_str().unwrap_or(""),
                event["video"]["title"].as_str().unwrap_or("")
            )
        }
        "collection.created" | "collection.updated" | "collection.deleted" => format!(
            "{name} {} \"{}\"",
            event["collection"]["id"].as_str().unwrap_or(""),
            event["collection"]["name"].as_str().unwrap_or("")
        ),
        "ping" => format!(
            "ping from {}",
            event["channel"]["subdomain"].as_str().unwrap_or("")
        ),
        // Relayed from an inbound source (`plex.media.scrobble`, `strava.activity.created`, …).
        _ if event.get("source").is_some() => format!(
            "{name} from source \"{}\"{}",
            event["source"]["name"].as_str().unwrap_or(""),
            event["playback"]["media"]["title"]
                .as_str()
                .map(|t| format!(": \"{t}\""))
                .unwrap_or_default()
        ),
        other => format!("ignored {other}"),
    };
    println!("{line} nonce={nonce}");
    let _ = std::io::stdout().flush();
}

async fn handshake(
    State(rx): State<Arc<Receiver>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let expected = rx.verify_token.as_deref();
    match (
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token"),
        q.get("hub.challenge"),
    ) {
        (Some("subscribe"), Some(token), Some(challenge))
            if expected.is_some_and(|expected| same_token(token, expected)) =>
        {
            println!("handshake answered");
            Json(serde_json::json!({ "hub.challenge": challenge })).into_response()
        }
        _ => StatusCode::FORBIDDEN.into_response(),
    }
}

/// Whether two tokens are equal, in a time that does not tell how much of them matched: `==`
/// stops at the first difference, which lets a caller guess a token byte by byte from response
/// times. Comparing digests also hides the length.
fn same_token(given: &str, expected: &str) -> bool {
    let (given, expected) = (Sha256::digest(given), Sha256::digest(expected));
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}
