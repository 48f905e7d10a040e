//! A channel's content, videos and collections: each change writes its event and deliveries in
//! its own transaction (see `events.rs`).

use super::backend::{Backend, Begin, Commit, Value};
use super::events::{held, Emitted};
use super::links::{first_of_each, Link};
use super::rows::{CollectionLinks, CollectionRow, VideoRow, COLLECTION_COLUMNS, VIDEO_COLUMNS};
use super::types::Change;
use super::{Changed, Page, Result, SqlStore};
use crate::domain::content::{
    slug, Collection, CollectionPatch, ListChange, NewCollection, NewVideo, Role, Video, VideoPatch,
};
use crate::domain::event::{self, EventName, COLLECTION_FIELDS, VIDEO_FIELDS};
use crate::domain::ids::ChannelId;
use crate::domain::time::now_ms;
use crate::domain::Invalid;
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
    pub(super) async fn create_video(
        &self,
        change: Change<'_>,
        new: &NewVideo,
    ) -> Result<Changed<Video>> {
        let channel_id = change.actor.channel.id;
        let mut tx = self.writes.begin().await?;
        let (collections, users) = (&new.collection_ids, &new.tagged_user_ids);
        Self::check_collections(&mut tx, channel_id, collections, "collectionIds").await?;
        Self::check_users(&mut tx, channel_id, users, "taggedUserIds").await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar::<B, i64>(
            "INSERT INTO videos (channel_id, title, slug, summary, visibility, presented_at, duration, draft, uploader_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(channel_id)
        .bind(&new.title)
        .bind(slug(&new.title))
        .bind(&new.summary)
        .bind(new.visibility.as_str())
        .bind(new.presented_at)
        .bind(new.duration)
        .bind(new.draft)
        .bind(change.actor.user.id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        Self::insert_links(&mut tx, Link::VideoCollections, id, collections).await?;
        Self::insert_links(&mut tx, Link::VideoTaggedUsers, id, users).await?;
        let video = Self::video_of(&mut tx, channel_id, id).await?;
        let emitted = self
            .announce_video(&mut tx, change, &video, EventName::VideoAddedToChannel)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    pub(super) async fn publish_video(
        &self,
        change: Change<'_>,
        id: i64,
    ) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        let before = Self::video_of(&mut tx, change.actor.channel.id, id).await?;
        if !before.draft {
            tx.commit().await?;
            return Ok(Changed::quiet(before));
        }
        sqlx::query("UPDATE videos SET draft = FALSE, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let video = Self::video_of(&mut tx, change.actor.channel.id, id).await?;
        let emitted = self
            .announce_video(&mut tx, change, &video, EventName::VideoAddedToChannel)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    pub(super) async fn update_video(
        &self,
        change: Change<'_>,
        id: i64,
        patch: &VideoPatch,
    ) -> Result<Changed<Video>> {
        let channel_id = change.actor.channel.id;
        let mut tx = self.writes.begin().await?;
        let before = Self::video_of(&mut tx, channel_id, id).await?;
        let actor = &change.actor.user;
        let uploader = before.uploader_id == Some(actor.id);
        if patch.uploader_or_admin && !uploader && actor.role != Role::Admin {
            return Err(Invalid::forbidden(
                "videoId",
                "Only the uploader or channel admins may modify a video's details",
            )
            .into());
        }
        if patch.require_draft && !before.draft {
            return Err(Invalid::new(
                "visibility",
                "only a draft can be DRAFT: a video on the channel cannot go back to draft",
            )
            .into());
        }
        let collections = patch.collections.as_ref().map_or(&[][..], ListChange::ids);
        let users = patch.tagged_users.as_ref().map_or(&[][..], ListChange::ids);
        Self::check_collections(&mut tx, channel_id, collections, "collectionIds").await?;
        Self::check_users(&mut tx, channel_id, users, "taggedUserIds").await?;
        let wanted = patch.apply(&before);
        if wanted == before {
            tx.commit().await?;
            return Ok(Changed::quiet(before));
        }
        Self::write_video(&mut tx, &before, &wanted).await?;
        let after = Self::video_of(&mut tx, channel_id, id).await?;
        let mut emitted = Emitted::default();
        if !after.draft {
            let mut users = before.tagged_user_ids.clone();
            users.extend(&after.tagged_user_ids);
            let mut rooted = before.collection_ids.clone();
            rooted.extend(&after.collection_ids);
            let cat = self
                .catalog(&mut tx, &change.actor.channel, &rooted, &users)
                .await?;
            let (old, new) = (cat.video_json(&before), cat.video_json(&after));
            let updates = event::updates(&old, &new, &VIDEO_FIELDS);
            if !updates.is_empty() {
                let name = EventName::VideoUpdated;
                emitted =
                    Self::emit(&mut tx, change, &cat, name, "video", new, Some(updates)).await?;
            }
        }
        tx.commit().await?;
        Ok(emitted.into_changed(after))
    }

    pub(super) async fn delete_video(&self, change: Change<'_>, id: i64) -> Result<Changed<Video>> {
        let mut tx = self.writes.begin().await?;
        let video = Self::video_of(&mut tx, change.actor.channel.id, id).await?;
        let emitted = self
            .announce_video(&mut tx, change, &video, EventName::VideoDeleted)
            .await?;
        sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(video))
    }

    /// Writes the columns and links of video `before` as they are in `wanted`.
    async fn write_video(c: &mut B::Connection, before: &Video, wanted: &Video) -> Result<()> {
        sqlx::query(
            "UPDATE videos SET title = $1, summary = $2, visibility = $3, presented_at = $4, duration = $5, updated_at = $6, \
             external_sharing_enabled = $7, show_comments_to_external_viewers = $8 WHERE id = $9",
        )
        .bind(&wanted.title)
        .bind(&wanted.summary)
        .bind(wanted.visibility.as_str())
        .bind(wanted.presented_at)
        .bind(wanted.duration)
        .bind(now_ms())
        .bind(wanted.external_sharing_enabled)
        .bind(wanted.show_comments_to_external_viewers)
        .bind(before.id)
        .execute(&mut *c)
        .await?;
        if wanted.collection_ids != before.collection_ids {
            Self::replace_links(c, Link::VideoCollections, before.id, &wanted.collection_ids)
                .await?;
        }
        if wanted.tagged_user_ids != before.tagged_user_ids {
            Self::replace_links(
                c,
                Link::VideoTaggedUsers,
                before.id,
                &wanted.tagged_user_ids,
            )
            .await?;
        }
        Ok(())
    }

    /// Writes event `name` about `video`, unless it is a draft (drafts are not announced).
    async fn announce_video(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        video: &Video,
        name: EventName,
    ) -> Result<Emitted> {
        if video.draft {
            return Ok(Emitted::default());
        }
        let (roots, users) = (&video.collection_ids, &video.tagged_user_ids);
        let cat = self.catalog(c, &change.actor.channel, roots, users).await?;
        let object = cat.video_json(video);
        Self::emit(c, change, &cat, name, "video", object, None).await
    }

    pub(super) async fn create_collection(
        &self,
        change: Change<'_>,
        new: &NewCollection,
    ) -> Result<Changed<Collection>> {
        let channel_id = change.actor.channel.id;
        let mut tx = self.writes.begin().await?;
        let parent = new.parent_id.as_slice();
        Self::check_collections(&mut tx, channel_id, parent, "parentId").await?;
        Self::check_users(&mut tx, channel_id, &new.admin_ids, "adminIds").await?;
        Self::check_groups(&mut tx, channel_id, &new.admin_group_ids, "adminIds").await?;
        Self::check_users(&mut tx, channel_id, &new.member_ids, "memberIds").await?;
        Self::check_groups(&mut tx, channel_id, &new.member_group_ids, "memberIds").await?;
        let row = Self::insert_collection(&mut tx, channel_id, new).await?;
        let id = row.id;
        let (coll, cat) = match new.parent_id {
            // The parent's subtree, now with the new collection in it.
            Some(parent) => {
                let cat = self
                    .catalog(&mut tx, &change.actor.channel, &[parent], &[])
                    .await?;
                (held(&cat, id)?, cat)
            }
            // A new root collection is its own whole subtree; its links are as just written.
            None => {
                let coll = row.with_links(CollectionLinks {
                    admins: first_of_each(&new.admin_ids),
                    admin_groups: first_of_each(&new.admin_group_ids),
                    members: first_of_each(&new.member_ids),
                    member_groups: first_of_each(&new.member_group_ids),
                });
                let trees = vec![coll.clone()];
                let cat = self
                    .catalog_of(&mut tx, &change.actor.channel, trees, &[])
                    .await?;
                (coll, cat)
            }
        };
        let object = cat.collection_json(&coll);
        let name = EventName::CollectionCreated;
        let emitted = Self::emit(&mut tx, change, &cat, name, "collection", object, None).await?;
        tx.commit().await?;
        Ok(emitted.into_changed(coll))
    }

    /// Writes a new collection of the channel with its admins and members.
    async fn insert_collection(
        c: &mut B::Connection,
        channel_id: ChannelId,
        new: &NewCollection,
    ) -> Result<CollectionRow> {
        let now = now_ms();
        let row = sqlx::query_as::<B, CollectionRow>(&format!(
            "INSERT INTO collections (channel_id, parent_id, name, slug, description, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLLECTION_COLUMNS}"
        ))
        .bind(channel_id)
        .bind(new.parent_id)
        .bind(&new.name)
        .bind(slug(&new.name))
        .bind(&new.description)
        .bind(new.secret)
        .bind(now)
        .fetch_one(&mut *c)
        .await?;
        let id = row.id;
        Self::insert_links(c, Link::CollectionAdmins, id, &new.admin_ids).await?;
        Self::insert_links(c, Link::CollectionAdminGroups, id, &new.admin_group_ids).await?;
        Self::insert_links(c, Link::CollectionMembers, id, &new.member_ids).await?;
        Self::insert_links(c, Link::CollectionMemberGroups, id, &new.member_group_ids).await?;
        Ok(row)
    }

    pub(super) async fn update_collection(
        &self,
        change: Change<'_>,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<Changed<Collection>> {
        let mut tx = self.writes.begin().await?;
        let (after, emitted) = self
            .update_collection_in(&mut tx, change, id, patch)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(after))
    }

    /// [`Self::update_collection`] inside the caller's transaction: the collection after the
    /// change, and the `collection.updated` it emitted when something changed.
    pub(super) async fn update_collection_in(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        id: i64,
        patch: &CollectionPatch,
    ) -> Result<(Collection, Emitted)> {
        let channel_id = change.actor.channel.id;
        let before = Self::collection_of(c, channel_id, id).await?;
        let parent = patch.parent_id.flatten();
        Self::check_collections(c, channel_id, parent.as_slice(), "parentId").await?;
        for (principals, field) in [(&patch.admins, "adminIds"), (&patch.members, "memberIds")] {
            if let Some(p) = principals {
                Self::check_users(c, channel_id, &p.users, field).await?;
                Self::check_groups(c, channel_id, &p.groups, field).await?;
            }
        }
        let wanted = patch.apply(&before);
        if wanted == before {
            return Ok((before, Emitted::default()));
        }
        let roots: Vec<i64> = [Some(id), before.parent_id, wanted.parent_id]
            .into_iter()
            .flatten()
            .collect();
        let old_cat = self.catalog(c, &change.actor.channel, &roots, &[]).await?;
        if wanted.parent_id != before.parent_id {
            Self::check_no_cycle(c, id, wanted.parent_id).await?;
        }
        let old = old_cat.collection_json(&before);
        Self::write_collection(c, &before, &wanted).await?;
        let new_cat = self.catalog(c, &change.actor.channel, &roots, &[]).await?;
        let after = held(&new_cat, id)?;
        let new = new_cat.collection_json(&after);
        let updates = event::updates(&old, &new, &COLLECTION_FIELDS);
        let mut emitted = Emitted::default();
        if !updates.is_empty() {
            let name = EventName::CollectionUpdated;
            let updates = Some(updates);
            emitted = Self::emit(c, change, &new_cat, name, "collection", new, updates).await?;
        }
        Ok((after, emitted))
    }

    /// Writes the columns and links of collection `before` as they are in `wanted`.
    async fn write_collection(
        c: &mut B::Connection,
        before: &Collection,
        wanted: &Collection,
    ) -> Result<()> {
        sqlx::query("UPDATE collections SET name = $1, description = $2, secret = $3, parent_id = $4, updated_at = $5 WHERE id = $6")
            .bind(&wanted.name)
            .bind(&wanted.description)
            .bind(wanted.secret)
            .bind(wanted.parent_id)
            .bind(now_ms())
            .bind(before.id)
            .execute(&mut *c)
            .await?;
        let id = before.id;
        let lists = [
            (Link::CollectionAdmins, &before.admin_ids, &wanted.admin_ids),
            (
                Link::CollectionAdminGroups,
                &before.admin_group_ids,
                &wanted.admin_group_ids,
            ),
            (
                Link::CollectionMembers,
                &before.member_ids,
                &wanted.member_ids,
            ),
            (
                Link::CollectionMemberGroups,
                &before.member_group_ids,
                &wanted.member_group_ids,
            ),
        ];
        for (link, was, now) in lists {
            if was != now {
                Self::replace_links(c, link, id, now).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn delete_collection(
        &self,
        change: Change<'_>,
        id: i64,
    ) -> Result<Changed<Collection>> {
        let mut tx = self.writes.begin().await?;
        let cat = self
            .catalog(&mut tx, &change.actor.channel, &[id], &[])
            .await?;
        let coll = held(&cat, id)?;
        let object = cat.deleted_collection_json(&coll);
        let name = EventName::CollectionDeleted;
        let emitted = Self::emit(&mut tx, change, &cat, name, "collection", object, None).await?;
        sqlx::query("DELETE FROM collections WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(emitted.into_changed(coll))
    }

    pub(super) async fn video(&self, channel_id: ChannelId, id: i64) -> Result<Video> {
        let mut c = self.reader.acquire().await?;
        Self::video_of(&mut c, channel_id, id).await
    }

    pub(super) async fn list_videos(
        &self,
        channel_id: ChannelId,
        page: Page,
    ) -> Result<Vec<Video>> {
        let mut c = self.reader.acquire().await?;
        let rows: Vec<VideoRow> =
            Self::page_of(&mut c, "videos", VIDEO_COLUMNS, channel_id, page).await?;
        Self::hydrate_videos(&mut c, rows).await
    }

    pub(super) async fn collection(&self, channel_id: ChannelId, id: i64) -> Result<Collection> {
        let mut c = self.reader.acquire().await?;
        Self::collection_of(&mut c, channel_id, id).await
    }

    /// The channel's collections among `ids`, in the order of `ids`.
    pub(super) async fn collections(
        &self,
        channel_id: ChannelId,
        ids: &[i64],
    ) -> Result<Vec<Collection>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.reader.acquire().await?;
        let rows: Vec<CollectionRow> =
            Self::rows_in(&mut c, "collections", COLLECTION_COLUMNS, channel_id, ids).await?;
        let mut by_id: HashMap<i64, Collection> = Self::hydrate_collections(&mut c, rows)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    pub(super) async fn child_collections(
        &self,
        channel_id: ChannelId,
        parent_id: i64,
    ) -> Result<Vec<Collection>> {
        let mut c = self.reader.acquire().await?;
        let rows = sqlx::query_as::<B, CollectionRow>(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE channel_id = $1 AND parent_id = $2 ORDER BY id"
        ))
        .bind(channel_id)
        .bind(parent_id)
        .fetch_all(&mut *c)
        .await?;
        Self::hydrate_collections(&mut c, rows).await
    }

    pub(super) async fn list_collections(
        &self,
        channel_id: ChannelId,
        page: Page,
    ) -> Result<Vec<Collection>> {
        let mut c = self.reader.acquire().await?;
        let rows: Vec<CollectionRow> =
            Self::page_of(&mut c, "collections", COLLECTION_COLUMNS, channel_id, page).await?;
        Self::hydrate_collections(&mut c, rows).await
    }
}
