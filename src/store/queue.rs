//! The delivery queue, as the engine sees it: claims with a lease, attempts recorded and
//! deliveries moved on, claims handed back. Each step is one short transaction; the HTTP call
//! between a claim and its record holds none.

use super::backend::{Backend, Begin, Commit, Value};
use super::events::new_lease;
use super::links::CHUNK;
use super::rows::ClaimRow;
use super::secrets::Vault;
use super::{
    Actor, Claimed, Disabled, Lease, Quota, Recorded, Result, Round, Rounded, SqlStore, StoreError,
};
use crate::domain::delivery::{new_nonce, Fate};
use crate::domain::event::{self, Catalog, EventName};
use crate::domain::ids::{ChannelId, DeliveryId, WebhookId};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

fn sorted_unique(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
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
    pub(super) async fn due_webhooks(&self, now: i64) -> Result<Vec<WebhookId>> {
        Ok(sqlx::query_scalar::<B, WebhookId>(
            "SELECT w.id FROM webhooks w WHERE w.enabled = TRUE AND w.listener = FALSE AND EXISTS (\
             SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status IN ('PENDING', 'RETRYING') \
             AND d.next_attempt_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until <= $1)) ORDER BY w.id",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?)
    }

    pub(super) async fn claim_ping(
        &self,
        actor: &Actor,
        webhook_id: WebhookId,
        now: i64,
        lease_until: i64,
    ) -> Result<Claimed> {
        let (user, channel) = (&actor.user, &actor.channel);
        let channel_id = channel.id;
        let lease = new_lease();
        let mut tx = self.writes.begin().await?;
        if !B::KEY_SHARE.is_empty() {
            sqlx::query(&format!(
                "SELECT id FROM webhooks WHERE channel_id = $1 AND id = $2 {}",
                B::KEY_SHARE
            ))
            .bind(channel_id)
            .bind(webhook_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        }
        let hook = Self::webhook_of(&mut tx, &self.vault, channel_id, webhook_id).await?;
        let cat = Catalog::new(self.channel_url(&channel.subdomain), Vec::new(), Vec::new());
        let data = event::ping_data(Catalog::user_json(user), cat.channel_json(channel));
        let event_id =
            Self::insert_event(&mut tx, channel_id, &EventName::Ping, now, &data).await?;
        let id = sqlx::query_scalar::<B, DeliveryId>(
            "INSERT INTO deliveries (webhook_id, event_id, nonce, status, retries, url, next_attempt_at, lease, claimed_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 'PENDING', 0, $4, $7, $6, $5, $7, $7) RETURNING id",
        )
        .bind(hook.id)
        .bind(event_id)
        .bind(new_nonce())
        .bind(&hook.url)
        .bind(lease_until)
        .bind(lease)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let claimed = Self::load_claim(&mut tx, &self.vault, id, lease).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    pub(super) async fn claim_delivery(
        &self,
        channel_id: ChannelId,
        delivery_id: DeliveryId,
        lease_until: i64,
    ) -> Result<Claimed> {
        let lease = new_lease();
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query(
            "UPDATE deliveries SET lease = $1, claimed_until = $2 \
             WHERE id = $3 AND webhook_id IN (SELECT id FROM webhooks WHERE channel_id = $4)",
        )
        .bind(lease)
        .bind(lease_until)
        .bind(delivery_id)
        .bind(channel_id)
        .execute(&mut *tx)
        .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        let claimed = Self::load_claim(&mut tx, &self.vault, delivery_id, lease).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    pub(super) async fn record(
        &self,
        records: &[Recorded],
        now: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Disabled>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.engine.begin().await?;
        let disabled = self
            .record_in(&mut tx, records, now, disable_after_ms)
            .await?;
        tx.commit().await?;
        Ok(disabled)
    }

    pub(super) async fn record_and_claim(&self, round: Round<'_>) -> Result<Rounded> {
        let wanted = round.quotas.iter().any(|q| q.limit > 0);
        if round.records.is_empty() && !wanted {
            return Ok(Rounded::default());
        }
        let mut tx = self.engine.begin().await?;
        let mut done = Rounded::default();
        if !round.records.is_empty() {
            let (now, disable_after_ms) = (round.now, round.disable_after_ms);
            done.disabled = self
                .record_in(&mut tx, round.records, now, disable_after_ms)
                .await?;
        }
        if wanted {
            done.claimed = Self::claim_in(&mut tx, &self.vault, &round).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    pub(super) async fn release(&self, claims: &[Lease]) -> Result<()> {
        for chunk in claims.chunks(CHUNK) {
            let mut qb = QueryBuilder::<B>::new(
                "UPDATE deliveries SET lease = NULL, claimed_until = NULL FROM (",
            );
            qb.push_values(chunk, |mut b, claim| {
                b.push_bind(claim.delivery).push_bind(claim.lease);
            });
            qb.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease = v.column2");
            B::shorten(qb.build()).execute(&self.engine).await?;
        }
        Ok(())
    }

    /// Claims due deliveries (see [`Store::record_and_claim`](super::Store::record_and_claim)).
    async fn claim_in(
        tx: &mut B::Connection,
        vault: &Vault,
        round: &Round<'_>,
    ) -> Result<Vec<Claimed>> {
        let (now, listeners) = (round.now, round.listeners);
        let lease = new_lease();
        let mut qb = QueryBuilder::<B>::new("UPDATE deliveries SET claimed_until = ");
        qb.push_bind(round.lease_until)
            .push(", lease = ")
            .push_bind(lease)
            .push(" WHERE id IN (");
        let wants = round.quotas.iter().filter(|q| q.limit > 0);
        for (i, &Quota { webhook, limit }) in wants.enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            // Per webhook, through the (webhook_id, next_attempt_at) index of queued rows: one
            // webhook's backlog never hides another's fresh deliveries.
            qb.push("SELECT id FROM (SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.webhook_id = ")
            .push_bind(webhook)
            .push(if listeners.contains(&webhook) { "" } else { " AND w.listener = FALSE" })
            .push(" AND w.enabled = TRUE AND d.status IN ('PENDING', 'RETRYING') AND d.next_attempt_at <= ")
            .push_bind(now)
            .push(" AND (d.claimed_until IS NULL OR d.claimed_until <= ")
            .push_bind(now)
            .push(") ORDER BY d.next_attempt_at LIMIT ")
            .push_bind(limit)
            .push(" ")
            .push(B::SKIP_LOCKED)
            .push(format!(") AS q{i}"));
        }
        qb.push(") RETURNING id");
        let ids: Vec<DeliveryId> = B::shorten_as(qb.build_query_as::<(DeliveryId,)>())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        Self::load_claims(tx, vault, &ids, lease).await
    }

    /// Records attempts and moves their deliveries on (see [`Store::record`](super::Store::record)).
    async fn record_in(
        &self,
        tx: &mut B::Connection,
        records: &[Recorded],
        now: i64,
        disable_after_ms: i64,
    ) -> Result<Vec<Disabled>> {
        B::write_records(&mut *tx, records, now).await?;
        let webhooks = |fate: Fate| {
            let ids = records.iter().filter(|r| r.fate == fate);
            sorted_unique(ids.map(|r| r.webhook_id.get()).collect())
        };
        let failed = webhooks(Fate::Failed { gone: false });
        let gone = webhooks(Fate::Failed { gone: true });
        let succeeded = webhooks(Fate::Succeeded);
        let failing_since = format!("failing_since = {now}");
        let first_failure = " AND failing_since IS NULL";
        Self::update_webhooks(tx, &failing_since, &failed, first_failure).await?;
        let recovered = " AND failing_since IS NOT NULL";
        Self::update_webhooks(tx, "failing_since = NULL", &succeeded, recovered).await?;
        let disable = format!("enabled = FALSE, disabled_reason = 'FAILING', updated_at = {now}");
        let cutoff = now.saturating_sub(disable_after_ms);
        let failing_too_long = format!(" AND enabled = TRUE AND failing_since <= {cutoff}");
        let mut disabled = Vec::new();
        for (ids, extra, gone) in [
            (&failed, failing_too_long.as_str(), false),
            (&gone, " AND enabled = TRUE", true),
        ] {
            for webhook in Self::update_webhooks(tx, &disable, ids, extra).await? {
                if !disabled.iter().any(|d: &Disabled| d.webhook == webhook) {
                    self.emit_disabled(tx, webhook, gone, now).await?;
                    disabled.push(Disabled { webhook, gone });
                }
            }
        }
        Ok(disabled)
    }

    /// Sets `set` on the webhooks among `ids` that meet `extra` too; returns those it changed.
    async fn update_webhooks(
        c: &mut B::Connection,
        set: &str,
        ids: &[i64],
        extra: &str,
    ) -> Result<Vec<WebhookId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<B>::new(format!("UPDATE webhooks SET {set} WHERE "));
        B::push_in(&mut qb, "id", ids);
        qb.push(extra).push(" RETURNING id");
        Ok(B::shorten_as(qb.build_query_as::<(WebhookId,)>())
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    /// What an attempt of the claimed delivery `id` needs.
    async fn load_claim(
        c: &mut B::Connection,
        vault: &Vault,
        id: DeliveryId,
        lease: i64,
    ) -> Result<Claimed> {
        Self::load_claims(c, vault, &[id], lease)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// What attempts of the claimed deliveries `ids` need.
    async fn load_claims(
        c: &mut B::Connection,
        vault: &Vault,
        ids: &[DeliveryId],
        lease: i64,
    ) -> Result<Vec<Claimed>> {
        let mut rows: Vec<ClaimRow> = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let mut qb = QueryBuilder::<B>::new(
                "SELECT d.id AS delivery_id, d.webhook_id, d.lease, d.nonce, e.name AS event_name, e.at AS event_at, e.data, \
                 d.retries, w.retries AS max_retries, w.url, w.secrets \
                 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id WHERE ",
            );
            B::push_in(&mut qb, "d.id", ids);
            rows.extend(
                B::shorten_as(qb.build_query_as::<ClaimRow>())
                    .fetch_all(&mut *c)
                    .await?,
            );
        }
        rows.into_iter().map(|r| r.claimed(lease, vault)).collect()
    }
}
