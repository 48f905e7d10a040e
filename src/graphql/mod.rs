//! The GraphQL API (SPEC §3): one module per domain, merged into the roots.
//!
//! [`schema`] needs no runtime data, so `main`, the server and the schema-file test build the
//! same schema. Resolvers fetch [`Services`] and the viewer from the context, parse input into
//! domain types, read from the store or make changes through the [`Outbox`], and convert the
//! answer. Input the user can fix is reported in the payload's `errors`; internal failures are
//! logged once, whole, and shown as an opaque message.

mod content;
pub mod limits;
mod listen;
mod objects;
mod webhooks;

use crate::domain::content::{Role, User};
use crate::domain::ids::{self, Kind, Typed};
use crate::domain::net::NetPolicy;
use crate::domain::Invalid;
use crate::outbox::{self, Outbox};
use crate::store::{Actor, Page, SharedStore, StoreError};
use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{
    Context, Enum, Error, ErrorExtensions, MergedObject, Object, OutputType, Schema, SchemaBuilder,
    SimpleObject, ID,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

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

fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a User> {
    ctx.data::<Viewer>().map(|v| &v.0.user)
}

/// The viewer as the actor of a change.
fn actor<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Actor> {
    ctx.data::<Viewer>().map(|v| &v.0)
}

pub(crate) const ADMIN_ONLY: &str = "Only channel admins may view or modify webhooks";

fn require_admin(user: &User) -> async_graphql::Result<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::new(ADMIN_ONLY).extend_with(|_, e| e.set("code", "FORBIDDEN")))
    }
}

/// An internal failure: logged whole, shown as an opaque message.
fn internal(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "request failed");
    Error::new("Internal error").extend_with(|_, e| e.set("code", "INTERNAL"))
}

/// A store error for a query: not found becomes `None`.
fn found<T>(r: Result<T, StoreError>) -> async_graphql::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

/// A problem with the input, reported in a mutation's payload.
#[derive(SimpleObject, Debug, Clone)]
pub struct UserError {
    pub message: String,
    /// The input field at fault, e.g. `["input", "secrets"]`.
    pub path: Option<Vec<String>>,
}

impl UserError {
    fn at(field: &str, message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            path: Some(vec!["input".into(), field.into()]),
        }
    }

    fn general(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            path: None,
        }
    }
}

impl From<Invalid> for UserError {
    fn from(i: Invalid) -> Self {
        UserError::at(i.field, i.message)
    }
}

/// Collects every rule an input breaks, so one answer lists all there is to fix.
#[derive(Default)]
struct Problems(Vec<UserError>);

impl Problems {
    fn check<T>(&mut self, r: Result<T, Invalid>) -> Option<T> {
        r.map_err(|e| self.0.push(e.into())).ok()
    }

    /// The value when no rule was broken, else every problem found.
    fn done<T>(self, value: Option<T>) -> Result<T, Vec<UserError>> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(self.0),
        }
    }
}

/// What a change through the outbox came to: a value, or errors for the payload (not found is
/// reported at `id_field`).
fn outcome<T>(
    r: Result<T, outbox::Error>,
    id_field: &str,
) -> async_graphql::Result<Result<T, Vec<UserError>>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(outbox::Error::NotFound) => Ok(Err(vec![UserError::at(id_field, "No object found")])),
        Err(outbox::Error::Invalid(i)) => Ok(Err(vec![i.into()])),
        Err(e) => Err(internal(e)),
    }
}

/// What a change through the outbox came to, shaped for its payload: the object `wrap` makes,
/// or the errors (input that did not parse, or the outbox's; not found is at `id_field`).
async fn made<T, O>(
    change: Result<impl std::future::Future<Output = Result<T, outbox::Error>>, Vec<UserError>>,
    id_field: &str,
    wrap: impl FnOnce(T) -> O,
) -> async_graphql::Result<(Option<O>, Vec<UserError>)> {
    let change = match change {
        Ok(change) => change,
        Err(errors) => return Ok((None, errors)),
    };
    Ok(match outcome(change.await, id_field)? {
        Ok(value) => (Some(wrap(value)), Vec::new()),
        Err(errors) => (None, errors),
    })
}

/// Decodes an input ID of type `kind`; another type or garbage is "No object found".
fn input_id(kind: Kind, id: &ID, field: &'static str) -> Result<i64, Invalid> {
    ids::decode(kind, id).ok_or_else(|| Invalid::new(field, "No object found"))
}

/// Decodes an input ID of a typed row; another type or garbage is "No object found".
fn input_row<T: Typed>(id: &ID, field: &'static str) -> Result<T, Invalid> {
    T::decode(id).ok_or_else(|| Invalid::new(field, "No object found"))
}

fn input_ids(kind: Kind, list: &[ID], field: &'static str) -> Result<Vec<i64>, Invalid> {
    if list.len() > crate::domain::content::MAX_IDS {
        return Err(Invalid::new(
            field,
            format!("give at most {} IDs", crate::domain::content::MAX_IDS),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for id in list {
        let n = ids::decode(kind, id).ok_or_else(|| {
            Invalid::new(field, format!("No object found for ID {}", id.as_str()))
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The viewer of a mutation payload.
pub struct ViewerObject(User);

#[Object(name = "Viewer")]
impl ViewerObject {
    /// The viewer's user ID.
    async fn id(&self) -> ID {
        ID(self.0.id.global())
    }

    async fn user(&self) -> objects::UserObject {
        objects::UserObject(self.0.clone())
    }
}

/// A connection cursor: an opaque token for a row's position.
pub struct Cursor(pub i64);

impl CursorType for Cursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| "invalid cursor")?;
        let text = std::str::from_utf8(&raw).map_err(|_| "invalid cursor")?;
        text.strip_prefix("cursor:")
            .and_then(|n| n.parse().ok())
            .map(Cursor)
            .ok_or("invalid cursor")
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("cursor:{}", self.0))
    }
}

/// Reads `first` and `after` into a page that fetches one row more than asked (to tell
/// whether there is a next page).
fn page(first: Option<i32>, after: Option<String>) -> async_graphql::Result<(Page, usize)> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(Error::new(format!(
            "first must be between 0 and {MAX_PAGE}"
        )));
    }
    let after = match after {
        None => None,
        Some(a) => Some(Cursor::decode_cursor(&a).map_err(Error::new)?.0),
    };
    let want = usize::try_from(first).unwrap_or(0);
    Ok((
        Page {
            after,
            limit: i64::from(first) + 1,
        },
        want,
    ))
}

/// Builds a connection from rows fetched with [`page`].
fn connection<T, N: OutputType>(
    mut rows: Vec<T>,
    want: usize,
    key: impl Fn(&T) -> i64,
    node: impl Fn(T) -> N,
) -> Connection<Cursor, N> {
    let has_next = rows.len() > want;
    rows.truncate(want);
    let mut conn = Connection::new(false, has_next);
    conn.edges.extend(
        rows.into_iter()
            .map(|r| Edge::new(Cursor(key(&r)), node(r))),
    );
    conn
}

macro_rules! graphql_enum {
    ($(#[$m:meta])* $name:ident : $domain:ty { $($variant:ident => $dv:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($variant),+ }

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

graphql_enum!(
    /// What a webhook subscribes to.
    WebhookEvent: crate::domain::webhook::WebhookEvent { Video => Video, Collection => Collection, Source => Source }
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
    Ping,
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
            E::Ping => Self::Ping,
            E::Relayed(_) => Self::Source,
        }
    }
}
// After the macro: it is in scope only below its definition.
mod sources;

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
    WebhookDisabledReason: crate::domain::webhook::DisabledReason { Failing => Failing, Manual => Manual }
);
graphql_enum!(
    VideoVisibility: crate::domain::content::Visibility { OnChannel => OnChannel, Private => Private }
);
graphql_enum!(
    UserRole: crate::domain::content::Role { Admin => Admin, Member => Member }
);
