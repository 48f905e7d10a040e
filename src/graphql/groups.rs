//! Group mutations (admins only): `group.created`, `group.updated`, `group.deleted`.

use super::content::{description_patch, ids_of};
use super::social::GroupObject;
use super::users::ViewerInterface;
use super::{admins_only, input_id, made, services, viewer, Problems, UserError};
use crate::domain::content::{self as rules, User};
use crate::domain::groups::{GroupChange, GroupPatch, NewGroup};
use crate::domain::ids::Kind;
use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, ID};

const ADMINS_ONLY: &str = "Only channel admins may create, change or delete groups";

#[derive(InputObject)]
pub struct CreateGroupInput {
    pub client_mutation_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub member_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct UpdateGroupInput {
    pub client_mutation_id: Option<String>,
    pub group_id: ID,
    pub name: Option<String>,
    /// `null` clears it.
    pub description: MaybeUndefined<String>,
    /// Replaces the whole list.
    pub member_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DeleteGroupInput {
    pub client_mutation_id: Option<String>,
    pub group_id: ID,
}

payload!(
    /// The payload of a group mutation.
    GroupPayload {
        /// The group after the change (for deleteGroup, as it was).
        group: Option<GroupObject>
    }
);

fn parse_new(input: &CreateGroupInput) -> Result<GroupChange, Vec<UserError>> {
    let mut p = Problems::default();
    let name = p.check(rules::parse_name(&input.name));
    let description = p.check(rules::parse_description(input.description.as_deref()));
    let members = ids_of(&mut p, Kind::User, input.member_ids.as_ref(), "memberIds");
    let new = match (name, description, members) {
        (Some(name), Some(description), Some(members)) => Some(NewGroup {
            name,
            description,
            member_ids: members.unwrap_or_default(),
        }),
        _ => None,
    };
    p.done(new).map(GroupChange::Create)
}

fn parse_patch(input: &UpdateGroupInput) -> Result<GroupChange, Vec<UserError>> {
    let mut p = Problems::default();
    let id = p.check(input_id(Kind::Group, &input.group_id, "groupId"));
    let patch = GroupPatch {
        name: input
            .name
            .as_deref()
            .and_then(|n| p.check(rules::parse_name(n))),
        description: description_patch(&mut p, &input.description),
        member_ids: ids_of(&mut p, Kind::User, input.member_ids.as_ref(), "memberIds").flatten(),
    };
    p.done(id).map(|id| GroupChange::Update(id, patch))
}

/// Makes a group change for an admin; anyone else gets a `PermissionError`.
async fn change(
    ctx: &Context<'_>,
    user: &User,
    parsed: impl FnOnce() -> Result<GroupChange, Vec<UserError>>,
    id_field: &str,
) -> Result<(Option<GroupObject>, Vec<UserError>)> {
    let parsed = admins_only(user, ADMINS_ONLY, parsed);
    let (outbox, actor) = (&services(ctx)?.outbox, super::actor(ctx)?);
    let change = parsed.map(|c| outbox.change_group(actor.clone(), c));
    made(change, id_field, GroupObject).await
}

#[derive(Default)]
pub struct GroupMutations;

#[Object]
impl GroupMutations {
    /// Creates a group of the channel's users: `group.created`. Admins only.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> Result<GroupPayload> {
        let user = viewer(ctx)?;
        let (group, errors) = change(ctx, user, || parse_new(&input), "name").await?;
        Ok(GroupPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            group,
            errors,
        })
    }

    /// Changes a group: `group.updated` when something changed. Admins only.
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        input: UpdateGroupInput,
    ) -> Result<GroupPayload> {
        let user = viewer(ctx)?;
        let (group, errors) = change(ctx, user, || parse_patch(&input), "groupId").await?;
        Ok(GroupPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            group,
            errors,
        })
    }

    /// Deletes a group: `group.deleted`; each collection that named it as an admin or member
    /// loses it, with its `collection.updated`. Admins only.
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        input: DeleteGroupInput,
    ) -> Result<GroupPayload> {
        let user = viewer(ctx)?;
        let parsed = || {
            input_id(Kind::Group, &input.group_id, "groupId")
                .map(GroupChange::Delete)
                .map_err(|e| vec![e.into()])
        };
        let (group, errors) = change(ctx, user, parsed, "groupId").await?;
        Ok(GroupPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            group,
            errors,
        })
    }
}
