//! `signal_intake`: signals accepted for later ingest (`Prefer: respond-async` on the REST ingest
//! routes). A row is one accepted request: who sent it (the principal, role and key scopes it
//! was accepted under), the built-in source it came through, its validated items, and, once the
//! worker has ingested it, the per-item results that its receipt shows. Ingesting a row and
//! marking it processed happen in one transaction, so an accepted signal is stored exactly once,
//! whatever crashes in between. Processed rows drop their items (personal data) and are pruned
//! after a week. Tenant-keyed: the primary key leads with the organization.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignalIntake::Table)
                    .if_not_exists()
                    .col(uuid(SignalIntake::OrganizationId))
                    .col(uuid(SignalIntake::Id))
                    .col(string_len(SignalIntake::Source, 32))
                    .col(string_len(SignalIntake::Principal, 120))
                    .col(string_len(SignalIntake::Role, 16))
                    .col(json(SignalIntake::Scopes))
                    .col(json(SignalIntake::Items))
                    .col(integer(SignalIntake::ItemCount))
                    .col(string_len(SignalIntake::State, 16))
                    .col(json_null(SignalIntake::Results))
                    .col(timestamp_with_time_zone(SignalIntake::ReceivedAt))
                    .col(timestamp_with_time_zone_null(SignalIntake::ProcessedAt))
                    .primary_key(
                        Index::create()
                            .col(SignalIntake::OrganizationId)
                            .col(SignalIntake::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signal_intake_organization")
                            .from(SignalIntake::Table, SignalIntake::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The drain's scan: pending rows, oldest first (ids are time-ordered v7 UUIDs).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_signal_intake_pending ON signal_intake (id) \
                 WHERE state = 'pending'",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_signal_intake_processed")
                    .table(SignalIntake::Table)
                    .col(SignalIntake::ProcessedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignalIntake::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SignalIntake {
    Table,
    OrganizationId,
    Id,
    Source,
    Principal,
    Role,
    Scopes,
    Items,
    ItemCount,
    State,
    Results,
    ReceivedAt,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
