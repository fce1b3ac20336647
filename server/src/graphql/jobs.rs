//! The job queues for admins, the GraphQL twin of `devsignal jobs`. An organization's
//! ADMIN sees, retries and triggers only its own organization's jobs; pausing and resuming a
//! queue, and seeing or triggering work of every organization, is for the platform's operators
//! (`PLATFORM_ADMINS`), because queues are shared by every tenant.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::jobs as job_rows;

use super::common::db;
use super::common::state;
use super::common::{ListConnection, connection, page_request};
use crate::graphql::{GqlResultExt, require_role};

/// Counts of one queue. For an organization's ADMIN they count that organization's jobs only.
#[derive(SimpleObject)]
pub struct JobQueue {
    pub name: String,
    /// Due now.
    pub waiting: u64,
    pub active: u64,
    /// Waiting for a later time (retries, delays).
    pub delayed: u64,
    pub failed: u64,
    pub completed: u64,
    /// A paused queue is not claimed from (survives restarts).
    pub paused: bool,
}

impl From<domain::queue::QueueCounts> for JobQueue {
    fn from(c: domain::queue::QueueCounts) -> Self {
        JobQueue {
            name: c.queue,
            waiting: c.waiting,
            active: c.active,
            delayed: c.delayed,
            failed: c.failed,
            completed: c.completed,
            paused: c.paused,
        }
    }
}

/// One background job.
pub struct Job(job_rows::Model);

#[Object]
impl Job {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn queue(&self) -> &str {
        &self.0.queue
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// waiting, active, completed, failed, or skipped (not done, for the reason in `lastError`).
    async fn state(&self) -> &str {
        &self.0.state
    }
    async fn organization_id(&self) -> Option<ID> {
        self.0.organization_id.map(|o| ID(o.to_string()))
    }
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }
    async fn run_at(&self) -> DateTime<Utc> {
        self.0.run_at
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// Whether the actor is one of the platform's operators (an ADMIN listed in `PLATFORM_ADMINS`).
async fn is_platform_admin(
    ctx: &Context<'_>,
    actor: &domain::Actor,
) -> async_graphql::Result<bool> {
    let st = state(ctx)?;
    let Some(user_id) = actor.user_id() else {
        return Ok(false);
    };
    if st.config.platform_admins.is_empty() {
        return Ok(false);
    }
    let user = domain::identity::users::get(&*db(ctx).await?, user_id)
        .await
        .gql()?;
    Ok(st
        .config
        .platform_admins
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&user.email)))
}

fn check_queue(queue: &str) -> async_graphql::Result<()> {
    if ::jobs::registry::QUEUES.contains(&queue) {
        Ok(())
    } else {
        Err(domain::Error::invalid(
            "queue",
            format!(
                "unknown queue; one of {}",
                ::jobs::registry::QUEUES.join(", ")
            ),
        ))
        .gql()
    }
}

fn operators_only() -> async_graphql::Error {
    crate::graphql::gql_error(domain::Error::Forbidden(
        "queues are shared by every organization; only platform operators (PLATFORM_ADMINS) may do this".into(),
    ))
}

#[derive(Default)]
pub struct JobQuery;

#[Object]
impl JobQuery {
    /// Every queue with its job counts (ADMIN).
    async fn job_queues(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<JobQueue>> {
        let actor = require_role(ctx, domain::Role::Admin)?;
        let org = (!is_platform_admin(ctx, actor).await?).then_some(actor.organization_id);
        let counts = domain::queue::counts(&*db(ctx).await?, ::jobs::registry::QUEUES, org)
            .await
            .gql()?;
        Ok(counts.into_iter().map(Into::into).collect())
    }

    /// Jobs, newest first, by queue and state (waiting, active, completed, failed) (ADMIN).
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
        #[graphql(name = "state")] job_state: Option<String>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<Job>> {
        let actor = require_role(ctx, domain::Role::Admin)?;
        if let Some(q) = &queue {
            check_queue(q)?;
        }
        let org = (!is_platform_admin(ctx, actor).await?).then_some(actor.organization_id);
        let req = page_request(ctx, first, after, None, None)?;
        let page = domain::queue::list(
            &*db(ctx).await?,
            &domain::queue::JobFilter {
                queue,
                state: job_state,
                organization_id: org,
            },
            &req,
        )
        .await
        .gql()?;
        Ok(connection(page, Job))
    }
}

#[derive(Default)]
pub struct JobMutation;

#[Object]
impl JobMutation {
    /// Stops claiming from a queue until `resumeQueue` (platform operators).
    async fn pause_queue(
        &self,
        ctx: &Context<'_>,
        queue: String,
    ) -> async_graphql::Result<JobQueue> {
        set_paused(ctx, queue, true).await
    }

    /// Claims from a paused queue again (platform operators).
    async fn resume_queue(
        &self,
        ctx: &Context<'_>,
        queue: String,
    ) -> async_graphql::Result<JobQueue> {
        set_paused(ctx, queue, false).await
    }

    /// Puts failed jobs of a queue back to waiting (an ADMIN's own organization's; every
    /// organization's for platform operators). Returns how many.
    async fn retry_failed_jobs(
        &self,
        ctx: &Context<'_>,
        queue: String,
        #[graphql(default = 1000)] limit: u64,
    ) -> async_graphql::Result<u64> {
        let actor = require_role(ctx, domain::Role::Admin)?;
        check_queue(&queue)?;
        let org = (!is_platform_admin(ctx, actor).await?).then_some(actor.organization_id);
        domain::queue::retry_failed(&*db(ctx).await?, &queue, limit.min(10_000), org)
            .await
            .gql()
    }

    /// Enqueues a job now. An ADMIN may trigger per-organization jobs (e.g.
    /// `capture-score-snapshot`) for their own organization; platform operators any job
    /// (e.g. `score-snapshot-scheduler`, which fans out to every organization).
    async fn trigger_job(
        &self,
        ctx: &Context<'_>,
        name: String,
        organization_id: Option<ID>,
    ) -> async_graphql::Result<Job> {
        let actor = require_role(ctx, domain::Role::Admin)?;
        let st = state(ctx)?;
        let def = ::jobs::registry::find(&name)
            .ok_or_else(|| domain::Error::invalid("name", "no job has this name"))
            .gql()?;
        let platform = is_platform_admin(ctx, actor).await?;
        let org = super::common::opt_input_id(organization_id, "organizationId")?;
        let org = match (def.per_org, org, platform) {
            (true, None, false) => Some(actor.organization_id),
            (true, Some(o), false) if o != actor.organization_id => {
                return Err(domain::Error::NotFound {
                    entity: "Organization",
                })
                .gql();
            }
            (false, _, false) => return Err(operators_only()),
            (_, o, _) => o,
        };
        let org = match (def.per_org, org) {
            (true, None) => {
                return Err(domain::Error::invalid(
                    "organizationId",
                    "this job works per organization",
                ))
                .gql();
            }
            (_, o) => o,
        };
        let id = ::jobs::trigger::trigger(&st.db, &name, org).await.gql()?;
        let job = domain::queue::get(&st.db, id)
            .await
            .gql()?
            .ok_or_else(|| domain::Error::Internal("triggered job vanished".into()))
            .gql()?;
        Ok(Job(job))
    }
}

async fn set_paused(
    ctx: &Context<'_>,
    queue: String,
    paused: bool,
) -> async_graphql::Result<JobQueue> {
    let actor = require_role(ctx, domain::Role::Admin)?;
    check_queue(&queue)?;
    if !is_platform_admin(ctx, actor).await? {
        return Err(operators_only());
    }
    let slot = db(ctx).await?;
    let db = &*slot;
    domain::queue::set_paused(db, &queue, paused).await.gql()?;
    let counts = domain::queue::counts(db, &[queue.as_str()], None)
        .await
        .gql()?;
    counts
        .into_iter()
        .find(|c| c.queue == queue)
        .map(Into::into)
        .ok_or_else(|| domain::Error::Internal("queue vanished".into()))
        .gql()
}
