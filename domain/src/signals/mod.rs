//! Signals: developer activity from every source, and the people and companies behind it.
//! One ingest function for every path (API, Segment, connectors, inbound webhooks), identifier
//! normalisation, signal sources, and recorded, reversible contact merges.
//!
//! - `ingest/`: validate, load what the batch names, resolve identities, write;
//! - `read`: lists, single rows, plan usage; `timeline`: an account's timeline;
//! - [`identifiers`], [`sources`], [`merges`], [`types`] (the signal-type vocabulary and its aliases).

pub mod identifiers;
mod ingest;
pub mod intake;
pub mod merges;
mod read;
pub mod sources;
mod timeline;
pub mod types;

pub use ingest::*;
pub use read::*;
pub use timeline::*;

/// How far past the time it arrives a signal's timestamp may be; later ones are refused.
pub fn max_ahead() -> chrono::Duration {
    chrono::Duration::hours(24)
}

/// A time past every signal stored by `now`: [`max_ahead`] of `now`, and an hour more for the
/// clocks of other replicas. A read of a window open at the top (`timestamp >= start`) that
/// also stops here returns the same rows, and on PostgreSQL skips the `DEFAULT` partition (rows
/// past the last month made ahead of time, none of them this close).
pub fn horizon(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now + max_ahead() + chrono::Duration::hours(1)
}
