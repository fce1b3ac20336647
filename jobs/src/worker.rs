//! The worker: claims due jobs (at most `concurrency` running per queue), runs each in a span
//! with `queue` and `jobId`, renews its lease while it runs, and records the outcome (complete, or
//! retry with backoff, or failed). On shutdown it stops claiming, lets running jobs finish for up
//! to `shutdown_grace`, then releases the leases of any still running so another worker takes
//! them at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::queue::Doorbell;
use entity::jobs;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{Context, registry};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique among running workers: the lease owner.
    pub id: String,
    /// Jobs running at once per queue.
    pub concurrency: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often to look for due jobs when idle.
    pub poll_interval: Duration,
    /// How long running jobs may go on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Rung when a job becomes due before this worker's next planned look (a request's first
    /// rescore of an account, a retried job), so it looks then instead of at its next poll.
    pub wake: Arc<Doorbell>,
}

/// What the worker tells the outside (metrics).
pub trait Observer: Send + Sync {
    fn job_finished(&self, queue: &str, name: &str, elapsed: Duration, ok: bool);
    /// A job has finished and its outcome is recorded: whatever it wrote is committed, so live
    /// subscribers may look now, and workers in every process if `jobs_due` (the earliest
    /// `run_at` of the jobs it enqueued or scheduled for a retry) is before their next look.
    fn committed(&self, _jobs_due: Option<DateTime<Utc>>) {}
    /// The worker is looking for due jobs, because of `cause`: `start`, `poll` (its nap ended),
    /// `ring` (its doorbell), `slot` (a running job finished) or `more` (the last look claimed
    /// jobs, there may be more).
    fn looked(&self, _cause: &'static str) {}
    /// The intake drainer ingested one batch of accepted signals.
    fn signals_drained(&self, _drained: &domain::signals::intake::Drained) {}
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn job_finished(&self, _: &str, _: &str, _: Duration, _: bool) {}
}

#[derive(Default)]
struct Running {
    per_queue: HashMap<String, usize>,
    ids: Vec<Uuid>,
}

/// The shortest idle sleep: a due job that could not be claimed (another worker holds it) is
/// not polled for in a tight loop.
const MIN_NAP: Duration = Duration::from_millis(10);

/// The least time between two looks for due jobs caused by [`WorkerOptions::wake`]. The doorbell
/// rings only for jobs due before the planned look, but a burst of new work (a bulk import
/// touching many new accounts) could still ring hundreds of times a second, and each look costs
/// two reads: coalesced, a burst costs one look per window, and a job enqueued by a request waits
/// at most this long. A slot freed by a finished job is not coalesced: the next job is claimed at
/// once.
const WAKE_COALESCE: Duration = Duration::from_millis(50);

/// A unique worker id: host, process, random suffix.
pub fn worker_id() -> String {
    format!(
        "{}:{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "devsignal".into()),
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Runs jobs until `shutdown`, then drains as described in the module docs.
pub async fn run(
    ctx: Context,
    opts: WorkerOptions,
    observer: Arc<dyn Observer>,
    shutdown: CancellationToken,
) {
    let queues: Vec<String> = registry::QUEUES.iter().map(|q| (*q).to_owned()).collect();
    let running: Arc<Mutex<Running>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    // A finished job frees a slot: look again at once (not coalesced with outside wake-ups).
    let slot_freed = Arc::new(Notify::new());
    let coalesce = WAKE_COALESCE.min(opts.poll_interval);
    tracing::info!(worker = %opts.id, concurrency = opts.concurrency, "Worker started");
    let mut cause = "start";
    while !shutdown.is_cancelled() {
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            match domain::queue::prune(&ctx.db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "Pruned old jobs"),
                Err(e) => tracing::error!(error = %e, "Pruning jobs failed"),
            }
        }
        // Reap finished tasks.
        while tasks.try_join_next().is_some() {}
        let mut claimed_any = false;
        let free_in = |queue: &String| {
            let r = running.lock().unwrap_or_else(|p| p.into_inner());
            opts.concurrency
                .saturating_sub(r.per_queue.get(queue).copied().unwrap_or(0))
        };
        let looked_at = Instant::now();
        opts.wake.looking();
        observer.looked(cause);
        cause = "more";
        let open: Vec<String> = queues.iter().filter(|q| free_in(q) > 0).cloned().collect();
        let due = match domain::queue::due_queues(&ctx.db, &open).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "Looking for due jobs failed");
                Vec::new()
            }
        };
        for queue in &due {
            let free = free_in(queue);
            if free == 0 {
                continue;
            }
            let claimed = match domain::queue::claim(
                &ctx.db,
                std::slice::from_ref(queue),
                &opts.id,
                opts.lease,
                free as u64,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(queue = %queue, error = %e, "Claiming jobs failed");
                    continue;
                }
            };
            for job in claimed {
                claimed_any = true;
                {
                    let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
                    *r.per_queue.entry(job.queue.clone()).or_default() += 1;
                    r.ids.push(job.id);
                }
                let (ctx, opts, observer, running, slot_freed) = (
                    ctx.clone(),
                    opts.clone(),
                    observer.clone(),
                    running.clone(),
                    slot_freed.clone(),
                );
                tasks.spawn(async move {
                    let (queue, id) = (job.queue.clone(), job.id);
                    execute(&ctx, &opts, observer.as_ref(), job).await;
                    {
                        let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(n) = r.per_queue.get_mut(&queue) {
                            *n = n.saturating_sub(1);
                        }
                        r.ids.retain(|x| *x != id);
                    }
                    // A slot is free: look for the next job now, not at the next poll.
                    slot_freed.notify_one();
                });
            }
        }
        if !claimed_any {
            // Sleep until the next waiting job of a queue with room is due (a debounced rescore,
            // a retry), at most a poll interval; new local work wakes us earlier.
            let nap: Duration = match domain::queue::next_due(&ctx.db, &open).await {
                Ok(Some(at)) => (at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(MIN_NAP, opts.poll_interval),
                Ok(None) => opts.poll_interval,
                Err(e) => {
                    tracing::error!(error = %e, "Reading the next due job failed");
                    opts.poll_interval
                }
            };
            opts.wake
                .plan(Utc::now() + chrono::Duration::from_std(nap).unwrap_or_default());
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(nap) => cause = "poll",
                () = slot_freed.notified() => cause = "slot",
                () = opts.wake.rung() => {
                    cause = "ring";
                    // Coalesce a burst of commits into one look per window.
                    let wait = coalesce.saturating_sub(looked_at.elapsed());
                    if !wait.is_zero() {
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
    }
    // Drain: running jobs may finish within the grace period; the rest give their leases back.
    tracing::info!(running = tasks.len(), "Worker stopping");
    let drained = tokio::time::timeout(opts.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        let ids = running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .clone();
        match domain::queue::release(&ctx.db, &opts.id, &ids).await {
            Ok(n) => tracing::warn!(released = n, "Released the leases of jobs still running"),
            Err(e) => tracing::error!(error = %e, "Releasing leases failed"),
        }
    }
    tracing::info!(worker = %opts.id, "Worker stopped");
}

/// Runs one claimed job and records its outcome.
async fn execute(ctx: &Context, opts: &WorkerOptions, observer: &dyn Observer, job: jobs::Model) {
    let span = tracing::info_span!(
        "job",
        queue = %job.queue,
        jobId = %job.id,
        job = %job.name,
        organizationId = job.organization_id.map(|o| o.to_string()).unwrap_or_default(),
    );
    async {
        let ((), jobs_due) =
            domain::queue::noting_due_jobs(run_and_record(ctx, opts, observer, &job)).await;
        // The job's writes (and a retry it scheduled) are committed: let others look now.
        observer.committed(jobs_due);
    }
    .instrument(span)
    .await
}

/// Runs `job` while renewing its lease, then records the outcome.
async fn run_and_record(
    ctx: &Context,
    opts: &WorkerOptions,
    observer: &dyn Observer,
    job: &jobs::Model,
) {
    tracing::info!(attempt = job.attempts, "Processing job");
    let started = Instant::now();
    let renewing = async {
        let every = opts.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match domain::queue::renew(&ctx.db, job.id, &opts.id, opts.lease).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!("The job's lease was lost"),
                Err(e) => tracing::warn!(error = %e, "Renewing the job's lease failed"),
            }
        }
    };
    let result = tokio::select! {
        r = registry::run_job(ctx.clone(), job.clone()) => r,
        () = renewing => unreachable_loop(),
    };
    let elapsed = started.elapsed();
    observer.job_finished(&job.queue, &job.name, elapsed, result.is_ok());
    match result {
        Ok(()) => {
            if let Err(e) = domain::queue::complete(&ctx.db, job.id, &opts.id).await {
                tracing::error!(error = %e, "Recording a completed job failed");
            }
            tracing::info!(durationMs = elapsed.as_millis() as u64, "Job completed");
        }
        Err(err) if err.downcast_ref::<crate::Skipped>().is_some() => {
            let reason = format!("{err}");
            if let Err(e) = domain::queue::skip(&ctx.db, job.id, &opts.id, &reason).await {
                tracing::error!(error = %e, "Recording a skipped job failed");
            }
            tracing::info!(reason = %reason, "Job skipped");
        }
        Err(err) => {
            let error = format!("{err:#}");
            match domain::queue::fail(&ctx.db, job, &opts.id, &error).await {
                Ok(domain::queue::Failure::Retry(at)) => tracing::warn!(
                    attempt = job.attempts,
                    maxAttempts = job.max_attempts,
                    error = %error,
                    retryAt = %at,
                    "Job failed"
                ),
                Ok(domain::queue::Failure::Dead) => tracing::error!(
                    attempt = job.attempts,
                    maxAttempts = job.max_attempts,
                    error = %error,
                    "Job failed"
                ),
                Err(e) => tracing::error!(error = %e, "Recording a failed job failed"),
            }
        }
    }
}

/// The renewal loop never ends; this satisfies the type of its `select!` arm.
fn unreachable_loop() -> anyhow::Result<()> {
    Err(anyhow::anyhow!("lease renewal stopped"))
}
