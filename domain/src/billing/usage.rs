//! Counting use against the plan's limits, where a limit can be crossed.
//!
//! - Standing limits (contacts, members, integrations) count what exists, inside the writing
//!   transaction, under a per-organization lock on PostgreSQL (SQLite has one writer), so two
//!   concurrent writers cannot both take the last slot.
//! - Signals are counted per calendar month (UTC, by when they were received) in
//!   `usage_counters`, added in the transaction that stores them; with a limit, the addition is
//!   conditional, so a batch racing another past the limit is retried with the room left.
//! - AI briefs keep their own monthly count (`briefs::store`), with the plan's limit.
//!
//! A warning at 80 % and at 100 % of a limit: an `organization.usage_warning` event and an in-app
//! notification to each owner and admin, once per organization, limit, period and threshold.

use chrono::{DateTime, Datelike, Utc};
use entity::{
    ai_usage, contacts, integrations, invitations, memberships, notifications, usage_counters,
    usage_warnings,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::{Metric, Standing};
use crate::{Result, db, events};

/// The warning thresholds, in percent of a limit.
pub const THRESHOLDS: &[u64] = &[80, 100];

/// The counter's name for signals stored.
const SIGNALS: &str = "signals";

/// A conflict that makes the ingest retry: another batch moved the month's signal count past
/// what this one read.
pub const COUNTER_MOVED: &str = "usage counter moved by a concurrent batch";

/// The calendar month (UTC) of `at`: `YYYY-MM`.
pub fn month_of(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// The first instant of the calendar month (UTC) of `at`.
pub fn month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(at.year(), at.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(at, |d| d.and_utc())
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What exists now of a standing metric.
pub async fn current(db: &impl ConnectionTrait, org: Uuid, m: Metric) -> Result<u64> {
    Ok(match m {
        Metric::Contacts => {
            contacts::Entity::find()
                .filter(contacts::Column::OrganizationId.eq(org))
                .count(db)
                .await?
        }
        Metric::Members => {
            let members = memberships::Entity::find()
                .filter(memberships::Column::OrganizationId.eq(org))
                .count(db)
                .await?;
            // Open invitations hold a seat: inviting past the limit is refused, not joining.
            let open = invitations::Entity::find()
                .filter(invitations::Column::OrganizationId.eq(org))
                .filter(invitations::Column::AcceptedAt.is_null())
                .filter(invitations::Column::ExpiresAt.gt(Utc::now()))
                .count(db)
                .await?;
            members + open
        }
        Metric::Integrations => {
            integrations::Entity::find()
                .filter(integrations::Column::OrganizationId.eq(org))
                .filter(integrations::Column::Status.ne("DISCONNECTED"))
                .count(db)
                .await?
        }
        Metric::SignalsPerMonth => signals_in(db, org, &month_of(Utc::now())).await?,
        Metric::AiBriefsPerMonth => ai_usage::Entity::find_by_id((org, month_of(Utc::now())))
            .one(db)
            .await?
            .map_or(0, |u| as_u64(u.briefs)),
    })
}

/// Signals stored in `month` (`YYYY-MM`).
pub async fn signals_in(db: &impl ConnectionTrait, org: Uuid, month: &str) -> Result<u64> {
    Ok(
        usage_counters::Entity::find_by_id((org, SIGNALS.to_owned(), month.to_owned()))
            .one(db)
            .await?
            .map_or(0, |c| as_u64(c.value)),
    )
}

/// Makes room for `adding` more of a standing metric (contacts, members, integrations) in the
/// writing transaction, or answers `PLAN_LIMIT`; gives the 80 % / 100 % warnings the addition
/// reaches. Holds a per-organization lock on the metric until the transaction ends.
pub async fn admit(
    txn: &DatabaseTransaction,
    org: Uuid,
    standing: &Standing,
    m: Metric,
    adding: u64,
) -> Result<()> {
    let Some(limit) = standing.limit(m) else {
        return Ok(());
    };
    if adding == 0 {
        return Ok(());
    }
    db::advisory_xact_lock(txn, &[db::lock_key(org, &format!("usage:{}", m.name()))]).await?;
    let used = current(txn, org, m).await?;
    if used + adding > limit {
        return Err(standing.refuse(m, used));
    }
    warn(txn, org, standing, m, used, used + adding).await
}

/// Makes room for someone joining by an invitation: the invitation held a seat, but the plan
/// may have shrunk since it was sent, so members alone are counted (`PLAN_LIMIT` when full).
pub async fn admit_joining(txn: &DatabaseTransaction, org: Uuid, now: DateTime<Utc>) -> Result<()> {
    let Some(standing) = super::limits(txn, org, now).await? else {
        return Ok(());
    };
    let Some(limit) = standing.limit(Metric::Members) else {
        return Ok(());
    };
    db::advisory_xact_lock(txn, &[db::lock_key(org, "usage:members")]).await?;
    let members = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org))
        .count(txn)
        .await?;
    if members + 1 > limit {
        return Err(standing.refuse(Metric::Members, members));
    }
    Ok(())
}

/// How much more of a standing metric fits (`None`: unlimited), read under the metric's lock,
/// with what exists now: for ingest, which creates contacts only while there is room.
pub async fn room(
    txn: &DatabaseTransaction,
    org: Uuid,
    standing: &Standing,
    m: Metric,
) -> Result<Option<(u64, u64)>> {
    let Some(limit) = standing.limit(m) else {
        return Ok(None);
    };
    db::advisory_xact_lock(txn, &[db::lock_key(org, &format!("usage:{}", m.name()))]).await?;
    let used = current(txn, org, m).await?;
    Ok(Some((used, limit.saturating_sub(used))))
}

/// The signals a batch may still store this month (`None`: unlimited) and the count so far.
pub async fn signal_room(
    db: &impl ConnectionTrait,
    org: Uuid,
    standing: &Standing,
    now: DateTime<Utc>,
) -> Result<Option<(u64, u64)>> {
    let Some(limit) = standing.limit(Metric::SignalsPerMonth) else {
        return Ok(None);
    };
    let used = signals_in(db, org, &month_of(now)).await?;
    Ok(Some((used, limit.saturating_sub(used))))
}

/// Adds `n` stored signals to the month's count, in the transaction that stores them. Under a
/// limit, only if the count stays within it: otherwise a concurrent batch took the room this one
/// counted on, and the error ([`COUNTER_MOVED`]) makes the ingest run again.
///
/// Without a plan to enforce nothing is read back: the count goes with the other writes in
/// `carried`. Under a plan, those are sent first and the count is its own statement.
pub async fn count_signals(
    txn: &DatabaseTransaction,
    org: Uuid,
    standing: Option<&Standing>,
    n: u64,
    now: DateTime<Utc>,
    carried: &mut db::Carried,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    use usage_counters::Column as C;
    let limit = standing.and_then(|s| s.limit(Metric::SignalsPerMonth));
    let mut on_conflict = OnConflict::columns([C::OrganizationId, C::Metric, C::Period]);
    on_conflict.values([
        (
            C::Value,
            Expr::col((usage_counters::Entity, C::Value)).add(as_i64(n)),
        ),
        (C::UpdatedAt, Expr::val(now)),
    ]);
    if let Some(l) = limit {
        on_conflict.action_and_where(
            Expr::col((usage_counters::Entity, C::Value))
                .add(as_i64(n))
                .lte(as_i64(l)),
        );
    }
    let insert = Query::insert()
        .into_table(usage_counters::Entity)
        .columns([
            C::OrganizationId,
            C::Metric,
            C::Period,
            C::Value,
            C::UpdatedAt,
        ])
        .values_panic([
            org.into(),
            SIGNALS.into(),
            month_of(now).into(),
            as_i64(n).into(),
            now.into(),
        ])
        .on_conflict(on_conflict)
        .to_owned();
    if standing.is_none() {
        carried
            .push::<usage_counters::Entity>(txn, insert, 1, None)
            .await?;
        return Ok(());
    }
    carried.flush(txn).await?;
    let mut insert = insert;
    insert.returning_col(C::Value);
    let row = txn.query_one(&insert).await?;
    let Some(row) = row else {
        return Err(sea_orm::DbErr::Custom(COUNTER_MOVED.into()).into());
    };
    let after = as_u64(row.try_get::<i64>("", "value")?);
    if limit.is_some_and(|l| after > l) {
        // A first batch of the month larger than the limit (the insert has no condition).
        return Err(sea_orm::DbErr::Custom(COUNTER_MOVED.into()).into());
    }
    let Some(standing) = standing else {
        return Ok(());
    };
    warn(
        txn,
        org,
        standing,
        Metric::SignalsPerMonth,
        after.saturating_sub(n),
        after,
    )
    .await
}

/// The period a warning about `m` belongs to: the month for monthly limits, else the plan (a
/// new plan warns afresh).
fn period_of(standing: &Standing, m: Metric) -> String {
    if m.monthly() {
        month_of(Utc::now())
    } else {
        standing.effective.id.to_owned()
    }
}

/// Gives the warnings that going from `before` to `after` reaches, once each.
pub async fn warn(
    txn: &DatabaseTransaction,
    org: Uuid,
    standing: &Standing,
    m: Metric,
    before: u64,
    after: u64,
) -> Result<()> {
    let Some(limit) = standing.limit(m).filter(|l| *l > 0) else {
        return Ok(());
    };
    for &t in THRESHOLDS {
        let mark = limit * t;
        if !(before * 100 < mark && after * 100 >= mark) {
            continue;
        }
        let period = period_of(standing, m);
        let now = Utc::now();
        let given = usage_warnings::Entity::insert(usage_warnings::ActiveModel {
            organization_id: Set(org),
            metric: Set(m.name().to_owned()),
            period: Set(period.clone()),
            threshold: Set(i32::try_from(t).unwrap_or(100)),
            current: Set(as_i64(after)),
            allowed: Set(as_i64(limit)),
            plan: Set(standing.effective.id.to_owned()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                usage_warnings::Column::OrganizationId,
                usage_warnings::Column::Metric,
                usage_warnings::Column::Period,
                usage_warnings::Column::Threshold,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        if given == 0 {
            continue;
        }
        let payload = json!({
            "limit": m.name(),
            "threshold": t,
            "current": after,
            "allowed": limit,
            "plan": standing.effective.id,
            "period": period,
        });
        events::append(
            txn,
            org,
            None,
            events::EventType::UsageWarning.as_str(),
            payload.clone(),
        )
        .await?;
        notify_admins(txn, org, standing, m, t, after, limit, payload, now).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn notify_admins(
    txn: &DatabaseTransaction,
    org: Uuid,
    standing: &Standing,
    m: Metric,
    threshold: u64,
    current: u64,
    limit: u64,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let admins: Vec<Uuid> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::UserId)
        .filter(memberships::Column::OrganizationId.eq(org))
        .filter(memberships::Column::Role.is_in(["OWNER", "ADMIN"]))
        .into_tuple()
        .all(txn)
        .await?;
    let prefs = crate::alerts::of_members(txn, org, &admins).await?;
    let what = match m {
        Metric::Contacts => "contacts",
        Metric::SignalsPerMonth => "signals this month",
        Metric::Members => "members",
        Metric::AiBriefsPerMonth => "AI briefs this month",
        Metric::Integrations => "integrations",
    };
    let title = if threshold >= 100 {
        format!(
            "The {} plan's limit of {limit} {what} is reached",
            standing.effective.name
        )
    } else {
        format!(
            "{threshold} % of the {} plan's {what} used ({current} of {limit})",
            standing.effective.name
        )
    };
    let body = if threshold >= 100 {
        format!("No more {what} can be added until the limit is raised: upgrade the plan.")
    } else {
        format!("{current} of {limit} {what} are used. Upgrade the plan to raise the limit.")
    };
    let rows: Vec<notifications::ActiveModel> = admins
        .iter()
        .filter(|u| prefs.get(u).is_none_or(|p| p.in_app))
        .map(|u| notifications::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(org),
            user_id: Set(*u),
            kind: Set("USAGE_WARNING".into()),
            rule_id: Set(None),
            account_id: Set(None),
            title: Set(title.clone()),
            body: Set(body.clone()),
            data: Set(data.clone()),
            // The warning's event gets its position only once this transaction commits.
            event_seq: Set(None),
            read_at: Set(None),
            created_at: Set(now),
        })
        .collect();
    if !rows.is_empty() {
        notifications::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// One limit's use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub metric: Metric,
    pub current: u64,
    /// `None`: unlimited (or limits not enforced here).
    pub limit: Option<u64>,
}

impl Counter {
    /// Percent of the limit used (0–100, rounded down; `None` without a limit).
    pub fn percentage(&self) -> Option<u64> {
        self.limit.map(|l| {
            (self.current * 100)
                .checked_div(l)
                .map_or(100, |p| std::cmp::min(p, 100))
        })
    }
}

/// Every counter of the organization, with the limits that apply.
pub async fn report(
    db: &impl ConnectionTrait,
    org: Uuid,
    standing: &Standing,
) -> Result<Vec<Counter>> {
    let mut out = Vec::with_capacity(Metric::ALL.len());
    for &m in Metric::ALL {
        out.push(Counter {
            metric: m,
            current: current(db, org, m).await?,
            limit: standing.limit(m),
        });
    }
    Ok(out)
}

/// Warning rows given to the organization (newest first), for the usage page.
pub async fn warnings(db: &impl ConnectionTrait, org: Uuid) -> Result<Vec<usage_warnings::Model>> {
    use sea_orm::QueryOrder;
    Ok(usage_warnings::Entity::find()
        .filter(usage_warnings::Column::OrganizationId.eq(org))
        .order_by_desc(usage_warnings::Column::CreatedAt)
        .limit(50)
        .all(db)
        .await?)
}
