//! The cron scheduler (tokio-cron-scheduler, UTC). Each entry of `registry::SCHEDULES` enqueues
//! its job at every tick through [`fire_tick`], which records the tick in the database in the same
//! transaction: however many worker processes run the scheduler, a tick is enqueued once. An
//! entry an operator disabled (`devsignal jobs disable`, read from the database at each tick)
//! records its ticks as skipped. A tick the database refused is tried again until the entry's
//! next tick; at start, each entry's most recent tick is caught up if no scheduler handled it.
//! Each scheduler writes a heartbeat, so operators can tell whether one is alive.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use domain::queue::TickOutcome;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::registry::{self, SCHEDULES, Schedule};

/// Parses a schedule's 5-field expression the way the scheduler does (seconds fixed at 0).
pub fn parse(schedule: &Schedule) -> anyhow::Result<Cron> {
    parse_cron(schedule.cron)
}

/// Parses a cron expression (UTC) the way the scheduler runs it: 5 fields (minute hour day month
/// weekday; seconds fixed at 0), or 6 with seconds first (for `CRON_OVERRIDES` in tests and
/// debugging, e.g. `*/5 * * * * *`).
pub fn parse_cron(expr: &str) -> anyhow::Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&with_seconds(expr)?)
        .map_err(|e| anyhow::anyhow!("bad cron expression {expr:?}: {e}"))
}

/// `expr` with its seconds field: `0 ` before a 5-field expression.
fn with_seconds(expr: &str) -> anyhow::Result<String> {
    match expr.split_whitespace().count() {
        5 => Ok(format!("0 {expr}")),
        6 => Ok(expr.to_owned()),
        _ => anyhow::bail!(
            "bad cron expression {expr:?}: it needs 5 fields (minute hour day month weekday), \
             or 6 with seconds first"
        ),
    }
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
    next_of(&parse_cron(cron_of(schedule, overrides)).ok()?, after)
}

/// `cron`'s first tick after `after`.
fn next_of(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&whole_second(after), false)
        .ok()
        .map(whole_second)
}

/// `cron`'s last tick at or before `at` (`inclusive`) or before it.
fn previous_of(cron: &Cron, at: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&at, inclusive)
        .ok()
        .map(whole_second)
}

/// `t` without its fraction of a second (croner keeps the fraction of its starting point).
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// The tick of `schedule` at or before `at` (its most recent scheduled time).
pub fn previous_run(
    schedule: &Schedule,
    overrides: &Overrides,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    previous_of(&parse_cron(cron_of(schedule, overrides)).ok()?, at, true)
}

/// Enqueues `schedule`'s job for the tick at `tick` (to the whole second) unless that tick was
/// already handled. Returns the new job's id (`None` also when the entry is disabled).
pub async fn fire(
    db: &DatabaseConnection,
    schedule: &Schedule,
    tick: DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    Ok(fire_tick(db, schedule, tick).await?.job_id())
}

/// Handles `schedule`'s tick at `tick` (to the whole second): enqueues its job, or records the
/// tick as skipped when the entry is disabled, or nothing when another scheduler handled it.
pub async fn fire_tick(
    db: &DatabaseConnection,
    schedule: &Schedule,
    tick: DateTime<Utc>,
) -> anyhow::Result<TickOutcome> {
    let tick = whole_second(tick);
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

/// The first wait before enqueueing a tick again after the database failed; it doubles up to
/// [`RETRY_MAX`], until the entry's next tick is due.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Handles one tick, trying again with backoff while the database fails, until `deadline` (the
/// entry's next tick) or `stop`. Logs the outcome.
async fn fire_patiently(
    db: &DatabaseConnection,
    schedule: &'static Schedule,
    tick: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    stop: &CancellationToken,
    what: &'static str,
) {
    let mut wait = RETRY_FIRST;
    loop {
        match fire_tick(db, schedule, tick).await {
            Ok(TickOutcome::Enqueued(id)) => {
                tracing::info!(schedule = schedule.name, %tick, jobId = %id, "{what}: job enqueued");
                return;
            }
            Ok(TickOutcome::Disabled) => {
                tracing::info!(
                    schedule = schedule.name,
                    %tick,
                    "{what} skipped: the entry is disabled (devsignal jobs enable {})",
                    schedule.name
                );
                return;
            }
            Ok(TickOutcome::Duplicate) => {
                tracing::info!(
                    schedule = schedule.name,
                    %tick,
                    "{what} skipped: an identical job is still waiting"
                );
                return;
            }
            Ok(TickOutcome::AlreadyHandled) => {
                tracing::debug!(schedule = schedule.name, %tick, "Tick already handled elsewhere");
                return;
            }
            Err(e) => {
                let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                if deadline.is_some_and(|d| retry_at >= d) {
                    tracing::error!(
                        schedule = schedule.name,
                        %tick,
                        error = format!("{e:#}"),
                        "Enqueueing a scheduled job failed; giving up, the entry's next tick is due"
                    );
                    return;
                }
                tracing::warn!(
                    schedule = schedule.name,
                    %tick,
                    error = format!("{e:#}"),
                    retryInMs = wait.as_millis() as u64,
                    "Enqueueing a scheduled job failed; trying again"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Who a scheduler is and how often it says it is alive.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// This scheduler's id in `scheduler_heartbeats` (the worker's id).
    pub instance_id: String,
    /// How often the heartbeat is written.
    pub heartbeat_every: Duration,
}

/// Heartbeats silent for this long are deleted (all but the most recent one).
const HEARTBEAT_KEEP: chrono::Duration = chrono::Duration::days(1);

/// A running scheduler: its cron jobs, heartbeat and retries.
pub struct Scheduler {
    cron: JobScheduler,
    stop: CancellationToken,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    /// Stops firing, cancels pending retries, and records the clean stop in the heartbeat.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        let stopped = self.cron.shutdown().await;
        if self.heartbeat.await.is_err() {
            tracing::error!("the scheduler's heartbeat panicked");
        }
        Ok(stopped?)
    }
}

/// Starts the scheduler with every entry registered, on its override's expression where one is
/// set: writes its heartbeat, catches up each entry's most recent tick if it was missed while no
/// scheduler ran (at most one per entry, and only for entries that ticked before), then fires at
/// every tick. A tick whose enqueue fails is tried again until the entry's next tick. Stop it
/// with [`Scheduler::shutdown`].
pub async fn start(
    db: DatabaseConnection,
    overrides: &Overrides,
    options: SchedulerOptions,
) -> anyhow::Result<Scheduler> {
    let stop = CancellationToken::new();
    let me = domain::queue::Heartbeat {
        instance_id: options.instance_id.clone(),
        host: host_name(),
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        started_at: Utc::now(),
    };
    // The first beat before the scheduler counts as started.
    beat(&db, &me).await;
    let heartbeat = tokio::spawn(heartbeat(
        db.clone(),
        me,
        options.heartbeat_every,
        stop.clone(),
    ));
    let sched = JobScheduler::new().await?;
    let now = Utc::now();
    for schedule in SCHEDULES {
        let cron = cron_of(schedule, overrides).to_owned();
        if cron != schedule.cron {
            tracing::info!(
                schedule = schedule.name,
                cron,
                "Cron entry overridden (CRON_OVERRIDES)"
            );
        }
        let expr = parse_cron(&cron)?;
        tokio::spawn(catch_up(
            db.clone(),
            schedule,
            expr.clone(),
            now,
            stop.clone(),
        ));
        let (db, stop) = (db.clone(), stop.clone());
        let job = Job::new_async(with_seconds(&cron)?, move |_id, _lock| {
            let (db, stop, expr) = (db.clone(), stop.clone(), expr.clone());
            Box::pin(async move {
                // The scheduled time that is due (the callback runs up to half a second late).
                let now = Utc::now();
                let tick = previous_of(&expr, now, true).unwrap_or(now);
                let next = next_of(&expr, tick);
                fire_patiently(&db, schedule, tick, next, &stop, "Scheduled tick").await;
            })
        })?;
        sched.add(job).await?;
    }
    sched.start().await?;
    tracing::info!(entries = SCHEDULES.len(), "Scheduler started (UTC)");
    Ok(Scheduler {
        cron: sched,
        stop,
        heartbeat,
    })
}

/// At start: when `schedule`'s last recorded tick is older than its most recent scheduled time
/// before `now`, that tick was missed (no scheduler ran, or the database was down): enqueue it
/// now, once. An entry with no recorded tick has never run here and is left to its next tick.
async fn catch_up(
    db: DatabaseConnection,
    schedule: &'static Schedule,
    cron: Cron,
    now: DateTime<Utc>,
    stop: CancellationToken,
) {
    // Inclusive: a tick due in the very second the scheduler starts is not fired by the cron
    // (it starts after it); firing it twice is harmless (the tick's key).
    let Some(missed) = previous_of(&cron, now, true) else {
        return;
    };
    let last = match domain::queue::last_tick_of(&db, schedule.name).await {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(schedule = schedule.name, error = %e, "Reading the last tick failed; no catch-up");
            return;
        }
    };
    if last.is_none_or(|t| t.tick_at >= missed) {
        return;
    }
    let next = next_of(&cron, missed);
    fire_patiently(&db, schedule, missed, next, &stop, "Missed tick caught up").await;
}

/// Writes `me`'s heartbeat every `every` until `stop`, then records the stop.
async fn heartbeat(
    db: DatabaseConnection,
    me: domain::queue::Heartbeat,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
        beat(&db, &me).await;
    }
    if let Err(e) = domain::queue::stopped(&db, &me.instance_id).await {
        tracing::warn!(error = %e, "Recording the scheduler's stop failed");
    }
}

/// One heartbeat, and the pruning of long-silent ones; failures are logged.
async fn beat(db: &DatabaseConnection, me: &domain::queue::Heartbeat) {
    if let Err(e) = domain::queue::beat(db, me).await {
        tracing::warn!(error = %e, "Writing the scheduler's heartbeat failed");
    } else if let Err(e) = domain::queue::prune_heartbeats(db, Utc::now() - HEARTBEAT_KEEP).await {
        tracing::warn!(error = %e, "Pruning old scheduler heartbeats failed");
    }
}

/// This machine's name: `HOSTNAME`, else `/etc/hostname`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_parses_and_names_a_job() {
        assert_eq!(SCHEDULES.len(), 20);
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

    #[test]
    fn a_seconds_field_is_accepted_and_ticks_are_whole_seconds() {
        let o = parse_overrides("demo-cleanup-scheduler=*/2 * * * * *").unwrap();
        let demo = registry::schedule("demo-cleanup-scheduler").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:59:31.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            previous_run(demo, &o, at).unwrap().to_rfc3339(),
            "2026-11-30T08:59:30+00:00"
        );
        assert_eq!(
            next_run(demo, &o, at).unwrap().to_rfc3339(),
            "2026-11-30T08:59:32+00:00"
        );
        // A tick due in the very second of `at` is the previous one (the catch-up at start).
        let alert = registry::schedule("alert-check-scheduler").unwrap();
        let on_tick = DateTime::parse_from_rfc3339("2026-11-30T09:00:00.400Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            previous_run(alert, &Overrides::new(), on_tick)
                .unwrap()
                .to_rfc3339(),
            "2026-11-30T09:00:00+00:00"
        );
        assert!(parse_overrides("sync-all-npm=* * * * * * *").is_err());
    }
}
