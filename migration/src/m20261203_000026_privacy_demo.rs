//! Erasure tombstones and the record of demo data seeded into an organization.
//!
//! `erasure_tombstones`: one row per identifier of a person erased under GDPR art. 17, as a
//! SHA-256 of (organization, kind, normalised value) — never the value itself — so ingest,
//! imports and connectors can refuse to re-create the person without the database keeping who
//! they were. The primary key (organization, hash) is the lookup ingest makes once per batch.
//!
//! `demo_seeds`: at most one row per organization, the ids of every object `seedDemoData`
//! created there (`objects`), so `removeDemoData` deletes exactly those and nothing else.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ErasureTombstones::Table)
                    .if_not_exists()
                    .col(uuid(ErasureTombstones::OrganizationId))
                    .col(string_len(ErasureTombstones::Hash, 64))
                    .col(string_len(ErasureTombstones::Kind, 32))
                    .col(timestamp_with_time_zone(ErasureTombstones::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ErasureTombstones::OrganizationId)
                            .col(ErasureTombstones::Hash),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_erasure_tombstones_organization")
                            .from(ErasureTombstones::Table, ErasureTombstones::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DemoSeeds::Table)
                    .if_not_exists()
                    .col(uuid(DemoSeeds::OrganizationId).primary_key())
                    .col(uuid_null(DemoSeeds::SeededBy))
                    .col(json_binary(DemoSeeds::Objects))
                    .col(timestamp_with_time_zone(DemoSeeds::SeededAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_demo_seeds_organization")
                            .from(DemoSeeds::Table, DemoSeeds::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DemoSeeds::Table.into_iden(),
            ErasureTombstones::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ErasureTombstones {
    Table,
    OrganizationId,
    Hash,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DemoSeeds {
    Table,
    OrganizationId,
    SeededBy,
    Objects,
    SeededAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
