//! Accounts: registration (a new organization with the user as its OWNER), password sign-in,
//! password reset, and OAuth linking.

use chrono::{Duration, Utc};
use entity::{memberships, organizations, users};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta, action};
use crate::error::on_unique;
use crate::identity::{one_time, sessions};
use crate::secrets::{self, normalize_email, validate_password};
use crate::{Error, FieldError, Result, Role};

/// The one message for every failed sign-in, whether the email exists or not.
pub const INVALID_CREDENTIALS: &str = "invalid email or password";

#[derive(Debug, Clone, Default)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub organization_name: String,
}

/// A user signed into one of their organizations.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: users::Model,
    pub organization: organizations::Model,
    pub role: Role,
}

fn required_text(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if v.chars().count() > 200 {
        errors.push(FieldError::new(field, "must be at most 200 characters"));
    }
    v.to_owned()
}

/// Creates the organization, the user as its OWNER, in one transaction. A taken email is a
/// `CONFLICT` on `email`; every malformed field is named at once.
pub async fn register(
    db: &(impl ConnectionTrait + TransactionTrait),
    meta: &Meta,
    input: RegisterInput,
) -> Result<SignedIn> {
    let mut errors = Vec::new();
    let email = match normalize_email("email", &input.email) {
        Ok(e) => e,
        Err(Error::Validation(mut f)) => {
            errors.append(&mut f);
            String::new()
        }
        Err(e) => return Err(e),
    };
    if let Err(Error::Validation(mut f)) = validate_password("password", &input.password) {
        errors.append(&mut f);
    }
    let name = required_text("name", &input.name, &mut errors);
    let org_name = required_text("organizationName", &input.organization_name, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let hash = secrets::hash_password(&input.password).await?;
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        name: Set(name),
        password_hash: Set(Some(hash)),
        github_id: Set(None),
        google_id: Set(None),
        last_login_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| on_unique(e, "email", "an account with this email already exists"))?;
    let organization = create_organization(&txn, &org_name, user.id).await?;
    audit::record(
        &txn,
        meta,
        Entry {
            organization_id: Some(organization.id),
            user_id: Some(user.id),
            action: action::REGISTER,
            ..Default::default()
        }
        .target("user", user.id),
    )
    .await?;
    txn.commit().await?;
    Ok(SignedIn {
        user,
        organization,
        role: Role::Owner,
    })
}

/// A new organization with `owner` as its OWNER.
pub async fn create_organization(
    db: &impl ConnectionTrait,
    name: &str,
    owner: Uuid,
) -> Result<organizations::Model> {
    let now = Utc::now();
    let organization = organizations::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        is_demo: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization.id),
        user_id: Set(owner),
        role: Set(Role::Owner.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(organization)
}

/// Password sign-in into the user's first organization. Every failure is the same
/// `UNAUTHENTICATED` with [`INVALID_CREDENTIALS`]; failures of known accounts are audited.
pub async fn login(
    db: &impl ConnectionTrait,
    meta: &Meta,
    email: &str,
    password: &str,
) -> Result<SignedIn> {
    let denied = || Error::Unauthenticated(INVALID_CREDENTIALS.into());
    let Ok(email) = normalize_email("email", email) else {
        secrets::burn_password_check(password).await?;
        return Err(denied());
    };
    let user = users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(db)
        .await?;
    let Some(user) = user else {
        secrets::burn_password_check(password).await?;
        // Recorded without an organization: kept for operators, not shown to any tenant.
        audit::record(
            db,
            meta,
            Entry {
                action: action::SIGN_IN_FAILED,
                ..Default::default()
            },
        )
        .await?;
        return Err(denied());
    };
    let ok = match user.password_hash.as_deref() {
        Some(hash) => secrets::verify_password(password, hash).await?,
        None => false,
    };
    let first = first_membership(db, user.id).await?;
    if !ok {
        if let Some(m) = &first {
            audit::record(
                db,
                meta,
                Entry {
                    organization_id: Some(m.organization_id),
                    user_id: Some(user.id),
                    action: action::SIGN_IN_FAILED,
                    ..Default::default()
                }
                .target("user", user.id),
            )
            .await?;
        }
        return Err(denied());
    }
    let Some(m) = first else {
        return Err(denied());
    };
    sign_in(db, meta, user, m.organization_id, "password").await
}

/// Records a successful sign-in of `user` into `organization_id` (which they must belong to).
pub async fn sign_in(
    db: &impl ConnectionTrait,
    meta: &Meta,
    user: users::Model,
    organization_id: Uuid,
    method: &str,
) -> Result<SignedIn> {
    let (organization, role) = membership_in(db, user.id, organization_id)
        .await?
        .ok_or_else(|| Error::Unauthenticated(INVALID_CREDENTIALS.into()))?;
    let mut active: users::ActiveModel = user.into();
    active.last_login_at = Set(Some(Utc::now()));
    let user = active.update(db).await?;
    audit::record(
        db,
        meta,
        Entry {
            organization_id: Some(organization.id),
            user_id: Some(user.id),
            action: action::SIGN_IN,
            metadata: Some(serde_json::json!({ "method": method })),
            ..Default::default()
        }
        .target("user", user.id),
    )
    .await?;
    Ok(SignedIn {
        user,
        organization,
        role,
    })
}

/// The user's oldest membership.
pub async fn first_membership(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Option<memberships::Model>> {
    Ok(memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .order_by_asc(memberships::Column::CreatedAt)
        .order_by_asc(memberships::Column::Id)
        .one(db)
        .await?)
}

/// The role of `user_id` in `organization_id`, if a member (one query).
pub async fn role_in(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Option<Role>> {
    Ok(memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .and_then(|m| Role::parse(&m.role)))
}

/// The organization and role of `user_id` in `organization_id`, if a member.
pub async fn membership_in(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Option<(organizations::Model, Role)>> {
    let Some(m) = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let org = organizations::Entity::find_by_id(organization_id)
        .one(db)
        .await?;
    Ok(org.map(|o| (o, Role::parse(&m.role).unwrap_or(Role::Viewer))))
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<users::Model> {
    users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "User" })
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<users::Model>> {
    let Ok(email) = normalize_email("email", email) else {
        return Ok(None);
    };
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(db)
        .await?)
}

/// How long a password-reset token is valid.
pub const PASSWORD_RESET_TTL_MINUTES: i64 = 60;

/// For a known email: a single-use reset token (to be emailed) and the user. Unknown emails give
/// `None`; callers answer the same either way.
pub async fn request_password_reset(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<(users::Model, String)>> {
    let Some(user) = find_by_email(db, email).await? else {
        return Ok(None);
    };
    let token = one_time::issue(
        db,
        one_time::PASSWORD_RESET,
        Duration::minutes(PASSWORD_RESET_TTL_MINUTES),
        one_time::NewToken {
            user_id: Some(user.id),
            ..Default::default()
        },
    )
    .await?;
    Ok(Some((user, token)))
}

/// Sets a new password with a reset token (once) and ends every session of the user.
pub async fn reset_password(
    db: &(impl ConnectionTrait + TransactionTrait),
    meta: &Meta,
    token: &str,
    password: &str,
) -> Result<()> {
    validate_password("password", password)?;
    let spent = || Error::invalid("token", "is invalid, expired or already used");
    // The token is checked before the (costly) hash; consuming it below checks it again.
    if one_time::peek(db, one_time::PASSWORD_RESET, token)
        .await?
        .is_none()
    {
        return Err(spent());
    }
    let hash = secrets::hash_password(password).await?;
    let txn = crate::db::begin(db).await?;
    let used = one_time::consume(&txn, one_time::PASSWORD_RESET, token).await?;
    let Some(user_id) = used.and_then(|t| t.user_id) else {
        return Err(spent());
    };
    let user = get(&txn, user_id).await?;
    let mut active: users::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.updated_at = Set(Utc::now());
    active.update(&txn).await?;
    sessions::revoke_all_for_user(&txn, user_id, "password_reset").await?;
    if let Some(m) = first_membership(&txn, user_id).await? {
        audit::record(
            &txn,
            meta,
            Entry {
                organization_id: Some(m.organization_id),
                user_id: Some(user_id),
                action: action::PASSWORD_RESET,
                ..Default::default()
            }
            .target("user", user_id),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// An identity asserted by an OAuth provider.
#[derive(Debug, Clone)]
pub struct OAuthIdentity {
    /// `github` or `google`.
    pub provider: &'static str,
    pub subject: String,
    /// A verified email.
    pub email: String,
    pub name: Option<String>,
}

/// Finds the user of an OAuth identity (by provider id, then by verified email, linking it), or
/// creates one with an organization of their own. Returns the user signed into their first
/// organization.
pub async fn oauth_sign_in(
    db: &(impl ConnectionTrait + TransactionTrait),
    meta: &Meta,
    identity: OAuthIdentity,
) -> Result<SignedIn> {
    let email = normalize_email("email", &identity.email)?;
    let id_col = match identity.provider {
        "github" => users::Column::GithubId,
        _ => users::Column::GoogleId,
    };
    let txn = crate::db::begin(db).await?;
    let by_id = users::Entity::find()
        .filter(id_col.eq(identity.subject.clone()))
        .one(&txn)
        .await?;
    let user = match by_id {
        Some(u) => u,
        None => {
            let by_email = users::Entity::find()
                .filter(users::Column::Email.eq(email.clone()))
                .one(&txn)
                .await?;
            match by_email {
                Some(u) => {
                    let mut active: users::ActiveModel = u.into();
                    match identity.provider {
                        "github" => active.github_id = Set(Some(identity.subject.clone())),
                        _ => active.google_id = Set(Some(identity.subject.clone())),
                    }
                    active.updated_at = Set(Utc::now());
                    active.update(&txn).await?
                }
                None => {
                    let now = Utc::now();
                    let name = identity
                        .name
                        .clone()
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
                    let (github_id, google_id) = match identity.provider {
                        "github" => (Some(identity.subject.clone()), None),
                        _ => (None, Some(identity.subject.clone())),
                    };
                    let user = users::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        email: Set(email.clone()),
                        name: Set(name.clone()),
                        password_hash: Set(None),
                        github_id: Set(github_id),
                        google_id: Set(google_id),
                        last_login_at: Set(None),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(&txn)
                    .await
                    .map_err(|e| {
                        on_unique(e, "email", "an account with this email already exists")
                    })?;
                    create_organization(&txn, &format!("{name}'s organization"), user.id).await?;
                    user
                }
            }
        }
    };
    let m = first_membership(&txn, user.id)
        .await?
        .ok_or_else(|| Error::Unauthenticated("this account belongs to no organization".into()))?;
    let signed = sign_in(&txn, meta, user, m.organization_id, identity.provider).await?;
    txn.commit().await?;
    Ok(signed)
}
