//! Durable jobs: the queue itself, the paused flag of each queue (survives restarts),
//! and the cron ticks already enqueued (one row per schedule and tick, so a tick is enqueued once
//! however many workers fire it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .if_not_exists()
                    .col(uuid(Jobs::Id).primary_key())
                    .col(string_len(Jobs::Queue, 64))
                    .col(string_len(Jobs::Name, 100))
                    .col(json_binary(Jobs::Payload))
                    .col(uuid_null(Jobs::OrganizationId))
                    .col(string_len(Jobs::State, 16))
                    .col(integer(Jobs::Priority))
                    .col(integer(Jobs::Attempts))
                    .col(integer(Jobs::MaxAttempts))
                    .col(big_integer(Jobs::BackoffBaseMs))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(string_len_null(Jobs::LockedBy, 200))
                    .col(timestamp_with_time_zone_null(Jobs::LockedUntil))
                    .col(text_null(Jobs::LastError))
                    .col(string_len_null(Jobs::DedupeKey, 300))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_jobs_organization")
                            .from(Jobs::Table, Jobs::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A waiting job's dedupe key is unique; it is cleared when the job is claimed.
        manager
            .create_index(
                Index::create()
                    .name("ux_jobs_dedupe_key")
                    .table(Jobs::Table)
                    .col(Jobs::DedupeKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_claim")
                    .table(Jobs::Table)
                    .col(Jobs::State)
                    .col(Jobs::Queue)
                    .col(Jobs::RunAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_queue_state_finished")
                    .table(Jobs::Table)
                    .col(Jobs::Queue)
                    .col(Jobs::State)
                    .col(Jobs::FinishedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobQueues::Table)
                    .if_not_exists()
                    .col(string_len(JobQueues::Name, 64).primary_key())
                    .col(boolean(JobQueues::Paused))
                    .col(timestamp_with_time_zone(JobQueues::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobCronTicks::Table)
                    .if_not_exists()
                    .col(string_len(JobCronTicks::Name, 100))
                    .col(timestamp_with_time_zone(JobCronTicks::TickAt))
                    .col(uuid_null(JobCronTicks::JobId))
                    .col(timestamp_with_time_zone(JobCronTicks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(JobCronTicks::Name)
                            .col(JobCronTicks::TickAt),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            JobCronTicks::Table.into_iden(),
            JobQueues::Table.into_iden(),
            Jobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Queue,
    Name,
    Payload,
    OrganizationId,
    State,
    Priority,
    Attempts,
    MaxAttempts,
    BackoffBaseMs,
    RunAt,
    LockedBy,
    LockedUntil,
    LastError,
    DedupeKey,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum JobQueues {
    Table,
    Name,
    Paused,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum JobCronTicks {
    Table,
    Name,
    TickAt,
    JobId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}
