//! GraphQL types of identity and access. Each wraps an entity; no column leaks by accident.

use async_graphql::{ComplexObject, Context, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{api_keys, audit_logs, invitations, organizations, users};
use uuid::Uuid;

use crate::auth::Tokens;
use crate::state::AppState;

/// A member's role in an organization, strongest first.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum GqlRole {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl From<domain::Role> for GqlRole {
    fn from(r: domain::Role) -> Self {
        match r {
            domain::Role::Owner => GqlRole::Owner,
            domain::Role::Admin => GqlRole::Admin,
            domain::Role::Member => GqlRole::Member,
            domain::Role::Viewer => GqlRole::Viewer,
        }
    }
}

impl From<GqlRole> for domain::Role {
    fn from(r: GqlRole) -> Self {
        match r {
            GqlRole::Owner => domain::Role::Owner,
            GqlRole::Admin => domain::Role::Admin,
            GqlRole::Member => domain::Role::Member,
            GqlRole::Viewer => domain::Role::Viewer,
        }
    }
}

/// A person's account.
#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<users::Model> for User {
    fn from(u: users::Model) -> Self {
        Self {
            id: ID(u.id.to_string()),
            email: u.email,
            name: u.name,
            created_at: u.created_at,
        }
    }
}

/// A tenant: every record belongs to exactly one organization.
#[derive(SimpleObject)]
pub struct Organization {
    pub id: ID,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<organizations::Model> for Organization {
    fn from(o: organizations::Model) -> Self {
        Self {
            id: ID(o.id.to_string()),
            name: o.name,
            created_at: o.created_at,
        }
    }
}

/// One of the viewer's organizations and their role in it.
#[derive(SimpleObject)]
pub struct OrganizationMembership {
    pub organization: Organization,
    pub role: GqlRole,
}

/// Who is asking: the user (absent for an API key), the current organization and the role.
#[derive(SimpleObject)]
pub struct Viewer {
    pub user: Option<User>,
    pub organization: Organization,
    pub role: GqlRole,
    /// The scopes of the API key in use; empty for users.
    pub scopes: Vec<String>,
}

/// A new session: tokens (the access token goes in `Authorization: Bearer …`) and who it is for.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: User,
    pub organization: Organization,
    pub role: GqlRole,
}

impl AuthPayload {
    pub fn new(signed: domain::identity::users::SignedIn, tokens: Tokens) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_in: tokens.expires_in,
            user: signed.user.into(),
            organization: signed.organization.into(),
            role: signed.role.into(),
        }
    }
}

/// A member of the current organization.
#[derive(SimpleObject)]
pub struct Member {
    pub user: User,
    pub role: GqlRole,
    pub joined_at: DateTime<Utc>,
}

impl From<domain::identity::organizations::Member> for Member {
    fn from(m: domain::identity::organizations::Member) -> Self {
        Self {
            role: m.role().into(),
            joined_at: m.membership.created_at,
            user: m.user.into(),
        }
    }
}

/// A pending invitation to the current organization.
#[derive(SimpleObject)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    pub role: GqlRole,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
}

impl From<invitations::Model> for Invitation {
    fn from(i: invitations::Model) -> Self {
        Self {
            id: ID(i.id.to_string()),
            email: i.email,
            role: domain::Role::parse(&i.role)
                .unwrap_or(domain::Role::Viewer)
                .into(),
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
        }
    }
}

/// An API key (without the key itself, which is shown only once at creation).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The first characters of the key (`dsk_` + 8), to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub key_id: Uuid,
    #[graphql(skip)]
    pub stored_last_used_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl ApiKey {
    /// When the key last authenticated a request.
    async fn last_used_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        let seen = ctx
            .data_opt::<AppState>()
            .and_then(|s| s.identity.key_usage.last_used(self.key_id));
        match (seen, self.stored_last_used_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl From<api_keys::Model> for ApiKey {
    fn from(k: api_keys::Model) -> Self {
        Self {
            id: ID(k.id.to_string()),
            scopes: domain::identity::api_keys::scopes_of(&k),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            key_id: k.id,
            stored_last_used_at: k.last_used_at,
        }
    }
}

/// A new API key: `key` is the full secret, shown only this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
}

/// One audit-log entry.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    /// e.g. `auth.sign_in`, `member.role_changed`, `api_key.created`.
    pub action: String,
    /// The user who acted, if a user did.
    pub user_id: Option<ID>,
    /// The API key that acted, if a key did.
    pub api_key_id: Option<ID>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The client IP the action came from.
    pub ip: Option<String>,
    pub metadata: Option<async_graphql::Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
}

impl From<audit_logs::Model> for AuditEntry {
    fn from(a: audit_logs::Model) -> Self {
        Self {
            id: ID(a.id.to_string()),
            action: a.action,
            user_id: a.user_id.map(|u| ID(u.to_string())),
            api_key_id: a.api_key_id.map(|u| ID(u.to_string())),
            target_type: a.target_type,
            target_id: a.target_id,
            ip: a.ip,
            metadata: a.metadata.map(async_graphql::Json),
            created_at: a.created_at,
        }
    }
}
