//! Stored scores and what the model reads: inputs in a few statements, scorable accounts,
//! scores for loaders and the top accounts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{account_scores, companies, contacts, signals};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use super::{Inputs, SignalPoint, is_senior, is_senior_level, window_start};
use crate::{Actor, Error, Result};
/// The model's inputs for each of `account_ids` that exists in the organization, with the
/// account's row (for previews; a rescore reads only the columns it needs, [`load_chunk`]).
pub async fn load_inputs(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, (companies::Model, Inputs)>> {
    let mut out: HashMap<Uuid, (companies::Model, Inputs)> = HashMap::new();
    for chunk in account_ids.chunks(crate::db::IN_LIST) {
        for c in companies::Entity::find()
            .filter(companies::Column::OrganizationId.eq(organization_id))
            .filter(companies::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            let inputs = Inputs {
                size: c.size.clone(),
                ..Default::default()
            };
            out.insert(c.id, (c, inputs));
        }
    }
    load_activity(db, organization_id, now, &mut out).await?;
    Ok(out)
}

/// What a rescore reads of an account's row besides its size: its name (for the events) and
/// the copy of its score (written only when it changes).
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub name: String,
    pub score: Option<i32>,
}

/// [`load_inputs`] reading only the account columns a rescore needs (not the custom fields,
/// tags and descriptions of every account of the chunk).
pub async fn load_chunk(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, (AccountRow, Inputs)>> {
    let mut out: HashMap<Uuid, (AccountRow, Inputs)> = HashMap::with_capacity(account_ids.len());
    for chunk in account_ids.chunks(crate::db::IN_LIST) {
        let rows: Vec<(Uuid, String, Option<String>, Option<i32>)> = companies::Entity::find()
            .select_only()
            .column(companies::Column::Id)
            .column(companies::Column::Name)
            .column(companies::Column::Size)
            .column(companies::Column::Score)
            .filter(companies::Column::OrganizationId.eq(organization_id))
            .filter(companies::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, name, size, score) in rows {
            let inputs = Inputs {
                size,
                ..Default::default()
            };
            out.insert(id, (AccountRow { name, score }, inputs));
        }
    }
    load_activity(db, organization_id, now, &mut out).await?;
    Ok(out)
}

/// Fills the inputs of every account of `out` with its signals of the window at `now`, its
/// latest signal and its contacts' titles: two reads per [`crate::db::IN_LIST`] accounts, a
/// third only for accounts without a signal in the window (the latest signal of an account
/// that has one is the window's latest: every older signal is before the window).
async fn load_activity<T: Send>(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
    out: &mut HashMap<Uuid, (T, Inputs)>,
) -> Result<()> {
    let mut ids: Vec<Uuid> = out.keys().copied().collect();
    ids.sort();
    let (since, horizon) = (window_start(now), crate::signals::horizon(now));
    for chunk in ids.chunks(crate::db::IN_LIST) {
        let rows: Vec<(Uuid, String, DateTime<Utc>, Option<Uuid>)> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .column(signals::Column::SignalType)
            .column(signals::Column::Timestamp)
            .column(signals::Column::ContactId)
            .filter(signals::Column::OrganizationId.eq(organization_id))
            .filter(signals::Column::AccountId.is_in(chunk.to_vec()))
            .filter(signals::Column::Timestamp.gte(since))
            .filter(signals::Column::Timestamp.lt(horizon))
            .into_tuple()
            .all(db)
            .await?;
        for (account, signal_type, timestamp, contact_id) in rows {
            if let Some((_, i)) = out.get_mut(&account) {
                if i.last_signal_at.is_none_or(|t| timestamp > t) {
                    i.last_signal_at = Some(timestamp);
                }
                i.signals.push(SignalPoint {
                    signal_type,
                    timestamp,
                    contact_id,
                });
            }
        }
        let quiet: Vec<Uuid> = chunk
            .iter()
            .filter(|a| out.get(*a).is_some_and(|(_, i)| i.signals.is_empty()))
            .copied()
            .collect();
        if !quiet.is_empty() {
            let latest: Vec<(Uuid, Option<DateTime<Utc>>)> = signals::Entity::find()
                .select_only()
                .column(signals::Column::AccountId)
                .column_as(signals::Column::Timestamp.max(), "latest")
                .filter(signals::Column::OrganizationId.eq(organization_id))
                .filter(signals::Column::AccountId.is_in(quiet))
                .group_by(signals::Column::AccountId)
                .into_tuple()
                .all(db)
                .await?;
            for (account, t) in latest {
                if let Some((_, i)) = out.get_mut(&account) {
                    i.last_signal_at = t;
                }
            }
        }
        load_titles(db, organization_id, chunk, out).await?;
    }
    Ok(())
}

/// The titles and enriched seniority of the contacts of `chunk`'s accounts (as they are now).
async fn load_titles<T>(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    chunk: &[Uuid],
    out: &mut HashMap<Uuid, (T, Inputs)>,
) -> Result<()> {
    let titles: Vec<(Option<Uuid>, Option<String>, Value)> = contacts::Entity::find()
        .select_only()
        .column(contacts::Column::AccountId)
        .column(contacts::Column::Title)
        .column(contacts::Column::CustomFields)
        .filter(contacts::Column::OrganizationId.eq(organization_id))
        .filter(contacts::Column::AccountId.is_in(chunk.to_vec()))
        .into_tuple()
        .all(db)
        .await?;
    for (account, title, custom) in titles {
        let Some((_, i)) = account.and_then(|a| out.get_mut(&a)) else {
            continue;
        };
        let senior_title = title.as_deref().is_some_and(is_senior);
        if let Some(t) = title {
            i.titles.push(t);
        }
        if !senior_title
            && custom
                .get("seniority")
                .and_then(Value::as_str)
                .is_some_and(is_senior_level)
        {
            i.senior_by_level += 1;
        }
    }
    Ok(())
}

/// The model's inputs of each account of `accounts` that exists in the organization, as of its
/// own time: the signals of the 90-day window before it (strictly before: a signal at the time
/// itself does not count) and the latest signal before it. Contacts' titles are today's (they
/// have no history). For the backtest; a few statements per 100 accounts.
pub async fn load_inputs_as_of(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    accounts: &[(Uuid, DateTime<Utc>)],
) -> Result<HashMap<Uuid, (companies::Model, Inputs)>> {
    let mut out: HashMap<Uuid, (companies::Model, Inputs)> = HashMap::new();
    // 100 accounts per statement keeps the OR of per-account bounds well inside SQLite's
    // expression depth.
    for chunk in accounts.chunks(100) {
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        for c in companies::Entity::find()
            .filter(companies::Column::OrganizationId.eq(organization_id))
            .filter(companies::Column::Id.is_in(ids.clone()))
            .all(db)
            .await?
        {
            let inputs = Inputs {
                size: c.size.clone(),
                ..Default::default()
            };
            out.insert(c.id, (c, inputs));
        }
        let bounded = |windowed: bool| {
            chunk.iter().fold(Condition::any(), |cond, (id, t)| {
                let mut one = Condition::all()
                    .add(signals::Column::AccountId.eq(*id))
                    .add(signals::Column::Timestamp.lt(*t));
                if windowed {
                    one = one.add(signals::Column::Timestamp.gte(window_start(*t)));
                }
                cond.add(one)
            })
        };
        let rows: Vec<(Uuid, String, DateTime<Utc>, Option<Uuid>)> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .column(signals::Column::SignalType)
            .column(signals::Column::Timestamp)
            .column(signals::Column::ContactId)
            .filter(signals::Column::OrganizationId.eq(organization_id))
            .filter(bounded(true))
            .into_tuple()
            .all(db)
            .await?;
        for (account, signal_type, timestamp, contact_id) in rows {
            if let Some((_, i)) = out.get_mut(&account) {
                i.signals.push(SignalPoint {
                    signal_type,
                    timestamp,
                    contact_id,
                });
            }
        }
        let latest: Vec<(Uuid, Option<DateTime<Utc>>)> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .column_as(signals::Column::Timestamp.max(), "latest")
            .filter(signals::Column::OrganizationId.eq(organization_id))
            .filter(bounded(false))
            .group_by(signals::Column::AccountId)
            .into_tuple()
            .all(db)
            .await?;
        for (account, t) in latest {
            if let Some((_, i)) = out.get_mut(&account) {
                i.last_signal_at = t;
            }
        }
        load_titles(db, organization_id, &ids, &mut out).await?;
    }
    Ok(out)
}

/// The stored score and tier of each of `account_ids` that has one (not the factors: a chunk's
/// rescore compares only these).
pub(super) async fn stored_scores(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
) -> Result<HashMap<Uuid, (i32, String)>> {
    let mut out = HashMap::with_capacity(account_ids.len());
    for chunk in account_ids.chunks(crate::db::IN_LIST) {
        let rows: Vec<(Uuid, i32, String)> = account_scores::Entity::find()
            .select_only()
            .column(account_scores::Column::AccountId)
            .column(account_scores::Column::Score)
            .column(account_scores::Column::Tier)
            .filter(account_scores::Column::OrganizationId.eq(organization_id))
            .filter(account_scores::Column::AccountId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|(a, score, tier)| (a, (score, tier))));
    }
    Ok(out)
}

/// Every account of the organization that has a score or a signal in the window: what the
/// nightly recompute and `recomputeScores` cover.
pub async fn scorable_accounts(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Vec<Uuid>> {
    let now = Utc::now();
    let (since, horizon) = (window_start(now), crate::signals::horizon(now));
    let mut ids: Vec<Uuid> = account_scores::Entity::find()
        .select_only()
        .column(account_scores::Column::AccountId)
        .filter(account_scores::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(db)
        .await?;
    let active: Vec<Option<Uuid>> = signals::Entity::find()
        .select_only()
        .column(signals::Column::AccountId)
        .distinct()
        .filter(signals::Column::OrganizationId.eq(organization_id))
        .filter(signals::Column::AccountId.is_not_null())
        .filter(signals::Column::Timestamp.gte(since))
        .filter(signals::Column::Timestamp.lt(horizon))
        .into_tuple()
        .all(db)
        .await?;
    ids.extend(active.into_iter().flatten());
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The stored scores of `account_ids` in the actor's organization (for loaders).
pub async fn by_accounts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    account_ids: Vec<Uuid>,
) -> Result<Vec<account_scores::Model>> {
    actor.require_scope("accounts:read")?;
    Ok(account_scores::Entity::find()
        .filter(account_scores::Column::OrganizationId.eq(actor.organization_id))
        .filter(account_scores::Column::AccountId.is_in(account_ids))
        .all(db)
        .await?)
}

/// How an account (`companies`) reaches its score row: the `account_scores` row of the same
/// account in the same organization, by that table's primary key. Reversed (`.rev()`), a score
/// reaches its account; the organization condition reads the same either way round.
pub fn score_of_account() -> sea_orm::RelationDef {
    use sea_orm::sea_query::{ExprTrait, IntoCondition};
    companies::Entity::belongs_to(account_scores::Entity)
        .from(companies::Column::Id)
        .to(account_scores::Column::AccountId)
        .on_condition(|account, score| {
            sea_orm::sea_query::Expr::col((score, account_scores::Column::OrganizationId))
                .equals((account, companies::Column::OrganizationId))
                .into_condition()
        })
        .into()
}

/// The highest-scoring accounts, optionally of one tier.
pub async fn top_accounts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    first: u64,
    tier: Option<&str>,
) -> Result<Vec<(companies::Model, account_scores::Model)>> {
    actor.require_scope("accounts:read")?;
    if !(1..=100).contains(&first) {
        return Err(Error::invalid("first", "must be between 1 and 100"));
    }
    let mut q = account_scores::Entity::find()
        .filter(account_scores::Column::OrganizationId.eq(actor.organization_id));
    if let Some(t) = tier {
        q = q.filter(account_scores::Column::Tier.eq(t));
    }
    // Each with its account, in the same statement (an inner join: a score whose account is
    // gone is no account to show).
    let account = score_of_account().rev();
    let q = q
        .join(sea_orm::JoinType::InnerJoin, account)
        .select_also(companies::Entity)
        .order_by_desc(account_scores::Column::Score)
        .order_by_desc(account_scores::Column::AccountId)
        .limit(first);
    Ok(crate::db::rows::all_also(db, q)
        .await?
        .into_iter()
        .filter_map(|(s, c)| c.map(|c| (c, s)))
        .collect())
}
