//! `devsignal doctor`: checks what a running DevSignal depends on — its configuration, the
//! database and its schema version, Redis, SMTP, the cron scheduler's heartbeat, the job queues,
//! the signals waiting in the intake and the integrations — and prints one line per finding:
//! `OK`, `WARN` or `FAIL`, the check, and what to do. Exits 1 when any check fails. It reads the environment and the database only, so
//! it works with the server stopped.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::ExposeSecret;

use crate::config::Config;

/// How long one check may wait for a dependency.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Waiting jobs due longer ago than this are a backlog.
const BACKLOG_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// Failed jobs of this recent past are reported.
const FAILED_WITHIN: chrono::Duration = chrono::Duration::hours(24);
/// Redis answering slower than this is worth a warning.
const SLOW_REDIS: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn say(&mut self, level: Level, check: &str, message: impl AsRef<str>) {
        let word = match level {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => {
                self.failed = true;
                "FAIL"
            }
        };
        println!("{word:<4}  {check:<13} {}", message.as_ref());
    }
    fn ok(&mut self, check: &str, message: impl AsRef<str>) {
        self.say(Level::Ok, check, message);
    }
    fn warn(&mut self, check: &str, message: impl AsRef<str>) {
        self.say(Level::Warn, check, message);
    }
    fn fail(&mut self, check: &str, message: impl AsRef<str>) {
        self.say(Level::Fail, check, message);
    }
}

/// Runs every check against the process environment.
pub async fn run() -> ExitCode {
    let mut report = Report::default();
    check(&mut report).await;
    if report.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn check(r: &mut Report) {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(errors) => {
            for p in &errors.0 {
                r.fail("config", format!("{p}: fix {} and run doctor again", p.var));
            }
            return;
        }
    };
    check_config(r, &config);
    if let Some(db) = check_database(r, &config).await {
        check_scheduler(r, &db, &config).await;
        check_queues(r, &db).await;
        check_intake(r, &db).await;
        check_integrations(r, &db).await;
        db.close().await.ok();
    }
    check_replica(r, &config).await;
    check_redis(r, &config).await;
    check_smtp(r, &config).await;
}

/// The read replica (`DATABASE_READ_URL`), when one is configured: that it answers and holds
/// the schema this binary expects (a replica still behind a migration serves old columns).
async fn check_replica(r: &mut Report, config: &Config) {
    let (Some(url), Some(described)) = (
        config.database_read_url.as_ref(),
        config.database_read_description(),
    ) else {
        return;
    };
    let pool = domain::db::PoolSettings {
        max_connections: 1,
        acquire_timeout: TIMEOUT,
        ..Default::default()
    };
    let started = Instant::now();
    let reached = match domain::db::connect_replica(url.expose_secret(), &pool).await {
        Ok(db) => match domain::db::ping(&db, TIMEOUT).await {
            Ok(()) => Ok(db),
            Err(e) => {
                db.close().await.ok();
                Err(e)
            }
        },
        Err(e) => Err(e),
    };
    let db = match reached {
        Ok(db) => db,
        Err(e) => {
            r.fail(
                "replica",
                format!(
                    "cannot reach the read replica {described}: {e}; list pages and search fail                      until it answers: check DATABASE_READ_URL, or unset it to read the primary"
                ),
            );
            return;
        }
    };
    let answered = started.elapsed().as_millis();
    match domain::db::migration_status(&db).await {
        Ok(status) => {
            let pending = status.iter().filter(|m| !m.applied).count();
            if pending == 0 {
                r.ok(
                    "replica",
                    format!(
                        "{described} answered in {answered} ms with all {} migrations",
                        status.len()
                    ),
                );
            } else {
                r.warn(
                    "replica",
                    format!(
                        "{described} answered in {answered} ms but lacks {pending} of {}                          migrations: it is not a current replica of DATABASE_URL, or it is                          still catching up",
                        status.len()
                    ),
                );
            }
        }
        Err(e) => r.fail(
            "replica",
            format!(
                "{described} answered but its schema cannot be read: {e}; DATABASE_READ_URL                  must be a replica of DATABASE_URL"
            ),
        ),
    }
    db.close().await.ok();
}

fn check_config(r: &mut Report, config: &Config) {
    let env = format!("{:?}", config.environment).to_lowercase();
    r.ok(
        "config",
        format!("the environment's settings are valid (NODE_ENV: {env})"),
    );
    if config.is_production() {
        if config.redis_url.is_none() {
            r.warn(
                "config",
                "REDIS_URL is not set: rate limits count per process and live events reach only \
                 one replica's subscribers; set REDIS_URL when running more than one replica",
            );
        }
        if config.sentry_dsn.is_none() {
            r.warn(
                "config",
                "SENTRY_DSN is not set: errors are only logged; set SENTRY_DSN to be alerted",
            );
        }
        if config.metrics_token.is_none() {
            r.warn(
                "config",
                "METRICS_TOKEN is not set: /metrics answers anyone; set METRICS_TOKEN",
            );
        }
    } else if config.jwt_secret.is_none() || config.encryption_key.is_none() {
        r.warn(
            "config",
            format!(
                "not production (NODE_ENV={env}): JWT_SECRET, JWT_REFRESH_SECRET or ENCRYPTION_KEY \
                 unset, so development secrets from {}/secrets.json are used; in production set \
                 NODE_ENV=production and all three",
                config.data_dir.display()
            ),
        );
    }
}

/// Reaches the database and reads its schema version; the pool when both worked.
async fn check_database(r: &mut Report, config: &Config) -> Option<sea_orm::DatabaseConnection> {
    let url = config.database_url.expose_secret();
    let described = config.database_description();
    if let Some(file) = domain::db::sqlite_file(url)
        && !file.is_file()
    {
        let shown = std::path::absolute(&file).unwrap_or(file);
        r.fail(
            "database",
            format!(
                "no database file at {}: set DATA_DIR or DATABASE_URL to the server's database \
                 (`devsignal migrate up` creates a new one)",
                shown.display()
            ),
        );
        return None;
    }
    let pool = domain::db::PoolSettings {
        max_connections: 2,
        acquire_timeout: TIMEOUT,
        ..Default::default()
    };
    let started = Instant::now();
    let db = match domain::db::connect(url, &pool).await {
        Ok(db) => db,
        Err(e) => {
            r.fail(
                "database",
                format!(
                    "cannot reach {described}: {e}; check DATABASE_URL and that the database \
                     server is up"
                ),
            );
            return None;
        }
    };
    if let Err(e) = domain::db::ping(&db, TIMEOUT).await {
        r.fail(
            "database",
            format!("{described} does not answer: {e}; check DATABASE_URL and the database server"),
        );
        db.close().await.ok();
        return None;
    }
    r.ok(
        "database",
        format!(
            "{described} answered in {} ms",
            started.elapsed().as_millis()
        ),
    );
    let status = match domain::db::migration_status(&db).await {
        Ok(s) => s,
        Err(e) => {
            r.fail(
                "migrations",
                format!("cannot read the schema version: {e}; run `devsignal migrate status`"),
            );
            db.close().await.ok();
            return None;
        }
    };
    let pending: Vec<&str> = status
        .iter()
        .filter(|m| !m.applied)
        .map(|m| m.name.as_str())
        .collect();
    if pending.len() == status.len() {
        r.fail(
            "migrations",
            format!(
                "{described} holds no DevSignal tables: set DATA_DIR or DATABASE_URL to the \
                 server's database, or run `devsignal migrate up` to set this one up"
            ),
        );
        db.close().await.ok();
        return None;
    }
    if pending.is_empty() {
        r.ok(
            "migrations",
            format!("all {} migrations applied", status.len()),
        );
    } else {
        r.fail(
            "migrations",
            format!(
                "{} pending ({}): run `devsignal migrate up` (or restart `devsignal serve`, which \
                 applies them)",
                pending.len(),
                pending.join(", ")
            ),
        );
    }
    Some(db)
}

async fn check_scheduler(r: &mut Report, db: &sea_orm::DatabaseConnection, config: &Config) {
    match domain::queue::liveness(db, config.scheduler_stale_after).await {
        Ok(live) => {
            let line = super::jobs::scheduler_line(live, Utc::now());
            let line = line.trim_start_matches("scheduler: ");
            if live.alive > 0 {
                r.ok("scheduler", line);
            } else {
                r.fail("scheduler", line);
            }
        }
        Err(e) => r.fail(
            "scheduler",
            format!("cannot read the heartbeats: {e}; run `devsignal migrate up`"),
        ),
    }
    match domain::queue::schedule_states(db).await {
        Ok(states) => {
            let off: Vec<&str> = states
                .iter()
                .filter(|s| s.disabled)
                .map(|s| s.name.as_str())
                .collect();
            if !off.is_empty() {
                r.warn(
                    "scheduler",
                    format!(
                        "disabled cron entries: {}; `devsignal jobs enable <schedule>` when fixed",
                        off.join(", ")
                    ),
                );
            }
        }
        Err(e) => r.fail(
            "scheduler",
            format!("cannot read the cron entries' state: {e}"),
        ),
    }
}

async fn check_queues(r: &mut Report, db: &sea_orm::DatabaseConnection) {
    let now = Utc::now();
    let mut clean = true;
    match domain::queue::overdue(db, now - BACKLOG_AFTER).await {
        Ok(rows) => {
            for (queue, n, oldest) in rows {
                clean = false;
                r.warn(
                    "queues",
                    format!(
                        "{queue}: {n} job(s) due for over {} min, the oldest for {}: is a worker \
                         running (`devsignal jobs schedules` shows the scheduler; `devsignal jobs \
                         status` whether the queue is paused)?",
                        BACKLOG_AFTER.num_minutes(),
                        super::jobs::human_age(now - oldest)
                    ),
                );
            }
        }
        Err(e) => {
            clean = false;
            r.fail("queues", format!("cannot read the queues: {e}"));
        }
    }
    match domain::queue::paused_queues(db).await {
        Ok(paused) => {
            for q in paused {
                clean = false;
                r.warn(
                    "queues",
                    format!("{q} is paused: `devsignal jobs resume {q}` when it should run again"),
                );
            }
        }
        Err(e) => r.fail("queues", format!("cannot read paused queues: {e}")),
    }
    if clean {
        r.ok(
            "queues",
            format!(
                "no backlog (no job due for over {} min), no queue paused",
                BACKLOG_AFTER.num_minutes()
            ),
        );
    }
    match domain::queue::failed_since(db, now - FAILED_WITHIN).await {
        Ok(rows) if rows.is_empty() => r.ok("failed jobs", "none in the last 24 h"),
        Ok(rows) => {
            for (queue, n, last) in rows {
                let last = last
                    .map(|j| {
                        format!(
                            " (last: {} {}: {})",
                            j.name,
                            j.id,
                            first_line(j.last_error.as_deref().unwrap_or("no error recorded"))
                        )
                    })
                    .unwrap_or_default();
                r.fail(
                    "failed jobs",
                    format!(
                        "{queue}: {n} failed in the last 24 h{last}: inspect with `devsignal jobs \
                         show <id>`, then `devsignal jobs retry-failed {queue}` once the cause is \
                         fixed (or `devsignal jobs clean {queue} --failed --older-than 0s`)"
                    ),
                );
            }
        }
        Err(e) => r.fail("failed jobs", format!("cannot read failed jobs: {e}")),
    }
}

/// Signals accepted for later ingest (`Prefer: respond-async`) that no worker has ingested.
async fn check_intake(r: &mut Report, db: &sea_orm::DatabaseConnection) {
    let now = Utc::now();
    match domain::signals::intake::backlog(db).await {
        Ok((0, _)) => r.ok("intake", "no signals waiting to be ingested"),
        Ok((n, Some(oldest))) if now - oldest > BACKLOG_AFTER => r.warn(
            "intake",
            format!(
                "{n} request(s) accepted for later ingest are waiting, the oldest for {}: is a \
                 worker running (`devsignal serve` without --no-worker, or `devsignal worker`)? \
                 RUNBOOK.md, \"Signal intake backing up\", shows what waits per organization",
                super::jobs::human_age(now - oldest)
            ),
        ),
        Ok((n, _)) => r.ok(
            "intake",
            format!(
                "{n} request(s) accepted for later ingest are waiting, none for over {} min",
                BACKLOG_AFTER.num_minutes()
            ),
        ),
        // The table comes with migration 000035: a database behind it is reported by the
        // migrations check already.
        Err(e) => r.warn(
            "intake",
            format!("cannot read the signal intake ({e}): is a migration pending?"),
        ),
    }
}

async fn check_integrations(r: &mut Report, db: &sea_orm::DatabaseConnection) {
    match connectors::store::in_error(db).await {
        Ok(list) if list.is_empty() => r.ok("integrations", "none in ERROR"),
        Ok(list) => {
            for i in list {
                r.fail(
                    "integrations",
                    format!(
                        "{} integration {} of organization {} is in ERROR: {}; fix its \
                         credentials or configuration (dashboard: Settings → Integrations, or \
                         the `updateIntegration` mutation), which reconnects it",
                        i.kind,
                        i.id,
                        i.organization_id,
                        first_line(i.last_error.as_deref().unwrap_or("no error recorded"))
                    ),
                );
            }
        }
        Err(e) => r.fail("integrations", format!("cannot read integrations: {e}")),
    }
}

async fn check_redis(r: &mut Report, config: &Config) {
    let Some(url) = &config.redis_url else {
        r.ok(
            "redis",
            "not configured (REDIS_URL unset): rate limits and live events stay in each process",
        );
        return;
    };
    let attempt = async {
        let client = redis::Client::open(url.expose_secret())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        // The first PING pays for the connection; the second is the latency.
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        let started = Instant::now();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok::<_, redis::RedisError>(started.elapsed())
    };
    match tokio::time::timeout(TIMEOUT, attempt).await {
        Ok(Ok(latency)) if latency > SLOW_REDIS => r.warn(
            "redis",
            format!(
                "PING took {} ms: Redis is slow (memory pressure or network?); check `redis-cli \
                 --latency` on its host",
                latency.as_millis()
            ),
        ),
        Ok(Ok(latency)) => r.ok(
            "redis",
            format!("PING answered in {:.1} ms", latency.as_secs_f64() * 1000.0),
        ),
        Ok(Err(e)) => r.fail(
            "redis",
            format!("cannot reach Redis: {e}; check REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD) and that Redis is up"),
        ),
        Err(_) => r.fail(
            "redis",
            format!(
                "Redis did not answer within {} s; check REDIS_URL and the network to Redis",
                TIMEOUT.as_secs()
            ),
        ),
    }
}

async fn check_smtp(r: &mut Report, config: &Config) {
    let Some(url) = &config.smtp_url else {
        if config.is_production() && config.resend_api_key.is_none() {
            r.warn(
                "smtp",
                format!(
                    "SMTP_URL is not set: mail (password resets, invitations) is written to \
                     {}/mail instead of sent; set SMTP_URL",
                    config.data_dir.display()
                ),
            );
        } else {
            r.ok(
                "smtp",
                "not configured (SMTP_URL unset): mail is written under DATA_DIR/mail",
            );
        }
        return;
    };
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        match AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()) {
            Ok(t) => t.timeout(Some(TIMEOUT)).build(),
            Err(e) => {
                r.fail(
                    "smtp",
                    format!(
                        "SMTP_URL is not usable: {e}; fix SMTP_URL (smtp://user:pass@host:587)"
                    ),
                );
                return;
            }
        };
    match tokio::time::timeout(TIMEOUT * 2, transport.test_connection()).await {
        Ok(Ok(true)) => r.ok("smtp", "the SMTP server answered (EHLO, NOOP)"),
        Ok(Ok(false)) => r.fail(
            "smtp",
            "the SMTP server refused the test connection; check SMTP_URL and the server",
        ),
        Ok(Err(e)) => r.fail(
            "smtp",
            format!("cannot reach the SMTP server: {e}; check SMTP_URL and that it is reachable"),
        ),
        Err(_) => r.fail(
            "smtp",
            "the SMTP server did not answer in time; check SMTP_URL and the network",
        ),
    }
}

/// The first line of `text`, at most 120 characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_owned()
    }
}
