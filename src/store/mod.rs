//! All SQL, behind one trait.
//!
//! [`Store`] is implemented once, by [`SqlStore`], generic over a [`Backend`]: `sqlx::Sqlite`
//! (`sqlite.rs`) or `sqlx::Postgres` (`postgres.rs`), picked by [`connect`] from the URL's
//! scheme. The SQL is the same text on both and is monomorphised for each, so both use their
//! native drivers; what differs (a lock clause, how a batch of attempts is written, how
//! changes' transactions begin) is what [`Backend`] says; sqlx's bounds, which Rust does not
//! carry along with `B: Backend`, are one `where` clause that each room repeats.
//!
//! The store is in rooms by domain: `channels.rs`, `webhooks.rs`, `content.rs` (with
//! `links.rs`, and `events.rs` for the events it writes), `queue.rs` (the delivery engine's
//! side), `log.rs` and `tokens.rs`; rows decode in `rows.rs`, ids bind as integers through
//! `ids.rs`, and `sql.rs` hands [`Store`]'s calls to them. The store knows nothing of the
//! outbox, the engine or the API above it: what a caller's engine may claim comes in as a
//! [`HandOff`], a round's work as a [`Round`].
//!
//! Times are Unix milliseconds. Transactions are short and never span the network. A content
//! change and the event and deliveries it causes are written in one transaction (an outbox):
//! an acknowledged change never loses its event. Deliveries are claimed with a lease (when they
//! are written, for the process making the change, or later in a short transaction) and
//! recorded in another transaction; the HTTP call in between holds no transaction.

use crate::domain::content::{
    Channel, Collection, CollectionPatch, NewCollection, NewUser, NewVideo, Role, User, Video,
    VideoPatch,
};
use crate::domain::delivery::{Attempt, Delivery};
use crate::domain::ids::{ChannelId, DeliveryId, EventId, SourceId, UserId, WebhookId};
use crate::domain::source::{Outcome, Source, SourcePatch, SourceRequest, SourceSettings};
use crate::domain::webhook::{NewWebhook, Webhook, WebhookPatch};
use async_trait::async_trait;
use std::sync::Arc;

mod backend;
mod channels;
mod content;
mod events;
mod group;
mod ids;
mod links;
mod listeners;
mod log;
pub mod postgres;
mod queue;
mod rows;
mod sources;
mod sql;
pub mod sqlite;
mod tokens;
mod types;
mod webhooks;

pub use backend::{Backend, Begin, Commit, Value};
pub use sources::Received;
pub use sql::SqlStore;
pub use types::{
    Actor, Authenticated, Changed, Claimed, DeliveryFilter, HandOff, Lease, Page, Quota, Recorded,
    Result, Round, StoreError, WebhookFilter,
};

pub type SharedStore = Arc<dyn Store>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes the connections.
    async fn close(&self);

    // Channels, users, tokens.
    async fn channel_count(&self) -> Result<i64>;
    /// The channel with this subdomain, created (named `name`) when missing.
    async fn ensure_channel(&self, subdomain: &str, name: &str) -> Result<Channel>;
    /// The channel's user with this email, created when missing.
    async fn ensure_user(&self, channel_id: ChannelId, user: &NewUser) -> Result<User>;
    async fn create_token(&self, user_id: UserId, token_hash: &str) -> Result<()>;
    /// The user a token (by its hash) belongs to, with the user's channel, unless the token is
    /// unknown or revoked.
    async fn authenticate(&self, token_hash: &str) -> Result<Option<Authenticated>>;
    async fn channel(&self, id: ChannelId) -> Result<Channel>;
    /// The channel's users among `ids`, in the order of `ids`; unknown ones are left out.
    async fn users(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<User>>;
    async fn list_users(&self, channel_id: ChannelId, page: Page) -> Result<Vec<User>>;

    // Webhooks.
    async fn create_webhook(
        &self,
        channel_id: ChannelId,
        creator_id: UserId,
        new: &NewWebhook,
    ) -> Result<Webhook>;
    async fn update_webhook(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        patch: &WebhookPatch,
    ) -> Result<Webhook>;
    /// Deletes the webhook with its queued deliveries and its delivery log.
    async fn delete_webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<()>;
    async fn webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<Webhook>;
    async fn list_webhooks(
        &self,
        channel_id: ChannelId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<Vec<Webhook>>;

    // `herald listen` webhooks.
    /// Attaches a `herald listen` session (`session`, unique to the connection) to the
    /// channel's listener webhook `id`, enabling it again if it had been ended. `NotFound`
    /// unless it is a listener webhook of the channel.
    async fn attach_listener(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        session: &str,
        now: i64,
    ) -> Result<Webhook>;
    /// Ends listener webhook `id` whose session `session` is gone, unless another session has
    /// attached since: it is disabled (`FAILING`), and its queued deliveries end `FAILED`, each
    /// with an attempt whose message is `message`. Returns how many deliveries it ended.
    async fn end_listener(
        &self,
        id: WebhookId,
        session: &str,
        now: i64,
        message: &str,
    ) -> Result<u64>;

    // Channel content. Each change writes its event, and a delivery of it to each subscribed
    // webhook, in its own transaction; the deliveries `hand_off` allows are written claimed.
    async fn create_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        new: &NewVideo,
    ) -> Result<Changed<Video>>;
    async fn publish_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Video>>;
    async fn update_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
        patch: &VideoPatch,
    ) -> Result<Changed<Video>>;
    async fn delete_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Video>>;
    async fn create_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        new: &NewCollection,
    ) -> Result<Changed<Collection>>;
    async fn update_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<Changed<Collection>>;
    async fn delete_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Collection>>;
    async fn video(&self, channel_id: ChannelId, id: i64) -> Result<Video>;
    async fn list_videos(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Video>>;
    async fn collection(&self, channel_id: ChannelId, id: i64) -> Result<Collection>;
    /// The channel's collections among `ids`, in the order of `ids`.
    async fn collections(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<Collection>>;
    async fn child_collections(
        &self,
        channel_id: ChannelId,
        parent_id: i64,
    ) -> Result<Vec<Collection>>;
    async fn list_collections(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Collection>>;

    // The delivery log.
    /// Newest first: `page.after` is exclusive and counts down.
    async fn list_deliveries(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Vec<Delivery>>;
    async fn delivery(&self, channel_id: ChannelId, id: DeliveryId) -> Result<Delivery>;
    /// A delivery's attempts, oldest first.
    async fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<Attempt>>;
    /// The frozen payload part of an event.
    async fn event_data(&self, event_id: EventId) -> Result<String>;

    // The delivery engine.
    /// Enabled webhooks with a delivery due at `now`, `herald listen` webhooks left out (only
    /// the process holding a listener's connection delivers to it).
    async fn due_webhooks(&self, now: i64) -> Result<Vec<WebhookId>>;
    /// Records attempts and moves their deliveries on, in one transaction. A record whose lease
    /// is stale (the delivery was claimed again) adds its attempt to the log and changes nothing
    /// else. Webhooks whose deliveries have all failed since `now - disable_after_ms` are
    /// disabled (`FAILING`), and so are webhooks whose receiver answered `410 Gone`.
    async fn record(&self, records: &[Recorded], now: i64, disable_after_ms: i64) -> Result<()>;
    /// Writes a ping event and one delivery of it to this webhook (enabled or not), claimed
    /// until `lease_until` for an attempt right away.
    async fn claim_ping(
        &self,
        actor: &Actor,
        webhook_id: WebhookId,
        now: i64,
        lease_until: i64,
    ) -> Result<Claimed>;
    /// Claims one delivery of the channel for an attempt right away, whatever its status (a
    /// redelivery: same nonce and body, a new attempt in its log).
    async fn claim_delivery(
        &self,
        channel_id: ChannelId,
        delivery_id: DeliveryId,
        lease_until: i64,
    ) -> Result<Claimed>;
    /// The engine's round, in one transaction: records `round.records` (as [`Store::record`]
    /// does), then claims at most each quota's `limit` of its webhook's due deliveries, oldest
    /// due first, skipping disabled webhooks, and `herald listen` webhooks unless they are
    /// among `round.listeners`. A claimed delivery is not due again until `round.lease_until`:
    /// if its worker dies, it is claimed again then (at-least-once).
    async fn record_and_claim(&self, round: Round<'_>) -> Result<Vec<Claimed>>;
    /// Hands claimed deliveries back unattempted: claimable again at once (they were due when
    /// claimed). A stale lease changes nothing.
    async fn release(&self, claims: &[Lease]) -> Result<()>;

    // Inbound sources.
    /// Creates a source whose ingest token hashes to `token_hash` (the token is not stored).
    async fn create_source(
        &self,
        channel_id: ChannelId,
        new: &SourceSettings,
        token_hash: &str,
    ) -> Result<Source>;
    /// Applies `patch` to the source, checked whole against its current settings
    /// ([`StoreError::Invalid`] when a rule is broken, and nothing is changed).
    async fn update_source(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        patch: &SourcePatch,
    ) -> Result<Source>;
    /// Gives the source a new ingest token (by its hash); the old one is refused at once.
    async fn rotate_source_token(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        token_hash: &str,
    ) -> Result<Source>;
    /// Deletes the source and its request log; the events it became stay.
    async fn delete_source(&self, channel_id: ChannelId, id: SourceId) -> Result<()>;
    async fn source(&self, channel_id: ChannelId, id: SourceId) -> Result<Source>;
    async fn list_sources(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Source>>;
    /// The source whose ingest token hashes to `token_hash`, with its channel.
    async fn source_by_token(&self, token_hash: &str) -> Result<Option<(Source, Channel)>>;
    /// The source's request log, newest first: `page.after` is exclusive and counts down.
    async fn list_source_requests(
        &self,
        channel_id: ChannelId,
        source_id: SourceId,
        outcome: Option<Outcome>,
        page: Page,
    ) -> Result<Vec<SourceRequest>>;
    /// Writes what a request to `source`, received at `at` (ms), came to: its log line and, for
    /// an event to relay that is not a resend (by its dedupe key), the event and a delivery of
    /// it to each subscribed webhook, in one transaction; the deliveries `hand_off` allows are
    /// written claimed. `NotFound` when the source was deleted meanwhile.
    async fn record_source_request(
        &self,
        hand_off: &HandOff,
        source: &Source,
        channel: &Channel,
        at: i64,
        received: &Received,
    ) -> Result<Changed<SourceRequest>>;

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

/// The database a URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sqlite:…`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

/// A database URL whose scheme herald does not know.
#[derive(Debug, thiserror::Error)]
#[error("must start with sqlite:// or postgres://")]
pub struct UnknownScheme;

impl Scheme {
    /// The scheme of `database_url`, checked once here for the config and for [`connect`].
    pub fn of(database_url: &str) -> Result<Self, UnknownScheme> {
        if database_url.starts_with("sqlite:") {
            Ok(Scheme::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Ok(Scheme::Postgres)
        } else {
            Err(UnknownScheme)
        }
    }
}

/// Connects to `database_url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
/// `channel_url` is the template of channel URLs in payloads (`{subdomain}` is replaced).
pub async fn connect(database_url: &str, channel_url: &str) -> Result<SharedStore> {
    let scheme = Scheme::of(database_url).map_err(|e| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("DATABASE_URL {e}").into(),
        ))
    })?;
    Ok(match scheme {
        Scheme::Sqlite => Arc::new(sqlite::SqliteStore::connect(database_url, channel_url).await?),
        Scheme::Postgres => {
            Arc::new(postgres::PostgresStore::connect(database_url, channel_url).await?)
        }
    })
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
