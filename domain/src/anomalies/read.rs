//! Reading recorded anomalies back: the organization's recent ones (`anomalies(days)`) and a
//! page of accounts' own (`Account.anomalies`, one statement for the page), newest first.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::anomalies;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::{Actor, Result};

/// The most anomalies one list returns.
pub const MAX_LISTED: u64 = 100;

/// The organization's anomalies detected in the last `days` days (checked with
/// [`super::check_days`]), newest first, at most [`MAX_LISTED`].
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<anomalies::Model>> {
    actor.require_scope("accounts:read")?;
    Ok(anomalies::Entity::find()
        .filter(anomalies::Column::OrganizationId.eq(actor.organization_id))
        .filter(anomalies::Column::DetectedAt.gte(now - Duration::days(i64::from(days))))
        .order_by_desc(anomalies::Column::DetectedAt)
        .order_by_desc(anomalies::Column::Id)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// The anomalies of `account_ids` (of the actor's organization) detected in the last `days`
/// days, newest first, by account (for loaders). The 24-hour cooldown bounds them to two a day
/// per account.
pub async fn of_accounts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account_ids: Vec<Uuid>,
    days: u32,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<anomalies::Model>>> {
    actor.require_scope("accounts:read")?;
    let rows = anomalies::Entity::find()
        .filter(anomalies::Column::OrganizationId.eq(actor.organization_id))
        .filter(anomalies::Column::AccountId.is_in(account_ids))
        .filter(anomalies::Column::DetectedAt.gte(now - Duration::days(i64::from(days))))
        .order_by_desc(anomalies::Column::DetectedAt)
        .order_by_desc(anomalies::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<anomalies::Model>> = HashMap::new();
    for r in rows {
        out.entry(r.account_id).or_default().push(r);
    }
    Ok(out)
}
