//! Organizations and their members: roles, removal, ownership transfer, invitations. ADMIN or
//! OWNER manages members; an organization always keeps exactly one OWNER (the role moves only
//! through `transfer_ownership`).

use chrono::{DateTime, Duration, Utc};
use entity::{invitations, memberships, organizations, users};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta, action};
use crate::error::on_unique;
use crate::identity::sessions;
use crate::secrets::{normalize_email, random_token, sha256_hex};
use crate::{Actor, Error, Result, Role};

/// The actor's organization (API keys: `organization:read`).
pub async fn current(db: &impl ConnectionTrait, actor: &Actor) -> Result<organizations::Model> {
    actor.require_scope("organization:read")?;
    acting_for(db, actor).await
}

/// The organization the actor acts for, whatever its scopes: `viewer` tells every credential
/// which organization it belongs to.
pub async fn acting_for(db: &impl ConnectionTrait, actor: &Actor) -> Result<organizations::Model> {
    organizations::Entity::find_by_id(actor.organization_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "Organization",
        })
}

/// Every organization the user belongs to, with their role, oldest membership first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> Result<Vec<(organizations::Model, Role)>> {
    let user_id = actor.require_user()?;
    let rows = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .order_by_asc(memberships::Column::CreatedAt)
        .find_also_related(organizations::Entity)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, o)| Some((o?, Role::parse(&m.role)?)))
        .collect())
}

/// A member: the membership and its user.
#[derive(Debug, Clone)]
pub struct Member {
    pub membership: memberships::Model,
    pub user: users::Model,
}

impl Member {
    pub fn role(&self) -> Role {
        Role::parse(&self.membership.role).unwrap_or(Role::Viewer)
    }
}

/// The members of the actor's organization, oldest first (API keys: `organization:read`).
pub async fn members(db: &impl ConnectionTrait, actor: &Actor) -> Result<Vec<Member>> {
    actor.require_scope("organization:read")?;
    let rows = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(memberships::Column::CreatedAt)
        .find_also_related(users::Entity)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(membership, user)| {
            Some(Member {
                membership,
                user: user?,
            })
        })
        .collect())
}

/// One member of the actor's organization; `NOT_FOUND` for anyone else (API keys:
/// `organization:read`).
pub async fn member(db: &impl ConnectionTrait, actor: &Actor, user_id: Uuid) -> Result<Member> {
    actor.require_scope("organization:read")?;
    let (membership, user) = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(actor.organization_id))
        .filter(memberships::Column::UserId.eq(user_id))
        .find_also_related(users::Entity)
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Member" })?;
    let user = user.ok_or(Error::NotFound { entity: "Member" })?;
    Ok(Member { membership, user })
}

fn set_role(id: Uuid, role: Role) -> memberships::ActiveModel {
    memberships::ActiveModel {
        id: Set(id),
        role: Set(role.as_str().to_owned()),
        ..Default::default()
    }
}

/// Changes a member's role (ADMIN+). OWNER is neither given nor taken here: use
/// [`transfer_ownership`].
pub async fn update_member_role(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    meta: &Meta,
    user_id: Uuid,
    role: Role,
) -> Result<Member> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let mut member = member(db, actor, user_id).await?;
    if role == Role::Owner {
        return Err(Error::invalid(
            "role",
            "use transferOwnership to make someone the OWNER",
        ));
    }
    let from = member.role();
    if from == Role::Owner {
        return Err(Error::Forbidden(
            "the OWNER's role changes only by transferring ownership".into(),
        ));
    }
    if from == role {
        return Ok(member);
    }
    let txn = crate::db::begin(db).await?;
    member.membership = set_role(member.membership.id, role).update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::ROLE_CHANGED)
            .target("user", user_id)
            .metadata(serde_json::json!({"from": from.as_str(), "to": role.as_str()})),
    )
    .await?;
    txn.commit().await?;
    Ok(member)
}

/// Removes a member (ADMIN+), ending their sessions in this organization. The OWNER cannot be
/// removed.
pub async fn remove_member(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    meta: &Meta,
    user_id: Uuid,
) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let member = member(db, actor, user_id).await?;
    if member.role() == Role::Owner {
        return Err(Error::Forbidden(
            "the OWNER cannot be removed; transfer ownership first".into(),
        ));
    }
    let txn = crate::db::begin(db).await?;
    memberships::Entity::delete_by_id(member.membership.id)
        .exec(&txn)
        .await?;
    sessions::revoke_in_organization(&txn, actor.organization_id, user_id, "member_removed")
        .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::MEMBER_REMOVED)
            .target("user", user_id)
            .metadata(serde_json::json!({"role": member.role().as_str()})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Makes another member the OWNER (OWNER only); the previous owner becomes ADMIN.
pub async fn transfer_ownership(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    meta: &Meta,
    user_id: Uuid,
) -> Result<Member> {
    let me = actor.require_user()?;
    actor.require_role(Role::Owner)?;
    let mut target = member(db, actor, user_id).await?;
    if user_id == me {
        return Err(Error::invalid(
            "userId",
            "you already own this organization",
        ));
    }
    let mine = member(db, actor, me).await?;
    let txn = crate::db::begin(db).await?;
    set_role(mine.membership.id, Role::Admin)
        .update(&txn)
        .await?;
    target.membership = set_role(target.membership.id, Role::Owner)
        .update(&txn)
        .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::OWNERSHIP_TRANSFERRED).target("user", user_id),
    )
    .await?;
    txn.commit().await?;
    Ok(target)
}

/// How long an invitation stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;

#[derive(Debug, Clone)]
pub struct InviteInput {
    pub email: String,
    pub role: Role,
}

/// Invites an email with a role (ADMIN+; not OWNER). Returns the invitation and its single-use
/// token, to be emailed. Inviting an existing member is a `CONFLICT` on `email`.
pub async fn invite(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    input: InviteInput,
) -> Result<(invitations::Model, String)> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let email = normalize_email("email", &input.email)?;
    if input.role == Role::Owner {
        return Err(Error::invalid(
            "role",
            "use transferOwnership to make someone the OWNER",
        ));
    }
    let existing = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(actor.organization_id))
        .inner_join(users::Entity)
        .filter(users::Column::Email.eq(email.clone()))
        .one(db)
        .await?;
    if existing.is_some() {
        return Err(Error::Conflict {
            field: "email".into(),
            message: "this person is already a member".into(),
        });
    }
    let token = random_token();
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    if let Some(standing) = crate::billing::limits(&txn, actor.organization_id, now).await? {
        crate::billing::usage::admit(
            &txn,
            actor.organization_id,
            &standing,
            crate::billing::Metric::Members,
            1,
        )
        .await?;
    }
    let invitation = invitations::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        email: Set(email),
        role: Set(input.role.as_str().to_owned()),
        token_hash: Set(sha256_hex(&token)),
        invited_by: Set(actor.user_id()),
        created_at: Set(now),
        expires_at: Set(now + Duration::days(INVITATION_TTL_DAYS)),
        accepted_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::MEMBER_INVITED)
            .target("invitation", invitation.id)
            .metadata(serde_json::json!({"role": input.role.as_str()})),
    )
    .await?;
    txn.commit().await?;
    Ok((invitation, token))
}

/// Pending invitations of the actor's organization (ADMIN+).
pub async fn invitations(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> Result<Vec<invitations::Model>> {
    actor.require_role(Role::Admin)?;
    Ok(invitations::Entity::find()
        .filter(invitations::Column::OrganizationId.eq(actor.organization_id))
        .filter(invitations::Column::AcceptedAt.is_null())
        .order_by_desc(invitations::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Whether the organization `id` exists (operator commands).
pub async fn exists(db: &impl ConnectionTrait, id: Uuid) -> Result<bool> {
    Ok(organizations::Entity::find_by_id(id)
        .one(db)
        .await?
        .is_some())
}

/// Accepts an invitation as the signed-in user, whose email must be the invited one. The token
/// works once. Returns the organization joined.
pub async fn accept_invitation(
    db: &sea_orm::DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    token: &str,
) -> Result<organizations::Model> {
    let user_id = actor.require_user()?;
    let user = crate::identity::users::get(db, user_id).await?;
    let invalid = || Error::invalid("token", "is invalid, expired or already used");
    let hash = sha256_hex(token);
    let now: DateTime<Utc> = Utc::now();
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(hash.clone()))
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    if invitation.email != user.email {
        return Err(Error::Forbidden(
            "this invitation was sent to another email address".into(),
        ));
    }
    let txn = crate::db::begin(db).await?;
    let used = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(Some(now)))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(invalid());
    }
    crate::billing::usage::admit_joining(&txn, invitation.organization_id, now).await?;
    memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(invitation.organization_id),
        user_id: Set(user_id),
        role: Set(invitation.role.clone()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| on_unique(e, "token", "you are already a member of this organization"))?;
    audit::record(
        &txn,
        meta,
        Entry {
            organization_id: Some(invitation.organization_id),
            user_id: Some(user_id),
            action: action::MEMBER_JOINED,
            metadata: Some(serde_json::json!({"role": invitation.role})),
            ..Default::default()
        }
        .target("invitation", invitation.id),
    )
    .await?;
    let org = organizations::Entity::find_by_id(invitation.organization_id)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound {
            entity: "Organization",
        })?;
    txn.commit().await?;
    Ok(org)
}

/// Deletes demo organizations created before `before`, with all their data (rows cascade from
/// the organization) and the users who belonged to no other organization. Returns (orgs, users)
/// deleted. Used by the `demo-cleanup` job (demo organizations older than 24 hours).
pub async fn delete_demos_created_before(
    db: &sea_orm::DatabaseConnection,
    before: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let txn = crate::db::begin(db).await?;
    let orgs: Vec<Uuid> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .filter(organizations::Column::IsDemo.eq(true))
        .filter(organizations::Column::CreatedAt.lt(before))
        .into_tuple()
        .all(&txn)
        .await?;
    if orgs.is_empty() {
        txn.commit().await?;
        return Ok((0, 0));
    }
    let members: Vec<Uuid> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::UserId)
        .filter(memberships::Column::OrganizationId.is_in(orgs.clone()))
        .into_tuple()
        .all(&txn)
        .await?;
    let deleted_orgs = organizations::Entity::delete_many()
        .filter(organizations::Column::Id.is_in(orgs))
        .exec(&txn)
        .await?
        .rows_affected;
    // Users left without any organization were the demo's own.
    let still_members: Vec<Uuid> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::UserId)
        .filter(memberships::Column::UserId.is_in(members.clone()))
        .into_tuple()
        .all(&txn)
        .await?;
    let orphans: Vec<Uuid> = members
        .into_iter()
        .filter(|u| !still_members.contains(u))
        .collect();
    let deleted_users = if orphans.is_empty() {
        0
    } else {
        users::Entity::delete_many()
            .filter(users::Column::Id.is_in(orphans))
            .exec(&txn)
            .await?
            .rows_affected
    };
    txn.commit().await?;
    Ok((deleted_orgs, deleted_users))
}

/// What an invitee without an account sends to sign up.
#[derive(Debug, Clone, Default)]
pub struct RegisterInvitedInput {
    pub email: String,
    pub password: String,
    pub name: String,
    /// The token of the invitation email.
    pub invitation_token: String,
}

/// Creates the account of someone invited by email and makes them a member of the inviting
/// organization with the invited role, in one transaction: no organization of their own. The
/// email must be the invited address; a used, expired or unknown token is refused on
/// `invitationToken`; an email that already has an account is a `CONFLICT` on `email` (that
/// person signs in and accepts instead).
pub async fn register_invited(
    db: &sea_orm::DatabaseConnection,
    meta: &Meta,
    input: RegisterInvitedInput,
) -> Result<crate::identity::users::SignedIn> {
    let mut errors = Vec::new();
    let email = match normalize_email("email", &input.email) {
        Ok(e) => e,
        Err(Error::Validation(mut f)) => {
            errors.append(&mut f);
            String::new()
        }
        Err(e) => return Err(e),
    };
    if let Err(Error::Validation(mut f)) =
        crate::secrets::validate_password("password", &input.password)
    {
        errors.append(&mut f);
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        errors.push(crate::FieldError::new("name", "is required"));
    } else if name.chars().count() > 200 {
        errors.push(crate::FieldError::new(
            "name",
            "must be at most 200 characters",
        ));
    }
    let invalid = || Error::invalid("invitationToken", "is invalid, expired or already used");
    let now: DateTime<Utc> = Utc::now();
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(sha256_hex(input.invitation_token.trim())))
        .one(db)
        .await?
        .filter(|i| i.accepted_at.is_none() && i.expires_at > now);
    let Some(invitation) = invitation else {
        errors.push(crate::FieldError::new(
            "invitationToken",
            "is invalid, expired or already used",
        ));
        return Err(Error::Validation(errors));
    };
    if !email.is_empty() && invitation.email != email {
        errors.push(crate::FieldError::new(
            "email",
            "must be the address the invitation was sent to",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let hash = crate::secrets::hash_password(&input.password).await?;
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
    .map_err(|e| {
        on_unique(
            e,
            "email",
            "an account with this email already exists; sign in to accept the invitation",
        )
    })?;
    let used = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(Some(now)))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(invalid());
    }
    crate::billing::usage::admit_joining(&txn, invitation.organization_id, now).await?;
    memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(invitation.organization_id),
        user_id: Set(user.id),
        role: Set(invitation.role.clone()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    for act in [action::REGISTER, action::MEMBER_JOINED] {
        audit::record(
            &txn,
            meta,
            Entry {
                organization_id: Some(invitation.organization_id),
                user_id: Some(user.id),
                action: act,
                metadata: Some(serde_json::json!({"role": invitation.role})),
                ..Default::default()
            }
            .target("invitation", invitation.id),
        )
        .await?;
    }
    let organization = organizations::Entity::find_by_id(invitation.organization_id)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound {
            entity: "Organization",
        })?;
    txn.commit().await?;
    Ok(crate::identity::users::SignedIn {
        user,
        organization,
        role: Role::parse(&invitation.role).unwrap_or(Role::Viewer),
    })
}
