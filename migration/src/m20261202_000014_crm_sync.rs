//! CRM sync (HubSpot, Salesforce): which outside record each of our accounts, contacts and deals
//! is in each system (`external_ids`), what was last pushed (a hash of the pushed values, so
//! only changes are sent) and the values last seen on both sides (for the conflict policy and
//! the loop guard); and what each run pushed and pulled, with its per-record errors.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ExternalIds::Table)
                    .if_not_exists()
                    .col(uuid(ExternalIds::OrganizationId))
                    .col(string_len(ExternalIds::System, 16))
                    .col(string_len(ExternalIds::Object, 16))
                    .col(uuid(ExternalIds::LocalId))
                    .col(string_len(ExternalIds::ExternalId, 64))
                    .col(text_null(ExternalIds::PushedHash))
                    .col(timestamp_with_time_zone_null(ExternalIds::PushedAt))
                    .col(json_binary(ExternalIds::Synced))
                    .col(timestamp_with_time_zone_null(ExternalIds::RemoteModifiedAt))
                    .col(timestamp_with_time_zone(ExternalIds::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ExternalIds::OrganizationId)
                            .col(ExternalIds::System)
                            .col(ExternalIds::Object)
                            .col(ExternalIds::LocalId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_external_ids_organization")
                            .from(ExternalIds::Table, ExternalIds::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_external_ids_external")
                    .table(ExternalIds::Table)
                    .col(ExternalIds::OrganizationId)
                    .col(ExternalIds::System)
                    .col(ExternalIds::Object)
                    .col(ExternalIds::ExternalId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        for col in [
            integer(IntegrationRuns::Pushed).default(0).to_owned(),
            integer(IntegrationRuns::Pulled).default(0).to_owned(),
            json_binary_null(IntegrationRuns::Errors).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IntegrationRuns::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            IntegrationRuns::Errors,
            IntegrationRuns::Pulled,
            IntegrationRuns::Pushed,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IntegrationRuns::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ExternalIds::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ExternalIds {
    Table,
    OrganizationId,
    System,
    Object,
    LocalId,
    ExternalId,
    PushedHash,
    PushedAt,
    Synced,
    RemoteModifiedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IntegrationRuns {
    Table,
    Pushed,
    Pulled,
    Errors,
}
