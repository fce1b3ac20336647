//! Sign-in flows (`register`, `login`, `refreshSession`, `logout`, `requestPasswordReset`,
//! `resetPassword`, `switchOrganization`) and the `viewer`.

use async_graphql::{Context, ID, InputObject, Object};

use super::types::{AuthPayload, Viewer};
use crate::auth::ratelimit::Limiter;
use crate::graphql::common::db;
use crate::graphql::common::parse_id;
use crate::graphql::common::{client_ip, meta, state};
use crate::graphql::{GqlResultExt, actor};

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    pub name: String,
    /// The new organization's name; not used with `invitationToken`.
    #[graphql(default)]
    pub organization_name: String,
    /// The token of an invitation email: the new account joins the inviting organization with
    /// the invited role (the email must be the invited address) and no organization is created.
    pub invitation_token: Option<String>,
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The authenticated user (or API key), their current organization and role.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let actor = actor(ctx)?;
        let organization = domain::identity::organizations::acting_for(&*db(ctx).await?, actor)
            .await
            .gql()?;
        let (user, scopes) = match &actor.principal {
            domain::Principal::User { user_id, .. } => (
                Some(
                    domain::identity::users::get(&*db(ctx).await?, *user_id)
                        .await
                        .gql()?
                        .into(),
                ),
                Vec::new(),
            ),
            domain::Principal::ApiKey { scopes, .. } => (None, scopes.clone()),
            domain::Principal::Integration { .. } => {
                (None, domain::INTEGRATION_SCOPES.map(str::to_owned).to_vec())
            }
        };
        Ok(Viewer {
            user,
            organization: organization.into(),
            role: actor.role.into(),
            scopes,
        })
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Creates an organization with you as its OWNER, and signs you in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = state(ctx)?;
        state
            .identity
            .count_against(Limiter::Auth, &client_ip(ctx))
            .await
            .gql()?;
        let meta = meta(ctx);
        let signed = match input.invitation_token.filter(|t| !t.trim().is_empty()) {
            Some(invitation_token) => {
                domain::identity::organizations::register_invited(
                    &state.db,
                    &meta,
                    domain::identity::organizations::RegisterInvitedInput {
                        email: input.email,
                        password: input.password,
                        name: input.name,
                        invitation_token,
                    },
                )
                .await
            }
            None => {
                domain::identity::users::register(
                    &state.db,
                    &meta,
                    domain::identity::users::RegisterInput {
                        email: input.email,
                        password: input.password,
                        name: input.name,
                        organization_name: input.organization_name,
                    },
                )
                .await
            }
        }
        .gql()?;
        let tokens = state.identity.start_session(&meta, &signed).await.gql()?;
        Ok(AuthPayload::new(signed, tokens))
    }

    /// Signs in with email and password. Wrong credentials give one neutral `UNAUTHENTICATED`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let state = state(ctx)?;
        state
            .identity
            .count_against(Limiter::Auth, &client_ip(ctx))
            .await
            .gql()?;
        let meta = meta(ctx);
        let signed = domain::identity::users::login(&state.db, &meta, &email, &password)
            .await
            .gql()?;
        let tokens = state.identity.start_session(&meta, &signed).await.gql()?;
        Ok(AuthPayload::new(signed, tokens))
    }

    /// Trades a refresh token for a new pair. Each refresh token works once; presenting a used
    /// one ends the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let state = state(ctx)?;
        let (signed, tokens) = state.identity.refresh(&refresh_token).await.gql()?;
        Ok(AuthPayload::new(signed, tokens))
    }

    /// Ends the current session.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        let state = state(ctx)?;
        match actor.principal {
            domain::Principal::User { session_id, .. } => {
                domain::identity::sessions::revoke(&state.db, session_id, "logout")
                    .await
                    .gql()?;
                Ok(true)
            }
            domain::Principal::ApiKey { .. } | domain::Principal::Integration { .. } => Err(
                domain::Error::Forbidden("API keys have no session to end".into()),
            )
            .gql(),
        }
    }

    /// Emails a single-use reset link (valid 1 hour) if the account exists. Always true.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> async_graphql::Result<bool> {
        let state = state(ctx)?;
        state
            .identity
            .count_against(Limiter::Auth, &client_ip(ctx))
            .await
            .gql()?;
        state.identity.send_password_reset(&email).await.gql()?;
        Ok(true)
    }

    /// Sets a new password with a reset token, and ends every session of the account.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> async_graphql::Result<bool> {
        let state = state(ctx)?;
        domain::identity::users::reset_password(&state.db, &meta(ctx), &token, &password)
            .await
            .gql()?;
        Ok(true)
    }

    /// New tokens for another organization you belong to (a new session; the current one stays).
    async fn switch_organization(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> async_graphql::Result<AuthPayload> {
        let actor = actor(ctx)?;
        let state = state(ctx)?;
        let user_id = actor.require_user().gql()?;
        let org = parse_id(&organization_id, "Organization").gql()?;
        if domain::identity::users::membership_in(&state.db, user_id, org)
            .await
            .gql()?
            .is_none()
        {
            return Err(domain::Error::NotFound {
                entity: "Organization",
            })
            .gql();
        }
        let meta = meta(ctx);
        let user = domain::identity::users::get(&state.db, user_id)
            .await
            .gql()?;
        let signed = domain::identity::users::sign_in(&state.db, &meta, user, org, "switch")
            .await
            .gql()?;
        let tokens = state.identity.start_session(&meta, &signed).await.gql()?;
        Ok(AuthPayload::new(signed, tokens))
    }
}
