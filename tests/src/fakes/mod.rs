//! Local fake servers of outside APIs, answering like the real ones (headers, paging, 304,
//! rate limits, errors), for connector tests and benches. Each starts on 127.0.0.1:0.

pub mod anthropic;
pub mod clearbit;
pub mod discord;
pub mod github;
pub mod hubspot;
pub mod packages;
pub mod posthog;
pub mod reddit;
pub mod salesforce;
pub mod slack;
pub mod smtp;
pub mod stackexchange;
pub mod stripe;
pub mod support;
pub mod twitter;

use sha2::{Digest, Sha256};

/// A weak ETag of a body, like GitHub's.
pub fn etag_of(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}
