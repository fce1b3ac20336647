//! `devsignal backup <file>`, `devsignal backup --verify <file>` and `devsignal restore <file>`:
//! a portable, online backup of the whole database, and its restore into an empty database of
//! either backend (so the same two commands move an installation from SQLite to PostgreSQL).
//!
//! A backup reads every table in one snapshot while the server keeps writing: on PostgreSQL one
//! `REPEATABLE READ READ ONLY` transaction, on SQLite one read transaction (WAL keeps its
//! snapshot while writers commit). Rows stream a keyset page at a time into the archive
//! (`archive.rs`), never a whole table in memory. A restore migrates the empty target to the
//! archive's schema, inserts every table in foreign-key order in one transaction, moves
//! PostgreSQL's sequences past the restored ids, commits, and then applies the migrations this
//! binary has beyond the archive's. If it fails, the transaction rolls back and the target is
//! left empty (migrated), so the same command can simply run again.

mod archive;
mod tables;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{SecondsFormat, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, IsolationLevel, TransactionTrait, Value,
};
use secrecy::ExposeSecret;

use self::archive::{ArchiveReader, ArchiveWriter, Header, Item, TableHeader};
use crate::config::Config;

/// `devsignal backup <file>`.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let db = super::open_existing_database(config).await?;
    let result = backup_from(&db, file).await;
    db.close().await.ok();
    result
}

async fn backup_from(db: &DatabaseConnection, file: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let pending: Vec<String> = domain::db::migration_status(db)
        .await?
        .into_iter()
        .filter(|m| !m.applied)
        .map(|m| m.name)
        .collect();
    if !pending.is_empty() {
        bail!(
            "the database has {} pending migration(s) ({}): start the server or run `devsignal \
             migrate up` first, or back up with the devsignal version that serves it",
            pending.len(),
            pending.join(", ")
        );
    }
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    // One snapshot for everything below: the migrations, the catalog, the counts and the rows.
    let snap = if postgres {
        db.begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?
    } else {
        // Deferred: SQLite's snapshot starts at the first read and holds until the end.
        db.begin().await?
    };
    let migrations: Vec<String> = snap
        .query_all_raw(sea_orm::Statement::from_string(
            snap.get_database_backend(),
            format!(
                "SELECT version FROM {} ORDER BY version",
                tables::MIGRATIONS_TABLE
            ),
        ))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let known = tables::known()?;
    tables::check_coverage(&snap, &known).await?;
    let ordered = tables::fk_order(&snap, known).await?;
    let mut header = Header {
        format: archive::FORMAT.into(),
        format_version: archive::FORMAT_VERSION,
        devsignal_version: env!("CARGO_PKG_VERSION").into(),
        created_at,
        backend: if postgres { "postgres" } else { "sqlite" }.into(),
        migrations,
        derived: tables::DERIVED.iter().map(|s| (*s).to_owned()).collect(),
        tables: Vec::with_capacity(ordered.len()),
    };
    for (name, columns) in ordered {
        header.tables.push(TableHeader {
            name: name.to_owned(),
            rows: tables::count(&snap, name).await?,
            columns,
        });
    }
    let mut w = ArchiveWriter::create(file, &header)?;
    let written = write_rows(&snap, &header, &mut w).await;
    snap.rollback().await.ok();
    if let Err(e) = written {
        w.abandon();
        return Err(e);
    }
    let path = w.finish()?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backed up {} rows of {} tables ({} migrations, snapshot at {}) to {} ({}) in {secs:.1} s",
        header.total_rows(),
        header.tables.len(),
        header.migrations.len(),
        header.created_at,
        path.display(),
        human_bytes(size),
    );
    Ok(())
}

async fn write_rows(
    snap: &impl ConnectionTrait,
    header: &Header,
    w: &mut ArchiveWriter,
) -> anyhow::Result<()> {
    for t in &header.tables {
        w.table(&t.name)?;
        let n = tables::dump(snap, &t.name, w).await?;
        if n != t.rows {
            bail!(
                "table {} gave {n} rows where the snapshot counted {}: the read was not one \
                 snapshot",
                t.name,
                t.rows
            );
        }
        eprintln!("backup: {:<22} {n:>10} rows", t.name);
    }
    Ok(())
}

/// What walking an archive yields: decoded rows, each table's end, the end.
enum Step {
    Row(usize, Vec<Value>),
    TableDone(usize),
    End,
}

/// Walks an archive's items against its header: tables in the header's order, each with exactly
/// the header's row count, every value decoding to its column's type.
struct Walk {
    reader: ArchiveReader,
    current: Option<usize>,
    seen: u64,
    next_table: usize,
    pending: Option<Step>,
}

impl Walk {
    fn new(reader: ArchiveReader) -> Self {
        Walk {
            reader,
            current: None,
            seen: 0,
            next_table: 0,
            pending: None,
        }
    }

    fn header(&self) -> &Header {
        &self.reader.header
    }

    /// Ends the current table: its count must be the header's.
    fn close(&mut self) -> anyhow::Result<Option<Step>> {
        let Some(i) = self.current.take() else {
            return Ok(None);
        };
        let t = &self.reader.header.tables[i];
        if self.seen != t.rows {
            return Err(self.reader.row_error(format_args!(
                "table {} has {} rows where the header says {}",
                t.name, self.seen, t.rows
            )));
        }
        Ok(Some(Step::TableDone(i)))
    }

    fn next(&mut self) -> anyhow::Result<Step> {
        if let Some(step) = self.pending.take() {
            return Ok(step);
        }
        loop {
            match self.reader.next_item()? {
                Item::Row(values) => {
                    let Some(i) = self.current else {
                        return Err(self.reader.row_error("a row before any table"));
                    };
                    let t = &self.reader.header.tables[i];
                    self.seen += 1;
                    if self.seen > t.rows {
                        return Err(self.reader.row_error(format_args!(
                            "more rows of {} than the header's {}",
                            t.name, t.rows
                        )));
                    }
                    let row = archive::decode_row(&t.columns, values)
                        .map_err(|e| self.reader.row_error(format_args!("{}: {e}", t.name)))?;
                    return Ok(Step::Row(i, row));
                }
                Item::Table(name) => {
                    let done = self.close()?;
                    let i = self.next_table;
                    let expected = self.reader.header.tables.get(i).map(|t| t.name.as_str());
                    if expected != Some(name.as_str()) {
                        return Err(self.reader.row_error(format_args!(
                            "table {name} where the header lists {}",
                            expected.unwrap_or("no more tables")
                        )));
                    }
                    self.current = Some(i);
                    self.next_table += 1;
                    self.seen = 0;
                    if let Some(done) = done {
                        return Ok(done);
                    }
                }
                Item::End => {
                    let done = self.close()?;
                    if let Some(missing) = self.reader.header.tables.get(self.next_table) {
                        return Err(self.reader.row_error(format_args!(
                            "the archive ends before table {}",
                            missing.name
                        )));
                    }
                    return Ok(match done {
                        Some(done) => {
                            self.pending = Some(Step::End);
                            done
                        }
                        None => Step::End,
                    });
                }
            }
        }
    }
}

/// `devsignal backup --verify <file>`: reads the whole archive; prints a summary or the problem.
pub fn verify(file: &Path) -> anyhow::Result<()> {
    let mut walk = Walk::new(ArchiveReader::open(file)?);
    // Every row is decoded against its column on the way.
    while !matches!(walk.next()?, Step::End) {}
    let h = walk.header();
    println!(
        "{}: DevSignal backup (format {}), devsignal {}, from {}, created at {}",
        file.display(),
        h.format_version,
        h.devsignal_version,
        h.backend,
        h.created_at
    );
    println!(
        "schema: {} migrations (last {})",
        h.migrations.len(),
        h.migrations.last().map_or("none", String::as_str)
    );
    for t in &h.tables {
        println!("  {:<22} {:>10} rows", t.name, t.rows);
    }
    println!(
        "OK: {} tables, {} rows, checksum verified",
        h.tables.len(),
        h.total_rows()
    );
    Ok(())
}

/// `devsignal restore <file>` into the configured database, which must be empty.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let reader = ArchiveReader::open(file)?;
    let target = check_schema(&reader.header.migrations)?;
    let described = config.database_description();
    let db = domain::db::connect(config.database_url.expose_secret(), &Default::default())
        .await
        .with_context(|| format!("cannot open the database {described}"))?;
    let result = restore_into(&db, &described, reader, target).await;
    db.close().await.ok();
    let (tables, rows) = result?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "restored {rows} rows of {tables} tables from {} into {described} in {secs:.1} s",
        file.display()
    );
    Ok(())
}

/// The archive's migrations must be this binary's first ones, in order; answers how many.
fn check_schema(archived: &[String]) -> anyhow::Result<usize> {
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let unknown: Vec<&str> = archived
        .iter()
        .enumerate()
        .filter(|(i, name)| known.get(*i) != Some(*name))
        .map(|(_, name)| name.as_str())
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the archive's schema is newer than this devsignal ({}) knows: migrations {} are \
             not among its {}; restore with the devsignal version that made the backup or a \
             newer one",
            env!("CARGO_PKG_VERSION"),
            unknown.join(", "),
            known.len()
        );
    }
    Ok(archived.len())
}

async fn restore_into(
    db: &DatabaseConnection,
    described: &str,
    reader: ArchiveReader,
    target: usize,
) -> anyhow::Result<(usize, u64)> {
    let status = domain::db::migration_status(db)
        .await
        .with_context(|| format!("cannot read the schema version of {described}"))?;
    let applied = status.iter().filter(|m| m.applied).count();
    if applied > target {
        bail!(
            "the database {described} is at a newer schema ({applied} migrations) than the \
             archive ({target}): restore into a new, empty database"
        );
    }
    let held = tables::holdings(db).await?;
    if !held.is_empty() {
        let list: Vec<String> = held.iter().map(|(t, n)| format!("{n} {t}")).collect();
        bail!(
            "the database {described} is not empty: it holds {}; restore only into an empty \
             database (nothing was changed)",
            list.join(", ")
        );
    }
    domain::db::migrate_up_to(db, target).await?;

    let mut walk = Walk::new(reader);
    let txn = domain::db::begin(db).await?;
    let mut batch: Vec<Vec<Value>> = Vec::new();
    let mut rows = 0u64;
    loop {
        match walk.next()? {
            Step::Row(i, row) => {
                let t = &walk.header().tables[i];
                batch.push(row);
                rows += 1;
                if batch.len() >= tables::rows_per_insert(t.columns.len()) {
                    tables::insert(&txn, &t.name, &t.columns, &mut batch)
                        .await
                        .with_context(|| format!("restoring {}", t.name))?;
                }
            }
            Step::TableDone(i) => {
                let t = &walk.header().tables[i];
                tables::insert(&txn, &t.name, &t.columns, &mut batch)
                    .await
                    .with_context(|| format!("restoring {}", t.name))?;
                eprintln!("restore: {:<22} {:>10} rows", t.name, t.rows);
            }
            Step::End => break,
        }
    }
    tables::reset_sequences(&txn).await?;
    txn.commit().await?;
    let later = domain::db::migrate_up(db).await?;
    if later > 0 {
        eprintln!("restore: applied {later} later migration(s)");
    }
    Ok((walk.header().tables.len(), rows))
}

fn human_bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if n >= 1 << 20 {
        format!("{:.1} MB", f / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}
