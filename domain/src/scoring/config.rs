//! Per-organization, versioned scoring configuration: the model preset, weights, half-lives,
//! tier thresholds, and the preview of a proposed configuration.
//!
//! An organization without a saved version scores with `Config::default()`, the CALIBRATED
//! preset. Organizations that existed before CALIBRATED were pinned to CLASSIC by migration
//! 000020 (a version whose stored JSON is `{"model": "classic"}`), and a stored version without
//! a `model` predates the presets and is CLASSIC too, so the upgrade changed no one's scores.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{companies, scoring_configs};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    DEFAULT_HALF_LIFE, HALF_LIVES, Preset, compute, load_inputs, scorable_accounts, stored_scores,
};
use crate::{Actor, Error, FieldError, Result, Role};
/// Tier thresholds: a score at or above `hot` is HOT, and so on; below `cold` INACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub hot: i32,
    pub warm: i32,
    pub cold: i32,
}

/// An organization's scoring configuration. The preset names the factors; weights are each
/// factor's maximum points (the preset's defaults sum to 100); half-lives override the table
/// per type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub model: Preset,
    pub thresholds: Thresholds,
    pub weights: BTreeMap<String, f64>,
    pub half_lives: BTreeMap<String, f64>,
    pub default_half_life: f64,
}

/// The configuration of new organizations: the CALIBRATED preset at its defaults.
impl Default for Config {
    fn default() -> Self {
        Config::new(Preset::default())
    }
}

/// A stored version as written: any field may be missing (the migration's pin holds only the
/// model; versions saved before the presets have no model, and are CLASSIC).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    model: Option<Preset>,
    thresholds: Option<Thresholds>,
    weights: Option<BTreeMap<String, f64>>,
    half_lives: Option<BTreeMap<String, f64>>,
    default_half_life: Option<f64>,
}

impl Config {
    /// A preset at its defaults: its weights, the half-life table, HOT 80 / WARM 50 / COLD 20.
    pub fn new(model: Preset) -> Self {
        Config {
            model,
            thresholds: Thresholds {
                hot: 80,
                warm: 50,
                cold: 20,
            },
            weights: model
                .factors()
                .iter()
                .map(|(n, w, _)| ((*n).to_owned(), *w))
                .collect(),
            half_lives: HALF_LIVES
                .iter()
                .map(|(t, h)| ((*t).to_owned(), *h))
                .collect(),
            default_half_life: DEFAULT_HALF_LIFE,
        }
    }

    /// Reads a stored version: what it leaves out is its preset's default.
    pub fn from_stored(value: serde_json::Value) -> Result<Self> {
        let s: Stored = serde_json::from_value(value)
            .map_err(|e| Error::Internal(format!("stored scoring config: {e}")))?;
        let mut c = Config::new(s.model.unwrap_or(Preset::Classic));
        if let Some(t) = s.thresholds {
            c.thresholds = t;
        }
        if let Some(w) = s.weights {
            c.weights = w;
        }
        if let Some(h) = s.half_lives {
            c.half_lives = h;
        }
        if let Some(d) = s.default_half_life {
            c.default_half_life = d;
        }
        Ok(c)
    }

    /// The same configuration under another preset: the weights become the new preset's
    /// defaults (the old ones weighed other factors); thresholds and half-lives stay.
    pub fn with_model(mut self, model: Preset) -> Self {
        if model != self.model {
            self.weights = Config::new(model).weights;
            self.model = model;
        }
        self
    }

    /// The half-life of a type: its own entry, else its canonical type's (a configuration may
    /// name an alias), else the default.
    pub fn half_life(&self, signal_type: &str) -> f64 {
        self.half_lives
            .get(signal_type)
            .or_else(|| {
                self.half_lives
                    .get(&crate::signals::types::canonical(signal_type))
            })
            .copied()
            .unwrap_or(self.default_half_life)
    }

    pub fn weight(&self, factor: &str) -> f64 {
        self.weights.get(factor).copied().unwrap_or(0.0)
    }

    pub fn tier(&self, score: i32) -> &'static str {
        let t = self.thresholds;
        if score >= t.hot {
            "HOT"
        } else if score >= t.warm {
            "WARM"
        } else if score >= t.cold {
            "COLD"
        } else {
            "INACTIVE"
        }
    }

    /// Checks the configuration, naming offending fields under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let mut errors = Vec::new();
        let f = |n: &str| format!("{prefix}{n}");
        let t = self.thresholds;
        if !(t.hot > t.warm && t.warm > t.cold && t.cold > 0 && t.hot <= 100) {
            errors.push(FieldError::new(
                f("thresholds"),
                "must satisfy 100 ≥ hot > warm > cold > 0",
            ));
        }
        for (name, w) in &self.weights {
            if !self.model.factors().iter().any(|(n, _, _)| n == name) {
                errors.push(FieldError::new(
                    f(&format!("weights.{name}")),
                    format!("is not a factor of the {} model", self.model.as_str()),
                ));
            } else if !(0.0..=100.0).contains(w) || !w.is_finite() {
                errors.push(FieldError::new(
                    f(&format!("weights.{name}")),
                    "must be between 0 and 100",
                ));
            }
        }
        if self
            .model
            .factors()
            .iter()
            .map(|(n, _, _)| self.weight(n))
            .sum::<f64>()
            <= 0.0
        {
            errors.push(FieldError::new(f("weights"), "must not all be zero"));
        }
        for (ty, h) in &self.half_lives {
            if ty.trim().is_empty() || ty.len() > 100 {
                errors.push(FieldError::new(
                    f("halfLives"),
                    "signal types must be 1 to 100 characters",
                ));
            }
            if !(0.1..=3650.0).contains(h) {
                errors.push(FieldError::new(
                    f(&format!("halfLives.{ty}")),
                    "must be between 0.1 and 3650 days",
                ));
            }
        }
        if !(0.1..=3650.0).contains(&self.default_half_life) {
            errors.push(FieldError::new(
                f("defaultHalfLife"),
                "must be between 0.1 and 3650 days",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// The current configuration and its version (0 = the defaults of new organizations, never
/// saved).
pub async fn current_config(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<(i32, Config)> {
    let row = scoring_configs::Entity::find()
        .filter(scoring_configs::Column::OrganizationId.eq(organization_id))
        .order_by_desc(scoring_configs::Column::Version)
        .one(db)
        .await?;
    Ok(match row {
        None => (0, Config::default()),
        Some(r) => (r.version, Config::from_stored(r.config)?),
    })
}

/// A configuration version as the API shows it.
#[derive(Debug, Clone)]
pub struct ConfigVersion {
    pub version: i32,
    pub config: Config,
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
}

/// The organization's current scoring configuration (any member).
pub async fn config(db: &impl ConnectionTrait, actor: &Actor) -> Result<ConfigVersion> {
    actor.require_scope("accounts:read")?;
    let row = scoring_configs::Entity::find()
        .filter(scoring_configs::Column::OrganizationId.eq(actor.organization_id))
        .order_by_desc(scoring_configs::Column::Version)
        .one(db)
        .await?;
    let (version, config) = current_config(db, actor.organization_id).await?;
    Ok(ConfigVersion {
        version,
        config,
        created_at: row.as_ref().map(|r| r.created_at),
        created_by: row.and_then(|r| r.created_by),
    })
}

pub(super) fn admin(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// Saves `config` as the next version (ADMIN). Scores move to it as accounts are rescored;
/// [`recompute_all`] applies it at once.
pub async fn update_config(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &crate::Meta,
    config: Config,
) -> Result<ConfigVersion> {
    admin(actor)?;
    config.validate("input.")?;
    let txn = crate::db::begin(db).await?;
    let (version, _) = current_config(&txn, actor.organization_id).await?;
    let now = Utc::now();
    let row = scoring_configs::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        version: Set(version + 1),
        config: Set(serde_json::to_value(&config).map_err(|e| Error::Internal(e.to_string()))?),
        created_by: Set(actor.user_id()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        crate::error::on_unique(e, "input", "the configuration changed meanwhile; try again")
    })?;
    crate::audit::record(
        &txn,
        meta,
        crate::audit::Entry::by(actor, "scoring.config_updated")
            .target("scoring_config", row.id)
            .metadata(json!({"version": row.version, "model": config.model.as_str()})),
    )
    .await?;
    txn.commit().await?;
    Ok(ConfigVersion {
        version: row.version,
        config,
        created_at: Some(now),
        created_by: row.created_by,
    })
}

/// One account whose tier a proposed configuration would change.
#[derive(Debug, Clone)]
pub struct PreviewRow {
    pub account: companies::Model,
    pub current_score: Option<i32>,
    pub current_tier: Option<String>,
    pub new_score: i32,
    pub new_tier: &'static str,
}

/// Scores every scorable account under `config` without saving anything, and returns those
/// whose tier would change (ADMIN), largest score change first.
pub async fn preview(
    db: &DatabaseConnection,
    actor: &Actor,
    config: Config,
) -> Result<Vec<PreviewRow>> {
    admin(actor)?;
    config.validate("input.")?;
    let org = actor.organization_id;
    let ids = scorable_accounts(db, org).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for chunk in ids.chunks(500) {
        let inputs = load_inputs(db, org, chunk, now).await?;
        let old = stored_scores(db, org, chunk).await?;
        for (id, (company, input)) in inputs {
            let c = compute(&config, &input, now);
            let prev = old.get(&id);
            if prev.map(|(_, tier)| tier.as_str()) != Some(c.tier) {
                rows.push(PreviewRow {
                    account: company,
                    current_score: prev.map(|(score, _)| *score),
                    current_tier: prev.map(|(_, tier)| tier.clone()),
                    new_score: c.score,
                    new_tier: c.tier,
                });
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.new_score - r.current_score.unwrap_or(0)).abs()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_versions_without_a_model_are_classic() {
        // The migration's pin: only the model.
        let pin = Config::from_stored(json!({"model": "classic"})).unwrap();
        assert_eq!(pin, Config::new(Preset::Classic));
        // A version saved before the presets: every field but the model.
        let mut old = serde_json::to_value(Config::new(Preset::Classic)).unwrap();
        old.as_object_mut().unwrap().remove("model");
        old["thresholds"] = json!({"hot": 70, "warm": 50, "cold": 20});
        let c = Config::from_stored(old).unwrap();
        assert_eq!(c.model, Preset::Classic);
        assert_eq!(c.thresholds.hot, 70);
        assert_eq!(c.weight("usage_velocity"), 20.0);
        // A version saved now reads back as saved.
        let now = Config::new(Preset::Calibrated);
        assert_eq!(
            Config::from_stored(serde_json::to_value(&now).unwrap()).unwrap(),
            now
        );
        assert!(Config::from_stored(json!({"model": "fancy"})).is_err());
    }

    #[test]
    fn switching_models_resets_the_weights_and_validates_names() {
        let mut c = Config::new(Preset::Classic);
        c.thresholds.hot = 90;
        c.weights.insert("user_count".into(), 30.0);
        let switched = c.clone().with_model(Preset::Calibrated);
        assert_eq!(switched.thresholds.hot, 90);
        assert_eq!(switched.weights, Config::new(Preset::Calibrated).weights);
        assert_eq!(c.clone().with_model(Preset::Classic), c);
        let mut wrong = switched;
        wrong.weights.insert("user_count".into(), 10.0);
        let Err(Error::Validation(errors)) = wrong.validate("input.") else {
            panic!("a CLASSIC factor under CALIBRATED must be refused");
        };
        assert_eq!(errors[0].field, "input.weights.user_count");
    }
}
