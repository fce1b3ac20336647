//! Where briefs, AI use and the organization's key are kept.
//!
//! - `account_briefs`: the latest brief per account, keyed by the hash of its inputs (a brief
//!   whose hash still matches is returned without asking the model again).
//! - `ai_usage`: briefs and tokens per organization per calendar month (UTC). A model call takes
//!   a slot of the month's budget first, in one conditional `UPDATE` (`briefs < allowed`), so
//!   concurrent requests never pass the budget together; a failed call gives its slot back.
//! - `ai_settings`: the organization's own Anthropic key, sealed; only its prefix is ever shown.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{account_briefs, ai_settings, ai_usage};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

use super::{Draft, require_read};
use crate::audit::{self, Entry};
use crate::secrets::Cipher;
use crate::{Actor, Error, Meta, Result, Role};

/// The calendar month (UTC) `now` falls in, `YYYY-MM`.
pub fn month_of(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// The latest brief of each of `accounts` that has one (the actor's organization only).
pub async fn latest(
    db: &impl ConnectionTrait,
    actor: &Actor,
    accounts: &[Uuid],
) -> Result<HashMap<Uuid, account_briefs::Model>> {
    require_read(actor)?;
    if accounts.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(account_briefs::Entity::find()
        .filter(account_briefs::Column::OrganizationId.eq(actor.organization_id))
        .filter(account_briefs::Column::AccountId.is_in(accounts.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.account_id, b))
        .collect())
}

/// The latest brief of one account, if any.
pub async fn latest_one(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account: Uuid,
) -> Result<Option<account_briefs::Model>> {
    Ok(latest(db, actor, &[account]).await?.remove(&account))
}

/// A brief to store.
pub struct NewBrief<'a> {
    pub account_id: Uuid,
    pub input_hash: String,
    pub source: &'static str,
    pub fallback_reason: Option<&'static str>,
    pub model: Option<&'a str>,
    pub draft: Draft,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// Stores `brief` as the account's latest, replacing the one before.
pub async fn save(
    db: &impl ConnectionTrait,
    actor: &Actor,
    brief: NewBrief<'_>,
    now: DateTime<Utc>,
) -> Result<account_briefs::Model> {
    use account_briefs::Column as C;
    let to_json = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| Error::Internal(format!("serialising a brief: {e}")))
    };
    let statements = to_json(serde_json::to_value(&brief.draft.statements))?;
    let actions = to_json(serde_json::to_value(&brief.draft.actions))?;
    let row = account_briefs::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        account_id: Set(brief.account_id),
        input_hash: Set(brief.input_hash),
        source: Set(brief.source.to_owned()),
        fallback_reason: Set(brief.fallback_reason.map(str::to_owned)),
        model: Set(brief.model.map(str::to_owned)),
        statements: Set(statements),
        actions: Set(actions),
        dropped: Set(brief.draft.dropped),
        input_tokens: Set(brief.input_tokens),
        output_tokens: Set(brief.output_tokens),
        generated_by: Set(actor.user_id()),
        generated_at: Set(now),
    };
    account_briefs::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::OrganizationId, C::AccountId])
                .update_columns([
                    C::InputHash,
                    C::Source,
                    C::FallbackReason,
                    C::Model,
                    C::Statements,
                    C::Actions,
                    C::Dropped,
                    C::InputTokens,
                    C::OutputTokens,
                    C::GeneratedBy,
                    C::GeneratedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    account_briefs::Entity::find()
        .filter(C::OrganizationId.eq(actor.organization_id))
        .filter(C::AccountId.eq(brief.account_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("the stored brief is gone".into()))
}

async fn ensure_month(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    month: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    ai_usage::Entity::insert(ai_usage::ActiveModel {
        organization_id: Set(organization_id),
        month: Set(month.to_owned()),
        briefs: Set(0),
        input_tokens: Set(0),
        output_tokens: Set(0),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([ai_usage::Column::OrganizationId, ai_usage::Column::Month])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Takes one brief of the month's budget, or answers `PLAN_LIMIT` naming the limit, its value,
/// the use so far and the plan. The budget is the server's `allowed` (`AI_BRIEFS_PER_MONTH`),
/// or the plan's when limits are enforced and it is smaller.
pub async fn reserve(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    month: &str,
    allowed: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut plan = super::DEFAULT_PLAN.to_owned();
    let mut allowed = allowed;
    if let Some(standing) = crate::billing::limits(db, organization_id, now).await?
        && let Some(l) = standing.limit(crate::billing::Metric::AiBriefsPerMonth)
        && l <= allowed
    {
        allowed = l;
        plan = standing.effective.id.to_owned();
    }
    use ai_usage::Column as U;
    ensure_month(db, organization_id, month, now).await?;
    let taken = ai_usage::Entity::update_many()
        .col_expr(U::Briefs, Expr::col(U::Briefs).add(1))
        .col_expr(U::UpdatedAt, Expr::value(now))
        .filter(U::OrganizationId.eq(organization_id))
        .filter(U::Month.eq(month))
        .filter(U::Briefs.lt(i64::try_from(allowed).unwrap_or(i64::MAX)))
        .exec(db)
        .await?
        .rows_affected;
    if taken == 1 {
        return Ok(());
    }
    let used = ai_usage::Entity::find_by_id((organization_id, month.to_owned()))
        .one(db)
        .await?
        .map_or(0, |u| u64::try_from(u.briefs).unwrap_or(0));
    Err(Error::Quota {
        limit: super::LIMIT_NAME,
        allowed,
        used,
        plan,
    })
}

/// Gives back a slot [`reserve`] took, when the model call failed.
pub async fn release(db: &impl ConnectionTrait, organization_id: Uuid, month: &str) -> Result<()> {
    use ai_usage::Column as U;
    ai_usage::Entity::update_many()
        .col_expr(U::Briefs, Expr::col(U::Briefs).sub(1))
        .filter(U::OrganizationId.eq(organization_id))
        .filter(U::Month.eq(month))
        .filter(U::Briefs.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Adds a model call's tokens to the month's use.
pub async fn record_tokens(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    month: &str,
    input_tokens: i64,
    output_tokens: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    use ai_usage::Column as U;
    ensure_month(db, organization_id, month, now).await?;
    ai_usage::Entity::update_many()
        .col_expr(U::InputTokens, Expr::col(U::InputTokens).add(input_tokens))
        .col_expr(
            U::OutputTokens,
            Expr::col(U::OutputTokens).add(output_tokens),
        )
        .col_expr(U::UpdatedAt, Expr::value(now))
        .filter(U::OrganizationId.eq(organization_id))
        .filter(U::Month.eq(month))
        .exec(db)
        .await?;
    Ok(())
}

/// An organization's AI use in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub month: String,
    pub briefs: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// The actor's organization's use in `month` (zeros for a month without any).
pub async fn usage(db: &impl ConnectionTrait, actor: &Actor, month: &str) -> Result<Usage> {
    actor.require_scope("organization:read")?;
    let row = ai_usage::Entity::find_by_id((actor.organization_id, month.to_owned()))
        .one(db)
        .await?;
    Ok(Usage {
        month: month.to_owned(),
        briefs: row.as_ref().map_or(0, |r| r.briefs),
        input_tokens: row.as_ref().map_or(0, |r| r.input_tokens),
        output_tokens: row.as_ref().map_or(0, |r| r.output_tokens),
    })
}

/// What is shown of an organization's own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's first characters, when one is set.
    pub prefix: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// How much of a key is shown.
const PREFIX_CHARS: usize = 10;

/// The organization's own key, as shown (never the key).
pub async fn key_info(db: &impl ConnectionTrait, actor: &Actor) -> Result<KeyInfo> {
    actor.require_scope("organization:read")?;
    let row = ai_settings::Entity::find()
        .filter(ai_settings::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?;
    Ok(KeyInfo {
        prefix: row.as_ref().map(|r| r.api_key_prefix.clone()),
        updated_at: row.map(|r| r.updated_at),
    })
}

/// Sets the organization's own Anthropic key (OWNER or ADMIN; an API key needs `admin`). It must
/// look like one (`sk-ant-…`): `BAD_USER_INPUT` on `apiKey` otherwise. Stored sealed.
pub async fn set_key(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    key: &str,
) -> Result<KeyInfo> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let key = key.trim();
    if !key.starts_with("sk-ant-") {
        return Err(Error::invalid(
            "apiKey",
            "must be an Anthropic API key (it starts with sk-ant-)",
        ));
    }
    if key.len() < 20 || key.len() > 500 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "apiKey",
            "must be an Anthropic API key: 20 to 500 characters, no spaces",
        ));
    }
    let now = Utc::now();
    let prefix: String = key.chars().take(PREFIX_CHARS).collect();
    let sealed = cipher.seal(key)?;
    let txn = crate::db::begin(db).await?;
    ai_settings::Entity::insert(ai_settings::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        api_key_ciphertext: Set(sealed),
        api_key_prefix: Set(prefix.clone()),
        updated_by: Set(actor.user_id()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(ai_settings::Column::OrganizationId)
            .update_columns([
                ai_settings::Column::ApiKeyCiphertext,
                ai_settings::Column::ApiKeyPrefix,
                ai_settings::Column::UpdatedBy,
                ai_settings::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "ai.key_set").metadata(json!({"prefix": prefix})),
    )
    .await?;
    txn.commit().await?;
    Ok(KeyInfo {
        prefix: Some(prefix),
        updated_at: Some(now),
    })
}

/// Removes the organization's own key (briefs then use the server's, if any).
pub async fn clear_key(db: &DatabaseConnection, actor: &Actor, meta: &Meta) -> Result<KeyInfo> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    let txn = crate::db::begin(db).await?;
    let removed = ai_settings::Entity::delete_many()
        .filter(ai_settings::Column::OrganizationId.eq(actor.organization_id))
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        audit::record(&txn, meta, Entry::by(actor, "ai.key_cleared")).await?;
    }
    txn.commit().await?;
    Ok(KeyInfo {
        prefix: None,
        updated_at: None,
    })
}

/// The organization's own key, opened (for the model call only).
pub async fn organization_key(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    organization_id: Uuid,
) -> Result<Option<String>> {
    let row = ai_settings::Entity::find()
        .filter(ai_settings::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?;
    row.map(|r| cipher.open(&r.api_key_ciphertext)).transpose()
}
