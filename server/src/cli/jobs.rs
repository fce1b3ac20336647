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
    Trigger {
        job: String,
        /// The organization, for per-organization jobs.
        #[arg(long)]
        org: Option<Uuid>,
    },
    /// Every cron entry with its expression, job and next run (UTC).
    Schedules,
    /// One job with its payload, attempts and last error.
    Show { id: Uuid },
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
        JobsAction::Status | JobsAction::Schedules | JobsAction::Show { .. }
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
        JobsAction::Schedules => {
            let now = Utc::now();
            println!(
                "{:<32} {:<14} {:<34} next run (UTC)",
                "schedule", "cron", "job"
            );
            for s in jobs::registry::SCHEDULES {
                let overrides = &config.cron_overrides;
                let next = jobs::scheduler::next_run(s, overrides, now)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                let cron = jobs::scheduler::cron_of(s, overrides);
                println!("{:<32} {:<14} {:<34} {next}", s.name, cron, s.job);
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
