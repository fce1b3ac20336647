//! Signals: developer activity from every source, and the people and companies behind it.
//! One ingest function for every path (API, Segment, connectors, inbound webhooks), identifier
//! normalisation, signal sources, and recorded, reversible contact merges.
//!
//! - `ingest/`: validate, load what the batch names, resolve identities, write;
//! - `read`: lists, single rows, plan usage; `timeline`: an account's timeline;
//! - [`identifiers`], [`sources`], [`merges`], [`types`] (the signal-type vocabulary and its aliases).

pub mod identifiers;
mod ingest;
pub mod merges;
mod read;
pub mod sources;
mod timeline;
pub mod types;

pub use ingest::*;
pub use read::*;
pub use timeline::*;
