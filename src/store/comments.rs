//! Comments and highlights on videos. Each change writes its event and deliveries in its own
//! transaction (see `events.rs`); a comment or highlight is shown with its whole video.

use super::backend::{Backend, Begin, Commit, Value};
use super::rows::{CommentRow, HighlightRow, COMMENT_COLUMNS, HIGHLIGHT_COLUMNS};
use super::types::Change;
use super::{Changed, Result, SqlStore, StoreError};
use crate::domain::comments::{self as rules, Comment, CommentChange, Highlight, HighlightChange};
use crate::domain::content::{Role, Video};
use crate::domain::event::{Catalog, EventName};
use crate::domain::ids::{ChannelId, UserId};
use crate::domain::time::now_ms;
use crate::domain::Invalid;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

/// Whether the actor may remove what `owner` made: its maker, or an admin.
fn may_remove(change: Change<'_>, owner: Option<UserId>) -> bool {
    let user = &change.actor.user;
    user.role == Role::Admin || owner == Some(user.id)
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
    pub(super) async fn change_comment(
        &self,
        change: Change<'_>,
        what: &CommentChange,
    ) -> Result<Changed<Comment>> {
        let channel = change.actor.channel.id;
        let mut tx = self.writes.begin().await?;
        let (comment, video, on, name) = match what {
            CommentChange::OnVideo { video_id, body } => {
                let video = Self::open_video(&mut tx, channel, *video_id, "videoId").await?;
                let comment = Self::insert_comment(&mut tx, change, &video, None, body).await?;
                (comment, video, None, EventName::CommentCreated)
            }
            CommentChange::OnHighlight { highlight_id, body } => {
                let h = Self::highlight_of(&mut tx, channel, *highlight_id).await?;
                let video = Self::open_video(&mut tx, channel, h.video_id, "highlightId").await?;
                let comment =
                    Self::insert_comment(&mut tx, change, &video, Some(h.id), body).await?;
                (comment, video, Some(h), EventName::CommentCreated)
            }
            CommentChange::Remove(id) => {
                let comment = Self::comment_of(&mut tx, channel, *id).await?;
                if !may_remove(change, comment.author_id) {
                    return Err(Invalid::forbidden(
                        "commentId",
                        "Only the comment's author or a channel admin may remove it",
                    )
                    .into());
                }
                let video = Self::video_of(&mut tx, channel, comment.video_id).await?;
                let on = match comment.highlight_id {
                    Some(h) => Some(Self::highlight_of(&mut tx, channel, h).await?),
                    None => None,
                };
                (comment, video, on, EventName::CommentRemoved)
            }
        };
        let mut users: Vec<i64> = comment.author_id.iter().map(|u| u.get()).collect();
        users.extend(on.iter().filter_map(|h| h.creator_id).map(UserId::get));
        let cat = self.video_catalog(&mut tx, change, &video, &users).await?;
        let object = cat.comment_json(&comment, &video, on.as_ref());
        let emitted =
            Self::emit(&mut tx, change, &cat, name.clone(), "comment", object, None).await?;
        if name == EventName::CommentRemoved {
            sqlx::query("DELETE FROM comments WHERE id = $1")
                .bind(comment.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(emitted.into_changed(comment))
    }

    pub(super) async fn change_highlight(
        &self,
        change: Change<'_>,
        what: &HighlightChange,
    ) -> Result<Changed<Highlight>> {
        let channel = change.actor.channel.id;
        let mut tx = self.writes.begin().await?;
        let (highlight, video, name) = match what {
            HighlightChange::Add {
                video_id,
                title,
                start_ms,
                end_ms,
            } => {
                let video = Self::open_video(&mut tx, channel, *video_id, "videoId").await?;
                rules::within(*end_ms, video.duration)?;
                let row = sqlx::query_as::<B, HighlightRow>(&format!(
                    "INSERT INTO highlights (channel_id, video_id, creator_id, title, start_ms, end_ms, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {HIGHLIGHT_COLUMNS}"
                ))
                .bind(channel)
                .bind(video.id)
                .bind(change.actor.user.id)
                .bind(title)
                .bind(*start_ms)
                .bind(*end_ms)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
                (row.into(), video, EventName::HighlightCreated)
            }
            HighlightChange::Remove(id) => {
                let h = Self::highlight_of(&mut tx, channel, *id).await?;
                if !may_remove(change, h.creator_id) {
                    return Err(Invalid::forbidden(
                        "highlightId",
                        "Only the highlight's creator or a channel admin may remove it",
                    )
                    .into());
                }
                let video = Self::video_of(&mut tx, channel, h.video_id).await?;
                (h, video, EventName::HighlightDeleted)
            }
        };
        let users: Vec<i64> = highlight.creator_id.iter().map(|u| u.get()).collect();
        let cat = self.video_catalog(&mut tx, change, &video, &users).await?;
        let object = cat.highlight_json(&highlight, Some(&video));
        let emitted = Self::emit(
            &mut tx,
            change,
            &cat,
            name.clone(),
            "highlight",
            object,
            None,
        )
        .await?;
        if name == EventName::HighlightDeleted {
            sqlx::query("DELETE FROM highlights WHERE id = $1")
                .bind(highlight.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(emitted.into_changed(highlight))
    }

    /// A video of the channel that may be commented on and highlighted: one on the channel,
    /// not a draft (input `field` named it).
    async fn open_video(
        c: &mut B::Connection,
        channel: ChannelId,
        id: i64,
        field: &'static str,
    ) -> Result<Video> {
        let video = Self::video_of(c, channel, id).await?;
        if video.draft {
            return Err(Invalid::new(
                field,
                "a draft has no comments or highlights: publish it first",
            )
            .into());
        }
        Ok(video)
    }

    async fn insert_comment(
        c: &mut B::Connection,
        change: Change<'_>,
        video: &Video,
        highlight: Option<i64>,
        body: &str,
    ) -> Result<Comment> {
        Ok(sqlx::query_as::<B, CommentRow>(&format!(
            "INSERT INTO comments (channel_id, video_id, highlight_id, author_id, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COMMENT_COLUMNS}"
        ))
        .bind(change.actor.channel.id)
        .bind(video.id)
        .bind(highlight)
        .bind(change.actor.user.id)
        .bind(body)
        .bind(now_ms())
        .fetch_one(&mut *c)
        .await?
        .into())
    }

    /// What a payload about something on `video` refers to: the video's collections and tagged
    /// users, and `users`.
    async fn video_catalog(
        &self,
        c: &mut B::Connection,
        change: Change<'_>,
        video: &Video,
        users: &[i64],
    ) -> Result<Catalog> {
        let mut ids = video.tagged_user_ids.clone();
        ids.extend(users);
        let channel = &change.actor.channel;
        self.catalog(c, channel, &video.collection_ids, &ids).await
    }

    pub(super) async fn comment(&self, channel_id: ChannelId, id: i64) -> Result<Comment> {
        let mut c = self.reader.acquire().await?;
        Self::comment_of(&mut c, channel_id, id).await
    }

    pub(super) async fn highlight(&self, channel_id: ChannelId, id: i64) -> Result<Highlight> {
        let mut c = self.reader.acquire().await?;
        Self::highlight_of(&mut c, channel_id, id).await
    }

    /// A video's comments (`highlight: None`), or those made on one of its highlights; oldest
    /// first.
    pub(super) async fn comments_on(
        &self,
        channel_id: ChannelId,
        video_id: i64,
        highlight: Option<i64>,
    ) -> Result<Vec<Comment>> {
        let mut qb = QueryBuilder::<B>::new(format!(
            "SELECT {COMMENT_COLUMNS} FROM comments WHERE channel_id = "
        ));
        qb.push_bind(channel_id)
            .push(" AND video_id = ")
            .push_bind(video_id);
        if let Some(h) = highlight {
            qb.push(" AND highlight_id = ").push_bind(h);
        }
        qb.push(" ORDER BY id");
        let rows: Vec<CommentRow> = B::shorten_as(qb.build_query_as())
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(Comment::from).collect())
    }

    /// A video's highlights, oldest first.
    pub(super) async fn highlights_of(
        &self,
        channel_id: ChannelId,
        video_id: i64,
    ) -> Result<Vec<Highlight>> {
        let rows = sqlx::query_as::<B, HighlightRow>(&format!(
            "SELECT {HIGHLIGHT_COLUMNS} FROM highlights WHERE channel_id = $1 AND video_id = $2 ORDER BY id"
        ))
        .bind(channel_id)
        .bind(video_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Highlight::from).collect())
    }

    async fn comment_of(c: &mut B::Connection, channel_id: ChannelId, id: i64) -> Result<Comment> {
        sqlx::query_as::<B, CommentRow>(&format!(
            "SELECT {COMMENT_COLUMNS} FROM comments WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(Comment::from)
        .ok_or(StoreError::NotFound)
    }

    async fn highlight_of(
        c: &mut B::Connection,
        channel_id: ChannelId,
        id: i64,
    ) -> Result<Highlight> {
        sqlx::query_as::<B, HighlightRow>(&format!(
            "SELECT {HIGHLIGHT_COLUMNS} FROM highlights WHERE channel_id = $1 AND id = $2"
        ))
        .bind(channel_id)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(Highlight::from)
        .ok_or(StoreError::NotFound)
    }
}
