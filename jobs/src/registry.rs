//! Every job DevSignal runs, in one list: each job's definition (`domain::queue::defs`: name,
//! queue, attempts, backoff) paired with its handler, plus the cron table. Handlers
//! are plain async functions, callable directly from tests through [`run_job`].
//!
//! A handler that cannot do its work for a reason that is not a failure returns
//! [`crate::Skipped`]: the job is recorded `skipped` with the reason, never `completed`.

use std::time::Duration;

use chrono::Utc;
use entity::jobs;
use futures::future::BoxFuture;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use domain::queue::{JobSpec, defs};

use crate::{Context, connector_jobs};

/// A job's handler.
pub type Handler = fn(Context, jobs::Model) -> BoxFuture<'static, anyhow::Result<()>>;

/// One kind of job: its definition ([`JobSpec`], declared once in `domain::queue::defs`, where
/// the domain enqueues by it too) paired with its handler.
pub struct JobDef {
    pub spec: JobSpec,
    pub run: Handler,
}

impl std::ops::Deref for JobDef {
    type Target = JobSpec;
    fn deref(&self) -> &JobSpec {
        &self.spec
    }
}

/// One cron entry: at each tick of `cron` (UTC, 5 fields), enqueue job `job`.
pub struct Schedule {
    /// The entry's name.
    pub name: &'static str,
    pub cron: &'static str,
    pub job: &'static str,
}

/// Every queue a worker serves.
pub const QUEUES: &[&str] = defs::QUEUES;

/// `job!(SPEC, handler)`: the spec of `domain::queue::defs` called `SPEC`, run by `handler`.
macro_rules! job {
    ($spec:ident, $run:path) => {
        JobDef {
            spec: defs::$spec,
            run: |ctx, job| Box::pin($run(ctx, job)),
        }
    };
}

/// Every job.
pub static JOBS: &[JobDef] = &[
    job!(SYNC_ALL_NPM, connector_jobs::npm),
    job!(SYNC_ALL_PYPI, connector_jobs::pypi),
    job!(HUBSPOT_SYNC_SCHEDULER, connector_jobs::hubspot),
    job!(SALESFORCE_SYNC_SCHEDULER, connector_jobs::salesforce),
    job!(HUBSPOT_SYNC, connector_jobs::hubspot_org),
    job!(SALESFORCE_SYNC, connector_jobs::salesforce_org),
    job!(DISCORD_SYNC_SCHEDULER, connector_jobs::discord),
    job!(STACKOVERFLOW_SYNC_SCHEDULER, connector_jobs::stackoverflow),
    job!(TWITTER_SYNC_SCHEDULER, connector_jobs::twitter),
    job!(REDDIT_SYNC_SCHEDULER, connector_jobs::reddit),
    job!(LINKEDIN_SYNC_SCHEDULER, connector_jobs::linkedin),
    job!(POSTHOG_SYNC_SCHEDULER, connector_jobs::posthog),
    job!(INTERCOM_SYNC_SCHEDULER, connector_jobs::intercom),
    job!(ZENDESK_SYNC_SCHEDULER, connector_jobs::zendesk),
    job!(CLEARBIT_ENRICHMENT_SCHEDULER, connector_jobs::clearbit),
    job!(SCORE_SNAPSHOT_SCHEDULER, fan_out::score_snapshot),
    job!(CAPTURE_SCORE_SNAPSHOT, score_snapshot),
    job!(WEEKLY_DIGEST_SCHEDULER, fan_out::digest),
    job!(SEND_WEEKLY_DIGEST, send_digest),
    job!(DEMO_CLEANUP_SCHEDULER, demo_cleanup),
    job!(PARTITION_MAINTENANCE, partition_maintenance),
    job!(ALERT_CHECK_SCHEDULER, alert_check),
    job!(ANOMALY_DETECTION_SCHEDULER, fan_out::anomalies),
    job!(DETECT_ANOMALIES, detect_anomalies),
    job!(DELIVER_WEBHOOK, deliver_webhook),
    job!(DELIVER_NOTIFICATION, crate::notify::deliver),
    job!(COMPUTE_SCORE, compute_score),
    job!(RECOMPUTE_SCORES, recompute_scores),
    job!(IMPORT_CSV, import_csv),
    job!(EXPORT_DATA, export_data),
    job!(GITHUB_SYNC_SCHEDULER, connector_jobs::github),
    job!(SYNC_INTEGRATION, connector_jobs::sync),
    job!(NOOP, noop),
];

/// The cron table: 14 maintenance and sync entries plus alert-check, anomaly detection and the
/// GitHub sync fan-out.
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
        name: "intercom-sync-scheduler",
        cron: "20 * * * *",
        job: "intercom-sync-scheduler",
    },
    Schedule {
        name: "zendesk-sync-scheduler",
        cron: "40 * * * *",
        job: "zendesk-sync-scheduler",
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
        name: "partition-maintenance",
        cron: "30 0 * * *",
        job: "partition-maintenance",
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
    def.spec.job(payload)
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

    pub async fn anomalies(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
        to_orgs(&ctx, defs::DETECT_ANOMALIES.name, false).await
    }

    /// Demo organizations get no usage emails.
    pub async fn digest(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
        to_orgs(&ctx, defs::SEND_WEEKLY_DIGEST.name, false).await
    }
}

/// One organization's weekly digest: an email per member who wants it, unless nothing is new
/// or this week's was queued already.
async fn send_digest(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let org = org_of(&job)?;
    let exists = entity::organizations::Entity::find_by_id(org)
        .one(&ctx.db)
        .await?
        .is_some();
    if !exists {
        tracing::info!(organizationId = %org, "Nothing to do: the organization no longer exists");
        return Ok(());
    }
    match domain::digest::send(&ctx.db, org, Utc::now()).await? {
        domain::digest::Sent::Nothing => {
            tracing::info!(organizationId = %org, "Nothing new this week: no digest sent")
        }
        domain::digest::Sent::Already => {
            tracing::info!(organizationId = %org, "This week's digest was sent already")
        }
        domain::digest::Sent::Queued(n) => {
            tracing::info!(organizationId = %org, emails = n, "Weekly digest queued")
        }
    }
    Ok(())
}

/// Nightly for one organization: recomputes every scored account (scores decay with time even
/// without new signals), then stores today's snapshot of every score (idempotent per day) and
/// prunes snapshots older than `SCORE_HISTORY_DAYS`.
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
    let now = chrono::Utc::now();
    let captured = domain::scoring::capture_snapshots(&ctx.db, org, now).await?;
    let pruned =
        domain::scoring::prune_snapshots(&ctx.db, org, ctx.score_history_days, now).await?;
    tracing::info!(
        organizationId = %org,
        accounts = n,
        captured,
        pruned,
        "Scores recomputed and today's snapshot stored"
    );
    Ok(())
}

/// Every 5 minutes: the time-based alert rules (an account gone quiet, engagement falling) of
/// every organization, each from where its last check ended. (Rules on scores, tiers and
/// signals fire from the event log in the delivery loop.)
async fn alert_check(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    let fired = domain::alerts::check_timed(&ctx.db, Utc::now()).await?;
    tracing::info!(fired, "Time-based alert rules checked");
    Ok(())
}

/// Hourly for one organization: its accounts' signals today against their 30-day baseline;
/// records each new spike or drop (24-hour cooldown per account and kind) with its
/// `anomaly.detected` event.
async fn detect_anomalies(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let org = org_of(&job)?;
    let found = domain::anomalies::detect(&ctx.db, org, Utc::now()).await?;
    if found.is_empty() {
        tracing::info!(organizationId = %org, "Nothing to do: no new anomaly");
    } else {
        tracing::info!(organizationId = %org, anomalies = found.len(), "Anomalies detected");
    }
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

/// Carries an admin's recompute (`recomputeScores`, payload `recomputeId`) on by a bounded number
/// of chunks, then hands over to a fresh job (`domain::scoring::recompute_step`). Triggered
/// without a `recomputeId` (`devsignal jobs trigger recompute-scores --org`), it starts one, or
/// leaves the running one be. When its last attempt fails, the recompute is marked failed, so a
/// new `recomputeScores` starts afresh instead of returning it.
async fn recompute_scores(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let org = org_of(&job)?;
    let Some(id) = job
        .payload
        .get("recomputeId")
        .and_then(|v| v.as_str())
        .map(Uuid::parse_str)
        .transpose()?
    else {
        let r = domain::scoring::start(&ctx.db, org, None).await?;
        tracing::info!(organizationId = %org, recomputeId = %r.id, "Score recompute running");
        return Ok(());
    };
    match domain::scoring::recompute_step(
        &ctx.db,
        id,
        job.id,
        domain::scoring::RECOMPUTE_CHUNKS_PER_JOB,
    )
    .await
    {
        Ok(step) => {
            tracing::info!(
                organizationId = %org,
                recomputeId = %id,
                accounts = step.scored,
                finished = step.finished,
                "Scores recomputed"
            );
            Ok(())
        }
        Err(e) => {
            if job.attempts >= job.max_attempts {
                domain::scoring::fail_recompute(
                    &ctx.db,
                    id,
                    "the recompute failed and its attempts are used up; start it again",
                )
                .await?;
            }
            Err(e.into())
        }
    }
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

fn uuid_of(job: &jobs::Model, key: &str) -> anyhow::Result<Uuid> {
    job.payload
        .get(key)
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("{} needs a {key}", job.name))
}

/// An import's rows, batch after batch from the last committed one (a retry resumes there).
/// When its last attempt fails, the import is marked failed.
async fn import_csv(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let id = uuid_of(&job, "importId")?;
    match domain::transfers::imports::run(&ctx.db, &ctx.data_dir, id, job.id).await {
        Ok(rows) => {
            tracing::info!(importId = %id, rows, "Import rows written");
            Ok(())
        }
        Err(e) => {
            if job.attempts >= job.max_attempts {
                domain::transfers::imports::fail(
                    &ctx.db,
                    id,
                    "the import failed and its attempts are used up; the rows of committed \
                     batches are kept, import the file again to finish",
                )
                .await?;
            }
            Err(e.into())
        }
    }
}

/// An export's file, written from scratch; when its last attempt fails, the export is failed.
async fn export_data(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let id = uuid_of(&job, "exportId")?;
    match domain::transfers::exports::run(&ctx.db, &ctx.data_dir, id).await {
        Ok(rows) => {
            tracing::info!(exportId = %id, rows, "Export written");
            Ok(())
        }
        Err(e) => {
            if job.attempts >= job.max_attempts {
                domain::transfers::exports::fail(&ctx.db, id, "writing the export failed").await?;
            }
            Err(e.into())
        }
    }
}

/// The daily maintenance: deletes demo organizations older than 24 hours with their users and
/// data, and the files of expired exports (their exports become EXPIRED).
async fn demo_cleanup(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    let expired =
        domain::transfers::exports::delete_expired(&ctx.db, &ctx.data_dir, Utc::now()).await?;
    if expired > 0 {
        tracing::info!(exports = expired, "Deleted expired export files");
    }
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

/// Daily: partitions of `signals` and `events` for the months ahead (PostgreSQL), the retention
/// of both (`domain::partitions`), and the receipts of requests accepted for later ingest
/// (`domain::signals::intake`, kept a week once processed).
async fn partition_maintenance(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    let report = domain::partitions::maintain(&ctx.db, Utc::now(), ctx.retention).await?;
    let receipts = domain::signals::intake::prune(&ctx.db, Utc::now()).await?;
    if receipts > 0 {
        tracing::info!(
            receipts,
            "Deleted the receipts of signal intake processed over a week ago"
        );
    }
    if report == domain::partitions::Report::default() && receipts == 0 {
        tracing::info!("Nothing to do: every partition exists and nothing is past its retention");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_has_exactly_one_handler() {
        for spec in defs::ALL {
            let n = JOBS.iter().filter(|j| j.spec == *spec).count();
            assert_eq!(n, 1, "{} has {n} handlers", spec.name);
        }
        assert_eq!(
            JOBS.len(),
            defs::ALL.len(),
            "a handler without a spec in defs::ALL"
        );
    }
}
