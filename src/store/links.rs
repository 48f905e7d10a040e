//! Videos and collections read whole (with the relations stored beside them), and the checks a
//! change's references must pass.

use super::backend::{Backend, Value};
use super::rows::{
    CollectionLinks, CollectionRow, GroupRow, LinkRow, VideoRow, COLLECTION_COLUMNS, VIDEO_COLUMNS,
};
use super::{Result, SqlStore, StoreError};
use crate::domain::content::{Collection, Video};
use crate::domain::groups::Group;
use crate::domain::ids::ChannelId;
use crate::domain::ids::{encode, Kind};
use crate::domain::Invalid;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};
use std::collections::{HashMap, HashSet};

/// Rows per statement when writing in bulk (far below both backends' bind limits).
pub(super) const CHUNK: usize = 256;

/// The many-to-many relations, stored as (owner, target, position) rows.
#[derive(Clone, Copy)]
pub(super) enum Link {
    VideoCollections,
    VideoTaggedUsers,
    CollectionAdmins,
    CollectionMembers,
    CollectionAdminGroups,
    CollectionMemberGroups,
    GroupMembers,
}

impl Link {
    /// Table, owner column, target column.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Link::VideoCollections => ("video_collections", "video_id", "collection_id"),
            Link::VideoTaggedUsers => ("video_tagged_users", "video_id", "user_id"),
            Link::CollectionAdmins => ("collection_admins", "collection_id", "user_id"),
            Link::CollectionMembers => ("collection_members", "collection_id", "user_id"),
            Link::CollectionAdminGroups => ("collection_admin_groups", "collection_id", "group_id"),
            Link::CollectionMemberGroups => {
                ("collection_member_groups", "collection_id", "group_id")
            }
            Link::GroupMembers => ("user_group_members", "group_id", "user_id"),
        }
    }
}

/// What a change may refer to by id.
#[derive(Clone, Copy)]
enum Referred {
    Users,
    Collections,
    Groups,
}

impl Referred {
    fn table(self) -> &'static str {
        match self {
            Referred::Users => "users",
            Referred::Collections => "collections",
            Referred::Groups => "user_groups",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Referred::Users => Kind::User,
            Referred::Collections => Kind::Collection,
            Referred::Groups => Kind::Group,
        }
    }
}

/// `ids` without repeats, each where it first appears: what [`SqlStore::insert_links`] stores.
pub(super) fn first_of_each(ids: &[i64]) -> Vec<i64> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

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
    pub(super) async fn video_of(
        c: &mut B::Connection,
        channel_id: ChannelId,
        id: i64,
    ) -> Result<Video> {
        let row = sqlx::query_as::<B, VideoRow>(&format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
        Self::hydrate_videos(c, vec![row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    pub(super) async fn collection_of(
        c: &mut B::Connection,
        channel_id: ChannelId,
        id: i64,
    ) -> Result<Collection> {
        let row = sqlx::query_as::<B, CollectionRow>(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
        Self::hydrate_collections(c, vec![row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    pub(super) async fn hydrate_videos(
        c: &mut B::Connection,
        rows: Vec<VideoRow>,
    ) -> Result<Vec<Video>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut colls = Self::links(c, Link::VideoCollections, &ids).await?;
        let mut tagged = Self::links(c, Link::VideoTaggedUsers, &ids).await?;
        rows.into_iter()
            .map(|r| {
                let (c, t) = (colls.remove(&r.id), tagged.remove(&r.id));
                r.with_links(c.unwrap_or_default(), t.unwrap_or_default())
            })
            .collect()
    }

    pub(super) async fn hydrate_collections(
        c: &mut B::Connection,
        rows: Vec<CollectionRow>,
    ) -> Result<Vec<Collection>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut admins = Self::links(c, Link::CollectionAdmins, &ids).await?;
        let mut admin_groups = Self::links(c, Link::CollectionAdminGroups, &ids).await?;
        let mut members = Self::links(c, Link::CollectionMembers, &ids).await?;
        let mut member_groups = Self::links(c, Link::CollectionMemberGroups, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let links = CollectionLinks {
                    admins: admins.remove(&r.id).unwrap_or_default(),
                    admin_groups: admin_groups.remove(&r.id).unwrap_or_default(),
                    members: members.remove(&r.id).unwrap_or_default(),
                    member_groups: member_groups.remove(&r.id).unwrap_or_default(),
                };
                r.with_links(links)
            })
            .collect())
    }

    pub(super) async fn hydrate_groups(
        c: &mut B::Connection,
        rows: Vec<GroupRow>,
    ) -> Result<Vec<Group>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut members = Self::links(c, Link::GroupMembers, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let m = members.remove(&r.id);
                r.with_members(m.unwrap_or_default())
            })
            .collect())
    }

    /// The targets of each of `owners` in a relation, in their stored order.
    async fn links(
        c: &mut B::Connection,
        link: Link,
        owners: &[i64],
    ) -> Result<HashMap<i64, Vec<i64>>> {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        if owners.is_empty() {
            return Ok(out);
        }
        let (table, owner_col, target_col) = link.names();
        let mut qb = QueryBuilder::<B>::new(format!(
            "SELECT {owner_col} AS owner, {target_col} AS target FROM {table} WHERE "
        ));
        B::push_in(&mut qb, owner_col, owners);
        qb.push(" ORDER BY owner, position");
        let rows: Vec<LinkRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&mut *c)
            .await?;
        for r in rows {
            out.entry(r.owner).or_default().push(r.target);
        }
        Ok(out)
    }

    /// Replaces the targets of `owner` in a relation, keeping the given order.
    pub(super) async fn replace_links(
        c: &mut B::Connection,
        link: Link,
        owner: i64,
        targets: &[i64],
    ) -> Result<()> {
        let (table, owner_col, _) = link.names();
        sqlx::query(&format!("DELETE FROM {table} WHERE {owner_col} = $1"))
            .bind(owner)
            .execute(&mut *c)
            .await?;
        Self::insert_links(c, link, owner, targets).await
    }

    /// Adds targets to `owner`, which has none yet, in the given order.
    pub(super) async fn insert_links(
        c: &mut B::Connection,
        link: Link,
        owner: i64,
        targets: &[i64],
    ) -> Result<()> {
        let (table, owner_col, target_col) = link.names();
        for (n, chunk) in targets.chunks(CHUNK).enumerate() {
            let mut qb = QueryBuilder::<B>::new(format!(
                "INSERT INTO {table} ({owner_col}, {target_col}, position) "
            ));
            let first = n * CHUNK;
            qb.push_values(chunk.iter().enumerate(), |mut b, (i, t)| {
                b.push_bind(owner)
                    .push_bind(*t)
                    .push_bind(i64::try_from(first + i).unwrap_or(i64::MAX));
            });
            qb.push(" ON CONFLICT DO NOTHING");
            B::shorten(qb.build()).execute(&mut *c).await?;
        }
        Ok(())
    }

    /// Fails with "no object found" naming the input `field` when any of `ids` is not a user
    /// of the channel.
    pub(super) async fn check_users(
        c: &mut B::Connection,
        channel_id: ChannelId,
        ids: &[i64],
        field: &'static str,
    ) -> Result<()> {
        Self::check_ids(c, Referred::Users, channel_id, ids, field).await
    }

    /// Fails with "no object found" naming the input `field` when any of `ids` is not a group
    /// of the channel.
    pub(super) async fn check_groups(
        c: &mut B::Connection,
        channel_id: ChannelId,
        ids: &[i64],
        field: &'static str,
    ) -> Result<()> {
        Self::check_ids(c, Referred::Groups, channel_id, ids, field).await
    }

    /// Fails with "no object found" naming the input `field` when any of `ids` is not a
    /// collection of the channel.
    pub(super) async fn check_collections(
        c: &mut B::Connection,
        channel_id: ChannelId,
        ids: &[i64],
        field: &'static str,
    ) -> Result<()> {
        Self::check_ids(c, Referred::Collections, channel_id, ids, field).await
    }

    async fn check_ids(
        c: &mut B::Connection,
        referred: Referred,
        channel_id: ChannelId,
        ids: &[i64],
        field: &'static str,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let table = referred.table();
        let mut qb = QueryBuilder::<B>::new(format!("SELECT id FROM {table} WHERE channel_id = "));
        qb.push_bind(channel_id).push(" AND ");
        B::push_in(&mut qb, "id", ids);
        let found: HashSet<i64> = B::shorten_as(qb.build_query_as::<(i64,)>())
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        match ids.iter().find(|id| !found.contains(id)) {
            None => Ok(()),
            Some(missing) => Err(Invalid::missing(
                field,
                format!(
                    "No object found for ID {}",
                    encode(referred.kind(), *missing)
                ),
            )
            .into()),
        }
    }

    /// Fails when making `parent` the parent of `id` would make `id` its own ancestor: walks up
    /// from `parent`.
    pub(super) async fn check_no_cycle(
        c: &mut B::Connection,
        id: i64,
        parent: Option<i64>,
    ) -> Result<()> {
        let Some(parent) = parent else {
            return Ok(());
        };
        let ancestors: Vec<i64> = sqlx::query_scalar::<B, i64>(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM collections WHERE id = $1 \
             UNION SELECT c.id, c.parent_id FROM collections c JOIN up ON c.id = up.parent_id) SELECT id FROM up",
        )
        .bind(parent)
        .fetch_all(&mut *c)
        .await?;
        if ancestors.contains(&id) {
            return Err(Invalid::new(
                "parentId",
                "a collection cannot be its own parent or the parent of its ancestors",
            )
            .into());
        }
        Ok(())
    }
}
