//! Score history: one snapshot of every scored account per UTC day, captured by the nightly
//! `capture-score-snapshot` job (idempotent per day: a second capture the same day replaces
//! the first) and pruned after `SCORE_HISTORY_DAYS`. The key leads with the organization, so a
//! tenant-sharded PostgreSQL can distribute the table by it, and serves both an account's
//! history (organization, account, day) and, through the second index, the organization's
//! daily trends (organization, day).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScoreSnapshots::Table)
                    .if_not_exists()
                    .col(uuid(ScoreSnapshots::OrganizationId))
                    .col(uuid(ScoreSnapshots::AccountId))
                    .col(date(ScoreSnapshots::Day))
                    .col(integer(ScoreSnapshots::Score))
                    .col(string_len(ScoreSnapshots::Tier, 16))
                    .col(integer(ScoreSnapshots::SignalCount))
                    .col(integer(ScoreSnapshots::UserCount))
                    .col(timestamp_with_time_zone(ScoreSnapshots::CapturedAt))
                    .primary_key(
                        Index::create()
                            .col(ScoreSnapshots::OrganizationId)
                            .col(ScoreSnapshots::AccountId)
                            .col(ScoreSnapshots::Day),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_score_snapshots_organization")
                            .from(ScoreSnapshots::Table, ScoreSnapshots::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_score_snapshots_account")
                            .from(ScoreSnapshots::Table, ScoreSnapshots::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_score_snapshots_org_day")
                    .table(ScoreSnapshots::Table)
                    .col(ScoreSnapshots::OrganizationId)
                    .col(ScoreSnapshots::Day)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ScoreSnapshots::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ScoreSnapshots {
    Table,
    OrganizationId,
    AccountId,
    Day,
    Score,
    Tier,
    SignalCount,
    UserCount,
    CapturedAt,
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
