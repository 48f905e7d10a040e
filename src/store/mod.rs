//! All SQL, behind one trait.
//!
//! [`Store`] has two implementations, [`sqlite::SqliteStore`] and [`postgres::PostgresStore`],
//! picked by [`connect`] from the URL's scheme. Their SQL is the same text: `sql.rs` is compiled
//! once inside each backend module with that backend's concrete sqlx types, so both use native
//! drivers without the `Any` driver's conversions or generic-bound gymnastics. Where the
//! dialects differ (`FOR UPDATE SKIP LOCKED`), [`Dialect`] says so.
//!
//! Times are Unix milliseconds. Content changes and the events and deliveries they cause are
//! written in one transaction (an outbox): an acknowledged change never loses its event.
//! Deliveries are claimed with a lease (when they are written, for the process making the
//! change, or later in a short transaction) and recorded in another transaction; the HTTP call
//! in between holds no transaction.

use crate::domain::content::{
    Channel, Collection, CollectionPatch, NewCollection, NewUser, NewVideo, Role, User, Video,
    VideoPatch,
};
use crate::domain::delivery::{Attempt, AttemptResult, Delivery, DeliveryStatus};
use crate::domain::event::EventName;
use crate::domain::webhook::{NewWebhook, Webhook, WebhookEvent, WebhookPatch};
use crate::domain::Invalid;
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Arc;

mod group;
pub mod postgres;
pub mod sqlite;

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

/// The SQL that differs between backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to a claim's inner SELECT: concurrent claimers skip each other's rows.
    fn lock_clause(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        }
    }

    /// Appended to a SELECT of webhooks that deliveries are about to be written for: on
    /// PostgreSQL, where no foreign key ties a delivery to its webhook, the rows are locked
    /// until the transaction ends, so a webhook is not deleted before its new deliveries are
    /// visible to the deletion (SQLite's foreign keys and single writer see to it there).
    fn key_share_clause(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR KEY SHARE",
        }
    }
}

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
    fn columns(self, now: i64) -> (DeliveryStatus, i64, i64) {
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

pub type SharedStore = Arc<dyn Store>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the connections.
    async fn close(&self);

    // Channels, users, tokens.
    async fn channel_count(&self) -> Result<i64>;
    /// The channel with this subdomain, created (named `name`) when missing.
    async fn ensure_channel(&self, subdomain: &str, name: &str) -> Result<Channel>;
    /// The channel's user with this email, created when missing.
    async fn ensure_user(&self, channel_id: i64, user: &NewUser) -> Result<User>;
    async fn create_token(&self, user_id: i64, token_hash: &str) -> Result<()>;
    /// The user a token (by its hash) belongs to, with the user's channel, unless the token is
    /// unknown or revoked.
    async fn authenticate(&self, token_hash: &str) -> Result<Option<Authenticated>>;
    async fn channel(&self, id: i64) -> Result<Channel>;
    /// The channel's users among `ids`, in the order of `ids`; unknown ones are left out.
    async fn users(&self, channel_id: i64, ids: &[i64]) -> Result<Vec<User>>;
    async fn list_users(&self, channel_id: i64, page: Page) -> Result<Vec<User>>;

    // Webhooks.
    async fn create_webhook(
        &self,
        channel_id: i64,
        creator_id: i64,
        new: &NewWebhook,
    ) -> Result<Webhook>;
    async fn update_webhook(
        &self,
        channel_id: i64,
        id: i64,
        patch: &WebhookPatch,
    ) -> Result<Webhook>;
    /// Deletes the webhook with its queued deliveries and its delivery log.
    async fn delete_webhook(&self, channel_id: i64, id: i64) -> Result<()>;
    async fn webhook(&self, channel_id: i64, id: i64) -> Result<Webhook>;
    async fn list_webhooks(
        &self,
        channel_id: i64,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<Vec<Webhook>>;

    // Channel content; each change writes its event and deliveries in the same transaction.
    async fn create_video(&self, actor: Actor, new: &NewVideo) -> Result<Changed<Video>>;
    async fn publish_video(&self, actor: Actor, id: i64) -> Result<Changed<Video>>;
    async fn update_video(
        &self,
        actor: Actor,
        id: i64,
        patch: &VideoPatch,
    ) -> Result<Changed<Video>>;
    async fn delete_video(&self, actor: Actor, id: i64) -> Result<Changed<Video>>;
    async fn create_collection(
        &self,
        actor: Actor,
        new: &NewCollection,
    ) -> Result<Changed<Collection>>;
    async fn update_collection(
        &self,
        actor: Actor,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<Changed<Collection>>;
    async fn delete_collection(&self, actor: Actor, id: i64) -> Result<Changed<Collection>>;
    async fn video(&self, channel_id: i64, id: i64) -> Result<Video>;
    async fn list_videos(&self, channel_id: i64, page: Page) -> Result<Vec<Video>>;
    async fn collection(&self, channel_id: i64, id: i64) -> Result<Collection>;
    /// The channel's collections among `ids`, in the order of `ids`.
    async fn collections(&self, channel_id: i64, ids: &[i64]) -> Result<Vec<Collection>>;
    async fn child_collections(&self, channel_id: i64, parent_id: i64) -> Result<Vec<Collection>>;
    async fn list_collections(&self, channel_id: i64, page: Page) -> Result<Vec<Collection>>;

    // The delivery log.
    /// Newest first: `page.after` is exclusive and counts down.
    async fn list_deliveries(
        &self,
        channel_id: i64,
        webhook_id: i64,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Vec<Delivery>>;
    async fn delivery(&self, channel_id: i64, id: i64) -> Result<Delivery>;
    async fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>>;
    /// The frozen payload part of an event.
    async fn event_data(&self, event_id: i64) -> Result<String>;

    // The delivery engine.
    /// Enabled webhooks with a delivery due at `now`, `herald listen` webhooks left out (only
    /// the process holding a listener's connection delivers to it).
    async fn due_webhooks(&self, now: i64) -> Result<Vec<i64>>;
    /// Records attempts and moves their deliveries on, in one transaction. A record whose lease
    /// is stale (the delivery was claimed again) adds its attempt to the log and changes nothing
    /// else. Webhooks whose deliveries have all failed since `now - disable_after_ms` are
    /// disabled (`FAILING`), and so are webhooks whose receiver answered `410 Gone`.
    async fn record(&self, records: &[Recorded], now: i64, disable_after_ms: i64) -> Result<()>;
    /// Writes a ping event and one delivery of it to this webhook (enabled or not), claimed
    /// until `lease_until` for an attempt right away.
    async fn claim_ping(
        &self,
        channel_id: i64,
        actor_id: i64,
        webhook_id: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Claimed>;
    /// Claims one delivery of the channel for an attempt right away, whatever its status (a
    /// redelivery: same nonce and body, a new attempt in its log).
    async fn claim_delivery(
        &self,
        channel_id: i64,
        delivery_id: i64,
        lease_until: i64,
    ) -> Result<Claimed>;
    /// [`Store::record`], then claims due deliveries, in one transaction: the engine's round.
    /// It claims at most `limit` per webhook of `wants` (`(webhook id, limit)`), oldest due
    /// first, skipping disabled webhooks, and `herald listen` webhooks unless they are among
    /// `listeners` (connected to this process). A claimed delivery is not due again until
    /// `lease_until`: if its worker dies, it is claimed again then (at-least-once).
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        records: &[Recorded],
        wants: &[(i64, i64)],
        listeners: &[i64],
        now: i64,
        lease_until: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Claimed>>;
    /// Hands claimed deliveries (`(delivery id, lease)`) back unattempted: claimable again at
    /// once (they were due when claimed).
    async fn release(&self, claims: &[(i64, i64)]) -> Result<()>;

    // Tokens and roles (CLI).
    /// The API tokens of the channel with this subdomain, or of every channel; oldest first.
    async fn list_tokens(&self, channel: Option<&str>) -> Result<Vec<TokenInfo>>;
    /// Revokes a token by its ID (as [`Store::list_tokens`] shows it), as of `now` (ms): the API
    /// refuses it from then on. A revoked token stays revoked as it was. Returns the token as it
    /// was before; `NotFound` when no token has this ID.
    async fn revoke_token(&self, id: i64, now: i64) -> Result<TokenInfo>;
    /// Gives the user with this email, in the channel with this subdomain, `role`. Returns the
    /// role the user had; `NotFound` when there is no such user.
    async fn set_user_role(&self, channel: &str, email: &str, role: Role) -> Result<Role>;
}

/// Connects to `database_url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
/// `channel_url` is the template of channel URLs in payloads (`{subdomain}` is replaced).
pub async fn connect(database_url: &str, channel_url: &str) -> Result<SharedStore> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(database_url, channel_url).await?,
        ))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(database_url, channel_url).await?,
        ))
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            "DATABASE_URL must start with sqlite:// or postgres://".into(),
        )))
    }
}

/// An API token as `herald token list` shows it (never the token itself: only its hash is
/// stored).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: i64,
    /// The channel's subdomain.
    pub channel: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    /// When the token last authenticated a request, to the minute (it is written at most once a
    /// minute per token); `None` if never since herald began to keep it.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Opens one connection to a PostgreSQL `database_url`, once, and closes it: this tells at once
/// why the server cannot be reached, where a pool retries a refused connection until its
/// timeout and then reports only the timeout. Nothing to do for SQLite.
pub async fn probe(database_url: &str) -> Result<()> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        use sqlx::Connection;
        let options: sqlx::postgres::PgConnectOptions = database_url.parse()?;
        let conn = sqlx::PgConnection::connect_with(&options).await?;
        let _ = conn.close().await;
    }
    Ok(())
}

impl StoreError {
    /// Whether the database server could not be reached, or is starting up: worth trying
    /// again, unlike a refused password or a missing database.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut,
            ) => true,
            // cannot_connect_now (starting up or shutting down), too_many_connections.
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("57P03" | "53300"))
            }
            _ => false,
        }
    }
}
