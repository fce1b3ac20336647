//! CSV imports and data exports (`imports`, `import_errors`, `import_keys`, `exports`).
//!
//! An import is one uploaded CSV file (stored under `DATA_DIR/imports/`) with its column mapping
//! and its progress: `processed` counts the data rows whose batch is committed, written in each
//! batch's own transaction with the batch's rows and per-row errors (`import_errors`), so a
//! restarted job resumes after the last committed batch. `import_keys` remembers which deal a
//! source's record id (a HubSpot "Record ID", a Salesforce opportunity id) became, so importing
//! the same file again updates it. An export is one file under `DATA_DIR/exports/` with its
//! status, row count and expiry.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Imports::Table)
                    .if_not_exists()
                    .col(uuid(Imports::Id).primary_key())
                    .col(uuid(Imports::OrganizationId))
                    .col(string_len(Imports::Entity, 16))
                    .col(string_len(Imports::Status, 24))
                    .col(string_len(Imports::Source, 16))
                    .col(big_integer_null(Imports::SizeBytes))
                    .col(string_len_null(Imports::Delimiter, 4))
                    .col(json_binary(Imports::Headers))
                    .col(json_binary(Imports::Mapping))
                    .col(big_integer(Imports::Total))
                    .col(big_integer(Imports::Processed))
                    .col(big_integer(Imports::Created))
                    .col(big_integer(Imports::Updated))
                    .col(big_integer(Imports::Unchanged))
                    .col(big_integer(Imports::Failed))
                    .col(uuid_null(Imports::JobId))
                    .col(uuid_null(Imports::RequestedBy))
                    .col(uuid_null(Imports::RequestedByKey))
                    .col(text_null(Imports::LastError))
                    .col(timestamp_with_time_zone(Imports::CreatedAt))
                    .col(timestamp_with_time_zone(Imports::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Imports::StartedAt))
                    .col(timestamp_with_time_zone_null(Imports::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_imports_organization")
                            .from(Imports::Table, Imports::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_imports_org_created")
                    .table(Imports::Table)
                    .col(Imports::OrganizationId)
                    .col(Imports::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportErrors::Table)
                    .if_not_exists()
                    .col(uuid(ImportErrors::Id).primary_key())
                    .col(uuid(ImportErrors::ImportId))
                    .col(uuid(ImportErrors::OrganizationId))
                    .col(big_integer(ImportErrors::Row))
                    .col(big_integer_null(ImportErrors::Line))
                    .col(string_len(ImportErrors::Field, 200))
                    .col(text(ImportErrors::Message))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_errors_import")
                            .from(ImportErrors::Table, ImportErrors::ImportId)
                            .to(Imports::Table, Imports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_import_errors_import_row")
                    .table(ImportErrors::Table)
                    .col(ImportErrors::ImportId)
                    .col(ImportErrors::Row)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportKeys::Table)
                    .if_not_exists()
                    .col(uuid(ImportKeys::OrganizationId))
                    .col(string_len(ImportKeys::Entity, 16))
                    .col(string_len(ImportKeys::Key, 300))
                    .col(uuid(ImportKeys::ObjectId))
                    .col(timestamp_with_time_zone(ImportKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ImportKeys::OrganizationId)
                            .col(ImportKeys::Entity)
                            .col(ImportKeys::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_keys_organization")
                            .from(ImportKeys::Table, ImportKeys::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Exports::Table)
                    .if_not_exists()
                    .col(uuid(Exports::Id).primary_key())
                    .col(uuid(Exports::OrganizationId))
                    .col(json_binary(Exports::Entities))
                    .col(string_len(Exports::Format, 8))
                    .col(string_len(Exports::Status, 16))
                    .col(big_integer(Exports::Rows))
                    .col(big_integer_null(Exports::SizeBytes))
                    .col(string_len_null(Exports::FileName, 200))
                    .col(uuid_null(Exports::JobId))
                    .col(uuid_null(Exports::RequestedBy))
                    .col(text_null(Exports::Error))
                    .col(timestamp_with_time_zone_null(Exports::ExpiresAt))
                    .col(timestamp_with_time_zone(Exports::CreatedAt))
                    .col(timestamp_with_time_zone(Exports::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Exports::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_exports_organization")
                            .from(Exports::Table, Exports::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_exports_expires")
                    .table(Exports::Table)
                    .col(Exports::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Exports::Table.into_iden(),
            ImportKeys::Table.into_iden(),
            ImportErrors::Table.into_iden(),
            Imports::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Imports {
    Table,
    Id,
    OrganizationId,
    Entity,
    Status,
    Source,
    SizeBytes,
    Delimiter,
    Headers,
    Mapping,
    Total,
    Processed,
    Created,
    Updated,
    Unchanged,
    Failed,
    JobId,
    RequestedBy,
    RequestedByKey,
    LastError,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum ImportErrors {
    Table,
    Id,
    ImportId,
    OrganizationId,
    Row,
    Line,
    Field,
    Message,
}

#[derive(DeriveIden)]
enum ImportKeys {
    Table,
    OrganizationId,
    Entity,
    Key,
    ObjectId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Exports {
    Table,
    Id,
    OrganizationId,
    Entities,
    Format,
    Status,
    Rows,
    SizeBytes,
    FileName,
    JobId,
    RequestedBy,
    Error,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
