//! How members, groups, comments and highlights appear in payloads.

use super::Catalog;
use crate::domain::comments::{Comment, Highlight};
use crate::domain::content::{Role, User, Video};
use crate::domain::groups::Group;
use crate::domain::ids::{encode, Kind, UserId};
use crate::domain::time::format_ms;
use serde_json::{json, Map, Value};

/// A role as the API names it (`ChannelRole`).
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "ADMIN",
        Role::Member => "MEMBER",
    }
}

/// Milliseconds as the seconds payloads give times in (as a video's `duration`).
fn seconds(ms: i64) -> Value {
    (ms as f64 / 1000.0).into()
}

impl Catalog {
    /// The user of a `member.*` event: the actor's shape, then `role` and `status`.
    pub fn member_json(user: &User) -> Value {
        let mut v = Self::user_json(user);
        if let Value::Object(m) = &mut v {
            m.insert("role".into(), role_name(user.role).into());
            m.insert("status".into(), user.status.as_str().into());
        }
        v
    }

    /// A group, wherever it appears: `{id, name, description, members, createdAt}`.
    pub fn group_json(&self, g: &Group) -> Value {
        json!({
            "id": encode(Kind::Group, g.id),
            "name": g.name,
            "description": g.description,
            "members": self.users_json(&g.member_ids),
            "createdAt": format_ms(g.created_at),
        })
    }

    /// A user the catalog holds, in the actor's shape; `null` when gone.
    fn someone(&self, id: Option<UserId>) -> Value {
        id.and_then(|id| self.users.get(&id.get()))
            .map_or(Value::Null, Self::user_json)
    }

    /// A highlight: `{id, title, startTime, endTime, creator, video, createdAt}`; nested in a
    /// comment (which has the video), without `video`.
    pub fn highlight_json(&self, h: &Highlight, video: Option<&Video>) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), encode(Kind::Highlight, h.id).into());
        m.insert("title".into(), h.title.clone().into());
        m.insert("startTime".into(), seconds(h.start_ms));
        m.insert("endTime".into(), seconds(h.end_ms));
        m.insert("creator".into(), self.someone(h.creator_id));
        if let Some(video) = video {
            m.insert("video".into(), self.video_json(video));
        }
        m.insert("createdAt".into(), format_ms(h.created_at).into());
        Value::Object(m)
    }

    /// A comment: `{id, body, author, video, highlight, createdAt}` (`highlight` is the one it
    /// was made on, or `null`).
    pub fn comment_json(&self, c: &Comment, video: &Video, on: Option<&Highlight>) -> Value {
        json!({
            "id": encode(Kind::Comment, c.id),
            "body": c.body,
            "author": self.someone(c.author_id),
            "video": self.video_json(video),
            "highlight": on.map_or(Value::Null, |h| self.highlight_json(h, None)),
            "createdAt": format_ms(c.created_at),
        })
    }
}
