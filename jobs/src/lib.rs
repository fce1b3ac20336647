//! Durable background work: the database-backed job queue's workers (the storage lives in
//! `domain::queue`, so a domain write can enqueue in its own transaction), the cron scheduler that
//! feeds it, one list of every job (`registry`), and the webhook delivery loop.

pub mod connector_jobs;
pub mod intake;
pub mod notify;
pub mod registry;
pub mod scheduler;
pub mod trigger;
pub mod webhook_delivery;
pub mod worker;

use sea_orm::DatabaseConnection;

/// What a job handler gets.
#[derive(Clone)]
pub struct Context {
    pub db: DatabaseConnection,
    /// Connector settings, HTTP client and secrets cipher (integration syncs).
    pub connectors: connectors::Runtime,
    /// Days of score history kept (`SCORE_HISTORY_DAYS`); older snapshots are pruned nightly.
    pub score_history_days: u32,
    /// Months of signals and events kept (`SIGNAL_RETENTION_MONTHS`, `EVENT_RETENTION_MONTHS`).
    pub retention: domain::partitions::Retention,
    /// Email and Slack sending (alert and digest deliveries).
    pub notifier: notify::Notifier,
    /// `DATA_DIR`: import files (`imports/`) and export files (`exports/`).
    pub data_dir: std::path::PathBuf,
}

/// A job's handler returns this (as its error) when it did not do its work for a reason that is
/// not a failure (e.g. a connector that is not available yet): the job is recorded `skipped`
/// with the reason, never `completed`, and is not retried.
#[derive(Debug)]
pub struct Skipped(pub String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}
