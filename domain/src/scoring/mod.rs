//! PQA scoring: the original's 7-factor model with per-organization,
//! versioned configuration, and the debounced "rescore this account" job.//!
//! Files: `model` (the factors and their pure computation), `config` (versioned configuration
//! and its preview), `storage` (inputs and stored scores), `rescore` (requests, the job, a chunk's
//! rescore), `recompute` (the nightly and the admin's whole-organization recomputes, streamed in
//! keyset pages, resumable).

mod config;
mod model;
mod recompute;
mod rescore;
mod storage;

pub use config::*;
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
