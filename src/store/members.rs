//! A channel's members: invitations, joining, deactivation and roles. Each change writes its
//! `member.*` events and their deliveries in its own transaction (see `events.rs`).

use super::backend::{Backend, Begin, Commit, Value};
use super::events::Emitted;
use super::rows::{UserRow, USER_COLUMNS};
use super::types::Change;
use super::{Changed, Result, SqlStore};
use crate::domain::content::{Role, User};
use crate::domain::event::{self, Catalog, EventName, MEMBER_FIELDS};
use crate::domain::members::{MemberChange, MemberStatus};
use crate::domain::time::now_ms;
use crate::domain::Invalid;
use sqlx::{ColumnIndex, Encode, Executor, Type};

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> &'q str: Type<B> + Encode<'q, B> + ColumnIndex<B::Row>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    i64: Value<B>,
    Option<i64>: Value<B>,
    String: Value<B>,
    Option<String>: Value<B>,
    bool: Value<B>,
    Option<f64>: Value<B>,
    usize: ColumnIndex<B::Row>,
{
    /// Makes a change to the channel's members; returns the users it concerns, as they are
    /// after it.
    pub(super) async fn change_members(
        &self,
        change: Change<'_>,
        what: &MemberChange,
    ) -> Result<Changed<Vec<User>>> {
        let mut tx = self.writes.begin().await?;
        let mut users = Vec::new();
        let mut emitted = Emitted::default();
        let me = change.actor.user.id.get();
        match what {
            MemberChange::Invite { emails, role } => {
                for email in emails {
                    let (user, e) = self.invite(&mut tx, change, email, *role).await?;
                    users.push(user);
                    emitted = emitted.and(e);
                }
            }
            MemberChange::Accept => {
                let user = Self::user_of(&mut tx, change, me, "").await?;
                if user.status != MemberStatus::Invited {
                    return Err(Invalid::new("", "there is no invitation to accept").into());
                }
                let joined = EventName::MemberJoined;
                let (user, e) = self
                    .set_status(&mut tx, change, &user, MemberStatus::Active, joined)
                    .await?;
                users.push(user);
                emitted = e;
            }
            MemberChange::Deactivate(ids) => {
                Self::check_users(&mut tx, change.actor.channel.id, ids, "userIds").await?;
                if ids.contains(&me) {
                    return Err(Invalid::new("userIds", "you cannot deactivate yourself").into());
                }
                for id in ids {
                    let user = Self::user_of(&mut tx, change, *id, "userIds").await?;
                    if user.status == MemberStatus::Deactivated {
                        users.push(user);
                        continue;
                    }
                    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(now_ms())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                    let gone = EventName::MemberDeactivated;
                    let (user, e) = self
                        .set_status(&mut tx, change, &user, MemberStatus::Deactivated, gone)
                        .await?;
                    users.push(user);
                    emitted = emitted.and(e);
                }
            }
            MemberChange::SetRole(id, role) => {
                if *id == me {
                    return Err(Invalid::new("userId", "you cannot change your own role").into());
                }
                let before = Self::user_of(&mut tx, change, *id, "userId").await?;
                let (after, e) = self.set_role_of(&mut tx, change, &before, *role).await?;
                users.push(after);
                emitted = e;
            }
        }
        tx.commit().await?;
        Ok(emitted.into_changed(users))
    }

    /// Invites `email`: a new user, or one deactivated before, invited again (`member.invited`);
    /// one already invited is left as it is; a member is refused.
    async fn invite(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        email: &str,
        role: Role,
    ) -> Result<(User, Emitted)> {
        let channel = change.actor.channel.id;
        let found = sqlx::query_as::<B, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE channel_id = $1 AND email = $2"
        ))
        .bind(channel)
        .bind(email)
        .fetch_optional(&mut *c)
        .await?
        .map(User::try_from)
        .transpose()?;
        let now = now_ms();
        let user = match found {
            Some(u) if u.status == MemberStatus::Active => {
                return Err(Invalid::new("emails", format!("{email} is already a member of the channel")).into());
            }
            Some(u) if u.status == MemberStatus::Invited => return Ok((u, Emitted::default())),
            Some(u) => {
                sqlx::query("UPDATE users SET status = $1, role = $2, updated_at = $3 WHERE id = $4")
                    .bind(MemberStatus::Invited.as_str())
                    .bind(role.as_str())
                    .bind(now)
                    .bind(u.id)
                    .execute(&mut *c)
                    .await?;
                Self::user_of(c, change, u.id.get(), "emails").await?
            }
            None => sqlx::query_as::<B, UserRow>(&format!(
                "INSERT INTO users (channel_id, email, first_name, last_name, role, status, created_at, updated_at) \
                 VALUES ($1, $2, '', '', $3, $4, $5, $5) RETURNING {USER_COLUMNS}"
            ))
            .bind(channel)
            .bind(email)
            .bind(role.as_str())
            .bind(MemberStatus::Invited.as_str())
            .bind(now)
            .fetch_one(&mut *c)
            .await?
            .try_into()?,
        };
        let emitted = self
            .announce_member(c, change, &user, EventName::MemberInvited, None)
            .await?;
        Ok((user, emitted))
    }

    /// Moves `user` to `status`, announced as `name`.
    async fn set_status(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        user: &User,
        status: MemberStatus,
        name: EventName,
    ) -> Result<(User, Emitted)> {
        sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(user.id)
            .execute(&mut *c)
            .await?;
        let after = Self::user_of(c, change, user.id.get(), "").await?;
        let emitted = self.announce_member(c, change, &after, name, None).await?;
        Ok((after, emitted))
    }

    /// Gives `before` the role `role`: `member.updated`, unless it had it.
    async fn set_role_of(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        before: &User,
        role: Role,
    ) -> Result<(User, Emitted)> {
        if before.role == role {
            return Ok((before.clone(), Emitted::default()));
        }
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now_ms())
            .bind(before.id)
            .execute(&mut *c)
            .await?;
        let after = Self::user_of(c, change, before.id.get(), "userId").await?;
        let (old, new) = (Catalog::member_json(before), Catalog::member_json(&after));
        let updates = event::updates(&old, &new, &MEMBER_FIELDS);
        let name = EventName::MemberUpdated;
        let emitted = self
            .announce_member(c, change, &after, name, Some(updates))
            .await?;
        Ok((after, emitted))
    }

    async fn announce_member(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        user: &User,
        name: EventName,
        updates: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Emitted> {
        let cat = self
            .catalog_of(c, &change.actor.channel, Vec::new(), &[])
            .await?;
        let object = Catalog::member_json(user);
        Self::emit(c, change, &cat, name, "member", object, updates).await
    }

    /// The channel's user `id`; one that is not is "not found" at input `field`.
    async fn user_of(
        c: &mut B::Connection,
        change: Change<'_>,
        id: i64,
        field: &'static str,
    ) -> Result<User> {
        Self::users_in(c, change.actor.channel.id, &[id])
            .await?
            .pop()
            .ok_or_else(|| Invalid::missing(field, "No object found").into())
    }
}
