//! Single-use, expiring tokens (password reset, OAuth state, OAuth exchange code). Only a hash is
//! stored; consuming is one conditional UPDATE, so a token works exactly once even under races.

use chrono::{Duration, Utc};
use entity::auth_tokens;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::Result;
use crate::secrets::{random_token, sha256_hex};

pub const PASSWORD_RESET: &str = "password_reset";
pub const OAUTH_STATE: &str = "oauth_state";
pub const OAUTH_CODE: &str = "oauth_code";
/// The state of a CRM connection in progress (HubSpot, Salesforce OAuth).
pub const CRM_OAUTH_STATE: &str = "crm_oauth_state";

#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub user_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub data: Option<String>,
}

/// Issues a token of `kind` valid for `ttl`; returns the token itself (shown once).
pub async fn issue(
    db: &impl ConnectionTrait,
    kind: &str,
    ttl: Duration,
    new: NewToken,
) -> Result<String> {
    let token = random_token();
    let now = Utc::now();
    auth_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.to_owned()),
        token_hash: Set(sha256_hex(&token)),
        user_id: Set(new.user_id),
        organization_id: Set(new.organization_id),
        data: Set(new.data),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// A token of `kind` that is known, unexpired and unused, without using it up (a cheap check
/// before costly work; [`consume`] decides).
pub async fn peek(
    db: &impl ConnectionTrait,
    kind: &str,
    token: &str,
) -> Result<Option<auth_tokens::Model>> {
    Ok(auth_tokens::Entity::find()
        .filter(auth_tokens::Column::TokenHash.eq(sha256_hex(token)))
        .filter(auth_tokens::Column::Kind.eq(kind))
        .filter(auth_tokens::Column::UsedAt.is_null())
        .filter(auth_tokens::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?)
}

/// Uses up a token of `kind`; `None` when it is unknown, expired or already used.
pub async fn consume(
    db: &impl ConnectionTrait,
    kind: &str,
    token: &str,
) -> Result<Option<auth_tokens::Model>> {
    let hash = sha256_hex(token);
    let now = Utc::now();
    let updated = auth_tokens::Entity::update_many()
        .col_expr(auth_tokens::Column::UsedAt, Expr::value(Some(now)))
        .filter(auth_tokens::Column::TokenHash.eq(hash.clone()))
        .filter(auth_tokens::Column::Kind.eq(kind))
        .filter(auth_tokens::Column::UsedAt.is_null())
        .filter(auth_tokens::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    Ok(auth_tokens::Entity::find()
        .filter(auth_tokens::Column::TokenHash.eq(hash))
        .one(db)
        .await?)
}
