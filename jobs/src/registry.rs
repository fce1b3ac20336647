//! Every job DevSignal runs, in one list (CONVENTIONS 13): its name, queue, attempts, backoff and
//! handler, plus the cron table (runbook 8.1, plus alert-check and anomaly detection). Handlers
//! are plain async functions, callable directly from tests through [`run_job`].
//!
//! A job whose capability does not exist yet is registered all the same and completes with a
//! "nothing to do" log line saying why; the issue that builds the capability fills it in. The
//! schedulers of connectors not built yet are recorded `skipped` with "not available"
//! (`connector_jobs`), never `completed`.

use std::time::Duration;

use chrono::Utc;
use entity::jobs;
use futures::future::BoxFuture;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::{Context, connector_jobs};

/// A job's handler.
pub type Handler = fn(Context, jobs::Model) -> BoxFuture<'static, anyhow::Result<()>>;

/// One kind of job.
pub struct JobDef {
    pub name: &'static str,
    pub queue: &'static str,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    /// Needs `organizationId` (per-organization work, triggerable with `--org`).
    pub per_org: bool,
    pub description: &'static str,
    pub run: Handler,
}

/// One cron entry: at each tick of `cron` (UTC, 5 fields), enqueue job `job`.
pub struct Schedule {
    /// The runbook's name for the entry.
    pub name: &'static str,
    pub cron: &'static str,
    pub job: &'static str,
}

/// The queues of DESIGN 9.
pub const QUEUES: &[&str] = &[
    "signal-processing",
    "score-computation",
    "webhook-delivery",
    "score-snapshot",
    "hubspot-sync",
    "salesforce-sync",
    "discord-sync",
    "stackoverflow-sync",
    "twitter-sync",
    "reddit-sync",
    "linkedin-sync",
    "posthog-sync",
    "signal-sync",
    "enrichment",
    "weekly-digest",
    "demo-cleanup",
    "alert-check",
    "anomaly-detection",
];

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

macro_rules! job {
    ($name:literal, $queue:literal, $attempts:literal, $backoff:expr, $per_org:literal, $desc:literal, $run:path) => {
        JobDef {
            name: $name,
            queue: $queue,
            max_attempts: $attempts,
            backoff_base: $backoff,
            per_org: $per_org,
            description: $desc,
            run: |ctx, job| Box::pin($run(ctx, job)),
        }
    };
}

/// Every job.
pub static JOBS: &[JobDef] = &[
    job!(
        "sync-all-npm",
        "signal-sync",
        3,
        secs(5),
        false,
        "npm download signals for every connected package",
        connector_jobs::npm
    ),
    job!(
        "sync-all-pypi",
        "signal-sync",
        3,
        secs(5),
        false,
        "PyPI download signals for every connected package",
        connector_jobs::pypi
    ),
    job!(
        "hubspot-sync-scheduler",
        "hubspot-sync",
        3,
        secs(10),
        false,
        "fans out HubSpot sync to connected organizations",
        connector_jobs::hubspot
    ),
    job!(
        "salesforce-sync-scheduler",
        "salesforce-sync",
        3,
        secs(10),
        false,
        "fans out Salesforce sync to connected organizations",
        connector_jobs::salesforce
    ),
    job!(
        "discord-sync-scheduler",
        "discord-sync",
        3,
        secs(5),
        false,
        "fans out Discord sync to connected organizations",
        connector_jobs::discord
    ),
    job!(
        "stackoverflow-sync-scheduler",
        "stackoverflow-sync",
        3,
        secs(5),
        false,
        "fans out Stack Overflow sync to connected organizations",
        connector_jobs::stackoverflow
    ),
    job!(
        "twitter-sync-scheduler",
        "twitter-sync",
        3,
        secs(10),
        false,
        "fans out Twitter/X mention sync to connected organizations",
        connector_jobs::twitter
    ),
    job!(
        "reddit-sync-scheduler",
        "reddit-sync",
        3,
        secs(5),
        false,
        "fans out Reddit mention sync to connected organizations",
        connector_jobs::reddit
    ),
    job!(
        "linkedin-sync-scheduler",
        "linkedin-sync",
        3,
        secs(5),
        false,
        "fans out LinkedIn sync to connected organizations",
        connector_jobs::linkedin
    ),
    job!(
        "posthog-sync-scheduler",
        "posthog-sync",
        3,
        secs(5),
        false,
        "fans out PostHog event sync to connected organizations",
        connector_jobs::posthog
    ),
    job!(
        "clearbit-enrichment-scheduler",
        "enrichment",
        2,
        secs(5),
        false,
        "enriches companies missing Clearbit data",
        connector_jobs::clearbit
    ),
    job!(
        "score-snapshot-scheduler",
        "score-snapshot",
        3,
        secs(5),
        false,
        "fans out a score snapshot to every organization",
        fan_out::score_snapshot
    ),
    job!(
        "capture-score-snapshot",
        "score-snapshot",
        3,
        secs(5),
        true,
        "recomputes every scored account of one organization (nightly, before the snapshot)",
        score_snapshot
    ),
    job!(
        "weekly-digest-scheduler",
        "weekly-digest",
        3,
        secs(10),
        false,
        "fans out the weekly digest to every organization",
        fan_out::weekly_digest
    ),
    job!(
        "send-weekly-digest",
        "weekly-digest",
        3,
        secs(10),
        true,
        "sends one organization's weekly digest",
        nothing::digest
    ),
    job!(
        "demo-cleanup-scheduler",
        "demo-cleanup",
        3,
        secs(5),
        false,
        "deletes demo organizations older than 24 hours",
        demo_cleanup
    ),
    job!(
        "alert-check-scheduler",
        "alert-check",
        3,
        secs(5),
        false,
        "fans out alert checks to organizations with alert rules",
        nothing::alert_rules
    ),
    job!(
        "anomaly-detection-scheduler",
        "anomaly-detection",
        3,
        secs(5),
        false,
        "fans out anomaly detection to every non-demo organization",
        fan_out::anomaly_detection
    ),
    job!(
        "detect-anomalies",
        "anomaly-detection",
        3,
        secs(5),
        true,
        "detects signal anomalies of one organization",
        nothing::anomalies
    ),
    job!(
        "deliver-webhook",
        "webhook-delivery",
        5,
        secs(30),
        true,
        "sends a failed webhook delivery again (retry-failed webhook-delivery)",
        deliver_webhook
    ),
    job!(
        "compute-score",
        "score-computation",
        3,
        secs(2),
        true,
        "recomputes the PQA scores of one organization's changed accounts (debounced after new signals)",
        compute_score
    ),
    job!(
        "github-sync-scheduler",
        "signal-sync",
        3,
        secs(5),
        false,
        "fans out a sync to every due GitHub integration",
        connector_jobs::github
    ),
    job!(
        "sync-integration",
        "signal-sync",
        3,
        secs(30),
        true,
        "one sync run of one integration (cron fan-out, syncIntegration, or continuation after a rate limit)",
        connector_jobs::sync
    ),
    job!(
        "noop",
        "signal-processing",
        1,
        secs(1),
        false,
        "does nothing (benchmarks and smoke tests)",
        noop
    ),
];

/// The cron table: runbook 8.1 (14 entries) plus alert-check, anomaly detection and the GitHub
/// sync fan-out.
pub static SCHEDULES: &[Schedule] = &[
    Schedule {
        name: "sync-all-npm",
        cron: "0 */6 * * *",
        job: "sync-all-npm",
    },
    Schedule {
        name: "sync-all-pypi",
        cron: "0 */12 * * *",
        job: "sync-all-pypi",
    },
    Schedule {
        name: "hubspot-sync-scheduler",
        cron: "*/15 * * * *",
        job: "hubspot-sync-scheduler",
    },
    Schedule {
        name: "discord-sync-scheduler",
        cron: "*/30 * * * *",
        job: "discord-sync-scheduler",
    },
    Schedule {
        name: "salesforce-sync-scheduler",
        cron: "*/15 * * * *",
        job: "salesforce-sync-scheduler",
    },
    Schedule {
        name: "stackoverflow-sync-scheduler",
        cron: "0 */6 * * *",
        job: "stackoverflow-sync-scheduler",
    },
    Schedule {
        name: "twitter-sync-scheduler",
        cron: "*/30 * * * *",
        job: "twitter-sync-scheduler",
    },
    Schedule {
        name: "reddit-sync-scheduler",
        cron: "0 */2 * * *",
        job: "reddit-sync-scheduler",
    },
    Schedule {
        name: "linkedin-sync-scheduler",
        cron: "0 */6 * * *",
        job: "linkedin-sync-scheduler",
    },
    Schedule {
        name: "posthog-sync-scheduler",
        cron: "0 * * * *",
        job: "posthog-sync-scheduler",
    },
    Schedule {
        name: "clearbit-enrichment-scheduler",
        cron: "0 3 * * *",
        job: "clearbit-enrichment-scheduler",
    },
    Schedule {
        name: "score-snapshot-scheduler",
        cron: "0 2 * * *",
        job: "score-snapshot-scheduler",
    },
    Schedule {
        name: "weekly-digest-scheduler",
        cron: "0 9 * * 1",
        job: "weekly-digest-scheduler",
    },
    Schedule {
        name: "demo-cleanup-scheduler",
        cron: "0 4 * * *",
        job: "demo-cleanup-scheduler",
    },
    Schedule {
        name: "github-sync-scheduler",
        cron: "*/15 * * * *",
        job: "github-sync-scheduler",
    },
    Schedule {
        name: "alert-check-scheduler",
        cron: "*/5 * * * *",
        job: "alert-check-scheduler",
    },
    Schedule {
        name: "anomaly-detection-scheduler",
        cron: "30 * * * *",
        job: "anomaly-detection-scheduler",
    },
];

/// The job called `name`.
pub fn find(name: &str) -> Option<&'static JobDef> {
    JOBS.iter().find(|j| j.name == name)
}

/// The schedule called `name`.
pub fn schedule(name: &str) -> Option<&'static Schedule> {
    SCHEDULES.iter().find(|s| s.name == name)
}

/// A new job of kind `def` with its attempts and backoff.
pub fn new_job(def: &JobDef, payload: serde_json::Value) -> domain::queue::NewJob {
    let mut job = domain::queue::NewJob::new(def.queue, def.name, payload);
    job.max_attempts = def.max_attempts;
    job.backoff_base = def.backoff_base;
    job
}

/// Runs one job's handler (what a worker does after claiming it).
pub async fn run_job(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let def = find(&job.name)
        .ok_or_else(|| anyhow::anyhow!("no handler is registered for job {:?}", job.name))?;
    (def.run)(ctx, job).await
}

fn org_of(job: &jobs::Model) -> anyhow::Result<Uuid> {
    job.organization_id
        .or_else(|| {
            job.payload
                .get("organizationId")
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
        })
        .ok_or_else(|| anyhow::anyhow!("job {} needs an organizationId", job.name))
}

/// Does nothing, after sleeping `sleepMs` milliseconds of its payload if given (for
/// benchmarks and for tests of crashes and shutdown in the middle of a job).
async fn noop(_ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    if let Some(ms) = job.payload.get("sleepMs").and_then(|v| v.as_u64()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if job.payload.get("fail").and_then(|v| v.as_bool()) == Some(true) {
        anyhow::bail!("failing on purpose");
    }
    Ok(())
}

/// Jobs whose capability is not built yet: they complete and say so.
mod nothing {
    use super::*;

    fn skip(job: &jobs::Model, why: &str) -> anyhow::Result<()> {
        tracing::info!(job = %job.name, reason = why, "Nothing to do: {why}");
        Ok(())
    }

    macro_rules! nothing {
        ($($f:ident => $why:literal),* $(,)?) => {$(
            pub async fn $f(_ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
                skip(&job, $why)
            }
        )*};
    }

    nothing! {
        digest => "weekly digests are not built yet",
        alert_rules => "no organization has alert rules",
        anomalies => "anomaly detection has no signals to read yet",
    }
}

/// Per-organization fan-out from a scheduler tick.
mod fan_out {
    use super::*;

    async fn to_orgs(ctx: &Context, job: &str, include_demo: bool) -> anyhow::Result<()> {
        let def = find(job).ok_or_else(|| anyhow::anyhow!("unknown job {job}"))?;
        let mut q = entity::organizations::Entity::find()
            .select_only()
            .column(entity::organizations::Column::Id);
        if !include_demo {
            q = q.filter(entity::organizations::Column::IsDemo.eq(false));
        }
        let orgs: Vec<Uuid> = q.into_tuple().all(&ctx.db).await?;
        if orgs.is_empty() {
            tracing::info!(job, "Nothing to do: no organizations");
            return Ok(());
        }
        let txn = domain::db::begin(&ctx.db).await?;
        let mut enqueued = 0;
        for org in &orgs {
            let new = new_job(def, json!({"organizationId": org}))
                .organization(*org)
                .dedupe(format!("{job}:{org}"));
            if domain::queue::enqueue(&txn, new).await?.is_some() {
                enqueued += 1;
            }
        }
        txn.commit().await?;
        tracing::info!(
            job,
            organizations = orgs.len(),
            enqueued,
            "Fanned out {job} to {enqueued} organizations"
        );
        Ok(())
    }

    pub async fn score_snapshot(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
        to_orgs(&ctx, "capture-score-snapshot", true).await
    }

    pub async fn weekly_digest(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
        to_orgs(&ctx, "send-weekly-digest", true).await
    }

    pub async fn anomaly_detection(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
        to_orgs(&ctx, "detect-anomalies", false).await
    }
}

/// Nightly, before the snapshot: recomputes every scored account of one organization, because
/// scores decay with time even without new signals. (Snapshot history is stored by the score
/// history feature; until it exists the recompute is what this job does.)
async fn score_snapshot(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let org = org_of(&job)?;
    let exists = entity::organizations::Entity::find_by_id(org)
        .one(&ctx.db)
        .await?
        .is_some();
    if !exists {
        tracing::info!(organizationId = %org, "Nothing to do: the organization no longer exists");
        return Ok(());
    }
    let n = domain::scoring::rescore_organization(&ctx.db, org).await?;
    tracing::info!(organizationId = %org, accounts = n, "Scores recomputed");
    Ok(())
}

/// Rescores every account of one organization whose rescore was requested (enqueued, debounced,
/// by every ingest, merge or profile update that touches an account).
async fn compute_score(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let org = org_of(&job)?;
    let n = domain::scoring::rescore_requested(&ctx.db, org).await?;
    if n == 0 {
        tracing::info!(organizationId = %org, "Nothing to do: no rescore was requested");
    } else {
        tracing::info!(organizationId = %org, accounts = n, "Scores computed");
    }
    Ok(())
}

/// A webhook delivery whose attempts were used up, re-enqueued by an operator: it becomes
/// PENDING again and the delivery loop sends it (same `webhook-id`).
async fn deliver_webhook(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let id = job
        .payload
        .get("deliveryId")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("deliver-webhook needs a deliveryId"))?;
    if domain::webhooks::requeue(&ctx.db, id).await? {
        tracing::info!(deliveryId = %id, "Webhook delivery re-enqueued");
    } else {
        tracing::info!(deliveryId = %id, "Nothing to do: the delivery or its endpoint is gone or disabled");
    }
    Ok(())
}

/// Deletes demo organizations older than 24 hours with their users and data (runbook 8.1).
async fn demo_cleanup(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    let before = Utc::now() - chrono::Duration::hours(24);
    let (orgs, users) =
        domain::identity::organizations::delete_demos_created_before(&ctx.db, before).await?;
    if orgs == 0 {
        tracing::info!("Nothing to do: no demo organizations older than 24 hours");
    } else {
        tracing::info!(
            organizations = orgs,
            users,
            "Deleted {orgs} demo organizations and {users} users"
        );
    }
    Ok(())
}
