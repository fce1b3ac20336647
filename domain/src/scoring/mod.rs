//! PQA scoring (DESIGN 6, issue 6): the original's 7-factor model with per-organization,
//! versioned configuration, and the debounced "rescore this account" job.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{account_scores, companies, contacts, rescore_requests, scoring_configs, signals};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queue::{self, NewJob};
use crate::{Actor, Error, FieldError, Result, Role};

/// The queue and job that recompute an organization's requested scores.
pub const QUEUE: &str = "score-computation";
pub const JOB: &str = "compute-score";
/// How long a rescore waits after the first signal that asked for it, so a burst of signals is
/// scored a few times rather than once per signal.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// Accounts rescored per transaction.
const CHUNK: usize = 500;
/// Chunks one job rescores before it hands the rest to a new job (so one busy organization does
/// not hold a worker slot for ever).
const CHUNKS_PER_JOB: usize = 20;

/// Asks for `account_ids` to be rescored soon, in the caller's transaction: appends a request
/// per account and enqueues the organization's debounced `compute-score` job. While that job
/// waits, further requests join it (the queue's dedupe key), so an ingest costs two statements
/// however many accounts it touches, and a burst of signals is scored a few times, not once per
/// signal.
pub async fn request_rescore(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
) -> Result<()> {
    if account_ids.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    for chunk in account_ids.chunks(crate::db::rows_per_insert::<rescore_requests::Entity>()) {
        let rows = chunk.iter().map(|a| rescore_requests::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(organization_id),
            account_id: Set(*a),
            requested_at: Set(now),
        });
        rescore_requests::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    enqueue_job(db, organization_id, now + DEBOUNCE).await
}

async fn enqueue_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    run_at: DateTime<Utc>,
) -> Result<()> {
    let mut job = NewJob::new(QUEUE, JOB, json!({ "organizationId": organization_id }))
        .organization(organization_id)
        .dedupe(format!("score:{organization_id}"))
        .run_at(run_at);
    job.max_attempts = 3;
    job.backoff_base = Duration::from_secs(2);
    queue::enqueue(db, job).await?;
    Ok(())
}

/// Rescores every account of the organization whose rescore was requested (the
/// `compute-score` job), up to [`CHUNK`] requests per transaction: the scores and the deletion
/// of exactly the requests read commit together, so a crash leaves them to the next attempt and
/// a request made meanwhile stays for the next job. Returns how many accounts were scored.
pub async fn rescore_requested(db: &DatabaseConnection, organization_id: Uuid) -> Result<usize> {
    let mut scored = 0;
    for _ in 0..CHUNKS_PER_JOB {
        let txn = crate::db::begin(db).await?;
        // One rescore of an organization at a time (a second job waits for the first chunk and
        // then reads only what is left).
        crate::db::advisory_xact_lock(&txn, &[crate::db::lock_key(organization_id, "rescore")])
            .await?;
        let requests: Vec<(Uuid, Uuid)> = rescore_requests::Entity::find()
            .select_only()
            .column(rescore_requests::Column::Id)
            .column(rescore_requests::Column::AccountId)
            .filter(rescore_requests::Column::OrganizationId.eq(organization_id))
            .order_by_asc(rescore_requests::Column::Id)
            .limit(CHUNK as u64)
            .into_tuple()
            .all(&txn)
            .await?;
        if requests.is_empty() {
            txn.commit().await?;
            return Ok(scored);
        }
        let mut accounts: Vec<Uuid> = requests.iter().map(|(_, a)| *a).collect();
        accounts.sort();
        accounts.dedup();
        scored += rescore_in(&txn, organization_id, &accounts).await?.len();
        rescore_requests::Entity::delete_many()
            .filter(rescore_requests::Column::Id.is_in(requests.into_iter().map(|(id, _)| id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    // More is waiting: a fresh job takes it (behind other organizations' jobs).
    enqueue_job(db, organization_id, Utc::now()).await?;
    Ok(scored)
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// Signals older than this (by event time) do not count.
pub const WINDOW_DAYS: i64 = 90;
/// Day boundaries of the model (the 90-day window, "the last 7 days", "≤ 1 day since the
/// latest signal", …) are inclusive and allow this much for the moment between a signal's
/// arrival and its scoring: a signal sent "exactly 1 day ago" is still 1 day old when the rescore
/// runs seconds later (and the reference's worked example comes out exact), while 1.5 days is
/// past the 1-day boundary, as the published formulas say.
pub const BOUNDARY_GRACE: chrono::Duration = chrono::Duration::minutes(10);
/// A score moving at least this much is RISING or FALLING.
pub const TREND_DELTA: i32 = 5;

/// The factors, in order, with their default (maximum) points.
pub const FACTORS: &[(&str, f64, &str)] = &[
    (
        "user_count",
        20.0,
        "4 points per distinct active person in 90 days",
    ),
    (
        "usage_velocity",
        20.0,
        "share of the decayed activity of 90 days that happened in the last 7",
    ),
    (
        "feature_breadth",
        15.0,
        "3 points per distinct signal type in 90 days",
    ),
    (
        "engagement_recency",
        15.0,
        "days since the latest signal: ≤1 → 15, ≤3 → 12, ≤7 → 8, ≤14 → 4",
    ),
    (
        "signal_freshness",
        10.0,
        "average decay weight of the signals of 90 days",
    ),
    (
        "seniority_signals",
        10.0,
        "5 points per senior contact (VP, Director, Head, CTO, CEO, Founder, Chief, President)",
    ),
    (
        "firmographic_fit",
        10.0,
        "company size: SMALL 10, STARTUP/MEDIUM 8, LARGE 6, ENTERPRISE 4, unknown 5",
    ),
];

/// Half-lives in days, per signal type: the original's table plus every type DevSignal's
/// connectors emit (the original missed its own `npm_downloads`, `pr_merged`, …).
pub const HALF_LIVES: &[(&str, f64)] = &[
    ("signup", 60.0),
    ("demo_request", 45.0),
    ("app_installed", 45.0),
    ("repo_fork", 28.0),
    ("github_fork", 28.0),
    ("pull_request", 28.0),
    ("github_pr", 28.0),
    ("pr_opened", 28.0),
    ("pr_merged", 28.0),
    ("pr_closed", 28.0),
    ("package_install", 21.0),
    ("repo_clone", 21.0),
    ("issue_opened", 21.0),
    ("github_issue", 21.0),
    ("issue_closed", 21.0),
    ("feature_request", 21.0),
    ("code_push", 21.0),
    ("github_commit", 21.0),
    ("release_published", 21.0),
    ("discord_member_joined", 21.0),
    ("linkedin_company_follow", 21.0),
    ("repo_star", 14.0),
    ("github_star", 14.0),
    ("repo_unstar", 14.0),
    ("repo_watch", 14.0),
    ("app_uninstalled", 14.0),
    ("api_call", 14.0),
    ("pricing_page_view", 14.0),
    ("community_post", 14.0),
    ("support_ticket", 14.0),
    ("npm_download", 10.0),
    ("npm_downloads", 10.0),
    ("pypi_download", 10.0),
    ("pypi_downloads", 10.0),
    ("social_mention", 10.0),
    ("twitter_mention", 10.0),
    ("twitter_praise", 10.0),
    ("twitter_question", 10.0),
    ("twitter_complaint", 10.0),
    ("discord_reaction", 10.0),
    ("linkedin_post_engagement", 10.0),
    ("docs_visit", 7.0),
    ("docs_read", 7.0),
    ("blog_read", 7.0),
    ("linkedin_page_view", 7.0),
    ("page_view", 5.0),
    ("screen_view", 5.0),
];

/// Half-life of any type not in the table.
pub const DEFAULT_HALF_LIFE: f64 = 14.0;

/// Titles containing one of these whole words make a contact senior.
pub const SENIOR_WORDS: &[&str] = &[
    "vp",
    "director",
    "head",
    "cto",
    "ceo",
    "founder",
    "chief",
    "president",
];

/// Tier thresholds: a score at or above `hot` is HOT, and so on; below `cold` INACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub hot: i32,
    pub warm: i32,
    pub cold: i32,
}

/// An organization's scoring configuration. Weights are each factor's maximum points (the
/// original's 20/20/15/15/10/10/10 by default); half-lives override the table per type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub thresholds: Thresholds,
    pub weights: BTreeMap<String, f64>,
    pub half_lives: BTreeMap<String, f64>,
    pub default_half_life: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            thresholds: Thresholds {
                hot: 80,
                warm: 50,
                cold: 20,
            },
            weights: FACTORS
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
}

impl Config {
    pub fn half_life(&self, signal_type: &str) -> f64 {
        self.half_lives
            .get(signal_type)
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
            if !FACTORS.iter().any(|(n, _, _)| n == name) {
                errors.push(FieldError::new(
                    f(&format!("weights.{name}")),
                    "is not a factor",
                ));
            } else if !(0.0..=100.0).contains(w) || !w.is_finite() {
                errors.push(FieldError::new(
                    f(&format!("weights.{name}")),
                    "must be between 0 and 100",
                ));
            }
        }
        if FACTORS.iter().map(|(n, _, _)| self.weight(n)).sum::<f64>() <= 0.0 {
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

/// One signal as the model sees it.
#[derive(Debug, Clone)]
pub struct SignalPoint {
    pub signal_type: String,
    pub timestamp: DateTime<Utc>,
    pub contact_id: Option<Uuid>,
}

/// What the model reads about one account.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Signals of the last 90 days.
    pub signals: Vec<SignalPoint>,
    /// The latest signal ever (any age).
    pub last_signal_at: Option<DateTime<Utc>>,
    /// Company size (STARTUP, SMALL, MEDIUM, LARGE, ENTERPRISE), any case.
    pub size: Option<String>,
    /// Titles of the account's contacts.
    pub titles: Vec<String>,
}

/// One factor of a score: its points, maximum and what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    pub name: String,
    pub points: f64,
    pub max_points: f64,
    pub description: String,
    pub inputs: Value,
}

/// A computed score.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    pub score: i32,
    pub tier: &'static str,
    pub factors: Vec<Factor>,
    pub signal_count: i32,
    pub user_count: i32,
    pub last_signal_at: Option<DateTime<Utc>>,
}

/// Decay weight of a signal `age_days` old: `exp(−ln2 / halfLife × age)`, age clamped at 0.
pub fn decay(half_life: f64, age_days: f64) -> f64 {
    (-(std::f64::consts::LN_2 / half_life) * age_days.max(0.0)).exp()
}

/// `true` when a title holds one of [`SENIOR_WORDS`] as a whole word ("Contractor" is not a
/// CTO; "Co-Founder" is a founder).
pub fn is_senior(title: &str) -> bool {
    title
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| SENIOR_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s)))
}

fn days(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 86_400_000.0
}

/// The start of the 90-day window at `now` (with [`BOUNDARY_GRACE`]).
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(WINDOW_DAYS) - BOUNDARY_GRACE
}

/// The 7-factor model of reference 2.1 at time `now`. Ages are exact (fractional days); the
/// day boundaries allow [`BOUNDARY_GRACE`].
pub fn compute(config: &Config, inputs: &Inputs, now: DateTime<Utc>) -> Computed {
    let grace = days(BOUNDARY_GRACE);
    let window_start = window_start(now);
    let signals: Vec<&SignalPoint> = inputs
        .signals
        .iter()
        .filter(|s| s.timestamp >= window_start)
        .collect();
    let n = signals.len();
    let mut actors: Vec<Uuid> = signals.iter().filter_map(|s| s.contact_id).collect();
    actors.sort();
    actors.dedup();
    let mut types: Vec<&str> = signals.iter().map(|s| s.signal_type.as_str()).collect();
    types.sort();
    types.dedup();
    let mut total_w = 0.0;
    let mut week_w = 0.0;
    for s in &signals {
        let age = days(now - s.timestamp);
        let w = decay(config.half_life(&s.signal_type), age);
        total_w += w;
        if age <= 7.0 + grace {
            week_w += w;
        }
    }
    let scale = |name: &str, points: f64| {
        let default = FACTORS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(1.0, |(_, w, _)| *w);
        points * config.weight(name) / default
    };
    let users = (4.0 * actors.len() as f64).min(20.0);
    let velocity = if n == 0 || total_w <= 0.0 {
        0.0
    } else {
        (20.0 * week_w / total_w).round()
    };
    let breadth = (3.0 * types.len() as f64).min(15.0);
    let since = inputs.last_signal_at.map(|t| days(now - t).max(0.0));
    let recency = match since {
        None => 0.0,
        Some(d) if d <= 1.0 + grace => 15.0,
        Some(d) if d <= 3.0 + grace => 12.0,
        Some(d) if d <= 7.0 + grace => 8.0,
        Some(d) if d <= 14.0 + grace => 4.0,
        Some(_) => 0.0,
    };
    let avg_w = if n == 0 { 0.0 } else { total_w / n as f64 };
    let freshness = if n == 0 {
        0.0
    } else if avg_w >= 0.8 {
        10.0
    } else if avg_w >= 0.6 {
        8.0
    } else if avg_w >= 0.4 {
        6.0
    } else if avg_w >= 0.2 {
        3.0
    } else {
        0.0
    };
    let seniors = inputs.titles.iter().filter(|t| is_senior(t)).count();
    let seniority = (5.0 * seniors as f64).min(10.0);
    let size = inputs.size.as_deref().map(str::to_uppercase);
    let firmo = match size.as_deref() {
        Some("STARTUP") => 8.0,
        Some("SMALL") => 10.0,
        Some("MEDIUM") => 8.0,
        Some("LARGE") => 6.0,
        Some("ENTERPRISE") => 4.0,
        _ => 5.0,
    };
    let raw = [
        (users, json!({"distinctPeople": actors.len()})),
        (
            velocity,
            json!({"weightLast7Days": round3(week_w), "weight90Days": round3(total_w)}),
        ),
        (
            breadth,
            json!({"distinctTypes": types.len(), "types": types}),
        ),
        (
            recency,
            json!({"daysSinceLastSignal": since.map(|d| (d * 100.0).round() / 100.0)}),
        ),
        (
            freshness,
            json!({"averageWeight": round3(avg_w), "signals": n}),
        ),
        (seniority, json!({"seniorContacts": seniors})),
        (firmo, json!({"size": size})),
    ];
    let factors: Vec<Factor> = FACTORS
        .iter()
        .zip(raw)
        .map(|((name, _, desc), (points, inputs))| Factor {
            name: (*name).to_owned(),
            points: round3(scale(name, points)),
            max_points: config.weight(name),
            description: (*desc).to_owned(),
            inputs,
        })
        .collect();
    let sum: f64 = factors.iter().map(|f| f.points).sum();
    let score = (sum.round() as i32).clamp(0, 100);
    Computed {
        score,
        tier: config.tier(score),
        factors,
        signal_count: n as i32,
        user_count: actors.len() as i32,
        last_signal_at: inputs.last_signal_at,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// RISING / FALLING when the score moved at least [`TREND_DELTA`], else STABLE (also the first
/// time).
pub fn trend(old: Option<i32>, new: i32) -> &'static str {
    match old {
        Some(o) if new - o >= TREND_DELTA => "RISING",
        Some(o) if new - o <= -TREND_DELTA => "FALLING",
        _ => "STABLE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: DateTime<Utc>, days: i64, t: &str, who: u128) -> SignalPoint {
        SignalPoint {
            signal_type: t.into(),
            timestamp: now - chrono::Duration::days(days),
            contact_id: Some(Uuid::from_u128(who)),
        }
    }

    #[test]
    fn the_worked_example_scores_73_warm() {
        let now = Utc::now();
        let mut signals = Vec::new();
        for i in 0..3 {
            signals.push(at(now, 1, "api_call", i % 3 + 1));
        }
        for _ in 0..2 {
            signals.push(at(now, 3, "page_view", 1));
        }
        for _ in 0..2 {
            signals.push(at(now, 10, "repo_star", 2));
        }
        for _ in 0..3 {
            signals.push(at(now, 20, "signup", 3));
        }
        let inputs = Inputs {
            last_signal_at: Some(now - chrono::Duration::days(1)),
            signals,
            size: Some("SMALL".into()),
            titles: vec!["VP Engineering".into(), "Contractor".into()],
        };
        // Scored a little later than sent: whole days keep the example exact.
        let c = compute(
            &Config::default(),
            &inputs,
            now + chrono::Duration::seconds(3),
        );
        let points: Vec<f64> = c.factors.iter().map(|f| f.points).collect();
        assert_eq!(points, vec![12.0, 11.0, 12.0, 15.0, 8.0, 5.0, 10.0]);
        assert_eq!(c.score, 73);
        assert_eq!(c.tier, "WARM");
        assert_eq!(c.signal_count, 10);
        assert_eq!(c.user_count, 3);
    }

    #[test]
    fn day_boundaries_follow_the_formulas_with_a_small_grace() {
        let now = Utc::now();
        let one = |age: chrono::Duration, t: &str| Inputs {
            signals: vec![SignalPoint {
                signal_type: t.into(),
                timestamp: now - age,
                contact_id: None,
            }],
            last_signal_at: Some(now - age),
            ..Default::default()
        };
        let recency =
            |age| compute(&Config::default(), &one(age, "api_call"), now).factors[3].points;
        let hours = chrono::Duration::hours;
        assert_eq!(recency(hours(24) + chrono::Duration::seconds(5)), 15.0);
        assert_eq!(
            recency(hours(36)),
            12.0,
            "1.5 days is past the 1-day boundary"
        );
        assert_eq!(recency(hours(72)), 12.0);
        assert_eq!(recency(hours(7 * 24 + 1)), 4.0);
        assert_eq!(recency(hours(15 * 24)), 0.0);
        // The last 7 days: one signal just inside and one just outside.
        let mut two = one(hours(7 * 24) + chrono::Duration::seconds(5), "api_call");
        two.signals.push(SignalPoint {
            signal_type: "api_call".into(),
            timestamp: now - hours(8 * 24),
            contact_id: None,
        });
        let c = compute(&Config::default(), &two, now);
        let w7 = decay(14.0, 7.0);
        let w8 = decay(14.0, 8.0);
        assert_eq!(c.factors[1].points, (20.0 * w7 / (w7 + w8)).round());
        // Outside the 90-day window: not counted at all.
        let old = compute(&Config::default(), &one(hours(91 * 24), "signup"), now);
        assert_eq!(old.signal_count, 0);
    }

    #[test]
    fn an_empty_account_scores_5_inactive() {
        let c = compute(&Config::default(), &Inputs::default(), Utc::now());
        assert_eq!(c.score, 5);
        assert_eq!(c.tier, "INACTIVE");
    }

    #[test]
    fn decay_matches_the_reference_values() {
        assert!((decay(14.0, 14.0) - 0.5).abs() < 1e-9);
        assert!((decay(5.0, 7.0) - 0.379).abs() < 1e-3);
        assert!((decay(60.0, 90.0) - 0.354).abs() < 1e-3);
    }

    #[test]
    fn seniority_matches_whole_words() {
        assert!(is_senior("VP of Engineering"));
        assert!(is_senior("Co-Founder & CEO"));
        assert!(!is_senior("Contractor"));
        assert!(!is_senior("Headless CMS developer"));
    }

    #[test]
    fn trends_and_tiers() {
        assert_eq!(trend(None, 50), "STABLE");
        assert_eq!(trend(Some(45), 50), "RISING");
        assert_eq!(trend(Some(55), 50), "FALLING");
        assert_eq!(trend(Some(52), 50), "STABLE");
        let c = Config::default();
        assert_eq!(c.tier(80), "HOT");
        assert_eq!(c.tier(79), "WARM");
        assert_eq!(c.tier(20), "COLD");
        assert_eq!(c.tier(19), "INACTIVE");
    }
}

// ---------------------------------------------------------------------------------------------
// Storage: configuration versions, inputs, stored scores and their events
// ---------------------------------------------------------------------------------------------

/// The current configuration and its version (0 = the defaults, never saved).
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
        Some(r) => (
            r.version,
            serde_json::from_value(r.config)
                .map_err(|e| Error::Internal(format!("stored scoring config: {e}")))?,
        ),
    })
}

/// The model's inputs for each of `account_ids` that exists in the organization.
pub async fn load_inputs(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, (companies::Model, Inputs)>> {
    let mut out: HashMap<Uuid, (companies::Model, Inputs)> = HashMap::new();
    for chunk in account_ids.chunks(500) {
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
    let ids: Vec<Uuid> = out.keys().copied().collect();
    let since = window_start(now);
    for chunk in ids.chunks(500) {
        let rows: Vec<(Uuid, String, DateTime<Utc>, Option<Uuid>)> = signals::Entity::find()
            .select_only()
            .column(signals::Column::AccountId)
            .column(signals::Column::SignalType)
            .column(signals::Column::Timestamp)
            .column(signals::Column::ContactId)
            .filter(signals::Column::OrganizationId.eq(organization_id))
            .filter(signals::Column::AccountId.is_in(chunk.to_vec()))
            .filter(signals::Column::Timestamp.gte(since))
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
            .filter(signals::Column::AccountId.is_in(chunk.to_vec()))
            .group_by(signals::Column::AccountId)
            .into_tuple()
            .all(db)
            .await?;
        for (account, t) in latest {
            if let Some((_, i)) = out.get_mut(&account) {
                i.last_signal_at = t;
            }
        }
        let titles: Vec<(Option<Uuid>, Option<String>)> = contacts::Entity::find()
            .select_only()
            .column(contacts::Column::AccountId)
            .column(contacts::Column::Title)
            .filter(contacts::Column::OrganizationId.eq(organization_id))
            .filter(contacts::Column::AccountId.is_in(chunk.to_vec()))
            .filter(contacts::Column::Title.is_not_null())
            .into_tuple()
            .all(db)
            .await?;
        for (account, title) in titles {
            if let (Some(a), Some(t)) = (account, title)
                && let Some((_, i)) = out.get_mut(&a)
            {
                i.titles.push(t);
            }
        }
    }
    Ok(out)
}

fn factors_json(factors: &[Factor]) -> Value {
    serde_json::to_value(factors).unwrap_or_else(|_| json!([]))
}

/// Recomputes and stores the scores of `account_ids` ([`CHUNK`] per transaction), appending
/// `score.changed` when a score changes (or is first computed) and `tier.changed` on a real
/// transition. Accounts that no longer exist are skipped. Returns the stored rows.
pub async fn rescore(
    db: &DatabaseConnection,
    organization_id: Uuid,
    account_ids: &[Uuid],
) -> Result<Vec<account_scores::Model>> {
    let mut stored = Vec::new();
    for chunk in account_ids.chunks(CHUNK) {
        let txn = crate::db::begin(db).await?;
        stored.extend(rescore_in(&txn, organization_id, chunk).await?);
        txn.commit().await?;
    }
    Ok(stored)
}

/// [`rescore`] of one chunk inside `txn`, in a fixed number of statements: the inputs in four
/// reads, the scores in one upsert, the accounts' copies in one update, the events in one
/// append.
async fn rescore_in(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    chunk: &[Uuid],
) -> Result<Vec<account_scores::Model>> {
    let now = Utc::now();
    let (version, config) = current_config(txn, organization_id).await?;
    let inputs = load_inputs(txn, organization_id, chunk, now).await?;
    let old: HashMap<Uuid, account_scores::Model> = account_scores::Entity::find()
        .filter(account_scores::Column::OrganizationId.eq(organization_id))
        .filter(account_scores::Column::AccountId.is_in(chunk.to_vec()))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.account_id, s))
        .collect();
    let mut events = Vec::new();
    let mut stored = Vec::new();
    let mut copies: BTreeMap<i32, Vec<Uuid>> = BTreeMap::new();
    for id in chunk {
        let Some((company, input)) = inputs.get(id) else {
            continue;
        };
        let c = compute(&config, input, now);
        let prev = old.get(id);
        let row = account_scores::Model {
            account_id: *id,
            organization_id,
            score: c.score,
            tier: c.tier.to_owned(),
            trend: trend(prev.map(|p| p.score), c.score).to_owned(),
            factors: factors_json(&c.factors),
            signal_count: c.signal_count,
            user_count: c.user_count,
            last_signal_at: c.last_signal_at,
            config_version: version,
            computed_at: now,
        };
        if company.score != Some(c.score) {
            copies.entry(c.score).or_default().push(*id);
        }
        let payload = json!({
            "accountId": id,
            "accountName": company.name,
            "oldScore": prev.map(|p| p.score),
            "newScore": c.score,
            "oldTier": prev.map(|p| p.tier.clone()),
            "newTier": c.tier,
            "delta": c.score - prev.map_or(0, |p| p.score),
            "trend": row.trend,
            "computedAt": now,
        });
        if prev.is_none_or(|p| p.score != c.score) {
            events.push(("score.changed", payload.clone()));
        }
        if prev.is_some_and(|p| p.tier != c.tier) {
            events.push(("tier.changed", payload));
        }
        stored.push(row);
    }
    if stored.is_empty() {
        return Ok(stored);
    }
    account_scores::Entity::insert_many(
        stored
            .iter()
            .cloned()
            .map(account_scores::ActiveModel::from),
    )
    .on_conflict(
        OnConflict::column(account_scores::Column::AccountId)
            .update_columns([
                account_scores::Column::Score,
                account_scores::Column::Tier,
                account_scores::Column::Trend,
                account_scores::Column::Factors,
                account_scores::Column::SignalCount,
                account_scores::Column::UserCount,
                account_scores::Column::LastSignalAt,
                account_scores::Column::ConfigVersion,
                account_scores::Column::ComputedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    if !copies.is_empty() {
        // One statement: score = CASE WHEN id IN (…) THEN s1 WHEN id IN (…) THEN s2 … END.
        let mut case = sea_orm::sea_query::CaseStatement::new();
        let mut all = Vec::new();
        for (score, ids) in copies {
            all.extend(ids.iter().copied());
            case = case.case(companies::Column::Id.is_in(ids), Expr::val(score));
        }
        companies::Entity::update_many()
            .col_expr(
                companies::Column::Score,
                case.finally(Expr::col(companies::Column::Score)).into(),
            )
            .filter(companies::Column::OrganizationId.eq(organization_id))
            .filter(companies::Column::Id.is_in(all))
            .exec(txn)
            .await?;
    }
    crate::events::append_many(txn, organization_id, None, events).await?;
    Ok(stored)
}

/// Every account of the organization that has a score or a signal in the window: what the
/// nightly recompute and `recomputeScores` cover.
pub async fn scorable_accounts(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Vec<Uuid>> {
    let since = window_start(Utc::now());
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
        .into_tuple()
        .all(db)
        .await?;
    ids.extend(active.into_iter().flatten());
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Recomputes every scorable account of the organization now (the nightly job).
pub async fn rescore_organization(db: &DatabaseConnection, organization_id: Uuid) -> Result<usize> {
    let ids = scorable_accounts(db, organization_id).await?;
    Ok(rescore(db, organization_id, &ids).await?.len())
}

// ---------------------------------------------------------------------------------------------
// What the API offers
// ---------------------------------------------------------------------------------------------

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
    let scores = q
        .order_by_desc(account_scores::Column::Score)
        .order_by_desc(account_scores::Column::AccountId)
        .limit(first)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = scores.iter().map(|s| s.account_id).collect();
    let companies: HashMap<Uuid, companies::Model> = companies::Entity::find()
        .filter(companies::Column::OrganizationId.eq(actor.organization_id))
        .filter(companies::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    Ok(scores
        .into_iter()
        .filter_map(|s| companies.get(&s.account_id).cloned().map(|c| (c, s)))
        .collect())
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

fn admin(actor: &Actor) -> Result<()> {
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
            .metadata(json!({"version": row.version})),
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
        let old: HashMap<Uuid, account_scores::Model> = account_scores::Entity::find()
            .filter(account_scores::Column::OrganizationId.eq(org))
            .filter(account_scores::Column::AccountId.is_in(chunk.to_vec()))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.account_id, s))
            .collect();
        for (id, (company, input)) in inputs {
            let c = compute(&config, &input, now);
            let prev = old.get(&id);
            if prev.map(|p| p.tier.as_str()) != Some(c.tier) {
                rows.push(PreviewRow {
                    account: company,
                    current_score: prev.map(|p| p.score),
                    current_tier: prev.map(|p| p.tier.clone()),
                    new_score: c.score,
                    new_tier: c.tier,
                });
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.new_score - r.current_score.unwrap_or(0)).abs()));
    Ok(rows)
}

/// Recomputes every scorable account of the organization under the current configuration
/// (ADMIN); returns how many were scored.
pub async fn recompute_all(db: &DatabaseConnection, actor: &Actor) -> Result<usize> {
    admin(actor)?;
    rescore_organization(db, actor.organization_id).await
}
