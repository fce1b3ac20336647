//! The event log's consumer order moves from `seq` to `position`.
//!
//! `seq` stays the row's insertion number. `position` is the order consumers read in and resume
//! from, given to an event once its transaction has committed (`domain::events::sequence`), so
//! appenders no longer serialise on one lock for the length of their transactions. Until then it
//! is NULL; `idx_events_pending` finds those rows. Existing events keep their numbers
//! (`position = seq`), so stored cursors (webhooks, alerts, clients' `after`) stay valid.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(big_integer_null(Events::Position))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE events SET position = seq")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_position")
                    .table(Events::Table)
                    .col(Events::Position)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_events_org_position", &[Events::OrganizationId][..]),
            (
                "idx_events_org_type_position",
                &[Events::OrganizationId, Events::EventType][..],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Events::Table);
            for c in cols {
                index.col(c.clone());
            }
            manager
                .create_index(index.col(Events::Position).to_owned())
                .await?;
        }
        // Both backends take partial indexes; the pending set is small and short-lived.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_events_pending ON events (seq) WHERE position IS NULL",
            )
            .await?;
        for old in ["idx_events_org_seq", "idx_events_org_type_seq"] {
            manager
                .drop_index(Index::drop().name(old).table(Events::Table).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The old order (`seq`) covers every row, those never given a position included.
        manager
            .create_index(
                Index::create()
                    .name("idx_events_org_seq")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_org_type_seq")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::EventType)
                    .col(Events::Seq)
                    .to_owned(),
            )
            .await?;
        for name in [
            "idx_events_pending",
            "idx_events_org_type_position",
            "idx_events_org_position",
            "idx_events_position",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::Position)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone)]
enum Events {
    Table,
    Seq,
    Position,
    OrganizationId,
    EventType,
}
