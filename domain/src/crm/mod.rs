//! The CRM: accounts (companies), contacts, deals in the PLG pipeline, activities and notes, and
//! ranked search over them. Every mutation validates first (errors name the field), writes,
//! records the audit entry and appends its event, all in one transaction.

pub mod accounts;
pub mod activities;
pub mod contacts;
pub mod deals;
pub mod search;
mod shared;

pub use shared::*;
