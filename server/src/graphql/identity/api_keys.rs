//! API keys: create (the key is shown once), list, revoke. ADMIN or OWNER (or a key with the
//! `admin` scope).

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::types::{ApiKey, CreatedApiKey};
use crate::graphql::common::db;
use crate::graphql::common::meta;
use crate::graphql::common::parse_id;
use crate::graphql::{GqlResultExt, actor};

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// One or more of `accounts:read`, `accounts:write`, `contacts:read`, `contacts:write`,
    /// `deals:read`, `deals:write`, `activities:read`, `activities:write`, `signals:read`,
    /// `signals:write`, `organization:read`, `webhooks:manage`, `integrations:manage`, `admin`
    /// (what each grants: ARCHITECTURE.md, "API-key scopes"). Unknown scopes are refused.
    pub scopes: Vec<String>,
    /// When the key stops working; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The organization's API keys, newest first.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let actor = actor(ctx)?;
        let keys = domain::identity::api_keys::list(&*db(ctx).await?, actor)
            .await
            .gql()?;
        Ok(keys.into_iter().map(ApiKey::from).collect())
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates a key. `key` in the answer is the only time the full key is shown.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let actor = actor(ctx)?;
        let (model, key) = domain::identity::api_keys::create(
            &*db(ctx).await?,
            actor,
            &meta(ctx),
            domain::identity::api_keys::CreateInput {
                name: input.name,
                scopes: input.scopes,
                expires_at: input.expires_at,
            },
        )
        .await
        .gql()?;
        Ok(CreatedApiKey {
            key,
            api_key: model.into(),
        })
    }

    /// Revokes a key at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "ApiKey").gql()?;
        let model = domain::identity::api_keys::revoke(&*db(ctx).await?, actor, &meta(ctx), id)
            .await
            .gql()?;
        Ok(model.into())
    }
}
