//! The `devsignal` server: configuration, telemetry, HTTP and GraphQL, and the command line.
//!
//! `main` stays thin: it parses the command line and calls into [`cli::run`]. The pieces are
//! public so tests can assemble the same server: [`build_state`] connects and migrates,
//! [`app`] builds the router, [`serve`] runs it on a listener until the state's shutdown token
//! is cancelled.

// The GraphQL roots merge many areas' objects; their nested futures need more than the
// default query depth to lay out.
#![recursion_limit = "256"]

pub mod auth;
pub mod cli;
pub mod commits;
pub mod config;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod redis;
pub mod state;
pub mod telemetry;
pub mod transfer_links;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::state::AppState;

/// Where GraphQL is served over HTTP (the rate limiter answers its refusals in GraphQL's shape).
pub const GRAPHQL_PATH: &str = "/api/v1/graphql";
/// Where GraphQL subscriptions are served over WebSocket.
pub const GRAPHQL_WS_PATH: &str = "/api/v1/graphql/ws";
/// The largest request body accepted (5 MB; larger answers 413), and the largest message a
/// WebSocket client may send.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Where the GraphiQL playground is served.
pub const GRAPHIQL_PATH: &str = "/graphiql";

/// The memory allocator of every binary built with this library (benches print it).
pub const ALLOCATOR: &str = "jemalloc as malloc (background purging, 1 s decay)";

/// jemalloc with background purging threads, not glibc's malloc: glibc keeps what a spike of
/// large responses freed in its per-thread arenas, jemalloc's background threads give freed pages
/// back to the OS with no allocation needed to trigger it. Measured with
/// `cargo bench -p devsignal-tests --bench memory --profile dev` (96 responses of 6 MB, 24 at
/// once; RSS before → peak → after 10 s idle): glibc 76 → 414 → 379 MB, mimalloc 92 → 391 →
/// 238 MB, jemalloc for Rust only 89 → 406 → 176 MB. Two settings took the rest:
/// - jemalloc is the process's `malloc` too (`unprefixed_malloc_on_supported_platforms`), so
///   SQLite's and other C code's allocations no longer sit in glibc's arenas: 95 → 360 → 115 MB;
/// - freed pages go back after 1 s, not 10 (`dirty_decay_ms:1000,muzzy_decay_ms:0`, built in by
///   `.cargo/config.toml`): 96 → 323 → 111 MB, 118 MB already after 1 s idle.
///
/// Set here, in the library, so the tests and benches that link the server run the allocator it
/// ships with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What the allocator holds, in bytes (jemalloc's own statistics, refreshed on each call).
/// `allocated` is what the program has asked for and not freed; `resident` is what the
/// allocator's pages occupy in RAM; the gap is fragmentation and pages not yet purged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    pub allocated: u64,
    /// Pages holding at least one live allocation.
    pub active: u64,
    pub resident: u64,
    /// The allocator's own bookkeeping.
    pub metadata: u64,
    /// Address space given back to the OS but kept mapped for reuse (not resident).
    pub retained: u64,
}

impl AllocatorStats {
    /// `None` when jemalloc cannot answer (it always can in the binaries this crate builds).
    pub fn read() -> Option<Self> {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are a snapshot taken at the last epoch: advance it first.
        epoch::advance().ok()?;
        let n = |v: usize| v as u64;
        Some(Self {
            allocated: n(stats::allocated::read().ok()?),
            active: n(stats::active::read().ok()?),
            resident: n(stats::resident::read().ok()?),
            metadata: n(stats::metadata::read().ok()?),
            retained: n(stats::retained::read().ok()?),
        })
    }
}

/// How long in-flight requests may run on after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Connects to the database (applying pending migrations) and to Redis if configured.
pub async fn build_state(config: Config, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    let pool = domain::db::PoolSettings {
        max_connections: config.database_max_connections,
        idle_timeout: config.database_idle_timeout,
        statement_cache: config.database_statement_cache,
        ..Default::default()
    };
    let mut db = domain::db::connect(config.database_url.expose_secret(), &pool)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_description()))?;
    let mut metrics = metrics::Metrics::new();
    if config.redis_url.is_some() {
        metrics.watch_redis();
    }
    let metrics = Arc::new(metrics);
    metrics.watch_pool("serving", &db);
    let statements = metrics.db_statements.clone();
    db.set_metric_callback(move |_| {
        statements.inc();
    });
    // The replica is not migrated (it follows the primary) and records its statements with the
    // primary's: the statement counter counts what this process asks of any database.
    let read_db = match &config.database_read_url {
        None => None,
        Some(url) => {
            let mut read = domain::db::connect_replica(url.expose_secret(), &pool)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the read replica {}",
                        config.database_read_description().unwrap_or_default()
                    )
                })?;
            metrics.watch_pool("reads", &read);
            let statements = metrics.db_statements.clone();
            read.set_metric_callback(move |_| {
                statements.inc();
            });
            Some(read)
        }
    };
    let applied = domain::db::migrate_up(&db)
        .await
        .context("applying database migrations")?;
    tracing::info!(
        database = %config.database_description(),
        readReplica = config.database_read_description().as_deref().unwrap_or("none"),
        applied,
        "database ready ({applied} migrations applied)"
    );
    // Every serving and working process records the billing policy it was started with, so all
    // of them enforce the same plan limits.
    domain::billing::configure(&db, config.billing_policy())
        .await
        .context("recording the billing policy")?;
    let redis = match &config.redis_url {
        None => {
            if config.is_production() {
                tracing::warn!(
                    "REDIS_URL is not set: rate limits count in each process and live events \
                     reach only the subscribers of the process that committed them; run one \
                     replica or set REDIS_URL"
                );
            }
            None
        }
        Some(url) => {
            let pool = redis::pool(url.expose_secret()).context("REDIS_URL is not usable")?;
            if !redis::ping(&pool, redis::CONNECT_TIMEOUT).await {
                tracing::warn!("Redis is configured but not answering; running degraded");
            }
            Some(pool)
        }
    };
    let identity =
        auth::Identity::new(&config, db.clone(), redis.clone()).context("identity services")?;
    let cipher = config
        .cipher()
        .context("ENCRYPTION_KEY is not set (it encrypts stored secrets)")?;
    let connectors = connectors::Runtime::new(config.connectors.clone(), cipher.clone())
        .context("connector HTTP client")?;
    let webhooks = jobs::webhook_delivery::Sender::new(
        config.webhook_settings(),
        cipher,
        config.webhook_timeout,
    )
    .context("webhook HTTP client")?;
    let live = live::Live::new(
        db.clone(),
        redis.clone().zip(config.redis_url.clone()),
        &config.redis_key_prefix,
        config.events_poll_interval,
        shutdown.clone(),
    );
    let commits = commits::Commits::new(live.clone());
    Ok(AppState {
        connectors,
        webhooks,
        live,
        commits,
        intake: Arc::new(tokio::sync::Notify::new()),
        identity: Arc::new(identity),
        config: Arc::new(config),
        db,
        read_db,
        redis,
        metrics,
        started_at: Instant::now(),
        shutdown,
    })
}

/// The whole HTTP application for a state.
pub fn app(state: AppState) -> Router {
    let schema = graphql::schema(Some(state.clone()));
    http::router(state.clone(), graphql::routes(schema))
}

/// Starts the worker role in this process: the job worker, the cron scheduler (unless
/// `SCHEDULER_ENABLED=false`), the webhook delivery loop and the signal intake drainer. The returned future resolves once
/// `state.shutdown` has been cancelled and all four have drained (running jobs get
/// `JOB_SHUTDOWN_GRACE_SECONDS`, then their leases are released).
pub async fn start_worker(state: &AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let id = jobs::worker::worker_id();
    let db = background_pool(state).await?;
    let scheduler = if state.config.scheduler_enabled {
        let options = jobs::scheduler::SchedulerOptions {
            instance_id: id.clone(),
            heartbeat_every: state.config.scheduler_heartbeat_every(),
        };
        Some(jobs::scheduler::start(db.clone(), &state.config.cron_overrides, options).await?)
    } else {
        None
    };
    state.live.wake_on_remote_commits(state.commits.jobs());
    let worker = tokio::spawn(jobs::worker::run(
        jobs::Context {
            db: db.clone(),
            connectors: state.connectors.clone(),
            score_history_days: state.config.score_history_days,
            retention: state.config.retention,
            notifier: state.notifier(),
            data_dir: state.config.data_dir.clone(),
        },
        jobs::worker::WorkerOptions {
            id: id.clone(),
            concurrency: state.config.worker_concurrency.max(1),
            lease: state.config.job_lease,
            poll_interval: state.config.job_poll_interval,
            shutdown_grace: state.config.job_shutdown_grace,
            wake: state.commits.jobs(),
        },
        Arc::new(WorkerObserver {
            metrics: state.metrics.clone(),
            commits: state.commits.clone(),
        }),
        state.shutdown.clone(),
    ));
    let intake = tokio::spawn(jobs::intake::run(
        db.clone(),
        state.intake.clone(),
        state.config.job_poll_interval,
        Arc::new(WorkerObserver {
            metrics: state.metrics.clone(),
            commits: state.commits.clone(),
        }),
        state.shutdown.clone(),
    ));
    let webhooks = tokio::spawn(jobs::webhook_delivery::run(
        db,
        state.webhooks.clone(),
        jobs::webhook_delivery::PumpOptions {
            owner: id,
            poll_interval: state.config.webhook_poll_interval,
            concurrency: state.config.worker_concurrency.max(1),
            lease: state.config.webhook_timeout + std::time::Duration::from_secs(30),
        },
        state.shutdown.clone(),
    ));
    let shutdown = state.shutdown.clone();
    Ok(tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Some(s) = scheduler
            && let Err(e) = s.shutdown().await
        {
            tracing::warn!(error = %e, "stopping the scheduler failed");
        }
        if worker.await.is_err() {
            tracing::error!("the job worker panicked");
        }
        if webhooks.await.is_err() {
            tracing::error!("the webhook delivery loop panicked");
        }
        if intake.await.is_err() {
            tracing::error!("the signal intake drainer panicked");
        }
    }))
}

/// The pool of the worker role's loops (jobs, cron, webhook delivery): its own
/// (`DATABASE_WORKER_CONNECTIONS`), so requests holding every connection of the serving pool never
/// starve them. An in-memory SQLite database exists once per pool, so it keeps the one pool.
async fn background_pool(state: &AppState) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = state.config.database_url.expose_secret();
    if domain::db::Backend::from_url(url) == Some(domain::db::Backend::Sqlite)
        && domain::db::sqlite_file(url).is_none()
    {
        return Ok(state.db.clone());
    }
    let pool = domain::db::PoolSettings {
        max_connections: state.config.database_worker_connections,
        idle_timeout: state.config.database_idle_timeout,
        statement_cache: state.config.database_statement_cache,
        ..Default::default()
    };
    let mut db = domain::db::connect(url, &pool)
        .await
        .context("opening the worker's database pool")?;
    let statements = state.metrics.db_statements.clone();
    db.set_metric_callback(move |_| {
        statements.inc();
    });
    state.metrics.watch_pool("worker", &db);
    Ok(db)
}

/// What the worker reports: job metrics, and the commits of finished jobs.
struct WorkerObserver {
    metrics: Arc<metrics::Metrics>,
    commits: commits::Commits,
}

impl jobs::worker::Observer for WorkerObserver {
    fn job_finished(&self, queue: &str, name: &str, elapsed: Duration, ok: bool) {
        jobs::worker::Observer::job_finished(self.metrics.as_ref(), queue, name, elapsed, ok);
    }
    fn looked(&self, cause: &'static str) {
        jobs::worker::Observer::looked(self.metrics.as_ref(), cause);
    }
    fn signals_drained(&self, drained: &domain::signals::intake::Drained) {
        jobs::worker::Observer::signals_drained(self.metrics.as_ref(), drained);
    }
    fn committed(&self, jobs_due: Option<chrono::DateTime<chrono::Utc>>) {
        self.commits.committed(jobs_due);
    }
}

/// Serves `listener` until `state.shutdown` is cancelled, then stops accepting, lets in-flight
/// requests finish (at most [`SHUTDOWN_GRACE`]) and closes the database pool.
pub async fn serve(state: AppState, listener: TcpListener) -> anyhow::Result<()> {
    let token = state.shutdown.clone();
    let db = state.db.clone();
    let background = if state.config.run_worker {
        Some(start_worker(&state).await?)
    } else {
        None
    };
    let server = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(token.clone().cancelled_owned());
    let drained = async {
        token.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        res = server.into_future() => res.context("HTTP server failed")?,
        () = drained => tracing::warn!("requests still running after {} s; closing them", SHUTDOWN_GRACE.as_secs()),
    }
    if let Some(background) = background
        && background.await.is_err()
    {
        tracing::error!("the worker role panicked");
    }
    db.close().await.context("closing the database pool")?;
    tracing::info!("shut down cleanly");
    Ok(())
}
