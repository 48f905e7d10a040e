//! What operating herald needs of the database: the queue's figures for the metrics, and
//! retention.
//!
//! Retention scans by primary key on a reader (which never holds up the writer), then deletes
//! what it found in a short write transaction that checks the rules again: a delivery
//! redelivered or replayed meanwhile is left alone.

use super::backend::{Backend, Begin, Commit, Value};
use super::{Batch, QueueStats, ReplayFilter, Result, SqlStore};
use crate::domain::ids::{ChannelId, WebhookId};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

/// Where the next batch scans from: past the last id found, or nowhere when the scan found
/// fewer than it asked for.
fn next(found: &[i64], limit: i64) -> Option<i64> {
    let full = i64::try_from(found.len()).is_ok_and(|n| n >= limit);
    found.last().copied().filter(|_| full)
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
    /// One statement on a reader: the count goes through the queue's partial index, so it
    /// reads the queued deliveries only, never the delivery log.
    pub(super) async fn queue_stats(&self, now: i64) -> Result<QueueStats> {
        let (queued, oldest_due, failing, manual) =
            sqlx::query_as::<B, (i64, Option<i64>, i64, i64)>(
                "SELECT \
                 (SELECT COUNT(*) FROM deliveries WHERE status IN ('PENDING', 'RETRYING')), \
                 (SELECT MIN(d.next_attempt_at) FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                  WHERE w.enabled = TRUE AND w.listener = FALSE AND d.status IN ('PENDING', 'RETRYING') \
                  AND d.next_attempt_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until <= $1)), \
                 (SELECT COUNT(*) FROM webhooks WHERE enabled = FALSE AND disabled_reason = 'FAILING'), \
                 (SELECT COUNT(*) FROM webhooks WHERE enabled = FALSE AND disabled_reason = 'MANUAL')",
            )
            .bind(now)
            .fetch_one(&self.reader)
            .await?;
        Ok(QueueStats {
            queued,
            oldest_due_ms: oldest_due.map(|at| now - at),
            disabled_failing: failing,
            disabled_manual: manual,
        })
    }

    /// The ids `sql` finds (`$1`: after, `$2`: before, `$3`: limit) on a reader, and where the
    /// next batch scans from.
    async fn scan(
        &self,
        sql: &str,
        before: i64,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<i64>, Option<i64>)> {
        let found = sqlx::query_scalar::<B, i64>(sql)
            .bind(after)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        let next = next(&found, limit);
        Ok((found, next))
    }

    pub(super) async fn prune_deliveries(
        &self,
        before: i64,
        now: i64,
        after: i64,
        limit: i64,
    ) -> Result<Batch> {
        let (found, next) = self
            .scan(
                "SELECT id FROM deliveries WHERE id > $1 AND status IN ('SUCCEEDED', 'FAILED') \
                 AND updated_at < $2 ORDER BY id LIMIT $3",
                before,
                after,
                limit,
            )
            .await?;
        if found.is_empty() {
            return Ok(Batch { done: 0, next });
        }
        // Deliveries first, then their attempts in a statement that sees what any round still
        // recording them committed (see `delete_webhook`); on SQLite the foreign key has
        // already taken the attempts.
        let mut tx = self.writes.begin().await?;
        let mut qb = QueryBuilder::<B>::new("DELETE FROM deliveries WHERE ");
        B::push_in(&mut qb, "id", &found);
        qb.push(" AND status IN ('SUCCEEDED', 'FAILED') AND updated_at < ")
            .push_bind(before)
            .push(" AND (claimed_until IS NULL OR claimed_until <= ")
            .push_bind(now)
            .push(") RETURNING id");
        let gone: Vec<i64> = B::shorten_as(qb.build_query_as::<(i64,)>())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        if !gone.is_empty() {
            let mut qb = QueryBuilder::<B>::new("DELETE FROM delivery_attempts WHERE ");
            B::push_in(&mut qb, "delivery_id", &gone);
            B::shorten(qb.build()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let deleted = u64::try_from(gone.len()).unwrap_or(0);
        Ok(Batch {
            done: deleted,
            next,
        })
    }

    pub(super) async fn prune_events(&self, before: i64, after: i64, limit: i64) -> Result<Batch> {
        let (found, next) = self
            .scan(
                "SELECT id FROM events WHERE id > $1 AND at < $2 ORDER BY id LIMIT $3",
                before,
                after,
                limit,
            )
            .await?;
        if found.is_empty() {
            return Ok(Batch { done: 0, next });
        }
        // No delivery is ever written for an old event (an event's deliveries are written in
        // its own transaction), so one found unreferenced here stays so.
        let mut tx = self.writes.begin().await?;
        let mut qb = QueryBuilder::<B>::new("DELETE FROM events WHERE ");
        B::push_in(&mut qb, "id", &found);
        qb.push(" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)");
        let done = B::shorten(qb.build()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Batch {
            done: B::rows_affected(&done),
            next,
        })
    }

    /// The condition a replay's `filter` sets on `deliveries d`.
    fn push_replay_filter(qb: &mut QueryBuilder<'_, B>, filter: &ReplayFilter) {
        qb.push(" AND d.status = ")
            .push_bind(filter.status.as_str());
        if let Some(since) = filter.since {
            qb.push(" AND d.created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            qb.push(" AND d.created_at < ").push_bind(until);
        }
    }

    pub(super) async fn replay_count(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
    ) -> Result<(i64, i64)> {
        let mut c = self.reader.acquire().await?;
        Self::webhook_of(&mut c, &self.vault, channel_id, webhook_id).await?;
        let mut qb = QueryBuilder::<B>::new(
            "SELECT COUNT(*), COALESCE(MAX(d.id), 0) FROM deliveries d WHERE d.webhook_id = ",
        );
        qb.push_bind(webhook_id);
        Self::push_replay_filter(&mut qb, filter);
        Ok(B::shorten_as(qb.build_query_as::<(i64, i64)>())
            .fetch_one(&mut *c)
            .await?)
    }

    pub(super) async fn replay_batch(
        &self,
        webhook_id: WebhookId,
        filter: &ReplayFilter,
        after: i64,
        up_to: i64,
        now: i64,
        limit: i64,
    ) -> Result<Batch> {
        // Through the (webhook_id, id) index, on a reader.
        let mut qb = QueryBuilder::<B>::new("SELECT d.id FROM deliveries d WHERE d.webhook_id = ");
        qb.push_bind(webhook_id)
            .push(" AND d.id > ")
            .push_bind(after)
            .push(" AND d.id <= ")
            .push_bind(up_to);
        Self::push_replay_filter(&mut qb, filter);
        qb.push(" ORDER BY d.id LIMIT ").push_bind(limit);
        let found: Vec<i64> = B::shorten_as(qb.build_query_as::<(i64,)>())
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let next = next(&found, limit);
        if found.is_empty() {
            return Ok(Batch { done: 0, next });
        }
        let mut tx = self.writes.begin().await?;
        let mut qb = QueryBuilder::<B>::new(
            "UPDATE deliveries SET status = 'PENDING', retries = 0, lease = NULL, claimed_until = NULL, next_attempt_at = ",
        );
        qb.push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            .push(" WHERE ");
        B::push_in(&mut qb, "id", &found);
        qb.push(" AND status = ")
            .push_bind(filter.status.as_str())
            .push(" AND (claimed_until IS NULL OR claimed_until <= ")
            .push_bind(now)
            .push(")");
        let done = B::shorten(qb.build()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Batch {
            done: B::rows_affected(&done),
            next,
        })
    }
}
