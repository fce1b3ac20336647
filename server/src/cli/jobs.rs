//! `devsignal jobs …`: the operator's queue commands (status, pause,
//! resume, retry, clean, trigger, schedules, show). They work on the database directly, so they need no running server.

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

use crate::config::{Config, parse_duration};

#[derive(Subcommand, Debug, Clone)]
pub enum JobsAction {
    /// Jobs per queue: waiting, active, delayed, failed, completed, and whether it is paused.
    Status,
    /// Stop claiming from a queue (kept across restarts) until `resume`.
    Pause { queue: String },
    /// Claim from a paused queue again.
    Resume { queue: String },
    /// Put a queue's failed jobs back to waiting with fresh attempts.
    #[command(name = "retry-failed")]
    RetryFailed {
        queue: String,
        /// At most this many (oldest failures first).
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Delete a queue's finished jobs older than a duration.
    Clean {
        queue: String,
        /// Delete failed jobs.
        #[arg(
            long,
            conflicts_with = "completed",
            required_unless_present = "completed"
        )]
        failed: bool,
        /// Delete completed jobs.
        #[arg(long)]
        completed: bool,
        /// e.g. `24h`, `7d`, `30m`.
        #[arg(long, default_value = "24h")]
        older_than: String,
    },
    /// Enqueue a job now, e.g. `score-snapshot-scheduler`, or `capture-score-snapshot --org ID`.
    /// Works for the job of a disabled cron entry too (disabling stops only its ticks).
    Trigger {
        job: String,
        /// The organization, for per-organization jobs.
        #[arg(long)]
        org: Option<Uuid>,
    },
    /// Every cron entry with its expression, job, whether it is enabled, its last tick and that
    /// tick's outcome, its next run (UTC); and whether a scheduler is running (its heartbeat).
    Schedules,
    /// Stop a cron entry's ticks from enqueueing its job, in every running scheduler at its next
    /// tick, until `enable` (kept across restarts). `jobs trigger <job>` still runs it by hand.
    Disable {
        /// The entry's name, as `jobs schedules` lists it.
        schedule: String,
        /// Why, for whoever looks next (shown by `jobs schedules`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a disabled cron entry enqueue its job again from its next tick.
    Enable {
        /// The entry's name, as `jobs schedules` lists it.
        schedule: String,
    },
    /// One job with its payload, attempts and last error.
    Show { id: Uuid },
}

fn schedule_known(name: &str) -> anyhow::Result<&'static jobs::registry::Schedule> {
    jobs::registry::schedule(name).ok_or_else(|| {
        let names: Vec<&str> = jobs::registry::SCHEDULES.iter().map(|s| s.name).collect();
        anyhow::anyhow!("unknown schedule {name:?}; schedules: {}", names.join(", "))
    })
}

/// Who runs this command, as a disabled entry records it: `user@host`.
fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => format!("{user}@{host}"),
        _ => user,
    }
}

fn queue_known(queue: &str) -> anyhow::Result<()> {
    if jobs::registry::QUEUES.contains(&queue) {
        Ok(())
    } else {
        anyhow::bail!(
            "unknown queue {queue:?}; queues: {}",
            jobs::registry::QUEUES.join(", ")
        )
    }
}

/// Runs one `jobs` command against the configured database.
pub async fn run(config: Config, action: JobsAction) -> anyhow::Result<()> {
    let db = super::open_existing_database(&config).await?;
    let writes = !matches!(
        action,
        JobsAction::Status
            | JobsAction::Schedules
            | JobsAction::Show { .. }
            | JobsAction::Disable { .. }
            | JobsAction::Enable { .. }
    );
    let (result, jobs_due) =
        domain::queue::noting_due_jobs(act_patiently(&db, &config, action)).await;
    db.close().await?;
    if writes && result.is_ok() {
        // Running workers and subscribers look now rather than at their next poll.
        if let Some(url) = &config.redis_url {
            crate::live::announce_commit(url, &config.redis_key_prefix, jobs_due).await;
        }
    }
    result
}

/// Runs `action`, again (up to [`BUSY_RETRIES`] times, a second apart) when the database
/// answered that it is busy or unreachable: the statement did not run, and a running server
/// (SQLite's one writer at a time) may hold the write lock for a moment.
async fn act_patiently(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
    action: JobsAction,
) -> anyhow::Result<()> {
    let mut retries = 0;
    loop {
        match act(db, config, action.clone()).await {
            Err(e)
                if retries < BUSY_RETRIES
                    && e.downcast_ref::<domain::Error>()
                        .is_some_and(|e| e.kind() == domain::Code::Unavailable) =>
            {
                retries += 1;
                tracing::debug!(error = %e, retries, "the database is busy; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

/// How often an operator command tries again on a busy database.
const BUSY_RETRIES: u32 = 3;

async fn act(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
    action: JobsAction,
) -> anyhow::Result<()> {
    match action {
        JobsAction::Status => {
            let counts = domain::queue::counts(db, jobs::registry::QUEUES, None).await?;
            println!(
                "{:<20} {:>8} {:>8} {:>8} {:>8} {:>10}  paused",
                "queue", "waiting", "active", "delayed", "failed", "completed"
            );
            for c in counts {
                println!(
                    "{:<20} {:>8} {:>8} {:>8} {:>8} {:>10}  {}",
                    c.queue,
                    c.waiting,
                    c.active,
                    c.delayed,
                    c.failed,
                    c.completed,
                    if c.paused { "yes" } else { "no" }
                );
            }
        }
        JobsAction::Pause { queue } => {
            queue_known(&queue)?;
            domain::queue::set_paused(db, &queue, true).await?;
            println!("paused {queue}");
        }
        JobsAction::Resume { queue } => {
            queue_known(&queue)?;
            domain::queue::set_paused(db, &queue, false).await?;
            println!("resumed {queue}");
        }
        JobsAction::RetryFailed { queue, limit } => {
            queue_known(&queue)?;
            let n = domain::queue::retry_failed(db, &queue, limit, None).await?;
            println!("re-enqueued {n} failed job(s) of {queue}");
        }
        JobsAction::Clean {
            queue,
            failed,
            completed,
            older_than,
        } => {
            queue_known(&queue)?;
            let age = parse_duration(&older_than)
                .ok_or_else(|| anyhow::anyhow!("--older-than must be a duration like 24h or 7d"))?;
            let state = if failed {
                domain::queue::state::FAILED
            } else if completed {
                domain::queue::state::COMPLETED
            } else {
                anyhow::bail!("say --failed or --completed")
            };
            let before = Utc::now() - chrono::Duration::from_std(age)?;
            let n = domain::queue::clean(db, &queue, state, before).await?;
            println!("deleted {n} {state} job(s) of {queue} older than {older_than}");
        }
        JobsAction::Trigger { job, org } => {
            let id = jobs::trigger::trigger(db, &job, org)
                .await
                .map_err(|e| match &e {
                    // Say it in the command line's terms.
                    domain::Error::Validation(f)
                        if f.iter().any(|f| f.field == "organizationId") =>
                    {
                        if org.is_some() {
                            anyhow::anyhow!("{job} runs for every organization; leave out --org")
                        } else {
                            anyhow::anyhow!("{job} works per organization: give --org <id>")
                        }
                    }
                    _ => anyhow::anyhow!("{e}"),
                })?;
            println!("enqueued {job} as job {id}");
        }
        JobsAction::Schedules => schedules(db, config).await?,
        JobsAction::Disable { schedule, reason } => {
            let s = schedule_known(&schedule)?;
            let by = operator();
            if domain::queue::set_schedule_disabled(db, s.name, true, Some(&by), reason.as_deref())
                .await?
            {
                println!(
                    "disabled {}: its ticks enqueue nothing until `devsignal jobs enable {}` \
                     (`devsignal jobs trigger {}` still runs the job by hand)",
                    s.name, s.name, s.job
                );
            } else {
                println!("{} was already disabled", s.name);
            }
        }
        JobsAction::Enable { schedule } => {
            let s = schedule_known(&schedule)?;
            if domain::queue::set_schedule_disabled(db, s.name, false, None, None).await? {
                println!("enabled {}: its next tick enqueues {}", s.name, s.job);
            } else {
                println!("{} was already enabled", s.name);
            }
        }
        JobsAction::Show { id } => {
            let job = domain::queue::get(db, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no job has the id {id}"))?;
            let out = json!({
                "id": job.id, "queue": job.queue, "name": job.name, "state": job.state,
                "organizationId": job.organization_id, "payload": job.payload,
                "attempts": job.attempts, "maxAttempts": job.max_attempts, "runAt": job.run_at,
                "lockedBy": job.locked_by, "lockedUntil": job.locked_until,
                "lastError": job.last_error, "createdAt": job.created_at,
                "startedAt": job.started_at, "finishedAt": job.finished_at,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

/// `jobs schedules`: whether a scheduler runs, then one line per cron entry.
async fn schedules(db: &sea_orm::DatabaseConnection, config: &Config) -> anyhow::Result<()> {
    let now = Utc::now();
    let live = domain::queue::liveness(db, config.scheduler_stale_after).await?;
    println!("{}", scheduler_line(live, now));
    let states = domain::queue::schedule_states(db).await?;
    println!(
        "{:<32} {:<16} {:<34} {:<8} {:<19} {:<19} outcome",
        "schedule", "cron", "job", "state", "last tick (UTC)", "next run (UTC)"
    );
    let overrides = &config.cron_overrides;
    for s in jobs::registry::SCHEDULES {
        let next = jobs::scheduler::next_run(s, overrides, now)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        let cron = jobs::scheduler::cron_of(s, overrides);
        let state = states.iter().find(|st| st.name == s.name);
        let enabled = if state.is_some_and(|st| st.disabled) {
            "disabled"
        } else {
            "enabled"
        };
        let last = domain::queue::last_tick_of(db, s.name).await?;
        let (at, outcome) = match &last {
            None => ("-".to_owned(), "-".to_owned()),
            Some(t) => (
                t.tick_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                tick_outcome(db, t).await?,
            ),
        };
        let mut outcome = outcome;
        if let Some(st) = state.filter(|st| st.disabled) {
            let since = st
                .disabled_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            outcome.push_str(&format!(
                "; disabled since {since} by {}{}",
                st.disabled_by.as_deref().unwrap_or("?"),
                st.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
        println!(
            "{:<32} {:<16} {:<34} {:<8} {:<19} {:<19} {outcome}",
            s.name, cron, s.job, enabled, at, next
        );
    }
    Ok(())
}

/// "scheduler: alive (2 instances, last beat 3s ago)" or "scheduler: NOT RUNNING (…)".
pub(crate) fn scheduler_line(live: domain::queue::Liveness, now: chrono::DateTime<Utc>) -> String {
    let ago = |t: chrono::DateTime<Utc>| format!("last beat {} ago", human_age(now - t));
    match (live.alive, live.last_beat) {
        (0, None) => "scheduler: NOT RUNNING (no scheduler has ever run on this database: \
                      start `devsignal serve` or `devsignal worker` with SCHEDULER_ENABLED on)"
            .to_owned(),
        (0, Some(t)) => format!(
            "scheduler: NOT RUNNING ({}: start `devsignal worker` or `devsignal serve` with \
             SCHEDULER_ENABLED on)",
            ago(t)
        ),
        (n, t) => format!(
            "scheduler: alive ({n} instance{}, {})",
            if n == 1 { "" } else { "s" },
            t.map(ago).unwrap_or_default()
        ),
    }
}

/// `42s`, `5m`, `3h`, `2d`.
pub(crate) fn human_age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// What became of a tick: its job's state (a failed job's error shortened), or why it enqueued
/// nothing.
async fn tick_outcome(
    db: &sea_orm::DatabaseConnection,
    tick: &entity::job_cron_ticks::Model,
) -> anyhow::Result<String> {
    let Some(id) = tick.job_id else {
        return Ok(match tick.skipped.as_deref() {
            Some(domain::queue::skipped::DISABLED) => "skipped (disabled)".into(),
            Some(domain::queue::skipped::DUPLICATE) => "skipped (identical job waiting)".into(),
            _ => "skipped".into(),
        });
    };
    let Some(job) = domain::queue::get(db, id).await? else {
        return Ok(format!("job {id} (no longer kept)"));
    };
    Ok(match (job.state.as_str(), job.last_error.as_deref()) {
        (domain::queue::state::FAILED, Some(e)) | (domain::queue::state::SKIPPED, Some(e)) => {
            format!("{}: {}", job.state, shorten(e, 60))
        }
        (st, _) => st.to_owned(),
    })
}

/// The first line of `text`, at most `max` characters (with … when cut).
fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= max && !text.trim().contains('\n') {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    }
}
