//! Rows as the database returns them, and their decoding into domain types. Private to the
//! store: a value that does not decode is [`StoreError::Corrupt`].

use super::secrets::Vault;
use super::{Authenticated, Claimed, Result, StoreError};
use crate::domain::comments::{Comment, Highlight};
use crate::domain::content::{Channel, Collection, Role, User, Video, Visibility};
use crate::domain::delivery::{Attempt, AttemptResult, Delivery, DeliveryStatus};
use crate::domain::event::EventName;
use crate::domain::event_types::EventPatterns;
use crate::domain::groups::Group;
use crate::domain::ids::{ChannelId, DeliveryId, EventId, UserId, WebhookId};
use crate::domain::members::MemberStatus;
use crate::domain::webhook::{DisabledReason, Webhook, WebhookEvent};

pub(super) const CHANNEL_COLUMNS: &str = "id, subdomain, name, description, created_at";
pub(super) const USER_COLUMNS: &str =
    "id, channel_id, email, first_name, last_name, role, status, created_at, updated_at";
pub(super) const WEBHOOK_COLUMNS: &str =
    "id, channel_id, url, description, events, secrets, retries, enabled, disabled_reason, creator_id, created_at, updated_at, listener, event_types";
pub(super) const VIDEO_COLUMNS: &str = "id, channel_id, title, slug, summary, visibility, presented_at, duration, draft, uploader_id, \
     external_sharing_enabled, show_comments_to_external_viewers, created_at, updated_at";
pub(super) const GROUP_COLUMNS: &str = "id, channel_id, name, description, created_at, updated_at";
pub(super) const COMMENT_COLUMNS: &str =
    "id, channel_id, video_id, highlight_id, author_id, body, created_at";
pub(super) const HIGHLIGHT_COLUMNS: &str =
    "id, channel_id, video_id, creator_id, title, start_ms, end_ms, created_at";
pub(super) const COLLECTION_COLUMNS: &str =
    "id, channel_id, parent_id, name, slug, description, secret, created_at, updated_at";
/// The columns of a [`DeliveryRow`], from `deliveries d` joined with `events e`. `attempts` is
/// counted in the log: `deliveries.retries` counts the retries scheduled, one ahead of those
/// made while a retry waits.
pub(super) const DELIVERY_COLUMNS: &str =
    "d.id, d.webhook_id, d.event_id, e.name AS event_name, e.at AS event_at, d.nonce, \
     d.status, (SELECT COUNT(*) FROM delivery_attempts a WHERE a.delivery_id = d.id) AS attempts, \
     d.url, d.next_attempt_at, d.created_at, d.updated_at";
/// The columns of an [`ActorRow`], from `users u` joined with `channels c`.
pub(super) const ACTOR_COLUMNS: &str = "u.id, u.channel_id, u.email, u.first_name, u.last_name, u.role, u.status, u.created_at, u.updated_at, \
     c.subdomain, c.name AS channel_name, c.description AS channel_description, c.created_at AS channel_created_at";

pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} holds {value:?}"))
}

/// A webhook's secrets from their JSON list: what is sealed, and what was stored as it is
/// before secrets were sealed (never quoted in an error).
pub(super) fn secrets(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|_| corrupt("webhooks.secrets", "(redacted)"))
}

#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    id: ChannelId,
    subdomain: String,
    name: String,
    description: Option<String>,
    created_at: i64,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: r.id,
            subdomain: r.subdomain,
            name: r.name,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: UserId,
    channel_id: ChannelId,
    email: String,
    first_name: String,
    last_name: String,
    role: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self> {
        Ok(User {
            id: r.id,
            channel_id: r.channel_id,
            role: Role::parse(&r.role).ok_or_else(|| corrupt("users.role", &r.role))?,
            status: MemberStatus::parse(&r.status)
                .ok_or_else(|| corrupt("users.status", &r.status))?,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A user with the user's channel (one statement: see [`ACTOR_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct ActorRow {
    #[sqlx(flatten)]
    user: UserRow,
    subdomain: String,
    channel_name: String,
    channel_description: Option<String>,
    channel_created_at: i64,
}

impl ActorRow {
    pub(super) fn split(self) -> Result<Authenticated> {
        let channel = Channel::from(ChannelRow {
            id: self.user.channel_id,
            subdomain: self.subdomain,
            name: self.channel_name,
            description: self.channel_description,
            created_at: self.channel_created_at,
        });
        Ok(Authenticated {
            user: User::try_from(self.user)?,
            channel,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct WebhookRow {
    id: WebhookId,
    channel_id: ChannelId,
    url: String,
    description: Option<String>,
    events: String,
    secrets: String,
    retries: i64,
    enabled: bool,
    disabled_reason: Option<String>,
    creator_id: Option<UserId>,
    created_at: i64,
    updated_at: i64,
    listener: bool,
    event_types: Option<String>,
}

impl WebhookRow {
    /// The webhook, its secrets opened by `vault`.
    pub(super) fn open(self, vault: &Vault) -> Result<Webhook> {
        let r = self;
        let names: Vec<String> =
            serde_json::from_str(&r.events).map_err(|_| corrupt("webhooks.events", &r.events))?;
        let events = names
            .iter()
            .map(|n| WebhookEvent::parse(n).ok_or_else(|| corrupt("webhooks.events", n)))
            .collect::<Result<_>>()?;
        let secrets = vault.open(r.id, &r.secrets)?.to_vec();
        let disabled_reason = match r.disabled_reason {
            None => None,
            Some(s) => Some(
                DisabledReason::parse(&s).ok_or_else(|| corrupt("webhooks.disabled_reason", &s))?,
            ),
        };
        Ok(Webhook {
            id: r.id,
            channel_id: r.channel_id,
            url: r.url,
            description: r.description,
            events,
            secrets,
            retries: r.retries,
            enabled: r.enabled,
            disabled_reason,
            creator_id: r.creator_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            listener: r.listener,
            event_types: patterns(r.event_types.as_deref())?,
        })
    }
}

/// A webhook an event is enqueued for, with what an attempt needs.
#[derive(sqlx::FromRow)]
pub(super) struct TargetRow {
    pub(super) id: WebhookId,
    pub(super) url: String,
    pub(super) secrets: String,
    pub(super) retries: i64,
    pub(super) listener: bool,
    /// JSON, see [`patterns`].
    pub(super) event_types: Option<String>,
}

/// A JSON list of event patterns as stored (`webhooks.event_types`); `None` for NULL.
pub(super) fn patterns(raw: Option<&str>) -> Result<Option<EventPatterns>> {
    raw.map(|raw| {
        serde_json::from_str::<Vec<String>>(raw)
            .map(EventPatterns::trusted)
            .map_err(|_| corrupt("webhooks.event_types", raw))
    })
    .transpose()
}

#[derive(sqlx::FromRow)]
pub(super) struct VideoRow {
    pub(super) id: i64,
    channel_id: ChannelId,
    title: String,
    slug: String,
    summary: String,
    visibility: String,
    presented_at: Option<i64>,
    duration: Option<f64>,
    draft: bool,
    uploader_id: Option<UserId>,
    external_sharing_enabled: bool,
    show_comments_to_external_viewers: bool,
    created_at: i64,
    updated_at: i64,
}

impl VideoRow {
    pub(super) fn with_links(
        self,
        collection_ids: Vec<i64>,
        tagged_user_ids: Vec<i64>,
    ) -> Result<Video> {
        Ok(Video {
            visibility: Visibility::parse(&self.visibility)
                .ok_or_else(|| corrupt("videos.visibility", &self.visibility))?,
            collection_ids,
            tagged_user_ids,
            id: self.id,
            channel_id: self.channel_id,
            title: self.title,
            slug: self.slug,
            summary: self.summary,
            presented_at: self.presented_at,
            duration: self.duration,
            draft: self.draft,
            uploader_id: self.uploader_id,
            external_sharing_enabled: self.external_sharing_enabled,
            show_comments_to_external_viewers: self.show_comments_to_external_viewers,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CollectionRow {
    pub(super) id: i64,
    channel_id: ChannelId,
    parent_id: Option<i64>,
    name: String,
    slug: String,
    description: Option<String>,
    secret: bool,
    created_at: i64,
    updated_at: i64,
}

/// A collection's admins and members: users, and groups.
#[derive(Debug, Default)]
pub(super) struct CollectionLinks {
    pub(super) admins: Vec<i64>,
    pub(super) admin_groups: Vec<i64>,
    pub(super) members: Vec<i64>,
    pub(super) member_groups: Vec<i64>,
}

impl CollectionRow {
    pub(super) fn with_links(self, links: CollectionLinks) -> Collection {
        Collection {
            admin_ids: links.admins,
            admin_group_ids: links.admin_groups,
            member_ids: links.members,
            member_group_ids: links.member_groups,
            id: self.id,
            channel_id: self.channel_id,
            parent_id: self.parent_id,
            name: self.name,
            slug: self.slug,
            description: self.description,
            secret: self.secret,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct GroupRow {
    pub(super) id: i64,
    channel_id: ChannelId,
    name: String,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl GroupRow {
    pub(super) fn with_members(self, member_ids: Vec<i64>) -> Group {
        Group {
            member_ids,
            id: self.id,
            channel_id: self.channel_id,
            name: self.name,
            description: self.description,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CommentRow {
    id: i64,
    channel_id: ChannelId,
    video_id: i64,
    highlight_id: Option<i64>,
    author_id: Option<UserId>,
    body: String,
    created_at: i64,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Comment {
            id: r.id,
            channel_id: r.channel_id,
            video_id: r.video_id,
            highlight_id: r.highlight_id,
            author_id: r.author_id,
            body: r.body,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct HighlightRow {
    id: i64,
    channel_id: ChannelId,
    video_id: i64,
    creator_id: Option<UserId>,
    title: String,
    start_ms: i64,
    end_ms: i64,
    created_at: i64,
}

impl From<HighlightRow> for Highlight {
    fn from(r: HighlightRow) -> Self {
        Highlight {
            id: r.id,
            channel_id: r.channel_id,
            video_id: r.video_id,
            creator_id: r.creator_id,
            title: r.title,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            created_at: r.created_at,
        }
    }
}

/// One row of a many-to-many relation.
#[derive(sqlx::FromRow)]
pub(super) struct LinkRow {
    pub(super) owner: i64,
    pub(super) target: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: DeliveryId,
    webhook_id: WebhookId,
    event_id: EventId,
    event_name: String,
    event_at: i64,
    nonce: String,
    status: String,
    attempts: i64,
    url: String,
    next_attempt_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event: EventName::parse(&r.event_name)
                .ok_or_else(|| corrupt("events.name", &r.event_name))?,
            event_at: r.event_at,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| corrupt("deliveries.status", &r.status))?,
            nonce: r.nonce,
            retries: (r.attempts - 1).max(0),
            attempts: r.attempts,
            url: r.url,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    delivery_id: DeliveryId,
    at: i64,
    url: String,
    code: Option<i64>,
    result: String,
    message: Option<String>,
    duration_ms: i64,
    response_body: Option<String>,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<Self> {
        Ok(Attempt {
            result: AttemptResult::parse(&r.result)
                .ok_or_else(|| corrupt("delivery_attempts.result", &r.result))?,
            delivery_id: r.delivery_id,
            at: r.at,
            url: r.url,
            code: r.code,
            message: r.message,
            duration_ms: r.duration_ms,
            response_body: r.response_body,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ClaimRow {
    delivery_id: DeliveryId,
    webhook_id: WebhookId,
    lease: Option<i64>,
    nonce: String,
    event_name: String,
    event_at: i64,
    data: String,
    retries: i64,
    max_retries: i64,
    url: String,
    secrets: String,
}

impl ClaimRow {
    /// The claim, under `lease` unless the row holds one, its secrets opened by `vault`. Pings
    /// are never retried.
    pub(super) fn claimed(self, lease: i64, vault: &Vault) -> Result<Claimed> {
        let event = EventName::parse(&self.event_name)
            .ok_or_else(|| corrupt("events.name", &self.event_name))?;
        let ping = event == EventName::Ping;
        Ok(Claimed {
            event,
            secrets: vault.open(self.webhook_id, &self.secrets)?,
            delivery_id: self.delivery_id,
            webhook_id: self.webhook_id,
            lease: self.lease.unwrap_or(lease),
            nonce: self.nonce,
            event_at: self.event_at,
            data: self.data.into(),
            retries_made: self.retries,
            max_retries: if ping { 0 } else { self.max_retries },
            url: self.url,
        })
    }
}
