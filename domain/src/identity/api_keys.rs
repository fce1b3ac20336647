//! API keys: `dsk_` + 40 random alphanumerics, shown once; only the SHA-256 is stored, with a
//! 12-character prefix for display and for revocation from the command line. A key
//! acts for its organization only and within its scopes.

use chrono::{DateTime, Utc};
use entity::{api_keys, memberships, organizations};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionSession, TransactionTrait,
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

/// Every scope a key may carry, with what it grants (ARCHITECTURE.md's table equals this list).
/// Each read scope covers its objects wherever they appear: top-level queries, nested fields
/// of other objects, search hits and live events. `admin` implies all others.
pub const SCOPES: &[(&str, &str)] = &[
    (
        "accounts:read",
        "accounts (`accounts`, `account`, `topAccounts`, `Account` fields and scores (`Account.brief` also needs `contacts:read` and `signals:read`), `Contact.account`, `Deal.account`, `Signal.account`, account hits of `search`), `scoringConfig`, `anomalies` and `Account.anomalies`, `accountScoreChanged`, `tierChanged`",
    ),
    (
        "accounts:write",
        "`createAccount(s)`, `updateAccount`, `tagAccount`, `deleteAccount`; `generateAccountBrief` (with the three reads a brief needs); imports of accounts (`createImport(entity: ACCOUNTS)`, `updateImportMapping`, `previewImport`, `startImport`, `importJob`, `importProgress`), and with `contacts:write` or `deals:write` imports whose rows name their account",
    ),
    (
        "contacts:read",
        "contacts (`contacts`, `contact`, `Account.contacts`, `Deal.contact`, `Signal.contact`, contact hits of `search`), `mergeSuggestions`, `contactMerges`",
    ),
    (
        "contacts:write",
        "`createContact(s)`, `upsertContact`, `updateContact`, `tagContact`, `deleteContact`, `mergeContacts`, `unmergeContact`; imports of contacts (`createImport(entity: CONTACTS)` and the import's operations)",
    ),
    (
        "deals:read",
        "deals (`deals`, `deal`, `Account.deals`, `Contact.deals`, deal hits of `search`)",
    ),
    (
        "deals:write",
        "`createDeal`, `updateDeal`, `moveDeal`, `deleteDeal`; imports of deals (`createImport(entity: DEALS)` and the import's operations)",
    ),
    (
        "activities:read",
        "activities (`activities`, `activity`, `Account.activities`; `Account.timeline` also needs `signals:read`)",
    ),
    (
        "activities:write",
        "`createActivity`, `updateActivity`, `deleteActivity`",
    ),
    (
        "signals:read",
        "signals (`signals`, `signal`, `Account.signals`, `Contact.signals`), `signalSources`, `packageDownloads`, `signalCreated`",
    ),
    (
        "signals:write",
        "ingest: `ingestSignal(s)`, `POST /api/v1/signals[/batch]`, the Segment-compatible API",
    ),
    (
        "organization:read",
        "`organization`, `members`, `member`, `usage`, `plans`, `subscription`, `aiUsage`, `aiSettings`, and the members (name, email) named by `Deal.owner`, `Activity.author`, `ContactMerge.mergedBy`",
    ),
    (
        "webhooks:manage",
        "webhook endpoints and deliveries; an endpoint may subscribe only to event types the key may read (`*` needs `admin`)",
    ),
    (
        "integrations:manage",
        "connectors: `integrations`, `connectIntegration`, `syncIntegration`, …",
    ),
    (
        "admin",
        "everything an ADMIN may do (API keys, members, invitations, audit log, `events`, `setAiApiKey` / `clearAiApiKey`, `previewScoringConfig`, `scoringBacktest`, scoring and signal-source changes, `recomputeScores`, `scanAnomalies`, alert rules, `eraseContact` / `exportContactData`, `demoData` / `seedDemoData` / `removeDemoData`, data exports: `exportData`, `exportJob`), while its creator is an ADMIN or OWNER",
    ),
];

/// Whether `name` is one of [`SCOPES`].
pub fn is_scope(name: &str) -> bool {
    SCOPES.iter().any(|(s, _)| *s == name)
}

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

/// The name and scopes of a new key, checked: unknown scopes are refused by name.
fn validate(input: &CreateInput) -> Result<(String, Vec<String>)> {
    let mut errors = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in &input.scopes {
        if !is_scope(s) {
            let known: Vec<&str> = SCOPES.iter().map(|(s, _)| *s).collect();
            errors.push(FieldError::new(
                "scopes",
                format!("unknown scope {s:?}; known: {}", known.join(", ")),
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
    if errors.is_empty() {
        Ok((name, scopes))
    } else {
        Err(Error::Validation(errors))
    }
}

/// Stores a new key of `organization_id` and records it in the audit log.
async fn insert(
    db: &impl ConnectionTrait,
    meta: &Meta,
    entry: Entry,
    organization_id: Uuid,
    created_by: Option<Uuid>,
    input: &CreateInput,
) -> Result<(api_keys::Model, String)> {
    let (name, scopes) = validate(input)?;
    let key = format!("{KEY_PREFIX}{}", random_alphanumeric(KEY_RANDOM_LEN));
    let model = api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        created_by: Set(created_by),
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
    let mut metadata =
        serde_json::json!({"name": model.name, "prefix": model.prefix, "scopes": scopes});
    if let Some(via) = entry.metadata.as_ref().and_then(|m| m.get("via")) {
        metadata["via"] = via.clone();
    }
    audit::record(
        db,
        meta,
        entry.target("api_key", model.id).metadata(metadata),
    )
    .await?;
    Ok((model, key))
}

/// Creates a key (ADMIN+); returns it with the full key, which is never shown again. The key
/// never grants more than its creator has at the time it is used (see [`authenticate`]).
pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    meta: &Meta,
    input: CreateInput,
) -> Result<(api_keys::Model, String)> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    // A key made with a key answers to the person behind that key, so it cannot outlive them.
    let created_by = match &actor.principal {
        Principal::ApiKey { key_id, .. } => api_keys::Entity::find_by_id(*key_id)
            .one(db)
            .await?
            .and_then(|k| k.created_by),
        _ => actor.user_id(),
    };
    let entry = Entry::by(actor, action::API_KEY_CREATED);
    insert(db, meta, entry, actor.organization_id, created_by, &input).await
}

/// Operator creation from the command line, for the organization whose id or name is
/// `organization` (a name must be unique). The key has no creator: its scopes alone bound it.
pub async fn create_for_operator(
    db: &(impl ConnectionTrait + TransactionTrait),
    organization: &str,
    input: CreateInput,
) -> Result<(organizations::Model, api_keys::Model, String)> {
    let organization = organization.trim();
    let mut found = match Uuid::parse_str(organization) {
        Ok(id) => organizations::Entity::find_by_id(id).all(db).await?,
        Err(_) => {
            organizations::Entity::find()
                .filter(organizations::Column::Name.eq(organization))
                .all(db)
                .await?
        }
    };
    let org = match found.len() {
        0 => {
            return Err(Error::NotFound {
                entity: "Organization",
            });
        }
        1 => found.remove(0),
        n => {
            return Err(Error::invalid(
                "org",
                format!("{n} organizations are named {organization:?}; pass the id instead"),
            ));
        }
    };
    let entry = Entry {
        organization_id: Some(org.id),
        action: action::API_KEY_CREATED,
        metadata: Some(serde_json::json!({"via": "cli"})),
        ..Default::default()
    };
    // The key and its audit entry commit together (on SQLite the write lock is taken at once).
    let txn = crate::db::begin(db).await?;
    let (model, key) = insert(&txn, &Meta::default(), entry, org.id, None, &input).await?;
    txn.commit().await?;
    Ok((org, model, key))
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

/// The actor of a presented key. Unknown, revoked or expired keys are `UNAUTHENTICATED`, and
/// so is a key whose creator is no longer a member of its organization.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<(Actor, api_keys::Model)> {
    if !looks_like_key(key) {
        return Err(invalid());
    }
    let (model, creator) = one_with_creator(
        db,
        api_keys::Entity::find().filter(api_keys::Column::KeyHash.eq(sha256_hex(key))),
    )
    .await?;
    Ok((key_actor(&model, creator)?, model))
}

/// The key `key` selects with its creator's membership ([`with_creator`]), read by column
/// position (every API request reads one); `UNAUTHENTICATED` when there is none.
async fn one_with_creator(
    db: &impl ConnectionTrait,
    key: sea_orm::Select<api_keys::Entity>,
) -> Result<(api_keys::Model, Option<memberships::Model>)> {
    use sea_orm::QuerySelect;
    crate::db::rows::all_also(db, with_creator(key).limit(1))
        .await?
        .into_iter()
        .next()
        .ok_or_else(invalid)
}

/// The keys `keys` selects, each with its creator's membership of the key's organization (none
/// when the key has no creator or the creator has left): one statement.
fn with_creator(
    keys: sea_orm::Select<api_keys::Entity>,
) -> sea_orm::SelectTwo<api_keys::Entity, memberships::Entity> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::{ExprTrait, IntoCondition};
    let creator: sea_orm::RelationDef = api_keys::Entity::belongs_to(memberships::Entity)
        .from(api_keys::Column::CreatedBy)
        .to(memberships::Column::UserId)
        .on_condition(|key, member| {
            Expr::col((member, memberships::Column::OrganizationId))
                .equals((key, api_keys::Column::OrganizationId))
                .into_condition()
        })
        .into();
    keys.join(sea_orm::JoinType::LeftJoin, creator)
        .select_also(memberships::Entity)
}

fn invalid() -> Error {
    Error::Unauthenticated("invalid, revoked or expired API key".into())
}

/// The actor of a stored key, unless it is revoked or expired. A key never grants more than
/// its creator has now: its role is the lower of what its scopes ask (ADMIN for `admin`,
/// MEMBER otherwise) and its creator's current role, so demoting the creator demotes the key
/// and removing them ends it. Keys an operator made (`devsignal api-keys create`) have no
/// creator and are bound by their scopes alone.
fn key_actor(model: &api_keys::Model, creator: Option<memberships::Model>) -> Result<Actor> {
    if model.revoked_at.is_some() || model.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(invalid());
    }
    let scopes = scopes_of(model);
    let mut role = if scopes.iter().any(|s| s == "admin") {
        Role::Admin
    } else {
        Role::Member
    };
    if model.created_by.is_some() {
        let creator_role = creator.and_then(|m| Role::parse(&m.role)).ok_or_else(|| {
            Error::Unauthenticated(
                "this API key's creator is no longer a member of the organization; \
                     create a new key"
                    .into(),
            )
        })?;
        role = role.min(creator_role);
    }
    Ok(Actor {
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
    let (model, creator) = one_with_creator(db, api_keys::Entity::find_by_id(id)).await?;
    key_actor(&model, creator)
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
