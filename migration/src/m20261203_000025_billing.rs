//! Plans and billing. `billing_accounts` holds each organization's plan and its Stripe
//! subscription's state (absent: the free plan, active); `billing_events` records every Stripe
//! event id processed, so a replayed event is processed once; `billing_settings` mirrors the
//! running configuration's enforcement switch and grace period (written at start), so every
//! process enforces the same limits. `usage_counters` counts what is counted per period (signals
//! per calendar month), updated in the transaction that stores them; `usage_warnings` records
//! each 80 % / 100 % warning once per organization, metric and period.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BillingSettings::Table)
                    .if_not_exists()
                    .col(integer(BillingSettings::Id).primary_key())
                    .col(boolean(BillingSettings::Enforce))
                    .col(integer(BillingSettings::GraceDays))
                    .col(timestamp_with_time_zone(BillingSettings::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingAccounts::Table)
                    .if_not_exists()
                    .col(uuid(BillingAccounts::OrganizationId).primary_key())
                    .col(string_len(BillingAccounts::Plan, 16))
                    .col(string_len(BillingAccounts::Status, 24))
                    .col(string_len_null(BillingAccounts::StripeCustomerId, 255))
                    .col(string_len_null(BillingAccounts::StripeSubscriptionId, 255))
                    .col(string_len_null(BillingAccounts::StripePriceId, 255))
                    .col(timestamp_with_time_zone_null(
                        BillingAccounts::CurrentPeriodEnd,
                    ))
                    .col(boolean(BillingAccounts::CancelAtPeriodEnd))
                    .col(timestamp_with_time_zone_null(BillingAccounts::PastDueSince))
                    .col(timestamp_with_time_zone_null(BillingAccounts::StateAt))
                    .col(json_binary_null(BillingAccounts::LimitOverrides))
                    .col(timestamp_with_time_zone(BillingAccounts::CreatedAt))
                    .col(timestamp_with_time_zone(BillingAccounts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_accounts_organization")
                            .from(BillingAccounts::Table, BillingAccounts::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_accounts_customer")
                    .table(BillingAccounts::Table)
                    .col(BillingAccounts::StripeCustomerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingEvents::Table)
                    .if_not_exists()
                    .col(string_len(BillingEvents::Id, 255).primary_key())
                    .col(string_len(BillingEvents::EventType, 100))
                    .col(timestamp_with_time_zone(BillingEvents::Created))
                    .col(uuid_null(BillingEvents::OrganizationId))
                    .col(string_len(BillingEvents::Outcome, 200))
                    .col(timestamp_with_time_zone(BillingEvents::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageCounters::Table)
                    .if_not_exists()
                    .col(uuid(UsageCounters::OrganizationId))
                    .col(string_len(UsageCounters::Metric, 32))
                    .col(string_len(UsageCounters::Period, 16))
                    .col(big_integer(UsageCounters::Value))
                    .col(timestamp_with_time_zone(UsageCounters::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(UsageCounters::OrganizationId)
                            .col(UsageCounters::Metric)
                            .col(UsageCounters::Period),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_usage_counters_organization")
                            .from(UsageCounters::Table, UsageCounters::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // This month's signals stored before the counter existed are counted, so an upgrade in
        // the middle of a month does not restart its count.
        let backfill = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO usage_counters (organization_id, metric, period, value, updated_at) \
                 SELECT organization_id, 'signals', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), \
                 count(*), now() FROM signals \
                 WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
                 GROUP BY organization_id"
            }
            _ => {
                "INSERT INTO usage_counters (organization_id, metric, period, value, updated_at) \
                 SELECT organization_id, 'signals', strftime('%Y-%m', 'now'), count(*), \
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM signals \
                 WHERE strftime('%Y-%m', created_at) = strftime('%Y-%m', 'now') \
                 GROUP BY organization_id"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageWarnings::Table)
                    .if_not_exists()
                    .col(uuid(UsageWarnings::OrganizationId))
                    .col(string_len(UsageWarnings::Metric, 32))
                    .col(string_len(UsageWarnings::Period, 16))
                    .col(integer(UsageWarnings::Threshold))
                    .col(big_integer(UsageWarnings::Current))
                    .col(big_integer(UsageWarnings::Allowed))
                    .col(string_len(UsageWarnings::Plan, 16))
                    .col(timestamp_with_time_zone(UsageWarnings::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(UsageWarnings::OrganizationId)
                            .col(UsageWarnings::Metric)
                            .col(UsageWarnings::Period)
                            .col(UsageWarnings::Threshold),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_usage_warnings_organization")
                            .from(UsageWarnings::Table, UsageWarnings::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsageWarnings::Table.into_iden(),
            UsageCounters::Table.into_iden(),
            BillingEvents::Table.into_iden(),
            BillingAccounts::Table.into_iden(),
            BillingSettings::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
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
enum BillingSettings {
    Table,
    Id,
    Enforce,
    GraceDays,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingAccounts {
    Table,
    OrganizationId,
    Plan,
    Status,
    StripeCustomerId,
    StripeSubscriptionId,
    StripePriceId,
    CurrentPeriodEnd,
    CancelAtPeriodEnd,
    PastDueSince,
    StateAt,
    LimitOverrides,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BillingEvents {
    Table,
    Id,
    EventType,
    Created,
    OrganizationId,
    Outcome,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    OrganizationId,
    Metric,
    Period,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UsageWarnings {
    Table,
    OrganizationId,
    Metric,
    Period,
    Threshold,
    Current,
    Allowed,
    Plan,
    CreatedAt,
}
