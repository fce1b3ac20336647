//! Signals: developer activity from every source, and the people and companies behind it.
//! One ingest function for every path (API, Segment, connectors, inbound webhooks), identifier
//! normalisation, signal sources, and recorded, reversible contact merges.

pub mod identifiers;
mod ingest;
pub mod merges;
pub mod sources;

pub use ingest::*;
