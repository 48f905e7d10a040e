//! Inbound sources (SPEC §8.1, admins only): their settings, their ingest URLs and their
//! request logs.

use super::connections::{Cursor, Window};
use super::{
    actor, found, input_row, internal, made, outcome, services, viewer, Problems, UserError,
    ViewerInterface,
};
use crate::domain::content::{Role, User};
use crate::domain::event_types::EventPatterns;
use crate::domain::ids::{ChannelId, SourceId, Typed};
use crate::domain::source::{
    self as rules, default_events, Source, SourcePatch, SourceRequest, SourceSecret, SourceSettings,
};
use crate::domain::time::from_ms;
use crate::domain::webhook::VerifyToken;
use crate::domain::Invalid;
use crate::outbox::WithToken;
use crate::store::{Order, Page};
use async_graphql::connection::{Connection, Edge};
use async_graphql::OutputType;
use async_graphql::{
    Context, Enum, Error, ErrorExtensions, InputObject, MaybeUndefined, Object, Result,
    SimpleObject, ID,
};
use chrono::{DateTime, Utc};

pub(crate) const ADMIN_ONLY: &str = "Only channel admins may view or modify sources";

pub(super) fn require_admin(user: &User) -> Result<()> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::new(ADMIN_ONLY).extend_with(|_, e| e.set("code", "FORBIDDEN")))
    }
}

/// herald's public base URL (`HERALD_PUBLIC_URL`), as schema data: ingest URLs start with it.
#[derive(Clone)]
pub struct PublicUrl(pub String);

graphql_enum!(
    /// The service that calls a source.
    SourceKind: rules::SourceKind {
        Strava => Strava,
        Plex => Plex,
        Jellyfin => Jellyfin,
        Emby => Emby,
        StandardWebhooks => StandardWebhooks,
        Github => Github,
    }
);
graphql_enum!(
    /// What herald did with a request a source received: `ACCEPTED` (relayed as an event, or a
    /// Strava handshake answered), `DUPLICATE` (a resend of a request already relayed: 200, not
    /// relayed again), `FILTERED` (left out by `events`, `allowedUsers` or `allowedServers`:
    /// 200), `REJECTED` (malformed, badly signed, too large, or a disabled source: 4xx).
    SourceRequestOutcome: rules::Outcome {
        Accepted => Accepted,
        Duplicate => Duplicate,
        Filtered => Filtered,
        Rejected => Rejected,
    }
);

/// A source, with its ingest token when it was just made.
pub struct SourceObject {
    source: Source,
    token: Option<String>,
}

impl SourceObject {
    /// A source as read: its token is not known (only its hash is kept).
    pub fn read(source: Source) -> Self {
        SourceObject {
            source,
            token: None,
        }
    }
}

impl From<WithToken> for SourceObject {
    fn from(w: WithToken) -> Self {
        SourceObject {
            source: w.source,
            token: Some(w.token),
        }
    }
}

#[Object(name = "Source")]
impl SourceObject {
    pub async fn id(&self) -> ID {
        ID(self.source.id.global())
    }
    async fn name(&self) -> &str {
        &self.source.settings.name
    }
    async fn kind(&self) -> SourceKind {
        self.source.settings.kind.into()
    }
    async fn enabled(&self) -> bool {
        self.source.settings.enabled
    }
    /// The URL to give the service: `<HERALD_PUBLIC_URL>/ingest/<token>`. Only in the answers of
    /// `createSource` and `rotateSourceToken`, `null` elsewhere: herald keeps only a hash of
    /// the token, so a copy of its database does not give the URL away. A lost URL is
    /// replaced with `rotateSourceToken`.
    async fn ingest_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let base = ctx.data::<PublicUrl>()?;
        Ok(self
            .token
            .as_ref()
            .map(|t| format!("{}/ingest/{t}", base.0)))
    }
    /// The service's events relayed, in its own names (`media.scrobble`, `PlaybackStop`,
    /// `activity.created`, `push`) or prefixes ending in `*`.
    async fn events(&self) -> &[String] {
        self.source.settings.events.as_slice()
    }
    /// The users (id or name) whose requests are relayed; empty: everyone's.
    async fn allowed_users(&self) -> &[String] {
        &self.source.settings.allowed_users
    }
    /// The servers (Strava: subscription ids) whose requests are relayed; empty: every one's.
    async fn allowed_servers(&self) -> &[String] {
        &self.source.settings.allowed_servers
    }
    /// Whether a Strava `verifyToken` is set (it is never readable).
    async fn has_verify_token(&self) -> bool {
        self.source.settings.verify_token.is_some()
    }
    /// Whether a signing secret is set (it is never readable).
    async fn has_secret(&self) -> bool {
        self.source.settings.secret.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.source.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.source.updated_at)
    }
    /// Every request received and what herald did with it, newest first.
    async fn requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        outcome: Option<SourceRequestOutcome>,
    ) -> Result<Connection<Cursor, SourceRequestObject>> {
        let (p, want) = page(first, after)?;
        let s = &self.source;
        let rows = services(ctx)?
            .store
            .list_source_requests(s.channel_id, s.id, outcome.map(Into::into), p)
            .await
            .map_err(internal)?;
        Ok(connection(rows, want, |r| r.id.get(), SourceRequestObject))
    }
}

pub struct SourceRequestObject(SourceRequest);

#[Object(name = "SourceRequest")]
impl SourceRequestObject {
    async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    async fn received_at(&self) -> DateTime<Utc> {
        from_ms(self.0.received_at)
    }
    async fn outcome(&self) -> SourceRequestOutcome {
        self.0.outcome.into()
    }
    /// The HTTP status herald answered with.
    async fn status(&self) -> i64 {
        self.0.status
    }
    /// Why: the event it was relayed as, what filtered it out, what was wrong with it.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// The name of the herald event the request became (`plex.media.scrobble`).
    async fn event(&self) -> Option<&str> {
        self.0.event.as_deref()
    }
}

/// `channel.sources`.
pub(super) async fn list(
    ctx: &Context<'_>,
    channel: ChannelId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<Cursor, SourceObject>> {
    require_admin(viewer(ctx)?)?;
    let (p, want) = page(first, after)?;
    let rows = services(ctx)?
        .store
        .list_sources(channel, p)
        .await
        .map_err(internal)?;
    Ok(connection(rows, want, |s| s.id.get(), SourceObject::read))
}

#[derive(InputObject)]
pub struct CreateSourceInput {
    pub client_mutation_id: Option<String>,
    /// 1 to 100 characters.
    pub name: String,
    pub kind: SourceKind,
    /// `STRAVA` (required): the `verify_token` given to Strava's `push_subscriptions` call.
    pub verify_token: Option<String>,
    /// `STANDARD_WEBHOOKS` and `GITHUB` (required): the secret requests are signed with, 16 to
    /// 256 characters (a Standard Webhooks `whsec_…` secret as the service shows it).
    pub secret: Option<String>,
    /// The service's events to relay (names or `prefix*`); default: the kind's (see the README).
    pub events: Option<Vec<String>>,
    /// Relay only requests of these users (id or name); not for signed kinds.
    pub allowed_users: Option<Vec<String>>,
    /// Relay only requests from these servers (Strava: subscription ids); not for signed kinds.
    pub allowed_servers: Option<Vec<String>>,
    #[graphql(default = true)]
    pub enabled: bool,
}

#[derive(InputObject)]
pub struct UpdateSourceInput {
    pub client_mutation_id: Option<String>,
    pub source_id: ID,
    pub name: Option<String>,
    /// A new kind without new `events` takes that kind's default events.
    pub kind: Option<SourceKind>,
    /// `null` clears it.
    pub verify_token: MaybeUndefined<String>,
    /// `null` clears it.
    pub secret: MaybeUndefined<String>,
    /// `null` sets the kind's default.
    pub events: MaybeUndefined<Vec<String>>,
    /// `null` or `[]`: everyone.
    pub allowed_users: MaybeUndefined<Vec<String>>,
    /// `null` or `[]`: every server.
    pub allowed_servers: MaybeUndefined<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteSourceInput {
    pub client_mutation_id: Option<String>,
    pub source_id: ID,
}

#[derive(InputObject)]
pub struct RotateSourceTokenInput {
    pub client_mutation_id: Option<String>,
    pub source_id: ID,
}

/// The payload of `createSource`, `updateSource` and `rotateSourceToken`.
#[derive(SimpleObject)]
pub struct SourcePayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The source after the change (with its `ingestUrl` after `createSource` and
    /// `rotateSourceToken`).
    pub source: Option<SourceObject>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteSourcePayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The ID of the deleted source.
    pub deleted_source_id: Option<ID>,
    pub errors: Vec<UserError>,
}

fn events(raw: &[String]) -> Result<EventPatterns, Invalid> {
    EventPatterns::parse("events", raw)
}

fn allowed(p: &mut Problems, field: &'static str, raw: Option<&[String]>) -> Option<Vec<String>> {
    p.check(rules::parse_allowed(field, raw.unwrap_or_default()))
}

fn parse_new(input: &CreateSourceInput) -> Result<SourceSettings, Vec<UserError>> {
    let mut p = Problems::default();
    let kind: rules::SourceKind = input.kind.into();
    let name = p.check(rules::parse_name(&input.name));
    let verify_token = p.check(
        input
            .verify_token
            .as_deref()
            .map(VerifyToken::parse)
            .transpose(),
    );
    let secret = p.check(input.secret.as_deref().map(SourceSecret::parse).transpose());
    let events = match &input.events {
        None => Some(default_events(kind)),
        Some(raw) => p.check(events(raw)),
    };
    let users = allowed(&mut p, "allowedUsers", input.allowed_users.as_deref());
    let servers = allowed(&mut p, "allowedServers", input.allowed_servers.as_deref());
    let (Some(name), Some(verify_token), Some(secret), Some(events), Some(users), Some(servers)) =
        (name, verify_token, secret, events, users, servers)
    else {
        return Err(p.0);
    };
    let settings = SourceSettings {
        name,
        kind,
        verify_token,
        secret,
        events,
        allowed_users: users,
        allowed_servers: servers,
        enabled: input.enabled,
    };
    let checked = settings
        .check()
        .map_err(|problems| p.0.extend(problems.into_iter().map(UserError::from)));
    p.done(checked.ok())
}

/// A field that may be left out, cleared with `null`, or set.
fn maybe<T, U>(
    p: &mut Problems,
    raw: &MaybeUndefined<T>,
    parse: impl FnOnce(&T) -> Result<U, Invalid>,
) -> Option<Option<U>> {
    match raw {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => p.check(parse(v)).map(Some),
    }
}

fn parse_patch(p: &mut Problems, input: &UpdateSourceInput) -> SourcePatch {
    let name = input
        .name
        .as_deref()
        .and_then(|n| p.check(rules::parse_name(n)));
    let verify_token = maybe(p, &input.verify_token, |t| VerifyToken::parse(t));
    let secret = maybe(p, &input.secret, |s| SourceSecret::parse(s));
    let events = maybe(p, &input.events, |e| events(e));
    let users = maybe(p, &input.allowed_users, |u| {
        rules::parse_allowed("allowedUsers", u)
    });
    let servers = maybe(p, &input.allowed_servers, |s| {
        rules::parse_allowed("allowedServers", s)
    });
    SourcePatch {
        name,
        kind: input.kind.map(Into::into),
        verify_token,
        secret,
        events,
        allowed_users: users.map(Option::unwrap_or_default),
        allowed_servers: servers.map(Option::unwrap_or_default),
        enabled: input.enabled,
    }
}

fn admin_only() -> Vec<UserError> {
    vec![UserError::forbidden(ADMIN_ONLY)]
}

#[derive(Default)]
pub struct SourceMutations;

#[Object]
impl SourceMutations {
    /// Creates an inbound source; its `ingestUrl` is in the answer, and only there. Admins only.
    async fn create_source(
        &self,
        ctx: &Context<'_>,
        input: CreateSourceInput,
    ) -> Result<SourcePayload> {
        let (svc, user, actor) = (services(ctx)?, viewer(ctx)?, actor(ctx)?);
        let parsed = if user.role == Role::Admin {
            parse_new(&input)
        } else {
            Err(admin_only())
        };
        let change = parsed.map(|new| async move { svc.outbox.create_source(actor, &new).await });
        let (source, errors) = made(change, "name", SourceObject::from).await?;
        Ok(SourcePayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            source,
            errors,
        })
    }

    /// Changes a source, checked whole (a new kind's needs included). Admins only.
    async fn update_source(
        &self,
        ctx: &Context<'_>,
        input: UpdateSourceInput,
    ) -> Result<SourcePayload> {
        let (svc, user, actor) = (services(ctx)?, viewer(ctx)?, actor(ctx)?);
        if user.role != Role::Admin {
            return Ok(SourcePayload {
                client_mutation_id: input.client_mutation_id,
                viewer: ViewerInterface::of(user),
                source: None,
                errors: admin_only(),
            });
        }
        let mut p = Problems::default();
        let id: Option<SourceId> = p.check(input_row(&input.source_id, "sourceId"));
        let patch = parse_patch(&mut p, &input);
        // Every rule the change would break, at once: checked here against the source as it
        // is, and again by the store in the transaction that writes it.
        if let (Some(id), true) = (id, p.0.is_empty()) {
            if let Some(current) = found(svc.store.source(user.channel_id, id).await)? {
                if let Err(problems) = patch.apply(&current.settings) {
                    p.0.extend(problems.into_iter().map(UserError::from));
                }
            }
        }
        let change = p
            .done(id)
            .map(|id| async move { svc.outbox.update_source(actor, id, &patch).await });
        let (source, errors) = made(change, "sourceId", SourceObject::read).await?;
        Ok(SourcePayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            source,
            errors,
        })
    }

    /// Gives a source a new `ingestUrl` (in the answer, and only there); the old one is
    /// refused from this moment. Admins only.
    async fn rotate_source_token(
        &self,
        ctx: &Context<'_>,
        input: RotateSourceTokenInput,
    ) -> Result<SourcePayload> {
        let (svc, user, actor) = (services(ctx)?, viewer(ctx)?, actor(ctx)?);
        let parsed = if user.role == Role::Admin {
            input_row(&input.source_id, "sourceId").map_err(|e| vec![e.into()])
        } else {
            Err(admin_only())
        };
        let change =
            parsed.map(|id| async move { svc.outbox.rotate_source_token(actor, id).await });
        let (source, errors) = made(change, "sourceId", SourceObject::from).await?;
        Ok(SourcePayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            source,
            errors,
        })
    }

    /// Deletes a source with its request log; its URL is refused from then on. The events it
    /// became, and their deliveries, stay. Admins only.
    async fn delete_source(
        &self,
        ctx: &Context<'_>,
        input: DeleteSourceInput,
    ) -> Result<DeleteSourcePayload> {
        let (svc, user) = (services(ctx)?, viewer(ctx)?);
        let errors = if user.role != Role::Admin {
            admin_only()
        } else {
            match input_row::<SourceId>(&input.source_id, "sourceId") {
                Err(e) => vec![e.into()],
                Ok(id) => {
                    let deleted = svc.outbox.delete_source(actor(ctx)?, id).await;
                    outcome(deleted, "sourceId")?.err().unwrap_or_default()
                }
            }
        };
        Ok(DeleteSourcePayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            deleted_source_id: errors.is_empty().then(|| input.source_id.clone()),
            errors,
        })
    }
}

/// The page `first` and `after` ask for, one row longer than asked (to tell whether there are
/// more), and how many rows were asked for. Sources and their requests page forwards only.
fn page(first: Option<i32>, after: Option<String>) -> Result<(Page, usize)> {
    Window::new(first, after, None, None).page(Order::Ascending)
}

/// A forward connection of `rows`, `want` of which were asked for.
fn connection<T, N: OutputType>(
    rows: Vec<T>,
    want: usize,
    key: impl Fn(&T) -> i64,
    node: impl Fn(T) -> N,
) -> Connection<Cursor, N> {
    let more = rows.len() > want;
    let mut conn = Connection::new(false, more);
    conn.edges.extend(
        rows.into_iter()
            .take(want)
            .map(|r| Edge::new(Cursor(key(&r)), node(r))),
    );
    conn
}
