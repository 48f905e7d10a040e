//! Videos and collections as the API shows them.

use super::scalars::{Date, Json, Url};
use super::social::{CommentObject, GroupObject, HighlightObject};
use super::users::{users_of, Actor, UserObject};
use super::{found, internal, services, web_url, VideoVisibility};
use crate::domain::content::{Collection, Video};
use crate::domain::ids::{encode, Kind};
use crate::domain::time::from_ms;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

pub struct VideoObject(pub Video);

/// A video of the channel.
#[Object(name = "Video")]
impl VideoObject {
    pub async fn id(&self) -> ID {
        ID(encode(Kind::Video, self.0.id))
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The video's summary (`""` when it has none).
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// The video's summary, `null` when it has none (Rewatch's name for it).
    async fn description(&self) -> Option<&str> {
        Some(self.0.summary.as_str()).filter(|s| !s.is_empty())
    }
    /// `DRAFT` while the video is a draft, then the visibility it was given.
    async fn visibility(&self) -> VideoVisibility {
        VideoVisibility::of(&self.0)
    }
    /// When the video was presented: the time given, else when it was added.
    async fn presented_at(&self) -> DateTime<Utc> {
        from_ms(self.0.presented_at.unwrap_or(self.0.created_at))
    }
    /// The day of `presentedAt` (UTC).
    async fn date(&self) -> Date {
        Date(from_ms(self.0.presented_at.unwrap_or(self.0.created_at)).date_naive())
    }
    /// The video's duration in milliseconds, when known. (Inputs and payloads give it in
    /// seconds, as Rewatch's do.)
    async fn duration(&self) -> Option<i64> {
        // At most a year of seconds (see `parse_duration`): the product fits an i64.
        self.0.duration.map(|secs| (secs * 1000.0).round() as i64)
    }
    async fn draft(&self) -> bool {
        self.0.draft
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        web_url(ctx, &format!("video/{}/{}", self.0.id, self.0.slug))
    }
    /// herald keeps no video files or images: always `null`.
    async fn thumbnail_url(&self) -> Option<Url> {
        None
    }
    /// herald keeps no video files: always 0.
    async fn bytes(&self) -> i64 {
        0
    }
    /// herald keeps no meeting attendees: always empty.
    async fn attendees_info(&self) -> Vec<Json> {
        Vec::new()
    }
    /// Rewatch's sharing setting, kept as given (`updateVideoDetails`): herald itself shows
    /// no video outside the channel.
    async fn external_sharing_enabled(&self) -> bool {
        self.0.external_sharing_enabled
    }
    /// Rewatch's setting, kept as given (`updateVideoDetails`).
    async fn show_comments_to_external_viewers(&self) -> bool {
        self.0.show_comments_to_external_viewers
    }
    /// Its comments, oldest first.
    async fn comments(&self, ctx: &Context<'_>) -> Result<Vec<CommentObject>> {
        let rows = services(ctx)?
            .store
            .comments_on(self.0.channel_id, self.0.id, None)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CommentObject).collect())
    }
    /// Its highlights, oldest first.
    async fn highlights(&self, ctx: &Context<'_>) -> Result<Vec<HighlightObject>> {
        let rows = services(ctx)?
            .store
            .highlights_of(self.0.channel_id, self.0.id)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(HighlightObject).collect())
    }
    /// The actor who uploaded the video: an `UnknownUser` when that user is gone, or for a
    /// video added before herald kept uploaders.
    async fn uploader(&self, ctx: &Context<'_>) -> Result<Actor> {
        Actor::load(ctx, self.0.channel_id, self.0.uploader_id).await
    }
    async fn collections(&self, ctx: &Context<'_>) -> Result<Vec<CollectionObject>> {
        let rows = services(ctx)?
            .store
            .collections(self.0.channel_id, &self.0.collection_ids)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CollectionObject).collect())
    }
    async fn tagged_users(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        users_of(ctx, self.0.channel_id, &self.0.tagged_user_ids).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.updated_at)
    }
}

/// A collection of videos.
pub struct CollectionObject(pub Collection);

#[Object(name = "Collection")]
impl CollectionObject {
    pub async fn id(&self) -> ID {
        ID(encode(Kind::Collection, self.0.id))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn secret(&self) -> bool {
        self.0.secret
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<Url> {
        web_url(ctx, &format!("collection/{}/{}", self.0.id, self.0.slug))
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<CollectionObject>> {
        let Some(p) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(
            found(services(ctx)?.store.collection(self.0.channel_id, p).await)?
                .map(CollectionObject),
        )
    }
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<CollectionObject>> {
        let rows = services(ctx)?
            .store
            .child_collections(self.0.channel_id, self.0.id)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CollectionObject).collect())
    }
    async fn admins(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        users_of(ctx, self.0.channel_id, &self.0.admin_ids).await
    }
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        users_of(ctx, self.0.channel_id, &self.0.member_ids).await
    }
    /// The groups among its admins.
    async fn admin_groups(&self, ctx: &Context<'_>) -> Result<Vec<GroupObject>> {
        groups_of(ctx, &self.0, &self.0.admin_group_ids).await
    }
    /// The groups among its members.
    async fn member_groups(&self, ctx: &Context<'_>) -> Result<Vec<GroupObject>> {
        groups_of(ctx, &self.0, &self.0.member_group_ids).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
}

/// The groups of `collection`'s channel among `ids`, in that order.
async fn groups_of(
    ctx: &Context<'_>,
    collection: &Collection,
    ids: &[i64],
) -> Result<Vec<GroupObject>> {
    let rows = services(ctx)?
        .store
        .groups(collection.channel_id, ids)
        .await
        .map_err(internal)?;
    Ok(rows.into_iter().map(GroupObject).collect())
}
