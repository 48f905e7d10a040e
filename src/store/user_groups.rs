//! User groups: each change writes its event and deliveries in its own transaction (see
//! `events.rs`). Deleting a group takes it out of the collections that name it, each of which
//! then emits its `collection.updated`.

use super::backend::{Backend, Begin, Commit, Value};
use super::events::Emitted;
use super::links::{first_of_each, Link};
use super::rows::{GroupRow, GROUP_COLUMNS};
use super::types::Change;
use super::{Changed, Page, Result, SqlStore, StoreError};
use crate::domain::content::{CollectionPatch, Principals};
use crate::domain::event::{self, EventName, GROUP_FIELDS};
use crate::domain::groups::{Group, GroupChange, GroupPatch, NewGroup};
use crate::domain::ids::ChannelId;
use crate::domain::time::now_ms;
use sqlx::{ColumnIndex, Encode, Executor, Type};
use std::collections::HashMap;

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
    pub(super) async fn change_group(
        &self,
        change: Change<'_>,
        what: &GroupChange,
    ) -> Result<Changed<Group>> {
        let mut tx = self.writes.begin().await?;
        let (group, emitted) = match what {
            GroupChange::Create(new) => self.create_group(&mut tx, change, new).await?,
            GroupChange::Update(id, patch) => {
                self.update_group(&mut tx, change, *id, patch).await?
            }
            GroupChange::Delete(id) => self.delete_group(&mut tx, change, *id).await?,
        };
        tx.commit().await?;
        Ok(emitted.into_changed(group))
    }

    async fn create_group(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        new: &NewGroup,
    ) -> Result<(Group, Emitted)> {
        let channel = &change.actor.channel;
        Self::check_users(c, channel.id, &new.member_ids, "memberIds").await?;
        let now = now_ms();
        let row = sqlx::query_as::<B, GroupRow>(&format!(
            "INSERT INTO user_groups (channel_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {GROUP_COLUMNS}"
        ))
        .bind(channel.id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(now)
        .fetch_one(&mut *c)
        .await?;
        Self::insert_links(c, Link::GroupMembers, row.id, &new.member_ids).await?;
        let group = row.with_members(first_of_each(&new.member_ids));
        let cat = self
            .catalog_with_groups(c, channel, Vec::new(), &group.member_ids, &[])
            .await?;
        let object = cat.group_json(&group);
        let name = EventName::GroupCreated;
        let emitted = Self::emit(c, change, &cat, name, "group", object, None).await?;
        Ok((group, emitted))
    }

    async fn update_group(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        id: i64,
        patch: &GroupPatch,
    ) -> Result<(Group, Emitted)> {
        let channel = &change.actor.channel;
        let before = Self::group_of(c, channel.id, id).await?;
        let members = patch.member_ids.as_deref().unwrap_or_default();
        Self::check_users(c, channel.id, members, "memberIds").await?;
        let wanted = patch.apply(&before);
        if wanted == before {
            return Ok((before, Emitted::default()));
        }
        let mut users = before.member_ids.clone();
        users.extend(&wanted.member_ids);
        let cat = self
            .catalog_with_groups(c, channel, Vec::new(), &users, &[])
            .await?;
        sqlx::query(
            "UPDATE user_groups SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&wanted.name)
        .bind(&wanted.description)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *c)
        .await?;
        if wanted.member_ids != before.member_ids {
            Self::replace_links(c, Link::GroupMembers, id, &wanted.member_ids).await?;
        }
        let after = Self::group_of(c, channel.id, id).await?;
        let (old, new) = (cat.group_json(&before), cat.group_json(&after));
        let updates = event::updates(&old, &new, &GROUP_FIELDS);
        if updates.is_empty() {
            return Ok((after, Emitted::default()));
        }
        let name = EventName::GroupUpdated;
        let emitted = Self::emit(c, change, &cat, name, "group", new, Some(updates)).await?;
        Ok((after, emitted))
    }

    async fn delete_group(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        id: i64,
    ) -> Result<(Group, Emitted)> {
        let channel = &change.actor.channel;
        let group = Self::group_of(c, channel.id, id).await?;
        let cat = self
            .catalog_with_groups(c, channel, Vec::new(), &group.member_ids, &[])
            .await?;
        let object = cat.group_json(&group);
        let name = EventName::GroupDeleted;
        let mut emitted = Self::emit(c, change, &cat, name, "group", object, None).await?;
        let holders: Vec<i64> = sqlx::query_scalar::<B, i64>(
            "SELECT collection_id FROM collection_admin_groups WHERE group_id = $1 \
             UNION SELECT collection_id FROM collection_member_groups WHERE group_id = $1 \
             ORDER BY 1",
        )
        .bind(id)
        .fetch_all(&mut *c)
        .await?;
        for holder in holders {
            let coll = Self::collection_of(c, channel.id, holder).await?;
            let without = |users: &[i64], groups: &[i64]| Principals {
                users: users.to_vec(),
                groups: groups.iter().copied().filter(|g| *g != id).collect(),
            };
            let patch = CollectionPatch {
                admins: Some(without(&coll.admin_ids, &coll.admin_group_ids)),
                members: Some(without(&coll.member_ids, &coll.member_group_ids)),
                ..CollectionPatch::default()
            };
            let (_, more) = self.update_collection_in(c, change, holder, &patch).await?;
            emitted = emitted.and(more);
        }
        sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *c)
            .await?;
        Ok((group, emitted))
    }

    pub(super) async fn group(&self, channel_id: ChannelId, id: i64) -> Result<Group> {
        let mut c = self.reader.acquire().await?;
        Self::group_of(&mut c, channel_id, id).await
    }

    pub(super) async fn groups(&self, channel_id: ChannelId, ids: &[i64]) -> Result<Vec<Group>> {
        let mut c = self.reader.acquire().await?;
        Self::groups_in(&mut c, channel_id, ids).await
    }

    pub(super) async fn list_groups(
        &self,
        channel_id: ChannelId,
        page: Page,
    ) -> Result<Vec<Group>> {
        let mut c = self.reader.acquire().await?;
        let rows: Vec<GroupRow> =
            Self::page_of(&mut c, "user_groups", GROUP_COLUMNS, channel_id, page).await?;
        Self::hydrate_groups(&mut c, rows).await
    }

    pub(super) async fn group_of(
        c: &mut B::Connection,
        channel_id: ChannelId,
        id: i64,
    ) -> Result<Group> {
        Self::groups_in(c, channel_id, &[id])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// The channel's groups among `ids`, in the order of `ids`; unknown ones are left out.
    pub(super) async fn groups_in(
        c: &mut B::Connection,
        channel_id: ChannelId,
        ids: &[i64],
    ) -> Result<Vec<Group>> {
        let rows: Vec<GroupRow> =
            Self::rows_in(c, "user_groups", GROUP_COLUMNS, channel_id, ids).await?;
        let mut by_id: HashMap<i64, Group> = Self::hydrate_groups(c, rows)
            .await?
            .into_iter()
            .map(|g| (g.id, g))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}
