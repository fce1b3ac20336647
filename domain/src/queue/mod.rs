//! The durable job queue (DESIGN 9), stored in the database so that nothing acknowledged is lost
//! on a crash, a restart or a Redis loss. This module is storage only — enqueue, claim, lease,
//! finish, retry, pause, inspect, prune — so a domain write can enqueue the job it causes in its
//! own transaction. The `jobs` crate runs the workers and the scheduler on top of it.
//!
//! Claiming: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` inside the claiming transaction, so
//! concurrent workers never take the same job; on SQLite the claiming transaction is `BEGIN
//! IMMEDIATE`, which serialises claimers. A claim takes waiting jobs that are due, and active jobs
//! whose lease expired (their worker died): at-least-once delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{job_cron_ticks, job_queues, jobs};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::{Error, Result};

/// Job states.
pub mod state {
    pub const WAITING: &str = "waiting";
    pub const ACTIVE: &str = "active";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    /// Finished without doing its work, for the reason in `last_error` (e.g. "not available").
    pub const SKIPPED: &str = "skipped";
    pub const ALL: &[&str] = &[WAITING, ACTIVE, COMPLETED, FAILED, SKIPPED];
}

/// Completed jobs kept per queue (runbook: BullMQ `removeOnComplete`).
pub const KEEP_COMPLETED: u64 = 1_000;
/// Failed jobs kept per queue (runbook: BullMQ `removeOnFail`).
pub const KEEP_FAILED: u64 = 5_000;
/// Errors are stored up to this many characters.
const MAX_ERROR: usize = 4_000;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub name: String,
    pub payload: Value,
    pub organization_id: Option<Uuid>,
    /// Lower runs first (default 0).
    pub priority: i32,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    /// Not before this time (default: now).
    pub run_at: Option<DateTime<Utc>>,
    /// While a job with this key waits, enqueueing another with the same key does nothing.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// A job with the runbook's defaults: 3 attempts, 1 s backoff base, priority 0, due now.
    pub fn new(queue: &str, name: &str, payload: Value) -> Self {
        NewJob {
            queue: queue.to_owned(),
            name: name.to_owned(),
            payload,
            organization_id: None,
            priority: 0,
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            run_at: None,
            dedupe_key: None,
        }
    }

    pub fn organization(mut self, id: Uuid) -> Self {
        self.organization_id = Some(id);
        self
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
}

/// Jobs this process has enqueued (committed or not): a request that sees it change between its
/// start and its end wakes the in-process worker once it is over (see `server::http`).
static ENQUEUED: AtomicU64 = AtomicU64::new(0);

/// How many jobs this process has enqueued so far.
pub fn enqueued() -> u64 {
    ENQUEUED.load(Ordering::Relaxed)
}

/// `queues` without the paused ones.
async fn unpaused(db: &impl ConnectionTrait, queues: &[String]) -> Result<Vec<String>> {
    let paused = paused_queues(db).await?;
    Ok(queues
        .iter()
        .filter(|q| !paused.contains(q))
        .cloned()
        .collect())
}

/// Which of `queues` (paused ones aside) have a job to claim now: two reads, so an idle or
/// woken worker does not try every queue in turn.
pub async fn due_queues(db: &impl ConnectionTrait, queues: &[String]) -> Result<Vec<String>> {
    let queues = unpaused(db, queues).await?;
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    Ok(jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Queue)
        .distinct()
        .filter(claimable(&queues, Utc::now()))
        .into_tuple()
        .all(db)
        .await?)
}

/// When the next waiting job of `queues` becomes due (`None` when none waits), so an idle
/// worker can sleep until then instead of a whole poll interval.
pub async fn next_due(
    db: &impl ConnectionTrait,
    queues: &[String],
) -> Result<Option<DateTime<Utc>>> {
    let queues = unpaused(db, queues).await?;
    if queues.is_empty() {
        return Ok(None);
    }
    let at: Option<Option<DateTime<Utc>>> = jobs::Entity::find()
        .select_only()
        .column_as(jobs::Column::RunAt.min(), "next_run_at")
        .filter(jobs::Column::State.eq(state::WAITING))
        .filter(jobs::Column::Queue.is_in(queues))
        .into_tuple()
        .one(db)
        .await?;
    Ok(at.flatten())
}

/// Adds a job, in the caller's transaction when `db` is one. Returns its id, or `None` when a
/// waiting job with the same dedupe key already exists.
pub async fn enqueue(db: &impl ConnectionTrait, job: NewJob) -> Result<Option<Uuid>> {
    ENQUEUED.fetch_add(1, Ordering::Relaxed);
    let now = Utc::now();
    let id = Uuid::now_v7();
    let model = jobs::ActiveModel {
        id: Set(id),
        queue: Set(job.queue),
        name: Set(job.name),
        payload: Set(job.payload),
        organization_id: Set(job.organization_id),
        state: Set(state::WAITING.into()),
        priority: Set(job.priority),
        attempts: Set(0),
        max_attempts: Set(std::cmp::max(job.max_attempts, 1)),
        backoff_base_ms: Set(i64::try_from(job.backoff_base.as_millis()).unwrap_or(i64::MAX)),
        run_at: Set(job.run_at.unwrap_or(now)),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(None),
        dedupe_key: Set(job.dedupe_key),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
    };
    let res = jobs::Entity::insert(model)
        .on_conflict(
            OnConflict::column(jobs::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok((res == 1).then_some(id))
}

/// Records work that already failed elsewhere as a failed job (e.g. a webhook delivery whose
/// attempts are used up), so the operator's `retry-failed` puts it back to work.
pub async fn record_failed(
    db: &impl ConnectionTrait,
    job: NewJob,
    attempts: i32,
    error: &str,
) -> Result<Uuid> {
    let now = Utc::now();
    let id = Uuid::now_v7();
    jobs::Entity::insert(jobs::ActiveModel {
        id: Set(id),
        queue: Set(job.queue),
        name: Set(job.name),
        payload: Set(job.payload),
        organization_id: Set(job.organization_id),
        state: Set(state::FAILED.into()),
        priority: Set(job.priority),
        attempts: Set(attempts),
        max_attempts: Set(std::cmp::max(job.max_attempts, 1)),
        backoff_base_ms: Set(i64::try_from(job.backoff_base.as_millis()).unwrap_or(i64::MAX)),
        run_at: Set(now),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(Some(error.chars().take(MAX_ERROR).collect())),
        dedupe_key: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(Some(now)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

/// The queues that are paused now.
pub async fn paused_queues(db: &impl ConnectionTrait) -> Result<Vec<String>> {
    Ok(job_queues::Entity::find()
        .filter(job_queues::Column::Paused.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|q| q.name)
        .collect())
}

fn claimable(queues: &[String], now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(jobs::Column::Queue.is_in(queues.to_vec()))
        .add(
            Condition::any()
                .add(
                    Condition::all()
                        .add(jobs::Column::State.eq(state::WAITING))
                        .add(jobs::Column::RunAt.lte(now)),
                )
                .add(
                    Condition::all()
                        .add(jobs::Column::State.eq(state::ACTIVE))
                        .add(jobs::Column::LockedUntil.lt(now)),
                ),
        )
}

/// Takes up to `limit` due jobs of `queues` (paused queues are skipped) for `worker`, leased
/// until now + `lease`, oldest first by priority. Each claim counts as an attempt. An active job
/// whose lease expired on its last attempt is marked failed instead of run again.
pub async fn claim(
    db: &DatabaseConnection,
    queues: &[String],
    worker: &str,
    lease: Duration,
    limit: u64,
) -> Result<Vec<jobs::Model>> {
    if queues.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let queues = unpaused(db, queues).await?;
    if queues.is_empty() {
        return Ok(Vec::new());
    }
    // A cheap read first: most polls find nothing and then take no write lock at all.
    let any = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(claimable(&queues, now))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let txn = crate::db::begin(db).await?;
    let now = Utc::now();
    jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::FAILED))
        .col_expr(
            jobs::Column::LastError,
            Expr::value("the worker was lost (lease expired) during the last attempt"),
        )
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Queue.is_in(queues.clone()))
        .filter(jobs::Column::State.eq(state::ACTIVE))
        .filter(jobs::Column::LockedUntil.lt(now))
        .filter(Expr::col(jobs::Column::Attempts).gte(Expr::col(jobs::Column::MaxAttempts)))
        .exec(&txn)
        .await?;
    let mut select = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(claimable(&queues, now))
        .order_by_asc(jobs::Column::Priority)
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .limit(limit);
    if txn.get_database_backend() == DbBackend::Postgres {
        select = select.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        );
    }
    let ids: Vec<Uuid> = select.into_tuple().all(&txn).await?;
    if ids.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    let until = now + chrono_duration(lease);
    jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::ACTIVE))
        .col_expr(jobs::Column::LockedBy, Expr::value(worker))
        .col_expr(jobs::Column::LockedUntil, Expr::value(until))
        .col_expr(
            jobs::Column::Attempts,
            Expr::col(jobs::Column::Attempts).add(1),
        )
        .col_expr(jobs::Column::StartedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::DedupeKey, Expr::value(Option::<String>::None))
        .filter(jobs::Column::Id.is_in(ids.clone()))
        .exec(&txn)
        .await?;
    let claimed = jobs::Entity::find()
        .filter(jobs::Column::Id.is_in(ids))
        .order_by_asc(jobs::Column::Priority)
        .order_by_asc(jobs::Column::RunAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(claimed)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

/// Extends `worker`'s lease on a running job; false when the job is no longer this worker's.
pub async fn renew(
    db: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool> {
    let res = jobs::Entity::update_many()
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Utc::now() + chrono_duration(lease)),
        )
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.eq(state::ACTIVE))
        .filter(jobs::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks `worker`'s job completed.
pub async fn complete(db: &impl ConnectionTrait, id: Uuid, worker: &str) -> Result<bool> {
    let now = Utc::now();
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::COMPLETED))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks `worker`'s job skipped: finished without doing its work, for `reason` (kept in
/// `last_error`, so `jobs` in GraphQL and the CLI show why).
pub async fn skip(db: &impl ConnectionTrait, id: Uuid, worker: &str, reason: &str) -> Result<bool> {
    let now = Utc::now();
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::SKIPPED))
        .col_expr(
            jobs::Column::LastError,
            Expr::value(reason.chars().take(MAX_ERROR).collect::<String>()),
        )
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The wait before retry `attempt` (1 = after the first failure): `base · 2^(attempt-1)`, plus up
/// to 20 % random jitter so that many jobs failing together do not retry together.
pub fn backoff(base: Duration, attempt: i32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt.clamp(1, 20) - 1));
    let jitter = rand::rng().random_range(0.0..0.2);
    exp.saturating_add(exp.mul_f64(jitter))
}

/// What became of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It runs again at this time.
    Retry(DateTime<Utc>),
    /// No attempts left: the job is failed.
    Dead,
}

/// Records a failed attempt of `worker`'s job: back to waiting after the backoff, or failed
/// when its attempts are used up.
pub async fn fail(
    db: &impl ConnectionTrait,
    job: &jobs::Model,
    worker: &str,
    error: &str,
) -> Result<Failure> {
    let now = Utc::now();
    let error: String = error.chars().take(MAX_ERROR).collect();
    let dead = job.attempts >= job.max_attempts;
    let wait = backoff(
        Duration::from_millis(u64::try_from(job.backoff_base_ms).unwrap_or(1000)),
        job.attempts,
    );
    let retry_at = now + chrono_duration(wait);
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::LastError, Expr::value(error))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    update = if dead {
        update
            .col_expr(jobs::Column::State, Expr::value(state::FAILED))
            .col_expr(jobs::Column::FinishedAt, Expr::value(now))
    } else {
        update
            .col_expr(jobs::Column::State, Expr::value(state::WAITING))
            .col_expr(jobs::Column::RunAt, Expr::value(retry_at))
    };
    update
        .filter(jobs::Column::Id.eq(job.id))
        .filter(jobs::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(if dead {
        Failure::Dead
    } else {
        Failure::Retry(retry_at)
    })
}

/// Gives back `worker`'s running jobs (shutdown): they wait again, due now, and the interrupted
/// attempt does not count. Returns how many.
pub async fn release(db: &impl ConnectionTrait, worker: &str, ids: &[Uuid]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::WAITING))
        .col_expr(jobs::Column::RunAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            jobs::Column::Attempts,
            Expr::col(jobs::Column::Attempts).sub(1),
        )
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Id.is_in(ids.to_vec()))
        .filter(jobs::Column::State.eq(state::ACTIVE))
        .filter(jobs::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Pauses or resumes a queue (kept in the database, so it survives restarts).
pub async fn set_paused(db: &impl ConnectionTrait, queue: &str, paused: bool) -> Result<()> {
    job_queues::Entity::insert(job_queues::ActiveModel {
        name: Set(queue.to_owned()),
        paused: Set(paused),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(job_queues::Column::Name)
            .update_columns([job_queues::Column::Paused, job_queues::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Job counts of one queue, by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    pub queue: String,
    /// Due now.
    pub waiting: u64,
    pub active: u64,
    /// Waiting with `run_at` ahead (scheduled retries, delayed jobs).
    pub delayed: u64,
    pub failed: u64,
    pub completed: u64,
    pub paused: bool,
}

/// Counts for each of `queues` (and any other queue that has jobs), optionally only one
/// organization's jobs.
pub async fn counts(
    db: &impl ConnectionTrait,
    queues: &[&str],
    organization_id: Option<Uuid>,
) -> Result<Vec<QueueCounts>> {
    let now = Utc::now();
    let org_filter = |q: sea_orm::Select<jobs::Entity>| match organization_id {
        Some(org) => q.filter(jobs::Column::OrganizationId.eq(org)),
        None => q,
    };
    let rows: Vec<(String, String, i64)> = org_filter(jobs::Entity::find())
        .select_only()
        .column(jobs::Column::Queue)
        .column(jobs::Column::State)
        .column_as(jobs::Column::Id.count(), "n")
        .group_by(jobs::Column::Queue)
        .group_by(jobs::Column::State)
        .into_tuple()
        .all(db)
        .await?;
    let delayed: Vec<(String, i64)> = org_filter(jobs::Entity::find())
        .select_only()
        .column(jobs::Column::Queue)
        .column_as(jobs::Column::Id.count(), "n")
        .filter(jobs::Column::State.eq(state::WAITING))
        .filter(jobs::Column::RunAt.gt(now))
        .group_by(jobs::Column::Queue)
        .into_tuple()
        .all(db)
        .await?;
    let paused = paused_queues(db).await?;
    let mut out: Vec<QueueCounts> = queues
        .iter()
        .map(|q| QueueCounts {
            queue: (*q).to_owned(),
            paused: paused.iter().any(|p| p == q),
            ..Default::default()
        })
        .collect();
    let rows = rows.into_iter().chain(
        delayed
            .into_iter()
            .map(|(q, n)| (q, "delayed".to_owned(), n)),
    );
    for (queue, st, n) in rows {
        let idx = match out.iter().position(|c| c.queue == queue) {
            Some(i) => i,
            None => {
                out.push(QueueCounts {
                    paused: paused.contains(&queue),
                    queue,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let c = &mut out[idx];
        let n = u64::try_from(n).unwrap_or(0);
        match st.as_str() {
            // "delayed" rows are also counted as waiting above: move them over.
            "delayed" => {
                c.delayed += n;
                c.waiting = c.waiting.saturating_sub(n);
            }
            state::WAITING => c.waiting += n,
            state::ACTIVE => c.active += n,
            state::FAILED => c.failed += n,
            state::COMPLETED => c.completed += n,
            _ => {}
        }
    }
    Ok(out)
}

/// Puts up to `limit` failed jobs of `queue` back to waiting with fresh attempts (optionally
/// only one organization's). Returns how many.
pub async fn retry_failed(
    db: &impl ConnectionTrait,
    queue: &str,
    limit: u64,
    organization_id: Option<Uuid>,
) -> Result<u64> {
    let mut q = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(jobs::Column::Queue.eq(queue))
        .filter(jobs::Column::State.eq(state::FAILED))
        .order_by_asc(jobs::Column::FinishedAt)
        .limit(limit);
    if let Some(org) = organization_id {
        q = q.filter(jobs::Column::OrganizationId.eq(org));
    }
    let ids: Vec<Uuid> = q.into_tuple().all(db).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state::WAITING))
        .col_expr(jobs::Column::Attempts, Expr::value(0))
        .col_expr(jobs::Column::RunAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            jobs::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(jobs::Column::Id.is_in(ids))
        .filter(jobs::Column::State.eq(state::FAILED))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Deletes `queue`'s jobs in `st` (completed or failed) that finished before `before`.
pub async fn clean(
    db: &impl ConnectionTrait,
    queue: &str,
    st: &str,
    before: DateTime<Utc>,
) -> Result<u64> {
    if st != state::COMPLETED && st != state::FAILED {
        return Err(Error::invalid(
            "state",
            "only completed or failed jobs are cleaned",
        ));
    }
    let res = jobs::Entity::delete_many()
        .filter(jobs::Column::Queue.eq(queue))
        .filter(jobs::Column::State.eq(st))
        .filter(jobs::Column::FinishedAt.lt(before))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Keeps the newest [`KEEP_COMPLETED`] completed and [`KEEP_FAILED`] failed jobs of each queue
/// and drops cron tick records older than a week. Returns how many jobs were deleted.
pub async fn prune(db: &impl ConnectionTrait) -> Result<u64> {
    let queues: Vec<String> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Queue)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut deleted = 0;
    for q in queues {
        for (st, keep) in [
            (state::COMPLETED, KEEP_COMPLETED),
            (state::FAILED, KEEP_FAILED),
            (state::SKIPPED, KEEP_COMPLETED),
        ] {
            // The oldest job to keep (by finish time, then id); everything older goes.
            let cutoff = jobs::Entity::find()
                .filter(jobs::Column::Queue.eq(q.as_str()))
                .filter(jobs::Column::State.eq(st))
                .order_by_desc(jobs::Column::FinishedAt)
                .order_by_desc(jobs::Column::Id)
                .offset(keep - 1)
                .limit(1)
                .one(db)
                .await?;
            if let Some(cutoff) = cutoff
                && let Some(at) = cutoff.finished_at
            {
                deleted += jobs::Entity::delete_many()
                    .filter(jobs::Column::Queue.eq(q.as_str()))
                    .filter(jobs::Column::State.eq(st))
                    .filter(
                        Condition::any().add(jobs::Column::FinishedAt.lt(at)).add(
                            Condition::all()
                                .add(jobs::Column::FinishedAt.eq(at))
                                .add(jobs::Column::Id.lt(cutoff.id)),
                        ),
                    )
                    .exec(db)
                    .await?
                    .rows_affected;
            }
        }
    }
    job_cron_ticks::Entity::delete_many()
        .filter(job_cron_ticks::Column::TickAt.lt(Utc::now() - chrono::Duration::days(7)))
        .exec(db)
        .await?;
    Ok(deleted)
}

/// One job.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<jobs::Model>> {
    Ok(jobs::Entity::find_by_id(id).one(db).await?)
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub queue: Option<String>,
    pub state: Option<String>,
    pub organization_id: Option<Uuid>,
}

/// A page of jobs, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &JobFilter,
    page: &crate::crm::PageRequest,
) -> Result<crate::crm::Page<jobs::Model>> {
    let mut cond = Condition::all();
    if let Some(q) = &filter.queue {
        cond = cond.add(jobs::Column::Queue.eq(q.as_str()));
    }
    if let Some(s) = &filter.state {
        if !state::ALL.contains(&s.as_str()) {
            return Err(Error::invalid(
                "state",
                format!("must be one of {}", state::ALL.join(", ")),
            ));
        }
        cond = cond.add(jobs::Column::State.eq(s.as_str()));
    }
    if let Some(org) = filter.organization_id {
        cond = cond.add(jobs::Column::OrganizationId.eq(org));
    }
    crate::crm::fetch_page::<jobs::Entity>(db, cond, jobs::Column::Id, |_| None, page).await
}

/// Records that cron entry `name` fired for `tick` and enqueues `job` in the same transaction;
/// a tick already recorded (another worker fired it) enqueues nothing. Returns the job's id.
pub async fn enqueue_tick(
    db: &DatabaseConnection,
    name: &str,
    tick: DateTime<Utc>,
    job: NewJob,
) -> Result<Option<Uuid>> {
    let txn = crate::db::begin(db).await?;
    let inserted = job_cron_ticks::Entity::insert(job_cron_ticks::ActiveModel {
        name: Set(name.to_owned()),
        tick_at: Set(tick),
        job_id: Set(None),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([job_cron_ticks::Column::Name, job_cron_ticks::Column::TickAt])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if inserted == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let id = enqueue(&txn, job).await?;
    if let Some(id) = id {
        job_cron_ticks::Entity::update_many()
            .col_expr(job_cron_ticks::Column::JobId, Expr::value(id))
            .filter(job_cron_ticks::Column::Name.eq(name))
            .filter(job_cron_ticks::Column::TickAt.eq(tick))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(id)
}

/// How many ticks of `name` have been enqueued (for tests and `jobs schedules`).
pub async fn tick_count(db: &impl ConnectionTrait, name: &str) -> Result<u64> {
    Ok(job_cron_ticks::Entity::find()
        .filter(job_cron_ticks::Column::Name.eq(name))
        .count(db)
        .await?)
}

/// The last tick of `name` that was enqueued.
pub async fn last_tick(db: &impl ConnectionTrait, name: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(job_cron_ticks::Entity::find()
        .filter(job_cron_ticks::Column::Name.eq(name))
        .order_by_desc(job_cron_ticks::Column::TickAt)
        .one(db)
        .await?
        .map(|t| t.tick_at))
}

/// A sanity check for callers that build a job's state by hand.
pub fn is_state(s: &str) -> bool {
    state::ALL.contains(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(1000);
        for attempt in 1..=4 {
            let exp = 1000u64 << (attempt - 1);
            let got = backoff(base, attempt).as_millis() as u64;
            assert!(got >= exp && got <= exp * 12 / 10, "{attempt}: {got}");
        }
    }
}
