//! Black-box tests of the running server. One test binary (faster to link); one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_keys;
mod audit;
mod auth;
mod browser_sessions;
mod cli;
mod crm_accounts;
mod crm_deals;
mod crm_loaders;
mod crm_order;
mod crm_search;
mod crm_timeline;
mod dashboard;
mod discord;
mod error_codes;
mod events;
mod github;
mod graphql;
mod health;
mod ingest_rules;
mod integrations;
mod isolation;
mod jobs;
mod layering;
mod limits;
mod linkedin;
mod live;
mod merges;
mod nul_bytes;
mod oauth;
mod organizations;
mod packages;
mod plans;
mod plumbing;
mod posthog;
mod rate_limits;
mod reddit;
mod schema;
mod scopes;
mod signal_types;
mod signals;
mod stackoverflow;
mod support_desks;
mod twitter;
mod webhooks;
