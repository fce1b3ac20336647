//! AI account briefs. `account_briefs` holds each account's latest brief (one row per
//! organization and account): its checked statements and next-best actions, whether a model or
//! the deterministic fallback wrote it, and the hash of the inputs it was built from (a brief is
//! regenerated only when that hash changes). `ai_usage` counts briefs and tokens per organization
//! per calendar month (the monthly budget reads it). `ai_settings` holds an organization's own
//! Anthropic API key, sealed under `ENCRYPTION_KEY`, with a short prefix to show.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountBriefs::Table)
                    .if_not_exists()
                    .col(uuid(AccountBriefs::Id).primary_key())
                    .col(uuid(AccountBriefs::OrganizationId))
                    .col(uuid(AccountBriefs::AccountId))
                    .col(string_len(AccountBriefs::InputHash, 64))
                    .col(string_len(AccountBriefs::Source, 16))
                    .col(string_len_null(AccountBriefs::FallbackReason, 32))
                    .col(string_len_null(AccountBriefs::Model, 100))
                    .col(json_binary(AccountBriefs::Statements))
                    .col(json_binary(AccountBriefs::Actions))
                    .col(integer(AccountBriefs::Dropped))
                    .col(big_integer(AccountBriefs::InputTokens))
                    .col(big_integer(AccountBriefs::OutputTokens))
                    .col(uuid_null(AccountBriefs::GeneratedBy))
                    .col(timestamp_with_time_zone(AccountBriefs::GeneratedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_briefs_organization")
                            .from(AccountBriefs::Table, AccountBriefs::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_briefs_account")
                            .from(AccountBriefs::Table, AccountBriefs::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_account_briefs_account")
                    .table(AccountBriefs::Table)
                    .col(AccountBriefs::OrganizationId)
                    .col(AccountBriefs::AccountId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_briefs_account")
                    .table(AccountBriefs::Table)
                    .col(AccountBriefs::AccountId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AiUsage::Table)
                    .if_not_exists()
                    .col(uuid(AiUsage::OrganizationId))
                    .col(string_len(AiUsage::Month, 7))
                    .col(big_integer(AiUsage::Briefs))
                    .col(big_integer(AiUsage::InputTokens))
                    .col(big_integer(AiUsage::OutputTokens))
                    .col(timestamp_with_time_zone(AiUsage::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(AiUsage::OrganizationId)
                            .col(AiUsage::Month),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ai_usage_organization")
                            .from(AiUsage::Table, AiUsage::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AiSettings::Table)
                    .if_not_exists()
                    .col(uuid(AiSettings::Id).primary_key())
                    .col(uuid(AiSettings::OrganizationId))
                    .col(text(AiSettings::ApiKeyCiphertext))
                    .col(string_len(AiSettings::ApiKeyPrefix, 16))
                    .col(uuid_null(AiSettings::UpdatedBy))
                    .col(timestamp_with_time_zone(AiSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ai_settings_organization")
                            .from(AiSettings::Table, AiSettings::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_ai_settings_organization")
                    .table(AiSettings::Table)
                    .col(AiSettings::OrganizationId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AiSettings::Table.into_iden(),
            AiUsage::Table.into_iden(),
            AccountBriefs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AccountBriefs {
    Table,
    Id,
    OrganizationId,
    AccountId,
    InputHash,
    Source,
    FallbackReason,
    Model,
    Statements,
    Actions,
    Dropped,
    InputTokens,
    OutputTokens,
    GeneratedBy,
    GeneratedAt,
}

#[derive(DeriveIden)]
enum AiUsage {
    Table,
    OrganizationId,
    Month,
    Briefs,
    InputTokens,
    OutputTokens,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AiSettings {
    Table,
    Id,
    OrganizationId,
    ApiKeyCiphertext,
    ApiKeyPrefix,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    Id,
}
