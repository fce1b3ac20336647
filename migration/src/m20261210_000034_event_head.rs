//! `event_head`: one row (id 1) holding the highest position the event log has handed out.
//!
//! The sequencer (`domain::events::sequence`) numbered new events after `MAX(position)` of the
//! rows still stored, so when the newest events went away (an organization's deletion cascades
//! to its events; retention drops old partitions, all of them on an idle log) their positions
//! were handed out again, and every consumer already past them (the live tailer, the webhook
//! and alert cursors) skipped the events that got them. The head only grows. It also answers
//! an idle follower's "anything new?" with one row instead of a probe of every partition.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventHead::Table)
                    .col(integer(EventHead::Id).primary_key())
                    .col(big_integer(EventHead::Top))
                    .to_owned(),
            )
            .await?;
        // Past every position given so far and every consumer cursor (which may lie past the
        // stored events already). A log that never positioned an event has no row yet, so a new
        // database stays empty (a restore needs one); the sequencer writes it on first use.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO event_head (id, top) SELECT 1, top FROM \
                 (SELECT MAX(top) AS top FROM (SELECT MAX(position) AS top FROM events \
                  UNION ALL SELECT MAX(last_seq) AS top FROM webhook_cursor) AS given) AS head \
                 WHERE top IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventHead::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum EventHead {
    Table,
    Id,
    Top,
}
