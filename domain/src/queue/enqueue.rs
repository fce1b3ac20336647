//! Adding jobs: in the caller's transaction, deduplicated by key, recorded as failed, or once
//! per cron tick.

use chrono::{DateTime, Utc};
use entity::{job_cron_ticks, jobs};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QueryTrait, Set,
};
use uuid::Uuid;

use super::{MAX_ERROR, NewJob, state};
use crate::Result;

/// Adds a job, in the caller's transaction when `db` is one. Returns its id, or `None` when a
/// waiting job with the same dedupe key already exists. An added job is noted for the worker's
/// doorbell ([`super::noting_due_jobs`]).
pub async fn enqueue(db: &impl ConnectionTrait, job: NewJob) -> Result<Option<Uuid>> {
    let added = Added::of(job);
    let inserted = db.execute(&added.statement).await?.rows_affected();
    Ok(added.noted(inserted))
}

/// A job's insert, to run on its own ([`enqueue`]) or as the last part of a statement that
/// writes something else first (`WITH … INSERT`, one round trip for both).
pub struct Added {
    /// `INSERT INTO jobs …` that adds nothing when a waiting job has the same dedupe key.
    pub statement: sea_orm::sea_query::InsertStatement,
    id: Uuid,
    run_at: DateTime<Utc>,
}

impl Added {
    pub fn of(job: NewJob) -> Self {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let run_at = job.run_at.unwrap_or(now);
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
            run_at: Set(run_at),
            locked_by: Set(None),
            locked_until: Set(None),
            last_error: Set(None),
            dedupe_key: Set(job.dedupe_key),
            created_at: Set(now),
            updated_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
        };
        let statement = jobs::Entity::insert(model)
            .on_conflict(
                OnConflict::column(jobs::Column::DedupeKey)
                    .do_nothing()
                    .to_owned(),
            )
            .into_query();
        Added {
            statement,
            id,
            run_at,
        }
    }

    /// The job's id when the statement added it (`inserted` rows), noted for the worker's
    /// doorbell; `None` when a waiting job had its key.
    pub fn noted(&self, inserted: u64) -> Option<Uuid> {
        if inserted == 1 {
            super::wake::note_due(self.run_at);
        }
        (inserted == 1).then_some(self.id)
    }
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

/// What became of one cron tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    /// The tick's job was enqueued.
    Enqueued(Uuid),
    /// The entry is disabled: the tick is recorded as skipped, nothing enqueued.
    Disabled,
    /// An identical job was still waiting: the tick is recorded as skipped.
    Duplicate,
    /// Another scheduler already handled this tick.
    AlreadyHandled,
}

impl TickOutcome {
    /// The job this tick enqueued, if it did.
    pub fn job_id(self) -> Option<Uuid> {
        match self {
            TickOutcome::Enqueued(id) => Some(id),
            _ => None,
        }
    }
}

/// Records that cron entry `name` fired for `tick` and enqueues `job` in the same transaction,
/// unless the entry is disabled (read in that transaction: a disable reaches every scheduler at
/// its next tick); a tick already recorded (another scheduler handled it) enqueues nothing.
pub async fn enqueue_tick(
    db: &DatabaseConnection,
    name: &str,
    tick: DateTime<Utc>,
    job: NewJob,
) -> Result<TickOutcome> {
    let txn = crate::db::begin(db).await?;
    let disabled = super::schedule_disabled(&txn, name).await?;
    let inserted = job_cron_ticks::Entity::insert(job_cron_ticks::ActiveModel {
        name: Set(name.to_owned()),
        tick_at: Set(tick),
        job_id: Set(None),
        skipped: Set(disabled.then(|| super::skipped::DISABLED.to_owned())),
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
        return Ok(TickOutcome::AlreadyHandled);
    }
    if disabled {
        txn.commit().await?;
        return Ok(TickOutcome::Disabled);
    }
    let id = enqueue(&txn, job).await?;
    let update = job_cron_ticks::Entity::update_many()
        .filter(job_cron_ticks::Column::Name.eq(name))
        .filter(job_cron_ticks::Column::TickAt.eq(tick));
    match id {
        Some(id) => {
            update
                .col_expr(job_cron_ticks::Column::JobId, Expr::value(id))
                .exec(&txn)
                .await?;
        }
        None => {
            update
                .col_expr(
                    job_cron_ticks::Column::Skipped,
                    Expr::value(super::skipped::DUPLICATE),
                )
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    Ok(id.map_or(TickOutcome::Duplicate, TickOutcome::Enqueued))
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
