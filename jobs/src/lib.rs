//! Durable background work: the database-backed job queue, the cron scheduler that feeds it, and
//! one module per job. Depends on `domain` for the business rules each job applies.

pub mod webhook_delivery;
