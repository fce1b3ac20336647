//! The cron scheduler (tokio-cron-scheduler, UTC). Each entry of `registry::SCHEDULES` enqueues
//! its job at every tick through [`fire`], which records the tick in the database in the same
//! transaction: however many worker processes run the scheduler, a tick is enqueued once.

use chrono::{DateTime, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

use crate::registry::{self, SCHEDULES, Schedule};

/// Parses a schedule's 5-field expression the way the scheduler does (seconds fixed at 0).
pub fn parse(schedule: &Schedule) -> anyhow::Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&format!("0 {}", schedule.cron))
        .map_err(|e| anyhow::anyhow!("bad cron expression {:?}: {e}", schedule.cron))
}

/// The next time `schedule` fires after `after`.
pub fn next_run(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse(schedule)
        .ok()?
        .find_next_occurrence(&after, false)
        .ok()
}

/// Enqueues `schedule`'s job for the tick at `tick` (truncated to the minute) unless that tick
/// was already enqueued. Returns the new job's id.
pub async fn fire(
    db: &DatabaseConnection,
    schedule: &Schedule,
    tick: DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    let tick = tick
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(tick);
    let def = registry::find(schedule.job).ok_or_else(|| {
        anyhow::anyhow!(
            "schedule {} names unknown job {}",
            schedule.name,
            schedule.job
        )
    })?;
    let job = registry::new_job(def, json!({"trigger": "scheduled", "tick": tick}));
    Ok(domain::queue::enqueue_tick(db, schedule.name, tick, job).await?)
}

/// Starts the scheduler with every entry registered. Stop it with `JobScheduler::shutdown`.
pub async fn start(db: DatabaseConnection) -> anyhow::Result<JobScheduler> {
    let sched = JobScheduler::new().await?;
    for schedule in SCHEDULES {
        let db = db.clone();
        let job = Job::new_async(format!("0 {}", schedule.cron), move |_id, _lock| {
            let db = db.clone();
            Box::pin(async move {
                match fire(&db, schedule, Utc::now()).await {
                    Ok(Some(id)) => {
                        tracing::info!(schedule = schedule.name, jobId = %id, "Scheduled job enqueued")
                    }
                    Ok(None) => {
                        tracing::debug!(schedule = schedule.name, "Tick already enqueued elsewhere")
                    }
                    Err(e) => {
                        tracing::error!(schedule = schedule.name, error = %e, "Enqueueing a scheduled job failed")
                    }
                }
            })
        })?;
        sched.add(job).await?;
    }
    sched.start().await?;
    tracing::info!(entries = SCHEDULES.len(), "Scheduler started (UTC)");
    Ok(sched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_parses_and_names_a_job() {
        assert_eq!(SCHEDULES.len(), 19);
        let from = DateTime::parse_from_rfc3339("2026-11-30T08:59:30Z")
            .unwrap()
            .with_timezone(&Utc);
        for s in SCHEDULES {
            assert!(registry::find(s.job).is_some(), "{}", s.name);
            assert!(next_run(s, from).is_some(), "{}", s.name);
        }
        let digest = registry::schedule("weekly-digest-scheduler").unwrap();
        // 2026-11-30 is a Monday.
        assert_eq!(
            next_run(digest, from).unwrap().to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        let anomaly = registry::schedule("anomaly-detection-scheduler").unwrap();
        assert_eq!(
            next_run(anomaly, from).unwrap().to_rfc3339(),
            "2026-11-30T09:30:00+00:00"
        );
    }
}
