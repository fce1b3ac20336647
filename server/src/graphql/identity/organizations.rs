//! The current organization, the viewer's organizations, members, roles and invitations.

use async_graphql::{Context, ID, Object};

use super::types::{
    AuthPayload, GqlRole, Invitation, Member, Organization, OrganizationMembership,
};
use crate::graphql::common::db;
use crate::graphql::common::parse_id;
use crate::graphql::common::{meta, state};
use crate::graphql::{GqlResultExt, actor};

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The current organization (from the token or API key).
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let actor = actor(ctx)?;
        let org = domain::identity::organizations::current(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(org.into())
    }

    /// Every organization you belong to, with your role in each.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OrganizationMembership>> {
        let actor = actor(ctx)?;
        let list = domain::identity::organizations::list_for_user(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(list
            .into_iter()
            .map(|(o, r)| OrganizationMembership {
                organization: o.into(),
                role: r.into(),
            })
            .collect())
    }

    /// The members of the current organization.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        let actor = actor(ctx)?;
        let list = domain::identity::organizations::members(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(list.into_iter().map(Member::from).collect())
    }

    /// One member of the current organization; `NOT_FOUND` for anyone else.
    async fn member(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<Member> {
        let actor = actor(ctx)?;
        let id = parse_id(&user_id, "Member").gql()?;
        let m = domain::identity::organizations::member(&*db(ctx).await?, actor, id)
            .await
            .gql()?;
        Ok(m.into())
    }

    /// Pending invitations (ADMIN or OWNER).
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invitation>> {
        let actor = actor(ctx)?;
        let list = domain::identity::organizations::invitations(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(list.into_iter().map(Invitation::from).collect())
    }
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Invites an email address with a role (not OWNER); emails a single-use link valid 7 days.
    /// ADMIN or OWNER.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        email: String,
        role: GqlRole,
    ) -> async_graphql::Result<Invitation> {
        let actor = actor(ctx)?;
        let state = state(ctx)?;
        let (invitation, token) = domain::identity::organizations::invite(
            &state.db,
            actor,
            &meta(ctx),
            domain::identity::organizations::InviteInput {
                email,
                role: role.into(),
            },
        )
        .await
        .gql()?;
        let org = domain::identity::organizations::current(&state.db, actor)
            .await
            .gql()?;
        let link = format!(
            "{}/invitations/accept?token={token}",
            state.config.frontend_url
        );
        let body = format!(
            "You have been invited to join {} on DevSignal as {}.\n\n\
             Open this link to join (it lets you create your account with this email address if you have none):\n\n{link}\n\n\
             Or use this code:\n\nToken: {token}\n\nThe invitation expires in 7 days.\n",
            org.name, invitation.role
        );
        let _ = state
            .identity
            .mailer
            .send(
                &invitation.email,
                &format!("Join {} on DevSignal", org.name),
                body,
            )
            .await;
        Ok(invitation.into())
    }

    /// Accepts an invitation sent to your email address; returns tokens for that organization.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let actor = actor(ctx)?;
        let state = state(ctx)?;
        let meta = meta(ctx);
        let org =
            domain::identity::organizations::accept_invitation(&state.db, actor, &meta, &token)
                .await
                .gql()?;
        let user = domain::identity::users::get(&state.db, actor.require_user().gql()?)
            .await
            .gql()?;
        let signed = domain::identity::users::sign_in(&state.db, &meta, user, org.id, "invitation")
            .await
            .gql()?;
        let tokens = state.identity.start_session(&meta, &signed).await.gql()?;
        Ok(AuthPayload::new(signed, tokens))
    }

    /// Changes a member's role (ADMIN or OWNER). OWNER moves only with `transferOwnership`.
    async fn update_member_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role: GqlRole,
    ) -> async_graphql::Result<Member> {
        let actor = actor(ctx)?;
        let id = parse_id(&user_id, "Member").gql()?;
        let m = domain::identity::organizations::update_member_role(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
            role.into(),
        )
        .await
        .gql()?;
        Ok(m.into())
    }

    /// Removes a member (ADMIN or OWNER) and ends their sessions here. Not the OWNER.
    async fn remove_member(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        let id = parse_id(&user_id, "Member").gql()?;
        domain::identity::organizations::remove_member(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(true)
    }

    /// Makes another member the OWNER (OWNER only); you become ADMIN.
    async fn transfer_ownership(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Member> {
        let actor = actor(ctx)?;
        let id = parse_id(&user_id, "Member").gql()?;
        let m = domain::identity::organizations::transfer_ownership(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            id,
        )
        .await
        .gql()?;
        Ok(m.into())
    }
}
