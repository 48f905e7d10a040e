//! A change's event: the event, and a delivery of it to each subscribed webhook, written in the
//! change's own transaction, so an acknowledged change never loses its event.
//! Deliveries handed off to the process making the change are written already claimed (see
//! [`HandOff`](super::HandOff)).

use super::backend::{Backend, Value};
use super::links::CHUNK;
use super::rows::{
    patterns, ChannelRow, CollectionRow, TargetRow, WebhookRow, CHANNEL_COLUMNS,
    COLLECTION_COLUMNS, WEBHOOK_COLUMNS,
};
use super::secrets::Vault;
use super::types::Change;
use super::webhooks::subscribed_to;
use super::{Changed, Claimed, HandOff, Result, SqlStore, StoreError};
use crate::domain::content::{Channel, Collection};
use crate::domain::delivery::{new_nonce, DeliveryStatus};
use crate::domain::event::{self, Catalog, EventName};
use crate::domain::ids::{ChannelId, DeliveryId, EventId, WebhookId};
use crate::domain::time::now_ms;
use crate::domain::webhook::Webhook;
use serde_json::{Map, Value as Json};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};
use std::collections::HashMap;
use std::sync::Arc;

/// What a change's event enqueued (see [`Changed`]).
#[derive(Default)]
pub(super) struct Emitted {
    claimed: Vec<Claimed>,
    claimed_until: i64,
    enqueued: Vec<WebhookId>,
    event: Option<EventName>,
    /// The event written, if any.
    pub(super) event_id: Option<EventId>,
}

impl Emitted {
    /// How many deliveries the event got.
    pub(super) fn deliveries(&self) -> usize {
        self.claimed.len() + self.enqueued.len()
    }

    /// What this change and `other`, made in the same transaction, enqueued.
    pub(super) fn and(mut self, other: Emitted) -> Emitted {
        self.claimed.extend(other.claimed);
        self.claimed_until = self.claimed_until.max(other.claimed_until);
        self.enqueued.extend(other.enqueued);
        self
    }

    pub(super) fn into_changed<T>(self, value: T) -> Changed<T> {
        Changed {
            value,
            claimed: self.claimed,
            claimed_until: self.claimed_until,
            enqueued: self.enqueued,
            event: self.event,
        }
    }
}

/// A lease for a new claim; recording under a stale one changes nothing.
pub(super) fn new_lease() -> i64 {
    rand::random::<i64>() & i64::MAX
}

/// A collection of the channel that `catalog` was built for, taken from it: the catalog holds
/// every collection it was given as a root, so a change need not load one twice.
pub(super) fn held(catalog: &Catalog, id: i64) -> Result<Collection> {
    catalog.collection(id).cloned().ok_or(StoreError::NotFound)
}

impl<B: Backend> SqlStore<B>
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
    /// Writes an event and one delivery per enabled webhook of the channel subscribed to it, and
    /// returns the deliveries handed over to this process and the webhooks whose were left queued.
    pub(super) async fn emit(
        c: &mut B::Connection,
        change: Change<'_>,
        catalog: &Catalog,
        name: EventName,
        object_key: &str,
        object: Json,
        updates: Option<Map<String, Json>>,
    ) -> Result<Emitted> {
        let (user, channel) = (&change.actor.user, &change.actor.channel);
        let user_json = Catalog::user_json(user);
        let channel_json = catalog.channel_json(channel);
        let data = event::event_data(user_json, channel_json, object_key, object, updates);
        let hand_off = change.hand_off;
        Self::emit_data(
            c,
            channel.id,
            hand_off,
            change.vault,
            name,
            now_ms(),
            data.into(),
        )
        .await
    }

    /// [`Self::emit`] with the event's frozen part `data` made already (a relayed event's).
    pub(super) async fn emit_data(
        c: &mut B::Connection,
        channel_id: ChannelId,
        hand_off: &HandOff,
        vault: &Vault,
        name: EventName,
        now: i64,
        data: Arc<str>,
    ) -> Result<Emitted> {
        let event_id = Self::insert_event(c, channel_id, &name, now, &data).await?;
        let mut hooks = Vec::new();
        for hook in Self::targets(c, channel_id, &name).await? {
            match patterns(hook.event_types.as_deref())? {
                Some(types) if !types.matches(name.as_str()) => {}
                _ => hooks.push(hook),
            }
        }
        // Webhooks of `herald listen` are delivered to by the process holding their connection,
        // which may be another: their deliveries are left unclaimed for it.
        let claims = |hook: &TargetRow| {
            hand_off.until > 0 && !hook.listener && !hand_off.except.contains(&hook.id)
        };
        let lease = new_lease();
        let claim = |hook: &TargetRow| claims(hook).then_some((lease, hand_off.until));
        let mut emitted = Emitted {
            claimed_until: hand_off.until,
            event: Some(name.clone()),
            event_id: Some(event_id),
            ..Emitted::default()
        };
        for chunk in hooks.chunks(CHUNK) {
            let nonces: Vec<String> = chunk.iter().map(|_| new_nonce()).collect();
            let ids = Self::insert_deliveries(c, chunk, &nonces, event_id, now, claim).await?;
            for (hook, nonce) in chunk.iter().zip(nonces) {
                if !claims(hook) {
                    emitted.enqueued.push(hook.id);
                    continue;
                }
                let delivery_id = *ids
                    .get(&hook.id)
                    .ok_or_else(|| StoreError::Corrupt("a delivery was not written".into()))?;
                emitted.claimed.push(Claimed {
                    delivery_id,
                    webhook_id: hook.id,
                    lease,
                    nonce,
                    event: name.clone(),
                    event_at: now,
                    data: data.clone(),
                    retries_made: 0,
                    max_retries: hook.retries,
                    url: hook.url.clone(),
                    secrets: vault.open(hook.id, &hook.secrets)?,
                });
            }
        }
        Ok(emitted)
    }

    /// Writes a `webhook.disabled` event for `webhook`, which herald just disabled, and a
    /// delivery of it to each enabled webhook of the channel subscribed to `WEBHOOK`, left in the
    /// queue. Nothing for a `herald listen` webhook (it is temporary).
    pub(super) async fn emit_disabled(
        &self,
        c: &mut B::Connection,
        webhook: WebhookId,
        gone: bool,
        now: i64,
    ) -> Result<()> {
        let hook: Webhook = sqlx::query_as::<B, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(webhook)
        .fetch_one(&mut *c)
        .await?
        .open(&self.vault)?;
        if hook.listener {
            return Ok(());
        }
        let channel: Channel = sqlx::query_as::<B, ChannelRow>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1"
        ))
        .bind(hook.channel_id)
        .fetch_one(&mut *c)
        .await?
        .into();
        let catalog = Catalog::new(self.channel_url(&channel.subdomain), Vec::new(), Vec::new());
        let data = event::webhook_disabled_data(catalog.channel_json(&channel), &hook, gone);
        let name = EventName::WebhookDisabled;
        let event_id = Self::insert_event(c, channel.id, &name, now, &data).await?;
        let hooks = Self::targets(c, channel.id, &name).await?;
        for chunk in hooks.chunks(CHUNK) {
            let nonces: Vec<String> = chunk.iter().map(|_| new_nonce()).collect();
            Self::insert_deliveries(c, chunk, &nonces, event_id, now, |_| None).await?;
        }
        Ok(())
    }

    pub(super) async fn insert_event(
        c: &mut B::Connection,
        channel_id: ChannelId,
        name: &EventName,
        at: i64,
        data: &str,
    ) -> Result<EventId> {
        Ok(sqlx::query_scalar::<B, EventId>(
            "INSERT INTO events (channel_id, name, at, data) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(channel_id)
        .bind(name.as_str())
        .bind(at)
        .bind(data)
        .fetch_one(&mut *c)
        .await?)
    }

    /// The enabled webhooks of the channel subscribed to `name`, held until the transaction
    /// ends where the backend needs it (see [`Backend::KEY_SHARE`]). Their event-type filters
    /// are left to the caller.
    async fn targets(
        c: &mut B::Connection,
        channel_id: ChannelId,
        name: &EventName,
    ) -> Result<Vec<TargetRow>> {
        let Some(subscription) = name.subscribed_by() else {
            return Ok(Vec::new());
        };
        Ok(sqlx::query_as::<B, TargetRow>(&format!(
            "SELECT id, url, secrets, retries, listener, event_types FROM webhooks \
             WHERE channel_id = $1 AND enabled = TRUE AND {} ORDER BY id {}",
            subscribed_to(subscription),
            B::KEY_SHARE
        ))
        .bind(channel_id)
        .fetch_all(&mut *c)
        .await?)
    }

    /// Writes the deliveries of event `event_id` to `hooks` (one statement), claimed with the
    /// `(lease, until)` that `claim` gives a webhook, if any. Returns their ids by webhook.
    async fn insert_deliveries(
        c: &mut B::Connection,
        hooks: &[TargetRow],
        nonces: &[String],
        event_id: EventId,
        now: i64,
        claim: impl Fn(&TargetRow) -> Option<(i64, i64)>,
    ) -> Result<HashMap<WebhookId, DeliveryId>> {
        let mut qb = QueryBuilder::<B>::new(
            "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, lease, claimed_until, created_at, updated_at) ",
        );
        qb.push_values(hooks.iter().zip(nonces), |mut b, (hook, nonce)| {
            let (lease, until) = claim(hook).unzip();
            b.push_bind(hook.id)
                .push_bind(event_id)
                .push_bind(nonce.clone())
                .push_bind(DeliveryStatus::Pending.as_str())
                .push_bind(0_i64)
                .push_bind(hook.url.clone())
                .push_bind(now)
                .push_bind(lease)
                .push_bind(until)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, webhook_id");
        Ok(
            B::shorten_as(qb.build_query_as::<(DeliveryId, WebhookId)>())
                .fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(|(id, webhook_id)| (webhook_id, id))
                .collect(),
        )
    }

    /// What a payload can refer to: the collections among `roots` with their subtrees, and the
    /// users among `user_ids` or named as admins and members of those collections.
    pub(super) async fn catalog(
        &self,
        c: &mut B::Connection,
        channel: &Channel,
        roots: &[i64],
        user_ids: &[i64],
    ) -> Result<Catalog> {
        let collections = Self::collection_trees(c, channel.id, roots).await?;
        self.catalog_of(c, channel, collections, user_ids).await
    }

    /// What a payload can refer to: `collections` (each with its whole subtree among them), and
    /// the users among `user_ids` or named as admins and members of those collections.
    pub(super) async fn catalog_of(
        &self,
        c: &mut B::Connection,
        channel: &Channel,
        collections: Vec<Collection>,
        user_ids: &[i64],
    ) -> Result<Catalog> {
        self.catalog_with_groups(c, channel, collections, user_ids, &[])
            .await
    }

    /// [`Self::catalog_of`], with the groups among `group_ids` or named by those collections,
    /// and their members.
    pub(super) async fn catalog_with_groups(
        &self,
        c: &mut B::Connection,
        channel: &Channel,
        collections: Vec<Collection>,
        user_ids: &[i64],
        group_ids: &[i64],
    ) -> Result<Catalog> {
        let mut groups: Vec<i64> = group_ids.to_vec();
        let mut ids: Vec<i64> = user_ids.to_vec();
        for coll in &collections {
            ids.extend(&coll.admin_ids);
            ids.extend(&coll.member_ids);
            groups.extend(&coll.admin_group_ids);
            groups.extend(&coll.member_group_ids);
        }
        groups.sort_unstable();
        groups.dedup();
        let groups = Self::groups_in(c, channel.id, &groups).await?;
        for g in &groups {
            ids.extend(&g.member_ids);
        }
        ids.sort_unstable();
        ids.dedup();
        let users = Self::users_in(c, channel.id, &ids).await?;
        let url = self.channel_url(&channel.subdomain);
        Ok(Catalog::new(url, users, collections).with_groups(groups))
    }

    /// The channel's collections among `roots`, with their whole subtrees.
    async fn collection_trees(
        c: &mut B::Connection,
        channel_id: ChannelId,
        roots: &[i64],
    ) -> Result<Vec<Collection>> {
        let roots: Vec<i64> = roots.iter().copied().filter(|r| *r > 0).collect();
        if roots.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<B>::new(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM collections WHERE channel_id = ",
        );
        qb.push_bind(channel_id).push(" AND ");
        B::push_in(&mut qb, "id", &roots);
        // UNION, not UNION ALL: a cycle (never written by herald) cannot make it run forever.
        qb.push(format!(
            " UNION SELECT c.id FROM collections c JOIN tree t ON c.parent_id = t.id) \
             SELECT {COLLECTION_COLUMNS} FROM collections WHERE id IN (SELECT id FROM tree) ORDER BY id"
        ));
        let rows: Vec<CollectionRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&mut *c)
            .await?;
        Self::hydrate_collections(c, rows).await
    }
}
