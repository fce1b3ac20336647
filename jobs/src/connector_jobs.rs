//! Integration syncs as jobs: the cron fan-outs (one `sync-integration` job per due integration
//! of a kind), the sync itself, and the schedulers of connector kinds that are not built yet,
//! which report their job `skipped` with "not available" instead of pretending to complete.

use entity::jobs;
use uuid::Uuid;

use crate::{Context, Skipped};

async fn fan_out(ctx: &Context, kind: &str) -> anyhow::Result<()> {
    let n = connectors::run::fan_out(&ctx.db, kind).await?;
    if n == 0 {
        tracing::info!(kind, "Nothing to do: no {kind} integration is due");
    } else {
        tracing::info!(kind, enqueued = n, "Enqueued {n} {kind} syncs");
    }
    Ok(())
}

/// `sync-all-npm`: a sync of every due npm integration.
pub async fn npm(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "NPM").await
}

/// `sync-all-pypi`: a sync of every due PyPI integration.
pub async fn pypi(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "PYPI").await
}

/// `github-sync-scheduler`: a sync of every due GitHub integration.
pub async fn github(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "GITHUB").await
}

/// `posthog-sync-scheduler`: a sync of every due PostHog integration.
pub async fn posthog(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "POSTHOG").await
}

/// `intercom-sync-scheduler` (hourly; the original's runbook has no entry): a sync of every
/// due Intercom integration.
pub async fn intercom(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "INTERCOM").await
}

/// `zendesk-sync-scheduler` (hourly; the original's runbook has no entry): a sync of every due
/// Zendesk integration.
pub async fn zendesk(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "ZENDESK").await
}

/// `linkedin-sync-scheduler`: LinkedIn has no API to read, so the entry reports its job
/// skipped, saying so (its signals arrive by webhook and import).
pub async fn linkedin(_ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    Err(Skipped(connectors::linkedin::NO_API.into()).into())
}

/// `discord-sync-scheduler`: a sync of every due Discord integration.
pub async fn discord(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "DISCORD").await
}

/// `twitter-sync-scheduler`: a sync of every due Twitter/X integration.
pub async fn twitter(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "TWITTER").await
}

/// `stackoverflow-sync-scheduler`: a sync of every due Stack Overflow integration.
pub async fn stackoverflow(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "STACKOVERFLOW").await
}

/// `reddit-sync-scheduler`: a sync of every due Reddit integration.
pub async fn reddit(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "REDDIT").await
}

/// `hubspot-sync-scheduler` (every 15 minutes): a sync of every due HubSpot integration.
pub async fn hubspot(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "HUBSPOT").await
}

/// `salesforce-sync-scheduler` (every 15 minutes): a sync of every due Salesforce integration.
pub async fn salesforce(ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
    fan_out(&ctx, "SALESFORCE").await
}

/// `hubspot-sync --org <id>` (runbook 3.4): the organization's HubSpot sync now.
pub async fn hubspot_org(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    sync_org(&ctx, &job, "HUBSPOT").await
}

/// `salesforce-sync --org <id>`: the organization's Salesforce sync now.
pub async fn salesforce_org(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    sync_org(&ctx, &job, "SALESFORCE").await
}

/// Enqueues a run of each of the organization's integrations of `kind` (`fullSync` in the
/// payload: a full run); skipped, saying so, when it has none.
async fn sync_org(ctx: &Context, job: &jobs::Model, kind: &str) -> anyhow::Result<()> {
    let org = job
        .payload
        .get("organizationId")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("{} needs an organizationId", job.name))?;
    let full = job.payload.get("fullSync").and_then(|v| v.as_bool()) == Some(true);
    let n = connectors::run::enqueue_org(&ctx.db, org, kind, full).await?;
    if n == 0 {
        return Err(Skipped(format!(
            "the organization has no connected {kind} integration"
        ))
        .into());
    }
    tracing::info!(kind, organizationId = %org, enqueued = n, "Enqueued {n} {kind} syncs");
    Ok(())
}

/// `sync-integration`: one run of one integration (payload `integrationId`, optional `runId`
/// started by `syncIntegration`, `full`).
pub async fn sync(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    let id = job
        .payload
        .get("integrationId")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("sync-integration needs an integrationId"))?;
    let run_id = job
        .payload
        .get("runId")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let full = job.payload.get("full").and_then(|v| v.as_bool()) == Some(true);
    match connectors::run::execute(&ctx.connectors, &ctx.db, id, run_id, full).await? {
        connectors::run::Outcome::Skipped(why) => Err(Skipped(why).into()),
        connectors::run::Outcome::Finished(run) => {
            tracing::info!(
                integrationId = %id,
                runId = %run.id,
                status = %run.status,
                requests = run.requests,
                signalsCreated = run.signals_created,
                "Integration run finished"
            );
            Ok(())
        }
    }
}

/// The scheduler of a connector kind that is not built yet.
pub fn unavailable(kind: &str) -> anyhow::Result<()> {
    Err(Skipped(format!(
        "not available: the {kind} connector is not built yet"
    ))
    .into())
}

macro_rules! unavailable {
    ($($f:ident => $kind:literal),* $(,)?) => {$(
        #[doc = concat!("The ", $kind, " scheduler: skipped, not available yet.")]
        pub async fn $f(_ctx: Context, _job: jobs::Model) -> anyhow::Result<()> {
            unavailable($kind)
        }
    )*};
}

unavailable! {
    clearbit => "Clearbit",
}
