//! The time-based triggers, checked by the `alert-check` job (every 5 minutes): an account gone
//! quiet (ACCOUNT_INACTIVE) and engagement falling (ENGAGEMENT_DROP). Each rule is checked in
//! its own transaction under an advisory lock, from where its last check ended
//! (`checked_until`) to now, so two jobs never fire the same silence twice and a check that did
//! not run for an hour catches up instead of missing what happened meanwhile.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{account_scores, alert_rules, companies, signals};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::evaluate::{Firing, cooled, passes, record};
use super::{MIN_PREVIOUS_SIGNALS, Rule, Trigger};
use crate::Result;

/// Checks every enabled time-based rule of every organization at `now`; returns how many
/// alerts fired.
#[tracing::instrument(name = "alerts.check", skip_all, fields(rules = tracing::field::Empty, fired = tracing::field::Empty))]
pub async fn check_timed(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    let ids: Vec<Uuid> = alert_rules::Entity::find()
        .select_only()
        .column(alert_rules::Column::Id)
        .filter(alert_rules::Column::Enabled.eq(true))
        .filter(alert_rules::Column::Trigger.is_in([
            Trigger::AccountInactive.as_str(),
            Trigger::EngagementDrop.as_str(),
        ]))
        .order_by_asc(alert_rules::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut fired = 0;
    for id in &ids {
        let txn = crate::db::begin(db).await?;
        fired += check_rule(&txn, *id, now).await?;
        txn.commit().await?;
    }
    let span = tracing::Span::current();
    span.record("rules", ids.len());
    span.record("fired", fired);
    Ok(fired)
}

async fn check_rule(txn: &DatabaseTransaction, id: Uuid, now: DateTime<Utc>) -> Result<usize> {
    crate::db::advisory_xact_lock(txn, &[crate::db::lock_key(id, "alert-check")]).await?;
    // Read again under the lock: another check may have moved it on, or it was changed.
    let Some(row) = alert_rules::Entity::find_by_id(id).one(txn).await? else {
        return Ok(0);
    };
    if !row.enabled {
        return Ok(0);
    }
    let from = std::cmp::max(row.checked_until.unwrap_or(row.created_at), row.created_at);
    let Some(rule) = Rule::from_row(row) else {
        return Ok(0);
    };
    if from >= now {
        return Ok(0);
    }
    let days = i64::from(
        rule.params
            .within_days
            .or(rule.trigger.default_days())
            .unwrap_or(7),
    );
    let window = chrono::Duration::days(days);
    let org = rule.row.organization_id;
    // (account, when the condition was met, title, details)
    let mut met: Vec<(Uuid, DateTime<Utc>, String, serde_json::Value)> = Vec::new();
    let mut names: HashMap<Uuid, companies::Model> = HashMap::new();
    match rule.trigger {
        Trigger::AccountInactive => {
            // The silence reached `days` between the last check and now: the latest signal
            // fell in (from − days, now − days].
            let quiet: Vec<(Uuid, Option<DateTime<Utc>>)> = account_scores::Entity::find()
                .select_only()
                .column(account_scores::Column::AccountId)
                .column(account_scores::Column::LastSignalAt)
                .filter(account_scores::Column::OrganizationId.eq(org))
                .filter(account_scores::Column::LastSignalAt.gt(from - window))
                .filter(account_scores::Column::LastSignalAt.lte(now - window))
                .into_tuple()
                .all(txn)
                .await?;
            for (account, last) in quiet {
                let Some(last) = last else { continue };
                met.push((
                    account,
                    last + window,
                    String::new(),
                    json!({"lastSignalAt": last, "days": days}),
                ));
            }
        }
        Trigger::EngagementDrop => {
            let percent = rule.params.percent.unwrap_or(100.0);
            let mid = now - window;
            #[derive(FromQueryResult)]
            struct Counts {
                account_id: Uuid,
                current: i64,
                previous: i64,
            }
            let in_current = Expr::case(signals::Column::Timestamp.gte(mid), 1).finally(0);
            let in_previous = Expr::case(signals::Column::Timestamp.lt(mid), 1).finally(0);
            let rows = signals::Entity::find()
                .select_only()
                .column(signals::Column::AccountId)
                .column_as(
                    Expr::expr(in_current).sum().cast_as(Alias::new("BIGINT")),
                    "current",
                )
                .column_as(
                    Expr::expr(in_previous).sum().cast_as(Alias::new("BIGINT")),
                    "previous",
                )
                .filter(signals::Column::OrganizationId.eq(org))
                .filter(signals::Column::AccountId.is_not_null())
                .filter(signals::Column::Timestamp.gte(mid - window))
                .filter(signals::Column::Timestamp.lte(now))
                .group_by(signals::Column::AccountId)
                .into_model::<Counts>()
                .all(txn)
                .await?;
            for r in rows {
                if r.previous < MIN_PREVIOUS_SIGNALS {
                    continue;
                }
                let drop = (r.previous - r.current) as f64 / r.previous as f64 * 100.0;
                if drop >= percent {
                    met.push((
                        r.account_id,
                        now,
                        String::new(),
                        json!({"current": r.current, "previous": r.previous, "days": days,
                               "dropPercent": (drop * 10.0).round() / 10.0}),
                    ));
                }
            }
        }
        _ => return Ok(0),
    }
    if !met.is_empty() {
        let accounts: Vec<Uuid> = met.iter().map(|m| m.0).collect();
        names = companies::Entity::find()
            .filter(companies::Column::OrganizationId.eq(org))
            .filter(companies::Column::Id.is_in(accounts.clone()))
            .all(txn)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
    }
    let tiers: HashMap<Uuid, String> = if met.is_empty() {
        HashMap::new()
    } else {
        account_scores::Entity::find()
            .select_only()
            .column(account_scores::Column::AccountId)
            .column(account_scores::Column::Tier)
            .filter(account_scores::Column::OrganizationId.eq(org))
            .filter(account_scores::Column::AccountId.is_in(met.iter().map(|m| m.0)))
            .into_tuple::<(Uuid, String)>()
            .all(txn)
            .await?
            .into_iter()
            .collect()
    };
    let mut candidates = Vec::new();
    met.sort_by_key(|m| (m.1, m.0));
    for (account, at, _, data) in met {
        let Some(company) = names.get(&account) else {
            continue;
        };
        let tags: Vec<String> = serde_json::from_value(company.tags.clone()).unwrap_or_default();
        if !passes(&rule, account, tiers.get(&account), &tags) {
            continue;
        }
        let name = &company.name;
        let title = match rule.trigger {
            Trigger::AccountInactive => format!("{name} has sent no signal for {days} days"),
            _ => format!(
                "{name}'s signals fell {}% over {days} days ({} → {})",
                data["dropPercent"], data["previous"], data["current"]
            ),
        };
        candidates.push(Firing {
            rule: &rule,
            account_id: account,
            account_name: name.clone(),
            event_seq: None,
            at,
            title,
            data,
        });
    }
    let fired = cooled(txn, candidates).await?;
    record(txn, &fired, now).await?;
    alert_rules::Entity::update_many()
        .col_expr(alert_rules::Column::CheckedUntil, Expr::value(now))
        .filter(alert_rules::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(fired.len())
}
