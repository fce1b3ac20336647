//! Signal anomalies: an account's signals today far above or below its usual day (a z-score
//! against the 30 days before), detected hourly by the `detect-anomalies` job (and on demand by
//! an admin's `scanAnomalies`), recorded in `anomalies` with a 24-hour cooldown per (account,
//! kind), announced as `anomaly.detected` (which webhooks, subscriptions and ANOMALY alert rules
//! read).
//!
//! Files: `stats` (the pure statistics: thresholds, severities, expected range), `detect` (the
//! one grouped read of daily counts, the judging of each account, the cooldown and the write),
//! `read` (the organization's and an account's recorded anomalies).

mod detect;
mod read;
pub mod stats;

pub use detect::*;
pub use read::*;
pub use stats::{Finding, Kind, Severity};
