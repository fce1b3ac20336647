//! Operating the cron table at run time: an entry can be disabled (and enabled again) by an
//! operator, kept across restarts (`job_schedule_states`); each running scheduler writes a
//! heartbeat (`scheduler_heartbeats`), so `devsignal jobs schedules` and `devsignal doctor` can
//! tell whether any scheduler is alive; and a tick that enqueued nothing says why
//! (`job_cron_ticks.skipped`: `disabled`, or `duplicate` when an identical job was waiting).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobScheduleStates::Table)
                    .if_not_exists()
                    .col(string_len(JobScheduleStates::Name, 100).primary_key())
                    .col(boolean(JobScheduleStates::Disabled))
                    .col(timestamp_with_time_zone_null(JobScheduleStates::DisabledAt))
                    .col(text_null(JobScheduleStates::DisabledBy))
                    .col(text_null(JobScheduleStates::Reason))
                    .col(timestamp_with_time_zone(JobScheduleStates::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SchedulerHeartbeats::Table)
                    .if_not_exists()
                    .col(string_len(SchedulerHeartbeats::InstanceId, 200).primary_key())
                    .col(string_len(SchedulerHeartbeats::Host, 255))
                    .col(integer(SchedulerHeartbeats::Pid))
                    .col(timestamp_with_time_zone(SchedulerHeartbeats::StartedAt))
                    .col(timestamp_with_time_zone(SchedulerHeartbeats::BeatAt))
                    .col(timestamp_with_time_zone_null(
                        SchedulerHeartbeats::StoppedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(JobCronTicks::Table)
                    .add_column(string_len_null(JobCronTicks::Skipped, 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(JobCronTicks::Table)
                    .drop_column(JobCronTicks::Skipped)
                    .to_owned(),
            )
            .await?;
        for table in [
            SchedulerHeartbeats::Table.into_iden(),
            JobScheduleStates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum JobScheduleStates {
    Table,
    Name,
    Disabled,
    DisabledAt,
    DisabledBy,
    Reason,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SchedulerHeartbeats {
    Table,
    InstanceId,
    Host,
    Pid,
    StartedAt,
    BeatAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum JobCronTicks {
    Table,
    Skipped,
}
