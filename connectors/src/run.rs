//! Runs: one at a time per integration across every worker, recorded with their request count,
//! signals created and error, and what their outcome does to the integration.
//!
//! A run holds a lease on its integration row (`running_run_id`, `run_lease_until`), renewed as
//! it stores cursors; a run whose worker died is taken over once the lease expires (and marked
//! FAILED, "interrupted"), and the next run resumes from the cursors it had stored.
//!
//! Outcomes: everything read → `SUCCEEDED`, `CONNECTED`. The rate-limit budget spent →
//! `PARTIAL`, `BACKOFF` with `nextSyncAt` at the reset and a continuation job due then.
//! Transient failures after the request's retries → `FAILED`, `BACKOFF` with a growing delay
//! and a continuation job. Rejected credentials or a configuration the source refuses → `FAILED`,
//! `ERROR` with `lastError`, and no scheduled run until the credentials or configuration change
//! (a manual `syncIntegration` still runs, and a successful run clears the error). The plan's
//! monthly signals used up → `PARTIAL`, still `CONNECTED` with `lastError` saying so; the run
//! stops before its cursor passes the refused items, so a later run (the next month, a larger
//! plan) reads them again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use domain::signals::{Ingested, Input};
use domain::{Actor, Error, Principal, Result, Role};
use entity::{integration_runs, integrations};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{self, Budget, Fetched, Request};
use crate::{Runtime, SYNC_JOB, connector, run_status, status, store};

/// The longest wait after transient failures.
const MAX_BACKOFF: chrono::Duration = chrono::Duration::hours(6);

/// Why a run stopped before reading everything.
#[derive(Debug, Clone)]
pub enum Stop {
    /// The source's budget is spent until `until`.
    RateLimited { until: DateTime<Utc> },
    /// The source refused the credentials.
    Credentials(String),
    /// The credentials are good but may not read this resource (403 that is not a rate
    /// limit). A run stops as for refused credentials unless its connector skips the resource.
    Forbidden(String),
    /// The source refused the configuration (unknown repository, package, bad answer).
    Invalid(String),
    /// 5xx, timeouts, connection errors: the request's retries are used up.
    Transient(String),
    /// The organization's plan allows no more signals this month: the run stops before its
    /// cursor passes the refused items, so they are read again once the limit allows (a new
    /// month, a larger plan).
    PlanLimit(String),
    /// Our own failure (database).
    Internal(String),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Internal(e.to_string())
    }
}

impl From<sea_orm::DbErr> for Stop {
    fn from(e: sea_orm::DbErr) -> Self {
        Stop::Internal(e.to_string())
    }
}

/// What a connector gets during a run.
pub struct SyncContext {
    pub rt: Runtime,
    pub db: DatabaseConnection,
    pub integration: integrations::Model,
    pub run_id: Uuid,
    /// Re-read everything, ignoring paging cursors (idempotency keeps it free of duplicates).
    pub full: bool,
    pub credentials: BTreeMap<String, String>,
    actor: Actor,
    requests: AtomicU32,
    signals_created: AtomicU32,
    refused: Mutex<Vec<String>>,
    record_errors: Mutex<Vec<Value>>,
    pushed: AtomicU32,
    pulled: AtomicU32,
    budget: Mutex<Budget>,
}

impl SyncContext {
    /// The organization's actor for this integration (it ingests with `signals:write`).
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn signals_created(&self) -> u32 {
        self.signals_created.load(Ordering::Relaxed)
    }

    /// Counts records sent to a CRM.
    pub fn add_pushed(&self, n: usize) {
        self.pushed
            .fetch_add(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Counts records read from a CRM and applied.
    pub fn add_pulled(&self, n: usize) {
        self.pulled
            .fetch_add(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Records one record's failure (a CRM refusing it): listed in the run's `errors`, counted
    /// in its error message; the run goes on and ends `PARTIAL`.
    pub fn record_error(
        &self,
        object: &str,
        id: Option<Uuid>,
        external_id: Option<&str>,
        message: &str,
    ) {
        let message: String = message.chars().take(500).collect();
        let mut errors = self.record_errors.lock().unwrap_or_else(|p| p.into_inner());
        // A run keeps its first errors; the count in the message says how many there were.
        if errors.len() < 200 {
            errors.push(json!({
                "object": object,
                "id": id,
                "externalId": external_id,
                "message": message,
            }));
        }
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!(
                "{object} {}: {message}",
                id.map(|i| i.to_string())
                    .or(external_id.map(str::to_owned))
                    .unwrap_or_default()
            ));
    }

    /// Sends a GET (see [`crate::http`]); stops before sending when the last response said the
    /// budget is spent.
    pub async fn get(&self, req: Request) -> Result<Fetched, Stop> {
        let spent = {
            let b = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            (b.remaining == Some(0))
                .then_some(b.reset)
                .flatten()
                .filter(|r| *r > Utc::now())
        };
        let s = self.rt.settings();
        if let Some(until) = spent {
            // A bucket that refills within moments (Discord's per-route limits) is waited for.
            match (until - Utc::now()).to_std() {
                Ok(wait) if wait <= s.max_inline_wait => tokio::time::sleep(wait).await,
                _ => return Err(Stop::RateLimited { until }),
            }
        }
        let ex = http::exchange(
            self.rt.client(),
            &req,
            s.retry_base,
            s.max_attempts,
            s.max_inline_wait,
        )
        .await;
        self.requests.fetch_add(ex.requests, Ordering::Relaxed);
        if ex.budget.remaining.is_some() {
            *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = ex.budget;
        }
        ex.result
    }

    /// The stored cursor of `resource`.
    pub async fn cursor(
        &self,
        resource: &str,
    ) -> Result<Option<entity::integration_cursors::Model>, Stop> {
        Ok(store::cursor(&self.db, self.integration.id, resource).await?)
    }

    /// Stores `resource`'s cursor and renews the run's lease.
    pub async fn save_cursor(
        &self,
        resource: &str,
        state: Value,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Result<(), Stop> {
        store::put_cursor(
            &self.db,
            &self.integration,
            resource,
            state,
            etag,
            last_modified,
        )
        .await?;
        integrations::Entity::update_many()
            .col_expr(
                integrations::Column::RunLeaseUntil,
                Expr::value(Utc::now() + lease(&self.rt)),
            )
            .filter(integrations::Column::Id.eq(self.integration.id))
            .filter(integrations::Column::RunningRunId.eq(self.run_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Ingests items with the integration's signal source (in batches of the ingest limit).
    /// Items the ingest refuses are counted in the run's error; the rest land. Items refused
    /// because the plan's monthly signals are used up stop the run ([`Stop::PlanLimit`]) once
    /// the rest of their batch has landed, so the connector does not move its cursor past them.
    pub async fn ingest(&self, inputs: Vec<Input>) -> Result<Vec<Option<Ingested>>, Stop> {
        let mut out = Vec::with_capacity(inputs.len());
        let source = self.integration.source_id.to_string();
        let mut inputs = inputs.into_iter().peekable();
        while inputs.peek().is_some() {
            let batch: Vec<Input> = inputs
                .by_ref()
                .take(domain::signals::MAX_BATCH)
                .map(|mut i| {
                    i.source_id = Some(source.clone());
                    i
                })
                .collect();
            let results =
                domain::signals::ingest_many(&self.db, &self.actor, batch, "items", "api").await?;
            let mut over_limit = None;
            for r in results {
                match r {
                    Ok(ing) => {
                        if ing.signal.is_some() && !ing.deduplicated {
                            self.signals_created.fetch_add(1, Ordering::Relaxed);
                        }
                        out.push(Some(ing));
                    }
                    Err(e @ (Error::Quota { .. } | Error::PlanLimit(_))) => {
                        over_limit.get_or_insert(e);
                        out.push(None);
                    }
                    Err(e) => {
                        self.refused
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(e.to_string());
                        out.push(None);
                    }
                }
            }
            if let Some(e) = over_limit {
                return Err(Stop::PlanLimit(format!(
                    "{e}; the sync stopped there and goes on from the same place once the limit allows (next month, or on a larger plan)"
                )));
            }
        }
        Ok(out)
    }
}

/// The actor an integration's runs and webhooks ingest as: its organization, allowed to write
/// signals, attributed to the integration.
pub fn system_actor(m: &integrations::Model) -> Actor {
    Actor {
        organization_id: m.organization_id,
        role: Role::Admin,
        principal: Principal::Integration {
            integration_id: m.id,
        },
    }
}

/// A sync job for `integration` (due at `at`, or now), de-duplicated per integration while it
/// waits.
pub fn sync_job(
    m: &integrations::Model,
    run_id: Option<Uuid>,
    full: bool,
    at: Option<DateTime<Utc>>,
) -> domain::queue::NewJob {
    let mut job = domain::queue::defs::SYNC_INTEGRATION
        .job(json!({
            "organizationId": m.organization_id,
            "integrationId": m.id,
            "runId": run_id,
            "full": full,
        }))
        .organization(m.organization_id)
        .dedupe(format!("{SYNC_JOB}:{}", m.id));
    if let Some(at) = at {
        job = job.run_at(at);
    }
    job
}

/// Marks a run that lost its worker as failed.
async fn interrupt(db: &impl ConnectionTrait, run_id: Uuid) -> Result<()> {
    integration_runs::Entity::update_many()
        .col_expr(
            integration_runs::Column::Status,
            Expr::value(run_status::FAILED),
        )
        .col_expr(
            integration_runs::Column::Error,
            Expr::value(
                "interrupted: the worker running it stopped; the next run resumes from its cursors",
            ),
        )
        .col_expr(
            integration_runs::Column::FinishedAt,
            Expr::value(Utc::now()),
        )
        .filter(integration_runs::Column::Id.eq(run_id))
        .filter(integration_runs::Column::Status.eq(run_status::RUNNING))
        .exec(db)
        .await?;
    Ok(())
}

/// The run lease of `rt`'s settings.
fn lease(rt: &Runtime) -> chrono::Duration {
    chrono::Duration::from_std(rt.settings().run_lease).unwrap_or(chrono::Duration::minutes(5))
}

/// Takes the integration's run lease for a new run (when no live run holds it) and records the
/// run as RUNNING, in the caller's transaction. `None` when another run holds the lease.
async fn begin_run(
    db: &impl ConnectionTrait,
    rt: &Runtime,
    m: &integrations::Model,
    full: bool,
) -> Result<Option<integration_runs::Model>> {
    let now = Utc::now();
    let run_id = Uuid::now_v7();
    let taken = integrations::Entity::update_many()
        .col_expr(integrations::Column::RunningRunId, Expr::value(run_id))
        .col_expr(
            integrations::Column::RunLeaseUntil,
            Expr::value(now + lease(rt)),
        )
        .col_expr(integrations::Column::Status, Expr::value(status::SYNCING))
        .col_expr(integrations::Column::UpdatedAt, Expr::value(now))
        .filter(integrations::Column::Id.eq(m.id))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .filter(
            Condition::any()
                .add(integrations::Column::RunningRunId.is_null())
                .add(integrations::Column::RunLeaseUntil.lt(now)),
        )
        .exec(db)
        .await?;
    if taken.rows_affected != 1 {
        return Ok(None);
    }
    if let Some(stale) = m.running_run_id {
        interrupt(db, stale).await?;
    }
    let run = integration_runs::ActiveModel {
        id: Set(run_id),
        organization_id: Set(m.organization_id),
        integration_id: Set(m.id),
        status: Set(run_status::RUNNING.into()),
        full: Set(full),
        started_at: Set(now),
        finished_at: Set(None),
        signals_created: Set(0),
        requests: Set(0),
        error: Set(None),
        pushed: Set(0),
        pulled: Set(0),
        errors: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Some(run))
}

/// `syncIntegration`: starts a run now (enqueues it) and returns it; when a run is already in
/// progress, returns that one.
pub async fn start(
    rt: &Runtime,
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    full: bool,
) -> Result<integration_runs::Model> {
    store::manage(actor)?;
    let txn = domain::db::begin(db).await?;
    let m = store::get(&txn, actor, id).await?;
    if m.status == status::DISCONNECTED {
        return Err(Error::Conflict {
            field: "id".into(),
            message: "the integration is disconnected".into(),
        });
    }
    match connector(&m.kind) {
        None => {
            return Err(Error::invalid(
                "id",
                format!("the {} connector is not available yet", m.kind),
            ));
        }
        Some(c) if !c.syncs() => {
            return Err(Error::invalid(
                "id",
                format!(
                    "{} integrations are not synced: their signals arrive by webhook",
                    m.kind
                ),
            ));
        }
        Some(_) => {}
    }
    let run = match begin_run(&txn, rt, &m, full).await? {
        Some(run) => {
            // A continuation or scheduled job that waits would start a second run later: this
            // one replaces it.
            entity::jobs::Entity::delete_many()
                .filter(entity::jobs::Column::DedupeKey.eq(format!("{SYNC_JOB}:{}", m.id)))
                .filter(entity::jobs::Column::State.eq(domain::queue::state::WAITING))
                .exec(&txn)
                .await?;
            domain::queue::enqueue(&txn, sync_job(&m, Some(run.id), full, None)).await?;
            run
        }
        None => {
            let running = m
                .running_run_id
                .ok_or_else(|| Error::Internal("run lease without a run".into()))?;
            integration_runs::Entity::find_by_id(running)
                .one(&txn)
                .await?
                .ok_or(Error::NotFound {
                    entity: "IntegrationRun",
                })?
        }
    };
    txn.commit().await?;
    Ok(run)
}

/// Enqueues a sync of every due integration of `kind` (the cron fan-out): not disconnected,
/// not blocked by rejected credentials, not running, and due (`nextSyncAt` passed or unset).
/// Returns how many jobs were enqueued.
pub async fn fan_out(db: &DatabaseConnection, kind: &str) -> Result<usize> {
    let now = Utc::now();
    let due = integrations::Entity::find()
        .filter(integrations::Column::Kind.eq(kind))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .filter(integrations::Column::CredentialsRejected.eq(false))
        .filter(
            Condition::any()
                .add(integrations::Column::RunningRunId.is_null())
                .add(integrations::Column::RunLeaseUntil.lt(now)),
        )
        .filter(
            Condition::any()
                .add(integrations::Column::NextSyncAt.is_null())
                .add(integrations::Column::NextSyncAt.lte(now)),
        )
        .all(db)
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let txn = domain::db::begin(db).await?;
    let mut n = 0;
    for m in &due {
        if domain::queue::enqueue(&txn, sync_job(m, None, false, None))
            .await?
            .is_some()
        {
            n += 1;
        }
    }
    txn.commit().await?;
    Ok(n)
}

/// Enqueues a run of each of `org`'s integrations of `kind` that is not disconnected (a manual
/// trigger: due or not, blocked or not). Returns how many.
pub async fn enqueue_org(
    db: &DatabaseConnection,
    org: Uuid,
    kind: &str,
    full: bool,
) -> Result<usize> {
    let all = integrations::Entity::find()
        .filter(integrations::Column::OrganizationId.eq(org))
        .filter(integrations::Column::Kind.eq(kind))
        .filter(integrations::Column::Status.ne(status::DISCONNECTED))
        .all(db)
        .await?;
    let txn = domain::db::begin(db).await?;
    for m in &all {
        domain::queue::enqueue(&txn, sync_job(m, None, full, None)).await?;
    }
    txn.commit().await?;
    Ok(all.len())
}

/// What a job's run came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The integration is gone or disconnected, or another run holds it.
    Skipped(String),
    Finished(integration_runs::Model),
}

/// Runs a sync of integration `id` (the job's work): the run `run_id` started by
/// `syncIntegration`, or a new one. Errors are our own (database); the source's failures are
/// recorded on the run and the integration.
pub async fn execute(
    rt: &Runtime,
    db: &DatabaseConnection,
    id: Uuid,
    run_id: Option<Uuid>,
    full: bool,
) -> Result<Outcome> {
    let Some(m) = store::by_id(db, id).await? else {
        return Ok(Outcome::Skipped("the integration no longer exists".into()));
    };
    if m.status == status::DISCONNECTED {
        return Ok(Outcome::Skipped("the integration is disconnected".into()));
    }
    let Some(c) = connector(&m.kind) else {
        return Ok(Outcome::Skipped(format!(
            "not available: the {} connector is not built yet",
            m.kind
        )));
    };
    let run = match run_id.filter(|r| m.running_run_id == Some(*r)) {
        Some(r) => {
            integrations::Entity::update_many()
                .col_expr(
                    integrations::Column::RunLeaseUntil,
                    Expr::value(Utc::now() + lease(rt)),
                )
                .filter(integrations::Column::Id.eq(m.id))
                .filter(integrations::Column::RunningRunId.eq(r))
                .exec(db)
                .await?;
            integration_runs::Entity::find_by_id(r)
                .one(db)
                .await?
                .ok_or(Error::NotFound {
                    entity: "IntegrationRun",
                })?
        }
        None => {
            let txn = domain::db::begin(db).await?;
            let run = begin_run(&txn, rt, &m, full).await?;
            txn.commit().await?;
            match run {
                Some(r) => r,
                None => {
                    return Ok(Outcome::Skipped(
                        "another run of this integration is in progress".into(),
                    ));
                }
            }
        }
    };
    let credentials = store::credentials(rt, &m)?;
    let cx = SyncContext {
        rt: rt.clone(),
        db: db.clone(),
        actor: system_actor(&m),
        integration: m,
        run_id: run.id,
        full: run.full,
        credentials,
        requests: AtomicU32::new(0),
        signals_created: AtomicU32::new(0),
        refused: Mutex::new(Vec::new()),
        record_errors: Mutex::new(Vec::new()),
        pushed: AtomicU32::new(0),
        pulled: AtomicU32::new(0),
        budget: Mutex::new(Budget::default()),
    };
    let result = c.sync(&cx).await;
    finish(db, &cx, result).await.map(Outcome::Finished)
}

/// What an outcome does: the run's status and error, the integration's status, last error and
/// next sync, its failure streak, whether it is blocked until its credentials change, whether
/// it counts as a success.
struct Transition {
    run_status: &'static str,
    run_error: Option<String>,
    status: &'static str,
    last_error: Option<String>,
    next_sync_at: Option<DateTime<Utc>>,
    streak: i32,
    blocked: bool,
    success: bool,
}

fn transition(
    m: &integrations::Model,
    result: &Result<(), Stop>,
    refused: Option<String>,
) -> Transition {
    let now = Utc::now();
    match result {
        Ok(()) => Transition {
            run_status: if refused.is_some() {
                run_status::PARTIAL
            } else {
                run_status::SUCCEEDED
            },
            run_error: refused.clone(),
            status: status::CONNECTED,
            last_error: refused,
            next_sync_at: None,
            streak: 0,
            blocked: false,
            success: true,
        },
        Err(Stop::RateLimited { until }) => {
            // A reset already past (clock skew) still waits a little, never loops.
            let until = if *until > now {
                *until
            } else {
                now + chrono::Duration::seconds(5)
            };
            let until = &until;
            let msg = format!(
                "the source's rate limit is spent; the run continues at {}",
                until.to_rfc3339()
            );
            Transition {
                run_status: run_status::PARTIAL,
                run_error: Some(msg.clone()),
                status: status::BACKOFF,
                last_error: Some(msg),
                next_sync_at: Some(*until),
                streak: m.failure_streak,
                blocked: false,
                success: false,
            }
        }
        Err(Stop::Transient(e)) => {
            let streak = m.failure_streak.saturating_add(1);
            let wait = chrono::Duration::minutes(1 << (streak - 1).clamp(0, 10)).min(MAX_BACKOFF);
            Transition {
                run_status: run_status::FAILED,
                run_error: Some(e.clone()),
                status: status::BACKOFF,
                last_error: Some(e.clone()),
                next_sync_at: Some(now + wait),
                streak,
                blocked: false,
                success: false,
            }
        }
        Err(Stop::Credentials(e)) | Err(Stop::Forbidden(e)) | Err(Stop::Invalid(e)) => Transition {
            run_status: run_status::FAILED,
            run_error: Some(e.clone()),
            status: status::ERROR,
            last_error: Some(e.clone()),
            next_sync_at: None,
            streak: m.failure_streak,
            blocked: true,
            success: false,
        },
        Err(Stop::PlanLimit(e)) => Transition {
            run_status: run_status::PARTIAL,
            run_error: Some(e.clone()),
            status: status::CONNECTED,
            last_error: Some(e.clone()),
            next_sync_at: None,
            streak: m.failure_streak,
            blocked: false,
            success: false,
        },
        Err(Stop::Internal(e)) => Transition {
            run_status: run_status::FAILED,
            run_error: Some(format!("internal error: {e}")),
            status: status::BACKOFF,
            last_error: Some("an internal error stopped the run; it is retried".into()),
            next_sync_at: Some(now + chrono::Duration::minutes(1)),
            streak: m.failure_streak.saturating_add(1),
            blocked: false,
            success: false,
        },
    }
}

async fn finish(
    db: &DatabaseConnection,
    cx: &SyncContext,
    result: Result<(), Stop>,
) -> Result<integration_runs::Model> {
    let now = Utc::now();
    let m = &cx.integration;
    let refused = cx.refused.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let refused_msg = (!refused.is_empty()).then(|| {
        format!(
            "{} item(s) were refused; first: {}",
            refused.len(),
            refused[0]
        )
    });
    let t = transition(m, &result, refused_msg);
    let txn = domain::db::begin(db).await?;
    let run = integration_runs::Entity::find_by_id(cx.run_id)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound {
            entity: "IntegrationRun",
        })?;
    let mut am: integration_runs::ActiveModel = run.into();
    am.status = Set(t.run_status.into());
    am.error = Set(t.run_error.map(|e| e.chars().take(2000).collect()));
    am.finished_at = Set(Some(now));
    am.requests = Set(i32::try_from(cx.requests()).unwrap_or(i32::MAX));
    am.signals_created = Set(i32::try_from(cx.signals_created()).unwrap_or(i32::MAX));
    am.pushed = Set(i32::try_from(cx.pushed.load(Ordering::Relaxed)).unwrap_or(i32::MAX));
    am.pulled = Set(i32::try_from(cx.pulled.load(Ordering::Relaxed)).unwrap_or(i32::MAX));
    let record_errors = cx
        .record_errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    am.errors = Set((!record_errors.is_empty()).then_some(Value::Array(record_errors)));
    let run = am.update(&txn).await?;
    // Only the run holding the lease may change the integration; a status another request set
    // meanwhile (DISCONNECTED) stays.
    let mut update = integrations::Entity::update_many()
        .col_expr(
            integrations::Column::RunningRunId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            integrations::Column::RunLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(integrations::Column::LastSyncAt, Expr::value(now))
        .col_expr(
            integrations::Column::LastError,
            Expr::value(
                t.last_error
                    .map(|e| e.chars().take(2000).collect::<String>()),
            ),
        )
        .col_expr(
            integrations::Column::NextSyncAt,
            Expr::value(t.next_sync_at),
        )
        .col_expr(integrations::Column::FailureStreak, Expr::value(t.streak))
        .col_expr(
            integrations::Column::CredentialsRejected,
            Expr::value(t.blocked),
        )
        .col_expr(integrations::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            integrations::Column::Status,
            Expr::case(
                integrations::Column::Status.eq(status::DISCONNECTED),
                status::DISCONNECTED,
            )
            .finally(t.status)
            .into(),
        );
    if t.success {
        update = update.col_expr(integrations::Column::LastSuccessAt, Expr::value(now));
    }
    update
        .filter(integrations::Column::Id.eq(m.id))
        .filter(integrations::Column::RunningRunId.eq(cx.run_id))
        .exec(&txn)
        .await?;
    if let Some(at) = t.next_sync_at
        && t.status == status::BACKOFF
    {
        domain::queue::enqueue(&txn, sync_job(m, None, false, Some(at))).await?;
    }
    txn.commit().await?;
    if let Err(Stop::Internal(e)) = result {
        return Err(Error::Internal(e));
    }
    Ok(run)
}
