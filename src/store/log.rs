//! The delivery log, as users read it: deliveries, their attempts, their events' payloads.

use super::backend::{Backend, Value};
use super::pages::{in_order, push_page};
use super::rows::{AttemptRow, DeliveryRow, DELIVERY_COLUMNS};
use super::{DeliveryFilter, Page, Result, SqlStore, StoreError};
use crate::domain::delivery::{Attempt, Delivery};
use crate::domain::ids::{ChannelId, DeliveryId, EventId, WebhookId};
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

/// Pushes ` JOIN … WHERE …` after `FROM deliveries d …`: the deliveries of the channel's webhook
/// `webhook_id` that pass `filter`.
pub(super) fn push_delivery_filter<B: Backend>(
    qb: &mut QueryBuilder<'_, B>,
    channel_id: ChannelId,
    webhook_id: WebhookId,
    filter: &DeliveryFilter,
) where
    i64: Value<B>,
    String: Value<B>,
{
    qb.push(" JOIN webhooks w ON w.id = d.webhook_id WHERE w.channel_id = ")
        .push_bind(channel_id.get())
        .push(" AND d.webhook_id = ")
        .push_bind(webhook_id.get());
    if let Some(status) = filter.status {
        qb.push(" AND d.status = ")
            .push_bind(status.as_str().to_owned());
    }
    if let Some(event) = &filter.event {
        qb.push(" AND EXISTS (SELECT 1 FROM events ev WHERE ev.id = d.event_id AND ev.name = ")
            .push_bind(event.clone())
            .push(")");
    }
    if let Some(nonces) = &filter.nonces {
        if nonces.is_empty() {
            qb.push(" AND FALSE");
            return;
        }
        qb.push(" AND d.nonce IN (");
        let mut sep = qb.separated(", ");
        for n in nonces {
            sep.push_bind(n.clone());
        }
        sep.push_unseparated(")");
    }
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
    pub(super) async fn list_deliveries(
        &self,
        channel_id: ChannelId,
        webhook_id: WebhookId,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Vec<Delivery>> {
        let mut qb = QueryBuilder::<B>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
        ));
        push_delivery_filter(&mut qb, channel_id, webhook_id, filter);
        push_page(&mut qb, "d.id", page);
        let rows: Vec<DeliveryRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&self.reader)
            .await?;
        in_order(rows, page)
            .into_iter()
            .map(Delivery::try_from)
            .collect()
    }

    pub(super) async fn delivery(&self, channel_id: ChannelId, id: DeliveryId) -> Result<Delivery> {
        sqlx::query_as::<B, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN webhooks w ON w.id = d.webhook_id WHERE w.channel_id = $1 AND d.id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
    }

    pub(super) async fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<Attempt>> {
        let rows = sqlx::query_as::<B, AttemptRow>(
            "SELECT delivery_id, at, url, code, result, message, duration_ms, response_body \
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(Attempt::try_from).collect()
    }

    /// The frozen payload part of an event.
    pub(super) async fn event_data(&self, event_id: EventId) -> Result<String> {
        sqlx::query_scalar::<B, String>("SELECT data FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
