//! The weekly digest: what moved in an organization over the last seven days — accounts that
//! rose or fell a tier (against the score snapshot of the week's first day), the biggest score
//! movers, new HOT accounts, new contacts, signals by source against the week before, and
//! anomalies. [`build`] computes it (the same for `previewDigest` and the Monday email);
//! [`send`] queues one email per member whose preference is weekly, through the alert
//! deliveries (each its own job), once per organization and week. An organization with nothing
//! new gets no email.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{
    account_scores, alert_deliveries, anomalies, companies, contacts, memberships, organizations,
    score_snapshots, signal_sources, signals, users,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alerts::{Channel, DigestFrequency, Kind, NewDelivery};
use crate::{Actor, Error, Result};

/// Rows listed per section.
pub const LIST: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountMove {
    pub account_id: Uuid,
    pub name: String,
    pub from_tier: Option<String>,
    pub to_tier: String,
    pub from_score: Option<i32>,
    pub to_score: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceCount {
    pub source: String,
    pub this_week: i64,
    pub last_week: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NewContact {
    pub contact_id: Uuid,
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyLine {
    pub account_id: Uuid,
    pub name: String,
    pub kind: String,
    pub severity: String,
    pub day: NaiveDate,
    pub count: i64,
    pub expected_min: i64,
    pub expected_max: i64,
}

/// One organization's week.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub organization_name: String,
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    /// The snapshot day tiers and scores are compared with (none before there is history).
    pub compared_with: Option<NaiveDate>,
    pub tier_ups: Vec<AccountMove>,
    pub tier_downs: Vec<AccountMove>,
    /// Accounts that became HOT this week (also among `tier_ups`).
    pub new_hot: Vec<AccountMove>,
    /// The largest score changes either way.
    pub score_movers: Vec<AccountMove>,
    pub new_contacts_count: u64,
    pub new_contacts: Vec<NewContact>,
    pub signals_this_week: i64,
    pub signals_last_week: i64,
    pub signals_by_source: Vec<SourceCount>,
    pub anomalies_count: u64,
    pub anomalies: Vec<AnomalyLine>,
}

impl Digest {
    /// Nothing new happened: no signal, contact, tier move or anomaly.
    pub fn is_empty(&self) -> bool {
        self.signals_this_week == 0
            && self.new_contacts_count == 0
            && self.tier_ups.is_empty()
            && self.tier_downs.is_empty()
            && self.anomalies_count == 0
    }

    /// The email's subject.
    pub fn subject(&self) -> String {
        let mut parts = Vec::new();
        if self.signals_this_week > 0 {
            parts.push(format!("{} signals", self.signals_this_week));
        }
        if !self.new_hot.is_empty() {
            parts.push(format!("{} new HOT accounts", self.new_hot.len()));
        }
        if self.new_contacts_count > 0 {
            parts.push(format!("{} new contacts", self.new_contacts_count));
        }
        if parts.is_empty() {
            format!("{}: your week in DevSignal", self.organization_name)
        } else {
            format!("{}: {}", self.organization_name, parts.join(", "))
        }
    }
}

fn rank(tier: &str) -> u8 {
    match tier {
        "HOT" => 3,
        "WARM" => 2,
        "COLD" => 1,
        _ => 0,
    }
}

/// The digest of the seven days before `end` for `org`.
pub async fn build(db: &impl ConnectionTrait, org: Uuid, end: DateTime<Utc>) -> Result<Digest> {
    let start = end - Duration::days(7);
    let before = start - Duration::days(7);
    let organization_name = organizations::Entity::find_by_id(org)
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "organization",
        })?
        .name;

    // Tiers and scores now against the last snapshot on or before the week's first day.
    let compared_with: Option<NaiveDate> = score_snapshots::Entity::find()
        .select_only()
        .column_as(score_snapshots::Column::Day.max(), "day")
        .filter(score_snapshots::Column::OrganizationId.eq(org))
        .filter(score_snapshots::Column::Day.lte(start.date_naive()))
        .into_tuple::<Option<NaiveDate>>()
        .one(db)
        .await?
        .flatten();
    let mut then: HashMap<Uuid, (i32, String)> = HashMap::new();
    if let Some(day) = compared_with {
        for (a, s, t) in score_snapshots::Entity::find()
            .select_only()
            .columns([
                score_snapshots::Column::AccountId,
                score_snapshots::Column::Score,
                score_snapshots::Column::Tier,
            ])
            .filter(score_snapshots::Column::OrganizationId.eq(org))
            .filter(score_snapshots::Column::Day.eq(day))
            .into_tuple::<(Uuid, i32, String)>()
            .all(db)
            .await?
        {
            then.insert(a, (s, t));
        }
    }
    let now: Vec<(Uuid, i32, String, String)> = account_scores::Entity::find()
        .select_only()
        .column(account_scores::Column::AccountId)
        .column(account_scores::Column::Score)
        .column(account_scores::Column::Tier)
        .column(companies::Column::Name)
        .join(
            JoinType::InnerJoin,
            account_scores::Entity::belongs_to(companies::Entity)
                .from(account_scores::Column::AccountId)
                .to(companies::Column::Id)
                .into(),
        )
        .filter(account_scores::Column::OrganizationId.eq(org))
        .into_tuple()
        .all(db)
        .await?;
    let (mut ups, mut downs, mut movers) = (Vec::new(), Vec::new(), Vec::new());
    if compared_with.is_some() {
        for (id, score, tier, name) in now {
            let before = then.get(&id);
            let m = AccountMove {
                account_id: id,
                name,
                from_tier: before.map(|b| b.1.clone()),
                to_tier: tier.clone(),
                from_score: before.map(|b| b.0),
                to_score: score,
            };
            let old_rank = before.map_or(0, |b| rank(&b.1));
            if rank(&tier) > old_rank {
                ups.push(m.clone());
            } else if rank(&tier) < old_rank {
                downs.push(m.clone());
            }
            if m.from_score.unwrap_or(0) != score {
                movers.push(m);
            }
        }
    }
    let key = |m: &AccountMove| (std::cmp::Reverse(m.to_score), m.account_id);
    ups.sort_by_key(key);
    downs.sort_by_key(|m| (m.to_score, m.account_id));
    movers.sort_by_key(|m| {
        (
            std::cmp::Reverse((m.to_score - m.from_score.unwrap_or(0)).abs()),
            m.account_id,
        )
    });
    let new_hot: Vec<AccountMove> = ups
        .iter()
        .filter(|m| m.to_tier == "HOT")
        .take(LIST)
        .cloned()
        .collect();
    ups.truncate(LIST);
    downs.truncate(LIST);
    movers.truncate(5);

    // New contacts.
    let in_week = contacts::Column::CreatedAt
        .gte(start)
        .and(contacts::Column::CreatedAt.lt(end));
    let new_contacts_count = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(in_week.clone())
        .count(db)
        .await?;
    let new_contacts = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(org))
        .filter(in_week)
        .order_by_desc(contacts::Column::CreatedAt)
        .limit(LIST as u64)
        .all(db)
        .await?
        .into_iter()
        .map(|c| {
            let name = [c.first_name.as_deref(), c.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            NewContact {
                contact_id: c.id,
                name: if name.is_empty() {
                    c.email.clone().unwrap_or_else(|| "(unnamed)".into())
                } else {
                    name
                },
                email: c.email,
            }
        })
        .collect();

    // Signals by source kind, this week and the week before.
    let by_source = |from: DateTime<Utc>, to: DateTime<Utc>| {
        signals::Entity::find()
            .select_only()
            .column(signal_sources::Column::Kind)
            .column_as(
                Expr::col((signals::Entity, signals::Column::Id)).count(),
                "n",
            )
            .join(
                JoinType::InnerJoin,
                signals::Entity::belongs_to(signal_sources::Entity)
                    .from(signals::Column::SourceId)
                    .to(signal_sources::Column::Id)
                    .into(),
            )
            .filter(signals::Column::OrganizationId.eq(org))
            .filter(signals::Column::Timestamp.gte(from))
            .filter(signals::Column::Timestamp.lt(to))
            .group_by(signal_sources::Column::Kind)
            .into_tuple::<(String, i64)>()
            .all(db)
    };
    let this: HashMap<String, i64> = by_source(start, end).await?.into_iter().collect();
    let last: HashMap<String, i64> = by_source(before, start).await?.into_iter().collect();
    let mut kinds: Vec<&String> = this.keys().chain(last.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let mut signals_by_source: Vec<SourceCount> = kinds
        .into_iter()
        .map(|k| SourceCount {
            source: k.clone(),
            this_week: this.get(k).copied().unwrap_or(0),
            last_week: last.get(k).copied().unwrap_or(0),
        })
        .collect();
    signals_by_source.sort_by_key(|s| (std::cmp::Reverse(s.this_week), s.source.clone()));

    // Anomalies detected this week.
    let anomaly_q = anomalies::Entity::find()
        .filter(anomalies::Column::OrganizationId.eq(org))
        .filter(anomalies::Column::DetectedAt.gte(start))
        .filter(anomalies::Column::DetectedAt.lt(end));
    let anomalies_count = anomaly_q.clone().count(db).await?;
    let rows = anomaly_q
        .order_by_desc(anomalies::Column::DetectedAt)
        .limit(LIST as u64)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|a| a.account_id).collect();
    let names: HashMap<Uuid, String> = companies::Entity::find()
        .select_only()
        .columns([companies::Column::Id, companies::Column::Name])
        .filter(companies::Column::OrganizationId.eq(org))
        .filter(companies::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let anomalies = rows
        .into_iter()
        .map(|a| AnomalyLine {
            name: names.get(&a.account_id).cloned().unwrap_or_default(),
            account_id: a.account_id,
            kind: a.kind,
            severity: a.severity,
            day: a.day,
            count: a.today_count,
            expected_min: a.expected_min,
            expected_max: a.expected_max,
        })
        .collect();

    Ok(Digest {
        organization_name,
        week_start: start,
        week_end: end,
        compared_with,
        tier_ups: ups,
        tier_downs: downs,
        new_hot,
        score_movers: movers,
        new_contacts_count,
        new_contacts,
        signals_this_week: this.values().sum(),
        signals_last_week: last.values().sum(),
        signals_by_source,
        anomalies_count,
        anomalies,
    })
}

/// The digest of the week before now, for a member or a key that reads accounts.
pub async fn preview(db: &impl ConnectionTrait, actor: &Actor) -> Result<Digest> {
    actor.require_scope("accounts:read")?;
    build(db, actor.organization_id, Utc::now()).await
}

/// What [`send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Nothing new this week: no email.
    Nothing,
    /// This week's digest was already queued.
    Already,
    /// Emails queued, one per member who wants the digest.
    Queued(usize),
}

/// Queues this week's digest email for every member of `org` whose preference is weekly (in
/// one transaction; each email is then its own job). Once per organization per six days.
pub async fn send(db: &sea_orm::DatabaseConnection, org: Uuid, now: DateTime<Utc>) -> Result<Sent> {
    let digest = build(db, org, now).await?;
    if digest.is_empty() {
        return Ok(Sent::Nothing);
    }
    let txn = crate::db::begin(db).await?;
    crate::db::advisory_xact_lock(&txn, &[crate::db::lock_key(org, "digest")]).await?;
    let recent = alert_deliveries::Entity::find()
        .filter(alert_deliveries::Column::OrganizationId.eq(org))
        .filter(alert_deliveries::Column::Kind.eq(Kind::Digest.as_str()))
        .filter(alert_deliveries::Column::CreatedAt.gt(now - Duration::days(6)))
        .count(&txn)
        .await?;
    if recent > 0 {
        return Ok(Sent::Already);
    }
    let members: Vec<(Uuid, String)> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::UserId)
        .column(users::Column::Email)
        .inner_join(users::Entity)
        .filter(memberships::Column::OrganizationId.eq(org))
        .into_tuple()
        .all(&txn)
        .await?;
    let ids: Vec<Uuid> = members.iter().map(|(u, _)| *u).collect();
    let prefs = crate::alerts::of_members(&txn, org, &ids).await?;
    let content = serde_json::to_value(&digest).map_err(|e| Error::Internal(e.to_string()))?;
    let new: Vec<NewDelivery> = members
        .into_iter()
        .filter(|(u, _)| {
            prefs
                .get(u)
                .is_some_and(|p| p.digest == DigestFrequency::Weekly)
        })
        .map(|(user, address)| NewDelivery {
            org,
            kind: Kind::Digest,
            channel: Channel::Email { user, address },
            rule_id: None,
            account_id: None,
            content: content.clone(),
        })
        .collect();
    let n = crate::alerts::queue_deliveries(&txn, new).await?;
    txn.commit().await?;
    Ok(Sent::Queued(n))
}
