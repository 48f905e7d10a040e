//! The query root, the `Node` interface and the channel.

use super::connections::{connection, paged, Cursor, Total, WebhooksOrder, Window};
use super::deliveries::{DeliveryObject, WebhookObject};
use super::scalars::Url;
use super::social::{CommentObject, GroupObject, HighlightObject};
use super::users::{UnknownUser, UserObject, ViewerInterface};
use super::videos::{CollectionObject, VideoObject};
use super::{
    found, internal, invited_or_not, or_null, require_admin, services, viewer, WebhookEvent,
};
use crate::domain::content::Channel;
use crate::domain::ids::{self, ChannelId, DeliveryId, Kind, Typed, UserId, WebhookId};
use crate::domain::time::from_ms;
use crate::store::{Listing, Order, WebhookFilter};
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
    Group(GroupObject),
    Comment(CommentObject),
    Highlight(HighlightObject),
    UnknownUser(UnknownUser),
    Source(super::sources::SourceObject),
}

#[derive(Default)]
pub struct RootQuery;

#[Object]
impl RootQuery {
    /// The user the request's token belongs to.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<ViewerInterface> {
        Ok(ViewerInterface::of(&invited_or_not(ctx)?.user))
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
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Option<Node> {
        or_null(ctx, resolve_node(ctx, &id).await)
    }

    /// The objects with these global IDs, `null` for each one not found.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_items = 100))] ids: Vec<ID>,
    ) -> Vec<Option<Node>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(or_null(ctx, resolve_node(ctx, id).await));
        }
        out
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
        Kind::Group => found(store.group(ch, n).await)?.map(|g| Node::Group(GroupObject(g))),
        Kind::Comment => {
            found(store.comment(ch, n).await)?.map(|c| Node::Comment(CommentObject(c)))
        }
        Kind::Highlight => {
            found(store.highlight(ch, n).await)?.map(|h| Node::Highlight(HighlightObject(h)))
        }
        Kind::Source => {
            super::sources::require_admin(user)?;
            let source = store.source(ch, crate::domain::ids::SourceId(n)).await;
            found(source)?.map(|s| Node::Source(super::sources::SourceObject::read(s)))
        }
        Kind::SourceRequest => None,
    })
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
    /// The URL subdomain of the channel.
    async fn subdomain(&self) -> &str {
        &self.0.subdomain
    }
    /// The channel's public URL (`HERALD_CHANNEL_URL`).
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        let template = ctx.data::<ChannelUrl>()?;
        Ok(Url(template.0.replace("{subdomain}", &self.0.subdomain)))
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// herald has no channel images: always `null`.
    async fn header_image_url(&self) -> Option<Url> {
        None
    }
    /// herald has no channel images: always `null`.
    async fn logo_url(&self) -> Option<Url> {
        None
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    /// A channel does not change once created: its creation time.
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }

    /// The configured webhooks on this channel, oldest first unless `orderBy` says otherwise.
    /// Only channel admins can see them: for anyone else this is `null`, with an error.
    #[allow(clippy::too_many_arguments)]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        enabled: Option<bool>,
        event: Option<WebhookEvent>,
        #[graphql(validator(max_items = 100))] ids: Option<Vec<ID>>,
        order_by: Option<WebhooksOrder>,
    ) -> Option<Connection<Cursor, WebhookObject, Total>> {
        let answer = async {
            require_admin(viewer(ctx)?)?;
            let window = Window::new(first, after, last, before);
            let page = window.page(order_by.map_or(Order::Ascending, |o| o.direction.into()))?;
            // An ID of another type names no webhook.
            let ids = ids.map(|ids| {
                ids.iter()
                    .filter_map(|id| WebhookId::decode(id))
                    .map(WebhookId::get)
                    .collect()
            });
            let filter = WebhookFilter {
                enabled,
                event: event.map(Into::into),
                ids,
            };
            let rows = services(ctx)?
                .store
                .list_webhooks(self.0.id, &filter, page.0)
                .await
                .map_err(internal)?;
            let total = Total::of(self.0.id, Listing::Webhooks(filter));
            Ok(Some(connection(
                rows,
                page,
                total,
                |w| w.id.get(),
                WebhookObject,
            )))
        };
        or_null(ctx, answer.await)
    }

    async fn videos(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<Cursor, VideoObject, Total>> {
        let (store, id) = (&services(ctx)?.store, self.0.id);
        let window = Window::new(first, after, last, before);
        let total = Total::of(id, Listing::Videos);
        let read = |page| store.list_videos(id, page);
        paged(window, Order::Ascending, total, read, |v| v.id, VideoObject).await
    }

    async fn collections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<Cursor, CollectionObject, Total>> {
        let (store, id) = (&services(ctx)?.store, self.0.id);
        let window = Window::new(first, after, last, before);
        let total = Total::of(id, Listing::Collections);
        let read = |page| store.list_collections(id, page);
        paged(
            window,
            Order::Ascending,
            total,
            read,
            |c| c.id,
            CollectionObject,
        )
        .await
    }

    /// The channel's user groups, oldest first.
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<Cursor, GroupObject, Total>> {
        let (store, id) = (&services(ctx)?.store, self.0.id);
        let window = Window::new(first, after, last, before);
        let total = Total::of(id, Listing::Groups);
        let read = |page| store.list_groups(id, page);
        paged(window, Order::Ascending, total, read, |g| g.id, GroupObject).await
    }

    /// A user of this channel.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<UserObject>> {
        let Some(id) = UserId::decode(&id) else {
            return Ok(None);
        };
        let mut users = services(ctx)?
            .store
            .users(self.0.id, &[id.get()])
            .await
            .map_err(internal)?;
        Ok(users.pop().map(UserObject))
    }

    /// The users of this channel, oldest first.
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<Cursor, UserObject, Total>> {
        let (store, id) = (&services(ctx)?.store, self.0.id);
        let window = Window::new(first, after, last, before);
        let total = Total::of(id, Listing::Users);
        let read = |page| store.list_users(id, page);
        paged(
            window,
            Order::Ascending,
            total,
            read,
            |u| u.id.get(),
            UserObject,
        )
        .await
    }

    /// The same as `users` (herald's earlier name).
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
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<Cursor, UserObject, Total>> {
        self.users(ctx, first, after, last, before).await
    }
}

/// The channel URL template, as schema data.
#[derive(Clone)]
pub struct ChannelUrl(pub String);
