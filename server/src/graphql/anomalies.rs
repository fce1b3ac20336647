//! Signal anomalies over GraphQL: the organization's recent ones (`anomalies`), an account's own
//! (`Account.anomalies`, a page's accounts in one statement through the request's loader) and an
//! admin's on-demand detection (`scanAnomalies`).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, NaiveDate, Utc};
use entity::anomalies;
use uuid::Uuid;

use crate::graphql::common::db;
use crate::graphql::crm::loaders::{AccountId, CrmLoader, CrmLoaders};
use crate::graphql::crm::types::{Account, load};
use crate::graphql::{GqlResultExt, actor, gql_error};

/// Which way an account's signals left their usual range.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AnomalyKind {
    /// Today's signals are at least 2 standard deviations above the 30-day daily mean.
    Spike,
    /// Today's signals so far are at least 2 standard deviations below the same hours of the
    /// 30 days before, whose mean is above 3.
    Drop,
}

impl From<AnomalyKind> for domain::anomalies::Kind {
    fn from(k: AnomalyKind) -> Self {
        match k {
            AnomalyKind::Spike => domain::anomalies::Kind::Spike,
            AnomalyKind::Drop => domain::anomalies::Kind::Drop,
        }
    }
}

impl From<domain::anomalies::Kind> for AnomalyKind {
    fn from(k: domain::anomalies::Kind) -> Self {
        match k {
            domain::anomalies::Kind::Spike => AnomalyKind::Spike,
            domain::anomalies::Kind::Drop => AnomalyKind::Drop,
        }
    }
}

/// How far outside: HIGH at 3 standard deviations or more, MODERATE from 2.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AnomalySeverity {
    Moderate,
    High,
}

impl From<AnomalySeverity> for domain::anomalies::Severity {
    fn from(s: AnomalySeverity) -> Self {
        match s {
            AnomalySeverity::Moderate => domain::anomalies::Severity::Moderate,
            AnomalySeverity::High => domain::anomalies::Severity::High,
        }
    }
}

impl From<domain::anomalies::Severity> for AnomalySeverity {
    fn from(s: domain::anomalies::Severity) -> Self {
        match s {
            domain::anomalies::Severity::Moderate => AnomalySeverity::Moderate,
            domain::anomalies::Severity::High => AnomalySeverity::High,
        }
    }
}

/// A detected signal anomaly: one account's signal count on a UTC day against its 30-day
/// baseline.
pub struct Anomaly(anomalies::Model);

#[Object]
impl Anomaly {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The account (null once deleted).
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, Some(AccountId(self.0.account_id)))
            .await?
            .map(Account::new))
    }
    async fn kind(&self) -> async_graphql::Result<AnomalyKind> {
        domain::anomalies::Kind::parse(&self.0.kind)
            .map(AnomalyKind::from)
            .ok_or_else(|| gql_error(domain::Error::Internal("unknown anomaly kind".into())))
    }
    async fn severity(&self) -> async_graphql::Result<AnomalySeverity> {
        domain::anomalies::Severity::parse(&self.0.severity)
            .map(AnomalySeverity::from)
            .ok_or_else(|| gql_error(domain::Error::Internal("unknown anomaly severity".into())))
    }
    /// The UTC day judged.
    async fn day(&self) -> NaiveDate {
        self.0.day
    }
    /// The account's signals that day when it was judged (the day so far).
    async fn today_count(&self) -> i64 {
        self.0.today_count
    }
    /// The baseline's daily mean (a DROP's: of the same hours), to 2 decimals.
    async fn mean(&self) -> f64 {
        self.0.mean
    }
    /// The baseline's population standard deviation, to 2 decimals.
    async fn stddev(&self) -> f64 {
        self.0.stddev
    }
    /// (todayCount − mean) / stddev, to 2 decimals.
    async fn z_score(&self) -> f64 {
        self.0.z_score
    }
    /// max(0, round(mean − 2·stddev)).
    async fn expected_min(&self) -> i64 {
        self.0.expected_min
    }
    /// round(mean + 2·stddev).
    async fn expected_max(&self) -> i64 {
        self.0.expected_max
    }
    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }
}

/// An account's anomalies of the last `days` days, as a DataLoader key: a page's accounts load
/// in one statement.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct AnomaliesOf {
    pub account: Uuid,
    pub days: u32,
}

impl Loader<AnomaliesOf> for CrmLoader {
    type Value = Vec<anomalies::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[AnomaliesOf],
    ) -> Result<HashMap<AnomaliesOf, Self::Value>, Self::Error> {
        let mut by_days: HashMap<u32, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_days.entry(k.days).or_default().push(k.account);
        }
        let now = Utc::now();
        let mut out = HashMap::new();
        for (days, accounts) in by_days {
            let mut rows = domain::anomalies::of_accounts(
                &*self.db().await?,
                self.actor()?,
                accounts.clone(),
                days,
                now,
            )
            .await
            .map_err(gql_error)?;
            for account in accounts {
                let found = rows.remove(&account).unwrap_or_default();
                out.insert(AnomaliesOf { account, days }, found);
            }
        }
        Ok(out)
    }
}

/// An account's anomalies (the `Account.anomalies` field).
pub(crate) async fn anomalies_of(
    ctx: &Context<'_>,
    account: Uuid,
    days: i32,
) -> async_graphql::Result<Vec<Anomaly>> {
    let days = domain::anomalies::check_days(days).gql()?;
    let rows = ctx
        .data::<CrmLoaders>()?
        .load_one(AnomaliesOf { account, days })
        .await?
        .unwrap_or_default();
    Ok(rows.into_iter().map(Anomaly).collect())
}

#[derive(Default)]
pub struct AnomalyQuery;

#[Object]
impl AnomalyQuery {
    /// The organization's signal anomalies detected in the last `days` days (1 to 30, default
    /// 7), newest first, at most 100.
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 7)] days: i32,
    ) -> async_graphql::Result<Vec<Anomaly>> {
        let days = domain::anomalies::check_days(days).gql()?;
        let rows = domain::anomalies::list(&*db(ctx).await?, actor(ctx)?, days, Utc::now())
            .await
            .gql()?;
        Ok(rows.into_iter().map(Anomaly).collect())
    }
}

#[derive(Default)]
pub struct AnomalyMutation;

#[Object]
impl AnomalyMutation {
    /// Runs anomaly detection for the organization now (ADMIN), as the hourly job does, and
    /// returns the anomalies it recorded (none for an account and kind detected in the last 24
    /// hours).
    async fn scan_anomalies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Anomaly>> {
        let rows = domain::anomalies::scan(&*db(ctx).await?, actor(ctx)?, Utc::now())
            .await
            .gql()?;
        Ok(rows.into_iter().map(Anomaly).collect())
    }
}
