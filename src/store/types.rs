//! The values the store takes and gives, apart from the domain's own types.

use crate::domain::content::{Channel, User};
use crate::domain::delivery::{AttemptResult, DeliveryStatus};
use crate::domain::event::EventName;
use crate::domain::webhook::WebhookEvent;
use crate::domain::Invalid;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object in this channel.
    #[error("no object found")]
    NotFound,
    /// The input refers to something that does not exist or breaks a rule only the database
    /// can check (a collection made its own ancestor).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A stored value herald cannot read (written by something else).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who makes a content change, and in which channel: as authenticated (users and channels
/// are never changed once created, so a change need not read them again).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub channel: Channel,
    pub hand_off: HandOff,
}

/// Whom a token belongs to.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub channel: Channel,
}

/// Which of the deliveries a change enqueues are written claimed by the process making it and
/// handed to its engine straight away, so the common path needs no claim round. If the process
/// dies first, they are due again when the claim runs out.
#[derive(Debug, Clone, Default)]
pub struct HandOff {
    /// The claim runs until this time (ms); `0` claims nothing.
    pub until: i64,
    /// Webhooks left unclaimed, for the engine to find in the queue when it has room: their
    /// receiver is busy or failing in this process.
    pub except: Arc<HashSet<i64>>,
}

/// Keyset pagination: rows after the cursor `after` (a row ID), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    pub enabled: Option<bool>,
    pub event: Option<WebhookEvent>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub nonces: Option<Vec<String>>,
}

/// A content change, and the deliveries it enqueued.
#[derive(Debug, Clone)]
pub struct Changed<T> {
    pub value: T,
    /// Deliveries claimed for an attempt right away (see [`HandOff`]).
    pub claimed: Vec<Claimed>,
    /// When their claim runs out (ms).
    pub claimed_until: i64,
    /// Webhooks with deliveries enqueued unclaimed.
    pub enqueued: Vec<i64>,
}

impl<T> Changed<T> {
    /// A change that enqueued nothing.
    pub fn quiet(value: T) -> Self {
        Changed {
            value,
            claimed: Vec::new(),
            claimed_until: 0,
            enqueued: Vec::new(),
        }
    }
}

/// A delivery claimed for an attempt, with what the attempt needs: the webhook's URL and
/// secrets as they are now, and the event's frozen payload.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub webhook_id: i64,
    /// Identifies this claim; recording with a stale lease changes nothing.
    pub lease: i64,
    pub nonce: String,
    pub event: EventName,
    pub event_at: i64,
    /// The event's frozen object part, shared by all its deliveries.
    pub data: Arc<str>,
    pub retries_made: i64,
    pub max_retries: i64,
    pub url: String,
    pub secrets: Vec<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Succeeded,
    /// Due again at this time (ms); `retries` grows by one.
    Retry {
        at: i64,
    },
    /// No retries left. `gone`: the receiver answered 410, so the webhook is disabled.
    Failed {
        gone: bool,
    },
}

impl Fate {
    /// The delivery's status after the attempt, how much its retry count grows, and when it is
    /// due (`now` when it is not due again).
    pub(super) fn columns(self, now: i64) -> (DeliveryStatus, i64, i64) {
        match self {
            Fate::Succeeded => (DeliveryStatus::Succeeded, 0, now),
            Fate::Retry { at } => (DeliveryStatus::Retrying, 1, at),
            Fate::Failed { .. } => (DeliveryStatus::Failed, 0, now),
        }
    }
}

/// One attempt's record.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub delivery_id: i64,
    pub webhook_id: i64,
    pub lease: i64,
    pub at: i64,
    pub url: String,
    pub code: Option<i64>,
    pub result: AttemptResult,
    pub message: Option<String>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    pub fate: Fate,
}
