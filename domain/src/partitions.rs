//! The two tables that grow without bound, `signals` and `events`, and how long they keep rows.
//!
//! On PostgreSQL both are partitioned by month (migration `000030`): `signals` by `timestamp`
//! (when it happened, so a query bounded in time reads only its months) and `events` by
//! `occurred_at`. [`maintain`], run daily by the `partition-maintenance` job, keeps a partition
//! for every month from [`MONTHS_BACK`] months back to [`MONTHS_AHEAD`] months ahead (rows outside
//! them land in the `DEFAULT` partition; a month created later takes its rows out of it), and,
//! when a retention is set, drops the months older than it whole and deletes what is older in
//! the `DEFAULT` partition. On SQLite retention deletes the rows.
//!
//! It also deletes the rows of `ingest_claims` (PostgreSQL) older than a day.
//!
//! Retention counts whole months: with `SIGNAL_RETENTION_MONTHS=6`, the current month and the
//! six before it are kept.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::db::Backend;

/// Months before the current one that keep a partition of their own.
pub const MONTHS_BACK: u32 = 12;
/// Months after the current one given a partition ahead of time.
pub const MONTHS_AHEAD: u32 = 2;
/// The shortest signal retention accepted: scores read 90 days of signals.
pub const MIN_SIGNAL_RETENTION_MONTHS: u32 = 4;

/// A table partitioned by month on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Signals,
    Events,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Signals, Table::Events];

    pub fn name(self) -> &'static str {
        match self {
            Table::Signals => "signals",
            Table::Events => "events",
        }
    }

    /// The column it is partitioned by.
    pub fn column(self) -> &'static str {
        match self {
            Table::Signals => "timestamp",
            Table::Events => "occurred_at",
        }
    }

    /// The partition holding `month` (the first of a month).
    pub fn partition(self, month: NaiveDate) -> String {
        format!("{}_y{:04}m{:02}", self.name(), month.year(), month.month())
    }

    fn default_partition(self) -> String {
        format!("{}_default", self.name())
    }
}

/// How many months of each table are kept (`None`: everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub signal_months: Option<u32>,
    pub event_months: Option<u32>,
}

impl Retention {
    fn months(&self, table: Table) -> Option<u32> {
        match table {
            Table::Signals => self.signal_months,
            Table::Events => self.event_months,
        }
    }
}

/// What one [`maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Partitions created.
    pub created: Vec<String>,
    /// Partitions dropped (their rows with them).
    pub dropped: Vec<String>,
    /// Rows moved out of a `DEFAULT` partition into a month created for them.
    pub moved: u64,
    /// Rows deleted one by one (SQLite, or older rows in a `DEFAULT` partition).
    pub deleted: u64,
    /// Ingest claims older than [`CLAIM_LIFETIME_HOURS`] deleted (PostgreSQL).
    pub claims: u64,
}

/// How long a row of `ingest_claims` is kept. A claim matters only while the batch that took it
/// is open (`domain::signals::ingest`); a day is far past any transaction.
pub const CLAIM_LIFETIME_HOURS: i64 = 24;

/// The first of `at`'s month.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or(NaiveDate::MIN)
}

fn start(month: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn literal(month: NaiveDate) -> String {
    format!("'{:04}-{:02}-01 00:00:00+00'", month.year(), month.month())
}

/// The first instant kept under `months` of retention at `now`.
pub fn cutoff(now: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    start(month_of(now) - Months::new(months))
}

/// Creates the missing monthly partitions around `now`, and applies `retention`.
pub async fn maintain(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    retention: Retention,
) -> crate::Result<Report> {
    let mut report = Report::default();
    for table in Table::ALL {
        let cutoff = retention.months(table).map(|m| cutoff(now, m));
        if Backend::of(db) == Backend::Postgres {
            let existing = partitions(db, table).await?;
            let this_month = month_of(now);
            let mut month = this_month - Months::new(MONTHS_BACK);
            while month <= this_month + Months::new(MONTHS_AHEAD) {
                let keep = cutoff.is_none_or(|c| start(month) >= c);
                let name = table.partition(month);
                if keep && !existing.contains(&name) {
                    report.moved += create(db, table, month).await?;
                    report.created.push(name);
                }
                month = month + Months::new(1);
            }
            if let Some(c) = cutoff {
                for name in existing {
                    if parse_month(table, &name).is_some_and(|m| start(m + Months::new(1)) <= c) {
                        db.execute_unprepared(&format!("DROP TABLE \"{name}\""))
                            .await?;
                        report.dropped.push(name);
                    }
                }
            }
        }
        if let Some(c) = cutoff {
            report.deleted += delete_before(db, table, c).await?;
        }
    }
    if Backend::of(db) == Backend::Postgres {
        let before = now - chrono::Duration::hours(CLAIM_LIFETIME_HOURS);
        report.claims = db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "DELETE FROM ingest_claims WHERE claimed_at < $1",
                [before.into()],
            ))
            .await?
            .rows_affected();
    }
    if report != Report::default() {
        tracing::info!(
            created = ?report.created,
            dropped = ?report.dropped,
            moved = report.moved,
            deleted = report.deleted,
            claims = report.claims,
            "Partitions maintained"
        );
    }
    Ok(report)
}

/// The monthly partitions of `table` (the `DEFAULT` one left out), by name.
pub async fn partitions(db: &impl ConnectionTrait, table: Table) -> crate::Result<Vec<String>> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT c.relname::text AS name FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = '{}'::regclass ORDER BY 1",
                table.name()
            ),
        ))
        .await?;
    let mut names = Vec::with_capacity(rows.len());
    for r in rows {
        let name: String = r.try_get("", "name")?;
        if parse_month(table, &name).is_some() {
            names.push(name);
        }
    }
    Ok(names)
}

fn parse_month(table: Table, name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix(table.name())?.strip_prefix("_y")?;
    let (y, m) = rest.split_once('m')?;
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// Creates `table`'s partition for `month`, moving into it the rows of that month the `DEFAULT`
/// partition holds, in one transaction; returns how many moved.
///
/// The partition is built apart and then attached: `ATTACH PARTITION` takes only a
/// `SHARE UPDATE EXCLUSIVE` lock of the table (`CREATE TABLE … PARTITION OF` an exclusive one),
/// though it still locks the default partition exclusively while it scans it for rows of the
/// month, so reads not bounded in time wait for that scan (RUNBOOK.md says so).
async fn create(db: &DatabaseConnection, table: Table, month: NaiveDate) -> crate::Result<u64> {
    use sea_orm::TransactionTrait;
    let (t, col) = (table.name(), table.column());
    let name = table.partition(month);
    let (from, to) = (literal(month), literal(month + Months::new(1)));
    let default = table.default_partition();
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "CREATE TABLE \"{name}\" (LIKE \"{t}\" INCLUDING DEFAULTS)"
    ))
    .await?;
    let moved = txn
        .execute_unprepared(&format!(
            "WITH moved AS (DELETE FROM \"{default}\" \
             WHERE \"{col}\" >= {from} AND \"{col}\" < {to} RETURNING *) \
             INSERT INTO \"{name}\" SELECT * FROM moved"
        ))
        .await?
        .rows_affected();
    txn.execute_unprepared(&format!(
        "ALTER TABLE \"{t}\" ATTACH PARTITION \"{name}\" FOR VALUES FROM ({from}) TO ({to})"
    ))
    .await?;
    txn.commit().await?;
    Ok(moved)
}

/// Deletes `table`'s rows older than `cutoff` (on PostgreSQL only the `DEFAULT` partition can
/// still hold any once the old months are dropped).
async fn delete_before(
    db: &DatabaseConnection,
    table: Table,
    cutoff: DateTime<Utc>,
) -> crate::Result<u64> {
    let n = match table {
        Table::Signals => {
            entity::signals::Entity::delete_many()
                .filter(entity::signals::Column::Timestamp.lt(cutoff))
                .exec(db)
                .await?
                .rows_affected
        }
        Table::Events => {
            entity::events::Entity::delete_many()
                .filter(entity::events::Column::OccurredAt.lt(cutoff))
                .exec(db)
                .await?
                .rows_affected
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_carry_their_month() {
        let m = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(Table::Signals.partition(m), "signals_y2026m03");
        assert_eq!(parse_month(Table::Signals, "signals_y2026m03"), Some(m));
        assert_eq!(parse_month(Table::Signals, "signals_default"), None);
        assert_eq!(parse_month(Table::Events, "signals_y2026m03"), None);
    }

    #[test]
    fn retention_keeps_the_current_month_and_as_many_before() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
        assert_eq!(
            cutoff(now, 4),
            Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            cutoff(now, 0),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
    }
}
