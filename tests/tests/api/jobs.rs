//! Durable jobs: the queue on its own (claims, leases, retries, pause, prune), the
//! worker in the server, the admin GraphQL, the scheduler's once-per-tick rule, and real
//! `devsignal worker` processes killed, stopped and operated from the command line.

use std::time::Duration;

use chrono::Utc;
use devsignal_tests::{TestDatabase, assert_code, eventually, spawn_app, spawn_app_with};
use domain::queue::{self, NewJob, state};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cli::{Proc, free_port, run};

fn ok(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "{resp}");
    &resp["data"]
}

/// A new database with every migration applied, and a connection to it.
pub(crate) async fn fresh_db() -> (TestDatabase, DatabaseConnection) {
    let t = TestDatabase::new().await;
    let db = domain::db::connect(&t.url, &Default::default())
        .await
        .unwrap();
    domain::db::migrate_up(&db).await.unwrap();
    (t, db)
}

fn noop(payload: Value) -> NewJob {
    let mut j = NewJob::new("signal-processing", "noop", payload);
    j.backoff_base = Duration::from_millis(200);
    j
}

async fn job(db: &DatabaseConnection, id: Uuid) -> entity::jobs::Model {
    queue::get(db, id).await.unwrap().unwrap()
}

#[tokio::test]
async fn the_queue_claims_once_retries_with_backoff_and_recovers_lost_leases() {
    let (_t, db) = fresh_db().await;
    let q = vec!["signal-processing".to_owned()];

    // Enqueued in the caller's transaction: a rollback takes the job with it.
    let txn = domain::db::begin(&db).await.unwrap();
    queue::enqueue(&txn, noop(json!({"n": 0}))).await.unwrap();
    txn.rollback().await.unwrap();
    assert!(
        queue::claim(&db, &q, "w1", Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Dedupe while waiting.
    let a = queue::enqueue(&db, noop(json!({})).dedupe("k"))
        .await
        .unwrap();
    assert!(a.is_some());
    assert!(
        queue::enqueue(&db, noop(json!({})).dedupe("k"))
            .await
            .unwrap()
            .is_none()
    );

    // Two claimers at once never get the same job.
    for i in 0..19 {
        queue::enqueue(&db, noop(json!({"n": i}))).await.unwrap();
    }
    let (x, y) = tokio::join!(
        queue::claim(&db, &q, "w1", Duration::from_secs(30), 15),
        queue::claim(&db, &q, "w2", Duration::from_secs(30), 15)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 20);
    assert!(x.iter().all(|j| !y.iter().any(|k| k.id == j.id)));
    assert!(x.iter().all(|j| j.attempts == 1
        && j.state == state::ACTIVE
        && j.locked_by.as_deref() == Some("w1")));

    // A failure waits base·2^(n-1) (+ jitter) before the next attempt; the last one fails it.
    let mut failing = noop(json!({}));
    failing.max_attempts = 2;
    let id = queue::enqueue(&db, failing).await.unwrap().unwrap();
    let claimed = queue::claim(&db, &q, "w1", Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id);
    let before = Utc::now();
    let f = queue::fail(&db, &claimed[0], "w1", "boom").await.unwrap();
    let queue::Failure::Retry(at) = f else {
        panic!("{f:?}")
    };
    let wait = (at - before).num_milliseconds();
    assert!((190..=260).contains(&wait), "waited {wait} ms");
    assert_eq!(job(&db, id).await.state, state::WAITING);
    assert!(
        queue::claim(&db, &q, "w1", Duration::from_secs(30), 1)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = queue::claim(&db, &q, "w1", Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        queue::fail(&db, &again[0], "w1", "boom again")
            .await
            .unwrap(),
        queue::Failure::Dead
    );
    let dead = job(&db, id).await;
    assert_eq!(dead.state, state::FAILED);
    assert_eq!(dead.last_error.as_deref(), Some("boom again"));

    // A lost worker's lease expires and another worker takes the job; on its last attempt the
    // job fails instead.
    let id = queue::enqueue(&db, noop(json!({}))).await.unwrap().unwrap();
    let lost = queue::claim(&db, &q, "dead-worker", Duration::from_millis(100), 1)
        .await
        .unwrap();
    assert_eq!(lost[0].id, id);
    assert!(
        queue::claim(&db, &q, "w2", Duration::from_secs(30), 1)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let taken = queue::claim(&db, &q, "w2", Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!((taken[0].id, taken[0].attempts), (id, 2));
    assert!(
        !queue::complete(&db, id, "dead-worker").await.unwrap(),
        "the old owner lost it"
    );
    assert!(queue::complete(&db, id, "w2").await.unwrap());
    assert_eq!(job(&db, id).await.state, state::COMPLETED);

    // Pause stops claims and survives reconnecting; resume restarts them.
    let id = queue::enqueue(&db, noop(json!({}))).await.unwrap().unwrap();
    queue::set_paused(&db, "signal-processing", true)
        .await
        .unwrap();
    let t2 = domain::db::connect(&_t.url, &Default::default())
        .await
        .unwrap();
    assert!(
        queue::claim(&t2, &q, "w3", Duration::from_secs(30), 1)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = queue::counts(&t2, &["signal-processing"], None)
        .await
        .unwrap();
    assert!(counts[0].paused);
    queue::set_paused(&t2, "signal-processing", false)
        .await
        .unwrap();
    let c = queue::claim(&t2, &q, "w3", Duration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(c[0].id, id);

    // Retry-failed and clean.
    assert_eq!(
        queue::retry_failed(&db, "signal-processing", 10, None)
            .await
            .unwrap(),
        1
    );
    let revived = job(&db, dead.id).await;
    assert_eq!(
        (revived.state.as_str(), revived.attempts),
        (state::WAITING, 0)
    );
    let cleaned = queue::clean(&db, "signal-processing", state::COMPLETED, Utc::now())
        .await
        .unwrap();
    assert_eq!(cleaned, 1);
}

#[tokio::test]
async fn completed_and_failed_jobs_are_pruned_to_the_kept_counts() {
    let (_t, db) = fresh_db().await;
    let mut ids = Vec::new();
    for _ in 0..1010 {
        ids.push(queue::enqueue(&db, noop(json!({}))).await.unwrap().unwrap());
    }
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    entity::jobs::Entity::update_many()
        .col_expr(entity::jobs::Column::State, Expr::value(state::COMPLETED))
        .col_expr(entity::jobs::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(entity::jobs::Column::Queue.eq("signal-processing"))
        .exec(&db)
        .await
        .unwrap();
    let deleted = queue::prune(&db).await.unwrap();
    assert!(deleted >= 10, "{deleted}");
    let c = queue::counts(&db, &["signal-processing"], None)
        .await
        .unwrap();
    assert!(
        c[0].completed <= 1000 && c[0].completed >= 990,
        "{:?}",
        c[0]
    );
}

#[tokio::test]
async fn each_cron_tick_is_enqueued_once_however_many_workers_fire_it() {
    let (t, db) = fresh_db().await;
    // Each "worker" with a pool of its own, all firing the same tick at once.
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(
            domain::db::connect(&t.url, &Default::default())
                .await
                .unwrap(),
        );
    }
    let schedule = jobs::registry::schedule("alert-check-scheduler").unwrap();
    let tick = Utc::now();
    let fired = futures::future::join_all(
        workers
            .iter()
            .map(|w| jobs::scheduler::fire(w, schedule, tick)),
    )
    .await;
    let enqueued: Vec<Uuid> = fired.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(enqueued.len(), 1);
    assert_eq!(
        queue::tick_count(&db, "alert-check-scheduler")
            .await
            .unwrap(),
        1
    );
    // The next tick is a new one.
    let next = tick + chrono::Duration::minutes(5);
    assert!(
        jobs::scheduler::fire(&db, schedule, next)
            .await
            .unwrap()
            .is_some()
    );
    let j = job(&db, enqueued[0]).await;
    assert_eq!(
        (j.queue.as_str(), j.name.as_str()),
        ("alert-check", "alert-check-scheduler")
    );
}

async fn wait_state(db: &DatabaseConnection, id: Uuid, st: &str) -> entity::jobs::Model {
    eventually(
        Duration::from_secs(20),
        &format!("job {id} to be {st}"),
        || async {
            let j = job(db, id).await;
            (j.state == st).then_some(j)
        },
    )
    .await
}

#[tokio::test]
async fn the_server_runs_jobs_and_admins_operate_their_own_organizations_queues() {
    let operator = format!("ops-{}@example.com", Uuid::new_v4().simple());
    let app = spawn_app_with(&[("PLATFORM_ADMINS", &operator)]).await;
    let (a, b) = app.two_tenants().await;
    let ops = app.register(&operator, "Operators").await;

    // An ADMIN triggers a per-organization job for their own organization; the worker runs it.
    let r = app
        .graphql_as(a.token(), "mutation { triggerJob(name: \"capture-score-snapshot\") { id queue state organizationId } }", json!({}))
        .await;
    let t = &ok(&r)["triggerJob"];
    assert_eq!(t["queue"], "score-snapshot");
    assert_eq!(t["organizationId"], a.organization_id.as_str());
    let id: Uuid = t["id"].as_str().unwrap().parse().unwrap();
    let done = wait_state(&app.db, id, state::COMPLETED).await;
    assert_eq!(done.attempts, 1);

    // Org B sees none of org A's jobs; an org ADMIN may not touch shared queues.
    let r = app
        .graphql_as(
            b.token(),
            "{ jobs(first: 50) { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["jobs"]["totalCount"], 0);
    let r = app
        .graphql_as(
            a.token(),
            "{ jobs(queue: \"score-snapshot\", state: \"completed\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["jobs"]["totalCount"], 1);
    let r = app
        .graphql_as(b.token(), "mutation($o: ID!) { triggerJob(name: \"capture-score-snapshot\", organizationId: $o) { id } }", json!({"o": a.organization_id}))
        .await;
    assert_code(&r, "NOT_FOUND");
    for m in [
        "mutation { pauseQueue(queue: \"score-snapshot\") { paused } }",
        "mutation { triggerJob(name: \"score-snapshot-scheduler\") { id } }",
    ] {
        let r = app.graphql_as(a.token(), m, json!({})).await;
        assert_code(&r, "FORBIDDEN");
    }
    let member = app.add_member(&a, "member@example.com", "MEMBER").await;
    let r = app
        .graphql_as(member.token(), "{ jobQueues { name } }", json!({}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            a.token(),
            "mutation { pauseQueue(queue: \"nope\") { paused } }",
            json!({}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");

    // The operator pauses a queue: triggered work waits; resume lets it run.
    let r = app
        .graphql_as(
            ops.token(),
            "mutation { pauseQueue(queue: \"score-snapshot\") { name paused } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["pauseQueue"]["paused"], true);
    let r = app
        .graphql_as(
            ops.token(),
            "mutation { triggerJob(name: \"score-snapshot-scheduler\") { id } }",
            json!({}),
        )
        .await;
    let fan: Uuid = ok(&r)["triggerJob"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        job(&app.db, fan).await.state,
        state::WAITING,
        "a paused queue is not claimed from"
    );
    let r = app
        .graphql_as(
            ops.token(),
            "{ jobQueues { name waiting paused } }",
            json!({}),
        )
        .await;
    let qs = ok(&r)["jobQueues"].as_array().unwrap().clone();
    let snap = qs.iter().find(|q| q["name"] == "score-snapshot").unwrap();
    assert_eq!(
        (snap["paused"].clone(), snap["waiting"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(qs.len(), jobs::registry::QUEUES.len());
    let r = app
        .graphql_as(
            ops.token(),
            "mutation { resumeQueue(queue: \"score-snapshot\") { paused } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["resumeQueue"]["paused"], false);
    wait_state(&app.db, fan, state::COMPLETED).await;
    // The scheduler job fanned out one capture per organization, and they ran.
    use sea_orm::PaginatorTrait;
    let orgs = entity::organizations::Entity::find()
        .count(&app.db)
        .await
        .unwrap();
    let expected = 1 + 1 + orgs;
    eventually(
        Duration::from_secs(20),
        "the fanned-out snapshots",
        || async {
            let c = queue::counts(&app.db, &["score-snapshot"], None)
                .await
                .unwrap();
            (c[0].completed == expected && c[0].waiting == 0 && c[0].active == 0).then_some(())
        },
    )
    .await;

    // A failing job retries then fails; retryFailedJobs puts it back (own organization only).
    let mut failing = noop(json!({"fail": true}));
    failing.max_attempts = 2;
    failing.backoff_base = Duration::from_millis(50);
    let a_org: Uuid = a.organization_id.parse().unwrap();
    let fid = queue::enqueue(&app.db, failing.organization(a_org))
        .await
        .unwrap()
        .unwrap();
    let failed = wait_state(&app.db, fid, state::FAILED).await;
    assert_eq!(failed.attempts, 2);
    assert!(failed.last_error.unwrap().contains("failing on purpose"));
    let r = app
        .graphql_as(
            b.token(),
            "mutation { retryFailedJobs(queue: \"signal-processing\") }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["retryFailedJobs"], 0);
    let r = app
        .graphql_as(
            a.token(),
            "mutation { retryFailedJobs(queue: \"signal-processing\") }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["retryFailedJobs"], 1);
    wait_state(&app.db, fid, state::FAILED).await;

    // /metrics carries queue depth per queue and state, failures and durations.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let depth =
        format!("devsignal_queue_jobs{{queue=\"score-snapshot\",state=\"completed\"}} {expected}");
    assert!(metrics.contains(&depth), "{depth} not in {metrics}");
    assert!(metrics.contains(
        "devsignal_jobs_finished_total{queue=\"signal-processing\",job=\"noop\",outcome=\"error\"}"
    ));
    assert!(metrics.contains("devsignal_job_duration_seconds_bucket{"));
}

#[tokio::test]
async fn demo_cleanup_deletes_old_demo_organizations_with_their_users() {
    let app = spawn_app().await;
    let (keep, _) = app.two_tenants().await;
    let make = |name: &'static str, demo: bool, hours: i64| {
        let db = app.db.clone();
        async move {
            let id = Uuid::now_v7();
            let at = Utc::now() - chrono::Duration::hours(hours);
            entity::organizations::ActiveModel {
                id: Set(id),
                name: Set(name.into()),
                is_demo: Set(demo),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(&db)
            .await
            .unwrap();
            id
        }
    };
    let old_demo = make("old demo", true, 25).await;
    let new_demo = make("new demo", true, 1).await;
    let old_real = make("old real", false, 48).await;
    // A demo user in the old demo only, and a real user who also joined it.
    let demo_user = app
        .register(
            &format!("demo-{}@example.com", Uuid::new_v4().simple()),
            "x",
        )
        .await;
    for (user, org) in [(&demo_user, old_demo), (&keep, old_demo)] {
        entity::memberships::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(org),
            user_id: Set(user.user_id.parse().unwrap()),
            role: Set("MEMBER".into()),
            created_at: Set(Utc::now()),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    // Its own organization goes too: make it a demo as well.
    let demo_own: Uuid = demo_user.organization_id.parse().unwrap();
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    entity::organizations::Entity::update_many()
        .col_expr(entity::organizations::Column::IsDemo, Expr::value(true))
        .col_expr(
            entity::organizations::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::hours(30)),
        )
        .filter(entity::organizations::Column::Id.eq(demo_own))
        .exec(&app.db)
        .await
        .unwrap();

    let id = jobs_cli_trigger(&app.db, "demo-cleanup-scheduler").await;
    wait_state(&app.db, id, state::COMPLETED).await;
    let exists = |id: Uuid| {
        let db = app.db.clone();
        async move {
            entity::organizations::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!exists(old_demo).await);
    assert!(!exists(demo_own).await);
    assert!(exists(new_demo).await);
    assert!(exists(old_real).await);
    let user = |id: &str| {
        let db = app.db.clone();
        let id: Uuid = id.parse().unwrap();
        async move {
            entity::users::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(
        !user(&demo_user.user_id).await,
        "the demo's own user is gone"
    );
    assert!(
        user(&keep.user_id).await,
        "a user with a real organization stays"
    );
}

async fn jobs_cli_trigger(db: &DatabaseConnection, name: &str) -> Uuid {
    jobs::trigger::trigger(db, name, None).await.unwrap()
}

fn worker_env<'a>(
    db: &'a str,
    port: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("DATABASE_URL", db),
        ("WORKER_HEALTH_PORT", port),
        ("HOST", "127.0.0.1"),
        ("JOB_POLL_INTERVAL_MS", "50"),
        ("SCHEDULER_ENABLED", "false"),
        (
            "ENCRYPTION_KEY",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn a_killed_workers_job_runs_again_on_another_worker() {
    let (t, db) = fresh_db().await;
    let id = queue::enqueue(&db, noop(json!({"sleepMs": 2500})))
        .await
        .unwrap()
        .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port().to_string(), free_port().to_string());
    let lease = [("JOB_LEASE_SECONDS", "2")];
    let mut first = Proc::start(cwd.path(), &["worker"], &worker_env(&t.url, &p1, &lease));
    let running = wait_state(&db, id, state::ACTIVE).await;
    first.kill9();
    assert_eq!(running.attempts, 1);
    let mut second = Proc::start(cwd.path(), &["worker"], &worker_env(&t.url, &p2, &lease));
    let done = wait_state(&db, id, state::COMPLETED).await;
    assert_eq!(done.attempts, 2, "run again after the lease expired");
    assert_eq!(second.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_worker_answers_health_and_on_sigterm_releases_what_it_cannot_finish() {
    let (t, db) = fresh_db().await;
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = worker_env(&t.url, &port, &[("JOB_SHUTDOWN_GRACE_SECONDS", "1")]);
    let mut w = Proc::start(cwd.path(), &["worker"], &env);
    w.wait_for_line("Worker started").await;
    let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "worker");
    assert!(health["uptime"].as_f64().unwrap() >= 0.0);
    // It reports its database and Redis like the server's health does.
    assert_eq!(health["database"], "ok");
    assert_eq!(health["redis"], "disabled", "{health}");
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/health/ready"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // A short job finishes; a long one is still running at SIGTERM: its lease is released.
    let short = queue::enqueue(&db, noop(json!({}))).await.unwrap().unwrap();
    wait_state(&db, short, state::COMPLETED).await;
    let long = queue::enqueue(&db, noop(json!({"sleepMs": 60000})))
        .await
        .unwrap()
        .unwrap();
    wait_state(&db, long, state::ACTIVE).await;
    assert_eq!(w.terminate().code(), Some(0));
    let j = job(&db, long).await;
    assert_eq!(j.state, state::WAITING);
    assert_eq!((j.locked_by, j.attempts), (None, 0));
    let out = w.output().join("\n");
    assert!(out.contains("Processing job"), "{out}");
    assert!(out.contains("Released the leases"), "{out}");
}

#[tokio::test]
async fn serve_without_worker_leaves_jobs_to_workers() {
    let (t, db) = fresh_db().await;
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut s = Proc::start(
        cwd.path(),
        &["serve", "--no-worker"],
        &[
            ("DATABASE_URL", t.url.as_str()),
            ("PORT", &port),
            ("HOST", "127.0.0.1"),
            ("JOB_POLL_INTERVAL_MS", "50"),
        ],
    );
    s.wait_for_line("listening on").await;
    let id = queue::enqueue(&db, noop(json!({}))).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(job(&db, id).await.state, state::WAITING);
    assert_eq!(s.terminate().code(), Some(0));
}

#[tokio::test]
async fn the_jobs_commands_operate_the_queues() {
    let (t, db) = fresh_db().await;
    let env = [("DATABASE_URL", t.url.as_str())];
    let mut failing = noop(json!({}));
    failing.max_attempts = 1;
    let fid = queue::enqueue(&db, failing).await.unwrap().unwrap();
    let c = queue::claim(
        &db,
        &["signal-processing".into()],
        "w",
        Duration::from_secs(30),
        1,
    )
    .await
    .unwrap();
    queue::fail(&db, &c[0], "w", "boom").await.unwrap();
    queue::enqueue(&db, noop(json!({}))).await.unwrap();

    let (code, out, err) = run(&["jobs", "status"], &env).await;
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("signal-processing "))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        vec!["signal-processing", "1", "0", "0", "1", "0", "no"],
        "{out}"
    );
    assert_eq!(out.lines().count(), 1 + jobs::registry::QUEUES.len());

    let (code, out, _) = run(&["jobs", "pause", "signal-processing"], &env).await;
    assert_eq!((code, out.trim()), (0, "paused signal-processing"));
    assert!(
        queue::counts(&db, &["signal-processing"], None)
            .await
            .unwrap()[0]
            .paused
    );
    let (code, _, _) = run(&["jobs", "resume", "signal-processing"], &env).await;
    assert_eq!(code, 0);
    assert!(
        !queue::counts(&db, &["signal-processing"], None)
            .await
            .unwrap()[0]
            .paused
    );
    let (code, _, err) = run(&["jobs", "pause", "no-such-queue"], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("unknown queue"), "{err}");

    let (code, out, _) = run(&["jobs", "show", &fid.to_string()], &env).await;
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (shown["state"].clone(), shown["lastError"].clone()),
        (json!("failed"), json!("boom"))
    );

    let (code, out, _) = run(
        &["jobs", "retry-failed", "signal-processing", "--limit", "5"],
        &env,
    )
    .await;
    assert_eq!(
        (code, out.trim()),
        (0, "re-enqueued 1 failed job(s) of signal-processing")
    );
    assert_eq!(job(&db, fid).await.state, state::WAITING);

    let c = queue::claim(
        &db,
        &["signal-processing".into()],
        "w",
        Duration::from_secs(30),
        5,
    )
    .await
    .unwrap();
    for j in &c {
        queue::complete(&db, j.id, "w").await.unwrap();
    }
    let (code, out, _) = run(
        &[
            "jobs",
            "clean",
            "signal-processing",
            "--completed",
            "--older-than",
            "24h",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.starts_with("deleted 0 completed"), "{out}");
    let (code, out, _) = run(
        &[
            "jobs",
            "clean",
            "signal-processing",
            "--completed",
            "--older-than",
            "0s",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.starts_with("deleted 2 completed"), "{out}");

    let (code, out, _) = run(&["jobs", "trigger", "score-snapshot-scheduler"], &env).await;
    assert_eq!(code, 0);
    let id: Uuid = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(job(&db, id).await.queue, "score-snapshot");
    let (code, _, err) = run(&["jobs", "trigger", "capture-score-snapshot"], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("--org"), "{err}");

    let (code, out, _) = run(&["jobs", "schedules"], &env).await;
    assert_eq!(code, 0);
    // The scheduler's state, the header, one line per entry.
    assert_eq!(
        out.lines().count(),
        2 + jobs::registry::SCHEDULES.len(),
        "{out}"
    );
    for (name, cron) in [
        ("weekly-digest-scheduler", "0 9 * * 1"),
        ("alert-check-scheduler", "*/5 * * * *"),
        ("anomaly-detection-scheduler", "30 * * * *"),
    ] {
        let l = out.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(l.contains(cron), "{l}");
    }
}

#[tokio::test]
async fn jobs_live_in_the_database_so_losing_redis_loses_none() {
    let app = spawn_app().await;
    let (a, _) = app.two_tenants().await;
    queue::set_paused(&app.db, "score-snapshot", true)
        .await
        .unwrap();
    let r = app
        .graphql_as(
            a.token(),
            "mutation { triggerJob(name: \"capture-score-snapshot\") { id } }",
            json!({}),
        )
        .await;
    let id: Uuid = ok(&r)["triggerJob"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Flush every Redis key this server owns (when it has Redis at all).
    if let Some(url) = devsignal_tests::redis_url() {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let prefix = app.state.config.redis_key_prefix.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    queue::set_paused(&app.db, "score-snapshot", false)
        .await
        .unwrap();
    wait_state(&app.db, id, state::COMPLETED).await;
}
