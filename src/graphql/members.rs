//! Member mutations: invitations, joining, deactivation and roles (the `member.*` events).
//! Admins only, but for accepting one's own invitation.

use super::users::{ChannelRole, UserObject, ViewerInterface};
use super::{
    actor, admins_only, input_ids, input_row, invited_or_not, made, services, viewer, Problems,
    UserError,
};
use crate::domain::content::{Role, User, MAX_IDS};
use crate::domain::ids::{Kind, UserId};
use crate::domain::members::{parse_email, MemberChange};
use crate::domain::Invalid;
use async_graphql::{Context, InputObject, Object, Result, ID};

const ADMINS_ONLY: &str =
    "Only channel admins may invite, deactivate or change the role of members";

#[derive(InputObject)]
pub struct InviteUsersInput {
    pub client_mutation_id: Option<String>,
    /// The email addresses to invite (at most 100).
    pub emails: Vec<String>,
    /// The role they get: `ADMIN` or `MEMBER` (the default).
    #[graphql(default_with = "ChannelRole::Member")]
    pub role: ChannelRole,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject)]
pub struct DeactivateUsersInput {
    pub client_mutation_id: Option<String>,
    pub user_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct UpdateUserRoleInput {
    pub client_mutation_id: Option<String>,
    pub user_id: ID,
    /// `ADMIN` or `MEMBER`.
    pub role: ChannelRole,
}

payload!(InviteUsersPayload {
    /// The users invited (one invited before and not joined yet is left as it was).
    users: Vec<UserObject>
});
payload!(AcceptInvitationPayload {
    /// The viewer, joined.
    user: Option<UserObject>
});
payload!(DeactivateUsersPayload {
    /// The users, deactivated (their tokens no longer work).
    users: Vec<UserObject>
});
payload!(UpdateUserRolePayload {
    user: Option<UserObject>
});

/// herald's role for a `ChannelRole`: its users are admins or members.
fn role(r: ChannelRole) -> Result<Role, Invalid> {
    match r {
        ChannelRole::Admin => Ok(Role::Admin),
        ChannelRole::Member => Ok(Role::Member),
        ChannelRole::Owner | ChannelRole::Guest => Err(Invalid::new(
            "role",
            "herald's users are admins or members: give ADMIN or MEMBER",
        )),
    }
}

fn invitation(input: &InviteUsersInput) -> Result<MemberChange, Vec<UserError>> {
    let mut p = Problems::default();
    if input.emails.is_empty() || input.emails.len() > MAX_IDS {
        p.0.push(UserError::invalid(
            "emails",
            format!("give 1 to {MAX_IDS} email addresses"),
        ));
    }
    let mut emails: Vec<String> = Vec::new();
    for raw in &input.emails {
        if let Some(email) = p.check(parse_email(raw)) {
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
    }
    let role = p.check(role(input.role));
    p.done(role)
        .map(|role| MemberChange::Invite { emails, role })
}

fn users(list: Vec<User>) -> Vec<UserObject> {
    list.into_iter().map(UserObject).collect()
}

#[derive(Default)]
pub struct MemberMutations;

#[Object]
impl MemberMutations {
    /// Invites people to the channel by email: `member.invited` for each. One who was
    /// deactivated is invited again. Admins only.
    async fn invite_users(
        &self,
        ctx: &Context<'_>,
        input: InviteUsersInput,
    ) -> Result<InviteUsersPayload> {
        let user = viewer(ctx)?;
        let parsed = admins_only(user, ADMINS_ONLY, || invitation(&input));
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_members(actor.clone(), c));
        let (invited, errors) = made(change, "emails", users).await?;
        Ok(InviteUsersPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            users: invited.unwrap_or_default(),
            errors,
        })
    }

    /// Accepts the viewer's invitation to the channel: `member.joined`. (An invited user's
    /// token may do nothing else until then.)
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> Result<AcceptInvitationPayload> {
        let actor = invited_or_not(ctx)?;
        let outbox = &services(ctx)?.outbox;
        let change = Ok(outbox.change_members(actor.clone(), MemberChange::Accept));
        let (joined, errors) = made(change, "", users).await?;
        let joined = joined.and_then(|mut u| u.pop());
        let me = joined.as_ref().map_or(&actor.user, |u| &u.0);
        Ok(AcceptInvitationPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(me),
            user: joined,
            errors,
        })
    }

    /// Removes users from the channel: `member.deactivated` for each; their tokens stop
    /// working. Not the viewer. Admins only.
    async fn deactivate_users(
        &self,
        ctx: &Context<'_>,
        input: DeactivateUsersInput,
    ) -> Result<DeactivateUsersPayload> {
        let user = viewer(ctx)?;
        let parsed = admins_only(user, ADMINS_ONLY, || {
            input_ids(Kind::User, &input.user_ids, "userIds")
                .map(MemberChange::Deactivate)
                .map_err(|e| vec![e.into()])
        });
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_members(actor.clone(), c));
        let (gone, errors) = made(change, "userIds", users).await?;
        Ok(DeactivateUsersPayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            users: gone.unwrap_or_default(),
            errors,
        })
    }

    /// Gives a user another role: `member.updated`, with `updates.role`. Not the viewer.
    /// Admins only.
    async fn update_user_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateUserRoleInput,
    ) -> Result<UpdateUserRolePayload> {
        let user = viewer(ctx)?;
        let parsed = admins_only(user, ADMINS_ONLY, || {
            let mut p = Problems::default();
            let id: Option<UserId> = p.check(input_row(&input.user_id, "userId"));
            let role = p.check(role(input.role));
            p.done(id.zip(role))
                .map(|(id, role)| MemberChange::SetRole(id.get(), role))
        });
        let (outbox, actor) = (&services(ctx)?.outbox, actor(ctx)?);
        let change = parsed.map(|c| outbox.change_members(actor.clone(), c));
        let (changed, errors) = made(change, "userId", users).await?;
        Ok(UpdateUserRolePayload {
            client_mutation_id: input.client_mutation_id,
            viewer: ViewerInterface::of(user),
            user: changed.and_then(|mut u| u.pop()),
            errors,
        })
    }
}
