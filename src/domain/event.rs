//! Events and their payloads (SPEC §4).
//!
//! When a change commits, its payload's object part (`actor`, `channel`, the object, `updates`)
//! is rendered once and frozen in the event. Each delivery's body is that part behind the
//! delivery's own `hookId`, `nonce`, `at` and `event`, assembled as text so the frozen part is
//! never re-serialised.

use super::content::{Channel, Collection, User, Video};
use super::groups::Group;
use super::ids::{encode, Kind, Typed};
use super::source::RelayedName;
use super::time::format_ms;
use super::webhook::WebhookEvent;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The events herald emits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventName {
    VideoAddedToChannel,
    VideoUpdated,
    VideoDeleted,
    CollectionCreated,
    CollectionUpdated,
    CollectionDeleted,
    MemberInvited,
    MemberJoined,
    MemberDeactivated,
    /// A member's role changed.
    MemberUpdated,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    CommentCreated,
    CommentRemoved,
    HighlightCreated,
    HighlightDeleted,
    /// A test delivery asked for by an admin (`testWebhook`): `actor` and `channel` only.
    Ping,
    /// herald disabled one of the channel's webhooks: `channel` and `webhook`, no `actor`.
    WebhookDisabled,
    /// An event relayed from one of the channel's inbound sources (`plex.media.scrobble`).
    Relayed(RelayedName),
}

impl EventName {
    pub const ALL: [EventName; 19] = [
        EventName::VideoAddedToChannel,
        EventName::VideoUpdated,
        EventName::VideoDeleted,
        EventName::CollectionCreated,
        EventName::CollectionUpdated,
        EventName::CollectionDeleted,
        EventName::MemberInvited,
        EventName::MemberJoined,
        EventName::MemberDeactivated,
        EventName::MemberUpdated,
        EventName::GroupCreated,
        EventName::GroupUpdated,
        EventName::GroupDeleted,
        EventName::CommentCreated,
        EventName::CommentRemoved,
        EventName::HighlightCreated,
        EventName::HighlightDeleted,
        EventName::Ping,
        EventName::WebhookDisabled,
    ];

    /// The wire name: `video.addedToChannel`.
    pub fn as_str(&self) -> &str {
        match self {
            EventName::Relayed(name) => name.as_str(),
            _ => self.fixed_name().unwrap_or_default(),
        }
    }

    /// The wire name of an event of herald's own (not relayed from a source): one of a fixed
    /// set, for labels that must stay bounded (metrics).
    pub fn fixed_name(&self) -> Option<&'static str> {
        Some(match self {
            EventName::VideoAddedToChannel => "video.addedToChannel",
            EventName::VideoUpdated => "video.updated",
            EventName::VideoDeleted => "video.deleted",
            EventName::CollectionCreated => "collection.created",
            EventName::CollectionUpdated => "collection.updated",
            EventName::CollectionDeleted => "collection.deleted",
            EventName::MemberInvited => "member.invited",
            EventName::MemberJoined => "member.joined",
            EventName::MemberDeactivated => "member.deactivated",
            EventName::MemberUpdated => "member.updated",
            EventName::GroupCreated => "group.created",
            EventName::GroupUpdated => "group.updated",
            EventName::GroupDeleted => "group.deleted",
            EventName::CommentCreated => "comment.created",
            EventName::CommentRemoved => "comment.removed",
            EventName::HighlightCreated => "highlight.created",
            EventName::HighlightDeleted => "highlight.deleted",
            EventName::Ping => "ping",
            EventName::WebhookDisabled => "webhook.disabled",
            EventName::Relayed(_) => return None,
        })
    }

    /// A channel event's name, or a well-formed relayed one.
    pub fn parse(s: &str) -> Option<Self> {
        EventName::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .or_else(|| RelayedName::parse(s).map(EventName::Relayed))
    }

    /// The subscription that receives this event; `None` for pings, sent to one webhook on
    /// request whatever it subscribes to.
    pub fn subscribed_by(&self) -> Option<WebhookEvent> {
        use EventName as E;
        Some(match self {
            E::VideoAddedToChannel | E::VideoUpdated | E::VideoDeleted => WebhookEvent::Video,
            E::CollectionCreated | E::CollectionUpdated | E::CollectionDeleted => {
                WebhookEvent::Collection
            }
            E::MemberInvited | E::MemberJoined | E::MemberDeactivated | E::MemberUpdated => {
                WebhookEvent::Member
            }
            E::GroupCreated | E::GroupUpdated | E::GroupDeleted => WebhookEvent::Group,
            E::CommentCreated | E::CommentRemoved => WebhookEvent::Comment,
            E::HighlightCreated | E::HighlightDeleted => WebhookEvent::Highlight,
            E::WebhookDisabled => WebhookEvent::Webhook,
            E::Relayed(_) => WebhookEvent::Source,
            E::Ping => return None,
        })
    }
}

/// The fields whose change makes a `video.updated`, as named in the payload.
pub const VIDEO_FIELDS: [&str; 7] = [
    "title",
    "summary",
    "visibility",
    "presentedAt",
    "duration",
    "collections",
    "taggedUsers",
];
/// The fields whose change makes a `collection.updated`.
pub const COLLECTION_FIELDS: [&str; 6] = [
    "name",
    "description",
    "secret",
    "parent",
    "admins",
    "members",
];

/// The fields whose change makes a `member.updated`.
pub const MEMBER_FIELDS: [&str; 1] = ["role"];
/// The fields whose change makes a `group.updated`.
pub const GROUP_FIELDS: [&str; 3] = ["name", "description", "members"];

/// Guards against runaway nesting when rendering collection trees.
const MAX_TREE_DEPTH: usize = 32;

/// What a payload is rendered from: the channel, and the users, collections and groups it
/// refers to.
pub struct Catalog {
    channel_url: String,
    users: HashMap<i64, User>,
    collections: HashMap<i64, Collection>,
    children: HashMap<i64, Vec<i64>>,
    groups: HashMap<i64, Group>,
}

impl Catalog {
    /// `collections` must hold every collection the payload names, with their whole subtrees;
    /// `users` every user named as actor, admin, member or tagged user.
    pub fn new(channel_url: String, users: Vec<User>, collections: Vec<Collection>) -> Self {
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        for c in &collections {
            if let Some(p) = c.parent_id {
                children.entry(p).or_default().push(c.id);
            }
        }
        for ids in children.values_mut() {
            ids.sort_unstable();
        }
        Catalog {
            channel_url,
            users: users.into_iter().map(|u| (u.id.get(), u)).collect(),
            collections: collections.into_iter().map(|c| (c.id, c)).collect(),
            children,
            groups: HashMap::new(),
        }
    }

    /// The catalog with `groups` too: every group its collections (or the payload) name, with
    /// their members among its users.
    pub fn with_groups(mut self, groups: Vec<Group>) -> Self {
        self.groups = groups.into_iter().map(|g| (g.id, g)).collect();
        self
    }

    /// One of the collections it holds.
    pub fn collection(&self, id: i64) -> Option<&Collection> {
        self.collections.get(&id)
    }

    pub fn channel_json(&self, channel: &Channel) -> Value {
        json!({
            "url": self.channel_url,
            "name": channel.name,
            "subdomain": channel.subdomain,
            "description": channel.description,
            "createdAt": format_ms(channel.created_at),
        })
    }

    pub fn user_json(user: &User) -> Value {
        json!({
            "id": user.id.global(),
            "firstName": user.first_name,
            "lastName": user.last_name,
            "email": user.email,
            "createdAt": format_ms(user.created_at),
        })
    }

    /// Users, then groups (a collection's admins or members).
    fn principals_json(&self, users: &[i64], groups: &[i64]) -> Value {
        let mut all = match self.users_json(users) {
            Value::Array(users) => users,
            _ => Vec::new(),
        };
        all.extend(
            groups
                .iter()
                .filter_map(|id| self.groups.get(id))
                .map(|g| self.group_json(g)),
        );
        Value::Array(all)
    }

    fn users_json(&self, ids: &[i64]) -> Value {
        Value::Array(
            ids.iter()
                .filter_map(|id| self.users.get(id))
                .map(Self::user_json)
                .collect(),
        )
    }

    /// A collection as it appears at the top of a collection event: with its `parent`.
    pub fn collection_json(&self, c: &Collection) -> Value {
        let mut v = self.nested_collection_json(c, 0);
        let parent = c
            .parent_id
            .and_then(|p| self.collections.get(&p))
            .map(|p| self.nested_collection_json(p, 0))
            .unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("parent".into(), parent);
        }
        v
    }

    /// A deleted collection, as Rewatch sends it: without a `parent` key.
    pub fn deleted_collection_json(&self, c: &Collection) -> Value {
        self.nested_collection_json(c, 0)
    }

    /// A collection nested anywhere (a video's collections, a parent, children): no `parent` key.
    fn nested_collection_json(&self, c: &Collection, depth: usize) -> Value {
        let children: Vec<Value> = if depth >= MAX_TREE_DEPTH {
            Vec::new()
        } else {
            self.children
                .get(&c.id)
                .into_iter()
                .flatten()
                .filter_map(|id| self.collections.get(id))
                .map(|child| self.nested_collection_json(child, depth + 1))
                .collect()
        };
        json!({
            "id": encode(Kind::Collection, c.id),
            "url": format!("{}/collection/{}/{}", self.channel_url, c.id, c.slug),
            "name": c.name,
            "description": c.description,
            "createdAt": format_ms(c.created_at),
            "secret": c.secret,
            "children": children,
            "admins": self.principals_json(&c.admin_ids, &c.admin_group_ids),
            "members": self.principals_json(&c.member_ids, &c.member_group_ids),
        })
    }

    pub fn video_json(&self, v: &Video) -> Value {
        let collections: Vec<Value> = v
            .collection_ids
            .iter()
            .filter_map(|id| self.collections.get(id))
            .map(|c| self.nested_collection_json(c, 0))
            .collect();
        json!({
            "id": encode(Kind::Video, v.id),
            "url": format!("{}/video/{}/{}", self.channel_url, v.id, v.slug),
            "title": v.title,
            "summary": v.summary,
            "visibility": v.visibility.as_str(),
            "presentedAt": v.presented_at.map(format_ms),
            "duration": v.duration,
            "collections": collections,
            "taggedUsers": self.users_json(&v.tagged_user_ids),
            "createdAt": format_ms(v.created_at),
        })
    }
}

/// What two renderings of a field are compared by: relations by the IDs they point at (a
/// parent whose other children changed is still the same parent), plain values as they are.
fn identity(v: &Value) -> Value {
    match v {
        Value::Object(m) => m.get("id").cloned().unwrap_or_else(|| v.clone()),
        Value::Array(items) => Value::Array(items.iter().map(identity).collect()),
        other => other.clone(),
    }
}

/// `{field: {from, to}}` for each of `fields` that differs between `before` and `after`.
/// Empty when nothing changed (and then no event is emitted).
pub fn updates(before: &Value, after: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        let (b, a) = (&before[*f], &after[*f]);
        if identity(b) != identity(a) {
            out.insert((*f).to_owned(), json!({ "from": b, "to": a }));
        }
    }
    out
}

/// The frozen part of a ping: `actor` and `channel`.
pub fn ping_data(actor: Value, channel: Value) -> String {
    let mut m = Map::new();
    m.insert("actor".into(), actor);
    m.insert("channel".into(), channel);
    Value::Object(m).to_string()
}

/// The frozen part of a `webhook.disabled`: `channel`, then `webhook`: the webhook herald
/// disabled (`id`, `url`, `description`, `events`, `disabledReason`), and `cause`: `gone` (its
/// receiver answered `410 Gone`) or `failing` (every delivery failed for
/// `HERALD_DISABLE_AFTER_SECS`).
pub fn webhook_disabled_data(
    channel: Value,
    hook: &crate::domain::webhook::Webhook,
    gone: bool,
) -> String {
    use crate::domain::ids::Typed;
    let mut m = Map::new();
    m.insert("channel".into(), channel);
    let events: Vec<&str> = hook.events.iter().map(|e| e.as_str()).collect();
    m.insert(
        "webhook".into(),
        json!({
            "id": hook.id.global(),
            "url": hook.url,
            "description": hook.description,
            "events": events,
            "disabledReason": "FAILING",
            "cause": if gone { "gone" } else { "failing" },
        }),
    );
    Value::Object(m).to_string()
}

/// The frozen object part of a payload: `actor`, `channel`, then `object_key` (`video` or
/// `collection`), then `updates` when given.
pub fn event_data(
    actor: Value,
    channel: Value,
    object_key: &str,
    object: Value,
    updates: Option<Map<String, Value>>,
) -> String {
    let mut m = Map::new();
    m.insert("actor".into(), actor);
    m.insert("channel".into(), channel);
    m.insert(object_key.into(), object);
    if let Some(u) = updates {
        m.insert("updates".into(), Value::Object(u));
    }
    Value::Object(m).to_string()
}

/// A delivery's body: `hookId`, `nonce`, `at`, `event`, then the frozen `data` (a JSON object),
/// written into one buffer.
pub fn body(hook_id: &str, nonce: &str, at_ms: i64, event: &str, data: &str) -> String {
    let rest = data.trim().strip_prefix('{').unwrap_or("}").trim_start();
    let mut out = Vec::with_capacity(rest.len() + hook_id.len() + nonce.len() + 96);
    out.extend_from_slice(b"{\"hookId\":");
    push_json_str(&mut out, hook_id);
    out.extend_from_slice(b",\"nonce\":");
    push_json_str(&mut out, nonce);
    out.extend_from_slice(b",\"at\":");
    push_json_str(&mut out, &format_ms(at_ms));
    out.extend_from_slice(b",\"event\":");
    push_json_str(&mut out, event);
    if !rest.starts_with('}') {
        out.push(b',');
    }
    out.extend_from_slice(rest.as_bytes());
    // Every piece is UTF-8: `data` is a `str`, and serde_json writes strings as UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail, nor can serialising a `str`.
    let _ = serde_json::to_writer(&mut *out, s);
}

mod social;
#[cfg(test)]
mod tests;
