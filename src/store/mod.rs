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
//! `links.rs`, and `events.rs` for the events it writes), `members.rs`, `user_groups.rs` and
//! `comments.rs` (which write events the same way), `queue.rs` (the delivery engine's side),
//! `log.rs`, `tokens.rs` and `secrets.rs` (webhook secrets sealed at rest); `pages.rs` pages and
//! counts lists, rows decode in `rows.rs`, ids bind as integers through `ids.rs`, and `sql.rs`
//! hands [`Store`]'s calls to them. The store knows nothing of the
//! outbox, the engine or the API above it: what a caller's engine may claim comes in as a
//! [`HandOff`], a round's work as a [`Round`].
//!
//! Times are Unix milliseconds. Transactions are short and never span the network. A content
//! change and the event and deliveries it causes are written in one transaction (an outbox):
//! an acknowledged change never loses its event. Deliveries are claimed with a lease (when they
//! are written, for the process making the change, or later in a short transaction) and
//! recorded in another transaction; the HTTP call in between holds no transaction.

use crate::domain::comments::{Comment, CommentChange, Highlight, HighlightChange};
use crate::domain::content::{
    Channel, Collection, CollectionPatch, NewCollection, NewUser, NewVideo, Role, User, Video,
    VideoPatch,
};
use crate::domain::crypto::{KeyId, Keyring};
use crate::domain::delivery::{Attempt, Delivery};
use crate::domain::groups::{Group, GroupChange};
use crate::domain::ids::{ChannelId, DeliveryId, EventId, SourceId, UserId, WebhookId};
use crate::domain::members::MemberChange;
use crate::domain::source::{Outcome, Source, SourcePatch, SourceRequest, SourceSettings};
use crate::domain::webhook::{NewWebhook, Webhook, WebhookPatch};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

mod activity;
mod backend;
mod channels;
mod comments;
mod content;
mod events;
mod group;
mod health;
mod ids;
mod links;
mod listeners;
mod log;
mod members;
mod ops;
mod pages;
pub mod postgres;
mod queue;
mod rows;
mod secrets;
mod sessions;
mod sources;
mod sql;
pub mod sqlite;
mod tokens;
mod types;
mod user_groups;
mod webhooks;

pub use activity::{Activity, Tally};
pub use backend::{Backend, Begin, Commit, Value};
pub use secrets::{Resealed, SecretKeyRecord};
pub use sources::Received;
pub use sql::SqlStore;
pub use types::{
    Actor, Authenticated, Batch, Changed, Claimed, DeliveryFilter, Disabled, HandOff, Lease,
    Listing, Order, Page, QueueStats, Quota, Recorded, ReplayFilter, Result, Round, Rounded,
    StoreError, Unavailable, WebhookFilter,
};

pub type SharedStore = Arc<dyn Store>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;
    /// Why the database refused writes lately (a full disk, a lock held by another program),
    /// unless a write has succeeded since: a [`Store::ping`] only reads, and would not see it.
    fn refused_writes(&self) -> Option<Unavailable>;
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
    /// How many rows a list of the channel holds, unpaged.
    async fn count(&self, channel_id: ChannelId, listing: &Listing) -> Result<i64>;

    // Members, groups, comments and highlights: each change writes its events and their
    // deliveries in its own transaction, as content changes do.
    /// Returns the users the change concerns, as they are after it.
    async fn change_members(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &MemberChange,
    ) -> Result<Changed<Vec<User>>>;
    /// Returns the group after the change (for a deletion, as it was).
    async fn change_group(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &GroupChange,
    ) -> Result<Changed<Group>>;
    /// Returns the comment (for a removal, as it was).
    async fn change_comment(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &CommentChange,
    ) -> Result<Changed<Comment>>;
    /// Returns the highlight (for a removal, as it was).
    async fn change_highlight(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &HighlightChange,
    ) -> Result<Changed<Highlight>>;
    async fn group(&self, channel_id: ChannelId, id: i64) -> Result<Group>;
    /// The channel's groups among `ids`, in the order of `ids`.
    async fn groups(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<Group>>;
    async fn list_groups(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Group>>;
    async fn comment(&self, channel_id: ChannelId, id: i64) -> Result<Comment>;
    async fn highlight(&self, channel_id: ChannelId, id: i64) -> Result<Highlight>;
    /// A video's comments, or (with `highlight`) those made on one of its highlights; oldest
    /// first.
    async fn comments_on(
        &self,
        channel_id: ChannelId,
        video_id: i64,
        highlight: Option<i64>,
    ) -> Result<Vec<Comment>>;
    /// A video's highlights, oldest first.
    async fn highlights_of(&self, channel_id: ChannelId, video_id: i64) -> Result<Vec<Highlight>>;

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
    /// disabled (`FAILING`), and so are webhooks whose receiver answered `410 Gone`; for each, a
    /// `webhook.disabled` event is written, in the same transaction, with a delivery to every
    /// enabled webhook of its channel subscribed to `WEBHOOK`. Returns the webhooks disabled.
    async fn record(
        &self,
        records: &[Recorded],
        now: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Disabled>>;
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
    async fn record_and_claim(&self, round: Round<'_>) -> Result<Rounded>;
    /// Hands claimed deliveries back unattempted: claimable again at once (they were due when
    /// claimed). A stale lease changes nothing.
    async fn release(&self, claims: &[Lease]) -> Result<()>;

    // Webhook secrets at rest (see `secrets.rs`).
    /// Gives the store the keys that webhook secrets are sealed and opened with; until then,
    /// anything that reads or writes secrets fails with [`StoreError::Locked`]. Once only.
    fn unlock(&self, keys: Keyring) -> Result<()>;
    /// The keys this database's webhook secrets have been sealed under, by id, oldest first.
    async fn secret_keys(&self) -> Result<Vec<SecretKeyRecord>>;
    /// Makes `key` the current key, in place of `replacing` when that is the current one, or
    /// as the first key when none is; otherwise changes nothing. Returns the current key's id
    /// afterwards: another process's key, if it was faster.
    async fn adopt_secret_key(
        &self,
        key: &KeyId,
        replacing: Option<&KeyId>,
        now: i64,
    ) -> Result<Option<String>>;
    /// Seals again, under the current key of the keys given to [`Store::unlock`], every
    /// webhook's secrets stored plain or under another of those keys: a batch per transaction,
    /// each row replaced only if unchanged meanwhile. A value under a key not given stops it
    /// with [`StoreError::Unopenable`].
    async fn reseal_secrets(&self) -> Result<Resealed>;

    // Operations.
    /// The queue's figures as of `now` (ms), for the metrics.
    async fn queue_stats(&self, now: i64) -> Result<QueueStats>;
    /// Retention, one batch: among the deliveries after id `after`, the first `limit` that are
    /// `SUCCEEDED` or `FAILED`, last changed before `before` (ms) and not claimed at `now`, are
    /// deleted with their attempts, in one short transaction. Queued deliveries are never
    /// deleted.
    async fn prune_deliveries(
        &self,
        before: i64,
        now: i64,
        after: i64,
        limit: i64,
    ) -> Result<Batch>;
    /// How many of the channel's webhook's deliveries `filter` matches, and the highest id
    /// among them (a replay queues those up to it). `NotFound` for another channel's webhook.
    async fn replay_count(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
    ) -> Result<(i64, i64)>;
    /// A replay, one batch: among the webhook's deliveries after id `after` and up to `up_to`,
    /// the first `limit` that `filter` matches (and that are not claimed at `now`) are queued
    /// again: `PENDING`, due at `now`, a full set of retries, the same nonce and body.
    async fn replay_batch(
        &self,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
        after: i64,
        up_to: i64,
        now: i64,
        limit: i64,
    ) -> Result<Batch>;
    /// Retention, one batch: among the events after id `after`, the first `limit` that happened
    /// before `before` (ms) are deleted when no delivery refers to them.
    async fn prune_events(&self, before: i64, after: i64, limit: i64) -> Result<Batch>;

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

    // The dashboard.
    /// Opens a dashboard session, kept by its id's hash `session_hash`, for the API token
    /// whose hash is `token_hash`, until `expires_at` (ms); sessions expired at `now` are
    /// deleted on the way. `NotFound` when the token is unknown or revoked.
    async fn open_session(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// Whom a dashboard session belongs to, unless it has expired at `now`, was closed, or
    /// its API token was revoked (or its user deactivated) since it was opened.
    async fn session(&self, session_hash: &str, now: i64) -> Result<Option<Authenticated>>;
    /// Ends a dashboard session (an unknown one changes nothing).
    async fn close_session(&self, session_hash: &str) -> Result<()>;
    /// The attempts made to each of the channel's webhooks since `since` (ms), and of those
    /// since `recent_since`; webhooks without an attempt in that time are left out.
    async fn webhook_activity(
        &self,
        channel_id: ChannelId,
        since: i64,
        recent_since: i64,
    ) -> Result<Vec<Activity>>;
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

/// How the store connects and waits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The template of channel URLs in payloads (`{subdomain}` is replaced).
    pub channel_url: String,
    /// How long a caller waits for a connection, and on SQLite for the write lock held by
    /// another program, before failing as [`Unavailable`].
    pub timeout: Duration,
    /// SQLite only: the most the database file may grow to, in bytes (`None`: no limit).
    pub sqlite_max_bytes: Option<u64>,
}

impl Settings {
    /// The defaults (`HERALD_DB_TIMEOUT_MS`, no size limit) with `channel_url`.
    pub fn new(channel_url: &str) -> Self {
        Settings {
            channel_url: channel_url.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            sqlite_max_bytes: None,
        }
    }
}

/// [`Settings::timeout`]'s default, as `HERALD_DB_TIMEOUT_MS` documents it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `database_url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
pub async fn connect(database_url: &str, settings: &Settings) -> Result<SharedStore> {
    let scheme = Scheme::of(database_url).map_err(|e| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("DATABASE_URL {e}").into(),
        ))
    })?;
    Ok(match scheme {
        Scheme::Sqlite => Arc::new(sqlite::SqliteStore::connect(database_url, settings).await?),
        Scheme::Postgres => {
            Arc::new(postgres::PostgresStore::connect(database_url, settings).await?)
        }
    })
}

/// Whether a pooled connection was handed back inside a transaction: one whose transaction
/// failed and could not be rolled back (SQLite may end a transaction by itself on a full disk,
/// and a `ROLLBACK` then fails, leaving sqlx counting a transaction that is not there, or a
/// later `ROLLBACK TO` leaving one open that nobody owns). Such a connection is closed
/// instead of being reused: on it, the next change would fail with "cannot start a
/// transaction within a transaction", or be committed with someone else's.
fn left_in_transaction<C: sqlx::Connection>(conn: &C) -> bool {
    let left = conn.is_in_transaction();
    if left {
        tracing::warn!("a database connection was left inside a transaction; it is closed");
    }
    left
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
