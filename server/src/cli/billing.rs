//! `devsignal billing …`: an organization's plan, subscription and use, and the operator's
//! changes outside Stripe — putting an organization on a plan (a contract billed elsewhere) and
//! raising or lowering one limit for it alone (runbook: a legitimate customer hits a limit).
//! Changes take effect at once in every process (limits are read from the database).

use anyhow::{Context as _, anyhow};
use chrono::Utc;
use clap::Subcommand;
use domain::billing::{self, Metric, Override, usage};
use uuid::Uuid;

use crate::config::Config;

#[derive(Subcommand, Debug, Clone)]
pub enum BillingAction {
    /// Print the organization's plan, subscription state and every counter against its limit.
    Show {
        /// The organization's id.
        organization: Uuid,
    },
    /// Change the organization's plan or limits. `--limit contacts=50000` sets one limit for
    /// this organization alone, `--limit members=unlimited` lifts it, `--limit members=plan`
    /// returns to the plan's. Limits: contacts, signalsPerMonth, members, aiBriefsPerMonth,
    /// integrations.
    Set {
        /// The organization's id.
        organization: Uuid,
        /// free, pro, growth or scale (Stripe's webhooks change it again if the organization
        /// has a subscription).
        #[arg(long)]
        plan: Option<String>,
        /// LIMIT=N, LIMIT=unlimited or LIMIT=plan; repeatable.
        #[arg(long = "limit", value_name = "LIMIT=VALUE")]
        limits: Vec<String>,
    },
}

fn parse_limit(s: &str) -> anyhow::Result<(Metric, Override)> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--limit {s:?}: want LIMIT=N, LIMIT=unlimited or LIMIT=plan"))?;
    let metric = Metric::ALL
        .iter()
        .copied()
        .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            anyhow!(
                "--limit {s:?}: {name:?} is not a limit ({})",
                names.join(", ")
            )
        })?;
    let value = value.trim();
    let o = match value {
        "unlimited" => Override::Unlimited,
        "plan" => Override::PlanDefault,
        n => Override::Limit(n.parse().map_err(|_| {
            anyhow!("--limit {s:?}: {n:?} is not a whole number, unlimited or plan")
        })?),
    };
    Ok((metric, o))
}

fn show(org: Uuid, standing: &billing::Standing, counters: &[usage::Counter]) -> String {
    let mut out = format!(
        "organization {org}\nplan: {} ({}), limits of: {}{}\n",
        standing.plan.id,
        standing.status,
        standing.effective.id,
        if standing.enforced {
            ""
        } else {
            " — not enforced on this installation (PLAN_ENFORCEMENT)"
        }
    );
    if let Some(g) = standing.grace_ends_at {
        out.push_str(&format!("past due: grace ends {}\n", g.to_rfc3339()));
    }
    for c in counters {
        let overridden = standing
            .overrides()
            .is_some_and(|o| o.contains_key(c.metric.name()));
        out.push_str(&format!(
            "{:<18} {:>10} / {}{}\n",
            c.metric.name(),
            c.current,
            c.limit.map_or("unlimited".to_owned(), |l| l.to_string()),
            if overridden {
                " (set for this organization)"
            } else {
                ""
            }
        ));
    }
    out
}

pub async fn run(config: Config, action: BillingAction) -> anyhow::Result<()> {
    let db = super::open_existing_database(&config).await?;
    let (org, standing) = match action {
        BillingAction::Show { organization } => (
            organization,
            billing::standing(&db, organization, Utc::now()).await?,
        ),
        BillingAction::Set {
            organization,
            plan,
            limits,
        } => {
            let limits = limits
                .iter()
                .map(|l| parse_limit(l))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if plan.is_none() && limits.is_empty() {
                anyhow::bail!("nothing to change: give --plan or --limit");
            }
            let s = billing::set_by_operator(&db, organization, plan.as_deref(), &limits)
                .await
                .with_context(|| format!("changing organization {organization}"))?;
            (organization, s)
        }
    };
    if domain::identity::organizations::exists(&db, org).await? {
        let counters = usage::report(&db, org, &standing).await?;
        print!("{}", show(org, &standing, &counters));
        db.close().await.ok();
        Ok(())
    } else {
        db.close().await.ok();
        Err(anyhow!("no organization {org}"))
    }
}
