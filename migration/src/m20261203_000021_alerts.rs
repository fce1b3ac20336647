//! Alert rules and in-app notifications. A rule (`alert_rules`) names a trigger, its parameters
//! and filters, who is told and how long it stays quiet for an account after firing; rules are
//! evaluated from the event log by one consumer (cursor `alerts` in `webhook_cursor`), so no
//! change is missed and none fires twice however many workers run; the time-based ones by the
//! `alert-check` job, which records how far each rule was checked (`checked_until`). `alert_cooldowns` holds when
//! a rule last fired for an account; `notifications` what each member is told.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertRules::Table)
                    .if_not_exists()
                    .col(uuid(AlertRules::Id).primary_key())
                    .col(uuid(AlertRules::OrganizationId))
                    .col(string_len(AlertRules::Name, 100))
                    .col(string_len(AlertRules::Trigger, 32))
                    .col(json_binary(AlertRules::Params))
                    .col(json_binary(AlertRules::Filter))
                    .col(json_binary(AlertRules::Recipients))
                    .col(integer(AlertRules::CooldownMinutes))
                    .col(boolean(AlertRules::Enabled))
                    .col(timestamp_with_time_zone_null(AlertRules::CheckedUntil))
                    .col(uuid_null(AlertRules::CreatedBy))
                    .col(timestamp_with_time_zone(AlertRules::CreatedAt))
                    .col(timestamp_with_time_zone(AlertRules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_rules_organization")
                            .from(AlertRules::Table, AlertRules::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_rules_org")
                    .table(AlertRules::Table)
                    .col(AlertRules::OrganizationId)
                    .col(AlertRules::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AlertCooldowns::Table)
                    .if_not_exists()
                    .col(uuid(AlertCooldowns::OrganizationId))
                    .col(uuid(AlertCooldowns::RuleId))
                    .col(uuid(AlertCooldowns::AccountId))
                    .col(timestamp_with_time_zone(AlertCooldowns::LastFiredAt))
                    .primary_key(
                        Index::create()
                            .col(AlertCooldowns::OrganizationId)
                            .col(AlertCooldowns::RuleId)
                            .col(AlertCooldowns::AccountId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_cooldowns_rule")
                            .from(AlertCooldowns::Table, AlertCooldowns::RuleId)
                            .to(AlertRules::Table, AlertRules::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_cooldowns_account")
                            .from(AlertCooldowns::Table, AlertCooldowns::AccountId)
                            .to(Companies::Table, Companies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(uuid(Notifications::Id).primary_key())
                    .col(uuid(Notifications::OrganizationId))
                    .col(uuid(Notifications::UserId))
                    .col(string_len(Notifications::Kind, 32))
                    .col(uuid_null(Notifications::RuleId))
                    .col(uuid_null(Notifications::AccountId))
                    .col(string_len(Notifications::Title, 300))
                    .col(text(Notifications::Body))
                    .col(json_binary(Notifications::Data))
                    .col(big_integer_null(Notifications::EventSeq))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_organization")
                            .from(Notifications::Table, Notifications::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_user")
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_member")
                    .table(Notifications::Table)
                    .col(Notifications::OrganizationId)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            AlertCooldowns::Table.into_iden(),
            AlertRules::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Id,
    OrganizationId,
    Name,
    Trigger,
    Params,
    Filter,
    Recipients,
    CooldownMinutes,
    Enabled,
    CheckedUntil,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AlertCooldowns {
    Table,
    OrganizationId,
    RuleId,
    AccountId,
    LastFiredAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    OrganizationId,
    UserId,
    Kind,
    RuleId,
    AccountId,
    Title,
    Body,
    Data,
    EventSeq,
    ReadAt,
    CreatedAt,
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

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
