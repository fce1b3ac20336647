//! Signals and events by month: on PostgreSQL both tables are partitioned by month and the
//! daily `partition-maintenance` job keeps partitions ahead of time and drops the months past
//! `SIGNAL_RETENTION_MONTHS` / `EVENT_RETENTION_MONTHS` whole; on SQLite it deletes those rows.
//! An idempotency key stays unique per organization although PostgreSQL cannot index it so:
//! ingest claims it (and the people it may create) with a row of `ingest_claims`, which the same
//! job deletes a day later.

use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use devsignal_tests::{Session, TestApp, eventually, spawn_app, spawn_app_with};
use domain::partitions::{self, Retention, Table};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const INGEST: &str =
    "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id } } }";

async fn ingest(app: &TestApp, s: &Session, email: &str, at: DateTime<Utc>) -> Uuid {
    let r = app
        .graphql_as(
            s.token(),
            INGEST,
            json!({"input": {"type": "repo_star", "actor": {"email": email},
                   "timestamp": at.to_rfc3339()}}),
        )
        .await;
    ok(&r)["ingestSignal"]["signal"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn signal_ids(app: &TestApp, s: &Session) -> Vec<String> {
    let r = app
        .graphql_as(
            s.token(),
            "{ signals(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let mut ids: Vec<String> = ok(&r)["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn scalar(app: &TestApp, sql: &str) -> String {
    let row = app
        .db
        .query_one_raw(Statement::from_string(app.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

/// The partition a signal is stored in (PostgreSQL).
async fn home(app: &TestApp, id: Uuid) -> String {
    scalar(
        app,
        &format!("SELECT tableoid::regclass::text FROM signals WHERE id = '{id}'"),
    )
    .await
}

fn months_ago(n: u32) -> DateTime<Utc> {
    Utc::now() - Months::new(n)
}

#[tokio::test]
async fn the_daily_job_drops_what_is_past_retention_and_keeps_the_rest() {
    let operator = format!("ops-{}@example.com", Uuid::new_v4().simple());
    let app = spawn_app_with(&[
        ("PLATFORM_ADMINS", &operator),
        ("SIGNAL_RETENTION_MONTHS", "4"),
        ("EVENT_RETENTION_MONTHS", "1"),
    ])
    .await;
    let (a, b) = app.two_tenants().await;
    let ops = app.register(&operator, "Operators").await;
    let old = ingest(&app, &a, "old@acme.io", months_ago(8)).await;
    let kept = ingest(&app, &a, "kept@acme.io", months_ago(2)).await;
    let new = ingest(&app, &a, "new@acme.io", Utc::now()).await;
    let other_old = ingest(&app, &b, "old@globex.io", months_ago(8)).await;
    let postgres = app.db.get_database_backend() == DbBackend::Postgres;
    let eight_months_ago = Table::Signals.partition(partitions::month_of(months_ago(8)));
    if postgres {
        assert_eq!(home(&app, old).await, eight_months_ago);
    }
    // Two of the events happened three months ago (the signals' events happen at ingest).
    let seqs = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            db.query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT seq FROM events ORDER BY seq",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0).unwrap())
            .collect::<Vec<i64>>()
        }
    };
    let before = seqs(&app).await;
    assert!(before.len() > 2, "{before:?}");
    entity::events::Entity::update_many()
        .col_expr(
            entity::events::Column::OccurredAt,
            sea_orm::sea_query::Expr::value(months_ago(3)),
        )
        .filter(entity::events::Column::Seq.is_in([before[0], before[1]]))
        .exec(&app.db)
        .await
        .unwrap();

    // Only a platform operator runs it; it runs on the worker.
    let trigger = "mutation { triggerJob(name: \"partition-maintenance\") { id queue } }";
    let r = app.graphql_as(a.token(), trigger, json!({})).await;
    assert!(r["errors"].is_array(), "{r}");
    let r = app.graphql_as(ops.token(), trigger, json!({})).await;
    assert_eq!(ok(&r)["triggerJob"]["queue"], "maintenance");
    let id: Uuid = ok(&r)["triggerJob"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    eventually(Duration::from_secs(20), "the job to complete", || async {
        let j = entity::jobs::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .unwrap()?;
        assert_ne!(j.state, "failed", "{:?}", j.last_error);
        (j.state == "completed").then_some(())
    })
    .await;

    let mut expected = vec![kept.to_string(), new.to_string()];
    expected.sort();
    assert_eq!(signal_ids(&app, &a).await, expected);
    assert!(signal_ids(&app, &b).await.is_empty(), "{other_old}");
    let after = seqs(&app).await;
    assert!(
        !after.contains(&before[0]) && !after.contains(&before[1]),
        "{after:?}"
    );
    assert!(
        before[2..].iter().all(|s| after.contains(s)),
        "{before:?} {after:?}"
    );
    if postgres {
        // Whole months went: none older than the retention is left, and the current month and
        // the two ahead exist.
        let left = partitions::partitions(&app.db, Table::Signals)
            .await
            .unwrap();
        assert!(!left.contains(&eight_months_ago), "{left:?}");
        let cutoff = partitions::cutoff(Utc::now(), 4);
        let first = Table::Signals.partition(partitions::month_of(cutoff));
        assert_eq!(left.first(), Some(&first), "{left:?}");
        let ahead = Table::Signals.partition(partitions::month_of(months_ahead(2)));
        assert_eq!(left.last(), Some(&ahead), "{left:?}");
        let events = partitions::partitions(&app.db, Table::Events)
            .await
            .unwrap();
        let first =
            Table::Events.partition(partitions::month_of(partitions::cutoff(Utc::now(), 1)));
        assert_eq!(events.first(), Some(&first), "{events:?}");
    }
}

fn months_ahead(n: u32) -> DateTime<Utc> {
    Utc::now() + Months::new(n)
}

#[tokio::test]
async fn without_retention_nothing_is_deleted() {
    let app = spawn_app().await;
    let s = app.register("keep@all.test", "Keep").await;
    ingest(&app, &s, "ancient@acme.io", months_ago(30)).await;
    ingest(&app, &s, "recent@acme.io", Utc::now()).await;
    let report = partitions::maintain(&app.db, Utc::now(), Retention::default())
        .await
        .unwrap();
    assert!(
        report.dropped.is_empty() && report.deleted == 0,
        "{report:?}"
    );
    assert_eq!(signal_ids(&app, &s).await.len(), 2);
}

#[tokio::test]
async fn on_postgres_months_come_ahead_of_time_and_history_leaves_the_default_partition() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let s = app.register("history@parts.test", "History").await;
    // Older than the months given a partition at the start: the DEFAULT partition holds it.
    let ancient = ingest(&app, &s, "ancient@acme.io", months_ago(20)).await;
    assert_eq!(home(&app, ancient).await, "signals_default");

    // Today nothing is missing.
    let report = partitions::maintain(&app.db, Utc::now(), Retention::default())
        .await
        .unwrap();
    assert_eq!(report, partitions::Report::default());

    // Three months on, three months more exist ahead.
    let later = partitions::maintain(&app.db, months_ahead(3), Retention::default())
        .await
        .unwrap();
    assert_eq!(later.created.len(), 6, "{later:?}");
    for n in 3..=5 {
        let name = Table::Signals.partition(partitions::month_of(months_ahead(n)));
        assert!(later.created.contains(&name), "{name}: {later:?}");
    }

    // Seen from a time when the signal's month is in the window, its month is created and the
    // signal moves in, still readable.
    let then = partitions::maintain(&app.db, months_ago(19), Retention::default())
        .await
        .unwrap();
    assert_eq!(then.moved, 1, "{then:?}");
    let month = Table::Signals.partition(partitions::month_of(months_ago(20)));
    assert_eq!(home(&app, ancient).await, month);
    assert_eq!(signal_ids(&app, &s).await, vec![ancient.to_string()]);

    // A query bounded in time on both ends reads only its months (one open at the top also
    // reads the default partition, which may hold rows past the last month).
    let plan = app
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "EXPLAIN SELECT id FROM signals WHERE organization_id = '{}' \
                 AND \"timestamp\" >= '{}' AND \"timestamp\" < '{}'",
                s.organization_id,
                (Utc::now() - chrono::Duration::days(90)).to_rfc3339(),
                (Utc::now() + chrono::Duration::days(1)).to_rfc3339()
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!plan.contains(&month), "{plan}");
    assert!(!plan.contains("signals_default"), "{plan}");
    let current = Table::Signals.partition(partitions::month_of(Utc::now()));
    assert!(plan.contains(&current), "{plan}");
}

#[tokio::test]
async fn one_idempotency_key_is_one_signal_under_concurrent_requests() {
    let app = spawn_app().await;
    let s = app.register("idem@parts.test", "Idem").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = app.client.clone();
        let url = app.url("/api/v1/signals");
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .bearer_auth(key)
                .json(
                    &json!({"type": "signup", "actor": {"email": format!("p{i}@race.io")},
                              "idempotencyKey": "same-key"}),
                )
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status == 201 || status == 200, "{status} {body}");
        created += usize::from(status == 201);
    }
    assert_eq!(created, 1);
    assert_eq!(signal_ids(&app, &s).await.len(), 1);
}

/// Four concurrent batches of a thousand signals, each naming a new person (email, GitHub, npm,
/// Twitter/X) at two new domains and a new GitHub organization, with a new idempotency
/// key: 32,000 things the batches may create at once. On PostgreSQL each is claimed by a row of
/// `ingest_claims`. With one advisory lock each they overflowed PostgreSQL's shared lock table
/// (about 20,000 locks with the default `max_locks_per_transaction` of 64 and 100 connections,
/// measured), and the batches failed "out of shared memory".
#[tokio::test]
async fn four_concurrent_batches_of_a_thousand_new_people_all_land() {
    // What is tested is the claims, not the deadline: four batches of a thousand new people at
    // once take a debug build on a loaded two-core machine past the default 10 s.
    let app = spawn_app_with(&[("REQUEST_TIMEOUT_MS", "120000")]).await;
    // SQLite has neither claims nor a lock table; its writers take turns, and under a loaded
    // test run the fourth batch can wait past the busy timeout (a 503 to retry).
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let s = app.register("bulk@claims.test", "Bulk").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    // The harness's client gives up after 30 s; these batches get the server's deadline.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(150))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for b in 0..4 {
        let c = client.clone();
        let url = app.url("/api/v1/signals/batch");
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let signals: Vec<Value> = (0..1000)
                .map(|j| {
                    json!({"type": "signup",
                           "actor": {"email": format!("u{b}-{j}@d{b}-{j}.io"),
                                     "github": format!("gh{b}-{j}"), "npm": format!("np{b}-{j}"),
                                     "twitter": format!("tw{b}_{j}")},
                           "account": {"domain": format!("a{b}-{j}.com"),
                                       "githubOrg": format!("org{b}-{j}")},
                           "idempotencyKey": format!("bulk-{b}-{j}")})
                })
                .collect();
            let r = c
                .post(url)
                .bearer_auth(key)
                .json(&json!({"signals": signals}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{}", body["results"][0]);
        assert_eq!(body["summary"]["succeeded"], 1000, "{}", body["summary"]);
    }
    let r = app
        .graphql_as(
            s.token(),
            "{ signals { totalCount } contacts { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 4000);
    assert_eq!(ok(&r)["contacts"]["totalCount"], 4000);
    if app.db.get_database_backend() == DbBackend::Postgres {
        // Per item: four identities, two domains, a GitHub organization, an idempotency key.
        let org = &s.organization_id;
        let claims =
            format!("SELECT COUNT(*)::text FROM ingest_claims WHERE organization_id = '{org}'");
        assert_eq!(scalar(&app, &claims).await, "32000");
    }
}

/// Inserts a claim as an ended batch would have left it, `age` ago.
async fn leave_claim(app: &TestApp, org: &str, what: &str, age: chrono::Duration) {
    let claim = domain::db::lock_key(org.parse().unwrap(), what);
    let at = Utc::now() - age;
    app.db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO ingest_claims (claim, organization_id, claimed_at) VALUES ($1, $2, $3)",
            [claim.into(), org.parse::<Uuid>().unwrap().into(), at.into()],
        ))
        .await
        .unwrap();
}

/// A claim an earlier batch left behind for a key whose signal is not stored (that batch failed
/// the item, or the signal was deleted since) does not keep the key from being stored.
#[tokio::test]
async fn a_claim_left_by_an_ended_batch_does_not_keep_a_signal_out() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let s = app.register("stale@claims.test", "Stale").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    leave_claim(
        &app,
        &s.organization_id,
        "idempotency:left-behind",
        chrono::Duration::minutes(5),
    )
    .await;
    leave_claim(
        &app,
        &s.organization_id,
        "email:ada@left.io",
        chrono::Duration::minutes(5),
    )
    .await;
    let send = || async {
        app.client
            .post(app.url("/api/v1/signals"))
            .bearer_auth(&key)
            .json(&json!({"type": "signup", "actor": {"email": "ada@left.io"},
                          "idempotencyKey": "left-behind"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send().await, 201);
    assert_eq!(send().await, 200, "the second time it is a repeat");
    assert_eq!(signal_ids(&app, &s).await.len(), 1);
    let org = &s.organization_id;
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT COUNT(*)::text FROM contacts WHERE organization_id = '{org}'")
        )
        .await,
        "1"
    );
}

#[tokio::test]
async fn the_daily_job_deletes_claims_older_than_a_day() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let s = app.register("old@claims.test", "Old").await;
    let org = s.organization_id.clone();
    leave_claim(
        &app,
        &org,
        "email:old@claims.io",
        chrono::Duration::hours(25),
    )
    .await;
    leave_claim(
        &app,
        &org,
        "email:new@claims.io",
        chrono::Duration::hours(23),
    )
    .await;
    let report = partitions::maintain(&app.db, Utc::now(), Retention::default())
        .await
        .unwrap();
    assert!(report.claims >= 1, "{report:?}");
    let left = scalar(
        &app,
        &format!("SELECT COUNT(*)::text FROM ingest_claims WHERE organization_id = '{org}'"),
    )
    .await;
    assert_eq!(left, "1", "the claim of 23 hours ago stays");
}

#[test]
fn a_retention_too_short_or_not_a_number_is_refused_at_start() {
    for (var, value) in [
        ("SIGNAL_RETENTION_MONTHS", "3"),
        ("SIGNAL_RETENTION_MONTHS", "six"),
        ("EVENT_RETENTION_MONTHS", "0"),
    ] {
        let vars =
            devsignal_tests::test_vars(&devsignal_tests::TestDatabase::sqlite(), &[(var, value)]);
        let problems = server::config::Config::from_vars(&vars).unwrap_err();
        assert!(
            problems.0.iter().any(|p| p.var == var),
            "{var}={value}: {:?}",
            problems.0.iter().map(|p| &p.var).collect::<Vec<_>>()
        );
    }
}
