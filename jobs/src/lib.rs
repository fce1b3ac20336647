//! Durable background work: the database-backed job queue's workers (the storage lives in
//! `domain::queue`, so a domain write can enqueue in its own transaction), the cron scheduler that
//! feeds it, one list of every job (`registry`), and the webhook delivery loop.

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
}
