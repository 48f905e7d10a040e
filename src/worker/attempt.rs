//! One attempt of a claimed delivery: build its body, sign and send it (over HTTP, or down its
//! `herald listen` session), and decide from the answer what becomes of the delivery.

use super::sender::{self, Request};
use super::{millis, Engine, EngineConfig};
use crate::domain::delivery::{decide, Attempt, AttemptOutcome, Fate, Response};
use crate::domain::event;
use crate::domain::ids::Typed;
use crate::domain::storable;
use crate::domain::time::now_ms;
use crate::domain::webhook::LISTENER_SCHEME;
use crate::outbox::hub::Pushed;
use crate::store::{Claimed, Recorded};
use bytes::Bytes;

/// Makes one attempt of `claim` and returns its outcome, to be recorded (and counted in the
/// engine's metrics). Never fails: what went wrong is the outcome.
pub(super) async fn attempt(engine: &Engine, claim: Claimed) -> Recorded {
    let (sender, listeners, config) = (&engine.sender, &engine.listeners, &engine.config);
    let hook_id = claim.webhook_id.global();
    let event_name = claim.event.as_str();
    let body = Bytes::from(event::body(
        &hook_id,
        &claim.nonce,
        claim.event_at,
        event_name,
        &claim.data,
    ));
    let request = Request {
        url: &claim.url,
        hook_id: &hook_id,
        event: event_name,
        nonce: &claim.nonce,
        secrets: &claim.secrets,
        body: &body,
    };
    let response = if claim.url.starts_with(LISTENER_SCHEME) {
        listeners
            .deliver(claim.webhook_id, pushed(&claim, &request), config.timeout)
            .await
    } else {
        sender.send(&request).await
    };
    let fate = fate(&response.outcome, &claim, config);
    let outcome = &response.outcome;
    engine
        .metrics
        .attempt(outcome.result, outcome.code, response.duration, fate);
    recorded(claim, response, fate)
}

/// The attempt as a `herald listen` session receives it.
fn pushed(claim: &Claimed, request: &Request<'_>) -> Pushed {
    Pushed {
        delivery_id: claim.delivery_id,
        nonce: claim.nonce.clone(),
        event: request.event.to_owned(),
        headers: sender::header_pairs(request, chrono::Utc::now()),
        body: String::from_utf8_lossy(request.body).into_owned(),
    }
}

/// What becomes of the delivery after this outcome, retries drawn with jitter.
fn fate(outcome: &AttemptOutcome, claim: &Claimed, config: &EngineConfig) -> Fate {
    let unit: f64 = rand::random();
    let (made, max) = (claim.retries_made, claim.max_retries);
    decide(outcome, made, max, &config.retry, unit, now_ms())
}

fn recorded(claim: Claimed, response: Response, fate: Fate) -> Recorded {
    Recorded {
        attempt: Attempt {
            delivery_id: claim.delivery_id,
            at: response.at.timestamp_millis(),
            url: claim.url,
            code: response.outcome.code.map(i64::from),
            result: response.outcome.result,
            message: response.outcome.message.map(storable),
            duration_ms: millis(response.duration),
            response_body: response.response_body.map(storable),
        },
        webhook_id: claim.webhook_id,
        lease: claim.lease,
        fate,
    }
}
