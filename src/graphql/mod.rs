//! The GraphQL API (SPEC §3): one module per domain, merged into the roots.
//!
//! [`schema`] needs no runtime data, so `main`, the server and the schema-file test build the
//! same schema. Resolvers fetch [`Services`] and the viewer from the context, parse input into
//! domain types, read from the store or make changes through the [`Outbox`], and convert the
//! answer. Input the user can fix is reported in the payload's `errors`; internal failures are
//! logged once, whole, and shown as an opaque message.

/// Declares a mutation's payload: `clientMutationId`, `viewer`, what the mutation gives back,
/// and `errors`.
macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $(#[$fm:meta])* $field:ident: $ty:ty }) => {
        $(#[$m])*
        #[derive(async_graphql::SimpleObject)]
        pub struct $name {
            pub client_mutation_id: Option<String>,
            pub viewer: ViewerInterface,
            $(#[$fm])*
            pub $field: $ty,
            pub errors: Vec<UserError>,
        }
    };
}

mod comments;
mod connections;
mod content;
mod deliveries;
mod errors;
mod groups;
pub mod limits;
mod listen;
mod members;
mod objects;
mod scalars;
mod social;
mod users;
mod video_details;
mod videos;
mod webhooks;

use crate::domain::content::{Principals, Role, User, Video, Visibility};
use crate::domain::ids::{self, Kind, Typed};
use crate::domain::members::MemberStatus;
use crate::domain::net::NetPolicy;
use crate::domain::Invalid;
use crate::outbox::Outbox;
use crate::store::{Actor, SharedStore, StoreError, Unavailable};
use async_graphql::{
    Context, Enum, Error, ErrorExtensions, MergedObject, Schema, SchemaBuilder, ID,
};
use errors::{made, outcome, Problems, UserError};
use scalars::Url;
use users::ViewerInterface;

pub use objects::{ChannelUrl, Node};
pub use sources::PublicUrl;

pub type HeraldSchema = Schema<Query, Mutation, listen::Subscription>;

/// Query nesting deeper than this is refused.
pub const MAX_DEPTH: usize = 16;
/// Queries costing more than this (one per field) are refused.
pub const MAX_COMPLEXITY: usize = 5000;
/// The most items one connection page returns; the default is [`DEFAULT_PAGE`].
pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

/// What resolvers need, shared by all requests: the store to read, the outbox to change.
#[derive(Clone)]
pub struct Services {
    pub store: SharedStore,
    pub net: NetPolicy,
    pub outbox: Outbox,
}

#[derive(MergedObject, Default)]
pub struct Query(objects::RootQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(
    webhooks::WebhookMutations,
    content::ContentMutations,
    video_details::VideoDetailsMutations,
    members::MemberMutations,
    groups::GroupMutations,
    comments::CommentMutations,
    listen::ListenMutations,
    sources::SourceMutations,
);

/// The schema with its limits, without runtime data.
pub fn schema() -> SchemaBuilder<Query, Mutation, listen::Subscription> {
    Schema::build(Query::default(), Mutation::default(), listen::Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(limits::MAX_NESTING)
        .limit_directives(16)
        .extension(limits::Limits::default())
        // Rewatch's schema declares these; no herald field returns them yet.
        .register_output_type::<scalars::BigInt>()
        .register_output_type::<scalars::Html>()
        .register_output_type::<users::Subscribable>()
}

/// The SDL of the served schema (what `schema.graphql` holds).
pub fn sdl() -> String {
    schema().finish().sdl()
}

/// The authenticated user of this request, with the user's channel.
#[derive(Clone)]
pub struct Viewer(pub crate::store::Authenticated);

fn services<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Services> {
    ctx.data::<Services>()
}

/// The viewer, as a user.
///
/// A user invited and not joined yet may read `viewer` and accept the invitation
/// (`acceptInvitation`), and nothing else: everything else gets an error saying so.
fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a User> {
    actor(ctx).map(|a| &a.user)
}

/// The viewer as the actor of a change (see [`viewer`] for invited users).
fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    let actor = invited_or_not(ctx)?;
    if actor.user.status == MemberStatus::Invited {
        return Err(Error::new(NOT_JOINED).extend_with(|_, e| e.set("code", "FORBIDDEN")));
    }
    Ok(actor)
}

/// The viewer, also one invited and not joined yet.
fn invited_or_not<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    ctx.data::<Viewer>().map(|v| &v.0)
}

const NOT_JOINED: &str =
    "You are invited to this channel: accept the invitation first (acceptInvitation)";

/// A page of the viewer's channel on the web: `<channel URL>/<path>`. (Every object a request
/// reads is of the viewer's channel.)
fn web_url(ctx: &Context<'_>, path: &str) -> async_graphql::Result<Url> {
    let template = ctx.data::<ChannelUrl>()?;
    let subdomain = &ctx.data::<Viewer>()?.0.channel.subdomain;
    Ok(Url(format!(
        "{}/{path}",
        template.0.replace("{subdomain}", subdomain)
    )))
}

pub(crate) const ADMIN_ONLY: &str = "Only channel admins may view or modify webhooks";

fn require_admin(user: &User) -> async_graphql::Result<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::new(ADMIN_ONLY).extend_with(|_, e| e.set("code", "FORBIDDEN")))
    }
}

/// What `parsed` gives when `user` is an admin; anyone else gets a `PermissionError` saying
/// `message`.
fn admins_only<T>(
    user: &User,
    message: &str,
    parsed: impl FnOnce() -> Result<T, Vec<UserError>>,
) -> Result<T, Vec<UserError>> {
    if user.role == Role::Admin {
        parsed()
    } else {
        Err(vec![UserError::forbidden(message)])
    }
}

/// The answer of a nullable field: on an error, `null`, with the error reported at the field,
/// as GraphQL asks. (async-graphql would leave a failed field out of its object, so a member
/// asking for `channel { name webhooks { … } }` would get a channel without `webhooks`.)
fn or_null<T>(ctx: &Context<'_>, answer: async_graphql::Result<Option<T>>) -> Option<T> {
    answer.unwrap_or_else(|e| {
        ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
        None
    })
}

/// A failure the user cannot fix: logged whole, shown as an opaque message, unless the cause
/// is the database's state (down, locked, full), which the client is told, with its code.
fn internal(e: impl Failure) -> Error {
    match e.unavailable() {
        Some(cause) => {
            tracing::warn!(error = %e, "request failed: {}", cause.message());
            unavailable(cause)
        }
        None => {
            tracing::error!(error = %e, "request failed");
            Error::new("Internal error").extend_with(|_, e| e.set("code", "INTERNAL"))
        }
    }
}

/// The GraphQL error for a database that cannot serve.
pub fn unavailable(cause: Unavailable) -> Error {
    Error::new(cause.message()).extend_with(|_, e| e.set("code", cause.code()))
}

/// An error that reaches a resolver from below: what it says of the database, if anything.
trait Failure: std::fmt::Display {
    fn unavailable(&self) -> Option<Unavailable>;
}

impl Failure for StoreError {
    fn unavailable(&self) -> Option<Unavailable> {
        StoreError::unavailable(self)
    }
}

impl Failure for crate::outbox::Error {
    fn unavailable(&self) -> Option<Unavailable> {
        match self {
            crate::outbox::Error::Internal(e) => e.unavailable(),
            _ => None,
        }
    }
}

/// A store error for a query: not found becomes `None`.
fn found<T>(r: Result<T, StoreError>) -> async_graphql::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

/// Decodes an input ID of type `kind`; another type or garbage is "No object found".
fn input_id(kind: Kind, id: &ID, field: &'static str) -> Result<i64, Invalid> {
    ids::decode(kind, id).ok_or_else(|| Invalid::missing(field, "No object found"))
}

/// Decodes an input ID of a typed row; another type or garbage is "No object found".
fn input_row<T: Typed>(id: &ID, field: &'static str) -> Result<T, Invalid> {
    T::decode(id).ok_or_else(|| Invalid::missing(field, "No object found"))
}

/// Decodes a list of input IDs, each of one of `kinds`, repeats dropped.
fn input_refs(
    kinds: &[Kind],
    list: &[ID],
    field: &'static str,
) -> Result<Vec<(Kind, i64)>, Invalid> {
    if list.len() > crate::domain::content::MAX_IDS {
        return Err(Invalid::new(
            field,
            format!("give at most {} IDs", crate::domain::content::MAX_IDS),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for id in list {
        let found = ids::decode_any(id).filter(|(kind, _)| kinds.contains(kind));
        let found = found.ok_or_else(|| {
            Invalid::missing(field, format!("No object found for ID {}", id.as_str()))
        })?;
        if !out.contains(&found) {
            out.push(found);
        }
    }
    Ok(out)
}

fn input_ids(kind: Kind, list: &[ID], field: &'static str) -> Result<Vec<i64>, Invalid> {
    let refs = input_refs(&[kind], list, field)?;
    Ok(refs.into_iter().map(|(_, n)| n).collect())
}

/// A collection's admins or members as an input names them: users and groups, by ID.
fn input_principals(list: &[ID], field: &'static str) -> Result<Principals, Invalid> {
    let mut out = Principals::default();
    for (kind, n) in input_refs(&[Kind::User, Kind::Group], list, field)? {
        match kind {
            Kind::Group => out.groups.push(n),
            _ => out.users.push(n),
        }
    }
    Ok(out)
}

macro_rules! graphql_enum {
    ($(#[$m:meta])* $name:ident : $domain:ty { $($(#[$vm:meta])* $variant:ident => $dv:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                match v { $(<$domain>::$dv => $name::$variant),+ }
            }
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => <$domain>::$dv),+ }
            }
        }
    };
}

// After `graphql_enum!`, which it uses.
mod sources;

graphql_enum!(
    /// What a webhook subscribes to.
    WebhookEvent: crate::domain::webhook::WebhookEvent {
        /// A video was added to the channel from draft state, its details were updated, or it
        /// was deleted.
        Video => Video,
        /// A collection was created, updated, or deleted.
        Collection => Collection,
        /// A member was invited to the channel, joined, was deactivated, or got another role.
        Member => Member,
        /// A group was created, updated, or deleted.
        Group => Group,
        /// A comment was created, or removed.
        Comment => Comment,
        /// A highlight was created, or deleted.
        Highlight => Highlight,
        /// Every event relayed from the channel's inbound sources (`plex.media.scrobble`, …).
        Source => Source,
        /// herald disabled one of the channel's webhooks (`webhook.disabled`). Opt-in: only
        /// webhooks that name it get it.
        Webhook => Webhook,
    }
);
/// What a delivery carries.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookDeliveryEvent {
    VideoAddedToChannel,
    VideoUpdated,
    VideoDeleted,
    CollectionCreated,
    CollectionUpdated,
    CollectionDeleted,
    MemberInvited,
    MemberJoined,
    MemberDeactivated,
    MemberUpdated,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    CommentCreated,
    CommentRemoved,
    HighlightCreated,
    HighlightDeleted,
    Ping,
    WebhookDisabled,
    /// An event relayed from an inbound source: its name is in `eventName`.
    Source,
}

impl From<&crate::domain::event::EventName> for WebhookDeliveryEvent {
    fn from(v: &crate::domain::event::EventName) -> Self {
        use crate::domain::event::EventName as E;
        match v {
            E::VideoAddedToChannel => Self::VideoAddedToChannel,
            E::VideoUpdated => Self::VideoUpdated,
            E::VideoDeleted => Self::VideoDeleted,
            E::CollectionCreated => Self::CollectionCreated,
            E::CollectionUpdated => Self::CollectionUpdated,
            E::CollectionDeleted => Self::CollectionDeleted,
            E::MemberInvited => Self::MemberInvited,
            E::MemberJoined => Self::MemberJoined,
            E::MemberDeactivated => Self::MemberDeactivated,
            E::MemberUpdated => Self::MemberUpdated,
            E::GroupCreated => Self::GroupCreated,
            E::GroupUpdated => Self::GroupUpdated,
            E::GroupDeleted => Self::GroupDeleted,
            E::CommentCreated => Self::CommentCreated,
            E::CommentRemoved => Self::CommentRemoved,
            E::HighlightCreated => Self::HighlightCreated,
            E::HighlightDeleted => Self::HighlightDeleted,
            E::Ping => Self::Ping,
            E::WebhookDisabled => Self::WebhookDisabled,
            E::Relayed(_) => Self::Source,
        }
    }
}
graphql_enum!(
    WebhookDeliveryStatus: crate::domain::delivery::DeliveryStatus {
        Pending => Pending, Retrying => Retrying, Failed => Failed, Succeeded => Succeeded
    }
);
graphql_enum!(
    WebhookDeliveryAttemptResult: crate::domain::delivery::AttemptResult {
        Success => Success,
        RequestFailure => RequestFailure,
        RequestTimeout => RequestTimeout,
        ConnectionError => ConnectionError,
        Unknown => Unknown,
    }
);
graphql_enum!(
    WebhookDisabledReason: crate::domain::webhook::DisabledReason {
        /// The webhook was disabled automatically due to an account status change (Rewatch's;
        /// herald never sets it).
        AccountStatus => AccountStatus,
        /// The webhook was disabled automatically: its deliveries failed for
        /// `HERALD_DISABLE_AFTER_SECS`, or its receiver answered `410 Gone`.
        Failing => Failing,
        /// The webhook was manually disabled by a channel admin.
        Manual => Manual,
    }
);

/// Who may watch a video: `DRAFT` while it is a draft, then one of the others.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum VideoVisibility {
    /// Not on the channel yet (see `publishVideo`).
    Draft,
    /// Anyone with the video's link.
    LinkOnly,
    OnChannel,
    Private,
}

impl VideoVisibility {
    fn of(video: &Video) -> Self {
        match (video.draft, video.visibility) {
            (true, _) => VideoVisibility::Draft,
            (false, Visibility::LinkOnly) => VideoVisibility::LinkOnly,
            (false, Visibility::OnChannel) => VideoVisibility::OnChannel,
            (false, Visibility::Private) => VideoVisibility::Private,
        }
    }

    /// The visibility a video keeps (once on the channel); `None` for `DRAFT`, a state rather
    /// than a visibility.
    fn kept(self) -> Option<Visibility> {
        match self {
            VideoVisibility::Draft => None,
            VideoVisibility::LinkOnly => Some(Visibility::LinkOnly),
            VideoVisibility::OnChannel => Some(Visibility::OnChannel),
            VideoVisibility::Private => Some(Visibility::Private),
        }
    }
}
graphql_enum!(
    UserRole: crate::domain::content::Role { Admin => Admin, Member => Member }
);
