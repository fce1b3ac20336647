//! Where an alert goes besides the app, and what each member wants. A rule gains `channels`
//! (JSON: in-app, email; absent = in-app only) and `slack_url` (its Slack incoming webhook, sealed
//! with `ENCRYPTION_KEY`). `alert_deliveries` records every email and Slack post (an alert's or a
//! digest's): what was sent, to whom, its attempts and outcome; each is sent by its own job, so a
//! failure retries alone. `notification_preferences` holds a member's choices per organization
//! (in-app, alert emails, digest frequency); no row = the defaults.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one change per ALTER TABLE.
        for col in [
            json_binary_null(AlertRules::Channels),
            text_null(AlertRules::SlackUrl),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AlertRules::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AlertDeliveries::Table)
                    .if_not_exists()
                    .col(uuid(AlertDeliveries::Id).primary_key())
                    .col(uuid(AlertDeliveries::OrganizationId))
                    .col(string_len(AlertDeliveries::Kind, 16))
                    .col(string_len(AlertDeliveries::Channel, 16))
                    .col(uuid_null(AlertDeliveries::RuleId))
                    .col(uuid_null(AlertDeliveries::AccountId))
                    .col(uuid_null(AlertDeliveries::UserId))
                    .col(string_len(AlertDeliveries::Target, 320))
                    .col(text_null(AlertDeliveries::SealedUrl))
                    .col(json_binary(AlertDeliveries::Content))
                    .col(string_len(AlertDeliveries::Status, 16))
                    .col(integer(AlertDeliveries::Attempts))
                    .col(text_null(AlertDeliveries::LastError))
                    .col(timestamp_with_time_zone(AlertDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(AlertDeliveries::UpdatedAt))
                    .col(timestamp_with_time_zone_null(AlertDeliveries::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alert_deliveries_organization")
                            .from(AlertDeliveries::Table, AlertDeliveries::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alert_deliveries_org")
                    .table(AlertDeliveries::Table)
                    .col(AlertDeliveries::OrganizationId)
                    .col(AlertDeliveries::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationPreferences::Table)
                    .if_not_exists()
                    .col(uuid(NotificationPreferences::OrganizationId))
                    .col(uuid(NotificationPreferences::UserId))
                    .col(boolean(NotificationPreferences::InApp))
                    .col(boolean(NotificationPreferences::AlertEmails))
                    .col(string_len(NotificationPreferences::Digest, 16))
                    .col(timestamp_with_time_zone(NotificationPreferences::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(NotificationPreferences::OrganizationId)
                            .col(NotificationPreferences::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_preferences_organization")
                            .from(
                                NotificationPreferences::Table,
                                NotificationPreferences::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_preferences_user")
                            .from(
                                NotificationPreferences::Table,
                                NotificationPreferences::UserId,
                            )
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NotificationPreferences::Table.into_iden(),
            AlertDeliveries::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for col in [AlertRules::SlackUrl, AlertRules::Channels] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AlertRules::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Channels,
    SlackUrl,
}

#[derive(DeriveIden)]
enum AlertDeliveries {
    Table,
    Id,
    OrganizationId,
    Kind,
    Channel,
    RuleId,
    AccountId,
    UserId,
    Target,
    SealedUrl,
    Content,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    UpdatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    OrganizationId,
    UserId,
    InApp,
    AlertEmails,
    Digest,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
