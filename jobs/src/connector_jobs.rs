//! Integration syncs as jobs: the cron fan-outs (one `sync-integration` job per due integration
//! of a kind), the sync itself, the per-organization CRM triggers and the nightly Clearbit
//! enrichment. Every connector kind is built; LinkedIn's scheduler reports its job `skipped`,
//! saying LinkedIn has no API to read.

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

/// The organizations the nightly Clearbit pass serves: every one when `CLEARBIT_API_KEY` is
/// set, else those with a CLEARBIT integration whose key was not refused.
async fn clearbit_organizations(ctx: &Context) -> anyhow::Result<Vec<Uuid>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let orgs: Vec<Uuid> = if ctx.connectors.settings().clearbit_api_key.is_some() {
        entity::organizations::Entity::find()
            .select_only()
            .column(entity::organizations::Column::Id)
            .into_tuple()
            .all(&ctx.db)
            .await?
    } else {
        entity::integrations::Entity::find()
            .select_only()
            .column(entity::integrations::Column::OrganizationId)
            .filter(entity::integrations::Column::Kind.eq(connectors::clearbit::KIND))
            .filter(entity::integrations::Column::Status.ne(connectors::status::DISCONNECTED))
            .filter(entity::integrations::Column::CredentialsRejected.eq(false))
            .distinct()
            .into_tuple()
            .all(&ctx.db)
            .await?
    };
    Ok(orgs)
}

/// `clearbit-enrichment-scheduler` (nightly, queue `enrichment`): enriches the accounts and
/// contacts that miss data, organization by organization (payload `organizationId`: only that
/// one, as a continuation after Clearbit's rate limit does). A rate limit stops that
/// organization's pass and enqueues its continuation at the limit's end; a refused key marks
/// its CLEARBIT integration `ERROR`. Each pass made with an integration's key is one of its runs
/// (requests, outcome, and the counts when it stopped early); what each pass did and the totals
/// are logged.
pub async fn clearbit(ctx: Context, job: jobs::Model) -> anyhow::Result<()> {
    use connectors::clearbit;
    let only = job
        .payload
        .get("organizationId")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let orgs = match only {
        Some(o) => vec![o],
        None => clearbit_organizations(&ctx).await?,
    };
    if orgs.is_empty() {
        tracing::info!(
            "Nothing to do: no organization has a CLEARBIT integration and CLEARBIT_API_KEY is not set"
        );
        return Ok(());
    }
    let mut total = clearbit::Pass::default();
    for org in orgs {
        let key = match clearbit::key_for(&ctx.connectors, &ctx.db, org).await? {
            Ok(k) => k,
            Err(why) => {
                tracing::info!(organizationId = %org, reason = %why, "Clearbit enrichment skipped");
                continue;
            }
        };
        let started = chrono::Utc::now();
        let p = clearbit::pass(&ctx.connectors, &ctx.db, org, &key).await?;
        clearbit::record_pass(&ctx.db, &key, started, &p).await?;
        tracing::info!(
            organizationId = %org,
            enriched = p.enriched,
            unchanged = p.unchanged,
            noData = p.no_data,
            pending = p.pending,
            failed = p.failed,
            requests = p.requests,
            "Clearbit enrichment: {}",
            p.summary()
        );
        if let Some(until) = p.rate_limited_until {
            let next = domain::queue::defs::CLEARBIT_ENRICHMENT_SCHEDULER
                .job(serde_json::json!({ "organizationId": org }))
                .organization(org)
                .dedupe(format!("clearbit-enrich:{org}"))
                .run_at(until);
            domain::queue::enqueue(&ctx.db, next).await?;
            tracing::warn!(organizationId = %org, until = %until.to_rfc3339(), "Clearbit's rate limit stopped the pass; it continues then");
        }
        if let Some(why) = &p.refused {
            tracing::warn!(organizationId = %org, reason = %why, "Clearbit refused the key; the pass stopped");
        }
        total.enriched += p.enriched;
        total.unchanged += p.unchanged;
        total.no_data += p.no_data;
        total.pending += p.pending;
        total.failed += p.failed;
        total.requests += p.requests;
    }
    tracing::info!(
        enriched = total.enriched,
        unchanged = total.unchanged,
        noData = total.no_data,
        pending = total.pending,
        failed = total.failed,
        "Clearbit enrichment done: {}",
        total.summary()
    );
    Ok(())
}
