//! On PostgreSQL, `ingest_claims`: the rows ingest locks instead of advisory locks when a batch
//! may create something (a person, an account, a signal with an idempotency key).
//!
//! Migration `000030` made ingest take one transaction-scoped advisory lock per unknown identity,
//! domain and idempotency key. Each advisory lock takes a slot of PostgreSQL's shared lock table
//! (`max_locks_per_transaction` × connections, 6,400 by default), so a few concurrent batches of
//! a thousand new people could exhaust it and fail with "out of shared memory". A row lock lives
//! in the row itself and takes no slot: a batch inserts one row per claim (a 64-bit hash of what
//! it may create, as the advisory keys were), and a concurrent batch claiming the same thing
//! waits on that row until the first commits.
//!
//! The rows matter only while their transaction is open (what it created is found by the next
//! batch's reads), so the table is `UNLOGGED` (no WAL; emptied by a crash, which is harmless), is
//! not backed up, and the daily `partition-maintenance` job deletes rows older than a day. SQLite
//! has no such table: its write transactions are serial already.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn postgres(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == sea_orm::DbBackend::Postgres
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNLOGGED TABLE ingest_claims (\
             claim bigint NOT NULL, \
             organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE, \
             claimed_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (claim, organization_id))",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_ingest_claims_claimed_at ON ingest_claims (claimed_at)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE ingest_claims")
            .await?;
        Ok(())
    }
}
