//! sea-orm entities: the shape of each table, data only. No business rules live here, and no
//! entity derives GraphQL types (`server` wraps them, so a column never leaks by accident).

pub mod account_scores;
pub mod activities;
pub mod api_keys;
pub mod audit_logs;
pub mod auth_tokens;
pub mod companies;
pub mod contact_identities;
pub mod contact_merges;
pub mod contacts;
pub mod deals;
pub mod enrichment_cache;
pub mod enrichments;
pub mod events;
pub mod external_ids;
pub mod integration_cursors;
pub mod integration_runs;
pub mod integrations;
pub mod invitations;
pub mod job_cron_ticks;
pub mod job_queues;
pub mod jobs;
pub mod memberships;
pub mod organizations;
pub mod package_downloads;
pub mod rescore_requests;
pub mod scoring_configs;
pub mod sessions;
pub mod signal_sources;
pub mod signals;
pub mod users;
pub mod webhook_attempts;
pub mod webhook_cursor;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
