//! Channel content mutations (admins and members). Each change emits its event: the outbox
//! writes it with the change and sees its deliveries handed to the delivery engine.

use super::videos::{CollectionObject, VideoObject};
use super::{
    actor, input_id, input_ids, input_principals, made, services, viewer, Problems, UserError,
    VideoVisibility, ViewerInterface,
};
use crate::domain::content::{
    self as rules, CollectionPatch, ListChange, NewCollection, NewVideo, Principals, VideoPatch,
    Visibility,
};
use crate::domain::ids::Kind;
use crate::domain::Invalid;
use crate::outbox::{CollectionChange, VideoChange};
use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

#[derive(InputObject)]
pub struct CreateVideoInput {
    pub client_mutation_id: Option<String>,
    pub title: String,
    pub summary: Option<String>,
    /// `DRAFT` makes it a draft, as `draft: true` does (it goes on the channel as
    /// `ON_CHANNEL`).
    #[graphql(default_with = "VideoVisibility::OnChannel")]
    pub visibility: VideoVisibility,
    pub presented_at: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration: Option<f64>,
    pub collection_ids: Option<Vec<ID>>,
    pub tagged_user_ids: Option<Vec<ID>>,
    /// A draft emits nothing until published.
    #[graphql(default = false)]
    pub draft: bool,
}

#[derive(InputObject)]
pub struct PublishVideoInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
}

#[derive(InputObject)]
pub struct UpdateVideoInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
    pub title: Option<String>,
    pub summary: Option<String>,
    /// `DRAFT` only for a draft: a video on the channel cannot go back to draft.
    pub visibility: Option<VideoVisibility>,
    pub presented_at: MaybeUndefined<DateTime<Utc>>,
    pub duration: MaybeUndefined<f64>,
    pub collection_ids: Option<Vec<ID>>,
    pub tagged_user_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DeleteVideoInput {
    pub client_mutation_id: Option<String>,
    pub video_id: ID,
}

#[derive(InputObject)]
pub struct CreateCollectionInput {
    pub client_mutation_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    #[graphql(default = false)]
    pub secret: bool,
    pub parent_id: Option<ID>,
    /// Users and groups.
    pub admin_ids: Option<Vec<ID>>,
    /// Users and groups.
    pub member_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct UpdateCollectionInput {
    pub client_mutation_id: Option<String>,
    pub collection_id: ID,
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub secret: Option<bool>,
    /// `null` makes it a top-level collection.
    pub parent_id: MaybeUndefined<ID>,
    /// Users and groups: replaces the whole list.
    pub admin_ids: Option<Vec<ID>>,
    /// Users and groups: replaces the whole list.
    pub member_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DeleteCollectionInput {
    pub client_mutation_id: Option<String>,
    pub collection_id: ID,
}

/// The payload of a video mutation.
#[derive(SimpleObject)]
pub struct VideoPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The video after the change (for deleteVideo, as it was).
    pub video: Option<VideoObject>,
    pub errors: Vec<UserError>,
}

/// The payload of a collection mutation.
#[derive(SimpleObject)]
pub struct CollectionPayload {
    pub client_mutation_id: Option<String>,
    pub viewer: ViewerInterface,
    /// The collection after the change (for deleteCollection, as it was).
    pub collection: Option<CollectionObject>,
    pub errors: Vec<UserError>,
}

/// A change to a description: `None` when not given, `Some(None)` to clear it.
pub(super) fn description_patch(
    p: &mut Problems,
    given: &MaybeUndefined<String>,
) -> Option<Option<String>> {
    match given {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(d) => p.check(rules::parse_description(Some(d))),
    }
}

/// A collection's admins or members, users and groups (`None` when not given).
fn principals(
    p: &mut Problems,
    list: Option<&Vec<ID>>,
    field: &'static str,
) -> Option<Option<Principals>> {
    match list {
        None => Some(None),
        Some(l) => p.check(input_principals(l, field)).map(Some),
    }
}

pub(super) fn ids_of(
    p: &mut Problems,
    kind: Kind,
    list: Option<&Vec<ID>>,
    field: &'static str,
) -> Option<Option<Vec<i64>>> {
    match list {
        None => Some(None),
        Some(l) => p.check(input_ids(kind, l, field)).map(Some),
    }
}

fn duration(raw: Option<f64>) -> Result<Option<f64>, Invalid> {
    raw.map(rules::parse_duration).transpose()
}

#[derive(Default)]
pub struct ContentMutations;

#[Object]
impl ContentMutations {
    /// Adds a video; unless it is a draft this emits `video.addedToChannel`.
    async fn create_video(
        &self,
        ctx: &Context<'_>,
        input: CreateVideoInput,
    ) -> Result<VideoPayload> {
        let user = viewer(ctx)?;
        let mut p = Problems::default();
        let title = p.check(rules::parse_title(&input.title));
        let summary = p.check(rules::parse_summary(input.summary.as_deref().unwrap_or("")));
        let duration = p.check(duration(input.duration));
        let colls = ids_of(
            &mut p,
            Kind::Collection,
            input.collection_ids.as_ref(),
            "collectionIds",
        );
        let tagged = ids_of(
            &mut p,
            Kind::User,
            input.tagged_user_ids.as_ref(),
            "taggedUserIds",
        );
        let new = match (title, summary, duration, colls, tagged) {
            (Some(title), Some(summary), Some(duration), Some(colls), Some(tagged)) => {
                Some(NewVideo {
                    title,
                    summary,
                    visibility: input.visibility.kept().unwrap_or(Visibility::OnChannel),
                    presented_at: input.presented_at.map(|t| t.timestamp_millis()),
                    duration,
                    collection_ids: colls.unwrap_or_default(),
                    tagged_user_ids: tagged.unwrap_or_default(),
                    draft: input.draft || input.visibility == VideoVisibility::Draft,
                })
            }
            _ => None,
        };
        let parsed = p.done(new).map(VideoChange::Create);
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_video(actor.clone(), c));
        let (video, errors) = made(change, "title", VideoObject).await?;
        Ok(VideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            video,
            errors,
        })
    }

    /// Takes a video out of draft state: `video.addedToChannel`.
    async fn publish_video(
        &self,
        ctx: &Context<'_>,
        input: PublishVideoInput,
    ) -> Result<VideoPayload> {
        let user = viewer(ctx)?;
        let parsed = input_id(Kind::Video, &input.video_id, "videoId")
            .map(VideoChange::Publish)
            .map_err(|e| vec![e.into()]);
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_video(actor.clone(), c));
        let (video, errors) = made(change, "videoId", VideoObject).await?;
        Ok(VideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            video,
            errors,
        })
    }

    /// Changes a video: `video.updated` when something changed and it is not a draft.
    async fn update_video(
        &self,
        ctx: &Context<'_>,
        input: UpdateVideoInput,
    ) -> Result<VideoPayload> {
        let user = viewer(ctx)?;
        let mut p = Problems::default();
        let id = p.check(input_id(Kind::Video, &input.video_id, "videoId"));
        let patch = VideoPatch {
            title: input
                .title
                .as_deref()
                .and_then(|t| p.check(rules::parse_title(t))),
            summary: input
                .summary
                .as_deref()
                .and_then(|s| p.check(rules::parse_summary(s))),
            visibility: input.visibility.and_then(VideoVisibility::kept),
            presented_at: match &input.presented_at {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(t) => Some(Some(t.timestamp_millis())),
            },
            duration: match &input.duration {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => p.check(rules::parse_duration(*d)).map(Some),
            },
            collections: ids_of(
                &mut p,
                Kind::Collection,
                input.collection_ids.as_ref(),
                "collectionIds",
            )
            .flatten()
            .map(ListChange::Replace),
            tagged_users: ids_of(
                &mut p,
                Kind::User,
                input.tagged_user_ids.as_ref(),
                "taggedUserIds",
            )
            .flatten()
            .map(ListChange::Replace),
            require_draft: input.visibility == Some(VideoVisibility::Draft),
            ..VideoPatch::default()
        };
        let parsed = p.done(id.map(|id| VideoChange::Update(id, patch)));
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_video(actor.clone(), c));
        let (video, errors) = made(change, "videoId", VideoObject).await?;
        Ok(VideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            video,
            errors,
        })
    }

    /// Removes a video: `video.deleted` unless it was a draft.
    async fn delete_video(
        &self,
        ctx: &Context<'_>,
        input: DeleteVideoInput,
    ) -> Result<VideoPayload> {
        let user = viewer(ctx)?;
        let parsed = input_id(Kind::Video, &input.video_id, "videoId")
            .map(VideoChange::Delete)
            .map_err(|e| vec![e.into()]);
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_video(actor.clone(), c));
        let (video, errors) = made(change, "videoId", VideoObject).await?;
        Ok(VideoPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            video,
            errors,
        })
    }

    /// Creates a collection: `collection.created`.
    async fn create_collection(
        &self,
        ctx: &Context<'_>,
        input: CreateCollectionInput,
    ) -> Result<CollectionPayload> {
        let user = viewer(ctx)?;
        let mut p = Problems::default();
        let name = p.check(rules::parse_name(&input.name));
        let description = p.check(rules::parse_description(input.description.as_deref()));
        let parent = match &input.parent_id {
            None => Some(None),
            Some(id) => p
                .check(input_id(Kind::Collection, id, "parentId"))
                .map(Some),
        };
        let admins = principals(&mut p, input.admin_ids.as_ref(), "adminIds");
        let members = principals(&mut p, input.member_ids.as_ref(), "memberIds");
        let new = match (name, description, parent, admins, members) {
            (Some(name), Some(description), Some(parent_id), Some(admins), Some(members)) => {
                let (admins, members) = (admins.unwrap_or_default(), members.unwrap_or_default());
                Some(NewCollection {
                    name,
                    description,
                    secret: input.secret,
                    parent_id,
                    admin_ids: admins.users,
                    admin_group_ids: admins.groups,
                    member_ids: members.users,
                    member_group_ids: members.groups,
                })
            }
            _ => None,
        };
        let parsed = p.done(new).map(CollectionChange::Create);
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_collection(actor.clone(), c));
        let (collection, errors) = made(change, "name", CollectionObject).await?;
        Ok(CollectionPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            collection,
            errors,
        })
    }

    /// Changes a collection: `collection.updated` when something changed.
    async fn update_collection(
        &self,
        ctx: &Context<'_>,
        input: UpdateCollectionInput,
    ) -> Result<CollectionPayload> {
        let user = viewer(ctx)?;
        let mut p = Problems::default();
        let id = p.check(input_id(
            Kind::Collection,
            &input.collection_id,
            "collectionId",
        ));
        let patch = CollectionPatch {
            name: input
                .name
                .as_deref()
                .and_then(|n| p.check(rules::parse_name(n))),
            description: description_patch(&mut p, &input.description),
            secret: input.secret,
            parent_id: match &input.parent_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(pid) => p
                    .check(input_id(Kind::Collection, pid, "parentId"))
                    .map(Some),
            },
            admins: principals(&mut p, input.admin_ids.as_ref(), "adminIds").flatten(),
            members: principals(&mut p, input.member_ids.as_ref(), "memberIds").flatten(),
        };
        if let (Some(id), Some(Some(parent))) = (id, patch.parent_id) {
            if id == parent {
                p.0.push(UserError::invalid(
                    "parentId",
                    "a collection cannot be its own parent",
                ));
            }
        }
        let parsed = p.done(id.map(|id| CollectionChange::Update(id, patch)));
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_collection(actor.clone(), c));
        let (collection, errors) = made(change, "collectionId", CollectionObject).await?;
        Ok(CollectionPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            collection,
            errors,
        })
    }

    /// Deletes a collection: `collection.deleted`. Its children become top-level collections.
    async fn delete_collection(
        &self,
        ctx: &Context<'_>,
        input: DeleteCollectionInput,
    ) -> Result<CollectionPayload> {
        let user = viewer(ctx)?;
        let parsed = input_id(Kind::Collection, &input.collection_id, "collectionId")
            .map(CollectionChange::Delete)
            .map_err(|e| vec![e.into()]);
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_collection(actor.clone(), c));
        let (collection, errors) = made(change, "collectionId", CollectionObject).await?;
        Ok(CollectionPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            collection,
            errors,
        })
    }
}
