//! Webhooks as the API shows them, with their delivery log: deliveries and their attempts.

use super::connections::{paged, Cursor, Total, WebhookDeliveriesOrder, Window};
use super::scalars::Url;
use super::users::Actor;
use super::{
    internal, services, WebhookDeliveryAttemptResult, WebhookDeliveryEvent, WebhookDeliveryStatus,
    WebhookDisabledReason, WebhookEvent,
};
use crate::domain::delivery::{Attempt, Delivery};
use crate::domain::event;
use crate::domain::ids::Typed;
use crate::domain::time::from_ms;
use crate::domain::webhook::Webhook;
use crate::store::{DeliveryFilter, Listing, Order};
use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

/// A webhook configured for the channel.
pub struct WebhookObject(pub Webhook);

#[Object(name = "Webhook")]
impl WebhookObject {
    pub async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    /// The URL to deliver the webhook to.
    async fn url(&self) -> Url {
        Url(self.0.url.clone())
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn disabled_reason(&self) -> Option<WebhookDisabledReason> {
        self.0.disabled_reason.map(Into::into)
    }
    /// Re-attempts after a failed attempt.
    async fn retries(&self) -> i64 {
        self.0.retries
    }
    /// While the webhook's receiver keeps failing, herald holds its deliveries back until this
    /// time (then tries one); `null` when it does not. A success (from a delivery, `testWebhook`
    /// or `redeliverWebhookDelivery`) or a new URL ends it. Kept by each herald process for
    /// itself.
    async fn paused_until(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(services(ctx)?.outbox.paused_until(self.0.id).map(from_ms))
    }
    async fn events(&self) -> Vec<WebhookEvent> {
        self.0.events.iter().map(|e| (*e).into()).collect()
    }
    /// The event names it takes among those of `events` (names, or prefixes ending in `*`);
    /// `null` when it takes them all.
    async fn event_types(&self) -> Option<&[String]> {
        self.0.event_types.as_ref().map(|t| t.as_slice())
    }
    /// How many secrets sign each delivery (the secrets themselves are never readable).
    async fn secret_count(&self) -> usize {
        self.0.secrets.len()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.updated_at)
    }
    /// The actor who created this webhook: an `UnknownUser` when that user is gone.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Actor> {
        Actor::load(ctx, self.0.channel_id, self.0.creator_id).await
    }

    /// The delivery log, newest first unless `orderBy` says otherwise.
    #[allow(clippy::too_many_arguments)]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        status: Option<WebhookDeliveryStatus>,
        #[graphql(validator(max_items = 100))] nonces: Option<Vec<String>>,
        order_by: Option<WebhookDeliveriesOrder>,
    ) -> Result<Connection<Cursor, DeliveryObject, Total>> {
        let window = Window::new(first, after, last, before);
        for n in nonces.iter().flatten() {
            crate::domain::plain_text("nonces", "a nonce", n)
                .map_err(|e| async_graphql::Error::new(e.message))?;
        }
        let filter = DeliveryFilter {
            status: status.map(Into::into),
            nonces,
            event: None,
        };
        let (store, channel, webhook) = (&services(ctx)?.store, self.0.channel_id, self.0.id);
        let order = order_by.map_or(Order::Descending, |o| o.direction.into());
        let total = Total::of(channel, Listing::Deliveries(webhook, filter.clone()));
        let read = |page| store.list_deliveries(channel, webhook, &filter, page);
        paged(window, order, total, read, |d| d.id.get(), DeliveryObject).await
    }
}

pub struct DeliveryObject(pub Delivery);

#[Object(name = "WebhookDelivery")]
impl DeliveryObject {
    pub async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    /// Sent as `Rewatch-Hook-Delivery-Nonce` and `webhook-id`; the same for every attempt.
    async fn nonce(&self) -> &str {
        &self.0.nonce
    }
    async fn event(&self) -> WebhookDeliveryEvent {
        (&self.0.event).into()
    }
    /// The event's name as sent in `Rewatch-Hook-Delivery-Event` (`video.updated`,
    /// `plex.media.scrobble`).
    async fn event_name(&self) -> &str {
        self.0.event.as_str()
    }
    async fn status(&self) -> WebhookDeliveryStatus {
        self.0.status.into()
    }
    /// Re-attempts made so far: every attempt in `attempts` but the first.
    async fn retries(&self) -> i64 {
        self.0.retries
    }
    /// Where the latest attempt went (before any, where the first will go).
    async fn url(&self) -> Url {
        Url(self.0.url.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    /// When the next attempt is due, while the delivery is `PENDING` or `RETRYING`.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        use crate::domain::delivery::DeliveryStatus::{Pending, Retrying};
        matches!(self.0.status, Pending | Retrying).then(|| from_ms(self.0.next_attempt_at))
    }
    /// The body exactly as sent (the same bytes for every attempt).
    async fn body(&self, ctx: &Context<'_>) -> Result<String> {
        let data = services(ctx)?
            .store
            .event_data(self.0.event_id)
            .await
            .map_err(internal)?;
        Ok(event::body(
            &self.0.webhook_id.global(),
            &self.0.nonce,
            self.0.event_at,
            self.0.event.as_str(),
            &data,
        ))
    }
    /// Every attempt, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> Result<Vec<AttemptObject>> {
        let rows = services(ctx)?
            .store
            .attempts(self.0.id)
            .await
            .map_err(internal)?;
        // Attempts recorded after the delivery was read are left for the next read.
        let known = usize::try_from(self.0.attempts).unwrap_or(0);
        Ok(rows.into_iter().take(known).map(AttemptObject).collect())
    }
}

pub struct AttemptObject(pub Attempt);

#[Object(name = "WebhookDeliveryAttempt")]
impl AttemptObject {
    async fn at(&self) -> DateTime<Utc> {
        from_ms(self.0.at)
    }
    /// The receiver's HTTP status, when it answered.
    async fn code(&self) -> Option<i64> {
        self.0.code
    }
    /// What went wrong, when something did.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    async fn result(&self) -> WebhookDeliveryAttemptResult {
        self.0.result.into()
    }
    async fn url(&self) -> Url {
        Url(self.0.url.clone())
    }
    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }
    /// The start of the receiver's answer (at most 4096 bytes).
    async fn response_body(&self) -> Option<&str> {
        self.0.response_body.as_deref()
    }
}
