//! Rewatch's video mutations: `updateVideoDetails`, `addVideoToCollections`,
//! `removeVideoFromCollections`, `tagUsersOnVideo` and `untagUsersOnVideo`. Each is a video
//! change like `updateVideo`: `video.updated` when something in the payload changed.

use super::content::ids_of;
use super::scalars::Date;
use super::users::ViewerInterface;
use super::videos::VideoObject;
use super::{
    actor, input_id, input_ids, made, services, viewer, Problems, UserError, VideoVisibility,
};
use crate::domain::content::{self as rules, ListChange, VideoPatch};
use crate::domain::ids::Kind;
use crate::domain::Invalid;
use crate::outbox::VideoChange;
use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, Result, ID};

/// What a share recipient may do with a video (Rewatch's; herald keeps no share recipients).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum VideoGrantRole {
    Editor,
    Viewer,
}

#[derive(InputObject)]
pub struct VideoShareInfo {
    pub recipient_id: ID,
    pub role: VideoGrantRole,
}

#[derive(InputObject)]
pub struct UpdateVideoDetailsInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
    pub title: Option<String>,
    /// The video's summary; `null` clears it.
    pub description: MaybeUndefined<String>,
    /// `DRAFT` only for a draft: a video on the channel cannot go back to draft.
    pub visibility: Option<VideoVisibility>,
    /// Moves `presentedAt` to this day, at the time of day it had.
    pub date: Option<Date>,
    /// Replaces the video's collections.
    pub collection_ids: Option<Vec<ID>>,
    /// Replaces the video's tagged users.
    pub user_ids: Option<Vec<ID>>,
    /// Kept as given (herald shows no video outside the channel).
    pub external_sharing_enabled: Option<bool>,
    /// Kept as given.
    pub show_comments_to_external_viewers: Option<bool>,
    /// herald keeps no share recipients: only an empty list is taken.
    pub share_recipient_ids: Option<Vec<ID>>,
    /// herald keeps no share recipients: only an empty list is taken.
    pub video_share_recipients: Option<Vec<VideoShareInfo>>,
}

/// Declares the input of a mutation that adds ids to, or removes them from, a list of a video.
macro_rules! list_input {
    ($name:ident, $field:ident, $doc:literal) => {
        #[derive(InputObject)]
        pub struct $name {
            pub client_mutation_id: Option<String>,
            pub video_id: ID,
            #[doc = $doc]
            pub $field: Vec<ID>,
        }
    };
}

list_input!(
    AddVideoToCollectionsInput,
    collection_ids,
    "Added at the end of its collections."
);
list_input!(
    RemoveVideoFromCollectionsInput,
    collection_ids,
    "Taken out of its collections."
);
list_input!(
    TagUsersOnVideoInput,
    user_ids,
    "Added at the end of its tagged users."
);
list_input!(
    UntagUsersOnVideoInput,
    user_ids,
    "Taken out of its tagged users."
);

payload!(UpdateVideoDetailsPayload {
    /// The video after the change.
    video: Option<VideoObject>
});
payload!(AddVideoToCollectionsPayload {
    video: Option<VideoObject>
});
payload!(RemoveVideoFromCollectionsPayload {
    video: Option<VideoObject>
});
payload!(TagUsersOnVideoPayload {
    video: Option<VideoObject>
});
payload!(UntagUsersOnVideoPayload {
    video: Option<VideoObject>
});

/// Refuses share recipients, which herald does not keep (an empty list is nothing to keep).
fn no_recipients(given: bool, field: &'static str) -> Result<(), Invalid> {
    if given {
        return Err(Invalid::new(
            field,
            "herald shares videos with no one outside the channel: give an empty list",
        ));
    }
    Ok(())
}

fn details(input: &UpdateVideoDetailsInput) -> Result<VideoChange, Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_id(Kind::Video, &input.video_id, "videoId"));
    let recipients = input
        .share_recipient_ids
        .as_ref()
        .is_some_and(|r| !r.is_empty());
    p.check(no_recipients(recipients, "shareRecipientIds"));
    let shares = input
        .video_share_recipients
        .as_ref()
        .is_some_and(|r| !r.is_empty());
    p.check(no_recipients(shares, "videoShareRecipients"));
    let patch = VideoPatch {
        title: input
            .title
            .as_deref()
            .and_then(|t| p.check(rules::parse_title(t))),
        summary: match &input.description {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(String::new()),
            MaybeUndefined::Value(d) => p.check(rules::parse_summary(d).map_err(|e| Invalid {
                field: "description",
                ..e
            })),
        },
        visibility: input.visibility.and_then(VideoVisibility::kept),
        require_draft: input.visibility == Some(VideoVisibility::Draft),
        date: input.date.map(|d| d.0),
        collections: ids_of(
            &mut p,
            Kind::Collection,
            input.collection_ids.as_ref(),
            "collectionIds",
        )
        .flatten()
        .map(ListChange::Replace),
        tagged_users: ids_of(&mut p, Kind::User, input.user_ids.as_ref(), "userIds")
            .flatten()
            .map(ListChange::Replace),
        external_sharing_enabled: input.external_sharing_enabled,
        show_comments_to_external_viewers: input.show_comments_to_external_viewers,
        uploader_or_admin: true,
        ..VideoPatch::default()
    };
    p.done(id.map(|id| VideoChange::Update(id, patch)))
}

/// A change to one of a video's lists: its collections (`Kind::Collection`) or tagged users.
fn list_change(
    video_id: &ID,
    ids: &[ID],
    kind: Kind,
    field: &'static str,
    change: fn(Vec<i64>) -> ListChange,
) -> Result<VideoChange, Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_id(Kind::Video, video_id, "videoId"));
    let ids = p.check(input_ids(kind, ids, field));
    let patch = ids.map(|ids| {
        let list = Some(change(ids));
        if kind == Kind::Collection {
            VideoPatch {
                collections: list,
                ..VideoPatch::default()
            }
        } else {
            VideoPatch {
                tagged_users: list,
                ..VideoPatch::default()
            }
        }
    });
    p.done(id.zip(patch))
        .map(|(id, patch)| VideoChange::Update(id, patch))
}

/// Makes a video change; not found is reported at `videoId`.
async fn change(
    ctx: &Context<'_>,
    parsed: Result<VideoChange, Vec<UserError>>,
) -> Result<(Option<VideoObject>, Vec<UserError>)> {
    let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
    let change = parsed.map(|c| outbox.change_video(actor.clone(), c));
    made(change, "videoId", VideoObject).await
}

#[derive(Default)]
pub struct VideoDetailsMutations;

#[Object]
impl VideoDetailsMutations {
    /// Updates the details of a video: `video.updated` when something changed and it is not a
    /// draft. Only the uploader or channel admins may modify a video's details.
    async fn update_video_details(
        &self,
        ctx: &Context<'_>,
        input: UpdateVideoDetailsInput,
    ) -> Result<UpdateVideoDetailsPayload> {
        let (video, errors) = change(ctx, details(&input)).await?;
        Ok(UpdateVideoDetailsPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            video,
            errors,
        })
    }

    /// Adds a video to collections: `video.updated` (unless it was in all of them).
    async fn add_video_to_collections(
        &self,
        ctx: &Context<'_>,
        input: AddVideoToCollectionsInput,
    ) -> Result<AddVideoToCollectionsPayload> {
        let (id, ids) = (&input.video_id, &input.collection_ids);
        let parsed = list_change(id, ids, Kind::Collection, "collectionIds", ListChange::Add);
        let (video, errors) = change(ctx, parsed).await?;
        Ok(AddVideoToCollectionsPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            video,
            errors,
        })
    }

    /// Takes a video out of collections: `video.updated` (unless it was in none of them).
    async fn remove_video_from_collections(
        &self,
        ctx: &Context<'_>,
        input: RemoveVideoFromCollectionsInput,
    ) -> Result<RemoveVideoFromCollectionsPayload> {
        let (id, ids) = (&input.video_id, &input.collection_ids);
        let parsed = list_change(
            id,
            ids,
            Kind::Collection,
            "collectionIds",
            ListChange::Remove,
        );
        let (video, errors) = change(ctx, parsed).await?;
        Ok(RemoveVideoFromCollectionsPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            video,
            errors,
        })
    }

    /// Tags users on a video: `video.updated` (unless all were tagged).
    async fn tag_users_on_video(
        &self,
        ctx: &Context<'_>,
        input: TagUsersOnVideoInput,
    ) -> Result<TagUsersOnVideoPayload> {
        let (id, ids) = (&input.video_id, &input.user_ids);
        let parsed = list_change(id, ids, Kind::User, "userIds", ListChange::Add);
        let (video, errors) = change(ctx, parsed).await?;
        Ok(TagUsersOnVideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            video,
            errors,
        })
    }

    /// Untags users on a video: `video.updated` (unless none was tagged).
    async fn untag_users_on_video(
        &self,
        ctx: &Context<'_>,
        input: UntagUsersOnVideoInput,
    ) -> Result<UntagUsersOnVideoPayload> {
        let (id, ids) = (&input.video_id, &input.user_ids);
        let parsed = list_change(id, ids, Kind::User, "userIds", ListChange::Remove);
        let (video, errors) = change(ctx, parsed).await?;
        Ok(UntagUsersOnVideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(viewer(ctx)?),
            video,
            errors,
        })
    }
}
