//! The scoring backtest over GraphQL (`scoringBacktest`, ADMIN): how well the scores before
//! each close separated won from lost accounts, under the current and a proposed configuration.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::common::db;
use crate::graphql::crm::types::Account;
use crate::graphql::signals::{ScoringConfigInput, Tier};
use crate::graphql::{GqlResultExt, actor};

/// How an account's latest closed deal ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DealOutcome {
    Won,
    Lost,
}

/// How well one configuration's scores separated won from lost accounts. HOT predicts a win.
#[derive(SimpleObject)]
pub struct BacktestMetrics {
    /// Accounts whose latest closed deal was won.
    pub won: i32,
    pub lost: i32,
    /// Won accounts that were HOT before their close.
    pub hot_won: i32,
    /// Lost accounts that were HOT before their close.
    pub hot_lost: i32,
    /// HOT accounts that were won, over HOT accounts; null when none was HOT.
    pub hot_precision: Option<f64>,
    /// Won accounts that were HOT, over won accounts; null when none was won.
    pub hot_recall: Option<f64>,
    /// The chance a won account scored above a lost one (a tie counts one half); null unless
    /// there are both.
    pub auc: Option<f64>,
}

impl From<domain::scoring::Metrics> for BacktestMetrics {
    fn from(m: domain::scoring::Metrics) -> Self {
        let n = |x: usize| i32::try_from(x).unwrap_or(i32::MAX);
        BacktestMetrics {
            won: n(m.won),
            lost: n(m.lost),
            hot_won: n(m.hot_won),
            hot_lost: n(m.hot_lost),
            hot_precision: m.precision,
            hot_recall: m.recall,
            auc: m.auc,
        }
    }
}

/// One account's outcome and its scores just before its close.
#[derive(SimpleObject)]
pub struct BacktestAccount {
    pub account: Account,
    pub outcome: DealOutcome,
    /// The latest closed deal's `closedAt` (else its `updatedAt`).
    pub closed_at: DateTime<Utc>,
    pub current_score: i32,
    pub current_tier: Tier,
    pub proposed_score: i32,
    pub proposed_tier: Tier,
}

/// The backtest of the current and a proposed scoring configuration on the organization's
/// closed deals (`docs/scoring.md`, Backtest).
#[derive(SimpleObject)]
pub struct ScoringBacktest {
    /// The current configuration's version (0 = the defaults).
    pub current_version: i32,
    /// Accounts with a deal closed won or lost.
    pub closed_accounts: i32,
    /// Accounts scored: the 5,000 latest closes at most, less accounts deleted since.
    pub accounts: i32,
    /// Set when only part of the closed accounts was scored, saying which.
    pub notice: Option<String>,
    pub current: BacktestMetrics,
    pub proposed: BacktestMetrics,
    /// Per account, the latest closes first (1,000 at most).
    pub rows: Vec<BacktestAccount>,
}

#[derive(Default)]
pub struct BacktestQuery;

#[Object]
impl BacktestQuery {
    /// For the accounts whose deals closed won or lost, how well the score before the close
    /// separated them, under the current configuration and under `config` applied to it (as
    /// `previewScoringConfig` applies its input; left out, the current one) (ADMIN). Nothing is
    /// saved.
    async fn scoring_backtest(
        &self,
        ctx: &Context<'_>,
        config: Option<ScoringConfigInput>,
    ) -> async_graphql::Result<ScoringBacktest> {
        let actor = actor(ctx)?;
        let db = db(ctx).await?;
        let current = domain::scoring::config(&*db, actor).await.gql()?;
        let proposed = config.unwrap_or_default().apply(current.config);
        let b = domain::scoring::backtest(&*db, actor, proposed)
            .await
            .gql()?;
        let n = |x: usize| i32::try_from(x).unwrap_or(i32::MAX);
        let notice = (b.closed_accounts > domain::scoring::MAX_ACCOUNTS).then(|| {
            format!(
                "only the {} latest of {} closed accounts were scored",
                domain::scoring::MAX_ACCOUNTS,
                b.closed_accounts
            )
        });
        let tier = |t: &str| Tier::parse(t).unwrap_or(Tier::Inactive);
        Ok(ScoringBacktest {
            current_version: b.current_version,
            closed_accounts: n(b.closed_accounts),
            accounts: n(b.accounts),
            notice,
            current: b.current.into(),
            proposed: b.proposed.into(),
            rows: b
                .rows
                .into_iter()
                .map(|r| BacktestAccount {
                    account: Account::new(r.account),
                    outcome: if r.won {
                        DealOutcome::Won
                    } else {
                        DealOutcome::Lost
                    },
                    closed_at: r.closed_at,
                    current_score: r.current_score,
                    current_tier: tier(r.current_tier),
                    proposed_score: r.proposed_score,
                    proposed_tier: tier(r.proposed_tier),
                })
                .collect(),
        })
    }
}
