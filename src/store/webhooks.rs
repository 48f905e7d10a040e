//! Webhooks: where a channel's events are sent, with their secrets.

use super::backend::{Backend, Begin, Commit, Value};
use super::pages::{in_order, push_page};
use super::rows::{WebhookRow, WEBHOOK_COLUMNS};
use super::secrets::Vault;
use super::{Page, Result, SqlStore, StoreError, WebhookFilter};
use crate::domain::event_types::{check_against, EventPatterns};
use crate::domain::ids::{ChannelId, UserId, WebhookId};
use crate::domain::time::now_ms;
use crate::domain::webhook::{DisabledReason, NewWebhook, Webhook, WebhookEvent, WebhookPatch};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

/// The condition that a webhook's `events` (a JSON list of names) holds `subscription`. The
/// pattern is written into the SQL rather than bound: SQLite compiles a `LIKE` against a bound
/// pattern again each time it is bound.
pub(super) fn subscribed_to(subscription: WebhookEvent) -> String {
    format!("events LIKE '%\"{}\"%'", subscription.as_str())
}

/// Pushes ` WHERE …`: the channel's webhooks that pass `filter`.
pub(super) fn push_webhook_filter<B: Backend>(
    qb: &mut QueryBuilder<'_, B>,
    channel_id: ChannelId,
    filter: &WebhookFilter,
) where
    i64: Value<B>,
    bool: Value<B>,
{
    qb.push(" WHERE channel_id = ").push_bind(channel_id.get());
    if let Some(enabled) = filter.enabled {
        qb.push(" AND enabled = ").push_bind(enabled);
    }
    if let Some(event) = filter.event {
        qb.push(" AND ").push(subscribed_to(event));
    }
    if let Some(ids) = &filter.ids {
        qb.push(" AND ");
        B::push_in(qb, "id", ids);
    }
}

/// A list of names as stored in a JSON column.
pub(super) fn json_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&names.collect::<Vec<_>>()).unwrap_or_default()
}

/// Event patterns as stored in a JSON column.
pub(super) fn patterns_json(p: &EventPatterns) -> String {
    json_list(p.as_slice().iter().map(String::as_str))
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
    pub(super) async fn create_webhook(
        &self,
        channel_id: ChannelId,
        creator_id: UserId,
        new: &NewWebhook,
    ) -> Result<Webhook> {
        let now = now_ms();
        let secrets = self.vault.seal(new.secrets.iter().map(|s| s.as_str()))?;
        let mut tx = self.writes.begin().await?;
        let id = sqlx::query_scalar::<B, WebhookId>(
            "INSERT INTO webhooks (channel_id, url, description, events, secrets, retries, enabled, disabled_reason, creator_id, created_at, updated_at, listener, event_types) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) RETURNING id",
        )
        .bind(channel_id)
        .bind(new.url.as_str())
        .bind(&new.description)
        .bind(json_list(new.events.iter().map(|e| e.as_str())))
        .bind(secrets)
        .bind(new.retries)
        .bind(new.enabled)
        .bind((!new.enabled).then_some(DisabledReason::Manual.as_str()))
        .bind(creator_id)
        .bind(now)
        .bind(new.listener)
        .bind(new.event_types.as_ref().map(patterns_json))
        .fetch_one(&mut *tx)
        .await?;
        let hook = Self::webhook_of(&mut tx, &self.vault, channel_id, id).await?;
        tx.commit().await?;
        Ok(hook)
    }

    pub(super) async fn update_webhook(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        patch: &WebhookPatch,
    ) -> Result<Webhook> {
        // Sealed before the transaction: the secrets left as they are keep their stored value.
        let secrets = match &patch.secrets {
            Some(s) => Some(self.vault.seal(s.iter().map(|s| s.as_str()))?),
            None => None,
        };
        let mut tx = self.writes.begin().await?;
        let cur = Self::webhook_of(&mut tx, &self.vault, channel_id, id).await?;
        let (enabled, reason) = match patch.enabled {
            Some(true) => (true, None),
            Some(false) if cur.enabled || cur.disabled_reason.is_none() => {
                (false, Some(DisabledReason::Manual))
            }
            Some(false) => (false, cur.disabled_reason),
            None => (cur.enabled, cur.disabled_reason),
        };
        let events = match &patch.events {
            Some(e) => json_list(e.iter().map(|e| e.as_str())),
            None => json_list(cur.events.iter().map(|e| e.as_str())),
        };
        let event_types = patch.event_types.as_ref().unwrap_or(&cur.event_types);
        if let Some(types) = event_types {
            let subscriptions = patch.events.as_ref().unwrap_or(&cur.events);
            check_against(subscriptions, types)?;
        }
        sqlx::query(
            "UPDATE webhooks SET url = $1, description = $2, events = $3, secrets = COALESCE($4, secrets), retries = $5, enabled = $6, \
             disabled_reason = $7, updated_at = $8, failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
             event_types = $11 WHERE channel_id = $9 AND id = $10",
        )
        .bind(patch.url.as_ref().map_or(cur.url.as_str(), |u| u.as_str()))
        .bind(patch.description.as_ref().unwrap_or(&cur.description))
        .bind(events)
        .bind(secrets)
        .bind(patch.retries.unwrap_or(cur.retries))
        .bind(enabled)
        .bind(reason.map(DisabledReason::as_str))
        .bind(now_ms())
        .bind(channel_id)
        .bind(id)
        .bind(event_types.as_ref().map(patterns_json))
        .execute(&mut *tx)
        .await?;
        let hook = Self::webhook_of(&mut tx, &self.vault, channel_id, id).await?;
        tx.commit().await?;
        Ok(hook)
    }

    /// Deletes the webhook, its deliveries and their attempts. On PostgreSQL no foreign key
    /// cascades (see migration 0004), so the order matters: the webhook first, which waits for
    /// any transaction still writing deliveries for it (they hold it `FOR KEY SHARE`); then its
    /// deliveries, which waits for any round still recording attempts of them (it holds them
    /// locked); then, in a statement that sees what those committed, the attempts.
    pub(super) async fn delete_webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<()> {
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE channel_id = $1 AND id = $2")
            .bind(channel_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        let gone: Vec<i64> = sqlx::query_scalar::<B, i64>(
            "DELETE FROM deliveries WHERE webhook_id = $1 RETURNING id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !gone.is_empty() {
            // The ids are bound as one value, so their number is not bound by a limit.
            let mut qb = QueryBuilder::<B>::new("DELETE FROM delivery_attempts WHERE ");
            B::push_in(&mut qb, "delivery_id", &gone);
            B::shorten(qb.build()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn webhook(&self, channel_id: ChannelId, id: WebhookId) -> Result<Webhook> {
        let mut c = self.reader.acquire().await?;
        Self::webhook_of(&mut c, &self.vault, channel_id, id).await
    }

    pub(super) async fn list_webhooks(
        &self,
        channel_id: ChannelId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<Vec<Webhook>> {
        let mut qb = QueryBuilder::<B>::new(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks"));
        push_webhook_filter(&mut qb, channel_id, filter);
        push_page(&mut qb, "id", page);
        let rows: Vec<WebhookRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&self.reader)
            .await?;
        in_order(rows, page)
            .into_iter()
            .map(|r| r.open(&self.vault))
            .collect()
    }

    /// The channel's webhook `id`, its secrets opened by `vault`.
    pub(super) async fn webhook_of(
        c: &mut B::Connection,
        vault: &Vault,
        channel_id: ChannelId,
        id: WebhookId,
    ) -> Result<Webhook> {
        sqlx::query_as::<B, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?
        .open(vault)
    }
}
