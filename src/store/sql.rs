//! [`SqlStore`]: the [`Store`] of either backend. Its methods live in the rooms (`channels.rs`,
//! `webhooks.rs`, `content.rs`, `queue.rs`, `log.rs`); this file only hands each call over.

use super::backend::{Backend, Value};
use super::health::Health;
use super::secrets::{Resealed, SecretKeyRecord, Vault};
use super::types::Change;
use super::{
    Actor, Authenticated, Batch, Changed, Claimed, DeliveryFilter, Disabled, HandOff, Lease,
    Listing, Page, QueueStats, Recorded, ReplayFilter, Result, Round, Rounded, Store, Unavailable,
    WebhookFilter,
};
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
use sqlx::{ColumnIndex, Encode, Executor, Pool, Type};

/// The store on backend `B`: pools by purpose, so that reads, changes and the delivery engine do
/// not queue behind each other more than the database makes them.
pub struct SqlStore<B: Backend> {
    /// Reads outside transactions.
    pub(super) reader: Pool<B>,
    /// Outside transactions' writes. On SQLite a single connection: writers queue in the pool
    /// instead of failing on the database lock.
    pub(super) writer: Pool<B>,
    /// Changes' transactions, on the writer (grouped on SQLite: see `group.rs`).
    pub(super) writes: B::Writes,
    /// The delivery engine's transactions (recording and claiming), apart from requests' so a
    /// burst of requests cannot hold up recording. On SQLite the writer itself, outside the
    /// changes' groups: a round waits in the pool for the open group to commit.
    pub(super) engine: Pool<B>,
    /// Connections of background work, closed with the store.
    pub(super) background: Vec<Pool<B>>,
    /// The template of channel URLs in payloads (`{subdomain}` is replaced).
    pub(super) channel_url: String,
    /// Writes refused lately for the database's state (see `health.rs`).
    pub(super) health: Health,
    /// The keys webhook secrets are sealed with, once given.
    pub(super) vault: Vault,
}

impl<B: Backend> SqlStore<B> {
    pub(super) fn channel_url(&self, subdomain: &str) -> String {
        self.channel_url.replace("{subdomain}", subdomain)
    }

    /// A content change's caller, for the store's rooms.
    fn change<'a>(&'a self, actor: &'a Actor, hand_off: &'a HandOff) -> Change<'a> {
        Change {
            actor,
            hand_off,
            vault: &self.vault,
        }
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> &'q str: Type<B> + Encode<'q, B> + ColumnIndex<B::Row>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    i64: Value<B>,
    Option<i64>: Value<B>,
    String: Value<B>,
    Option<String>: Value<B>,
    bool: Value<B>,
    Option<f64>: Value<B>,
    usize: ColumnIndex<B::Row>,
{
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    fn refused_writes(&self) -> Option<Unavailable> {
        self.health.refused()
    }

    async fn close(&self) {
        for pool in &self.background {
            pool.close().await;
        }
        self.engine.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn channel_count(&self) -> Result<i64> {
        self.channel_count().await
    }

    async fn ensure_channel(&self, subdomain: &str, name: &str) -> Result<Channel> {
        self.health
            .written(self.ensure_channel(subdomain, name).await)
    }

    async fn ensure_user(&self, channel_id: ChannelId, user: &NewUser) -> Result<User> {
        self.health
            .written(self.ensure_user(channel_id, user).await)
    }

    async fn create_token(&self, user_id: UserId, token_hash: &str) -> Result<()> {
        self.health
            .written(self.create_token(user_id, token_hash).await)
    }

    async fn authenticate(&self, token_hash: &str) -> Result<Option<Authenticated>> {
        self.authenticate_noting_use(token_hash).await
    }

    async fn channel(&self, id: ChannelId) -> Result<Channel> {
        self.channel(id).await
    }

    async fn users(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<User>> {
        self.users(channel_id, ids).await
    }

    async fn list_users(&self, channel_id: ChannelId, page: Page) -> Result<Vec<User>> {
        self.list_users(channel_id, page).await
    }

    async fn create_webhook(
        &self,
        channel_id: ChannelId,
        creator_id: UserId,
        new: &NewWebhook,
    ) -> Result<Webhook> {
        self.health
            .written(self.create_webhook(channel_id, creator_id, new).await)
    }

    async fn update_webhook(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        patch: &WebhookPatch,
    ) -> Result<Webhook> {
        self.health
            .written(self.update_webhook(channel_id, id, patch).await)
    }

    async fn delete_webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<()> {
        self.health
            .written(self.delete_webhook(channel_id, id).await)
    }

    async fn webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<Webhook> {
        self.webhook(channel_id, id).await
    }

    async fn list_webhooks(
        &self,
        channel_id: ChannelId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<Vec<Webhook>> {
        self.list_webhooks(channel_id, filter, page).await
    }

    async fn attach_listener(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        session: &str,
        now: i64,
    ) -> Result<Webhook> {
        self.health
            .written(self.attach_listener(channel_id, id, session, now).await)
    }

    async fn end_listener(
        &self,
        id: WebhookId,
        session: &str,
        now: i64,
        message: &str,
    ) -> Result<u64> {
        self.health
            .written(self.end_listener(id, session, now, message).await)
    }

    async fn create_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        new: &NewVideo,
    ) -> Result<Changed<Video>> {
        self.health
            .written(self.create_video(self.change(actor, hand_off), new).await)
    }

    async fn publish_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Video>> {
        self.health
            .written(self.publish_video(self.change(actor, hand_off), id).await)
    }

    async fn update_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
        patch: &VideoPatch,
    ) -> Result<Changed<Video>> {
        self.health.written(
            self.update_video(self.change(actor, hand_off), id, patch)
                .await,
        )
    }

    async fn delete_video(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Video>> {
        self.health
            .written(self.delete_video(self.change(actor, hand_off), id).await)
    }

    async fn create_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        new: &NewCollection,
    ) -> Result<Changed<Collection>> {
        self.health.written(
            self.create_collection(self.change(actor, hand_off), new)
                .await,
        )
    }

    async fn update_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<Changed<Collection>> {
        self.health.written(
            self.update_collection(self.change(actor, hand_off), id, patch)
                .await,
        )
    }

    async fn delete_collection(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        id: i64,
    ) -> Result<Changed<Collection>> {
        self.health.written(
            self.delete_collection(self.change(actor, hand_off), id)
                .await,
        )
    }

    async fn video(&self, channel_id: ChannelId, id: i64) -> Result<Video> {
        self.video(channel_id, id).await
    }

    async fn list_videos(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Video>> {
        self.list_videos(channel_id, page).await
    }

    async fn collection(&self, channel_id: ChannelId, id: i64) -> Result<Collection> {
        self.collection(channel_id, id).await
    }

    async fn collections(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<Collection>> {
        self.collections(channel_id, ids).await
    }

    async fn child_collections(
        &self,
        channel_id: ChannelId,
        parent_id: i64,
    ) -> Result<Vec<Collection>> {
        self.child_collections(channel_id, parent_id).await
    }

    async fn list_collections(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Collection>> {
        self.list_collections(channel_id, page).await
    }

    async fn count(&self, channel_id: ChannelId, listing: &Listing) -> Result<i64> {
        self.count(channel_id, listing).await
    }

    async fn change_members(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &MemberChange,
    ) -> Result<Changed<Vec<User>>> {
        self.health.written(
            self.change_members(self.change(actor, hand_off), change)
                .await,
        )
    }

    async fn change_group(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &GroupChange,
    ) -> Result<Changed<Group>> {
        self.health.written(
            self.change_group(self.change(actor, hand_off), change)
                .await,
        )
    }

    async fn change_comment(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &CommentChange,
    ) -> Result<Changed<Comment>> {
        self.health.written(
            self.change_comment(self.change(actor, hand_off), change)
                .await,
        )
    }

    async fn change_highlight(
        &self,
        actor: &Actor,
        hand_off: &HandOff,
        change: &HighlightChange,
    ) -> Result<Changed<Highlight>> {
        self.health.written(
            self.change_highlight(self.change(actor, hand_off), change)
                .await,
        )
    }

    async fn group(&self, channel_id: ChannelId, id: i64) -> Result<Group> {
        self.group(channel_id, id).await
    }

    async fn groups(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<Group>> {
        self.groups(channel_id, ids).await
    }

    async fn list_groups(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Group>> {
        self.list_groups(channel_id, page).await
    }

    async fn comment(&self, channel_id: ChannelId, id: i64) -> Result<Comment> {
        self.comment(channel_id, id).await
    }

    async fn highlight(&self, channel_id: ChannelId, id: i64) -> Result<Highlight> {
        self.highlight(channel_id, id).await
    }

    async fn comments_on(
        &self,
        channel_id: ChannelId,
        video_id: i64,
        highlight: Option<i64>,
    ) -> Result<Vec<Comment>> {
        self.comments_on(channel_id, video_id, highlight).await
    }

    async fn highlights_of(&self, channel_id: ChannelId, video_id: i64) -> Result<Vec<Highlight>> {
        self.highlights_of(channel_id, video_id).await
    }

    async fn list_deliveries(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Vec<Delivery>> {
        self.list_deliveries(channel_id, webhook_id, filter, page)
            .await
    }

    async fn delivery(&self, channel_id: ChannelId, id: DeliveryId) -> Result<Delivery> {
        self.delivery(channel_id, id).await
    }

    async fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<Attempt>> {
        self.attempts(delivery_id).await
    }

    async fn event_data(&self, event_id: EventId) -> Result<String> {
        self.event_data(event_id).await
    }

    async fn due_webhooks(&self, now: i64) -> Result<Vec<WebhookId>> {
        self.due_webhooks(now).await
    }

    async fn record(
        &self,
        records: &[Recorded],
        now: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Disabled>> {
        self.health
            .written(self.record(records, now, disable_after_ms).await)
    }

    async fn claim_ping(
        &self,
        actor: &Actor,
        webhook_id: WebhookId,
        now: i64,
        lease_until: i64,
    ) -> Result<Claimed> {
        self.health
            .written(self.claim_ping(actor, webhook_id, now, lease_until).await)
    }

    async fn claim_delivery(
        &self,
        channel_id: ChannelId,
        delivery_id: DeliveryId,
        lease_until: i64,
    ) -> Result<Claimed> {
        self.health.written(
            self.claim_delivery(channel_id, delivery_id, lease_until)
                .await,
        )
    }

    async fn record_and_claim(&self, round: Round<'_>) -> Result<Rounded> {
        self.health.written(self.record_and_claim(round).await)
    }

    async fn release(&self, claims: &[Lease]) -> Result<()> {
        self.health.written(self.release(claims).await)
    }

    fn unlock(&self, keys: Keyring) -> Result<()> {
        self.unlock(keys)
    }

    async fn secret_keys(&self) -> Result<Vec<SecretKeyRecord>> {
        self.secret_keys().await
    }

    async fn adopt_secret_key(
        &self,
        key: &KeyId,
        replacing: Option<&KeyId>,
        now: i64,
    ) -> Result<Option<String>> {
        self.adopt_secret_key(key, replacing, now).await
    }

    async fn reseal_secrets(&self) -> Result<Resealed> {
        self.reseal_secrets().await
    }

    async fn queue_stats(&self, now: i64) -> Result<QueueStats> {
        self.queue_stats(now).await
    }

    async fn prune_deliveries(
        &self,
        before: i64,
        now: i64,
        after: i64,
        limit: i64,
    ) -> Result<Batch> {
        self.prune_deliveries(before, now, after, limit).await
    }

    async fn replay_count(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
    ) -> Result<(i64, i64)> {
        self.replay_count(channel_id, webhook_id, filter).await
    }

    async fn replay_batch(
        &self,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
        after: i64,
        up_to: i64,
        now: i64,
        limit: i64,
    ) -> Result<Batch> {
        self.replay_batch(webhook_id, filter, after, up_to, now, limit)
            .await
    }

    async fn prune_events(&self, before: i64, after: i64, limit: i64) -> Result<Batch> {
        self.prune_events(before, after, limit).await
    }

    async fn create_source(
        &self,
        channel_id: ChannelId,
        new: &SourceSettings,
        token_hash: &str,
    ) -> Result<Source> {
        self.create_source(channel_id, new, token_hash).await
    }

    async fn update_source(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        patch: &SourcePatch,
    ) -> Result<Source> {
        self.update_source(channel_id, id, patch).await
    }

    async fn rotate_source_token(
        &self,
        channel_id: ChannelId,
        id: SourceId,
        token_hash: &str,
    ) -> Result<Source> {
        self.rotate_source_token(channel_id, id, token_hash).await
    }

    async fn delete_source(&self, channel_id: ChannelId, id: SourceId) -> Result<()> {
        self.delete_source(channel_id, id).await
    }

    async fn source(&self, channel_id: ChannelId, id: SourceId) -> Result<Source> {
        self.source(channel_id, id).await
    }

    async fn list_sources(&self, channel_id: ChannelId, page: Page) -> Result<Vec<Source>> {
        self.list_sources(channel_id, page).await
    }

    async fn source_by_token(&self, token_hash: &str) -> Result<Option<(Source, Channel)>> {
        self.source_by_token(token_hash).await
    }

    async fn list_source_requests(
        &self,
        channel_id: ChannelId,
        source_id: SourceId,
        outcome: Option<Outcome>,
        page: Page,
    ) -> Result<Vec<SourceRequest>> {
        self.list_source_requests(channel_id, source_id, outcome, page)
            .await
    }

    async fn record_source_request(
        &self,
        hand_off: &HandOff,
        source: &Source,
        channel: &Channel,
        at: i64,
        received: &super::Received,
    ) -> Result<Changed<SourceRequest>> {
        self.record_source_request(hand_off, source, channel, at, received)
            .await
    }

    // Tokens and roles (CLI).
    async fn list_tokens(&self, channel: Option<&str>) -> Result<Vec<super::TokenInfo>> {
        self.tokens(channel).await
    }

    async fn revoke_token(&self, id: i64, now: i64) -> Result<super::TokenInfo> {
        self.health.written(self.revoke(id, now).await)
    }

    async fn set_user_role(&self, channel: &str, email: &str, role: Role) -> Result<Role> {
        self.health
            .written(self.set_role(channel, email, role).await)
    }

    async fn open_session(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.health.written(
            self.open_session(token_hash, session_hash, now, expires_at)
                .await,
        )
    }

    async fn session(&self, session_hash: &str, now: i64) -> Result<Option<Authenticated>> {
        self.session(session_hash, now).await
    }

    async fn close_session(&self, session_hash: &str) -> Result<()> {
        self.health.written(self.close_session(session_hash).await)
    }

    async fn webhook_activity(
        &self,
        channel_id: ChannelId,
        since: i64,
        recent_since: i64,
    ) -> Result<Vec<super::Activity>> {
        self.webhook_activity(channel_id, since, recent_since).await
    }
}
