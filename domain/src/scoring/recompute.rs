//! Whole-organization recomputes in bounded memory: the scorable accounts are read a keyset page
//! ([`CHUNK`] ids) at a time, each page is rescored and committed in its own transaction, and
//! nothing is kept from one page to the next. The nightly recompute
//! ([`rescore_organization`]) runs the pages one after another; the admin's `recomputeScores`
//! ([`recompute_all`]) records a [`score_recomputes`] row whose progress (`processed` of
//! `total`) and cursor (the last account committed) are written in each page's transaction, and
//! runs it as `recompute-scores` jobs that each take at most [`CHUNKS_PER_JOB`] pages before
//! handing over to a fresh job. A crash or restart resumes after the last committed page: no
//! page is rescored twice and none is skipped.

use chrono::{DateTime, Utc};
use entity::{account_scores, companies, jobs, score_recomputes, signals};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::rescore::{CHUNK, CHUNKS_PER_JOB, rescore_in};
use super::{admin, window_start};
use crate::queue::{self, defs::RECOMPUTE_SCORES, state};
use crate::{Actor, Error, Result};

/// A recompute's status.
pub mod status {
    pub const RUNNING: &str = "running";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
}

/// Every account of the organization that has a score, or a signal since `since`: what the
/// nightly recompute and `recomputeScores` cover (accounts that no longer exist have neither).
fn scorable(organization_id: Uuid, since: DateTime<Utc>) -> Condition {
    let scored = Query::select()
        .expr(Expr::val(1))
        .from(account_scores::Entity)
        .and_where(
            Expr::col((account_scores::Entity, account_scores::Column::AccountId))
                .equals((companies::Entity, companies::Column::Id)),
        )
        .and_where(
            Expr::col((
                account_scores::Entity,
                account_scores::Column::OrganizationId,
            ))
            .eq(organization_id),
        )
        .to_owned();
    let active = Query::select()
        .expr(Expr::val(1))
        .from(signals::Entity)
        .and_where(
            Expr::col((signals::Entity, signals::Column::AccountId))
                .equals((companies::Entity, companies::Column::Id)),
        )
        .and_where(
            Expr::col((signals::Entity, signals::Column::OrganizationId)).eq(organization_id),
        )
        .and_where(Expr::col((signals::Entity, signals::Column::Timestamp)).gte(since))
        .to_owned();
    Condition::all()
        .add(companies::Column::OrganizationId.eq(organization_id))
        .add(
            Condition::any()
                .add(Expr::exists(scored))
                .add(Expr::exists(active)),
        )
}

/// The next `limit` scorable accounts after `after` (all from the start when `None`), in id
/// order: one keyset page.
pub async fn scorable_page(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    since: DateTime<Utc>,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Uuid>> {
    let mut q = companies::Entity::find()
        .select_only()
        .column(companies::Column::Id)
        .filter(scorable(organization_id, since));
    if let Some(after) = after {
        q = q.filter(companies::Column::Id.gt(after));
    }
    Ok(q.order_by_asc(companies::Column::Id)
        .limit(limit as u64)
        .into_tuple()
        .all(db)
        .await?)
}

/// How many accounts [`scorable_page`] walks through.
pub async fn scorable_count(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    since: DateTime<Utc>,
) -> Result<u64> {
    Ok(companies::Entity::find()
        .filter(scorable(organization_id, since))
        .count(db)
        .await?)
}

/// Recomputes every scorable account of the organization now (the nightly job), a keyset page
/// per transaction, in constant memory. Returns how many accounts were scored.
#[tracing::instrument(name = "scoring.rescore_organization", skip_all, fields(organizationId = %organization_id))]
pub async fn rescore_organization(db: &DatabaseConnection, organization_id: Uuid) -> Result<usize> {
    let since = window_start(Utc::now());
    let mut cursor = None;
    let mut scored = 0;
    loop {
        let txn = crate::db::begin(db).await?;
        crate::db::advisory_xact_lock(&txn, &[crate::db::lock_key(organization_id, "rescore")])
            .await?;
        let page = scorable_page(&txn, organization_id, since, cursor, CHUNK).await?;
        let Some(last) = page.last().copied() else {
            txn.commit().await?;
            return Ok(scored);
        };
        scored += rescore_in(&txn, organization_id, &page).await?;
        txn.commit().await?;
        cursor = Some(last);
    }
}

// ---------------------------------------------------------------------------------------------
// The admin's recompute: recorded, watched, resumed
// ---------------------------------------------------------------------------------------------

/// Starts a recompute of every scorable account of the actor's organization under the current
/// configuration (ADMIN), run by `recompute-scores` jobs; while one is running, returns that one.
pub async fn recompute_all(
    db: &DatabaseConnection,
    actor: &Actor,
) -> Result<score_recomputes::Model> {
    admin(actor)?;
    start(db, actor.organization_id, actor.user_id()).await
}

/// [`recompute_all`] without an actor (a `recompute-scores` job triggered without a recompute).
pub async fn start(
    db: &DatabaseConnection,
    organization_id: Uuid,
    requested_by: Option<Uuid>,
) -> Result<score_recomputes::Model> {
    // A second attempt when the running one finished between our insert and our read.
    for _ in 0..3 {
        let txn = crate::db::begin(db).await?;
        if let Some(running) = running(&txn, organization_id).await? {
            if job_alive(&txn, running.job_id).await? {
                txn.commit().await?;
                return Ok(running);
            }
            // Its job is gone (failed for good, or deleted): the recompute cannot go on.
            finish(&txn, &running, status::FAILED, Some(LOST)).await?;
        }
        let now = Utc::now();
        let id = Uuid::now_v7();
        let total = scorable_count(&txn, organization_id, window_start(now)).await?;
        let inserted = score_recomputes::Entity::insert(score_recomputes::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            running_organization_id: Set(Some(organization_id)),
            status: Set(status::RUNNING.into()),
            total: Set(i64::try_from(total).unwrap_or(i64::MAX)),
            processed: Set(0),
            cursor: Set(None),
            requested_by: Set(requested_by),
            job_id: Set(None),
            last_error: Set(None),
            started_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
        })
        .on_conflict(
            OnConflict::columns([
                score_recomputes::Column::RunningOrganizationId,
                score_recomputes::Column::OrganizationId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            // Another request started one meanwhile: return it (read after our commit).
            txn.commit().await?;
            if let Some(r) = running(db, organization_id).await? {
                return Ok(r);
            }
            continue;
        }
        enqueue_step(&txn, organization_id, id).await?;
        let r = by_id(&txn, id).await?;
        txn.commit().await?;
        return Ok(r);
    }
    Err(Error::Internal(
        "could not start or find a running recompute".into(),
    ))
}

/// Why a recompute was marked failed when its job was lost.
const LOST: &str = "its job stopped before the recompute finished; start it again";

/// The actor's organization's recompute `id` (ADMIN).
pub async fn recompute(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<score_recomputes::Model> {
    admin(actor)?;
    score_recomputes::Entity::find_by_id(id)
        .filter(score_recomputes::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound {
            entity: "Score recompute",
        })
}

async fn running(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
) -> Result<Option<score_recomputes::Model>> {
    Ok(score_recomputes::Entity::find()
        .filter(score_recomputes::Column::RunningOrganizationId.eq(organization_id))
        .one(db)
        .await?)
}

async fn by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<score_recomputes::Model> {
    score_recomputes::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound {
            entity: "Score recompute",
        })
}

/// Whether the queue job `id` will still run (waiting or active).
async fn job_alive(db: &impl ConnectionTrait, id: Option<Uuid>) -> Result<bool> {
    let Some(id) = id else {
        return Ok(false);
    };
    Ok(jobs::Entity::find_by_id(id)
        .filter(jobs::Column::State.is_in([state::WAITING, state::ACTIVE]))
        .count(db)
        .await?
        > 0)
}

/// Enqueues the `recompute-scores` job that carries recompute `id` on, and records it as the
/// recompute's job: a job that is no longer the recompute's stops ([`recompute_step`]), so a
/// handover never leaves two jobs working on one recompute.
async fn enqueue_step(txn: &DatabaseTransaction, organization_id: Uuid, id: Uuid) -> Result<()> {
    let job = RECOMPUTE_SCORES
        .job(json!({"organizationId": organization_id, "recomputeId": id}))
        .organization(organization_id);
    let job_id = queue::enqueue(txn, job)
        .await?
        .ok_or_else(|| Error::Internal("a job without a dedupe key was refused".into()))?;
    score_recomputes::Entity::update_many()
        .col_expr(score_recomputes::Column::JobId, Expr::value(job_id))
        .filter(score_recomputes::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn finish(
    db: &impl ConnectionTrait,
    r: &score_recomputes::Model,
    status: &str,
    error: Option<&str>,
) -> Result<()> {
    let now = Utc::now();
    let mut update = score_recomputes::Entity::update_many()
        .col_expr(score_recomputes::Column::Status, Expr::value(status))
        .col_expr(
            score_recomputes::Column::RunningOrganizationId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(score_recomputes::Column::FinishedAt, Expr::value(now))
        .col_expr(score_recomputes::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            score_recomputes::Column::LastError,
            Expr::value(error.map(str::to_owned)),
        );
    if status == status::COMPLETED {
        // Accounts that became scorable during the run were taken too: the total is what was done.
        update = update.col_expr(score_recomputes::Column::Total, Expr::value(r.processed));
    }
    update
        .filter(score_recomputes::Column::Id.eq(r.id))
        .filter(score_recomputes::Column::Status.eq(status::RUNNING))
        .exec(db)
        .await?;
    Ok(())
}

/// What one chunk of a recompute did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// This many accounts were rescored and the cursor moved past them.
    Scored(usize),
    /// Nothing was left: the recompute is completed now.
    Completed,
    /// The recompute is not running (finished, or failed).
    NotRunning,
}

/// One chunk of recompute `id` inside `txn`: the next keyset page after its cursor is rescored,
/// and the cursor and processed count move past it, in `txn`, so they commit (or not) together.
/// The organization's rescore lock is taken first (PostgreSQL; SQLite's write transaction is
/// serial already), so two runners of one recompute take turns and the second reads the cursor
/// the first committed.
pub async fn recompute_chunk_in(txn: &DatabaseTransaction, id: Uuid) -> Result<Chunk> {
    let Some(r) = score_recomputes::Entity::find_by_id(id).one(txn).await? else {
        return Ok(Chunk::NotRunning);
    };
    crate::db::advisory_xact_lock(txn, &[crate::db::lock_key(r.organization_id, "rescore")])
        .await?;
    // Read again under the lock: another runner may have moved the cursor meanwhile.
    let r = by_id(txn, id).await?;
    if r.status != status::RUNNING {
        return Ok(Chunk::NotRunning);
    }
    let page = scorable_page(
        txn,
        r.organization_id,
        window_start(r.started_at),
        r.cursor,
        CHUNK,
    )
    .await?;
    let Some(last) = page.last().copied() else {
        finish(txn, &r, status::COMPLETED, None).await?;
        return Ok(Chunk::Completed);
    };
    rescore_in(txn, r.organization_id, &page).await?;
    let moved = score_recomputes::Entity::update_many()
        .col_expr(score_recomputes::Column::Cursor, Expr::value(last))
        .col_expr(
            score_recomputes::Column::Processed,
            Expr::col(score_recomputes::Column::Processed).add(page.len() as i64),
        )
        .col_expr(score_recomputes::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(score_recomputes::Column::Id.eq(id))
        .filter(score_recomputes::Column::Processed.eq(r.processed))
        .exec(txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(Error::Conflict {
            field: "recomputeId".into(),
            message: "another runner moved this recompute's cursor".into(),
        });
    }
    Ok(Chunk::Scored(page.len()))
}

/// [`recompute_chunk_in`] in its own transaction.
pub async fn recompute_chunk(db: &DatabaseConnection, id: Uuid) -> Result<Chunk> {
    let txn = crate::db::begin(db).await?;
    let chunk = recompute_chunk_in(&txn, id).await?;
    txn.commit().await?;
    Ok(chunk)
}

/// What a `recompute-scores` job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Accounts rescored by this job.
    pub scored: usize,
    /// The recompute is no longer running (completed, failed, or carried by another job).
    pub finished: bool,
}

/// The `recompute-scores` job `job_id`: up to `max_chunks` chunks of recompute `id` (at least
/// one), then, if accounts are left, a fresh job takes over (behind other organizations' jobs,
/// so one large organization does not hold a worker). A job that is no longer the recompute's
/// (a fresh one took over) stops.
#[tracing::instrument(name = "scoring.recompute_step", skip_all, fields(recomputeId = %id))]
pub async fn recompute_step(
    db: &DatabaseConnection,
    id: Uuid,
    job_id: Uuid,
    max_chunks: usize,
) -> Result<Step> {
    let mut scored = 0;
    for _ in 0..max_chunks.max(1) {
        let r = by_id(db, id).await?;
        if r.status != status::RUNNING || r.job_id.is_some_and(|j| j != job_id) {
            return Ok(Step {
                scored,
                finished: true,
            });
        }
        match recompute_chunk(db, id).await? {
            Chunk::Scored(n) => scored += n,
            Chunk::Completed | Chunk::NotRunning => {
                return Ok(Step {
                    scored,
                    finished: true,
                });
            }
        }
    }
    let txn = crate::db::begin(db).await?;
    let r = by_id(&txn, id).await?;
    if r.status == status::RUNNING && r.job_id.is_none_or(|j| j == job_id) {
        enqueue_step(&txn, r.organization_id, id).await?;
    }
    txn.commit().await?;
    Ok(Step {
        scored,
        finished: false,
    })
}

/// Marks recompute `id` failed with a public `reason` (its job gave up); a running recompute only.
pub async fn fail_recompute(db: &impl ConnectionTrait, id: Uuid, reason: &str) -> Result<()> {
    let r = by_id(db, id).await?;
    finish(db, &r, status::FAILED, Some(reason)).await
}

/// The per-job chunk budget of `recompute-scores` jobs.
pub const RECOMPUTE_CHUNKS_PER_JOB: usize = CHUNKS_PER_JOB;
/// Accounts per transaction (one keyset page) of a recompute.
pub const RECOMPUTE_CHUNK: usize = CHUNK;
