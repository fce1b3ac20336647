//! The worker's side: which queues are due, claiming with a lease, renewing, completing,
//! failing with backoff, releasing on shutdown.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{job_queues, jobs};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{MAX_ERROR, state};
use crate::Result;

/// `queues` without the paused ones.
pub(super) async fn unpaused(db: &impl ConnectionTrait, queues: &[String]) -> Result<Vec<String>> {
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

pub(super) fn claimable(queues: &[String], now: DateTime<Utc>) -> Condition {
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

pub(super) fn chrono_duration(d: Duration) -> chrono::Duration {
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
    finish(db, id, worker, state::COMPLETED, None).await
}

/// Marks `worker`'s job skipped: finished without doing its work, for `reason` (kept in
/// `last_error`, so `jobs` in GraphQL and the CLI show why).
pub async fn skip(db: &impl ConnectionTrait, id: Uuid, worker: &str, reason: &str) -> Result<bool> {
    let reason: String = reason.chars().take(MAX_ERROR).collect();
    finish(db, id, worker, state::SKIPPED, Some(reason)).await
}

/// Ends `worker`'s lease on a job in a final `state`.
async fn finish(
    db: &impl ConnectionTrait,
    id: Uuid,
    worker: &str,
    state: &str,
    last_error: Option<String>,
) -> Result<bool> {
    let now = Utc::now();
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    if let Some(error) = last_error {
        update = update.col_expr(jobs::Column::LastError, Expr::value(error));
    }
    let res = update
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
    if !dead {
        super::wake::note_due(retry_at);
    }
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
