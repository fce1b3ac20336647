//! Operating the cron table at run time through the real binary: disabling and enabling an
//! entry while a server runs (and across its restart), what `jobs schedules` shows (last tick,
//! its outcome, whether a scheduler is alive), the catch-up of a missed tick at start, a tick the
//! database refused enqueued once it is back, and the scheduler's metrics.

use std::time::Duration;

use chrono::{DateTime, Utc};
use devsignal_tests::processes::OwnPostgres;
use devsignal_tests::{eventually, postgres_admin_url, spawn_app_with};
use domain::queue;
use entity::job_cron_ticks;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use crate::cli::{Proc, free_port, run};
use crate::jobs::fresh_db;

async fn ticks(db: &DatabaseConnection, name: &str) -> Vec<job_cron_ticks::Model> {
    job_cron_ticks::Entity::find()
        .filter(job_cron_ticks::Column::Name.eq(name))
        .order_by_asc(job_cron_ticks::Column::TickAt)
        .all(db)
        .await
        .unwrap()
}

/// Waits for a tick of `name` after `after` that `pick` accepts.
async fn tick_after(
    db: &DatabaseConnection,
    name: &str,
    after: DateTime<Utc>,
    what: &str,
    pick: impl Fn(&job_cron_ticks::Model) -> bool,
) -> job_cron_ticks::Model {
    eventually(Duration::from_secs(30), what, || async {
        ticks(db, name)
            .await
            .into_iter()
            .find(|t| t.tick_at > after && pick(t))
    })
    .await
}

const ENTRY: &str = "alert-check-scheduler";
/// Another entry whose job completes.
const DEMO: &str = "demo-cleanup-scheduler";
const EVERY_2S: &str = "demo-cleanup-scheduler=*/2 * * * * *";

fn serve_env<'a>(db: &'a str, data: &'a str, port: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATABASE_URL", db),
        ("DATA_DIR", data),
        ("PORT", port),
        ("HOST", "127.0.0.1"),
        ("JOB_POLL_INTERVAL_MS", "50"),
        // Every 2 seconds: the test hook is only the expression's seconds field.
        ("CRON_OVERRIDES", EVERY_2S),
        ("SCHEDULER_STALE_SECONDS", "3"),
    ]
}

#[tokio::test]
async fn a_disabled_entry_enqueues_nothing_across_a_restart_until_enabled() {
    let (t, db) = fresh_db().await;
    let data = t.dir.path().display().to_string();
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = serve_env(&t.url, &data, &port);
    let cli = [
        ("DATABASE_URL", t.url.as_str()),
        ("SCHEDULER_STALE_SECONDS", "3"),
        ("CRON_OVERRIDES", EVERY_2S),
    ];
    let mut server = Proc::start(cwd.path(), &["serve"], &env);
    server.wait_for_line("listening on").await;
    let first = tick_after(&db, DEMO, Utc::now(), "a tick with a job", |t| {
        t.job_id.is_some()
    })
    .await;

    // `jobs schedules`: the scheduler is alive; the entry's last tick and its job's state.
    let shown = eventually(Duration::from_secs(20), "the job to finish", || async {
        let (code, out, err) = run(&["jobs", "schedules"], &cli).await;
        assert_eq!(code, 0, "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with(DEMO))
            .unwrap()
            .to_owned();
        line.ends_with("completed").then_some(out)
    })
    .await;
    assert!(
        shown
            .lines()
            .next()
            .unwrap()
            .starts_with("scheduler: alive (1 instance, last beat"),
        "{shown}"
    );
    let line = shown.lines().find(|l| l.starts_with(DEMO)).unwrap();
    assert!(
        line.contains("*/2 * * * * *") && line.contains(" enabled "),
        "{line}"
    );
    // The last tick: the first one or a later one.
    let shown_tick: Vec<&str> = line
        .split(" enabled ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect();
    let shown_tick =
        chrono::NaiveDateTime::parse_from_str(&shown_tick.join(" "), "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
    assert!(shown_tick >= first.tick_at, "{line}");

    // Unknown names are refused, naming the valid ones.
    let (code, _, err) = run(&["jobs", "disable", "no-such-entry"], &cli).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown schedule") && err.contains(DEMO),
        "{err}"
    );

    let (code, out, err) = run(
        &["jobs", "disable", DEMO, "--reason", "stuck in a retry loop"],
        &cli,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("disabled demo-cleanup-scheduler"), "{out}");
    assert!(out.contains("jobs trigger demo-cleanup-scheduler"), "{out}");
    let disabled_at = Utc::now();
    let (code, out, _) = run(&["jobs", "disable", DEMO], &cli).await;
    assert_eq!(
        (code, out.trim()),
        (0, "demo-cleanup-scheduler was already disabled")
    );

    // The running scheduler's next tick is skipped: recorded, nothing enqueued.
    let skipped = tick_after(&db, DEMO, disabled_at, "a skipped tick", |_| true).await;
    assert_eq!(skipped.job_id, None);
    assert_eq!(skipped.skipped.as_deref(), Some("disabled"));
    server.wait_for_line("skipped: the entry is disabled").await;
    let (_, out, _) = run(&["jobs", "schedules"], &cli).await;
    let line = out.lines().find(|l| l.starts_with(DEMO)).unwrap();
    assert!(line.contains(" disabled "), "{line}");
    assert!(line.contains("skipped (disabled)"), "{line}");
    assert!(line.contains("stuck in a retry loop"), "{line}");

    // The job can still be run by hand.
    let (code, out, err) = run(&["jobs", "trigger", DEMO], &cli).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("enqueued demo-cleanup-scheduler"), "{out}");

    // Stopped cleanly: no scheduler runs.
    assert_eq!(server.terminate().code(), Some(0));
    let (_, out, _) = run(&["jobs", "schedules"], &cli).await;
    assert!(
        out.starts_with("scheduler: NOT RUNNING (last beat"),
        "{out}"
    );

    // Restarted, the entry is still disabled.
    let port = free_port().to_string();
    let env = serve_env(&t.url, &data, &port);
    let mut server = Proc::start(cwd.path(), &["serve"], &env);
    server.wait_for_line("listening on").await;
    let restarted = Utc::now();
    let after_restart =
        tick_after(&db, DEMO, restarted, "a tick after the restart", |_| true).await;
    assert_eq!(after_restart.job_id, None, "{after_restart:?}");
    assert!(
        ticks(&db, DEMO)
            .await
            .iter()
            .filter(|t| t.tick_at > disabled_at)
            .all(|t| t.job_id.is_none()),
        "no tick enqueued while disabled"
    );

    let (code, out, _) = run(&["jobs", "enable", DEMO], &cli).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("enabled demo-cleanup-scheduler"), "{out}");
    let enabled_at = Utc::now();
    let (_, out, _) = run(&["jobs", "enable", DEMO], &cli).await;
    assert_eq!(out.trim(), "demo-cleanup-scheduler was already enabled");
    tick_after(
        &db,
        DEMO,
        enabled_at,
        "a tick with a job after enable",
        |t| t.job_id.is_some(),
    )
    .await;

    // Killed, its heartbeat goes stale: NOT RUNNING after SCHEDULER_STALE_SECONDS.
    server.kill9();
    eventually(Duration::from_secs(20), "NOT RUNNING", || async {
        let (_, out, _) = run(&["jobs", "schedules"], &cli).await;
        out.starts_with("scheduler: NOT RUNNING (last beat")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn schedules_show_a_failed_ticks_error_shortened() {
    let (t, db) = fresh_db().await;
    let entry = jobs::registry::schedule("sync-all-npm").unwrap();
    let tick = Utc::now() - chrono::Duration::hours(1);
    let id = jobs::scheduler::fire(&db, entry, tick)
        .await
        .unwrap()
        .unwrap();
    // Its job failed for good with a long error (as a worker records it).
    let long = format!("registry answered 503: {}\nsecond line", "x".repeat(200));
    let mut job: entity::jobs::ActiveModel = queue::get(&db, id).await.unwrap().unwrap().into();
    job.state = Set(queue::state::FAILED.into());
    job.last_error = Set(Some(long));
    job.finished_at = Set(Some(Utc::now()));
    job.update(&db).await.unwrap();
    let (code, out, err) = run(&["jobs", "schedules"], &[("DATABASE_URL", t.url.as_str())]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("scheduler: NOT RUNNING (no scheduler"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("sync-all-npm "))
        .unwrap();
    assert!(
        line.contains("failed: registry answered 503: xxx"),
        "{line}"
    );
    assert!(
        line.ends_with('…') && !line.contains("second line"),
        "{line}"
    );
    let never = out
        .lines()
        .find(|l| l.starts_with("sync-all-pypi "))
        .unwrap();
    assert!(never.trim_end().ends_with(" -"), "{never}");
}

/// Waits, if need be, so that no tick of a `*/5` minute entry falls in the next few seconds.
async fn away_from_a_five_minute_boundary() {
    let now = Utc::now();
    let into = (now.timestamp() % 300) as u64;
    if into > 290 {
        tokio::time::sleep(Duration::from_secs(302 - into)).await;
    }
}

#[tokio::test]
async fn at_start_the_most_recent_missed_tick_is_caught_up_once() {
    let (t, db) = fresh_db().await;
    away_from_a_five_minute_boundary().await;
    let none = jobs::scheduler::Overrides::new();
    let alert = jobs::registry::schedule(ENTRY).unwrap();
    let anomaly = jobs::registry::schedule("anomaly-detection-scheduler").unwrap();
    let now = Utc::now();
    // The alert check last ticked an hour ago (eleven ticks missed since); the anomaly detection
    // ran at its most recent tick; the npm sync never ran on this database.
    let old =
        jobs::scheduler::previous_run(alert, &none, now - chrono::Duration::hours(1)).unwrap();
    jobs::scheduler::fire(&db, alert, old)
        .await
        .unwrap()
        .unwrap();
    let recent = jobs::scheduler::previous_run(anomaly, &none, now).unwrap();
    jobs::scheduler::fire(&db, anomaly, recent)
        .await
        .unwrap()
        .unwrap();
    let missed = jobs::scheduler::previous_run(alert, &none, now).unwrap();

    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let data = t.dir.path().display().to_string();
    let w = Proc::start(
        cwd.path(),
        &["worker"],
        &[
            ("DATABASE_URL", t.url.as_str()),
            ("DATA_DIR", &data),
            ("WORKER_HEALTH_PORT", &port),
            ("HOST", "127.0.0.1"),
            ("JOB_POLL_INTERVAL_MS", "50"),
        ],
    );
    let caught = tick_after(&db, ENTRY, old, "the caught-up tick", |t| {
        t.job_id.is_some()
    })
    .await;
    assert_eq!(caught.tick_at, missed, "the most recent missed tick");
    w.wait_for_line("Missed tick caught up: job enqueued").await;
    let job = queue::get(&db, caught.job_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.payload["tick"], json!(missed));
    // Once: one catch-up, not one per missed tick; nothing for the others.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ticks(&db, ENTRY).await.len(), 2);
    assert_eq!(ticks(&db, "anomaly-detection-scheduler").await.len(), 1);
    assert!(ticks(&db, "sync-all-npm").await.is_empty());
}

#[tokio::test]
async fn a_tick_the_database_refused_is_enqueued_once_it_is_back() {
    if postgres_admin_url().is_none() {
        eprintln!("skipped: stopping the database runs in the PostgreSQL pass");
        return;
    }
    let pg = OwnPostgres::start().expect("PostgreSQL's server programs (initdb, pg_ctl)");
    let url = pg.url();
    let db = domain::db::connect(&url, &Default::default())
        .await
        .unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let data = cwd.path().join("data").display().to_string();
    let w = Proc::start(
        cwd.path(),
        &["worker"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("DATA_DIR", &data),
            ("WORKER_HEALTH_PORT", &port),
            ("HOST", "127.0.0.1"),
            ("CRON_OVERRIDES", "alert-check-scheduler=*/10 * * * * *"),
        ],
    );
    let before = tick_after(
        &db,
        ENTRY,
        Utc::now() - chrono::Duration::seconds(1),
        "a first tick",
        |t| t.job_id.is_some(),
    )
    .await;
    // The database goes away before the next tick and comes back only after that tick failed.
    pg.stop();
    let next = before.tick_at + chrono::Duration::seconds(10);
    eventually(Duration::from_secs(30), "the tick to fail", || async {
        w.output()
            .iter()
            .any(|l| {
                l.contains("Enqueueing a scheduled job failed; trying again") && l.contains(ENTRY)
            })
            .then_some(())
    })
    .await;
    pg.start_again();
    let db = domain::db::connect(&url, &Default::default())
        .await
        .unwrap();
    let t = tick_after(&db, ENTRY, before.tick_at, "the refused tick", |_| true).await;
    assert_eq!(
        t.tick_at, next,
        "the tick that was due while the database was down"
    );
    assert!(t.job_id.is_some(), "{t:?}");
    drop(w);
}

#[tokio::test]
async fn metrics_show_each_entrys_last_tick_and_the_live_schedulers() {
    let app = spawn_app_with(&[
        ("SCHEDULER_ENABLED", "true"),
        ("CRON_OVERRIDES", "alert-check-scheduler=* * * * * *"),
    ])
    .await;
    let text = eventually(Duration::from_secs(20), "the metrics", || async {
        let text = app.get("/metrics").await.text().await.ok()?;
        (text.contains(
            "devsignal_scheduler_last_tick_timestamp_seconds{schedule=\"alert-check-scheduler\"}",
        ) && text.lines().any(|l| l == "devsignal_scheduler_alive 1"))
        .then_some(text)
    })
    .await;
    let line = text
        .lines()
        .find(|l| l.starts_with("devsignal_scheduler_last_tick_timestamp_seconds{schedule=\"alert-check-scheduler\"}"))
        .unwrap();
    let at: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((Utc::now().timestamp() - at).abs() < 30, "{line}");
}
