//! Sessions: one row per signed-in device, i.e. per refresh-token family. The refresh token
//! carries the session id and a random refresh id; the row stores only the hash of the current
//! refresh id. Rotation swaps it with one conditional UPDATE; presenting a refresh id that is no
//! longer current (a rotated, possibly stolen token) revokes the whole session.

use chrono::{Duration, Utc};
use entity::sessions;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::audit::Meta;
use crate::identity::users;
use crate::secrets::{random_token, sha256_hex};
use crate::{Actor, Error, Principal, Result};

/// A session and the refresh id to put in the new refresh token (shown once).
#[derive(Debug, Clone)]
pub struct Issued {
    pub session: sessions::Model,
    pub refresh_id: String,
}

fn expired() -> Error {
    Error::Unauthenticated("the session has ended; sign in again".into())
}

pub async fn create(
    db: &impl ConnectionTrait,
    meta: &Meta,
    user_id: Uuid,
    organization_id: Uuid,
    ttl: Duration,
) -> Result<Issued> {
    let refresh_id = random_token();
    let now = Utc::now();
    let session = sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        user_id: Set(user_id),
        refresh_hash: Set(sha256_hex(&refresh_id)),
        generation: Set(0),
        ip: Set(meta.ip.clone()),
        user_agent: Set(meta.user_agent.clone()),
        created_at: Set(now),
        refreshed_at: Set(now),
        expires_at: Set(now + ttl),
        revoked_at: Set(None),
        revoked_reason: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Issued {
        session,
        refresh_id,
    })
}

/// Rotates a session's refresh id. A stale refresh id revokes the session (reuse detection).
pub async fn rotate(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    refresh_id: &str,
    ttl: Duration,
) -> Result<Issued> {
    let now = Utc::now();
    let session = sessions::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .ok_or_else(expired)?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(expired());
    }
    let presented = sha256_hex(refresh_id);
    if presented != session.refresh_hash {
        revoke(db, session_id, "refresh_token_reuse").await?;
        tracing::warn!(sessionId = %session_id, "refresh token reuse: session revoked");
        return Err(Error::Unauthenticated(
            "this refresh token was already used; the session has been revoked".into(),
        ));
    }
    // The user must still belong to the organization.
    if users::role_in(db, session.user_id, session.organization_id)
        .await?
        .is_none()
    {
        revoke(db, session_id, "membership_ended").await?;
        return Err(expired());
    }
    let next = random_token();
    let next_hash = sha256_hex(&next);
    let updated = sessions::Entity::update_many()
        .col_expr(sessions::Column::RefreshHash, Expr::value(next_hash))
        .col_expr(
            sessions::Column::Generation,
            Expr::col(sessions::Column::Generation).add(1),
        )
        .col_expr(sessions::Column::RefreshedAt, Expr::value(now))
        .col_expr(sessions::Column::ExpiresAt, Expr::value(now + ttl))
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RefreshHash.eq(presented))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        // Someone rotated it between our read and write: the same token was used twice.
        revoke(db, session_id, "refresh_token_reuse").await?;
        return Err(Error::Unauthenticated(
            "this refresh token was already used; the session has been revoked".into(),
        ));
    }
    let session = sessions::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .ok_or_else(expired)?;
    Ok(Issued {
        session,
        refresh_id: next,
    })
}

/// Ends one session (idempotent).
pub async fn revoke(db: &impl ConnectionTrait, session_id: Uuid, reason: &str) -> Result<()> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .col_expr(
            sessions::Column::RevokedReason,
            Expr::value(Some(reason.to_owned())),
        )
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of a user.
pub async fn revoke_all_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    reason: &str,
) -> Result<()> {
    revoke_where(db, user_id, None, reason).await
}

/// Ends a user's sessions in one organization (after removal from it).
pub async fn revoke_in_organization(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    user_id: Uuid,
    reason: &str,
) -> Result<()> {
    revoke_where(db, user_id, Some(organization_id), reason).await
}

/// Revokes the user's live sessions, in one organization or in all.
async fn revoke_where(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    organization_id: Option<Uuid>,
    reason: &str,
) -> Result<()> {
    let mut update = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .col_expr(
            sessions::Column::RevokedReason,
            Expr::value(Some(reason.to_owned())),
        )
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(org) = organization_id {
        update = update.filter(sessions::Column::OrganizationId.eq(org));
    }
    update.exec(db).await?;
    Ok(())
}

/// The actor of a verified access token: the session must be live and the user still a member;
/// the role is read fresh from the membership, so role changes apply at once.
pub async fn actor(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Actor> {
    let session = sessions::Entity::find_by_id(session_id)
        .one(db)
        .await?
        .ok_or_else(expired)?;
    if session.revoked_at.is_some()
        || session.expires_at <= Utc::now()
        || session.user_id != user_id
        || session.organization_id != organization_id
    {
        return Err(expired());
    }
    let role = users::role_in(db, user_id, organization_id)
        .await?
        .ok_or_else(expired)?;
    Ok(Actor {
        organization_id,
        role,
        principal: Principal::User {
            user_id,
            session_id,
        },
    })
}

/// The actor as it stands now: its session (or API key) still valid, its role read again.
/// Long-lived connections (GraphQL subscriptions) call this now and then, so a logout, a
/// revoked key or a removed member stops receiving the organization's events.
pub async fn recheck(db: &impl ConnectionTrait, actor: &Actor) -> Result<Actor> {
    match &actor.principal {
        Principal::User {
            user_id,
            session_id,
        } => self::actor(db, *session_id, *user_id, actor.organization_id).await,
        Principal::ApiKey { key_id, .. } => {
            crate::identity::api_keys::actor_by_id(db, *key_id).await
        }
        Principal::Integration { .. } => Err(Error::Forbidden(
            "an integration cannot hold a subscription".into(),
        )),
    }
}
