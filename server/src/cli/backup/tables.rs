//! Which tables a backup holds, how their rows are read and written back, and what the database's
//! own catalog says about them.
//!
//! Rows are read through the sea-orm entities (one per table, listed once in [`backed_up!`]):
//! each column's value comes back typed by the entity (`Model::get` → `sea_orm::Value`), so the
//! same code reads SQLite's text timestamps and blob UUIDs and PostgreSQL's native types, and
//! each column's archive type ([`Kind`]) follows from the entity's column definition. Restoring
//! needs no entity: it inserts the archive's columns with values typed by the header, so an
//! archive taken at an older schema restores into that schema before later migrations run.
//!
//! An entity that missed a column, or a table without an entity, would be lost silently; so a
//! backup first compares the catalog (`sqlite_master` / `information_schema`) with this list and
//! refuses when the database holds a table or column that is neither backed up nor [`DERIVED`].

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail};
use sea_orm::sea_query::{Alias, ColumnType, Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityName, EntityTrait, IdenStatic,
    Iterable, ModelTrait, PrimaryKeyToColumn, QueryFilter, QueryOrder, QuerySelect, Statement,
    Value,
};

use super::archive::{ArchiveWriter, Column, Kind, encode};

/// Tables never archived because a restored database needs none of their rows: SQLite's FTS5
/// search index (filled by triggers as restored rows are inserted; PostgreSQL searches expression
/// indexes instead), and PostgreSQL's `ingest_claims` (rows that matter only while the ingest
/// transaction that inserted them is open). FTS5's shadow tables (`<name>_data`, `_idx`,
/// `_content`, `_docsize`, `_config`) count as derived too.
pub const DERIVED: &[&str] = &["crm_search", "ingest_claims"];

/// sea-orm's record of applied migrations: the header carries it instead.
pub const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// Rows read per keyset page.
const PAGE: u64 = 1000;

pub fn is_derived(table: &str) -> bool {
    DERIVED.iter().any(|d| {
        table == *d
            || table.strip_prefix(d).is_some_and(|rest| {
                matches!(rest, "_data" | "_idx" | "_content" | "_docsize" | "_config")
            })
    })
}

/// Every backed-up table: its name and columns as the archive records them.
macro_rules! backed_up {
    ($($m:ident),* $(,)?) => {
        /// Every table a backup holds, with its columns (from the entity).
        pub fn known() -> anyhow::Result<Vec<(&'static str, Vec<Column>)>> {
            Ok(vec![$((entity::$m::Entity.table_name(), columns::<entity::$m::Entity>()?)),*])
        }

        /// Writes every row of `table` (in primary-key order, a page at a time); returns how many.
        pub async fn dump(
            db: &impl ConnectionTrait,
            table: &str,
            w: &mut ArchiveWriter,
        ) -> anyhow::Result<u64> {
            $(if table == entity::$m::Entity.table_name() {
                return dump_entity::<entity::$m::Entity>(db, w).await;
            })*
            bail!("no entity for table {table}")
        }
    };
}

backed_up!(
    organizations,
    users,
    memberships,
    invitations,
    sessions,
    api_keys,
    auth_tokens,
    audit_logs,
    events,
    companies,
    contacts,
    deals,
    activities,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    webhook_cursor,
    event_head,
    job_queues,
    jobs,
    job_cron_ticks,
    job_schedule_states,
    scheduler_heartbeats,
    signal_sources,
    signals,
    signal_intake,
    contact_identities,
    contact_merges,
    account_scores,
    score_snapshots,
    alert_rules,
    alert_cooldowns,
    anomalies,
    anomaly_cooldowns,
    erasure_tombstones,
    demo_seeds,
    notifications,
    alert_deliveries,
    notification_preferences,
    scoring_configs,
    rescore_requests,
    score_recomputes,
    integrations,
    integration_runs,
    integration_cursors,
    package_downloads,
    external_ids,
    enrichment_cache,
    enrichments,
    account_briefs,
    ai_usage,
    ai_settings,
    billing_settings,
    billing_accounts,
    billing_events,
    usage_counters,
    usage_warnings,
    imports,
    import_errors,
    import_keys,
    exports,
);

fn columns<E: EntityTrait>() -> anyhow::Result<Vec<Column>> {
    E::Column::iter()
        .map(|c| {
            let def = c.def();
            let kind = kind_of(def.get_column_type()).ok_or_else(|| {
                anyhow!(
                    "column {}.{} has type {:?}, which backups do not know",
                    E::default().table_name(),
                    c.as_str(),
                    def.get_column_type()
                )
            })?;
            Ok(Column {
                name: c.as_str().to_owned(),
                kind,
                nullable: def.is_null(),
            })
        })
        .collect()
}

fn kind_of(t: &ColumnType) -> Option<Kind> {
    Some(match t {
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Kind::Text,
        ColumnType::Boolean => Kind::Bool,
        ColumnType::SmallInteger => Kind::I16,
        ColumnType::Integer => Kind::I32,
        ColumnType::BigInteger => Kind::I64,
        ColumnType::Float => Kind::F32,
        ColumnType::Double => Kind::F64,
        ColumnType::Uuid => Kind::Uuid,
        ColumnType::TimestampWithTimeZone => Kind::Timestamp,
        ColumnType::Date => Kind::Date,
        ColumnType::Json | ColumnType::JsonBinary => Kind::Json,
        ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => Kind::Bytes,
        _ => return None,
    })
}

async fn dump_entity<E: EntityTrait>(
    db: &impl ConnectionTrait,
    w: &mut ArchiveWriter,
) -> anyhow::Result<u64> {
    let cols: Vec<E::Column> = E::Column::iter().collect();
    let keys: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
    let mut after: Option<Vec<Value>> = None;
    let mut n = 0u64;
    let mut row = Vec::with_capacity(cols.len());
    loop {
        let mut q = E::find();
        if let Some(last) = &after {
            q = q.filter(after_key(&keys, last));
        }
        for k in &keys {
            q = q.order_by_asc(*k);
        }
        let page = q.limit(PAGE).all(db).await?;
        for m in &page {
            row.clear();
            for c in &cols {
                row.push(encode(m.get(*c)).ok_or_else(|| {
                    anyhow!(
                        "column {}.{} holds a value backups cannot write",
                        E::default().table_name(),
                        c.as_str()
                    )
                })?);
            }
            w.row(&row)?;
        }
        n += page.len() as u64;
        match page.last() {
            Some(m) if page.len() as u64 == PAGE => {
                after = Some(keys.iter().map(|k| m.get(*k)).collect());
            }
            _ => return Ok(n),
        }
    }
}

/// `(k1, k2, …) > (v1, v2, …)` spelled out, for any number of key columns.
fn after_key<C: ColumnTrait>(keys: &[C], last: &[Value]) -> Condition {
    let mut any = Condition::any();
    for (i, key) in keys.iter().enumerate() {
        let mut all = Condition::all();
        for (k, v) in keys.iter().zip(last).take(i) {
            all = all.add(k.eq(v.clone()));
        }
        any = any.add(all.add(key.gt(last[i].clone())));
    }
    any
}

/// Inserts decoded rows into `table` in multi-row statements.
pub async fn insert(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[Column],
    rows: &mut Vec<Vec<Value>>,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = Query::insert();
    q.into_table(Alias::new(table))
        .columns(columns.iter().map(|c| Alias::new(c.name.as_str())));
    for row in rows.drain(..) {
        q.values(row.into_iter().map(Expr::val))?;
    }
    db.execute(&q).await?;
    Ok(())
}

/// How many rows of `columns` one INSERT carries.
pub fn rows_per_insert(columns: usize) -> usize {
    (domain::db::MAX_PARAMS / columns.max(1)).clamp(1, 1000)
}

fn stmt(db: &impl ConnectionTrait, sql: impl Into<String>) -> Statement {
    Statement::from_string(db.get_database_backend(), sql.into())
}

async fn strings(db: &impl ConnectionTrait, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let rows = db.query_all_raw(stmt(db, sql)).await?;
    rows.iter()
        .map(|r| {
            let mut out = Vec::new();
            let mut i = 0;
            while let Ok(v) = r.try_get_by_index::<String>(i) {
                out.push(v);
                i += 1;
            }
            Ok(out)
        })
        .collect()
}

/// Every table of the database (SQLite's internal `sqlite_*` tables aside), by name.
pub async fn real_tables(db: &impl ConnectionTrait) -> anyhow::Result<Vec<String>> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            // A partition (of `signals` or `events`) is read through its table.
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             AND NOT c.relispartition ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
             ESCAPE '\\' ORDER BY 1"
        }
    };
    Ok(strings(db, sql).await?.into_iter().flatten().collect())
}

/// Every column of every table: table → column names.
pub async fn real_columns(
    db: &impl ConnectionTrait,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name::text NOT IN \
             (SELECT c.relname::text FROM pg_class c WHERE c.relispartition)"
        }
        _ => {
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table'"
        }
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in strings(db, sql).await? {
        if let [t, c] = &r[..] {
            out.entry(t.clone()).or_default().insert(c.clone());
        }
    }
    Ok(out)
}

/// (child, parent) for every foreign key between two different tables.
async fn foreign_keys(db: &impl ConnectionTrait) -> anyhow::Result<Vec<(String, String)>> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c \
             JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE c.contype = 'f' AND n.nspname = current_schema()"
        }
        _ => {
            "SELECT m.name, p.\"table\" FROM sqlite_master m, pragma_foreign_key_list(m.name) p \
             WHERE m.type = 'table'"
        }
    };
    Ok(strings(db, sql)
        .await?
        .into_iter()
        .filter_map(|r| match <[String; 2]>::try_from(r) {
            Ok([child, parent]) if child != parent => Some((child, parent)),
            _ => None,
        })
        .collect())
}

/// Refuses when the database holds a table or column a backup would leave out without saying
/// so: a table neither backed up nor derived, or a column the entity lacks.
pub async fn check_coverage(
    db: &impl ConnectionTrait,
    known: &[(&'static str, Vec<Column>)],
) -> anyhow::Result<()> {
    let names: BTreeSet<&str> = known.iter().map(|(n, _)| *n).collect();
    let stray: Vec<String> = real_tables(db)
        .await?
        .into_iter()
        .filter(|t| !names.contains(t.as_str()) && !is_derived(t) && t != MIGRATIONS_TABLE)
        .collect();
    if !stray.is_empty() {
        bail!(
            "the database holds tables this devsignal does not back up: {} (is the database \
             newer than this binary?)",
            stray.join(", ")
        );
    }
    let real = real_columns(db).await?;
    for (table, columns) in known {
        let have: BTreeSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let Some(db_columns) = real.get(*table) else {
            bail!("the database has no table {table}");
        };
        let extra: Vec<&str> = db_columns
            .iter()
            .map(String::as_str)
            .filter(|c| !have.contains(c))
            .collect();
        let missing: Vec<&str> = have
            .iter()
            .copied()
            .filter(|c| !db_columns.contains(*c))
            .collect();
        if !extra.is_empty() || !missing.is_empty() {
            bail!(
                "table {table} does not match this devsignal's entity (columns only in the \
                 database: {extra:?}; only in the entity: {missing:?})"
            );
        }
    }
    Ok(())
}

/// The backed-up tables in an order where every table comes after those it references (ties in
/// the order of `known`).
pub async fn fk_order(
    db: &impl ConnectionTrait,
    known: Vec<(&'static str, Vec<Column>)>,
) -> anyhow::Result<Vec<(&'static str, Vec<Column>)>> {
    let names: BTreeSet<&str> = known.iter().map(|(n, _)| *n).collect();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (child, parent) in foreign_keys(db).await? {
        if names.contains(child.as_str()) && names.contains(parent.as_str()) {
            parents.entry(child).or_default().insert(parent);
        }
    }
    let mut left = known;
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|(n, _)| {
            parents
                .get(*n)
                .is_none_or(|ps| ps.iter().all(|p| done.contains(p.as_str())))
        });
        let Some(i) = ready else {
            let names: Vec<&str> = left.iter().map(|(n, _)| *n).collect();
            bail!("foreign keys form a cycle among {}", names.join(", "));
        };
        let t = left.remove(i);
        done.insert(t.0);
        out.push(t);
    }
    Ok(out)
}

/// Rows of `table` (quoted; the names come from the entities or the catalog).
pub async fn count(db: &impl ConnectionTrait, table: &str) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(stmt(db, format!("SELECT COUNT(*) FROM \"{table}\"")))
        .await?
        .ok_or_else(|| anyhow!("COUNT(*) of {table} answered nothing"))?;
    Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0))
}

/// The tables of a database that hold rows (derived tables and migrations aside), with counts.
pub async fn holdings(db: &impl ConnectionTrait) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for t in real_tables(db).await? {
        if is_derived(&t) || t == MIGRATIONS_TABLE {
            continue;
        }
        let n = count(db, &t).await?;
        if n > 0 {
            out.push((t, n));
        }
    }
    Ok(out)
}

/// On PostgreSQL, moves every sequence owned by a column past the largest value restored (the
/// event log's `seq`); SQLite's `AUTOINCREMENT` keeps up by itself.
pub async fn reset_sequences(db: &impl ConnectionTrait) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let owned = strings(
        db,
        "SELECT table_name::text, column_name::text, \
         pg_get_serial_sequence(quote_ident(table_name), column_name)::text \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL",
    )
    .await?;
    for r in owned {
        if let [table, column, sequence] = &r[..] {
            db.execute_raw(stmt(
                db,
                format!(
                    "SELECT setval('{sequence}', COALESCE((SELECT MAX(\"{column}\") FROM \
                     \"{table}\"), 0) + 1, false)"
                ),
            ))
            .await?;
        }
    }
    Ok(())
}
