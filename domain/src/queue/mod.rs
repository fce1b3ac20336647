//! The durable job queue, stored in the database so that nothing acknowledged is lost
//! on a crash, a restart or a Redis loss. This module is storage only — enqueue, claim, lease,
//! finish, retry, pause, inspect, prune — so a domain write can enqueue the job it causes in its
//! own transaction. The `jobs` crate runs the workers and the scheduler on top of it.
//!
//! Claiming: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` inside the claiming transaction, so
//! concurrent workers never take the same job; on SQLite the claiming transaction is `BEGIN
//! IMMEDIATE`, which serialises claimers. A claim takes waiting jobs that are due, and active jobs
//! whose lease expired (their worker died): at-least-once delivery.
//!
//! Files: `defs` (every job's definition, shared by the domain and the worker), `enqueue`,
//! `claim` (the worker's side), `admin` (the operator's side), `schedules` (cron entries disabled
//! at run time, ticks, the schedulers' heartbeats), `wake` (who wakes a worker, when).

mod admin;
mod claim;
pub mod defs;
mod enqueue;
mod schedules;
mod wake;

pub use admin::*;
pub use claim::*;
pub use defs::JobSpec;
pub use enqueue::*;
pub use schedules::*;
pub use wake::{Doorbell, noting_due_jobs};

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// Job states.
pub mod state {
    pub const WAITING: &str = "waiting";
    pub const ACTIVE: &str = "active";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    /// Finished without doing its work, for the reason in `last_error` (e.g. "not available").
    pub const SKIPPED: &str = "skipped";
    pub const ALL: &[&str] = &[WAITING, ACTIVE, COMPLETED, FAILED, SKIPPED];
}

/// Completed jobs kept per queue (as the original kept with `removeOnComplete`).
pub const KEEP_COMPLETED: u64 = 1_000;
/// Failed jobs kept per queue (as the original kept with `removeOnFail`).
pub const KEEP_FAILED: u64 = 5_000;
/// Errors are stored up to this many characters.
pub(super) const MAX_ERROR: usize = 4_000;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub name: String,
    pub payload: Value,
    pub organization_id: Option<Uuid>,
    /// Lower runs first (default 0).
    pub priority: i32,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    /// Not before this time (default: now).
    pub run_at: Option<DateTime<Utc>>,
    /// While a job with this key waits, enqueueing another with the same key does nothing.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// A job with the default policy: 3 attempts, 1 s backoff base, priority 0, due now.
    pub fn new(queue: &str, name: &str, payload: Value) -> Self {
        NewJob {
            queue: queue.to_owned(),
            name: name.to_owned(),
            payload,
            organization_id: None,
            priority: 0,
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            run_at: None,
            dedupe_key: None,
        }
    }

    pub fn organization(mut self, id: Uuid) -> Self {
        self.organization_id = Some(id);
        self
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
}
