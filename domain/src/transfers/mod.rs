//! Moving an organization's data in and out in bulk: CSV imports of contacts, accounts and deals
//! ([`imports`]) and exports of its data as CSV or JSON lines ([`exports`]). Both keep their
//! files under `DATA_DIR` (`imports/`, `exports/`) and their state in the database (so a restart
//! loses nothing), run as background jobs, and hand out signed, expiring links ([`links`]) for
//! the bytes that do not go through GraphQL: the upload of an import's file and the download of
//! an export.

pub mod csvfile;
pub mod exports;
pub mod imports;
pub mod links;
pub mod mapping;
mod rows;
mod write;

pub use imports::{ImportPreview, RowError};
pub use links::LinkError;
pub use mapping::{Entity, Source};
