//! Detection for one organization: every account's daily signal counts over the 30 days before
//! today and today so far, read in one grouped statement (one row per account, a conditional sum
//! per day: no date functions, so it is the same SQL on SQLite and PostgreSQL, over the
//! `(organization_id, timestamp)` index), judged by [`super::stats`], and what is new stored with
//! its cooldown and its `anomaly.detected` event in one transaction.
//!
//! Accounts judged: every account with a signal in the window, today's included or not, so a
//! complete stop (nothing today) is a DROP like any other (the original only looked at accounts
//! that had a signal today and never saw one).
//!
//! "Today" is the UTC day so far. A SPIKE compares today's count with whole baseline days: the
//! count only grows during the day, so a spike seen at noon is one of the whole day. A DROP
//! compares today's count with the same hours of each baseline day (from midnight to the time
//! of day now): judged against whole days, every account would look like it dropped each
//! morning. So at 01:00 a drop needs a usual first hour above 3 signals; by evening it is
//! almost the whole-day comparison. A DROP's mean, σ and expected range are those hours'.
//!
//! Cooldown: 24 hours per (account, kind) from the last detection, kept in `anomaly_cooldowns`
//! and read under a per-organization lock inside the writing transaction, so two workers (or a
//! scan and the hourly job) never record the same anomaly twice.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use entity::{anomalies, anomaly_cooldowns, companies, signals};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use super::stats::{self, BASELINE_DAYS, Finding, Kind};
use crate::events::{AnomalyDetected, EventType, Payload};
use crate::{Actor, Error, Result, Role};

/// How long an (account, kind) stays quiet after a detection.
pub const COOLDOWN: Duration = Duration::hours(24);
/// Accounts named per `IN (…)` list.
const CHUNK: usize = 1_000;

/// One account's counts: the whole baseline days (oldest first), the same days up to the time
/// of day now, and today so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub account_id: Uuid,
    pub full: Vec<i64>,
    pub partial: Vec<i64>,
    pub today: i64,
}

impl Series {
    /// What this account's day holds: a spike, a drop, or nothing.
    pub fn findings(&self) -> Vec<Finding> {
        if !stats::has_history(&self.full) {
            return Vec::new();
        }
        [
            stats::judge(Kind::Spike, &self.full, self.today),
            stats::judge(Kind::Drop, &self.partial, self.today),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn count_between(from: DateTime<Utc>, to: DateTime<Utc>, to_inclusive: bool) -> SimpleExpr {
    let ts = Expr::col(signals::Column::Timestamp);
    let upper = if to_inclusive {
        ts.clone().lte(to)
    } else {
        ts.clone().lt(to)
    };
    Expr::case(ts.gte(from).and(upper), 1)
        .finally(0)
        .sum()
        .cast_as(Alias::new("BIGINT"))
}

/// Every account's [`Series`] at `now`, in one grouped statement.
pub async fn series(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Series>> {
    let today = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let elapsed = now - today;
    let start = |i: usize| today - Duration::days((BASELINE_DAYS - i) as i64);
    let mut q = signals::Entity::find()
        .select_only()
        .column(signals::Column::AccountId);
    for i in 0..BASELINE_DAYS {
        q = q
            .column_as(
                count_between(start(i), start(i + 1), false),
                format!("d{i}"),
            )
            .column_as(
                count_between(start(i), start(i) + elapsed, true),
                format!("p{i}"),
            );
    }
    let q = q
        .column_as(count_between(today, now, true), "today")
        .filter(signals::Column::OrganizationId.eq(organization_id))
        .filter(signals::Column::AccountId.is_not_null())
        .filter(signals::Column::Timestamp.gte(start(0)))
        .filter(signals::Column::Timestamp.lte(now))
        .group_by(signals::Column::AccountId);
    let rows = db.query_all_raw(q.build(db.get_database_backend())).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let get = |c: &str| r.try_get::<i64>("", c);
        out.push(Series {
            account_id: r.try_get::<Uuid>("", "account_id")?,
            full: (0..BASELINE_DAYS)
                .map(|i| get(&format!("d{i}")))
                .collect::<std::result::Result<_, _>>()?,
            partial: (0..BASELINE_DAYS)
                .map(|i| get(&format!("p{i}")))
                .collect::<std::result::Result<_, _>>()?,
            today: get("today")?,
        });
    }
    Ok(out)
}

/// Detects the organization's anomalies at `now` and records the new ones (outside their
/// cooldown) with their `anomaly.detected` events, in one transaction; returns them.
#[tracing::instrument(name = "anomalies.detect", skip_all, fields(organizationId = %organization_id, accounts = tracing::field::Empty, found = tracing::field::Empty))]
pub async fn detect(
    db: &DatabaseConnection,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<anomalies::Model>> {
    let all = series(db, organization_id, now).await?;
    let span = tracing::Span::current();
    span.record("accounts", all.len());
    let found: Vec<(Uuid, Finding)> = all
        .iter()
        .flat_map(|s| s.findings().into_iter().map(|f| (s.account_id, f)))
        .collect();
    if found.is_empty() {
        span.record("found", 0);
        return Ok(Vec::new());
    }
    let txn = crate::db::begin(db).await?;
    crate::db::advisory_xact_lock(
        &txn,
        &[crate::db::lock_key(organization_id, "anomaly-detection")],
    )
    .await?;
    // Read under the lock: a concurrent detection that committed first has set these.
    let quiet: HashMap<(Uuid, String), DateTime<Utc>> = anomaly_cooldowns::Entity::find()
        .filter(anomaly_cooldowns::Column::OrganizationId.eq(organization_id))
        .filter(anomaly_cooldowns::Column::LastDetectedAt.gt(now - COOLDOWN))
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| ((c.account_id, c.kind), c.last_detected_at))
        .collect();
    let fresh: Vec<(Uuid, Finding)> = found
        .into_iter()
        .filter(|(a, f)| {
            quiet
                .get(&(*a, f.kind.as_str().to_owned()))
                .is_none_or(|t| now >= *t + COOLDOWN)
        })
        .collect();
    let mut names: HashMap<Uuid, String> = HashMap::new();
    let mut ids: Vec<Uuid> = fresh.iter().map(|(a, _)| *a).collect();
    ids.sort();
    ids.dedup();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(Uuid, String)> = companies::Entity::find()
            .select_only()
            .column(companies::Column::Id)
            .column(companies::Column::Name)
            .filter(companies::Column::OrganizationId.eq(organization_id))
            .filter(companies::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(&txn)
            .await?;
        names.extend(rows);
    }
    let day = now.date_naive();
    let mut rows: Vec<anomalies::Model> = Vec::new();
    let mut events = Vec::new();
    for (account, f) in fresh {
        // An account deleted since its signals were counted is not reported.
        let Some(name) = names.get(&account) else {
            continue;
        };
        let row = anomalies::Model {
            id: Uuid::now_v7(),
            organization_id,
            account_id: account,
            kind: f.kind.as_str().into(),
            severity: f.severity.as_str().into(),
            day,
            today_count: f.today,
            mean: f.mean,
            stddev: f.stddev,
            z_score: f.z_score,
            expected_min: f.expected_min,
            expected_max: f.expected_max,
            detected_at: now,
        };
        events.push((
            EventType::AnomalyDetected.as_str(),
            AnomalyDetected::of(&row, name).to_value(),
        ));
        rows.push(row);
    }
    for chunk in rows.chunks(crate::db::rows_per_insert::<anomalies::Entity>()) {
        anomalies::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    for chunk in rows.chunks(crate::db::rows_per_insert::<anomaly_cooldowns::Entity>()) {
        anomaly_cooldowns::Entity::insert_many(chunk.iter().map(|r| {
            anomaly_cooldowns::ActiveModel {
                organization_id: Set(organization_id),
                account_id: Set(r.account_id),
                kind: Set(r.kind.clone()),
                last_detected_at: Set(now),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                anomaly_cooldowns::Column::OrganizationId,
                anomaly_cooldowns::Column::AccountId,
                anomaly_cooldowns::Column::Kind,
            ])
            .update_column(anomaly_cooldowns::Column::LastDetectedAt)
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    crate::events::append_many(&txn, organization_id, None, events).await?;
    txn.commit().await?;
    span.record("found", rows.len());
    Ok(rows)
}

/// Runs detection now for the actor's organization (ADMIN) and returns what it found.
pub async fn scan(
    db: &DatabaseConnection,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<anomalies::Model>> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    detect(db, actor.organization_id, now).await
}

/// Checks the `days` of a list: 1 to 30.
pub fn check_days(days: i32) -> Result<u32> {
    if !(1..=BASELINE_DAYS as i32).contains(&days) {
        return Err(Error::invalid(
            "days",
            format!("must be between 1 and {BASELINE_DAYS}"),
        ));
    }
    Ok(days as u32)
}
