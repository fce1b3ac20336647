//! PQA scoring: two 7-factor model presets (CALIBRATED, the default of new organizations, and
//! the original's CLASSIC) with per-organization, versioned configuration, and the debounced
//! "rescore this account" job.
//!
//! Files: `model` (the presets, the shared inputs, CLASSIC's factors), `calibrated`
//! (CALIBRATED's factors), `config` (versioned configuration and its preview), `storage`
//! (inputs and stored scores), `rescore` (requests, the job, a chunk's rescore), `recompute` (the
//! nightly and the admin's whole-organization recomputes, streamed in keyset pages, resumable),
//! `history` (daily snapshots, trends and the trend's baseline), `backtest` (how well scores
//! before each close separated won from lost accounts, under the current and a proposed
//! configuration).

mod backtest;
mod calibrated;
mod config;
mod history;
mod model;
mod recompute;
mod rescore;
mod storage;

pub use backtest::{
    Backtest, MAX_ACCOUNTS, MAX_ROWS, Metrics, Row as BacktestRow, backtest, metrics,
};
pub use calibrated::{
    ACTIVITY_SCALE, DAY_SCALE, FACTORS as CALIBRATED_FACTORS, PEOPLE_SCALE, SIGNAL_SCALE,
    TYPE_SCALE, saturate,
};
pub use config::*;
pub use history::*;
pub use model::*;
pub use recompute::*;
pub use rescore::*;
pub use storage::*;

use std::time::Duration;

/// The queue and job that recompute an organization's requested scores
/// ([`crate::queue::defs::COMPUTE_SCORE`]).
pub const QUEUE: &str = crate::queue::defs::COMPUTE_SCORE.queue;
pub const JOB: &str = crate::queue::defs::COMPUTE_SCORE.name;
/// How long a rescore waits after the first signal that asked for it, so a burst of signals is
/// scored a few times rather than once per signal.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
