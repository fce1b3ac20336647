//! Prometheus metrics (`GET /metrics`). Labels are low-cardinality: the matched route pattern
//! (never the raw path), the method and the status code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sea_orm::DatabaseConnection;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RequestLabels, Histogram>,
    /// Jobs per queue and state (waiting, active, delayed, failed, completed), read from the
    /// database at each scrape.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// Jobs finished by this process, by queue, job and outcome (`ok` or `error`).
    pub jobs_finished: Family<JobLabels, Counter>,
    pub job_duration: Family<JobLabels, Histogram>,
    /// SQL statements sent to the database (installed on the pool by `build_state`).
    pub db_statements: Counter,
    /// GraphQL documents admitted, by outcome: `parsed` (its text was new) or `reused` (a copy
    /// of an earlier parse of the same text; see `graphql::documents`). Counters of the family,
    /// made once so counting allocates nothing.
    pub graphql_documents_parsed: Counter,
    pub graphql_documents_reused: Counter,
    /// Signals offered to ingest, by outcome (`created`, `deduplicated`, `rejected`).
    pub signals_ingested: Family<OutcomeLabels, Counter>,
    pub intake_pending: Gauge,
    pub intake_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Ingest batches that took claims, and the time they spent taking them (see
    /// `domain::signals::claim_totals`); set at each scrape.
    pub ingest_claims: Counter,
    pub ingest_claim_seconds: Counter<f64, AtomicU64>,
    /// Live GraphQL subscriptions this process serves (set at each scrape).
    pub live_subscriptions: Gauge,
    /// Looks at the job queue by this process's worker, by cause (see
    /// [`jobs::worker::Observer::looked`]).
    pub worker_looks: Family<CauseLabels, Counter>,
    /// Connections of each database pool of this process, by state (`in_use`, `idle`), and
    /// each pool's ceiling; set at each scrape from the pools registered with
    /// [`Metrics::watch_pool`].
    pub db_pool_connections: Family<PoolStateLabels, Gauge>,
    pub db_pool_max: Family<PoolLabels, Gauge>,
    pools: Mutex<Vec<(&'static str, DatabaseConnection)>>,
    /// This process: resident memory, CPU time, open file descriptors, threads, start time.
    pub process_resident_memory: Gauge,
    pub process_cpu: Counter<f64, AtomicU64>,
    pub process_open_fds: Gauge,
    pub process_threads: Gauge,
    pub process_start_time: Gauge,
    /// What the allocator holds, by kind (`allocated`, `active`, `resident`, `metadata`,
    /// `retained`; see [`crate::AllocatorStats`]).
    pub allocator: Family<KindLabels, Gauge>,
    /// Whether Redis answered a PING at the last scrape (absent when Redis is not configured),
    /// and how long it took.
    /// (`redis_up`, `redis_ping_seconds`), registered by [`Metrics::watch_redis`].
    redis: Option<(Gauge, Gauge<f64, AtomicU64>)>,
    /// Integrations of every organization by kind and status.
    pub integrations: Family<IntegrationLabels, Gauge>,
    /// The scheduler's state, read from the database at each scrape ([`SchedulerMetrics`]).
    pub scheduler: SchedulerMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolStateLabels {
    pub pool: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub kind: String,
    pub status: String,
}

/// `devsignal_scheduler_last_tick_timestamp_seconds{schedule}` (each cron entry's last recorded
/// tick, enqueued or skipped) and `devsignal_scheduler_alive` (schedulers with a fresh heartbeat),
/// set at each scrape by [`SchedulerMetrics::set`] from the database's reads.
#[derive(Clone, Default)]
pub struct SchedulerMetrics {
    pub last_tick: Family<ScheduleLabels, Gauge>,
    pub alive: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabels {
    pub schedule: String,
}

impl SchedulerMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_last_tick_timestamp_seconds",
            "Unix time of each cron entry's last recorded tick (enqueued or skipped)",
            self.last_tick.clone(),
        );
        registry.register(
            "scheduler_alive",
            "Cron schedulers whose heartbeat is fresh (SCHEDULER_STALE_SECONDS)",
            self.alive.clone(),
        );
    }

    /// Sets the gauges from fresh reads: each entry's last tick time, the live schedulers.
    pub fn set(&self, last_ticks: &[(String, chrono::DateTime<chrono::Utc>)], alive: usize) {
        for (schedule, at) in last_ticks {
            self.last_tick
                .get_or_create(&ScheduleLabels {
                    schedule: schedule.clone(),
                })
                .set(at.timestamp());
        }
        self.alive.set(i64::try_from(alive).unwrap_or(i64::MAX));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub queue: String,
    pub job: String,
    pub outcome: String,
}

/// Latency buckets in seconds, from 5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0,
];

/// Raises `counter` to `total`, a running total read elsewhere (a counter never goes down).
fn advance_to(counter: &Counter<f64, AtomicU64>, total: f64) {
    let delta = total - counter.get();
    if delta > 0.0 {
        counter.inc_by(delta);
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("devsignal");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by method, matched route and status",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS)
            });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by method, matched route and status",
            http_request_duration.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Jobs in each queue by state (waiting, active, delayed, failed, completed)",
            queue_depth.clone(),
        );
        let jobs_finished = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs_finished",
            "Job attempts finished by this process, by queue, job and outcome",
            jobs_finished.clone(),
        );
        let job_duration = Family::<JobLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "job_duration_seconds",
            "Job attempt durations, by queue, job and outcome",
            job_duration.clone(),
        );
        let db_statements = Counter::default();
        registry.register(
            "db_statements",
            "SQL statements sent to the database",
            db_statements.clone(),
        );
        let graphql_documents = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "graphql_documents",
            "GraphQL documents this process admitted, by outcome (parsed: a text it had not kept; reused: a copy of a kept parse of the same text)",
            graphql_documents.clone(),
        );
        let document = |outcome: &str| {
            graphql_documents
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .clone()
        };
        let (graphql_documents_parsed, graphql_documents_reused) =
            (document("parsed"), document("reused"));
        let signals_ingested = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "signals_ingested",
            "Signals offered to ingest by this process, by outcome (created, deduplicated, rejected; accepted: stored for later ingest, counted again by outcome when the worker ingests them)",
            signals_ingested.clone(),
        );
        let ingest_claims = Counter::default();
        registry.register(
            "ingest_claims",
            "Ingest batches of this process that claimed what they may create (PostgreSQL: new people, accounts, idempotency keys)",
            ingest_claims.clone(),
        );
        let ingest_claim_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "ingest_claim_seconds",
            "Time those batches spent taking their claims, waiting for concurrent batches that claimed the same things included: its rate over ingest_claims' is how long each batch waited for others",
            ingest_claim_seconds.clone(),
        );
        let intake_pending = Gauge::default();
        registry.register(
            "signal_intake_pending",
            "Requests accepted for later ingest (Prefer: respond-async) not yet ingested",
            intake_pending.clone(),
        );
        let intake_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "signal_intake_oldest_seconds",
            "Age of the oldest request accepted for later ingest and not yet ingested (0 when none)",
            intake_oldest.clone(),
        );
        let live_subscriptions = Gauge::default();
        registry.register(
            "live_subscriptions",
            "GraphQL subscriptions this process is serving",
            live_subscriptions.clone(),
        );
        let worker_looks = Family::<CauseLabels, Counter>::default();
        registry.register(
            "worker_looks",
            "Looks for due jobs by this process's worker, by cause (start, poll, ring, slot, more)",
            worker_looks.clone(),
        );
        let db_pool_connections = Family::<PoolStateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections of this process's pools (serving, worker), by state (in_use, idle)",
            db_pool_connections.clone(),
        );
        let db_pool_max = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections each database pool of this process opens",
            db_pool_max.clone(),
        );
        let process_resident_memory = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            process_resident_memory.clone(),
        );
        let process_cpu = Counter::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time (user and system) this process has used",
            process_cpu.clone(),
        );
        let process_open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors (sockets included) of this process",
            process_open_fds.clone(),
        );
        let process_threads = Gauge::default();
        registry.register(
            "process_threads",
            "Threads of this process",
            process_threads.clone(),
        );
        let process_start_time = Gauge::default();
        registry.register(
            "process_start_time_seconds",
            "When this process started, in seconds since the Unix epoch",
            process_start_time.clone(),
        );
        let allocator = Family::<KindLabels, Gauge>::default();
        registry.register(
            "allocator_bytes",
            "Memory the allocator holds, by kind: allocated (live), active (pages with live data), resident, metadata, retained (unmapped, kept for reuse)",
            allocator.clone(),
        );
        let integrations = Family::<IntegrationLabels, Gauge>::default();
        registry.register(
            "integrations",
            "Integrations of every organization, by kind and status (CONNECTED, SYNCING, BACKOFF, ERROR, DISCONNECTED)",
            integrations.clone(),
        );
        let scheduler = SchedulerMetrics::default();
        scheduler.register(&mut registry);
        Self {
            scheduler,
            registry,
            db_pool_connections,
            db_pool_max,
            pools: Mutex::new(Vec::new()),
            process_resident_memory,
            process_cpu,
            process_open_fds,
            process_threads,
            process_start_time,
            allocator,
            redis: None,
            integrations,
            worker_looks,
            signals_ingested,
            intake_pending,
            intake_oldest,
            ingest_claims,
            ingest_claim_seconds,
            live_subscriptions,
            http_requests,
            http_request_duration,
            queue_depth,
            jobs_finished,
            job_duration,
            db_statements,
            graphql_documents_parsed,
            graphql_documents_reused,
        }
    }

    /// Counts the outcomes of one ingest call.
    pub fn count_ingest<T, E>(&self, results: &[Result<T, E>], deduplicated: impl Fn(&T) -> bool) {
        for r in results {
            let outcome = match r {
                Ok(v) if deduplicated(v) => "deduplicated",
                Ok(_) => "created",
                Err(_) => "rejected",
            };
            self.signals_ingested
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc();
        }
    }

    /// Counts signals accepted for later ingest (their ingest is counted when drained).
    pub fn count_accepted(&self, n: usize) {
        self.signals_ingested
            .get_or_create(&OutcomeLabels {
                outcome: "accepted".into(),
            })
            .inc_by(n as u64);
    }

    /// Sets the queue depth gauges from fresh counts.
    pub fn set_queue_depths(&self, counts: &[domain::queue::QueueCounts]) {
        for c in counts {
            for (state, n) in [
                ("waiting", c.waiting),
                ("active", c.active),
                ("delayed", c.delayed),
                ("failed", c.failed),
                ("completed", c.completed),
            ] {
                self.queue_depth
                    .get_or_create(&QueueLabels {
                        queue: c.queue.clone(),
                        state: state.into(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Adds the Redis figures (only a process that has Redis configured shows them).
    pub fn watch_redis(&mut self) {
        let up = Gauge::default();
        self.registry.register(
            "redis_up",
            "1 when Redis answered a PING within a second at this scrape, 0 otherwise",
            up.clone(),
        );
        let ping = Gauge::<f64, AtomicU64>::default();
        self.registry.register(
            "redis_ping_seconds",
            "How long Redis took to answer the PING of this scrape",
            ping.clone(),
        );
        self.redis = Some((up, ping));
    }

    /// Reports `db`'s pool under `name` at each scrape (the serving pool, the worker's own).
    pub fn watch_pool(&self, name: &'static str, db: &DatabaseConnection) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.retain(|(n, _)| *n != name);
            pools.push((name, db.clone()));
        }
    }

    /// Sets the pool gauges from the pools registered with [`Metrics::watch_pool`].
    pub fn set_pools(&self) {
        let pools = match self.pools.lock() {
            Ok(p) => p.clone(),
            Err(_) => return,
        };
        for (name, db) in pools {
            let Some(stats) = domain::db::pool_stats(&db) else {
                continue;
            };
            for (state, n) in [("in_use", stats.in_use()), ("idle", stats.idle)] {
                self.db_pool_connections
                    .get_or_create(&PoolStateLabels {
                        pool: name.into(),
                        state: state.into(),
                    })
                    .set(n.into());
            }
            self.db_pool_max
                .get_or_create(&PoolLabels { pool: name.into() })
                .set(stats.max.into());
        }
    }

    /// Sets the integrations gauge from fresh (kind, status, count) rows: a kind whose
    /// integrations all left a status reads nothing there, not its last count.
    pub fn set_integrations(&self, counts: Vec<(String, String, i64)>) {
        self.integrations.clear();
        for (kind, status, n) in counts {
            self.integrations
                .get_or_create(&IntegrationLabels { kind, status })
                .set(n);
        }
    }

    /// Sets the Redis figures (when registered): whether it answered, and in how long.
    pub fn set_redis(&self, answered_in: Option<std::time::Duration>) {
        if let Some((up, ping)) = &self.redis {
            up.set(i64::from(answered_in.is_some()));
            ping.set(answered_in.map_or(f64::NAN, |d| d.as_secs_f64()));
        }
    }

    /// Whether the Redis figures are registered (Redis is configured).
    pub fn watches_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Brings the ingest claim counters up to this process's totals.
    pub fn set_ingest_claims(&self) {
        let (batches, took) = domain::signals::claim_totals();
        let more = batches.saturating_sub(self.ingest_claims.get());
        if more > 0 {
            self.ingest_claims.inc_by(more);
        }
        advance_to(&self.ingest_claim_seconds, took.as_secs_f64());
    }

    /// Sets the process gauges from `/proc`.
    pub fn set_process(&self) {
        let Some(p) = process_stats() else {
            return;
        };
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.process_resident_memory, p.resident_bytes);
        gauge(&self.process_open_fds, p.open_fds);
        gauge(&self.process_threads, p.threads);
        gauge(&self.process_start_time, p.start_time_secs);
        advance_to(&self.process_cpu, p.cpu_seconds);
        if let Some(a) = crate::AllocatorStats::read() {
            for (kind, bytes) in [
                ("allocated", a.allocated),
                ("active", a.active),
                ("resident", a.resident),
                ("metadata", a.metadata),
                ("retained", a.retained),
            ] {
                gauge(
                    &self
                        .allocator
                        .get_or_create(&KindLabels { kind: kind.into() }),
                    bytes,
                );
            }
        }
    }

    /// Lets other parts of the process (jobs, webhooks) add their own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn observe_request(&self, labels: RequestLabels, seconds: f64) {
        self.http_requests.get_or_create(&labels).inc();
        self.http_request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the kernel says of this process (Linux `/proc`; `None` elsewhere).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub threads: u64,
    pub start_time_secs: u64,
}

/// `/proc` reports CPU times in ticks of `USER_HZ`, which Linux fixes at 100 on every
/// architecture it exposes to user space.
const USER_HZ: f64 = 100.0;

/// This process's figures from `/proc/self` (`stat`, `status`, `fd`) and `/proc/stat`.
pub fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may itself hold spaces.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let (utime, stime, threads, start_ticks) = (field(14)?, field(15)?, field(20)?, field(22)?);
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    Some(ProcessStats {
        resident_bytes: rss_kb * 1024,
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        open_fds,
        threads,
        start_time_secs: boot + start_ticks / USER_HZ as u64,
    })
}

impl jobs::worker::Observer for Metrics {
    fn job_finished(&self, queue: &str, name: &str, elapsed: std::time::Duration, ok: bool) {
        let labels = JobLabels {
            queue: queue.to_owned(),
            job: name.to_owned(),
            outcome: if ok { "ok" } else { "error" }.to_owned(),
        };
        self.jobs_finished.get_or_create(&labels).inc();
        self.job_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
    fn signals_drained(&self, d: &domain::signals::intake::Drained) {
        for (outcome, n) in [
            ("created", d.created),
            ("deduplicated", d.deduplicated),
            ("rejected", d.rejected),
        ] {
            self.signals_ingested
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc_by(n as u64);
        }
    }
    fn looked(&self, cause: &'static str) {
        self.worker_looks
            .get_or_create(&CauseLabels {
                cause: cause.to_owned(),
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
