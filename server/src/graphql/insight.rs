//! Insight over GraphQL: score history (an account's daily scores and the organization's
//! accounts per tier per day).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{NaiveDate, Utc};
use entity::score_snapshots;
use uuid::Uuid;

use crate::graphql::common::db;
use crate::graphql::crm::loaders::{CrmLoader, CrmLoaders};
use crate::graphql::signals::Tier;
use crate::graphql::{GqlResultExt, actor, gql_error};

/// An account's score on one day (captured nightly).
#[derive(SimpleObject)]
pub struct ScorePoint {
    /// The UTC day.
    pub date: NaiveDate,
    pub score: i32,
    pub tier: Tier,
    /// Signals of the 90-day window that day.
    pub signal_count: i32,
    /// Distinct active people that day.
    pub user_count: i32,
}

impl From<score_snapshots::Model> for ScorePoint {
    fn from(m: score_snapshots::Model) -> Self {
        ScorePoint {
            date: m.day,
            score: m.score,
            tier: Tier::parse(&m.tier).unwrap_or(Tier::Inactive),
            signal_count: m.signal_count,
            user_count: m.user_count,
        }
    }
}

/// The organization's scored accounts on one captured day, per tier.
#[derive(SimpleObject)]
pub struct ScoreTrendDay {
    /// The UTC day.
    pub date: NaiveDate,
    pub hot: u64,
    pub warm: u64,
    pub cold: u64,
    pub inactive: u64,
    /// All scored accounts that day.
    pub accounts: u64,
    /// Their average score, to one decimal.
    pub average_score: f64,
}

/// An account's history of the last `days` days, as a DataLoader key: the histories of a page's
/// accounts load in one statement.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct HistoryOf {
    pub account: Uuid,
    pub days: u32,
}

impl Loader<HistoryOf> for CrmLoader {
    type Value = Vec<score_snapshots::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[HistoryOf],
    ) -> Result<HashMap<HistoryOf, Self::Value>, Self::Error> {
        let mut by_days: HashMap<u32, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_days.entry(k.days).or_default().push(k.account);
        }
        let now = Utc::now();
        let mut out = HashMap::new();
        for (days, accounts) in by_days {
            let rows = domain::scoring::histories(
                &*self.db().await?,
                self.actor()?,
                accounts.clone(),
                days,
                now,
            )
            .await
            .map_err(gql_error)?;
            let mut rows = rows;
            for account in accounts {
                let history = rows.remove(&account).unwrap_or_default();
                out.insert(HistoryOf { account, days }, history);
            }
        }
        Ok(out)
    }
}

/// An account's score history (the `Account.scoreHistory` field).
pub(crate) async fn score_history(
    ctx: &Context<'_>,
    account: Uuid,
    days: i32,
) -> async_graphql::Result<Vec<ScorePoint>> {
    let days = domain::scoring::check_days(days).gql()?;
    let rows = ctx
        .data::<CrmLoaders>()?
        .load_one(HistoryOf { account, days })
        .await?
        .unwrap_or_default();
    Ok(rows.into_iter().map(ScorePoint::from).collect())
}

#[derive(Default)]
pub struct InsightQuery;

#[Object]
impl InsightQuery {
    /// The organization's scored accounts per tier for each captured day of the last `days`
    /// days (1 to 3660, default 30), oldest first; a day without a capture is absent.
    async fn score_trends(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Vec<ScoreTrendDay>> {
        let days = domain::scoring::check_days(days).gql()?;
        let rows = domain::scoring::trends(&*db(ctx).await?, actor(ctx)?, days, Utc::now())
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|d| ScoreTrendDay {
                date: d.day,
                hot: d.hot,
                warm: d.warm,
                cold: d.cold,
                inactive: d.inactive,
                accounts: d.accounts,
                average_score: d.average_score,
            })
            .collect())
    }
}
