//! API keys: `dsk_` + 40 random alphanumerics, shown once; only the SHA-256 is stored, with a
//! 12-character prefix for display and for revocation from the command line. A key
//! acts for its organization only and within its scopes.

use chrono::{DateTime, Utc};
use entity::api_keys;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta, action};
use crate::error::on_unique;
use crate::secrets::{random_alphanumeric, sha256_hex};
use crate::{Actor, Error, FieldError, Principal, Result, Role};

pub const KEY_PREFIX: &str = "dsk_";
/// Random characters after `dsk_`.
pub const KEY_RANDOM_LEN: usize = 40;
/// Characters of the key kept as its visible prefix (`dsk_` + 8).
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// Every scope a key may carry. `admin` implies all others.
pub const SCOPES: &[&str] = &[
    "signals:read",
    "signals:write",
    "accounts:read",
    "accounts:write",
    "contacts:read",
    "contacts:write",
    "deals:read",
    "deals:write",
    "webhooks:manage",
    "integrations:manage",
    "admin",
];

#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// True when `s` looks like one of our keys (so callers know not to treat it as a JWT).
pub fn looks_like_key(s: &str) -> bool {
    s.starts_with(KEY_PREFIX)
}

pub fn scopes_of(key: &api_keys::Model) -> Vec<String> {
    serde_json::from_value(key.scopes.clone()).unwrap_or_default()
}

/// Creates a key (ADMIN+); returns it with the full key, which is never shown again.
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    meta: &Meta,
    input: CreateInput,
) -> Result<(api_keys::Model, String)> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let mut errors = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in &input.scopes {
        if !SCOPES.contains(&s.as_str()) {
            errors.push(FieldError::new(
                "scopes",
                format!("unknown scope {s:?}; known: {}", SCOPES.join(", ")),
            ));
        } else if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    if input.scopes.is_empty() {
        errors.push(FieldError::new("scopes", "must name at least one scope"));
    }
    if input.expires_at.is_some_and(|t| t <= Utc::now()) {
        errors.push(FieldError::new("expiresAt", "must be in the future"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let key = format!("{KEY_PREFIX}{}", random_alphanumeric(KEY_RANDOM_LEN));
    let model = api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        created_by: Set(actor.user_id()),
        name: Set(name),
        prefix: Set(key[..DISPLAY_PREFIX_LEN].to_owned()),
        key_hash: Set(sha256_hex(&key)),
        scopes: Set(serde_json::json!(scopes)),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        expires_at: Set(input.expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| on_unique(e, "key", "key collision; try again"))?;
    audit::record(
        db,
        meta,
        Entry::by(actor, action::API_KEY_CREATED)
            .target("api_key", model.id)
            .metadata(
                serde_json::json!({"name": model.name, "prefix": model.prefix, "scopes": scopes}),
            ),
    )
    .await?;
    Ok((model, key))
}

/// The organization's keys, newest first (ADMIN+).
pub async fn list(db: &impl ConnectionTrait, actor: &Actor) -> Result<Vec<api_keys::Model>> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::OrganizationId.eq(actor.organization_id))
        .order_by_desc(api_keys::Column::Id)
        .all(db)
        .await?)
}

/// Revokes one of the organization's keys (ADMIN+); `NOT_FOUND` for any other id.
pub async fn revoke(
    db: &impl ConnectionTrait,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
) -> Result<api_keys::Model> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let key = api_keys::Entity::find_by_id(id)
        .filter(api_keys::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "ApiKey" })?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut active: api_keys::ActiveModel = key.into();
    active.revoked_at = Set(Some(Utc::now()));
    let key = active.update(db).await?;
    audit::record(
        db,
        meta,
        Entry::by(actor, action::API_KEY_REVOKED)
            .target("api_key", key.id)
            .metadata(serde_json::json!({"prefix": key.prefix})),
    )
    .await?;
    Ok(key)
}

/// Operator revocation by prefix. Revokes the one live key with that prefix;
/// refuses when none or several match.
pub async fn revoke_by_prefix(db: &impl ConnectionTrait, prefix: &str) -> Result<api_keys::Model> {
    let matches = api_keys::Entity::find()
        .filter(api_keys::Column::Prefix.eq(prefix))
        .filter(api_keys::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    let key = match matches.as_slice() {
        [] => return Err(Error::NotFound { entity: "ApiKey" }),
        [one] => one.clone(),
        more => {
            return Err(Error::invalid(
                "prefix",
                format!(
                    "{} live keys share this prefix; revoke by id instead",
                    more.len()
                ),
            ));
        }
    };
    let mut active: api_keys::ActiveModel = key.into();
    active.revoked_at = Set(Some(Utc::now()));
    let key = active.update(db).await?;
    audit::record(
        db,
        &Meta::default(),
        Entry {
            organization_id: Some(key.organization_id),
            action: action::API_KEY_REVOKED,
            metadata: Some(serde_json::json!({"prefix": key.prefix, "via": "cli"})),
            ..Default::default()
        }
        .target("api_key", key.id),
    )
    .await?;
    Ok(key)
}

/// The actor of a presented key. Unknown, revoked or expired keys are `UNAUTHENTICATED`.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<(Actor, api_keys::Model)> {
    let invalid = || Error::Unauthenticated("invalid, revoked or expired API key".into());
    if !looks_like_key(key) {
        return Err(invalid());
    }
    let model = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(sha256_hex(key)))
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    Ok((key_actor(&model).ok_or_else(invalid)?, model))
}

/// The actor of a stored key, unless it is revoked or expired.
fn key_actor(model: &api_keys::Model) -> Option<Actor> {
    if model.revoked_at.is_some() || model.expires_at.is_some_and(|t| t <= Utc::now()) {
        return None;
    }
    let scopes = scopes_of(model);
    let role = if scopes.iter().any(|s| s == "admin") {
        Role::Admin
    } else {
        Role::Member
    };
    Some(Actor {
        organization_id: model.organization_id,
        role,
        principal: Principal::ApiKey {
            key_id: model.id,
            scopes,
        },
    })
}

/// The actor of the key `id` as it stands now (for long-lived connections that authenticated
/// with it earlier).
pub async fn actor_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Actor> {
    api_keys::Entity::find_by_id(id)
        .one(db)
        .await?
        .as_ref()
        .and_then(key_actor)
        .ok_or_else(|| Error::Unauthenticated("invalid, revoked or expired API key".into()))
}

/// Writes a key's `lastUsedAt` (called at most once a minute per key by the server).
pub async fn touch(db: &impl ConnectionTrait, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Expr::value(Some(at)))
        .filter(api_keys::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
