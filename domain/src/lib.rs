//! DevSignal's business rules. Every function here is a plain async function over a database
//! connection (`&impl ConnectionTrait`), so the same code runs on a pool or inside a transaction,
//! on SQLite or PostgreSQL. Only `server` knows HTTP and GraphQL; it calls into this crate and
//! translates [`Error`] once, at the boundary.

pub mod actor;
pub mod db;
pub mod error;
pub mod events;
pub mod identity;

pub use actor::{Actor, Principal, Role};
pub use error::{Error, FieldError, Result};

pub mod accounts;
pub mod activities;
pub mod api_keys;
pub mod audit;
pub mod contacts;
pub mod crm;
pub mod deals;
pub mod merges;
pub mod one_time;
pub mod organizations;
pub mod queue;
pub mod scoring;
pub mod search;
pub mod secrets;
pub mod sessions;
pub mod signals;
pub mod sources;
pub mod users;
pub mod webhooks;

pub use audit::Meta;
