//! One index per list ordering, matching its `ORDER BY` exactly, so every page is an index range
//! scan and never a sort of the organization's rows. A list sorted by `key` reads
//! `ORDER BY key {ASC NULLS FIRST | DESC NULLS LAST}, id` (`domain::paging`; text keys are
//! `lower(column)`): the index is `(organization_id, key, id)`, declared `NULLS FIRST` on
//! PostgreSQL for a nullable key (SQLite puts NULLs first by itself), and serves both directions.
//! An account's signals and timeline read `(account_id, time, id)` the same way, and the top
//! accounts of a tier `(organization_id, tier, score, account_id)`. The copy of the score on the
//! account row is recomputed from `account_scores` (the list by score sorts by it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, key columns between `organization_id`-or-parent and `id`, nullable key).
/// The first column is `organization_id` unless the entry names another.
struct OrderIndex {
    name: &'static str,
    table: &'static str,
    lead: &'static str,
    key: &'static str,
    nullable: bool,
    tail: &'static str,
}

const fn org(
    name: &'static str,
    table: &'static str,
    key: &'static str,
    nullable: bool,
) -> OrderIndex {
    OrderIndex {
        name,
        table,
        lead: "organization_id",
        key,
        nullable,
        tail: "id",
    }
}

const INDEXES: &[OrderIndex] = &[
    org("idx_companies_by_name", "companies", "lower(name)", false),
    org(
        "idx_companies_by_domain",
        "companies",
        "lower(domain_normalized)",
        true,
    ),
    org("idx_companies_by_created", "companies", "created_at", false),
    org("idx_companies_by_updated", "companies", "updated_at", false),
    org("idx_companies_by_score", "companies", "score", true),
    org("idx_contacts_by_name", "contacts", "lower(last_name)", true),
    org(
        "idx_contacts_by_email",
        "contacts",
        "lower(email_normalized)",
        true,
    ),
    org("idx_contacts_by_created", "contacts", "created_at", false),
    org("idx_contacts_by_updated", "contacts", "updated_at", false),
    org("idx_deals_by_title", "deals", "lower(title)", false),
    org("idx_deals_by_amount", "deals", "amount", true),
    org("idx_deals_by_close", "deals", "expected_close_date", true),
    org("idx_deals_by_created", "deals", "created_at", false),
    org("idx_deals_by_updated", "deals", "updated_at", false),
    org(
        "idx_activities_by_title",
        "activities",
        "lower(title)",
        false,
    ),
    org("idx_activities_by_due", "activities", "due_date", true),
    org(
        "idx_activities_by_created",
        "activities",
        "created_at",
        false,
    ),
    org(
        "idx_activities_by_updated",
        "activities",
        "updated_at",
        false,
    ),
    // An account's (or contact's) signals, newest first, and the signal side of its timeline;
    // they replace the indexes on (account_id, timestamp) and (contact_id, timestamp), which
    // left ties on time to a sort.
    OrderIndex {
        name: "idx_signals_account_ts_id",
        table: "signals",
        lead: "account_id",
        key: "\"timestamp\"",
        nullable: false,
        tail: "id",
    },
    OrderIndex {
        name: "idx_signals_contact_ts_id",
        table: "signals",
        lead: "contact_id",
        key: "\"timestamp\"",
        nullable: false,
        tail: "id",
    },
    // The activity side of the timeline; replaces the index on account_id alone.
    OrderIndex {
        name: "idx_activities_account_created_id",
        table: "activities",
        lead: "account_id",
        key: "created_at",
        nullable: false,
        tail: "id",
    },
    // `topAccounts(tier:)`; replaces the index on (organization_id, tier).
    OrderIndex {
        name: "idx_account_scores_org_tier_score",
        table: "account_scores",
        lead: "organization_id, tier",
        key: "score",
        nullable: false,
        tail: "account_id",
    },
];

/// The indexes the ones above supersede, with their columns (to restore them on `down`).
const SUPERSEDED: &[(&str, &str, &str)] = &[
    (
        "idx_companies_org_score",
        "companies",
        "organization_id, score, id",
    ),
    (
        "idx_signals_account_ts",
        "signals",
        "account_id, \"timestamp\"",
    ),
    (
        "idx_signals_contact_ts",
        "signals",
        "contact_id, \"timestamp\"",
    ),
    ("idx_activities_account", "activities", "account_id"),
    (
        "idx_account_scores_org_tier",
        "account_scores",
        "organization_id, tier",
    ),
];

fn create_sql(i: &OrderIndex, backend: DbBackend) -> String {
    let nulls = if i.nullable && backend == DbBackend::Postgres {
        " NULLS FIRST"
    } else {
        ""
    };
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} ({}, {}{nulls}, {})",
        i.name, i.table, i.lead, i.key, i.tail
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for i in INDEXES {
            db.execute_unprepared(&create_sql(i, backend)).await?;
        }
        for (name, _, _) in SUPERSEDED {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        // The copy of each account's score, as `account_scores` holds it (NULL when unscored),
        // where it differs: on SQLite every updated account also rewrites its search entry.
        let differs = if backend == DbBackend::Postgres {
            "IS DISTINCT FROM"
        } else {
            "IS NOT"
        };
        let current = "(SELECT s.score FROM account_scores s WHERE s.account_id = companies.id)";
        db.execute_unprepared(&format!(
            "UPDATE companies SET score = {current} WHERE score {differs} {current}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, table, cols) in SUPERSEDED {
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})"
            ))
            .await?;
        }
        for i in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {}", i.name))
                .await?;
        }
        Ok(())
    }
}
