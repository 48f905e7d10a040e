//! `herald listen` webhooks: attached to a session of the CLI, and ended once their session is
//! gone for good.

use super::backend::{Backend, Begin, Commit, Value};
use super::links::CHUNK;
use super::{Result, SqlStore, StoreError};
use crate::domain::delivery::AttemptResult;
use crate::domain::ids::{ChannelId, DeliveryId, WebhookId};
use crate::domain::webhook::{DisabledReason, Webhook};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

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
    pub(super) async fn attach_listener(
        &self,
        channel_id: ChannelId,
        id: WebhookId,
        session: &str,
        now: i64,
    ) -> Result<Webhook> {
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET listener_session = $1, enabled = TRUE, disabled_reason = NULL, \
             failing_since = NULL, updated_at = $2 WHERE channel_id = $3 AND id = $4 AND listener = TRUE",
        )
        .bind(session)
        .bind(now)
        .bind(channel_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if B::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound);
        }
        let hook = Self::webhook_of(&mut tx, &self.vault, channel_id, id).await?;
        tx.commit().await?;
        Ok(hook)
    }

    pub(super) async fn end_listener(
        &self,
        id: WebhookId,
        session: &str,
        now: i64,
        message: &str,
    ) -> Result<u64> {
        let mut tx = self.writes.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, listener_session = NULL, \
             updated_at = $2 WHERE id = $3 AND listener = TRUE AND listener_session = $4",
        )
        .bind(DisabledReason::Failing.as_str())
        .bind(now)
        .bind(id)
        .bind(session)
        .execute(&mut *tx)
        .await?;
        if B::rows_affected(&done) == 0 {
            tx.commit().await?;
            return Ok(0);
        }
        // The deliveries are locked by their update before their attempts are written (on
        // PostgreSQL no foreign key ties an attempt to its delivery: see `write_records`).
        let ended: Vec<(DeliveryId, String)> = sqlx::query_as::<B, (DeliveryId, String)>(
            "UPDATE deliveries SET status = 'FAILED', lease = NULL, claimed_until = NULL, \
             next_attempt_at = $1, updated_at = $1 \
             WHERE webhook_id = $2 AND status IN ('PENDING', 'RETRYING') RETURNING id, url",
        )
        .bind(now)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for chunk in ended.chunks(CHUNK) {
            let mut qb = QueryBuilder::<B>::new(
                "INSERT INTO delivery_attempts (delivery_id, at, url, result, message, duration_ms) ",
            );
            qb.push_values(chunk, |mut b, (delivery, url)| {
                b.push_bind(*delivery)
                    .push_bind(now)
                    .push_bind(url.clone())
                    .push_bind(AttemptResult::ConnectionError.as_str())
                    .push_bind(message.to_owned())
                    .push_bind(0_i64);
            });
            B::shorten(qb.build()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX))
    }
}
