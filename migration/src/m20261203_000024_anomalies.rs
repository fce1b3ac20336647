//! Signal anomalies: the hourly detection's findings (`anomalies`, one row per detected spike or
//! drop of an account's daily signal count, with the statistics that judged it) and its cooldown
//! (`anomaly_cooldowns`, when an (account, kind) last fired: a real key, so the 24-hour quiet
//! period is one indexed read, not a search through notification text). Both lead with the
//! organization; the list indexes serve `anomalies(days)` (organization, newest first) and
//! `Account.anomalies` (organization, account, newest first).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Anomalies::Table)
                    .if_not_exists()
                    .col(uuid(Anomalies::Id).primary_key())
                    .col(uuid(Anomalies::OrganizationId))
                    .col(uuid(Anomalies::AccountId))
                    .col(string_len(Anomalies::Kind, 16))
                    .col(string_len(Anomalies::Severity, 16))
                    .col(date(Anomalies::Day))
                    .col(big_integer(Anomalies::TodayCount))
                    .col(double(Anomalies::Mean))
                    .col(double(Anomalies::Stddev))
                    .col(double(Anomalies::ZScore))
                    .col(big_integer(Anomalies::ExpectedMin))
                    .col(big_integer(Anomalies::ExpectedMax))
                    .col(timestamp_with_time_zone(Anomalies::DetectedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_anomalies_organization")
                            .from(Anomalies::Table, Anomalies::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_anomalies_account")
                            .from(Anomalies::Table, Anomalies::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_anomalies_org_detected")
                    .table(Anomalies::Table)
                    .col(Anomalies::OrganizationId)
                    .col(Anomalies::DetectedAt)
                    .col(Anomalies::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_anomalies_account_detected")
                    .table(Anomalies::Table)
                    .col(Anomalies::OrganizationId)
                    .col(Anomalies::AccountId)
                    .col(Anomalies::DetectedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AnomalyCooldowns::Table)
                    .if_not_exists()
                    .col(uuid(AnomalyCooldowns::OrganizationId))
                    .col(uuid(AnomalyCooldowns::AccountId))
                    .col(string_len(AnomalyCooldowns::Kind, 16))
                    .col(timestamp_with_time_zone(AnomalyCooldowns::LastDetectedAt))
                    .primary_key(
                        Index::create()
                            .col(AnomalyCooldowns::OrganizationId)
                            .col(AnomalyCooldowns::AccountId)
                            .col(AnomalyCooldowns::Kind),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_anomaly_cooldowns_organization")
                            .from(AnomalyCooldowns::Table, AnomalyCooldowns::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_anomaly_cooldowns_account")
                            .from(AnomalyCooldowns::Table, AnomalyCooldowns::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AnomalyCooldowns::Table.into_iden(),
            Anomalies::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Anomalies {
    Table,
    Id,
    OrganizationId,
    AccountId,
    Kind,
    Severity,
    Day,
    TodayCount,
    Mean,
    Stddev,
    ZScore,
    ExpectedMin,
    ExpectedMax,
    DetectedAt,
}

#[derive(DeriveIden)]
enum AnomalyCooldowns {
    Table,
    OrganizationId,
    AccountId,
    Kind,
    LastDetectedAt,
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
