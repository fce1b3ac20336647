//! Connecting to the database and keeping its schema current. One code path for SQLite (the
//! zero-setup default, in WAL mode) and PostgreSQL (production); the backend is chosen by the URL.

use std::path::PathBuf;
use std::time::Duration;

mod carried;
pub mod rows;
pub use carried::Carried;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};

/// Which database engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(db: &impl ConnectionTrait) -> Self {
        match db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// A JSON document as a parameter of a multi-row insert: serialised once here and bound as
/// text (cast to `jsonb` on PostgreSQL; SQLite keeps JSON as text). Bound as a
/// `serde_json::Value` instead, each document is cloned twice on its way to the driver (into
/// sea-query's statement, then into sea-orm's sqlx query) and serialised after: for a chunk of
/// 500 scores or a batch of 1,000 events most of the statement's client-side cost.
pub fn json_param(backend: Backend, json: &impl serde::Serialize) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait};
    let text = serde_json::to_string(json).unwrap_or_else(|_| "null".to_owned());
    match backend {
        Backend::Postgres => Expr::val(text).cast_as(Alias::new("jsonb")),
        Backend::Sqlite => Expr::val(text),
    }
}

/// Pool settings. `max_connections` is per process.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long a connection may sit unused in the pool before it is closed. Each open
    /// connection holds memory on both sides (a SQLite connection its page cache and prepared
    /// statements, in this process), so a pool shrinks back after a burst of load.
    pub idle_timeout: Duration,
    /// Prepared statements each connection keeps for reuse (least recently used goes first);
    /// `None`: [`statement_cache_default`].
    pub statement_cache: Option<usize>,
}

/// The default [`PoolSettings::idle_timeout`] (`DATABASE_IDLE_TIMEOUT`): long enough that a
/// steadily used pool keeps its connections, short enough that a burst's extra connections
/// are gone within a minute or two.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default [`PoolSettings::statement_cache`] (`DATABASE_STATEMENT_CACHE`) of a backend. A
/// PostgreSQL statement lives in its server process: sqlx's 100. A SQLite statement lives in
/// this process, at ~30 KB each for this schema's queries: after a burst of ingest and list
/// pages, 17 connections of 100 held 65 MB more than of none, 20 each hold 14 MB (the memory
/// bench's `devsignal serve` alone).
pub fn statement_cache_default(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 100,
        Backend::Sqlite => 20,
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: IDLE_TIMEOUT,
            statement_cache: None,
        }
    }
}

/// The file a SQLite URL points at, if it names a file (not `:memory:`).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// How long a SQLite statement waits for another connection's write lock before it fails.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a pool. For a SQLite file the parent directory is created, the file is created if
/// missing (`mode=rwc`), and the journal is switched to WAL with a busy timeout and foreign keys on.
pub async fn connect(url: &str, pool: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, pool)?).await
}

/// Opens a pool to a read replica without reaching it first: a replica that is down when the
/// process starts shows in `/health` and fails only the reads routed to it, and the pool
/// connects once it answers. (A SQLite file is still opened at once, to check its version.)
pub async fn connect_replica(url: &str, pool: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, pool)?;
    opts.connect_lazy(true);
    Database::connect(opts).await
}

fn options(url: &str, pool: &PoolSettings) -> Result<ConnectOptions, DbErr> {
    let backend = Backend::from_url(url).ok_or_else(|| {
        DbErr::Custom("DATABASE_URL must start with sqlite: or postgres://".into())
    })?;
    let mut url = url.to_owned();
    if let Some(file) = sqlite_file(&url).filter(|_| backend == Backend::Sqlite) {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                DbErr::Custom(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    }
    // A read-only file (`mode=ro`, a replica) keeps the journal it has: switching needs a write.
    let read_only = url.contains("mode=ro");
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(pool.max_connections)
        .min_connections(0)
        .acquire_timeout(pool.acquire_timeout)
        .connect_timeout(pool.acquire_timeout)
        .idle_timeout(pool.idle_timeout)
        .sqlx_logging(false);
    let statements = pool
        .statement_cache
        .unwrap_or_else(|| statement_cache_default(backend));
    if backend == Backend::Postgres {
        opts.map_sqlx_postgres_opts(move |o| o.statement_cache_capacity(statements));
    }
    if backend == Backend::Sqlite {
        opts.map_sqlx_sqlite_opts(move |o| {
            let o = if read_only {
                o
            } else {
                o.journal_mode(SqliteJournalMode::Wal)
            };
            o
                // One writer at a time across every pool and process on the file: a writer
                // waits its turn rather than failing. 5 s proved too short on a loaded machine
                // (a CLI command beside a busy server, concurrent batch writes).
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                .statement_cache_capacity(statements)
        });
    }
    Ok(opts)
}

/// Runs a trivial query; fails if the database does not answer within `timeout`.
pub async fn ping(db: &DatabaseConnection, timeout: Duration) -> Result<(), DbErr> {
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT 1");
    match tokio::time::timeout(timeout, db.query_one_raw(stmt)).await {
        Ok(res) => res.map(|_| ()),
        Err(_) => Err(DbErr::Custom(format!(
            "database did not answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// A connection pool's occupancy: connections open, idle among them, and its ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

/// The pool behind `db` as it stands now (sqlx does not expose how many callers wait for a
/// connection; `in_use == max` is the sign of a saturated pool).
pub fn pool_stats(db: &DatabaseConnection) -> Option<PoolStats> {
    use sea_orm::{DatabaseConnectionType as Kind, sqlx};
    fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolStats {
        PoolStats {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
    match &db.inner {
        Kind::SqlxPostgresPoolConnection(_) => Some(of(db.get_postgres_connection_pool())),
        Kind::SqlxSqlitePoolConnection(_) => Some(of(db.get_sqlite_connection_pool())),
        _ => None,
    }
}

/// One migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

/// Every known migration, in order, with its state. Reads only: it never creates tables.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, DbErr> {
    let list = Migrator::get_migration_with_status_read_only(db).await?;
    Ok(list
        .iter()
        .map(|m| MigrationState {
            name: m.name().to_owned(),
            applied: m.status().to_string() == "Applied",
        })
        .collect())
}

/// How many migrations are applied.
pub async fn applied_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(migration_status(db)
        .await?
        .iter()
        .filter(|m| m.applied)
        .count())
}

/// How many migrations are not applied yet.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(migration_status(db)
        .await?
        .iter()
        .filter(|m| !m.applied)
        .count())
}

/// A key no other DevSignal lock uses: serialises migrators of several processes on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6465_7673_6967_6e01;

/// Applies every pending migration and returns how many were applied. Safe to run again (it then
/// does nothing) and safe to run from several processes at once: on PostgreSQL the migrators take
/// turns behind an advisory lock; on SQLite the database file serialises writers.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<usize, DbErr> {
    with_migration_lock(db, async {
        let pending = pending_migrations(db).await?;
        Migrator::up(db, None).await?;
        Ok(pending)
    })
    .await
}

/// Applies pending migrations until the first `target` of the list are applied (none when that
/// many already are); returns how many it applied. For restoring an archive taken at an older
/// schema.
pub async fn migrate_up_to(db: &DatabaseConnection, target: usize) -> Result<usize, DbErr> {
    with_migration_lock(db, async {
        let steps = target.saturating_sub(applied_migrations(db).await?);
        if steps > 0 {
            Migrator::up(db, Some(u32::try_from(steps).unwrap_or(u32::MAX))).await?;
        }
        Ok(steps)
    })
    .await
}

/// Rolls back the last `steps` applied migrations; returns how many were rolled back.
pub async fn migrate_down(db: &DatabaseConnection, steps: u32) -> Result<usize, DbErr> {
    with_migration_lock(db, async {
        let applied = applied_migrations(db).await?;
        Migrator::down(db, Some(steps)).await?;
        Ok(applied.min(steps as usize))
    })
    .await
}

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the write lock up
/// front (waiting up to the busy timeout): a deferred transaction that reads and then writes fails
/// at once with `SQLITE_BUSY` when another connection committed in between, which background
/// writers (jobs, webhook delivery) make likely. PostgreSQL has no such mode and ignores it.
pub async fn begin<C: sea_orm::TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

async fn with_migration_lock<T>(
    db: &DatabaseConnection,
    work: impl Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    if Backend::of(db) != Backend::Postgres {
        return work.await;
    }
    // The lock lives as long as this transaction, which holds one pooled connection while the
    // migrator works on others.
    let guard = db.begin().await?;
    guard
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
        ))
        .await?;
    let result = work.await;
    guard.commit().await?;
    result
}

/// A stable advisory-lock key for `what` within an organization.
pub fn lock_key(organization_id: uuid::Uuid, what: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{organization_id}:{what}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// On PostgreSQL, takes the transaction-scoped advisory locks `keys` in ascending order (so two
/// callers queue instead of deadlocking); they are held until the transaction ends. A no-op
/// elsewhere: SQLite's write transactions are serial already.
pub async fn advisory_xact_lock(db: &impl ConnectionTrait, keys: &[i64]) -> Result<(), DbErr> {
    if keys.is_empty() || Backend::of(db) != Backend::Postgres {
        return Ok(());
    }
    let sql = if let [key] = keys {
        format!("SELECT pg_advisory_xact_lock({key})")
    } else {
        let list: Vec<String> = keys.iter().map(i64::to_string).collect();
        format!(
            "SELECT pg_advisory_xact_lock(k) FROM unnest(ARRAY[{}]::bigint[]) AS k ORDER BY k",
            list.join(",")
        )
    };
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(())
}

/// Bind parameters one statement may carry on every backend (SQLite's bundled limit is 32,766,
/// PostgreSQL's 65,535), with room to spare.
pub const MAX_PARAMS: usize = 30_000;

/// How many rows of `E` one multi-row INSERT carries: as many as [`MAX_PARAMS`] allows, so a
/// batch of a thousand signals is one statement, not five.
pub fn rows_per_insert<E: sea_orm::EntityTrait>() -> usize {
    use sea_orm::Iterable;
    (MAX_PARAMS / E::Column::iter().count().max(1)).max(1)
}

/// How many values one `IN (…)` list carries: a whole batch.
pub const IN_LIST: usize = 1000;

/// A tenant table that other tenant tables point at with a nullable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Referenced {
    Account,
    Contact,
    Deal,
}

impl Referenced {
    /// Its table.
    pub fn table(self) -> &'static str {
        match self {
            Referenced::Account => "companies",
            Referenced::Contact => "contacts",
            Referenced::Deal => "deals",
        }
    }
}

/// `(referenced, table, column)`: the nullable references between tenant tables. In the
/// database they are plain foreign keys `(organization_id, column) → (organization_id, id)`,
/// without `ON DELETE SET NULL`, which a PostgreSQL sharded by organization (Citus) refuses on a
/// key holding its distribution column; [`detach`] clears them instead. A test compares this
/// list with the foreign keys PostgreSQL holds.
pub const NULLABLE_REFERENCES: &[(Referenced, &str, &str)] = &[
    (Referenced::Account, "contacts", "account_id"),
    (Referenced::Account, "deals", "account_id"),
    (Referenced::Account, "activities", "account_id"),
    (Referenced::Account, "signals", "account_id"),
    (Referenced::Contact, "deals", "contact_id"),
    (Referenced::Contact, "activities", "contact_id"),
    (Referenced::Contact, "signals", "contact_id"),
    (Referenced::Deal, "activities", "deal_id"),
];

/// Clears every reference to the rows `ids` of `referenced`, which the caller deletes next in
/// the same transaction; the rows that pointed at them stay, unlinked (their `updated_at`
/// unchanged, as `ON DELETE SET NULL` left it). On PostgreSQL it first locks those rows, so a
/// writer that links to one of them meanwhile either committed before (and is cleared here) or
/// waits and then finds it gone.
pub async fn detach(
    db: &impl ConnectionTrait,
    organization_id: uuid::Uuid,
    referenced: Referenced,
    ids: &[uuid::Uuid],
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Query};
    let org = || Expr::col(Alias::new("organization_id")).eq(organization_id);
    for chunk in ids.chunks(IN_LIST) {
        if Backend::of(db) == Backend::Postgres {
            let lock = Query::select()
                .column(Alias::new("id"))
                .from(Alias::new(referenced.table()))
                .and_where(org())
                .and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().copied()))
                .lock(LockType::Update)
                .to_owned();
            db.query_all(&lock).await?;
        }
        for (r, table, column) in NULLABLE_REFERENCES {
            if *r != referenced {
                continue;
            }
            let clear = Query::update()
                .table(Alias::new(*table))
                .value(Alias::new(*column), Option::<uuid::Uuid>::None)
                .and_where(org())
                .and_where(Expr::col(Alias::new(*column)).is_in(chunk.iter().copied()))
                .to_owned();
            db.execute(&clear).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_is_read_from_urls() {
        assert_eq!(
            sqlite_file("sqlite://./data/devsignal.db?mode=rwc"),
            Some(PathBuf::from("./data/devsignal.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn a_new_file_database_is_created_in_wal_mode_and_migrates_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/ds.db", dir.path().display());
        let db = connect(&url, &PoolSettings::default()).await.unwrap();
        let mode = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA journal_mode",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
        assert!(pending_migrations(&db).await.unwrap() > 0);
        assert!(migrate_up(&db).await.unwrap() > 0);
        assert_eq!(migrate_up(&db).await.unwrap(), 0);
        assert_eq!(pending_migrations(&db).await.unwrap(), 0);
        ping(&db, Duration::from_secs(1)).await.unwrap();
    }
}
