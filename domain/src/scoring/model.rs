//! The scoring models: seven factors computed from an account's signals, contacts and fields,
//! as pure functions of the inputs and the time. Two presets share the inputs and the factor
//! shape: CLASSIC (the original's ratios, kept exact) and CALIBRATED (volume-aware, the default
//! of new organizations; [`super::calibrated`]). `docs/scoring.md` works both through examples.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Config;
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

/// A named scoring model. Its factors, their default weights and how each is computed are
/// fixed by the preset; weights, half-lives and thresholds stay configurable on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The original's 7-factor model: ratios (velocity, freshness) and steps (recency) that one
    /// fresh event maxes out. Reproduces the reference's worked example exactly.
    Classic,
    /// Volume-aware: saturating counts of people, signals, active days and types, and decayed
    /// activity that needs several events to max out. What new organizations start with.
    #[default]
    Calibrated,
}

impl Preset {
    /// The factors of the preset, in order: name, default (maximum) points, description.
    pub fn factors(self) -> &'static [(&'static str, f64, &'static str)] {
        match self {
            Preset::Classic => CLASSIC_FACTORS,
            Preset::Calibrated => super::calibrated::FACTORS,
        }
    }

    /// The API's name: `CLASSIC` or `CALIBRATED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Classic => "CLASSIC",
            Preset::Calibrated => "CALIBRATED",
        }
    }
}

/// The CLASSIC factors, in order, with their default (maximum) points.
pub const CLASSIC_FACTORS: &[(&str, f64, &str)] = &[
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

/// Half-lives in days of every type of the vocabulary ([`crate::signals::types`]): the
/// original's table plus every type DevSignal's connectors emit (the original missed its own
/// `npm_downloads`, `pr_merged`, …). Aliases (`github_star`, `docs_visit`, …) are stored as
/// their canonical type, so they are not listed.
pub const HALF_LIVES: &[(&str, f64)] = &[
    ("signup", 60.0),
    ("demo_request", 45.0),
    ("app_installed", 45.0),
    ("repo_fork", 28.0),
    ("pr_opened", 28.0),
    ("pr_merged", 28.0),
    ("pr_closed", 28.0),
    ("package_install", 21.0),
    ("repo_clone", 21.0),
    ("issue_opened", 21.0),
    ("issue_closed", 21.0),
    ("feature_request", 21.0),
    ("code_push", 21.0),
    ("release_published", 21.0),
    ("discord_member_joined", 21.0),
    ("linkedin_company_follow", 21.0),
    ("stackoverflow_question", 21.0),
    ("reddit_showcase", 21.0),
    ("repo_star", 14.0),
    ("repo_unstar", 14.0),
    ("repo_watch", 14.0),
    ("app_uninstalled", 14.0),
    ("api_call", 14.0),
    ("pricing_page_view", 14.0),
    ("community_post", 14.0),
    ("support_ticket", 14.0),
    ("discord_question_asked", 14.0),
    ("discord_thread_created", 14.0),
    ("stackoverflow_answer", 14.0),
    ("reddit_question", 14.0),
    ("intercom_conversation_open", 14.0),
    ("intercom_conversation_rated", 14.0),
    ("zendesk_ticket_created", 14.0),
    ("zendesk_satisfaction_rated", 14.0),
    ("issue_comment", 14.0),
    ("feature_usage", 14.0),
    ("npm_download", 10.0),
    ("pypi_download", 10.0),
    ("social_mention", 10.0),
    ("twitter_mention", 10.0),
    ("twitter_praise", 10.0),
    ("twitter_question", 10.0),
    ("twitter_complaint", 10.0),
    ("discord_reaction", 10.0),
    ("linkedin_post_engagement", 10.0),
    ("linkedin_employee_activity", 10.0),
    ("discord_message", 10.0),
    ("reddit_discussion", 10.0),
    ("intercom_conversation_reply", 10.0),
    ("intercom_conversation_closed", 10.0),
    ("zendesk_ticket_solved", 10.0),
    ("docs_read", 7.0),
    ("blog_read", 7.0),
    ("linkedin_page_view", 7.0),
    ("zendesk_ticket_updated", 7.0),
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
    /// Contacts whose title is not senior (or missing) but whose enriched seniority
    /// (`customFields.seniority`, one of [`SENIOR_LEVELS`]) is.
    pub senior_by_level: usize,
}

/// Enriched seniority levels (Clearbit's `employment.seniority`) that make a contact senior.
pub const SENIOR_LEVELS: &[&str] = &["executive", "director"];

/// `true` when an enriched seniority level is one of [`SENIOR_LEVELS`].
pub fn is_senior_level(level: &str) -> bool {
    SENIOR_LEVELS
        .iter()
        .any(|l| level.trim().eq_ignore_ascii_case(l))
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

pub(super) fn days(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 86_400_000.0
}

/// The start of the 90-day window at `now` (with [`BOUNDARY_GRACE`]).
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(WINDOW_DAYS) - BOUNDARY_GRACE
}

/// What both presets read from the signals of the 90-day window at `now`.
pub(super) struct Activity {
    /// Signals in the window.
    pub n: usize,
    /// Distinct people (contacts) behind them.
    pub people: usize,
    /// Distinct canonical types, sorted.
    pub types: Vec<String>,
    /// Distinct UTC days with a signal.
    pub active_days: usize,
    /// Σ decay weight of the window's signals.
    pub total_w: f64,
    /// Σ decay weight of the signals of the last 7 days.
    pub week_w: f64,
    /// Days since the latest signal ever.
    pub since: Option<f64>,
    /// Senior contacts (by title or enriched level).
    pub seniors: usize,
    /// Company size, upper case.
    pub size: Option<String>,
}

impl Activity {
    pub(super) fn read(config: &Config, inputs: &Inputs, now: DateTime<Utc>) -> Activity {
        let grace = days(BOUNDARY_GRACE);
        let window_start = window_start(now);
        let signals: Vec<&SignalPoint> = inputs
            .signals
            .iter()
            .filter(|s| s.timestamp >= window_start)
            .collect();
        let mut actors: Vec<Uuid> = signals.iter().filter_map(|s| s.contact_id).collect();
        actors.sort();
        actors.dedup();
        let mut dates: Vec<chrono::NaiveDate> =
            signals.iter().map(|s| s.timestamp.date_naive()).collect();
        dates.sort();
        dates.dedup();
        // Stored types read through the vocabulary: an alias stored before it was one is its
        // event.
        let canonical: Vec<String> = signals
            .iter()
            .map(|s| crate::signals::types::canonical(&s.signal_type))
            .collect();
        let mut types = canonical.clone();
        types.sort();
        types.dedup();
        let mut total_w = 0.0;
        let mut week_w = 0.0;
        for (s, t) in signals.iter().zip(&canonical) {
            let age = days(now - s.timestamp);
            let w = decay(config.half_life(t), age);
            total_w += w;
            if age <= 7.0 + grace {
                week_w += w;
            }
        }
        Activity {
            n: signals.len(),
            people: actors.len(),
            types,
            active_days: dates.len(),
            total_w,
            week_w,
            since: inputs.last_signal_at.map(|t| days(now - t).max(0.0)),
            seniors: inputs.titles.iter().filter(|t| is_senior(t)).count() + inputs.senior_by_level,
            size: inputs.size.as_deref().map(str::to_uppercase),
        }
    }

    /// Firmographic fit out of 10 by company size (both presets).
    pub(super) fn firmographic(&self) -> f64 {
        match self.size.as_deref() {
            Some("STARTUP") => 8.0,
            Some("SMALL") => 10.0,
            Some("MEDIUM") => 8.0,
            Some("LARGE") => 6.0,
            Some("ENTERPRISE") => 4.0,
            _ => 5.0,
        }
    }

    /// Seniority out of 10: 5 per senior contact (both presets).
    pub(super) fn seniority(&self) -> f64 {
        (5.0 * self.seniors as f64).min(10.0)
    }
}

/// The score of `inputs` at time `now` under the configuration's preset. Ages are exact
/// (fractional days); the day boundaries allow [`BOUNDARY_GRACE`].
pub fn compute(config: &Config, inputs: &Inputs, now: DateTime<Utc>) -> Computed {
    let a = Activity::read(config, inputs, now);
    let raw = match config.model {
        Preset::Classic => classic(&a),
        Preset::Calibrated => super::calibrated::factors(&a),
    };
    let factors: Vec<Factor> = config
        .model
        .factors()
        .iter()
        .zip(raw)
        .map(|((name, default, desc), (points, inputs))| Factor {
            name: (*name).to_owned(),
            points: round3(points * config.weight(name) / default),
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
        signal_count: a.n as i32,
        user_count: a.people as i32,
        last_signal_at: inputs.last_signal_at,
    }
}

/// The CLASSIC factors' points at their default weights, with their inputs.
fn classic(a: &Activity) -> Vec<(f64, Value)> {
    let grace = days(BOUNDARY_GRACE);
    let n = a.n;
    let (total_w, week_w, since) = (a.total_w, a.week_w, a.since);
    let users = (4.0 * a.people as f64).min(20.0);
    let velocity = if n == 0 || total_w <= 0.0 {
        0.0
    } else {
        (20.0 * week_w / total_w).round()
    };
    let breadth = (3.0 * a.types.len() as f64).min(15.0);
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
    vec![
        (users, json!({"distinctPeople": a.people})),
        (
            velocity,
            json!({"weightLast7Days": round3(week_w), "weight90Days": round3(total_w)}),
        ),
        (
            breadth,
            json!({"distinctTypes": a.types.len(), "types": a.types}),
        ),
        (
            recency,
            json!({"daysSinceLastSignal": since.map(|d| (d * 100.0).round() / 100.0)}),
        ),
        (
            freshness,
            json!({"averageWeight": round3(avg_w), "signals": n}),
        ),
        (a.seniority(), json!({"seniorContacts": a.seniors})),
        (a.firmographic(), json!({"size": a.size})),
    ]
}

pub(super) fn round3(x: f64) -> f64 {
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
            senior_by_level: 0,
        };
        // Scored a little later than sent: whole days keep the example exact.
        let c = compute(
            &Config::new(Preset::Classic),
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
        let recency = |age| {
            compute(&Config::new(Preset::Classic), &one(age, "api_call"), now).factors[3].points
        };
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
        let c = compute(&Config::new(Preset::Classic), &two, now);
        let w7 = decay(14.0, 7.0);
        let w8 = decay(14.0, 8.0);
        assert_eq!(c.factors[1].points, (20.0 * w7 / (w7 + w8)).round());
        // Outside the 90-day window: not counted at all.
        let old = compute(
            &Config::new(Preset::Classic),
            &one(hours(91 * 24), "signup"),
            now,
        );
        assert_eq!(old.signal_count, 0);
    }

    #[test]
    fn an_empty_account_scores_5_inactive() {
        let c = compute(
            &Config::new(Preset::Classic),
            &Inputs::default(),
            Utc::now(),
        );
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
        let c = Config::new(Preset::Classic);
        assert_eq!(c.tier(80), "HOT");
        assert_eq!(c.tier(79), "WARM");
        assert_eq!(c.tier(20), "COLD");
        assert_eq!(c.tier(19), "INACTIVE");
    }
}

// ---------------------------------------------------------------------------------------------
// Storage: configuration versions, inputs, stored scores and their events
// ---------------------------------------------------------------------------------------------
