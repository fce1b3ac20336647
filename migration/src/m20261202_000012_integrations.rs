//! Integrations: an organization's connected outside sources (GitHub, npm, PyPI, …) with their
//! public configuration, sealed credentials and webhook secret, status and schedule; one row per
//! sync run; per-resource cursors (paging position, ETag, Last-Modified, cached payloads) so an
//! interrupted run resumes where it stopped and an unchanged page costs a 304; and package
//! downloads per package per day.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Integrations::Table)
                    .if_not_exists()
                    .col(uuid(Integrations::Id).primary_key())
                    .col(uuid(Integrations::OrganizationId))
                    .col(string_len(Integrations::Kind, 32))
                    .col(string_len(Integrations::Status, 16))
                    .col(json_binary(Integrations::Config))
                    .col(text_null(Integrations::CredentialsCiphertext))
                    .col(text(Integrations::WebhookSecretCiphertext))
                    .col(uuid(Integrations::SourceId))
                    .col(timestamp_with_time_zone_null(Integrations::LastSyncAt))
                    .col(timestamp_with_time_zone_null(Integrations::LastSuccessAt))
                    .col(text_null(Integrations::LastError))
                    .col(boolean(Integrations::CredentialsRejected))
                    .col(timestamp_with_time_zone_null(Integrations::NextSyncAt))
                    .col(integer(Integrations::FailureStreak))
                    .col(uuid_null(Integrations::RunningRunId))
                    .col(timestamp_with_time_zone_null(Integrations::RunLeaseUntil))
                    .col(timestamp_with_time_zone(Integrations::CreatedAt))
                    .col(timestamp_with_time_zone(Integrations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integrations_organization")
                            .from(Integrations::Table, Integrations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integrations_org")
                    .table(Integrations::Table)
                    .col(Integrations::OrganizationId)
                    .col(Integrations::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integrations_kind_status")
                    .table(Integrations::Table)
                    .col(Integrations::Kind)
                    .col(Integrations::Status)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntegrationRuns::Table)
                    .if_not_exists()
                    .col(uuid(IntegrationRuns::Id).primary_key())
                    .col(uuid(IntegrationRuns::OrganizationId))
                    .col(uuid(IntegrationRuns::IntegrationId))
                    .col(string_len(IntegrationRuns::Status, 16))
                    .col(boolean(IntegrationRuns::Full))
                    .col(timestamp_with_time_zone(IntegrationRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(IntegrationRuns::FinishedAt))
                    .col(integer(IntegrationRuns::SignalsCreated))
                    .col(integer(IntegrationRuns::Requests))
                    .col(text_null(IntegrationRuns::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_runs_integration")
                            .from(IntegrationRuns::Table, IntegrationRuns::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_runs_integration")
                    .table(IntegrationRuns::Table)
                    .col(IntegrationRuns::IntegrationId)
                    .col(IntegrationRuns::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntegrationCursors::Table)
                    .if_not_exists()
                    .col(uuid(IntegrationCursors::IntegrationId))
                    .col(string_len(IntegrationCursors::Resource, 300))
                    .col(json_binary(IntegrationCursors::State))
                    .col(text_null(IntegrationCursors::Etag))
                    .col(text_null(IntegrationCursors::LastModified))
                    .col(timestamp_with_time_zone(IntegrationCursors::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(IntegrationCursors::IntegrationId)
                            .col(IntegrationCursors::Resource),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_cursors_integration")
                            .from(IntegrationCursors::Table, IntegrationCursors::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PackageDownloads::Table)
                    .if_not_exists()
                    .col(uuid(PackageDownloads::OrganizationId))
                    .col(string_len(PackageDownloads::Registry, 16))
                    .col(string_len(PackageDownloads::Package, 300))
                    .col(string_len(PackageDownloads::Day, 10))
                    .col(big_integer(PackageDownloads::Downloads))
                    .col(timestamp_with_time_zone(PackageDownloads::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(PackageDownloads::OrganizationId)
                            .col(PackageDownloads::Registry)
                            .col(PackageDownloads::Package)
                            .col(PackageDownloads::Day),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_package_downloads_organization")
                            .from(PackageDownloads::Table, PackageDownloads::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PackageDownloads::Table.into_iden(),
            IntegrationCursors::Table.into_iden(),
            IntegrationRuns::Table.into_iden(),
            Integrations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    OrganizationId,
    Kind,
    Status,
    Config,
    CredentialsCiphertext,
    WebhookSecretCiphertext,
    SourceId,
    LastSyncAt,
    LastSuccessAt,
    LastError,
    CredentialsRejected,
    NextSyncAt,
    FailureStreak,
    RunningRunId,
    RunLeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IntegrationRuns {
    Table,
    Id,
    OrganizationId,
    IntegrationId,
    Status,
    Full,
    StartedAt,
    FinishedAt,
    SignalsCreated,
    Requests,
    Error,
}

#[derive(DeriveIden)]
enum IntegrationCursors {
    Table,
    IntegrationId,
    Resource,
    State,
    Etag,
    LastModified,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PackageDownloads {
    Table,
    OrganizationId,
    Registry,
    Package,
    Day,
    Downloads,
    UpdatedAt,
}
