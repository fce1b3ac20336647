//! The backtest (`scoringBacktest`): how well scores separated the accounts an organization
//! won from those it lost, under its current configuration and a proposed one, so a team tunes
//! weights on its own outcomes.
//!
//! Each account with a deal closed won or lost counts once, with the outcome of its latest
//! close (`closedAt`, else the deal's `updatedAt`; on equal times the greater deal id). It is
//! scored as of that close from the signals before it (the 90-day window before the close; a
//! signal at or after the close never counts) under both configurations, with today's contact
//! titles and company size (they have no history). HOT predicts a win: precision is won HOT
//! accounts over HOT accounts, recall won HOT accounts over won accounts; AUC is the chance a
//! won account outscores a lost one (Mann–Whitney, a tie counts one half). Each is `None` when
//! its denominator is empty. At most [`MAX_ACCOUNTS`] accounts, the latest closes, are scored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{companies, deals};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{Config, admin, compute, current_config, load_inputs_as_of};
use crate::{Actor, Result};

/// Accounts scored at most (the latest closes).
pub const MAX_ACCOUNTS: usize = 5_000;
/// Per-account rows returned at most (the latest closes).
pub const MAX_ROWS: usize = 1_000;

/// How one configuration separated the outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub won: usize,
    pub lost: usize,
    pub hot_won: usize,
    pub hot_lost: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub auc: Option<f64>,
}

/// One account's outcome and its scores as of its close.
#[derive(Debug, Clone)]
pub struct Row {
    pub account: companies::Model,
    pub won: bool,
    pub closed_at: DateTime<Utc>,
    pub current_score: i32,
    pub current_tier: &'static str,
    pub proposed_score: i32,
    pub proposed_tier: &'static str,
}

/// A backtest's result.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// The current configuration's version (0 = the defaults).
    pub current_version: i32,
    /// Accounts with a deal closed won or lost.
    pub closed_accounts: usize,
    /// Accounts scored (at most [`MAX_ACCOUNTS`]).
    pub accounts: usize,
    pub current: Metrics,
    pub proposed: Metrics,
    /// The latest closes first, at most [`MAX_ROWS`].
    pub rows: Vec<Row>,
}

/// Precision, recall and AUC of `(won, score, tier)` outcomes.
pub fn metrics(outcomes: &[(bool, i32, &str)]) -> Metrics {
    let won: Vec<i32> = outcomes.iter().filter(|o| o.0).map(|o| o.1).collect();
    let lost: Vec<i32> = outcomes.iter().filter(|o| !o.0).map(|o| o.1).collect();
    let hot_won = outcomes.iter().filter(|o| o.0 && o.2 == "HOT").count();
    let hot_lost = outcomes.iter().filter(|o| !o.0 && o.2 == "HOT").count();
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    let auc = (!won.is_empty() && !lost.is_empty()).then(|| {
        let mut wins = 0.0;
        for w in &won {
            for l in &lost {
                wins += match w.cmp(l) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        wins / (won.len() * lost.len()) as f64
    });
    Metrics {
        won: won.len(),
        lost: lost.len(),
        hot_won,
        hot_lost,
        precision: ratio(hot_won, hot_won + hot_lost),
        recall: ratio(hot_won, won.len()),
        auc,
    }
}

/// Each account's latest close: `(account, won, closed at)`, latest first.
async fn outcomes(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, bool, DateTime<Utc>)>> {
    type Closed = (
        Uuid,
        Option<Uuid>,
        String,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
    );
    let rows: Vec<Closed> = deals::Entity::find()
        .select_only()
        .column(deals::Column::Id)
        .column(deals::Column::AccountId)
        .column(deals::Column::Stage)
        .column(deals::Column::ClosedAt)
        .column(deals::Column::UpdatedAt)
        .filter(deals::Column::OrganizationId.eq(organization_id))
        .filter(deals::Column::AccountId.is_not_null())
        .filter(deals::Column::Stage.is_in(crate::crm::deals::CLOSED.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let mut latest: HashMap<Uuid, (DateTime<Utc>, Uuid, bool)> = HashMap::new();
    for (id, account, stage, closed_at, updated_at) in rows {
        let Some(account) = account else { continue };
        let key = (closed_at.unwrap_or(updated_at), id, stage == "CLOSED_WON");
        let e = latest.entry(account).or_insert(key);
        if (key.0, key.1) > (e.0, e.1) {
            *e = key;
        }
    }
    let mut out: Vec<(Uuid, bool, DateTime<Utc>)> = latest
        .into_iter()
        .map(|(a, (t, _, won))| (a, won, t))
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(b.0.cmp(&a.0)));
    Ok(out)
}

/// Backtests the current configuration and `proposed` on the organization's closed deals
/// (ADMIN). Nothing is saved. A bad `proposed` is refused naming its field under `config.`.
pub async fn backtest(
    db: &impl ConnectionTrait,
    actor: &Actor,
    proposed: Config,
) -> Result<Backtest> {
    admin(actor)?;
    proposed.validate("config.")?;
    let org = actor.organization_id;
    let (current_version, current) = current_config(db, org).await?;
    let closed = outcomes(db, org).await?;
    let closed_accounts = closed.len();
    let mut rows = Vec::new();
    for chunk in closed[..closed_accounts.min(MAX_ACCOUNTS)].chunks(500) {
        let at: Vec<(Uuid, DateTime<Utc>)> = chunk.iter().map(|(a, _, t)| (*a, *t)).collect();
        let mut inputs = load_inputs_as_of(db, org, &at).await?;
        for (account, won, closed_at) in chunk {
            // An account deleted since its deal closed has nothing to score.
            let Some((company, input)) = inputs.remove(account) else {
                continue;
            };
            let c = compute(&current, &input, *closed_at);
            let p = compute(&proposed, &input, *closed_at);
            rows.push(Row {
                account: company,
                won: *won,
                closed_at: *closed_at,
                current_score: c.score,
                current_tier: c.tier,
                proposed_score: p.score,
                proposed_tier: p.tier,
            });
        }
    }
    let current_m = metrics(
        &rows
            .iter()
            .map(|r| (r.won, r.current_score, r.current_tier))
            .collect::<Vec<_>>(),
    );
    let proposed_m = metrics(
        &rows
            .iter()
            .map(|r| (r.won, r.proposed_score, r.proposed_tier))
            .collect::<Vec<_>>(),
    );
    let accounts = rows.len();
    rows.truncate(MAX_ROWS);
    Ok(Backtest {
        current_version,
        closed_accounts,
        accounts,
        current: current_m,
        proposed: proposed_m,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_auc_by_hand() {
        let m = metrics(&[
            (true, 90, "HOT"),
            (true, 85, "HOT"),
            (true, 30, "COLD"),
            (false, 30, "COLD"),
            (false, 10, "INACTIVE"),
        ]);
        assert_eq!((m.won, m.lost, m.hot_won, m.hot_lost), (3, 2, 2, 0));
        assert_eq!(m.precision, Some(1.0));
        assert_eq!(m.recall, Some(2.0 / 3.0));
        // Pairs: 90 and 85 beat both (4), 30 ties 30 (0.5) and beats 10 (1): 5.5 of 6.
        assert_eq!(m.auc, Some(5.5 / 6.0));
        let none = metrics(&[(true, 10, "INACTIVE")]);
        assert_eq!(
            (none.precision, none.recall, none.auc),
            (None, Some(0.0), None)
        );
        assert_eq!(metrics(&[]).recall, None);
    }
}
