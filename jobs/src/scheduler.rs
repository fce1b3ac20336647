//! The cron scheduler (tokio-cron-scheduler, UTC). Each entry of `registry::SCHEDULES` enqueues
//! its job at every tick through [`fire`], which records the tick in the database in the same
//! transaction: however many worker processes run the scheduler, a tick is enqueued once.

use std::collections::HashMap;

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
    parse_cron(schedule.cron)
}

/// Parses a 5-field cron expression (UTC) the way the scheduler runs it.
pub fn parse_cron(expr: &str) -> anyhow::Result<Cron> {
    if expr.split_whitespace().count() != 5 {
        anyhow::bail!(
            "bad cron expression {expr:?}: it needs 5 fields (minute hour day month weekday)"
        );
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&format!("0 {expr}"))
        .map_err(|e| anyhow::anyhow!("bad cron expression {expr:?}: {e}"))
}

/// Operators' replacements for entries of the cron table (`CRON_OVERRIDES`), by entry name.
pub type Overrides = HashMap<String, String>;

/// Reads `CRON_OVERRIDES`: `name=expression` pairs separated by `;`, e.g.
/// `alert-check-scheduler=*/2 * * * *;sync-all-npm=0 */3 * * *`. Each name must be an entry of the
/// table and each expression a valid 5-field cron.
pub fn parse_overrides(text: &str) -> Result<Overrides, String> {
    let mut out = Overrides::new();
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, expr) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not name=cron expression"))?;
        let (name, expr) = (name.trim(), expr.trim());
        if registry::schedule(name).is_none() {
            let names: Vec<&str> = SCHEDULES.iter().map(|s| s.name).collect();
            return Err(format!(
                "no cron entry is called {name:?}; the entries are {}",
                names.join(", ")
            ));
        }
        parse_cron(expr).map_err(|e| format!("{name}: {e}"))?;
        out.insert(name.to_owned(), expr.to_owned());
    }
    Ok(out)
}

/// The expression `schedule` runs on: its override, else the table's.
pub fn cron_of<'a>(schedule: &'a Schedule, overrides: &'a Overrides) -> &'a str {
    overrides
        .get(schedule.name)
        .map_or(schedule.cron, String::as_str)
}

/// The next time `schedule` fires after `after`.
pub fn next_run(
    schedule: &Schedule,
    overrides: &Overrides,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    parse_cron(cron_of(schedule, overrides))
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

/// Starts the scheduler with every entry registered, on its override's expression where one is
/// set. Stop it with `JobScheduler::shutdown`.
pub async fn start(db: DatabaseConnection, overrides: &Overrides) -> anyhow::Result<JobScheduler> {
    let sched = JobScheduler::new().await?;
    for schedule in SCHEDULES {
        let db = db.clone();
        let cron = cron_of(schedule, overrides);
        if cron != schedule.cron {
            tracing::info!(
                schedule = schedule.name,
                cron,
                "Cron entry overridden (CRON_OVERRIDES)"
            );
        }
        let job = Job::new_async(format!("0 {cron}"), move |_id, _lock| {
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
            assert!(next_run(s, &Overrides::new(), from).is_some(), "{}", s.name);
        }
        let digest = registry::schedule("weekly-digest-scheduler").unwrap();
        // 2026-11-30 is a Monday.
        assert_eq!(
            next_run(digest, &Overrides::new(), from)
                .unwrap()
                .to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        let anomaly = registry::schedule("anomaly-detection-scheduler").unwrap();
        assert_eq!(
            next_run(anomaly, &Overrides::new(), from)
                .unwrap()
                .to_rfc3339(),
            "2026-11-30T09:30:00+00:00"
        );
    }

    #[test]
    fn overrides_replace_named_entries_and_refuse_mistakes() {
        let o = parse_overrides(
            " alert-check-scheduler=*/2 * * * * ; demo-cleanup-scheduler = * * * * *;",
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        let alert = registry::schedule("alert-check-scheduler").unwrap();
        assert_eq!(cron_of(alert, &o), "*/2 * * * *");
        let npm = registry::schedule("sync-all-npm").unwrap();
        assert_eq!(cron_of(npm, &o), npm.cron);
        let from = DateTime::parse_from_rfc3339("2026-11-30T08:59:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            next_run(alert, &o, from).unwrap().to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        assert!(
            parse_overrides("no-such-entry=* * * * *")
                .unwrap_err()
                .contains("no cron entry")
        );
        assert!(
            parse_overrides("sync-all-npm=61 * * * *")
                .unwrap_err()
                .contains("sync-all-npm")
        );
        assert!(
            parse_overrides("sync-all-npm=* * * *")
                .unwrap_err()
                .contains("5 fields")
        );
        assert!(
            parse_overrides("sync-all-npm")
                .unwrap_err()
                .contains("name=cron")
        );
        assert!(parse_overrides("").unwrap().is_empty());
    }
}
