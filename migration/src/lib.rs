//! The database schema's history. Each migration is frozen once it has landed on main: a change
//! to the schema is a new migration, never an edit of an old one. Migrations describe tables with
//! sea-query only (no imports from `entity`), so they keep compiling however the entities evolve,
//! and the same history runs on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_organizations;
mod m20261128_000002_identity;
mod m20261128_000004_events;
mod m20261128_000005_crm;
mod m20261128_000006_deals_activities;
pub mod m20261128_000008_search;
mod m20261128_000009_webhooks;
mod m20261128_000010_jobs;
mod m20261129_000011_signals;
mod m20261202_000012_integrations;
mod m20261202_000013_order_indexes;
mod m20261202_000014_crm_sync;
mod m20261202_000015_enrichment;
mod m20261203_000016_webhook_objects;
mod m20261203_000017_schedule_states;
mod m20261203_000018_score_history;
mod m20261203_000019_score_recomputes;
mod m20261203_000020_scoring_presets;
mod m20261203_000021_alerts;
mod m20261203_000022_alert_channels;
mod m20261203_000023_briefs;
mod m20261203_000024_anomalies;
mod m20261203_000025_billing;
mod m20261203_000026_privacy_demo;
mod m20261203_000027_imports_exports;
mod m20261204_000028_event_positions;
mod m20261205_000029_tenant_keys;
mod m20261206_000030_partitions;
mod m20261207_000031_ingest_claims;
mod m20261208_000032_search_pending_list;
mod m20261209_000033_nested_list_indexes;
mod m20261210_000034_event_head;
mod m20261211_000035_signal_intake;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_organizations::Migration),
            Box::new(m20261128_000002_identity::Migration),
            Box::new(m20261128_000004_events::Migration),
            Box::new(m20261128_000005_crm::Migration),
            Box::new(m20261128_000006_deals_activities::Migration),
            Box::new(m20261128_000008_search::Migration),
            Box::new(m20261128_000009_webhooks::Migration),
            Box::new(m20261128_000010_jobs::Migration),
            Box::new(m20261129_000011_signals::Migration),
            Box::new(m20261202_000012_integrations::Migration),
            Box::new(m20261202_000013_order_indexes::Migration),
            Box::new(m20261202_000014_crm_sync::Migration),
            Box::new(m20261202_000015_enrichment::Migration),
            Box::new(m20261203_000016_webhook_objects::Migration),
            Box::new(m20261203_000017_schedule_states::Migration),
            Box::new(m20261203_000018_score_history::Migration),
            Box::new(m20261203_000019_score_recomputes::Migration),
            Box::new(m20261203_000020_scoring_presets::Migration),
            Box::new(m20261203_000021_alerts::Migration),
            Box::new(m20261203_000022_alert_channels::Migration),
            Box::new(m20261203_000023_briefs::Migration),
            Box::new(m20261203_000024_anomalies::Migration),
            Box::new(m20261203_000025_billing::Migration),
            Box::new(m20261203_000026_privacy_demo::Migration),
            Box::new(m20261203_000027_imports_exports::Migration),
            Box::new(m20261204_000028_event_positions::Migration),
            Box::new(m20261205_000029_tenant_keys::Migration),
            Box::new(m20261206_000030_partitions::Migration),
            Box::new(m20261207_000031_ingest_claims::Migration),
            Box::new(m20261208_000032_search_pending_list::Migration),
            Box::new(m20261209_000033_nested_list_indexes::Migration),
            Box::new(m20261210_000034_event_head::Migration),
            Box::new(m20261211_000035_signal_intake::Migration),
        ]
    }
}
