//! Prometheus metrics (`GET /metrics`). Labels are low-cardinality: the matched route pattern
//! (never the raw path), the method and the status code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
    /// Signals offered to ingest, by outcome (`created`, `deduplicated`, `rejected`).
    pub signals_ingested: Family<OutcomeLabels, Counter>,
    /// Live GraphQL subscriptions this process serves (set at each scrape).
    pub live_subscriptions: Gauge,
    /// Looks at the job queue by this process's worker, by cause (see
    /// [`jobs::worker::Observer::looked`]).
    pub worker_looks: Family<CauseLabels, Counter>,
    /// The scheduler's state, read from the database at each scrape ([`SchedulerMetrics`]).
    pub scheduler: SchedulerMetrics,
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
        let signals_ingested = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "signals_ingested",
            "Signals offered to ingest by this process, by outcome (created, deduplicated, rejected)",
            signals_ingested.clone(),
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
        let scheduler = SchedulerMetrics::default();
        scheduler.register(&mut registry);
        Self {
            scheduler,
            registry,
            worker_looks,
            signals_ingested,
            live_subscriptions,
            http_requests,
            http_request_duration,
            queue_depth,
            jobs_finished,
            job_duration,
            db_statements,
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
