//! After-commit notification. Whoever finishes a unit of work that may have committed events or
//! jobs — a REST request that changes state, a GraphQL mutation (over HTTP or WebSocket), a job —
//! says so here, once its transaction is committed. That wakes this process's live-event tailer
//! and job worker at once and, with Redis, publishes a wake-up that every other process hears
//! (their tailers, and their workers). Nothing depends on the wake-up arriving: tailers and
//! workers also poll, so a lost notification costs latency, never data.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::live::Live;

/// The after-commit notifier of one process (cheap to clone).
#[derive(Clone)]
pub struct Commits {
    live: Live,
    jobs: Arc<Notify>,
}

impl Commits {
    pub fn new(live: Live) -> Self {
        Self {
            live,
            jobs: Arc::new(Notify::new()),
        }
    }

    /// Something was committed: wake the tailer and the worker here, and every other process
    /// through Redis. Bursts coalesce into one wake-up each.
    pub fn committed(&self) {
        self.live.committed();
        self.jobs.notify_one();
    }

    /// What this process's job worker waits on between polls.
    pub fn jobs(&self) -> Arc<Notify> {
        self.jobs.clone()
    }
}
