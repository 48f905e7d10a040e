//! Claims and outcomes for the worker's unit tests, named by plain numbers.

use crate::domain::delivery::{Attempt, AttemptResult, Fate};
use crate::domain::event::EventName;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::store::{Claimed, Recorded};
use std::collections::HashSet;
use std::sync::Arc;

/// The outcome of an attempt of `delivery` to `webhook`: succeeded, or failed for good.
pub(super) fn done(delivery: i64, webhook: i64, ok: bool) -> Recorded {
    Recorded {
        attempt: Attempt {
            delivery_id: DeliveryId(delivery),
            at: 0,
            url: String::new(),
            code: None,
            result: AttemptResult::Unknown,
            message: None,
            duration_ms: 0,
            response_body: None,
        },
        webhook_id: WebhookId(webhook),
        lease: 0,
        fate: if ok {
            Fate::Succeeded
        } else {
            Fate::Failed { gone: false }
        },
    }
}

/// A claim of `delivery` to `webhook`, with lease 7.
pub(super) fn claim(delivery: i64, webhook: i64) -> Claimed {
    Claimed {
        delivery_id: DeliveryId(delivery),
        webhook_id: WebhookId(webhook),
        lease: 7,
        nonce: String::new(),
        event: EventName::VideoUpdated,
        event_at: 0,
        data: Arc::from(""),
        retries_made: 0,
        max_retries: 0,
        url: String::new(),
        secrets: Arc::from(Vec::new()),
    }
}

pub(super) fn ids(claims: &[Claimed]) -> Vec<i64> {
    claims.iter().map(|c| c.delivery_id.get()).collect()
}

pub(super) fn set(ids: &[i64]) -> HashSet<WebhookId> {
    ids.iter().copied().map(WebhookId).collect()
}
