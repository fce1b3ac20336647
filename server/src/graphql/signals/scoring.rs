//! Scoring configuration and usage as GraphQL types: thresholds, weights, half-lives, versions,
//! the preview of tier changes.

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::crm::types::Account;

use super::*;

/// A named scoring model: which factors, computed how (`docs/scoring.md`).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ScoringModel {
    /// The original's 7 factors: ratios and steps that one fresh event maxes out; reproduces
    /// the reference's worked example exactly.
    Classic,
    /// Volume-aware: saturating counts of people, signals, active days and types, and decayed
    /// activity; one signal from one person is COLD. New organizations start with it.
    Calibrated,
}

impl From<domain::scoring::Preset> for ScoringModel {
    fn from(p: domain::scoring::Preset) -> Self {
        match p {
            domain::scoring::Preset::Classic => ScoringModel::Classic,
            domain::scoring::Preset::Calibrated => ScoringModel::Calibrated,
        }
    }
}

impl From<ScoringModel> for domain::scoring::Preset {
    fn from(m: ScoringModel) -> Self {
        match m {
            ScoringModel::Classic => domain::scoring::Preset::Classic,
            ScoringModel::Calibrated => domain::scoring::Preset::Calibrated,
        }
    }
}

/// Tier thresholds.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "TierThresholdsInput")]
pub struct TierThresholds {
    pub hot: i32,
    pub warm: i32,
    pub cold: i32,
}

/// A factor's weight: its maximum points (the factors are the model's).
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "FactorWeightInput")]
pub struct FactorWeight {
    pub factor: String,
    pub weight: f64,
}

/// A signal type's half-life, in days.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "HalfLifeInput")]
pub struct HalfLife {
    pub signal_type: String,
    pub days: f64,
}

/// An organization's scoring configuration.
#[derive(SimpleObject)]
pub struct ScoringConfig {
    /// 0 while the defaults were never changed.
    pub version: i32,
    /// The model preset; `weights` name its factors.
    pub model: ScoringModel,
    pub thresholds: TierThresholds,
    pub weights: Vec<FactorWeight>,
    pub half_lives: Vec<HalfLife>,
    /// For types not listed.
    pub default_half_life: f64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<domain::scoring::ConfigVersion> for ScoringConfig {
    fn from(v: domain::scoring::ConfigVersion) -> Self {
        let c = v.config;
        ScoringConfig {
            version: v.version,
            model: c.model.into(),
            thresholds: TierThresholds {
                hot: c.thresholds.hot,
                warm: c.thresholds.warm,
                cold: c.thresholds.cold,
            },
            weights: c
                .model
                .factors()
                .iter()
                .map(|(n, _, _)| FactorWeight {
                    factor: (*n).to_owned(),
                    weight: c.weight(n),
                })
                .collect(),
            half_lives: c
                .half_lives
                .iter()
                .map(|(t, d)| HalfLife {
                    signal_type: t.clone(),
                    days: *d,
                })
                .collect(),
            default_half_life: c.default_half_life,
            updated_at: v.created_at,
        }
    }
}

/// Changes to the scoring configuration; what is left out keeps its current value, and
/// half-lives given are added to (or replace entries of) the current table. A different
/// `model` starts from that model's default weights (the old weights weighed other factors);
/// `weights` given with it then apply to the new model's factors.
#[derive(InputObject, Default)]
pub struct ScoringConfigInput {
    pub model: Option<ScoringModel>,
    pub thresholds: Option<TierThresholds>,
    pub weights: Option<Vec<FactorWeight>>,
    pub half_lives: Option<Vec<HalfLife>>,
    pub default_half_life: Option<f64>,
}

impl ScoringConfigInput {
    pub(crate) fn apply(self, mut c: domain::scoring::Config) -> domain::scoring::Config {
        if let Some(m) = self.model {
            c = c.with_model(m.into());
        }
        if let Some(t) = self.thresholds {
            c.thresholds = domain::scoring::Thresholds {
                hot: t.hot,
                warm: t.warm,
                cold: t.cold,
            };
        }
        for w in self.weights.unwrap_or_default() {
            c.weights.insert(w.factor, w.weight);
        }
        for h in self.half_lives.unwrap_or_default() {
            c.half_lives.insert(h.signal_type, h.days);
        }
        if let Some(d) = self.default_half_life {
            c.default_half_life = d;
        }
        c
    }
}

/// An account whose tier a proposed configuration would change.
#[derive(SimpleObject)]
pub struct TierChangePreview {
    pub account: Account,
    pub current_score: Option<i32>,
    pub current_tier: Option<Tier>,
    pub new_score: i32,
    pub new_tier: Tier,
}

/// Where a recompute of every score stands.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum ScoreRecomputeStatus {
    /// Queued or rescoring (`processed` of `total` done).
    Running,
    Completed,
    /// Stopped for good (`lastError` says why); `recomputeScores` starts a new one.
    Failed,
}

/// A recompute of every scored or recently active account of the organization
/// (`recomputeScores`), done a chunk of accounts at a time by background jobs and resumed after
/// a restart where its last committed chunk ended.
pub struct ScoreRecompute(pub entity::score_recomputes::Model);

#[async_graphql::Object]
impl ScoreRecompute {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> ScoreRecomputeStatus {
        match self.0.status.as_str() {
            domain::scoring::status::COMPLETED => ScoreRecomputeStatus::Completed,
            domain::scoring::status::FAILED => ScoreRecomputeStatus::Failed,
            _ => ScoreRecomputeStatus::Running,
        }
    }
    /// Accounts rescored so far.
    async fn processed(&self) -> i64 {
        self.0.processed
    }
    /// Accounts to rescore: counted at the start, and set to `processed` on completion (accounts
    /// that became scorable meanwhile are rescored too).
    async fn total(&self) -> i64 {
        self.0.total
    }
    /// The background job carrying the recompute now (see `jobs`).
    async fn job_id(&self) -> Option<ID> {
        self.0.job_id.map(|j| ID(j.to_string()))
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When progress was last recorded.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}
