//! On PostgreSQL, `signals` (by `timestamp`) and `events` (by `occurred_at`) become tables
//! partitioned by month, so retention drops whole months and a query bounded in time reads only
//! the months it names. SQLite keeps plain tables (retention deletes rows there).
//!
//! Each table gets one partition per month from twelve months back to two months ahead, plus a
//! `DEFAULT` partition for rows outside them (older history, e.g. a connector's first backfill).
//! The `partition-maintenance` job (`domain::partitions`) keeps the window rolling.
//!
//! PostgreSQL requires every unique key of a partitioned table to hold the partition column, so:
//! - the primary and unique keys gain it last (`signals (id, organization_id, timestamp)`);
//! - `signals`' idempotency key is no longer a unique index: ingest serialises on an advisory
//!   lock per unknown key instead (as it does for unknown identities), over a plain index;
//! - PostgreSQL 15 has no identity column on a partitioned table, so `events.seq` takes its
//!   values from a sequence of its own, continuing where the identity stopped.
//!
//! The rows are copied into the new table inside the migration's transaction: on a large
//! database this takes as long as copying the two tables (the runbook says so).

use chrono::{Datelike, Months, NaiveDate, Utc};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Months before the current one given a partition at the start.
const MONTHS_BACK: u32 = 12;
/// Months after the current one given a partition at the start.
const MONTHS_AHEAD: u32 = 2;

struct Shape {
    table: &'static str,
    column: &'static str,
    /// Keys, indexes and references besides the primary and unique keys, the same in both
    /// shapes (run after the rows are in).
    common: &'static [&'static str],
    /// The keys of the partitioned table.
    partitioned: &'static [&'static str],
    /// The keys of the plain table (before this migration).
    plain: &'static [&'static str],
}

const SHAPES: &[Shape] = &[
    Shape {
        table: "signals",
        column: "timestamp",
        common: &[
            "CREATE INDEX idx_signals_account_ts_id ON signals (account_id, \"timestamp\", id)",
            "CREATE INDEX idx_signals_contact_ts_id ON signals (contact_id, \"timestamp\", id)",
            "CREATE INDEX idx_signals_org_created ON signals (organization_id, created_at)",
            "CREATE INDEX idx_signals_org_dedupe ON signals (organization_id, dedupe_key, \"timestamp\")",
            "CREATE INDEX idx_signals_org_ts ON signals (organization_id, \"timestamp\", id)",
            "CREATE INDEX idx_signals_source ON signals (source_id)",
            "ALTER TABLE signals ADD CONSTRAINT fk_signals_account FOREIGN KEY (organization_id, account_id) REFERENCES companies (organization_id, id)",
            "ALTER TABLE signals ADD CONSTRAINT fk_signals_contact FOREIGN KEY (organization_id, contact_id) REFERENCES contacts (organization_id, id)",
            "ALTER TABLE signals ADD CONSTRAINT fk_signals_organization FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE",
            "ALTER TABLE signals ADD CONSTRAINT fk_signals_source FOREIGN KEY (organization_id, source_id) REFERENCES signal_sources (organization_id, id) ON DELETE CASCADE",
        ],
        partitioned: &[
            "ALTER TABLE signals ADD CONSTRAINT signals_pkey PRIMARY KEY (id, organization_id, \"timestamp\")",
            "CREATE INDEX idx_signals_org_idempotency ON signals (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
        ],
        plain: &[
            "ALTER TABLE signals ADD CONSTRAINT signals_pkey PRIMARY KEY (id, organization_id)",
            "CREATE UNIQUE INDEX ux_signals_org_idempotency ON signals (organization_id, idempotency_key)",
        ],
    },
    Shape {
        table: "events",
        column: "occurred_at",
        common: &[
            "CREATE INDEX idx_events_org_position ON events (organization_id, \"position\")",
            "CREATE INDEX idx_events_org_type_position ON events (organization_id, event_type, \"position\")",
            "CREATE INDEX idx_events_pending ON events (seq) WHERE \"position\" IS NULL",
            "ALTER TABLE events ADD CONSTRAINT fk_events_organization FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE",
        ],
        partitioned: &[
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq, organization_id, occurred_at)",
            "ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id, organization_id, occurred_at)",
            "CREATE UNIQUE INDEX idx_events_position ON events (\"position\", organization_id, occurred_at)",
        ],
        plain: &[
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq, organization_id)",
            "ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id, organization_id)",
            "CREATE UNIQUE INDEX idx_events_position ON events (\"position\", organization_id)",
        ],
    },
];

/// The sequence `events.seq` draws from once `events` is partitioned.
const EVENTS_SEQ: &str = "events_seq_values";

async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

/// `events.seq`'s next value: one past the largest stored.
async fn next_seq(manager: &SchemaManager<'_>) -> Result<i64, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM events",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row".into()))?;
    row.try_get::<i64>("", "next")
}

fn month_start(d: NaiveDate) -> String {
    format!("{:04}-{:02}-01 00:00:00+00", d.year(), d.month())
}

/// Replaces `shape.table` by a copy of itself in the other shape, its rows included.
async fn rebuild(manager: &SchemaManager<'_>, shape: &Shape, partition: bool) -> Result<(), DbErr> {
    let t = shape.table;
    let new = format!("{t}_rebuilt");
    if partition {
        run(
            manager,
            &format!(
                "CREATE TABLE {new} (LIKE {t} INCLUDING DEFAULTS) PARTITION BY RANGE (\"{}\")",
                shape.column
            ),
        )
        .await?;
        run(
            manager,
            &format!("CREATE TABLE {t}_default PARTITION OF {new} DEFAULT"),
        )
        .await?;
        let today = Utc::now().date_naive();
        let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
            .ok_or_else(|| DbErr::Custom("no first of the month".into()))?;
        let first = this_month - Months::new(MONTHS_BACK);
        for i in 0..=(MONTHS_BACK + MONTHS_AHEAD) {
            let from = first + Months::new(i);
            let to = from + Months::new(1);
            run(
                manager,
                &format!(
                    "CREATE TABLE {t}_y{:04}m{:02} PARTITION OF {new} FOR VALUES FROM ('{}') TO ('{}')",
                    from.year(),
                    from.month(),
                    month_start(from),
                    month_start(to)
                ),
            )
            .await?;
        }
    } else {
        run(
            manager,
            &format!("CREATE TABLE {new} (LIKE {t} INCLUDING DEFAULTS)"),
        )
        .await?;
    }
    let next = if t == "events" {
        // The identity (plain table) or the sequence (partitioned table, whose default `LIKE`
        // copied) goes with the old table; the new one continues its numbers.
        run(
            manager,
            &format!("ALTER TABLE {new} ALTER COLUMN seq DROP DEFAULT"),
        )
        .await?;
        Some(next_seq(manager).await?)
    } else {
        None
    };
    run(manager, &format!("INSERT INTO {new} SELECT * FROM {t}")).await?;
    run(manager, &format!("DROP TABLE {t}")).await?;
    run(manager, &format!("ALTER TABLE {new} RENAME TO {t}")).await?;
    if let Some(next) = next {
        if partition {
            run(
                manager,
                &format!(
                    "CREATE SEQUENCE {EVENTS_SEQ} AS bigint START WITH {next} OWNED BY events.seq; \
                     ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('{EVENTS_SEQ}')"
                ),
            )
            .await?;
        } else {
            run(
                manager,
                &format!(
                    "ALTER TABLE events ALTER COLUMN seq DROP DEFAULT; \
                     ALTER TABLE events ALTER COLUMN seq ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {next})"
                ),
            )
            .await?;
        }
    }
    let keys = if partition {
        shape.partitioned
    } else {
        shape.plain
    };
    for sql in keys.iter().chain(shape.common) {
        run(manager, sql).await?;
    }
    Ok(())
}

/// Both tables in one shape (PostgreSQL; SQLite keeps plain tables).
async fn rebuild_all(manager: &SchemaManager<'_>, partition: bool) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    for shape in SHAPES {
        rebuild(manager, shape, partition).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, false).await
    }
}
