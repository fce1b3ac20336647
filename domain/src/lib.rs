//! DevSignal's business rules. Every function here is a plain async function over a database
//! connection (`&impl ConnectionTrait`), so the same code runs on a pool or inside a transaction,
//! on SQLite or PostgreSQL. Only `server` knows HTTP and GraphQL; it calls into this crate and
//! translates [`Error`] once, at the boundary.
//!
//! One folder per capability, each with a `mod.rs` that says what the area owns:
//! - [`identity`]: users, sessions, API keys, organizations and their members, one-time tokens;
//! - [`crm`]: accounts, contacts, deals, activities, search;
//! - [`signals`]: ingest (validate, resolve, write), identifier normalisation, signal sources,
//!   contact merges;
//! - [`scoring`]: the PQA model, its configuration, stored scores and rescoring;
//! - [`anomalies`]: daily signal counts far outside an account's baseline (spikes, drops);
//! - [`webhooks`]: outbound endpoints, dispatch from the event log, deliveries;
//! - [`events`]: the event log every consumer reads;
//! - [`queue`]: the durable job queue's storage.
//! - [`briefs`]: AI account briefs with checked citations, their cache, AI use and budget.
//! - [`paging`]: the one paging scheme and cursor codec every list uses.
//!
//! Shared ground: [`actor`] (who acts), [`error`] (stable codes), [`db`] (connections,
//! migrations, transactions, locks), [`secrets`] (sealing stored secrets), [`audit`], [`text`]
//! (the check every text input shares: no NUL).

pub mod actor;
pub mod alerts;
pub mod anomalies;
pub mod audit;
pub mod billing;
pub mod briefs;
pub mod crm;
pub mod db;
pub mod demo;
pub mod digest;
pub mod enrichment;
pub mod error;
pub mod events;
pub mod identity;
pub mod paging;
pub mod partitions;
pub mod privacy;
pub mod queue;
pub mod scoring;
pub mod secrets;
pub mod signals;
pub mod text;
pub mod transfers;
pub mod webhooks;

pub use actor::{Actor, INTEGRATION_SCOPES, Principal, Role};
pub use audit::Meta;
pub use error::{Code, Error, FieldError, Result};
