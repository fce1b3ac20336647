//! The event log: every change outsiders may care about appends one row in the same
//! transaction as the change. `seq` is the per-database increasing sequence number consumers
//! resume from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(big_integer(Events::Seq).auto_increment().primary_key())
                    .col(uuid(Events::Id).unique_key())
                    .col(uuid(Events::OrganizationId))
                    .col(string_len(Events::EventType, 64))
                    .col(json_binary(Events::Payload))
                    .col(uuid_null(Events::ActorUserId))
                    .col(uuid_null(Events::ActorApiKeyId))
                    .col(timestamp_with_time_zone(Events::OccurredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_events_organization")
                            .from(Events::Table, Events::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_org_seq")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_org_type_seq")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::EventType)
                    .col(Events::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    Id,
    OrganizationId,
    EventType,
    Payload,
    ActorUserId,
    ActorApiKeyId,
    OccurredAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
