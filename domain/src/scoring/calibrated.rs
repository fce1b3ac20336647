//! The CALIBRATED preset: volume-aware factors, so that a score says how much an account does
//! and not only how recently. CLASSIC's velocity, freshness and recency are ratios or steps
//! that one fresh event maxes out (one signal from one person scores 57, WARM); here every
//! count saturates, `1 − e^(−n/k)`, so the first event earns a little and each further person,
//! day or type earns less than the one before, never more than the factor's weight.
//!
//! What the constants mean (at the default weights, thresholds HOT 80 / WARM 50 / COLD 20):
//! one signal from one person at a company of unknown size scores 26 (COLD); one day of
//! activity, whatever its volume, stays below HOT up to four people; one person needs eight
//! active days of varied activity (and senior contacts and a good fit) to reach HOT. Every
//! factor only grows with more people, signals, active days or types, so the score is monotone
//! in activity. `docs/scoring.md` works through examples.

use serde_json::{Value, json};

use super::model::{Activity, round3};

/// The CALIBRATED factors, in order: name, default (maximum) points, description.
pub const FACTORS: &[(&str, f64, &str)] = &[
    (
        "people",
        25.0,
        "distinct people active in 90 days, saturating: 1 − e^(−people/2)",
    ),
    (
        "signal_volume",
        10.0,
        "signals in 90 days, saturating: 1 − e^(−signals/10)",
    ),
    (
        "active_days",
        20.0,
        "distinct days (UTC) with a signal in 90 days, saturating: 1 − e^(−days/4)",
    ),
    (
        "feature_breadth",
        10.0,
        "distinct signal types in 90 days, saturating: 1 − e^(−types/3)",
    ),
    (
        "recent_activity",
        15.0,
        "the signals' decay weights summed, saturating: 1 − e^(−Σweight/4)",
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

/// The scale `k` of each saturating factor: `k` of something earns 63 % of the factor.
pub const PEOPLE_SCALE: f64 = 2.0;
pub const SIGNAL_SCALE: f64 = 10.0;
pub const DAY_SCALE: f64 = 4.0;
pub const TYPE_SCALE: f64 = 3.0;
pub const ACTIVITY_SCALE: f64 = 4.0;

/// `1 − e^(−x/k)`: 0 at 0, growing, below 1 for ever.
pub fn saturate(x: f64, k: f64) -> f64 {
    1.0 - (-x.max(0.0) / k).exp()
}

/// The CALIBRATED factors' points at their default weights, with their inputs.
pub(super) fn factors(a: &Activity) -> Vec<(f64, Value)> {
    let max = |i: usize| FACTORS[i].1;
    vec![
        (
            max(0) * saturate(a.people as f64, PEOPLE_SCALE),
            json!({"distinctPeople": a.people}),
        ),
        (
            max(1) * saturate(a.n as f64, SIGNAL_SCALE),
            json!({"signals": a.n}),
        ),
        (
            max(2) * saturate(a.active_days as f64, DAY_SCALE),
            json!({"activeDays": a.active_days}),
        ),
        (
            max(3) * saturate(a.types.len() as f64, TYPE_SCALE),
            json!({"distinctTypes": a.types.len(), "types": a.types}),
        ),
        (
            max(4) * saturate(a.total_w, ACTIVITY_SCALE),
            json!({
                "decayedActivity": round3(a.total_w),
                "daysSinceLastSignal": a.since.map(|d| (d * 100.0).round() / 100.0),
            }),
        ),
        (a.seniority(), json!({"seniorContacts": a.seniors})),
        (a.firmographic(), json!({"size": a.size})),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use uuid::Uuid;

    use super::super::{Config, Inputs, Preset, SignalPoint, compute};
    use super::*;

    fn config() -> Config {
        Config::new(Preset::Calibrated)
    }

    /// Noon UTC, so whole-day offsets land on distinct calendar days.
    fn noon() -> DateTime<Utc> {
        let today = Utc::now().date_naive();
        today
            .and_hms_opt(12, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_else(Utc::now)
    }

    fn sig(now: DateTime<Utc>, days: i64, t: &str, who: u128) -> SignalPoint {
        SignalPoint {
            signal_type: t.into(),
            timestamp: now - Duration::days(days),
            contact_id: Some(Uuid::from_u128(who)),
        }
    }

    fn inputs(signals: Vec<SignalPoint>, size: Option<&str>, titles: &[&str]) -> Inputs {
        Inputs {
            last_signal_at: signals.iter().map(|s| s.timestamp).max(),
            signals,
            size: size.map(str::to_owned),
            titles: titles.iter().map(|t| (*t).to_owned()).collect(),
            senior_by_level: 0,
        }
    }

    fn score(i: &Inputs, now: DateTime<Utc>) -> (i32, &'static str) {
        let c = compute(&config(), i, now + Duration::seconds(3));
        (c.score, c.tier)
    }

    #[test]
    fn new_organizations_get_the_calibrated_preset() {
        assert_eq!(Config::default().model, Preset::Calibrated);
        assert_eq!(Config::default().weights.len(), FACTORS.len());
        assert_eq!(FACTORS.iter().map(|f| f.1).sum::<f64>(), 100.0);
    }

    #[test]
    fn one_signal_from_one_person_at_an_unknown_company_is_cold() {
        let now = noon();
        let i = inputs(vec![sig(now, 0, "repo_star", 1)], None, &[]);
        let c = compute(&config(), &i, now + Duration::seconds(3));
        let points: Vec<f64> = c.factors.iter().map(|f| f.points).collect();
        assert_eq!(points, vec![9.837, 0.952, 4.424, 2.835, 3.318, 0.0, 5.0]);
        assert_eq!((c.score, c.tier), (26, "COLD"));
        // The same under CLASSIC is the WARM the issue complains about.
        let classic = compute(&Config::new(Preset::Classic), &i, now);
        assert_eq!((classic.score, classic.tier), (57, "WARM"));
    }

    #[test]
    fn an_empty_account_is_inactive() {
        let c = compute(&config(), &Inputs::default(), Utc::now());
        assert_eq!((c.score, c.tier), (5, "INACTIVE"));
        assert!(c.factors.iter().all(|f| f.points <= f.max_points));
    }

    #[test]
    fn the_reference_example_under_calibrated_scores_74_warm() {
        // The reference's worked example (CLASSIC: 73 WARM) read by CALIBRATED.
        let now = noon();
        let mut signals = Vec::new();
        for i in 0..3 {
            signals.push(sig(now, 1, "api_call", i % 3 + 1));
        }
        for _ in 0..2 {
            signals.push(sig(now, 3, "page_view", 1));
        }
        for _ in 0..2 {
            signals.push(sig(now, 10, "repo_star", 2));
        }
        for _ in 0..3 {
            signals.push(sig(now, 20, "signup", 3));
        }
        let i = inputs(signals, Some("SMALL"), &["VP Engineering", "Contractor"]);
        let c = compute(&config(), &i, now + Duration::seconds(3));
        let points: Vec<f64> = c.factors.iter().map(|f| f.points).collect();
        assert_eq!(
            points,
            vec![19.422, 6.321, 12.642, 7.364, 12.852, 5.0, 10.0]
        );
        assert_eq!((c.score, c.tier), (74, "WARM"));
    }

    #[test]
    fn hot_takes_several_people_or_sustained_varied_activity() {
        let now = noon();
        let types = ["api_call", "repo_star", "docs_read", "pr_opened", "signup"];
        // Everything else maxed out: a SMALL company with two senior contacts.
        let best =
            |signals: Vec<SignalPoint>| inputs(signals, Some("SMALL"), &["CTO", "VP Engineering"]);
        // One day of activity, any volume and every type, by up to four people: never HOT.
        for people in 1..=4u128 {
            let mut s = Vec::new();
            for k in 0..200u128 {
                s.push(sig(now, 0, types[(k % 5) as usize], k % people + 1));
            }
            let (score, tier) = score(&best(s), now);
            assert_ne!(tier, "HOT", "{people} people on one day scored {score}");
        }
        // One person: seven active days of varied activity are not enough, eight are.
        let days_of = |days: i64| {
            let mut s = Vec::new();
            for d in 0..days {
                for (k, t) in types.iter().enumerate() {
                    for _ in 0..=k {
                        s.push(sig(now, d, t, 1));
                    }
                }
            }
            best(s)
        };
        assert_eq!(score(&days_of(3), now), (73, "WARM"));
        assert_eq!(score(&days_of(7), now), (79, "WARM"));
        assert_eq!(score(&days_of(8), now), (80, "HOT"));
        // Several people over a few days with a few types: HOT.
        let mut team = Vec::new();
        for who in 1..=5u128 {
            for d in 0..3 {
                team.push(sig(now, d, types[(who % 3) as usize], who));
            }
        }
        assert_eq!(score(&best(team.clone()), now), (82, "HOT"));
        // The same team at an unknown company without seniors: WARM.
        assert_eq!(score(&inputs(team, None, &[]), now), (67, "WARM"));
    }

    #[test]
    fn more_activity_never_lowers_the_score() {
        // A deterministic walk: add one signal at a time (a new or known person, a new or known
        // type, today or an earlier day); the score and every factor never go down.
        let now = noon();
        let types = ["api_call", "repo_star", "docs_read", "signup", "page_view"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        for _walk in 0..20 {
            let mut signals: Vec<SignalPoint> = Vec::new();
            let mut prev = compute(&config(), &inputs(vec![], None, &[]), now);
            for _ in 0..60 {
                signals.push(sig(
                    now,
                    next(60) as i64,
                    types[next(5) as usize],
                    u128::from(next(8)) + 1,
                ));
                // The latest signal ever is the newest of the list (no later one exists).
                let c = compute(&config(), &inputs(signals.clone(), None, &[]), now);
                assert!(c.score >= prev.score, "{} < {}", c.score, prev.score);
                for (a, b) in c.factors.iter().zip(&prev.factors) {
                    assert!(a.points >= b.points, "{} fell: {:?}", a.name, c.factors);
                }
                prev = c;
            }
        }
    }

    #[test]
    fn weights_scale_the_factors() {
        let now = noon();
        let i = inputs(vec![sig(now, 0, "repo_star", 1)], None, &[]);
        let mut c = config();
        c.weights.insert("people".into(), 50.0);
        let f = compute(&c, &i, now + Duration::seconds(3));
        assert_eq!(f.factors[0].points, 19.673);
        assert_eq!(f.factors[0].max_points, 50.0);
    }
}
