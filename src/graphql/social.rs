//! Groups, comments and highlights as the API shows them.

use super::users::{users_of, Actor, UserObject};
use super::videos::VideoObject;
use super::{found, internal, services};
use crate::domain::comments::{Comment, Highlight};
use crate::domain::groups::Group;
use crate::domain::ids::{encode, Kind};
use crate::domain::time::from_ms;
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

/// A group of the channel's users, which collections may name as admins or members.
pub struct GroupObject(pub Group);

#[Object(name = "Group")]
impl GroupObject {
    pub async fn id(&self) -> ID {
        ID(encode(Kind::Group, self.0.id))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// In the order given.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<UserObject>> {
        users_of(ctx, self.0.channel_id, &self.0.member_ids).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        from_ms(self.0.updated_at)
    }
}

/// A comment on a video, made on one of its highlights or not.
pub struct CommentObject(pub Comment);

#[Object(name = "Comment")]
impl CommentObject {
    pub async fn id(&self) -> ID {
        ID(encode(Kind::Comment, self.0.id))
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// An `UnknownUser` when the author is gone.
    async fn author(&self, ctx: &Context<'_>) -> Result<Actor> {
        Actor::load(ctx, self.0.channel_id, self.0.author_id).await
    }
    async fn video(&self, ctx: &Context<'_>) -> Result<Option<VideoObject>> {
        let video = services(ctx)?
            .store
            .video(self.0.channel_id, self.0.video_id);
        Ok(found(video.await)?.map(VideoObject))
    }
    /// The highlight it was made on, if any (and while that highlight exists).
    async fn highlight(&self, ctx: &Context<'_>) -> Result<Option<HighlightObject>> {
        let Some(id) = self.0.highlight_id else {
            return Ok(None);
        };
        let highlight = services(ctx)?.store.highlight(self.0.channel_id, id);
        Ok(found(highlight.await)?.map(HighlightObject))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
}

/// A titled part of a video.
pub struct HighlightObject(pub Highlight);

#[Object(name = "Highlight")]
impl HighlightObject {
    pub async fn id(&self) -> ID {
        ID(encode(Kind::Highlight, self.0.id))
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Seconds from the start of the video.
    async fn start_time(&self) -> f64 {
        self.0.start_ms as f64 / 1000.0
    }
    /// Seconds from the start of the video.
    async fn end_time(&self) -> f64 {
        self.0.end_ms as f64 / 1000.0
    }
    /// An `UnknownUser` when its creator is gone.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Actor> {
        Actor::load(ctx, self.0.channel_id, self.0.creator_id).await
    }
    async fn video(&self, ctx: &Context<'_>) -> Result<Option<VideoObject>> {
        let video = services(ctx)?
            .store
            .video(self.0.channel_id, self.0.video_id);
        Ok(found(video.await)?.map(VideoObject))
    }
    /// The comments made on it, oldest first.
    async fn comments(&self, ctx: &Context<'_>) -> Result<Vec<CommentObject>> {
        let h = &self.0;
        let rows = services(ctx)?
            .store
            .comments_on(h.channel_id, h.video_id, Some(h.id))
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(CommentObject).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
}
