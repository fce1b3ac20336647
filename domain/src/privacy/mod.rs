//! Personal data rights: erasure (GDPR art. 17, [`erase_contact`]) and access (art. 15,
//! [`export_contact`]), and the tombstones that keep an erased person from coming back
//! through ingest, imports or connectors.
//!
//! Files: `erase` (every table that may hold the person, in one transaction), `export` (what is
//! held about them, as JSON), `redact` (identifiers out of text and JSON), `tombstones` (hashed
//! identifiers and the checks ingest and contact creation make).

mod erase;
mod export;
pub mod redact;
pub mod tombstones;

pub use erase::{ERASED_ACTION, Erasure, erase_contact};
pub use export::export_contact;
pub use tombstones::ERASED;
