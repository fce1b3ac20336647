//! The operator's side: pausing, counts, retrying failed jobs, cleaning and pruning, listing.

use chrono::{DateTime, Utc};
use entity::{job_cron_ticks, job_queues, jobs};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::{KEEP_COMPLETED, KEEP_FAILED, paused_queues, state};
use crate::{Error, Result};

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
    if !paused {
        // Its waiting jobs may be due now.
        super::wake::note_due(Utc::now());
    }
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
    if res.rows_affected > 0 {
        super::wake::note_due(now);
    }
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
/// and drops cron tick records older than a week (but each entry's last). Returns how many jobs
/// were deleted.
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
    // Old tick records go, but each entry keeps its last one: it is what `jobs schedules` shows
    // and what the scheduler's catch-up at start compares with.
    let week_ago = Utc::now() - chrono::Duration::days(7);
    for (name, last) in super::last_tick_times(db).await? {
        job_cron_ticks::Entity::delete_many()
            .filter(job_cron_ticks::Column::Name.eq(name))
            .filter(job_cron_ticks::Column::TickAt.lt(std::cmp::min(week_ago, last)))
            .exec(db)
            .await?;
    }
    Ok(deleted)
}

/// Per queue, the jobs due since before `before` that still wait (a backlog no worker takes):
/// (queue, how many, the oldest due time).
pub async fn overdue(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
    Ok(jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Queue)
        .column_as(jobs::Column::Id.count(), "n")
        .column_as(jobs::Column::RunAt.min(), "oldest")
        .filter(jobs::Column::State.eq(state::WAITING))
        .filter(jobs::Column::RunAt.lt(before))
        .group_by(jobs::Column::Queue)
        .into_tuple()
        .all(db)
        .await?)
}

/// Per queue, the jobs that failed (attempts used up) since `since`, with the most recent one.
pub async fn failed_since(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<(String, i64, Option<jobs::Model>)>> {
    let counts: Vec<(String, i64)> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Queue)
        .column_as(jobs::Column::Id.count(), "n")
        .filter(jobs::Column::State.eq(state::FAILED))
        .filter(jobs::Column::FinishedAt.gte(since))
        .group_by(jobs::Column::Queue)
        .into_tuple()
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(counts.len());
    for (queue, n) in counts {
        let last = jobs::Entity::find()
            .filter(jobs::Column::Queue.eq(queue.as_str()))
            .filter(jobs::Column::State.eq(state::FAILED))
            .order_by_desc(jobs::Column::FinishedAt)
            .one(db)
            .await?;
        out.push((queue, n, last));
    }
    Ok(out)
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
    page: &crate::paging::PageRequest,
) -> Result<crate::paging::Page<jobs::Model>> {
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
    crate::paging::fetch_page::<jobs::Entity>(db, cond, jobs::Column::Id, |_| None, page).await
}

/// A sanity check for callers that build a job's state by hand.
pub fn is_state(s: &str) -> bool {
    state::ALL.contains(&s)
}
