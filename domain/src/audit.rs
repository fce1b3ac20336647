//! The audit log: sign-ins (and failed ones), role changes, member removal, key creation and
//! revocation, ownership transfer, invitations. Who (user or key), what, when, from which IP.
//! Readable by ADMIN and above of the organization.

use chrono::Utc;
use entity::audit_logs;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::{Actor, Principal, Result, Role};

/// Where a request came from, for the audit log and sessions.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Stable action names.
pub mod action {
    pub const SIGN_IN: &str = "auth.sign_in";
    pub const SIGN_IN_FAILED: &str = "auth.sign_in_failed";
    pub const REGISTER: &str = "auth.register";
    pub const PASSWORD_RESET: &str = "auth.password_reset";
    pub const ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const OWNERSHIP_TRANSFERRED: &str = "organization.ownership_transferred";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
}

/// One entry to record.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub organization_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

impl Entry {
    /// An entry made by `actor` in its organization.
    pub fn by(actor: &Actor, action: &'static str) -> Self {
        let (user_id, api_key_id) = match &actor.principal {
            Principal::User { user_id, .. } => (Some(*user_id), None),
            Principal::ApiKey { key_id, .. } => (None, Some(*key_id)),
            Principal::Integration { .. } => (None, None),
        };
        Entry {
            organization_id: Some(actor.organization_id),
            user_id,
            api_key_id,
            action,
            ..Default::default()
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

pub async fn record(db: &impl ConnectionTrait, meta: &Meta, entry: Entry) -> Result<()> {
    audit_logs::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(entry.organization_id),
        user_id: Set(entry.user_id),
        api_key_id: Set(entry.api_key_id),
        action: Set(entry.action.to_owned()),
        target_type: Set(entry.target_type.map(str::to_owned)),
        target_id: Set(entry.target_id),
        ip: Set(meta.ip.clone()),
        metadata: Set(entry.metadata),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A page of the log, newest first.
pub struct Page {
    pub entries: Vec<audit_logs::Model>,
    /// One opaque cursor per entry (`domain::paging`'s codec).
    pub cursors: Vec<String>,
    pub has_previous: bool,
    pub has_next: bool,
    pub total: u64,
}

/// Newest first; `after` is the cursor of the last entry of the previous page. ADMIN and above.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    first: u64,
    after: Option<&str>,
) -> Result<Page> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    crate::paging::check_first(first)?;
    let after: Option<Uuid> = after
        .map(|c| crate::paging::decode("after", c))
        .transpose()?;
    let base = audit_logs::Entity::find()
        .filter(audit_logs::Column::OrganizationId.eq(actor.organization_id));
    let total = base.clone().count(db).await?;
    let mut q = base;
    if let Some(after) = after {
        q = q.filter(audit_logs::Column::Id.lt(after));
    }
    let mut entries = q
        .order_by_desc(audit_logs::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = entries.len() as u64 > first;
    entries.truncate(first as usize);
    let cursors = entries
        .iter()
        .map(|e| crate::paging::encode(&e.id))
        .collect();
    Ok(Page {
        entries,
        cursors,
        has_previous: after.is_some(),
        has_next,
        total,
    })
}
