//! Who is acting: the organization, the role, and whether it is a signed-in user or an API key
//! (with its scopes). Every domain function that reads or writes tenant data takes an `&Actor`
//! and scopes every query by `actor.organization_id` (CONVENTIONS 7).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Error, Result};

/// Membership roles, weakest first, so `role >= Role::Admin` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "VIEWER",
            Role::Member => "MEMBER",
            Role::Admin => "ADMIN",
            Role::Owner => "OWNER",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "VIEWER" => Some(Role::Viewer),
            "MEMBER" => Some(Role::Member),
            "ADMIN" => Some(Role::Admin),
            "OWNER" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// How the actor authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        user_id: Uuid,
        session_id: Uuid,
    },
    ApiKey {
        key_id: Uuid,
        scopes: Vec<String>,
    },
    /// A connector's run or inbound webhook acting for its organization: it may only write and
    /// read signals and write the CRM records a CRM sync pulls ([`INTEGRATION_SCOPES`]), and the
    /// events it writes name no user or API key.
    Integration {
        integration_id: Uuid,
    },
}

/// What an [`Principal::Integration`] may do.
pub const INTEGRATION_SCOPES: [&str; 5] = [
    "signals:write",
    "signals:read",
    "accounts:write",
    "contacts:write",
    "deals:write",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub organization_id: Uuid,
    pub role: Role,
    pub principal: Principal,
}

impl Actor {
    /// The user behind the actor, if it is a user (not an API key).
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User { user_id, .. } => Some(*user_id),
            Principal::ApiKey { .. } | Principal::Integration { .. } => None,
        }
    }

    /// The signed-in user, or `FORBIDDEN` for API keys (for actions only a person may take).
    pub fn require_user(&self) -> Result<Uuid> {
        self.user_id()
            .ok_or_else(|| Error::Forbidden("this needs a signed-in user, not an API key".into()))
    }

    /// Fails with `FORBIDDEN` unless the actor's role is at least `min`.
    pub fn require_role(&self, min: Role) -> Result<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {} role or higher",
                min.as_str()
            )))
        }
    }

    /// Fails with `FORBIDDEN` for read-only actors (VIEWER).
    pub fn require_write(&self) -> Result<()> {
        self.require_role(Role::Member)
    }

    /// May the actor use `scope`? Users are governed by their role alone. An API key needs the
    /// scope itself or `admin`, and never more than its role (which authentication caps at its
    /// creator's current role): `admin` needs ADMIN, a `…:write` or `…:manage` scope MEMBER.
    /// An integration may only use [`INTEGRATION_SCOPES`].
    pub fn may(&self, scope: &str) -> bool {
        match &self.principal {
            Principal::User { .. } => true,
            Principal::ApiKey { scopes, .. } => {
                let min = if scope == "admin" {
                    Role::Admin
                } else if scope.ends_with(":write") || scope.ends_with(":manage") {
                    Role::Member
                } else {
                    Role::Viewer
                };
                self.role >= min && scopes.iter().any(|s| s == scope || s == "admin")
            }
            Principal::Integration { .. } => INTEGRATION_SCOPES.contains(&scope),
        }
    }

    /// Fails with `FORBIDDEN` unless the actor [may](Self::may) use `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<()> {
        if self.may(scope) {
            return Ok(());
        }
        Err(Error::Forbidden(match self.principal {
            Principal::Integration { .. } => {
                format!("an integration may not use the {scope} scope")
            }
            _ => format!("this API key lacks the {scope} scope"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, principal: Principal) -> Actor {
        Actor {
            organization_id: Uuid::nil(),
            role,
            principal,
        }
    }

    #[test]
    fn roles_and_scopes_gate_actions() {
        let user = Principal::User {
            user_id: Uuid::nil(),
            session_id: Uuid::nil(),
        };
        assert!(actor(Role::Viewer, user.clone()).require_write().is_err());
        assert!(actor(Role::Member, user.clone()).require_write().is_ok());
        assert!(
            actor(Role::Member, user.clone())
                .require_role(Role::Admin)
                .is_err()
        );
        assert!(actor(Role::Owner, user).require_role(Role::Admin).is_ok());
        let integration = actor(
            Role::Admin,
            Principal::Integration {
                integration_id: Uuid::nil(),
            },
        );
        assert!(integration.require_scope("signals:write").is_ok());
        // A CRM sync writes the records it pulls; nothing else.
        assert!(integration.require_scope("accounts:write").is_ok());
        assert!(integration.require_scope("integrations:manage").is_err());
        assert!(integration.require_scope("webhooks:manage").is_err());
        assert!(integration.require_scope("admin").is_err());
        assert_eq!(integration.user_id(), None);
        let key = Principal::ApiKey {
            key_id: Uuid::nil(),
            scopes: vec!["signals:write".into()],
        };
        let a = actor(Role::Admin, key);
        assert!(a.require_scope("signals:write").is_ok());
        assert_eq!(
            a.require_scope("accounts:read").unwrap_err().code(),
            "FORBIDDEN"
        );
        // A key never acts above its role: an `admin` key capped at MEMBER is no admin, and
        // one capped at VIEWER writes nothing.
        let admin_key = Principal::ApiKey {
            key_id: Uuid::nil(),
            scopes: vec!["admin".into()],
        };
        assert!(actor(Role::Admin, admin_key.clone()).may("admin"));
        let member = actor(Role::Member, admin_key.clone());
        assert!(!member.may("admin"));
        assert!(member.may("contacts:write"));
        let viewer = actor(Role::Viewer, admin_key);
        assert!(viewer.may("deals:read"));
        assert!(!viewer.may("deals:write"));
        assert!(!viewer.may("webhooks:manage"));
    }
}
