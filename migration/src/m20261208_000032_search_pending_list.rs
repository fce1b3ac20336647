//! On PostgreSQL, a small pending list for the search indexes (`idx_{companies,contacts,deals}_search`,
//! GIN, migration `000008`).
//!
//! A GIN index with `fastupdate` (the default) adds new rows to an unsorted pending list and
//! merges it into the index only at the next vacuum or once it passes `gin_pending_list_limit`
//! (4 MB by default). Every search reads the whole pending list. Measured on the `reads` bench
//! (100k accounts just loaded): the accounts' pending list held 38,319 entries in 320 pages, and
//! a search for one account read 328 buffers and took 2.8 ms; after a vacuum, 8 buffers and
//! 0.17 ms. Between vacuums a busy organization's CRM always has such a list, since ingest
//! creates contacts and accounts. 64 kB (the smallest limit) keeps the list to a few pages:
//! inserts stay batched into the index, a few hundred rows at a time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The search indexes of migration `000008`.
const INDEXES: [&str; 3] = [
    "idx_companies_search",
    "idx_contacts_search",
    "idx_deals_search",
];

/// Runs `ALTER INDEX <index> <action>` for each search index (PostgreSQL only: SQLite's search
/// is FTS5, with no pending list).
async fn alter_each(manager: &SchemaManager<'_>, action: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    for index in INDEXES {
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER INDEX {index} {action}"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        alter_each(manager, "SET (gin_pending_list_limit = 64)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        alter_each(manager, "RESET (gin_pending_list_limit)").await
    }
}
