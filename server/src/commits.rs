//! After-commit notification. Whoever finishes a unit of work that may have committed events or
//! jobs — a REST request that changes state, a GraphQL mutation (over HTTP or WebSocket), a job —
//! says so here, once its transaction is committed, with the earliest `run_at` of the jobs it
//! added (from [`domain::queue::noting_due_jobs`]). That wakes this process's live-event tailer
//! at once, rings its job worker's doorbell when a job is due before the worker's planned look,
//! and, with Redis, publishes a wake-up that every other process hears (their tailers, and their
//! workers' doorbells). Nothing depends on the wake-up arriving: tailers and workers also poll,
//! so a lost notification costs latency, never data.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::queue::Doorbell;

use crate::live::Live;

/// The after-commit notifier of one process (cheap to clone).
#[derive(Clone)]
pub struct Commits {
    live: Live,
    jobs: Arc<Doorbell>,
}

impl Commits {
    pub fn new(live: Live) -> Self {
        Self {
            live,
            jobs: Arc::default(),
        }
    }

    /// Something was committed, adding jobs due at `jobs_due` at the earliest (`None`: no job):
    /// wake the tailer here, the worker here if a job is due before its planned look, and every
    /// other process through Redis. Bursts coalesce into one wake-up each.
    pub fn committed(&self, jobs_due: Option<DateTime<Utc>>) {
        self.live.committed(jobs_due);
        if let Some(at) = jobs_due {
            self.jobs.ring_for(at);
        }
    }

    /// The doorbell of this process's job worker.
    pub fn jobs(&self) -> Arc<Doorbell> {
        self.jobs.clone()
    }
}
