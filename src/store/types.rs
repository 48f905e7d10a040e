//! The values the store takes and gives, apart from the domain's own types.

use super::secrets::Vault;
use crate::domain::content::{Channel, User};
use crate::domain::crypto::OpenError;
use crate::domain::delivery::{Attempt, DeliveryStatus, Fate};
use crate::domain::event::EventName;
use crate::domain::ids::{DeliveryId, WebhookId};
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
    /// Webhook secrets were read or written before the store was given its keys.
    #[error("webhook secrets cannot be read or written: no secret key was loaded")]
    Locked,
    /// A webhook's stored secrets do not open with the keys the store was given.
    #[error("the secrets of webhook {} cannot be opened: {cause}", webhook.get())]
    Unopenable {
        webhook: WebhookId,
        cause: OpenError,
    },
    /// A change was written, but the transaction holding it (SQLite's group commit, shared with
    /// other changes) did not commit: nothing of it was kept.
    #[error("the write was not committed: {message}")]
    NotCommitted {
        message: Arc<str>,
        /// What the database's state was, when that was why.
        cause: Option<Unavailable>,
    },
}

/// The database cannot serve a request, for a reason its client may be told (unlike other
/// failures, which are shown only as an internal error): it is not the client's doing, and
/// trying again later may work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No answer in time: the server is down or unreachable, or every connection stayed busy.
    Unreachable,
    /// SQLite's write lock is held by another program (a backup, a shell) for too long.
    Locked,
    /// The disk (or `HERALD_SQLITE_MAX_SIZE_MB`) is full: nothing can be written.
    DiskFull,
}

impl Unavailable {
    /// The sentence a client is shown.
    pub fn message(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "The database is unavailable; try again later",
            Unavailable::Locked => "The database is locked by another program",
            Unavailable::DiskFull => "The database cannot write: disk full",
        }
    }

    /// The `code` of GraphQL errors and of error answers.
    pub fn code(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "DATABASE_UNAVAILABLE",
            Unavailable::Locked => "DATABASE_LOCKED",
            Unavailable::DiskFull => "DATABASE_FULL",
        }
    }

    /// What a sqlx error says of the database's state, if anything.
    pub fn of(e: &sqlx::Error) -> Option<Unavailable> {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Some(Unavailable::Unreachable),
            sqlx::Error::Database(e) => {
                if let Some(e) = e.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                    let code = sqlx::error::DatabaseError::code(e).and_then(|c| c.parse().ok());
                    code.and_then(Unavailable::of_sqlite)
                } else {
                    e.code().as_deref().and_then(Unavailable::of_postgres)
                }
            }
            _ => None,
        }
    }

    /// SQLite's (extended) result code: its low byte is the primary code.
    fn of_sqlite(code: i64) -> Option<Unavailable> {
        match code & 0xff {
            5 | 6 => Some(Unavailable::Locked), // SQLITE_BUSY, SQLITE_LOCKED
            13 => Some(Unavailable::DiskFull),  // SQLITE_FULL
            _ => None,
        }
    }

    /// PostgreSQL's SQLSTATE.
    fn of_postgres(state: &str) -> Option<Unavailable> {
        match state {
            "53100" => Some(Unavailable::DiskFull),
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections, and
            // the connection exceptions (class 08).
            "57P01" | "57P02" | "57P03" | "53300" => Some(Unavailable::Unreachable),
            s if s.starts_with("08") => Some(Unavailable::Unreachable),
            _ => None,
        }
    }
}

impl StoreError {
    /// What this error says of the database's state, if anything.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            StoreError::Database(e) => Unavailable::of(e),
            StoreError::NotCommitted { cause, .. } => *cause,
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whom a token belongs to: the user, with the user's channel.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub channel: Channel,
}

/// Who makes a content change, and in which channel: as authenticated, when the request
/// began (the payload's `actor` shows the user as the request found it).
pub type Actor = Authenticated;

/// Which of the deliveries a change enqueues are written claimed by the process making it, to
/// be handed to its engine straight away, so the common path needs no claim round. If the
/// process dies first, they are due again when the claim runs out.
#[derive(Debug, Clone, Default)]
pub struct HandOff {
    /// The claim runs until this time (ms); `0` claims nothing.
    pub until: i64,
    /// Webhooks left unclaimed, for the engine to find in the queue when it has room: their
    /// receiver is busy or failing in this process.
    pub except: Arc<HashSet<WebhookId>>,
}

impl HandOff {
    /// Claims nothing: every delivery is left in the queue.
    pub fn none() -> Self {
        HandOff::default()
    }
}

/// A content change's caller, as the store's rooms pass it along: who makes it, and what it
/// may claim for the caller's engine.
#[derive(Clone, Copy)]
pub(super) struct Change<'a> {
    pub actor: &'a Actor,
    pub hand_off: &'a HandOff,
    /// Opens the secrets of the webhooks whose deliveries are handed off.
    pub vault: &'a Vault,
}

/// Keyset pagination over a list in the order of its rows' ids: the rows between the cursors
/// `after` and `before` (row ids, both exclusive, in the list's order), at most `limit` of
/// them, from the start of that range, or from its end with `from_end` (a connection's
/// `last`). The rows come back in the list's order either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
    pub order: Order,
    pub from_end: bool,
}

impl Page {
    /// The first `limit` rows, oldest first.
    pub fn first(limit: i64) -> Self {
        Page {
            after: None,
            before: None,
            limit,
            order: Order::Ascending,
            from_end: false,
        }
    }
}

/// A list's order: by row id, which follows creation (ids are handed out as rows are written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Ascending,
    /// Newest first.
    Descending,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    pub enabled: Option<bool>,
    pub event: Option<WebhookEvent>,
    /// Only these webhooks (row ids), when given.
    pub ids: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub nonces: Option<Vec<String>>,
    /// Only deliveries of events with this name (`collection.created`).
    pub event: Option<String>,
}

/// Which of a webhook's deliveries a replay queues again.
#[derive(Debug, Clone, Copy)]
pub struct ReplayFilter {
    /// `FAILED` or `SUCCEEDED`.
    pub status: DeliveryStatus,
    /// Created at or after this time (ms).
    pub since: Option<i64>,
    /// Created before this time (ms).
    pub until: Option<i64>,
}

/// A webhook herald disabled while recording attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    pub webhook: WebhookId,
    /// Its receiver answered `410 Gone` (else: failing for too long).
    pub gone: bool,
}

/// What a round of the engine came to: the deliveries it claimed, the webhooks it disabled.
#[derive(Debug, Clone, Default)]
pub struct Rounded {
    pub claimed: Vec<Claimed>,
    pub disabled: Vec<Disabled>,
}

/// The queue's figures, for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    /// Deliveries `PENDING` or `RETRYING`, of every webhook.
    pub queued: i64,
    /// How long (ms) the oldest due, unclaimed delivery to an enabled webhook has waited.
    pub oldest_due_ms: Option<i64>,
    /// Webhooks disabled now, by herald (`FAILING`) and by admins (`MANUAL`).
    pub disabled_failing: i64,
    pub disabled_manual: i64,
}

/// What one batch of background work (retention, a replay) did, and where its scan got to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows deleted (deliveries, with their attempts; or events), or deliveries queued again.
    pub done: u64,
    /// The id the next batch scans from; `None` once the scan has reached the end.
    pub next: Option<i64>,
}

/// A list of a channel's rows that the API pages through, for counting it whole.
#[derive(Debug, Clone)]
pub enum Listing {
    Users,
    Videos,
    Collections,
    Groups,
    Webhooks(WebhookFilter),
    /// A webhook's delivery log.
    Deliveries(WebhookId, DeliveryFilter),
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
    pub enqueued: Vec<WebhookId>,
    /// The event the change emitted, if it emitted one.
    pub event: Option<EventName>,
}

impl<T> Changed<T> {
    /// A change that enqueued nothing.
    pub fn quiet(value: T) -> Self {
        Changed {
            value,
            claimed: Vec::new(),
            claimed_until: 0,
            enqueued: Vec::new(),
            event: None,
        }
    }
}

/// A delivery claimed for an attempt, with what the attempt needs: the webhook's URL and
/// secrets as they are now, and the event's frozen payload.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    /// Identifies this claim; recording with a stale lease changes nothing.
    pub lease: i64,
    pub nonce: String,
    pub event: EventName,
    pub event_at: i64,
    /// The event's frozen object part, shared by all its deliveries.
    pub data: Arc<str>,
    /// Re-attempts before this one (see [`decide`](crate::domain::delivery::decide)).
    pub retries_made: i64,
    pub max_retries: i64,
    pub url: String,
    /// Opened once per change of the webhook's secrets and shared (see `secrets.rs`).
    pub secrets: Arc<[String]>,
}

impl Claimed {
    /// The claim, as [`Store::release`](super::Store::release) takes it back.
    pub fn lease(&self) -> Lease {
        Lease {
            delivery: self.delivery_id,
            lease: self.lease,
        }
    }
}

/// A claim on a delivery: the delivery, and the lease that identifies the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lease {
    pub delivery: DeliveryId,
    pub lease: i64,
}

/// An attempt made under a claim, to be recorded: the attempt as the log keeps it, the claim,
/// and what becomes of the delivery.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub attempt: Attempt,
    pub webhook_id: WebhookId,
    pub lease: i64,
    pub fate: Fate,
}

/// How many due deliveries a round claims for one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub webhook: WebhookId,
    pub limit: i64,
}

/// One round of the delivery engine (see [`Store::record_and_claim`](super::Store::record_and_claim)).
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// Attempts to record.
    pub records: &'a [Recorded],
    /// What to claim, per webhook.
    pub quotas: &'a [Quota],
    /// `herald listen` webhooks connected to this process: only their deliveries are claimed
    /// among listeners'.
    pub listeners: &'a [WebhookId],
    pub now: i64,
    /// When the claims made run out (ms).
    pub lease_until: i64,
    /// A webhook whose deliveries have all failed for this long (ms) is disabled.
    pub disable_after_ms: i64,
}

/// The delivery's status after an attempt with this fate, how much its retry count grows, and
/// when it is due (`now` when it is not due again).
pub(super) fn fate_columns(fate: Fate, now: i64) -> (DeliveryStatus, i64, i64) {
    match fate {
        Fate::Retry { at } => (fate.status(), 1, at),
        Fate::Succeeded | Fate::Failed { .. } => (fate.status(), 0, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_states_are_told_apart_on_both_backends() {
        assert_eq!(Unavailable::of_sqlite(13), Some(Unavailable::DiskFull));
        assert_eq!(Unavailable::of_sqlite(5), Some(Unavailable::Locked));
        assert_eq!(
            Unavailable::of_sqlite(517), // SQLITE_BUSY_SNAPSHOT
            Some(Unavailable::Locked)
        );
        assert_eq!(Unavailable::of_sqlite(19), None); // SQLITE_CONSTRAINT
        assert_eq!(
            Unavailable::of_postgres("53100"),
            Some(Unavailable::DiskFull)
        );
        assert_eq!(
            Unavailable::of_postgres("57P01"),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(
            Unavailable::of_postgres("08006"),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(Unavailable::of_postgres("23505"), None); // unique_violation
        assert_eq!(
            Unavailable::of(&sqlx::Error::PoolTimedOut),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(Unavailable::of(&sqlx::Error::RowNotFound), None);
    }
}
