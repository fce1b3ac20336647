//! Score history: one snapshot of every scored account per UTC day (`score_snapshots`),
//! captured by the nightly job after its recompute, read back as an account's history and as
//! the organization's accounts per tier per day, and used as the baseline of an account's trend.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{account_scores, score_snapshots};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::{Actor, Error, Result};

/// How many days of history are kept by default (`SCORE_HISTORY_DAYS`).
pub const DEFAULT_HISTORY_DAYS: u32 = 400;
/// The longest history a query may ask for, in days.
pub const MAX_QUERY_DAYS: u32 = 3660;
/// An account's trend compares its score with its snapshot this many days ago (or, for an
/// account younger than that, its oldest snapshot).
pub const TREND_DAYS: i64 = 7;

/// The UTC day of `t`.
pub fn day_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// Stores today's (UTC) snapshot of every scored account of the organization in one statement:
/// a second capture the same day replaces the first, so the job is idempotent per day. Returns
/// how many accounts were captured.
#[tracing::instrument(name = "scoring.capture_snapshots", skip_all, fields(organizationId = %organization_id))]
pub async fn capture_snapshots(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    use score_snapshots::Column as S;
    let select = Query::select()
        .column(account_scores::Column::OrganizationId)
        .column(account_scores::Column::AccountId)
        .expr(Expr::val(day_of(now)))
        .column(account_scores::Column::Score)
        .column(account_scores::Column::Tier)
        .column(account_scores::Column::SignalCount)
        .column(account_scores::Column::UserCount)
        .expr(Expr::val(now))
        .from(account_scores::Entity)
        .and_where(account_scores::Column::OrganizationId.eq(organization_id))
        .to_owned();
    let insert = Query::insert()
        .into_table(score_snapshots::Entity)
        .columns([
            S::OrganizationId,
            S::AccountId,
            S::Day,
            S::Score,
            S::Tier,
            S::SignalCount,
            S::UserCount,
            S::CapturedAt,
        ])
        .select_from(select)
        .map_err(|e| Error::Internal(format!("snapshot statement: {e}")))?
        .on_conflict(
            OnConflict::columns([S::OrganizationId, S::AccountId, S::Day])
                .update_columns([
                    S::Score,
                    S::Tier,
                    S::SignalCount,
                    S::UserCount,
                    S::CapturedAt,
                ])
                .to_owned(),
        )
        .to_owned();
    let r = db.execute(&insert).await?;
    Ok(r.rows_affected())
}

/// Deletes the organization's snapshots older than `keep_days` days; returns how many.
pub async fn prune_snapshots(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    keep_days: u32,
    now: DateTime<Utc>,
) -> Result<u64> {
    let oldest_kept = day_of(now) - chrono::Duration::days(i64::from(keep_days));
    let r = score_snapshots::Entity::delete_many()
        .filter(score_snapshots::Column::OrganizationId.eq(organization_id))
        .filter(score_snapshots::Column::Day.lt(oldest_kept))
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}

/// Checks a `days` argument: 1 to [`MAX_QUERY_DAYS`].
pub fn check_days(days: i32) -> Result<u32> {
    if !(1..=MAX_QUERY_DAYS as i32).contains(&days) {
        return Err(Error::invalid(
            "days",
            format!("must be between 1 and {MAX_QUERY_DAYS}"),
        ));
    }
    Ok(days as u32)
}

/// The first day of a `days`-day range ending today: `days = 1` is today only.
fn first_day(days: u32, now: DateTime<Utc>) -> NaiveDate {
    day_of(now) - chrono::Duration::days(i64::from(days) - 1)
}

/// The snapshots of `account_ids` (of the actor's organization) from the last `days` days,
/// oldest first, by account (for loaders).
pub async fn histories(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account_ids: Vec<Uuid>,
    days: u32,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<score_snapshots::Model>>> {
    actor.require_scope("accounts:read")?;
    let rows = score_snapshots::Entity::find()
        .filter(score_snapshots::Column::OrganizationId.eq(actor.organization_id))
        .filter(score_snapshots::Column::AccountId.is_in(account_ids))
        .filter(score_snapshots::Column::Day.gte(first_day(days, now)))
        .order_by_asc(score_snapshots::Column::AccountId)
        .order_by_asc(score_snapshots::Column::Day)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<score_snapshots::Model>> = HashMap::new();
    for r in rows {
        out.entry(r.account_id).or_default().push(r);
    }
    Ok(out)
}

/// One day of the organization's score trends: scored accounts per tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendDay {
    pub day: NaiveDate,
    pub hot: u64,
    pub warm: u64,
    pub cold: u64,
    pub inactive: u64,
    pub accounts: u64,
    pub average_score: f64,
}

#[derive(FromQueryResult)]
struct TierCount {
    day: NaiveDate,
    tier: String,
    accounts: i64,
    score_sum: i64,
}

/// The organization's accounts per tier for every captured day of the last `days` days, oldest
/// first (days without a capture are absent). One grouped read over `(organization, day)`.
pub async fn trends(
    db: &impl ConnectionTrait,
    actor: &Actor,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<TrendDay>> {
    actor.require_scope("accounts:read")?;
    use score_snapshots::Column as S;
    let rows = score_snapshots::Entity::find()
        .select_only()
        .column(S::Day)
        .column(S::Tier)
        .column_as(Expr::col(S::AccountId).count(), "accounts")
        // A 64-bit sum on both backends (PostgreSQL sums integers as bigint).
        .column_as(
            Expr::col(S::Score).sum().cast_as(Alias::new("BIGINT")),
            "score_sum",
        )
        .filter(S::OrganizationId.eq(actor.organization_id))
        .filter(S::Day.gte(first_day(days, now)))
        .group_by(S::Day)
        .group_by(S::Tier)
        .order_by_asc(S::Day)
        .into_model::<TierCount>()
        .all(db)
        .await?;
    let mut out: Vec<TrendDay> = Vec::new();
    let mut sums: Vec<i64> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|d| d.day != r.day) {
            out.push(TrendDay {
                day: r.day,
                hot: 0,
                warm: 0,
                cold: 0,
                inactive: 0,
                accounts: 0,
                average_score: 0.0,
            });
            sums.push(0);
        }
        let (Some(d), Some(sum)) = (out.last_mut(), sums.last_mut()) else {
            continue;
        };
        let n = u64::try_from(r.accounts).unwrap_or(0);
        match r.tier.as_str() {
            "HOT" => d.hot += n,
            "WARM" => d.warm += n,
            "COLD" => d.cold += n,
            _ => d.inactive += n,
        }
        d.accounts += n;
        *sum += r.score_sum;
    }
    for (d, sum) in out.iter_mut().zip(sums) {
        if d.accounts > 0 {
            d.average_score = (sum as f64 / d.accounts as f64 * 10.0).round() / 10.0;
        }
    }
    Ok(out)
}

/// The baseline of each account's trend at `now`: its score on the earliest snapshot of the
/// last [`TREND_DAYS`] days before today (today's own snapshot excluded). Accounts without one
/// are absent (their trend compares with their previous score).
pub(super) async fn trend_baselines(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i32>> {
    let today = day_of(now);
    let from = today - chrono::Duration::days(TREND_DAYS);
    // At most TREND_DAYS rows per account, read from the primary key's range.
    let rows: Vec<(Uuid, NaiveDate, i32)> = score_snapshots::Entity::find()
        .select_only()
        .column(score_snapshots::Column::AccountId)
        .column(score_snapshots::Column::Day)
        .column(score_snapshots::Column::Score)
        .filter(score_snapshots::Column::OrganizationId.eq(organization_id))
        .filter(score_snapshots::Column::AccountId.is_in(account_ids.to_vec()))
        .filter(score_snapshots::Column::Day.gte(from))
        .filter(score_snapshots::Column::Day.lt(today))
        .into_tuple()
        .all(db)
        .await?;
    let mut earliest: HashMap<Uuid, (NaiveDate, i32)> = HashMap::new();
    for (account, day, score) in rows {
        let e = earliest.entry(account).or_insert((day, score));
        if day < e.0 {
            *e = (day, score);
        }
    }
    Ok(earliest.into_iter().map(|(a, (_, s))| (a, s)).collect())
}
