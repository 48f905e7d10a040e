//! Deliveries (one event to one webhook) and their attempts (one HTTP try each).

use super::event::EventName;
use super::ids::{DeliveryId, EventId, WebhookId};
use super::retry::RetryPolicy;
use chrono::{DateTime, Utc};
use rand::RngCore;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not attempted yet.
    Pending,
    /// Failed, will be retried.
    Retrying,
    /// Failed, no retries left.
    Failed,
    Succeeded,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Retrying => "RETRYING",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Succeeded => "SUCCEEDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => DeliveryStatus::Pending,
            "RETRYING" => DeliveryStatus::Retrying,
            "FAILED" => DeliveryStatus::Failed,
            "SUCCEEDED" => DeliveryStatus::Succeeded,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer in time.
    Success,
    /// Any other answer.
    RequestFailure,
    RequestTimeout,
    /// Refused, reset, unresolvable, or a destination herald may not contact.
    ConnectionError,
    Unknown,
}

impl AttemptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Success => "SUCCESS",
            AttemptResult::RequestFailure => "REQUEST_FAILURE",
            AttemptResult::RequestTimeout => "REQUEST_TIMEOUT",
            AttemptResult::ConnectionError => "CONNECTION_ERROR",
            AttemptResult::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SUCCESS" => AttemptResult::Success,
            "REQUEST_FAILURE" => AttemptResult::RequestFailure,
            "REQUEST_TIMEOUT" => AttemptResult::RequestTimeout,
            "CONNECTION_ERROR" => AttemptResult::ConnectionError,
            "UNKNOWN" => AttemptResult::Unknown,
            _ => return None,
        })
    }
}

/// A stored delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event: EventName,
    /// When the event happened (the payload's `at`).
    pub event_at: i64,
    pub nonce: String,
    pub status: DeliveryStatus,
    /// Re-attempts made so far: the attempts in its log but the first (a redelivery counts).
    pub retries: i64,
    /// The attempts in its log when it was read. The log is read in more than one statement
    /// while the engine records; showing no more attempts than these keeps a delivery and its
    /// attempts telling one story (`retries` is this less one).
    pub attempts: i64,
    /// Where the latest attempt went (before any, where the first will go).
    pub url: String,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One HTTP try, as the delivery log keeps it: what the engine records, and what a user reads.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub at: i64,
    pub url: String,
    pub code: Option<i64>,
    pub result: AttemptResult,
    pub message: Option<String>,
    pub duration_ms: i64,
    /// The start of the answer's body, at most [`RESPONSE_BODY_CAP`] bytes.
    pub response_body: Option<String>,
}

/// The `User-Agent` every delivery is sent with.
pub const USER_AGENT: &str = concat!("Herald Webhooks/", env!("CARGO_PKG_VERSION"));

/// How much of a receiver's answer is read and kept.
pub const RESPONSE_BODY_CAP: usize = 4096;

/// A new nonce: 40 lowercase hex characters (20 bytes). Like a ULID, the first six bytes are the
/// time in milliseconds and the other fourteen are random (112 bits: never repeated, never
/// guessable). Nonces written one after another sort together, so the database's unique index
/// on them grows at its end instead of rewriting a random page for every delivery.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 20];
    let ms = u64::try_from(crate::domain::time::now_ms()).unwrap_or(0);
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    rand::rng().fill_bytes(&mut bytes[6..]);
    let mut out = [0u8; 40];
    // 20 bytes always fit 40 hex digits, and hex digits are ASCII.
    match hex::encode_to_slice(bytes, &mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => hex::encode(bytes),
    }
}

/// What one attempt came to, as the sender saw it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub result: AttemptResult,
    pub code: Option<u16>,
    pub message: Option<String>,
    /// A `Retry-After` on a 429 or 503 answer.
    pub retry_after: Option<Duration>,
}

/// What an attempt came to: its outcome, when it was made, how long it took, and the start of
/// the answer's body.
#[derive(Debug, Clone)]
pub struct Response {
    pub outcome: AttemptOutcome,
    pub at: DateTime<Utc>,
    pub duration: Duration,
    pub response_body: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Succeeded,
    /// Due again at this time (ms).
    Retry {
        at: i64,
    },
    /// No retries left, or the receiver said `410 Gone` (`gone`: its webhook is disabled).
    Failed {
        gone: bool,
    },
}

impl Fate {
    /// The delivery's status once its fate is recorded.
    pub fn status(self) -> DeliveryStatus {
        match self {
            Fate::Succeeded => DeliveryStatus::Succeeded,
            Fate::Retry { .. } => DeliveryStatus::Retrying,
            Fate::Failed { .. } => DeliveryStatus::Failed,
        }
    }
}

/// Decides a delivery's fate after an attempt made at `now` (ms). `retries_made` counts
/// re-attempts before this one; `max_retries` is the webhook's `retries`; `unit` draws the
/// retry's jitter.
pub fn decide(
    outcome: &AttemptOutcome,
    retries_made: i64,
    max_retries: i64,
    policy: &RetryPolicy,
    unit: f64,
    now: i64,
) -> Fate {
    if outcome.result == AttemptResult::Success {
        return Fate::Succeeded;
    }
    if outcome.code == Some(410) {
        return Fate::Failed { gone: true };
    }
    if retries_made >= max_retries {
        return Fate::Failed { gone: false };
    }
    let n = u32::try_from(retries_made + 1).unwrap_or(u32::MAX);
    let delay = policy.next_delay(n, outcome.retry_after, unit);
    let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    Fate::Retry {
        at: now.saturating_add(delay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_40_hex_characters_unique_and_in_time_order() {
        let a = new_nonce();
        let b = new_nonce();
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
        assert_ne!(a[12..], b[12..], "the random part differs");
        assert!(a[..12] <= b[..12], "the time part never goes back");
        let ms = i64::from_str_radix(&a[..12], 16).expect("hex");
        assert!((crate::domain::time::now_ms() - ms).abs() < 60_000);
    }

    fn failed(code: Option<u16>) -> AttemptOutcome {
        AttemptOutcome {
            result: AttemptResult::RequestFailure,
            code,
            message: None,
            retry_after: None,
        }
    }

    #[test]
    fn nonces_are_forty_lowercase_hex() {
        let n = new_nonce();
        assert_eq!(n.len(), 40);
        assert!(n
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(n, new_nonce());
    }

    #[test]
    fn fate_after_an_attempt() {
        let p = RetryPolicy::new(Duration::from_secs(30), 4.0, Duration::from_secs(43_200));
        let ok = AttemptOutcome {
            result: AttemptResult::Success,
            code: Some(200),
            message: None,
            retry_after: None,
        };
        let now = 1_000;
        assert_eq!(decide(&ok, 0, 3, &p, 0.5, now), Fate::Succeeded);
        assert_eq!(
            decide(&failed(Some(500)), 0, 3, &p, 0.5, now),
            Fate::Retry { at: now + 30_000 }
        );
        assert_eq!(
            decide(&failed(Some(500)), 2, 3, &p, 0.5, now),
            Fate::Retry { at: now + 480_000 }
        );
        assert_eq!(
            decide(&failed(Some(500)), 3, 3, &p, 0.5, now),
            Fate::Failed { gone: false }
        );
        assert_eq!(
            decide(&failed(Some(500)), 0, 0, &p, 0.5, now),
            Fate::Failed { gone: false }
        );
        assert_eq!(
            decide(&failed(Some(410)), 0, 3, &p, 0.5, now),
            Fate::Failed { gone: true }
        );
    }
}
