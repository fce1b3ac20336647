//! Every tenant table's keys include `organization_id`, so a PostgreSQL sharded by tenant
//! (Citus, distributing each tenant table by `organization_id`) accepts the schema:
//!
//! - The two tenant tables that reached their organization only through a parent
//!   (`integration_cursors`, `webhook_attempts`) carry `organization_id` themselves.
//! - On PostgreSQL every primary and unique key of a tenant table gains `organization_id` as its
//!   last column. Last, not first: a lookup by `id` alone (an update or delete by primary key)
//!   still finds its row through the key's index.
//! - On PostgreSQL every foreign key between two tenant tables becomes
//!   `(organization_id, x_id) → (organization_id, id)`. Citus refuses `ON DELETE SET NULL` on a
//!   key that holds the distribution column, so the eight that used it become plain references
//!   and the application clears them before it deletes the row they point at
//!   (`domain::db::detach`); `ON DELETE CASCADE` stays.
//! - SQLite keeps its single-column keys (SQLite is never sharded and cannot alter a key in
//!   place); it gains a unique index for each new `ON CONFLICT` target, so one statement serves
//!   both backends.

use sea_orm_migration::{prelude::*, schema::uuid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// How a key is declared.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Primary,
    UniqueConstraint,
    UniqueIndex,
}

/// `(table, name, kind, columns before this migration)`: the keys of tenant tables that lacked
/// `organization_id`.
const KEYS: &[(&str, &str, Kind, &[&str])] = &[
    (
        "account_briefs",
        "account_briefs_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "account_scores",
        "account_scores_pkey",
        Kind::Primary,
        &["account_id"],
    ),
    ("activities", "activities_pkey", Kind::Primary, &["id"]),
    ("ai_settings", "ai_settings_pkey", Kind::Primary, &["id"]),
    (
        "alert_deliveries",
        "alert_deliveries_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("alert_rules", "alert_rules_pkey", Kind::Primary, &["id"]),
    ("anomalies", "anomalies_pkey", Kind::Primary, &["id"]),
    ("api_keys", "api_keys_pkey", Kind::Primary, &["id"]),
    (
        "api_keys",
        "uq_api_keys_hash",
        Kind::UniqueIndex,
        &["key_hash"],
    ),
    ("companies", "companies_pkey", Kind::Primary, &["id"]),
    (
        "contact_identities",
        "contact_identities_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "contact_merges",
        "contact_merges_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("contacts", "contacts_pkey", Kind::Primary, &["id"]),
    ("deals", "deals_pkey", Kind::Primary, &["id"]),
    ("enrichments", "enrichments_pkey", Kind::Primary, &["id"]),
    ("events", "events_pkey", Kind::Primary, &["seq"]),
    ("events", "events_id_key", Kind::UniqueConstraint, &["id"]),
    (
        "events",
        "idx_events_position",
        Kind::UniqueIndex,
        &["position"],
    ),
    ("exports", "exports_pkey", Kind::Primary, &["id"]),
    (
        "import_errors",
        "import_errors_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("imports", "imports_pkey", Kind::Primary, &["id"]),
    (
        "integration_cursors",
        "integration_cursors_pkey",
        Kind::Primary,
        &["integration_id", "resource"],
    ),
    (
        "integration_runs",
        "integration_runs_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("integrations", "integrations_pkey", Kind::Primary, &["id"]),
    ("invitations", "invitations_pkey", Kind::Primary, &["id"]),
    (
        "invitations",
        "uq_invitations_token",
        Kind::UniqueIndex,
        &["token_hash"],
    ),
    ("memberships", "memberships_pkey", Kind::Primary, &["id"]),
    (
        "notifications",
        "notifications_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "rescore_requests",
        "rescore_requests_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "score_recomputes",
        "score_recomputes_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "score_recomputes",
        "ux_score_recomputes_running",
        Kind::UniqueIndex,
        &["running_organization_id"],
    ),
    (
        "scoring_configs",
        "scoring_configs_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("sessions", "sessions_pkey", Kind::Primary, &["id"]),
    (
        "signal_sources",
        "signal_sources_pkey",
        Kind::Primary,
        &["id"],
    ),
    ("signals", "signals_pkey", Kind::Primary, &["id"]),
    (
        "webhook_attempts",
        "webhook_attempts_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "webhook_deliveries",
        "webhook_deliveries_pkey",
        Kind::Primary,
        &["id"],
    ),
    (
        "webhook_endpoints",
        "webhook_endpoints_pkey",
        Kind::Primary,
        &["id"],
    ),
];

/// How a reference acted on delete before this migration.
#[derive(Clone, Copy, PartialEq)]
enum OnDelete {
    Cascade,
    /// Became a plain reference: the application clears it first.
    SetNull,
}

/// `(name, table, column, referenced table)`: the references between tenant tables. Each
/// pointed at the referenced table's `id`.
const REFERENCES: &[(&str, &str, &str, &str, OnDelete)] = &[
    (
        "fk_contacts_account",
        "contacts",
        "account_id",
        "companies",
        OnDelete::SetNull,
    ),
    (
        "fk_deals_account",
        "deals",
        "account_id",
        "companies",
        OnDelete::SetNull,
    ),
    (
        "fk_deals_contact",
        "deals",
        "contact_id",
        "contacts",
        OnDelete::SetNull,
    ),
    (
        "fk_activities_account",
        "activities",
        "account_id",
        "companies",
        OnDelete::SetNull,
    ),
    (
        "fk_activities_contact",
        "activities",
        "contact_id",
        "contacts",
        OnDelete::SetNull,
    ),
    (
        "fk_activities_deal",
        "activities",
        "deal_id",
        "deals",
        OnDelete::SetNull,
    ),
    (
        "fk_signals_contact",
        "signals",
        "contact_id",
        "contacts",
        OnDelete::SetNull,
    ),
    (
        "fk_signals_account",
        "signals",
        "account_id",
        "companies",
        OnDelete::SetNull,
    ),
    (
        "fk_signals_source",
        "signals",
        "source_id",
        "signal_sources",
        OnDelete::Cascade,
    ),
    (
        "fk_webhook_deliveries_endpoint",
        "webhook_deliveries",
        "endpoint_id",
        "webhook_endpoints",
        OnDelete::Cascade,
    ),
    (
        "fk_webhook_attempts_delivery",
        "webhook_attempts",
        "delivery_id",
        "webhook_deliveries",
        OnDelete::Cascade,
    ),
    (
        "fk_contact_identities_contact",
        "contact_identities",
        "contact_id",
        "contacts",
        OnDelete::Cascade,
    ),
    (
        "fk_account_scores_account",
        "account_scores",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_rescore_requests_account",
        "rescore_requests",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_integration_runs_integration",
        "integration_runs",
        "integration_id",
        "integrations",
        OnDelete::Cascade,
    ),
    (
        "fk_integration_cursors_integration",
        "integration_cursors",
        "integration_id",
        "integrations",
        OnDelete::Cascade,
    ),
    (
        "fk_score_snapshots_account",
        "score_snapshots",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_alert_cooldowns_rule",
        "alert_cooldowns",
        "rule_id",
        "alert_rules",
        OnDelete::Cascade,
    ),
    (
        "fk_alert_cooldowns_account",
        "alert_cooldowns",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_account_briefs_account",
        "account_briefs",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_anomalies_account",
        "anomalies",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_anomaly_cooldowns_account",
        "anomaly_cooldowns",
        "account_id",
        "companies",
        OnDelete::Cascade,
    ),
    (
        "fk_import_errors_import",
        "import_errors",
        "import_id",
        "imports",
        OnDelete::Cascade,
    ),
];

/// `(table, parent table, column naming the parent)`: tenant tables that gain `organization_id`.
const ADOPTED: &[(&str, &str, &str)] = &[
    ("integration_cursors", "integrations", "integration_id"),
    ("webhook_attempts", "webhook_deliveries", "delivery_id"),
];

/// `(name, table, columns)`: on SQLite, the unique indexes that make the new `ON CONFLICT`
/// targets (keys that gained `organization_id` on PostgreSQL) valid there too.
const SQLITE_TARGETS: &[(&str, &str, &[&str])] = &[
    (
        "ux_account_scores_account_org",
        "account_scores",
        &["account_id", "organization_id"],
    ),
    (
        "ux_enrichments_id_org",
        "enrichments",
        &["id", "organization_id"],
    ),
    (
        "ux_score_recomputes_running_org",
        "score_recomputes",
        &["running_organization_id", "organization_id"],
    ),
    (
        "ux_integration_cursors_org",
        "integration_cursors",
        &["integration_id", "resource", "organization_id"],
    ),
];

fn cols(c: &[&str]) -> String {
    c.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_org<'a>(c: &[&'a str]) -> Vec<&'a str> {
    c.iter().copied().chain(["organization_id"]).collect()
}

async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

/// The statements that declare `key` with `columns`.
fn declare(table: &str, name: &str, kind: Kind, columns: &[&str]) -> String {
    match kind {
        Kind::Primary => {
            format!(
                "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{name}\" PRIMARY KEY ({})",
                cols(columns)
            )
        }
        Kind::UniqueConstraint => {
            format!(
                "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{name}\" UNIQUE ({})",
                cols(columns)
            )
        }
        Kind::UniqueIndex => format!(
            "CREATE UNIQUE INDEX \"{name}\" ON \"{table}\" ({})",
            cols(columns)
        ),
    }
}

fn drop_key(table: &str, name: &str, kind: Kind) -> String {
    match kind {
        Kind::UniqueIndex => format!("DROP INDEX \"{name}\""),
        _ => format!("ALTER TABLE \"{table}\" DROP CONSTRAINT \"{name}\""),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        for (table, parent, via) in ADOPTED {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(*table))
                        .add_column(uuid_null(Alias::new("organization_id")))
                        .to_owned(),
                )
                .await?;
            run(
                manager,
                &format!(
                    "UPDATE \"{table}\" SET organization_id = \
                     (SELECT p.organization_id FROM \"{parent}\" p WHERE p.id = \"{table}\".\"{via}\")"
                ),
            )
            .await?;
            if postgres {
                run(
                    manager,
                    &format!(
                        "ALTER TABLE \"{table}\" ALTER COLUMN organization_id SET NOT NULL, \
                         ADD CONSTRAINT \"fk_{table}_organization\" FOREIGN KEY (organization_id) \
                         REFERENCES organizations (id) ON DELETE CASCADE"
                    ),
                )
                .await?;
            }
        }
        if !postgres {
            for (name, table, columns) in SQLITE_TARGETS {
                run(
                    manager,
                    &format!(
                        "CREATE UNIQUE INDEX \"{name}\" ON \"{table}\" ({})",
                        cols(columns)
                    ),
                )
                .await?;
            }
            return Ok(());
        }
        for (name, table, ..) in REFERENCES {
            run(
                manager,
                &format!("ALTER TABLE \"{table}\" DROP CONSTRAINT \"{name}\""),
            )
            .await?;
        }
        for (table, name, kind, columns) in KEYS {
            run(manager, &drop_key(table, name, *kind)).await?;
            run(manager, &declare(table, name, *kind, &with_org(columns))).await?;
        }
        for (name, table, column, target, on_delete) in REFERENCES {
            let action = match on_delete {
                OnDelete::Cascade => " ON DELETE CASCADE",
                OnDelete::SetNull => "",
            };
            run(
                manager,
                &format!(
                    "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{name}\" FOREIGN KEY \
                     (organization_id, \"{column}\") REFERENCES \"{target}\" (organization_id, id){action}"
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        if postgres {
            for (name, table, ..) in REFERENCES {
                run(
                    manager,
                    &format!("ALTER TABLE \"{table}\" DROP CONSTRAINT \"{name}\""),
                )
                .await?;
            }
            for (table, name, kind, columns) in KEYS {
                run(manager, &drop_key(table, name, *kind)).await?;
                run(manager, &declare(table, name, *kind, columns)).await?;
            }
            for (name, table, column, target, on_delete) in REFERENCES {
                let action = match on_delete {
                    OnDelete::Cascade => "CASCADE",
                    OnDelete::SetNull => "SET NULL",
                };
                run(
                    manager,
                    &format!(
                        "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{name}\" FOREIGN KEY (\"{column}\") \
                         REFERENCES \"{target}\" (id) ON DELETE {action}"
                    ),
                )
                .await?;
            }
        } else {
            for (name, ..) in SQLITE_TARGETS {
                run(manager, &format!("DROP INDEX \"{name}\"")).await?;
            }
        }
        for (table, ..) in ADOPTED {
            if postgres {
                run(
                    manager,
                    &format!("ALTER TABLE \"{table}\" DROP CONSTRAINT \"fk_{table}_organization\""),
                )
                .await?;
            }
            run(
                manager,
                &format!("ALTER TABLE \"{table}\" DROP COLUMN organization_id"),
            )
            .await?;
        }
        Ok(())
    }
}
