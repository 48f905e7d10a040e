//! Queries and the objects they return.

use super::{
    connection, found, internal, page, require_admin, services, viewer, Cursor, UserRole,
    VideoVisibility, ViewerObject, WebhookDeliveryAttemptResult, WebhookDeliveryEvent,
    WebhookDeliveryStatus, WebhookDisabledReason, WebhookEvent,
};
use crate::domain::content::{Channel, Collection, User, Video};
use crate::domain::delivery::{Attempt, Delivery};
use crate::domain::event;
use crate::domain::ids::{self, encode, ChannelId, DeliveryId, Kind, Typed, WebhookId};
use crate::domain::time::from_ms;
use crate::domain::webhook::Webhook;
use crate::store::{DeliveryFilter, WebhookFilter};
use async_graphql::connection::Connection;
use async_graphql::{Context, Interface, Object, Result, ID};
use chrono::{DateTime, Utc};

/// An object with a global ID.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    User(UserObject),
    Channel(ChannelObject),
    Webhook(WebhookObject),
    WebhookDelivery(DeliveryObject),
    Video(VideoObject),
    Collection(CollectionObject),
    Source(super::sources::SourceObject),
}

#[derive(Default)]
pub struct RootQuery;

#[Object]
impl RootQuery {
    /// The user the request's token belongs to.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<ViewerObject> {
        Ok(ViewerObject(viewer(ctx)?.clone()))
    }

    /// The viewer's channel.
    async fn channel(&self, ctx: &Context<'_>) -> Result<ChannelObject> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        svc.store
            .channel(user.channel_id)
            .await
            .map(ChannelObject)
            .map_err(internal)
    }

    /// The object with this global ID, if it exists in the viewer's channel.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        resolve_node(ctx, &id).await
    }

    /// The objects with these global IDs, `null` for each one not found.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_items = 100))] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(resolve_node(ctx, id).await?);
        }
        Ok(out)
    }
}

async fn resolve_node(ctx: &Context<'_>, id: &ID) -> Result<Option<Node>> {
    let (svc, user) = (services(ctx)?, viewer(ctx)?);
    let Some((kind, n)) = ids::decode_any(id) else {
        return Ok(None);
    };
    let ch = user.channel_id;
    let store = &svc.store;
    Ok(match kind {
        Kind::Channel if ChannelId(n) == ch => {
            found(store.channel(ch).await)?.map(|c| Node::Channel(ChannelObject(c)))
        }
        Kind::Channel => None,
        Kind::User => found(store.users(ch, &[n]).await)?
            .and_then(|mut u| u.pop())
            .map(|u| Node::User(UserObject(u))),
        Kind::Webhook => {
            require_admin(user)?;
            found(store.webhook(ch, WebhookId(n)).await)?.map(|w| Node::Webhook(WebhookObject(w)))
        }
        Kind::WebhookDelivery => {
            require_admin(user)?;
            let delivery = store.delivery(ch, DeliveryId(n)).await;
            found(delivery)?.map(|d| Node::WebhookDelivery(DeliveryObject(d)))
        }
        Kind::Video => found(store.video(ch, n).await)?.map(|v| Node::Video(VideoObject(v))),
        Kind::Collection => {
            found(store.collection(ch, n).await)?.map(|c| Node::Collection(CollectionObject(c)))
        }
        Kind::Source => {
            super::sources::require_admin(user)?;
            let source = store.source(ch, crate::domain::ids::SourceId(n)).await;
            found(source)?.map(|s| Node::Source(super::sources::SourceObject::read(s)))
        }
        Kind::SourceRequest => None,
    })
}

pub struct UserObject(pub User);

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> UserRole {
        self.0.role.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
}

pub struct ChannelObject(pub Channel);

#[Object(name = "Channel")]
impl ChannelObject {
    async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn subdomain(&self) -> &str {
        &self.0.subdomain
    }
    /// The channel's public URL (`HERALD_CHANNEL_URL`).
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        let template = ctx.data::<ChannelUrl>()?;
        Ok(template.0.replace("{subdomain}", &self.0.subdomain))
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }

    /// The channel's webhooks (admins only).
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        enabled: Option<bool>,
        event: Option<WebhookEvent>,
    ) -> Result<Connection<Cursor, WebhookObject>> {
        require_admin(viewer(ctx)?)?;
        let (p, want) = page(first, after)?;
        let filter = WebhookFilter {
            enabled,
            event: event.map(Into::into),
        };
        let rows = services(ctx)?
            .store
            .list_webhooks(self.0.id, &filter, p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |w| w.id.get(), WebhookObject))
    }

    async fn videos(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, VideoObject>> {
        let (p, want) = page(first, after)?;
        let rows = services(ctx)?
            .store
            .list_videos(self.0.id, p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |v| v.id, VideoObject))
    }

    async fn collections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, CollectionObject>> {
        let (p, want) = page(first, after)?;
        let rows = services(ctx)?
            .store
            .list_collections(self.0.id, p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |c| c.id, CollectionObject))
    }

    /// The channel's inbound sources (admins only).
    async fn sources(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, super::sources::SourceObject>> {
        super::sources::list(ctx, self.0.id, first, after).await
    }

    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, UserObject>> {
        let (p, want) = page(first, after)?;
        let rows = services(ctx)?
            .store
            .list_users(self.0.id, p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |u| u.id.get(), UserObject))
    }
}

/// The channel URL template, as schema data.
#[derive(Clone)]
pub struct ChannelUrl(pub String);

pub struct WebhookObject(pub Webhook);

#[Object(name = "Webhook")]
impl WebhookObject {
    async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    async fn url(&self) -> &str {
        &self.0.url
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
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<UserObject>> {
        let Some(id) = self.0.creator_id else {
            return Ok(None);
        };
        let mut users = services(ctx)?
            .store
            .users(self.0.channel_id, &[id.get()])
            .await
            .map_err(internal)?;
        Ok(users.pop().map(UserObject))
    }

    /// The delivery log, newest first.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<WebhookDeliveryStatus>,
        #[graphql(validator(max_items = 100))] nonces: Option<Vec<String>>,
    ) -> Result<Connection<Cursor, DeliveryObject>> {
        let (p, want) = page(first, after)?;
        for n in nonces.iter().flatten() {
            crate::domain::plain_text("nonces", "a nonce", n)
                .map_err(|e| async_graphql::Error::new(e.message))?;
        }
        let filter = DeliveryFilter {
            status: status.map(Into::into),
            nonces,
        };
        let rows = services(ctx)?
            .store
            .list_deliveries(self.0.channel_id, self.0.id, &filter, p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |d| d.id.get(), DeliveryObject))
    }
}

pub struct DeliveryObject(pub Delivery);

#[Object(name = "WebhookDelivery")]
impl DeliveryObject {
    async fn id(&self) -> ID {
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
    async fn url(&self) -> &str {
        &self.0.url
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
        Ok(rows.into_iter().map(AttemptObject).collect())
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
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }
    /// The start of the receiver's answer (at most 4096 bytes).
    async fn response_body(&self) -> Option<&str> {
        self.0.response_body.as_deref()
    }
}

pub struct VideoObject(pub Video);

#[Object(name = "Video")]
impl VideoObject {
    async fn id(&self) -> ID {
        ID(encode(Kind::Video, self.0.id))
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    async fn visibility(&self) -> VideoVisibility {
        self.0.visibility.into()
    }
    async fn presented_at(&self) -> Option<DateTime<Utc>> {
        self.0.presented_at.map(from_ms)
    }
    /// Seconds.
    async fn duration(&self) -> Option<f64> {
        self.0.duration
    }
    async fn draft(&self) -> bool {
        self.0.draft
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        let channel = services(ctx)?
            .store
            .channel(self.0.channel_id)
            .await
            .map_err(internal)?;
        let template = ctx.data::<ChannelUrl>()?;
        Ok(format!(
            "{}/video/{}/{}",
            template.0.replace("{subdomain}", &channel.subdomain),
            self.0.id,
            self.0.slug
        ))
    }
    async fn collections(&self, ctx: &Context<'_>) -> Result<Vec<CollectionObject>> {
        let rows = services(ctx)?
            .store
            .collections(self.0.channel_id, &self.0.collection_ids)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CollectionObject).collect())
    }
    async fn tagged_users(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        let rows = services(ctx)?
            .store
            .users(self.0.channel_id, &self.0.tagged_user_ids)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(UserObject).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.updated_at)
    }
}

pub struct CollectionObject(pub Collection);

#[Object(name = "Collection")]
impl CollectionObject {
    async fn id(&self) -> ID {
        ID(encode(Kind::Collection, self.0.id))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn secret(&self) -> bool {
        self.0.secret
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        let channel = services(ctx)?
            .store
            .channel(self.0.channel_id)
            .await
            .map_err(internal)?;
        let template = ctx.data::<ChannelUrl>()?;
        Ok(format!(
            "{}/collection/{}/{}",
            template.0.replace("{subdomain}", &channel.subdomain),
            self.0.id,
            self.0.slug
        ))
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<CollectionObject>> {
        let Some(p) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(
            found(services(ctx)?.store.collection(self.0.channel_id, p).await)?
                .map(CollectionObject),
        )
    }
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<CollectionObject>> {
        let rows = services(ctx)?
            .store
            .child_collections(self.0.channel_id, self.0.id)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CollectionObject).collect())
    }
    async fn admins(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        let rows = services(ctx)?
            .store
            .users(self.0.channel_id, &self.0.admin_ids)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(UserObject).collect())
    }
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        let rows = services(ctx)?
            .store
            .users(self.0.channel_id, &self.0.member_ids)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(UserObject).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
}
