//! What operating herald needs of the database: the queue's figures for the metrics.

use super::backend::{Backend, Value};
use super::{QueueStats, Result, SqlStore};
use sqlx::{ColumnIndex, Encode, Executor, Type};

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
}
