//! Users as Rewatch's schema has them: `User`, the `Actor` and `Viewer` interfaces it
//! implements, and `UnknownUser`, the actor shown where a user is gone.

use super::scalars::Url;
use super::{internal, invited_or_not, services, web_url, UserRole};
use crate::domain::content::{Role, User};
use crate::domain::ids::{ChannelId, Typed, UserId};
use crate::domain::time::from_ms;
use async_graphql::{Context, Enum, Interface, Object, Result, ID};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};

/// The channel's users among `ids`, in that order.
pub async fn users_of(
    ctx: &Context<'_>,
    channel: ChannelId,
    ids: &[i64],
) -> Result<Vec<UserObject>> {
    let rows = services(ctx)?
        .store
        .users(channel, ids)
        .await
        .map_err(internal)?;
    Ok(rows.into_iter().map(UserObject).collect())
}

/// An entity, such as a user, who has taken an action on a channel.
#[derive(Interface)]
#[graphql(
    field(
        name = "id",
        ty = "ID",
        desc = "The ID for the underlying concrete object."
    ),
    field(
        name = "display_name",
        ty = "String",
        desc = "The name to display when representing this actor."
    ),
    field(
        name = "avatar_url",
        ty = "Option<Url>",
        desc = "A URL for the actor's uploaded avatar image, if present.",
        arg(name = "size", ty = "Option<i32>")
    )
)]
pub enum Actor {
    User(UserObject),
    UnknownUser(UnknownUser),
}

impl Actor {
    /// The channel's user `id`, or the placeholder when there is none (the user is gone, or
    /// was never kept).
    pub async fn load(ctx: &Context<'_>, channel: ChannelId, id: Option<UserId>) -> Result<Self> {
        let Some(id) = id else {
            return Ok(Actor::UnknownUser(UnknownUser));
        };
        let mut users = services(ctx)?
            .store
            .users(channel, &[id.get()])
            .await
            .map_err(internal)?;
        Ok(users.pop().map_or(Actor::UnknownUser(UnknownUser), |u| {
            Actor::User(UserObject(u))
        }))
    }
}

/// An entity, such as a user, querying the GraphQL API.
#[derive(Interface)]
#[graphql(
    name = "Viewer",
    field(
        name = "id",
        ty = "ID",
        desc = "The ID for the underlying concrete object."
    ),
    field(name = "user", ty = "UserObject", desc = "The viewer as a user.")
)]
pub enum ViewerInterface {
    User(UserObject),
}

impl ViewerInterface {
    pub fn of(user: &User) -> Self {
        ViewerInterface::User(UserObject(user.clone()))
    }
}

/// An object that can be subscribed to.
#[derive(Interface)]
#[graphql(
    name = "Subscribable",
    field(name = "viewer_is_subscribed", ty = "bool")
)]
pub enum Subscribable {
    User(UserObject),
}

/// The channel role of a user. herald's users are admins or members; `OWNER` and `GUEST` are
/// Rewatch's, and no herald user has them.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChannelRole {
    Owner,
    Admin,
    Member,
    Guest,
}

impl From<Role> for ChannelRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => ChannelRole::Admin,
            Role::Member => ChannelRole::Member,
        }
    }
}

/// A member of the channel.
pub struct UserObject(pub User);

#[Object(name = "User")]
impl UserObject {
    pub async fn id(&self) -> ID {
        ID(self.0.id.global())
    }
    /// The name to display: first and last name, or the email when both are blank.
    async fn display_name(&self) -> String {
        self.0.display_name()
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
    /// herald keeps no avatars: always `null`.
    async fn avatar_url(&self, _size: Option<i32>) -> Option<Url> {
        None
    }
    /// herald keeps no avatars: always `null`.
    async fn avatar_color(&self) -> Option<&str> {
        None
    }
    /// The access level for the user.
    async fn channel_role(&self) -> ChannelRole {
        self.0.role.into()
    }
    /// herald's name for the access level (`channelRole` is Rewatch's).
    async fn role(&self) -> UserRole {
        self.0.role.into()
    }
    /// Whether the user may add videos (every admin and member may).
    async fn can_upload_videos(&self) -> bool {
        true
    }
    /// Whether this is the user the request's token belongs to.
    async fn is_viewer(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(invited_or_not(ctx)?.user.id == self.0.id)
    }
    /// herald has no subscriptions to users: always `false`.
    async fn viewer_is_subscribed(&self) -> bool {
        false
    }
    /// The user's page: `<channel URL>/user/<n>`.
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        web_url(ctx, &format!("user/{}", self.0.id))
    }
    /// The user itself, so that `viewer { user { … } }` reads the same as
    /// `viewer { … on User { … } }`.
    async fn user(&self) -> UserObject {
        UserObject(self.0.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.updated_at)
    }
}

/// A placeholder for an actor that is redacted or missing: the creator of a video or webhook
/// whose user herald no longer has.
#[derive(Default)]
pub struct UnknownUser;

#[Object]
impl UnknownUser {
    /// The same for every unknown user.
    pub async fn id(&self) -> ID {
        ID(BASE64.encode("UnknownUser-0"))
    }
    async fn display_name(&self) -> &str {
        "Unknown user"
    }
    /// Always `null`.
    async fn avatar_url(&self, _size: Option<i32>) -> Option<Url> {
        None
    }
}
