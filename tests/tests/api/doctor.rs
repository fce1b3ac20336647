//! `devsignal doctor` as an operator runs it: a healthy setup passes; an unreachable database, a
//! failed job, an integration in ERROR and a pending migration each fail with what to do.

use std::time::Duration;

use devsignal_tests::{eventually, redis_url, spawn_app_with};
use domain::queue::{self, NewJob};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};

use crate::cli::{free_port, run};

fn lines_with<'a>(out: &'a str, level: &str, check: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(level) && words.next() == Some(check.split(' ').next().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_healthy_setup_passes_and_each_problem_fails_with_what_to_do() {
    let app = spawn_app_with(&[("SCHEDULER_ENABLED", "true")]).await;
    let url = app.test_db.url.clone();
    let data = app.test_db.dir.path().display().to_string();
    let redis = redis_url();
    // The primary doubles as its own replica: the replica check reads it.
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_READ_URL", url.as_str()),
        ("DATA_DIR", data.as_str()),
        ("NODE_ENV", "test"),
    ];
    if let Some(r) = &redis {
        env.push(("REDIS_URL", r.as_str()));
    }

    // Healthy: the server (and its scheduler) runs, nothing failed.
    eventually(
        Duration::from_secs(10),
        "the scheduler's heartbeat",
        || async {
            let live = queue::liveness(&app.db, Duration::from_secs(60))
                .await
                .unwrap();
            (live.alive > 0).then_some(())
        },
    )
    .await;
    let (code, out, err) = run(&["doctor"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    for l in out.lines() {
        assert!(l.starts_with("OK ") || l.starts_with("WARN "), "{l}");
    }
    for check in [
        "config",
        "database",
        "migrations",
        "scheduler",
        "queues",
        "intake",
        "failed",
        "integrations",
        "replica",
        "redis",
        "smtp",
    ] {
        assert!(
            !lines_with(&out, "OK", check).is_empty(),
            "no OK {check}: {out}"
        );
    }
    assert!(out.contains("scheduler     alive (1 instance"), "{out}");

    // A job failed for good, an integration is in ERROR.
    let admin = app.register("admin@doctor.io", "Doctor").await;
    let r: Value = app
        .graphql_as(
            admin.token(),
            "mutation { connectIntegration(input: {kind: LINKEDIN, config: {companyPageUrl: \"https://www.linkedin.com/company/doctor\"}}) { integration { id } } }",
            json!({}),
        )
        .await;
    let id: uuid::Uuid = r["data"]["connectIntegration"]["integration"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .parse()
        .unwrap();
    let mut integration: entity::integrations::ActiveModel =
        entity::integrations::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .into();
    integration.status = Set("ERROR".into());
    integration.last_error = Set(Some("the source refused the credentials (401)".into()));
    integration.update(&app.db).await.unwrap();
    queue::record_failed(
        &app.db,
        NewJob::new("signal-processing", "noop", json!({})),
        3,
        "boom: the handler gave up",
    )
    .await
    .unwrap();
    let (code, out, _) = run(&["doctor"], &env).await;
    assert_eq!(code, 1, "{out}");
    let failed = lines_with(&out, "FAIL", "failed");
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].contains("signal-processing: 1 failed in the last 24 h"),
        "{out}"
    );
    assert!(failed[0].contains("boom: the handler gave up"), "{out}");
    assert!(
        failed[0].contains("devsignal jobs retry-failed signal-processing"),
        "{out}"
    );
    let errored = lines_with(&out, "FAIL", "integrations");
    assert_eq!(errored.len(), 1, "{out}");
    assert!(errored[0].contains("LINKEDIN integration"), "{out}");
    assert!(errored[0].contains("refused the credentials"), "{out}");
    assert!(!lines_with(&out, "OK", "database").is_empty(), "{out}");

    // A migration pending (and no scheduler running any more).
    // (The database must outlive the server: stop it, keep the app.)
    app.state.shutdown.cancel();
    let db = domain::db::connect(&url, &Default::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "the scheduler to stop", || async {
        let live = queue::liveness(&db, Duration::from_secs(60)).await.ok()?;
        (live.alive == 0).then_some(())
    })
    .await;
    let (code, _, err) = run(&["migrate", "down", "1"], &env).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["doctor"], &env).await;
    assert_eq!(code, 1, "{out}");
    let pending = lines_with(&out, "FAIL", "migrations");
    assert_eq!(pending.len(), 1, "{out}");
    assert!(pending[0].contains("1 pending"), "{out}");
    assert!(pending[0].contains("devsignal migrate up"), "{out}");
    // The replica (the same database) lacks that migration too: a warning, not a failure.
    let behind = lines_with(&out, "WARN", "replica");
    assert_eq!(behind.len(), 1, "{out}");
    assert!(behind[0].contains("lacks 1 of"), "{out}");
}

#[tokio::test]
async fn an_unreachable_database_fails_naming_database_url() {
    let url = format!("postgres://postgres@127.0.0.1:{}/devsignal", free_port());
    let (code, out, err) = run(&["doctor"], &[("DATABASE_URL", url.as_str())]).await;
    assert_eq!(code, 1, "{out}{err}");
    let db = lines_with(&out, "FAIL", "database");
    assert_eq!(db.len(), 1, "{out}");
    assert!(db[0].contains("DATABASE_URL"), "{out}");
    // The checks that need no database still run.
    assert!(!lines_with(&out, "OK", "config").is_empty(), "{out}");
    assert!(!lines_with(&out, "OK", "smtp").is_empty(), "{out}");

    // A read replica that does not answer is named by its variable, beside the primary.
    let read = format!("postgres://postgres@127.0.0.1:{}/devsignal", free_port());
    let (code, out, _) = run(
        &["doctor"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("DATABASE_READ_URL", read.as_str()),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let replica = lines_with(&out, "FAIL", "replica");
    assert_eq!(replica.len(), 1, "{out}");
    assert!(replica[0].contains("DATABASE_READ_URL"), "{out}");

    // A configuration that does not parse is named too.
    let (code, out, _) = run(&["doctor"], &[("PORT", "eighty")]).await;
    assert_eq!(code, 1, "{out}");
    let config = lines_with(&out, "FAIL", "config");
    assert!(config.iter().any(|l| l.contains("PORT")), "{out}");
}

/// Signals accepted for later ingest while no worker runs: doctor warns once the oldest has
/// waited past the backlog threshold, says how many, and points at the worker.
#[tokio::test]
async fn signals_waiting_in_the_intake_without_a_worker_are_a_warning() {
    let app = devsignal_tests::spawn_app_without_worker().await;
    let env = [
        ("DATABASE_URL", app.test_db.url.as_str()),
        ("NODE_ENV", "test"),
    ];
    let s = app.register("owner@intake-doctor.io", "IntakeDoctor").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    for i in 0..2 {
        crate::intake::accepted(
            &app,
            &key,
            "/api/v1/signals",
            json!({"type": "signup", "actor": {"email": format!("p{i}@intake-doctor.io")}}),
        )
        .await;
    }
    // Just accepted: waiting, but not a backlog yet. (With no worker ever started, the
    // scheduler check fails: that is its own finding.)
    let (_, out, _) = run(&["doctor"], &env).await;
    let ok = lines_with(&out, "OK", "intake");
    assert_eq!(ok.len(), 1, "{out}");
    assert!(ok[0].contains("2 request(s)"), "{out}");
    // Waiting for ten minutes: a warning that names the worker, not a failure (nothing is lost).
    entity::signal_intake::Entity::update_many()
        .col_expr(
            entity::signal_intake::Column::ReceivedAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::minutes(10)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let (_, out, _) = run(&["doctor"], &env).await;
    let warned = lines_with(&out, "WARN", "intake");
    assert_eq!(warned.len(), 1, "{out}");
    assert!(warned[0].contains("2 request(s)"), "{out}");
    assert!(warned[0].contains("the oldest for 10m"), "{out}");
    assert!(warned[0].contains("devsignal worker"), "{out}");
    assert!(lines_with(&out, "OK", "intake").is_empty(), "{out}");
    assert!(lines_with(&out, "FAIL", "intake").is_empty(), "{out}");
}
