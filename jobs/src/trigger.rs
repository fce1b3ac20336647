//! Enqueueing a job by hand, now: the one implementation behind `devsignal jobs trigger` and the
//! `triggerJob` mutation. It knows the job list and what each job needs (an organization or
//! none); who may trigger what is the caller's business.

use serde_json::json;
use uuid::Uuid;

use crate::registry;

/// Enqueues job `name` now, for organization `org` when the job works per organization.
/// Unknown names, a missing or superfluous organization, and an identical job already waiting
/// are `BAD_USER_INPUT` on `name` or `organizationId`.
pub async fn trigger(
    db: &impl sea_orm::ConnectionTrait,
    name: &str,
    org: Option<Uuid>,
) -> domain::Result<Uuid> {
    let def = registry::find(name).ok_or_else(|| {
        let names: Vec<&str> = registry::JOBS.iter().map(|j| j.name).collect();
        domain::Error::invalid(
            "name",
            format!("no job is called {name:?}; jobs: {}", names.join(", ")),
        )
    })?;
    let mut job = registry::new_job(def, json!({"trigger": "manual"}));
    match (def.per_org, org) {
        (true, None) => {
            return Err(domain::Error::invalid(
                "organizationId",
                format!("{name} works per organization: name the organization"),
            ));
        }
        (true, Some(org)) => {
            job.payload = json!({"trigger": "manual", "organizationId": org});
            job = job.organization(org);
        }
        (false, Some(_)) => {
            return Err(domain::Error::invalid(
                "organizationId",
                format!("{name} runs for every organization; leave the organization out"),
            ));
        }
        (false, None) => {}
    }
    domain::queue::enqueue(db, job)
        .await?
        .ok_or_else(|| domain::Error::invalid("name", "an identical job is already waiting"))
}
