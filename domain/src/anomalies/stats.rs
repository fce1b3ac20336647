//! The pure statistics of anomaly detection: an account's count today against its daily counts
//! of the 30 days before (a dense series, zeros for quiet days), as a z-score.
//!
//! - Judged only with at least [`MIN_DAYS_WITH_DATA`] days with a signal in the baseline.
//! - Mean and **population** standard deviation of the series; skipped when the mean is below 1
//!   or the deviation is 0 (nothing to compare with).
//! - z = (today − mean) / σ. SPIKE when z ≥ 2 (HIGH when z ≥ 3, else MODERATE); DROP when
//!   z ≤ −2 and the mean is above 3 (HIGH when z ≤ −3).
//! - Expected range: [max(0, round(mean − 2σ)), round(mean + 2σ)]; mean, σ and z are reported
//!   rounded to 2 decimals (the thresholds compare the unrounded z).
//!
//! Worked example: a baseline of mean 5 and σ 2 with 10 signals today gives z = 2.5: a MODERATE
//! SPIKE, expected 1 to 9.

use serde::{Deserialize, Serialize};

/// Days of baseline before the judged day.
pub const BASELINE_DAYS: usize = 30;
/// Fewer baseline days with a signal than this: not judged.
pub const MIN_DAYS_WITH_DATA: usize = 7;
/// |z| at or above which an anomaly is reported.
pub const Z_MODERATE: f64 = 2.0;
/// |z| at or above which it is HIGH.
pub const Z_HIGH: f64 = 3.0;
/// A DROP needs a baseline mean above this.
pub const DROP_MIN_MEAN: f64 = 3.0;

/// A spike or a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Spike,
    Drop,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spike => "SPIKE",
            Kind::Drop => "DROP",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "SPIKE" => Some(Kind::Spike),
            "DROP" => Some(Kind::Drop),
            _ => None,
        }
    }
}

/// How far outside the expected range (ordered: HIGH is above MODERATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Moderate,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Moderate => "MODERATE",
            Severity::High => "HIGH",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "MODERATE" => Some(Severity::Moderate),
            "HIGH" => Some(Severity::High),
            _ => None,
        }
    }
}

/// What one judgement found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub today: i64,
    /// Rounded to 2 decimals.
    pub mean: f64,
    /// Rounded to 2 decimals.
    pub stddev: f64,
    /// Rounded to 2 decimals.
    pub z_score: f64,
    pub expected_min: i64,
    pub expected_max: i64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The mean and population standard deviation of `counts` (`None` when empty).
pub fn mean_stddev(counts: &[i64]) -> Option<(f64, f64)> {
    if counts.is_empty() {
        return None;
    }
    let n = counts.len() as f64;
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    Some((mean, var.sqrt()))
}

/// Enough history to judge: at least [`MIN_DAYS_WITH_DATA`] days with a signal.
pub fn has_history(baseline: &[i64]) -> bool {
    baseline.iter().filter(|&&c| c > 0).count() >= MIN_DAYS_WITH_DATA
}

/// Judges `today` against `baseline` for `kind` (both kinds share the z-score; only the side
/// and the DROP's minimum mean differ). `None`: nothing anomalous, or not judged.
pub fn judge(kind: Kind, baseline: &[i64], today: i64) -> Option<Finding> {
    let (mean, sd) = mean_stddev(baseline)?;
    if mean < 1.0 || sd == 0.0 {
        return None;
    }
    let z = (today as f64 - mean) / sd;
    let severity = match kind {
        Kind::Spike if z >= Z_HIGH => Severity::High,
        Kind::Spike if z >= Z_MODERATE => Severity::Moderate,
        Kind::Drop if mean > DROP_MIN_MEAN && z <= -Z_HIGH => Severity::High,
        Kind::Drop if mean > DROP_MIN_MEAN && z <= -Z_MODERATE => Severity::Moderate,
        _ => return None,
    };
    Some(Finding {
        kind,
        severity,
        today,
        mean: round2(mean),
        stddev: round2(sd),
        z_score: round2(z),
        expected_min: ((mean - 2.0 * sd).round() as i64).max(0),
        expected_max: (mean + 2.0 * sd).round() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 15 days of 3 and 15 of 7: mean 5, population σ 2.
    fn five_two() -> Vec<i64> {
        (0..30).map(|i| if i % 2 == 0 { 3 } else { 7 }).collect()
    }

    #[test]
    fn the_worked_example_is_a_moderate_spike_expected_1_to_9() {
        let b = five_two();
        assert_eq!(mean_stddev(&b), Some((5.0, 2.0)));
        assert!(has_history(&b));
        let f = judge(Kind::Spike, &b, 10).unwrap();
        assert_eq!(
            f,
            Finding {
                kind: Kind::Spike,
                severity: Severity::Moderate,
                today: 10,
                mean: 5.0,
                stddev: 2.0,
                z_score: 2.5,
                expected_min: 1,
                expected_max: 9,
            }
        );
        // The same day is no drop.
        assert_eq!(judge(Kind::Drop, &b, 10), None);
    }

    #[test]
    fn thresholds_and_severities() {
        let b = five_two();
        assert_eq!(judge(Kind::Spike, &b, 8), None); // z 1.5
        assert_eq!(
            judge(Kind::Spike, &b, 9).unwrap().severity,
            Severity::Moderate
        ); // z 2 exactly
        assert_eq!(judge(Kind::Spike, &b, 11).unwrap().severity, Severity::High); // z 3
        assert_eq!(
            judge(Kind::Drop, &b, 1).unwrap().severity,
            Severity::Moderate
        ); // z −2
        let stop = judge(Kind::Drop, &b, 0).unwrap(); // z −2.5
        assert_eq!(
            (stop.severity, stop.z_score, stop.expected_min),
            (Severity::Moderate, -2.5, 1)
        );
        assert_eq!(judge(Kind::Drop, &b, 2), None); // z −1.5
        // A drop needs a mean above 3: mean 3, σ 1 and nothing today is z −3, not judged.
        let low: Vec<i64> = (0..30).map(|i| if i % 2 == 0 { 2 } else { 4 }).collect();
        assert_eq!(mean_stddev(&low), Some((3.0, 1.0)));
        assert_eq!(judge(Kind::Drop, &low, 0), None);
        // ... but spikes are.
        assert_eq!(
            judge(Kind::Spike, &low, 6).unwrap().severity,
            Severity::High
        );
        let high = judge(
            Kind::Drop,
            &(0..30)
                .map(|i| if i % 2 == 0 { 4 } else { 6 })
                .collect::<Vec<_>>(),
            0,
        )
        .unwrap();
        assert_eq!(
            (
                high.severity,
                high.z_score,
                high.expected_min,
                high.expected_max
            ),
            (Severity::High, -5.0, 3, 7)
        );
    }

    #[test]
    fn flat_or_thin_baselines_are_not_judged() {
        assert_eq!(judge(Kind::Spike, &[5; 30], 50), None); // σ 0
        let thin: Vec<i64> = (0..30).map(|i| i64::from(i < 6)).collect();
        assert!(!has_history(&thin)); // 6 days with data
        let seven: Vec<i64> = (0..30).map(|i| i64::from(i < 7)).collect();
        assert!(has_history(&seven));
        // Mean below 1 (7/30): skipped whatever today holds.
        assert_eq!(judge(Kind::Spike, &seven, 100), None);
        assert_eq!(mean_stddev(&[]), None);
    }

    #[test]
    fn rounding_to_two_decimals() {
        // 10 days of 1, 20 of 2: mean 5/3, σ √2/3.
        let b: Vec<i64> = (0..30).map(|i| if i < 10 { 1 } else { 2 }).collect();
        let f = judge(Kind::Spike, &b, 5).unwrap();
        assert_eq!((f.mean, f.stddev), (1.67, 0.47));
        assert_eq!(f.z_score, 7.07);
        assert_eq!((f.expected_min, f.expected_max), (1, 3));
        assert_eq!(f.severity, Severity::High);
    }
}
