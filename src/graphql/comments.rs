//! Comment and highlight mutations (admins and members): `comment.created`,
//! `comment.removed`, `highlight.created`, `highlight.deleted`. A draft has neither.

use super::social::{CommentObject, HighlightObject};
use super::users::ViewerInterface;
use super::{actor, input_id, made, services, viewer, Problems, UserError};
use crate::domain::comments::{self as rules, CommentChange, HighlightChange};
use crate::domain::content::parse_title;
use crate::domain::ids::Kind;
use async_graphql::{Context, InputObject, Object, Result, ID};

#[derive(InputObject)]
pub struct AddCommentToVideoInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
    /// At most 10,000 characters.
    pub body: String,
}

#[derive(InputObject)]
pub struct AddCommentToHighlightInput {
    pub client_mutation_id: Option<String>,
    pub highlight_id: ID,
    /// At most 10,000 characters.
    pub body: String,
}

#[derive(InputObject)]
pub struct RemoveCommentInput {
    pub client_mutation_id: Option<String>,
    pub comment_id: ID,
}

#[derive(InputObject)]
pub struct AddHighlightToVideoInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
    pub title: String,
    /// Seconds from the start of the video.
    pub start_time: f64,
    /// Seconds from the start of the video; after `startTime`, and not past the video's end.
    pub end_time: f64,
}

#[derive(InputObject)]
pub struct RemoveHighlightInput {
    pub client_mutation_id: Option<String>,
    pub highlight_id: ID,
}

payload!(AddCommentToVideoPayload {
    comment: Option<CommentObject>
});
payload!(AddCommentToHighlightPayload {
    comment: Option<CommentObject>
});
payload!(RemoveCommentPayload {
    /// The comment, as it was.
    comment: Option<CommentObject>
});
payload!(AddHighlightToVideoPayload {
    highlight: Option<HighlightObject>
});
payload!(RemoveHighlightPayload {
    /// The highlight, as it was.
    highlight: Option<HighlightObject>
});

/// Adds or removes a comment; not found is reported at `id_field`.
async fn comment(
    ctx: &Context<'_>,
    parsed: Result<CommentChange, Vec<UserError>>,
    id_field: &str,
) -> Result<(Option<CommentObject>, Vec<UserError>)> {
    let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
    let change = parsed.map(|c| outbox.change_comment(actor.clone(), c));
    made(change, id_field, CommentObject).await
}

/// Adds or removes a highlight; not found is reported at `id_field`.
async fn highlight(
    ctx: &Context<'_>,
    parsed: Result<HighlightChange, Vec<UserError>>,
    id_field: &str,
) -> Result<(Option<HighlightObject>, Vec<UserError>)> {
    let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
    let change = parsed.map(|c| outbox.change_highlight(actor.clone(), c));
    made(change, id_field, HighlightObject).await
}

/// The object `kind` that input `field` names, and a comment's body.
fn target_and_body(
    kind: Kind,
    id: &ID,
    field: &'static str,
    body: &str,
) -> Result<(i64, String), Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_id(kind, id, field));
    let body = p.check(rules::parse_body(body));
    p.done(id.zip(body))
}

fn one<T>(r: Result<T, crate::domain::Invalid>) -> Result<T, Vec<UserError>> {
    r.map_err(|e| vec![e.into()])
}

#[derive(Default)]
pub struct CommentMutations;

#[Object]
impl CommentMutations {
    /// Comments on a video: `comment.created`.
    async fn add_comment_to_video(
        &self,
        ctx: &Context<'_>,
        input: AddCommentToVideoInput,
    ) -> Result<AddCommentToVideoPayload> {
        let parsed = target_and_body(Kind::Video, &input.video_id, "videoId", &input.body)
            .map(|(video_id, body)| CommentChange::OnVideo { video_id, body });
        let (comment, errors) = comment(ctx, parsed, "videoId").await?;
        Ok(AddCommentToVideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            comment,
            errors,
        })
    }

    /// Comments on a highlight (a comment on its video, made on that part of it):
    /// `comment.created`.
    async fn add_comment_to_highlight(
        &self,
        ctx: &Context<'_>,
        input: AddCommentToHighlightInput,
    ) -> Result<AddCommentToHighlightPayload> {
        let (id, body) = (&input.highlight_id, &input.body);
        let parsed = target_and_body(Kind::Highlight, id, "highlightId", body)
            .map(|(highlight_id, body)| CommentChange::OnHighlight { highlight_id, body });
        let (comment, errors) = comment(ctx, parsed, "highlightId").await?;
        Ok(AddCommentToHighlightPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            comment,
            errors,
        })
    }

    /// Removes a comment: `comment.removed`. Its author or an admin only.
    async fn remove_comment(
        &self,
        ctx: &Context<'_>,
        input: RemoveCommentInput,
    ) -> Result<RemoveCommentPayload> {
        let parsed =
            one(input_id(Kind::Comment, &input.comment_id, "commentId")).map(CommentChange::Remove);
        let (comment, errors) = comment(ctx, parsed, "commentId").await?;
        Ok(RemoveCommentPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            comment,
            errors,
        })
    }

    /// Highlights part of a video: `highlight.created`.
    async fn add_highlight_to_video(
        &self,
        ctx: &Context<'_>,
        input: AddHighlightToVideoInput,
    ) -> Result<AddHighlightToVideoPayload> {
        let mut p = Problems::default();
        let video_id = p.check(input_id(Kind::Video, &input.video_id, "videoId"));
        let title = p.check(parse_title(&input.title));
        let range = p.check(rules::parse_range(input.start_time, input.end_time));
        let parsed = match (video_id, title, range) {
            (Some(video_id), Some(title), Some((start_ms, end_ms))) => Some(HighlightChange::Add {
                video_id,
                title,
                start_ms,
                end_ms,
            }),
            _ => None,
        };
        let (highlight, errors) = highlight(ctx, p.done(parsed), "videoId").await?;
        Ok(AddHighlightToVideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            highlight,
            errors,
        })
    }

    /// Removes a highlight: `highlight.deleted`. Comments made on it stay on the video. Its
    /// creator or an admin only.
    async fn remove_highlight(
        &self,
        ctx: &Context<'_>,
        input: RemoveHighlightInput,
    ) -> Result<RemoveHighlightPayload> {
        let parsed = one(input_id(
            Kind::Highlight,
            &input.highlight_id,
            "highlightId",
        ))
        .map(HighlightChange::Remove);
        let (highlight, errors) = highlight(ctx, parsed, "highlightId").await?;
        Ok(RemoveHighlightPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            highlight,
            errors,
        })
    }
}
