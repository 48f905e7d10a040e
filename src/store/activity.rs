//! How each webhook's deliveries have fared lately: its attempts over a recent window, tallied
//! for the dashboard's list of webhooks.

use super::backend::{Backend, Value};
use super::rows::AttemptRow;
use super::{Result, SqlStore};
use crate::domain::delivery::Attempt;
use crate::domain::ids::{ChannelId, WebhookId};
use sqlx::{ColumnIndex, Encode, Executor, FromRow, Type};

/// A webhook's attempts since a time, and of those, since a later one.
#[derive(Debug, Clone)]
pub struct Activity {
    pub webhook: WebhookId,
    /// Attempts in the whole window.
    pub window: Tally,
    /// Attempts in its recent part.
    pub recent: Tally,
    /// The latest attempt in the window.
    pub last: Attempt,
}

/// How many attempts were made, and how many of them succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempts: i64,
    pub succeeded: i64,
}

#[derive(FromRow)]
struct ActivityRow {
    webhook_id: WebhookId,
    attempts: i64,
    succeeded: i64,
    recent_attempts: i64,
    recent_succeeded: i64,
    #[sqlx(flatten)]
    last: AttemptRow,
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
    /// [`super::Store::webhook_activity`]. The attempts are found by time
    /// (`delivery_attempts_by_time`), so the cost follows the window, not the log's length.
    pub(super) async fn webhook_activity(
        &self,
        channel_id: ChannelId,
        since: i64,
        recent_since: i64,
    ) -> Result<Vec<Activity>> {
        let rows = sqlx::query_as::<B, ActivityRow>(
            "WITH tally AS (\
               SELECT d.webhook_id, COUNT(*) AS attempts, \
               CAST(SUM(CASE WHEN a.result = 'SUCCESS' THEN 1 ELSE 0 END) AS BIGINT) AS succeeded, \
               CAST(SUM(CASE WHEN a.at >= $3 THEN 1 ELSE 0 END) AS BIGINT) AS recent_attempts, \
               CAST(SUM(CASE WHEN a.at >= $3 AND a.result = 'SUCCESS' THEN 1 ELSE 0 END) AS BIGINT) \
                 AS recent_succeeded, \
               MAX(a.id) AS last_id \
               FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
               JOIN webhooks w ON w.id = d.webhook_id \
               WHERE w.channel_id = $1 AND a.at >= $2 GROUP BY d.webhook_id) \
             SELECT t.webhook_id, t.attempts, t.succeeded, t.recent_attempts, t.recent_succeeded, \
             a.delivery_id, a.at, a.url, a.code, a.result, a.message, a.duration_ms, a.response_body \
             FROM tally t JOIN delivery_attempts a ON a.id = t.last_id",
        )
        .bind(channel_id)
        .bind(since)
        .bind(recent_since)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Activity {
                    webhook: r.webhook_id,
                    window: Tally {
                        attempts: r.attempts,
                        succeeded: r.succeeded,
                    },
                    recent: Tally {
                        attempts: r.recent_attempts,
                        succeeded: r.recent_succeeded,
                    },
                    last: Attempt::try_from(r.last)?,
                })
            })
            .collect()
    }
}
