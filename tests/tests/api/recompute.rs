//! Whole-organization recomputes of the scores: `recomputeScores` returns a recompute whose
//! progress reaches its total; a second request while one runs returns the running one; the
//! recompute is tenant data (ADMIN only, invisible to another organization); a crash in the
//! middle of a chunk resumes after the last committed chunk, rescoring every account exactly
//! once; long recomputes hand over to a fresh job; the nightly recompute pages through every
//! scorable account.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use devsignal_tests::bench::{api_source, load_fixture};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app};
use domain::scoring::Chunk;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const QUEUE: &str = "score-computation";
const START: &str =
    "mutation { recomputeScores { id status processed total jobId startedAt finishedAt } }";
const READ: &str = "query($id: ID!) { scoreRecompute(id: $id) { id status processed total lastError finishedAt } }";

/// An organization with `n` accounts (each with signals of the last 30 days, 80 % already
/// scored) loaded in bulk, its score queue paused so that nothing runs unless the test says so.
async fn organization(app: &TestApp, email: &str, n: usize) -> (Session, Uuid) {
    domain::queue::set_paused(&app.db, QUEUE, true)
        .await
        .unwrap();
    let s = app.register(email, "Recompute").await;
    let org = Uuid::parse_str(&s.organization_id).unwrap();
    let key = app.api_key(&s, &["signals:write"]).await;
    let source = api_source(app, &key, &app.db, org).await;
    load_fixture(&app.db, org, source, n).await;
    (s, org)
}

async fn read(app: &TestApp, s: &Session, id: &str) -> Value {
    let r = app.graphql_as(s.token(), READ, json!({"id": id})).await;
    ok(&r)["scoreRecompute"].clone()
}

/// Each scored account's `computed_at`.
async fn computed_at(db: &DatabaseConnection, org: Uuid) -> HashMap<Uuid, DateTime<Utc>> {
    entity::account_scores::Entity::find()
        .filter(entity::account_scores::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.account_id, s.computed_at))
        .collect()
}

#[tokio::test]
async fn recompute_scores_is_a_job_whose_progress_reaches_its_total() {
    let app = spawn_app().await;
    let (s, _) = organization(&app, "owner@recompute.test", 30).await;

    let r = app.graphql_as(s.token(), START, json!({})).await;
    let started = ok(&r)["recomputeScores"].clone();
    assert_eq!(started["status"], "RUNNING", "{started}");
    assert_eq!(started["processed"], 0);
    assert_eq!(started["total"], 30, "every account has recent signals");
    assert!(started["jobId"].is_string());
    assert!(started["finishedAt"].is_null());
    let id = started["id"].as_str().unwrap().to_owned();

    // While it runs (its queue is paused), asking again returns the running one.
    let r = app.graphql_as(s.token(), START, json!({})).await;
    assert_eq!(ok(&r)["recomputeScores"]["id"], id.as_str());

    // Only an ADMIN starts or reads one; another organization cannot see it at all.
    let member = app.add_member(&s, "member@recompute.test", "MEMBER").await;
    let r = app.graphql_as(member.token(), START, json!({})).await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(member.token(), READ, json!({"id": id}))
        .await;
    assert_code(&r, "FORBIDDEN");
    let other = app.register("owner@other-recompute.test", "Other").await;
    let r = app.graphql_as(other.token(), READ, json!({"id": id})).await;
    assert_code(&r, "NOT_FOUND");
    let r = app
        .graphql_as(s.token(), READ, json!({"id": "not-an-id"}))
        .await;
    assert_code(&r, "NOT_FOUND");
    // The other organization's own recompute is a different one, over its own accounts.
    let r = app.graphql_as(other.token(), START, json!({})).await;
    let theirs = ok(&r)["recomputeScores"].clone();
    assert_ne!(theirs["id"], id.as_str());
    assert_eq!(theirs["total"], 0);

    domain::queue::set_paused(&app.db, QUEUE, false)
        .await
        .unwrap();
    let done = eventually(
        Duration::from_secs(30),
        "the recompute to complete",
        || async {
            let rc = read(&app, &s, &id).await;
            (rc["status"] == "COMPLETED").then_some(rc)
        },
    )
    .await;
    assert_eq!(done["processed"], 30, "{done}");
    assert_eq!(done["total"], 30, "{done}");
    assert!(done["finishedAt"].is_string());
    assert!(done["lastError"].is_null());

    // Finished: the next request starts a new one.
    let r = app.graphql_as(s.token(), START, json!({})).await;
    assert_ne!(ok(&r)["recomputeScores"]["id"], id.as_str());
}

#[tokio::test]
async fn a_recompute_resumes_after_a_crash_and_rescores_each_account_exactly_once() {
    let app = spawn_app().await;
    // Three keyset pages of 500, the last one short.
    let n = 1_200;
    let (s, org) = organization(&app, "crash@recompute.test", n).await;
    let r = app.graphql_as(s.token(), START, json!({})).await;
    let started = ok(&r)["recomputeScores"].clone();
    assert_eq!(started["total"], n);
    let id = Uuid::parse_str(started["id"].as_str().unwrap()).unwrap();
    let first_job = Uuid::parse_str(started["jobId"].as_str().unwrap()).unwrap();
    let before = computed_at(&app.db, org).await;

    // The first chunk commits with its cursor.
    assert_eq!(
        domain::scoring::recompute_chunk(&app.db, id).await.unwrap(),
        Chunk::Scored(500)
    );
    let after_first = computed_at(&app.db, org).await;
    let first: HashSet<Uuid> = after_first
        .iter()
        .filter(|(a, t)| before.get(*a) != Some(*t))
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(first.len(), 500);
    assert_eq!(read(&app, &s, &id.to_string()).await["processed"], 500);

    // A crash in the middle of the second: its scores are written, but never committed.
    let txn = domain::db::begin(&app.db).await.unwrap();
    assert_eq!(
        domain::scoring::recompute_chunk_in(&txn, id).await.unwrap(),
        Chunk::Scored(500)
    );
    drop(txn);
    assert_eq!(computed_at(&app.db, org).await, after_first);
    let rc = read(&app, &s, &id.to_string()).await;
    assert_eq!(
        (rc["status"].as_str(), rc["processed"].as_i64()),
        (Some("RUNNING"), Some(500))
    );

    // The job runs again (the lease of the crashed worker expired): one chunk, then it hands
    // over to a fresh job.
    let step = domain::scoring::recompute_step(&app.db, id, first_job, 1)
        .await
        .unwrap();
    assert_eq!((step.scored, step.finished), (500, false));
    let row = entity::score_recomputes::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let next_job = row.job_id.unwrap();
    assert_ne!(next_job, first_job);
    assert_eq!(row.processed, 1_000);
    // The superseded job, should it run again, does nothing.
    let stale = domain::scoring::recompute_step(&app.db, id, first_job, 20)
        .await
        .unwrap();
    assert_eq!((stale.scored, stale.finished), (0, true));

    // The fresh job, run by its handler, finishes the rest.
    let job = domain::queue::get(&app.db, next_job)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.name, "recompute-scores");
    let ctx = jobs::Context {
        db: app.db.clone(),
        connectors: app.state.connectors.clone(),
        score_history_days: app.state.config.score_history_days,
        retention: app.state.config.retention,
        notifier: app.state.notifier(),
        data_dir: app.state.config.data_dir.clone(),
    };
    jobs::registry::run_job(ctx, job).await.unwrap();
    let rc = read(&app, &s, &id.to_string()).await;
    assert_eq!(rc["status"], "COMPLETED", "{rc}");
    assert_eq!(
        (rc["processed"].as_i64(), rc["total"].as_i64()),
        (Some(n as i64), Some(n as i64))
    );

    // Every account was rescored: none skipped, and those of the first chunk not again.
    let end = computed_at(&app.db, org).await;
    assert_eq!(end.len(), n);
    for (account, t) in &end {
        if first.contains(account) {
            assert_eq!(Some(t), after_first.get(account), "rescored twice");
        } else {
            assert!(before.get(account).is_none_or(|b| t > b), "skipped");
        }
    }
    // And no account's score changed twice.
    let changed = entity::events::Entity::find()
        .filter(entity::events::Column::OrganizationId.eq(org))
        .filter(entity::events::Column::EventType.eq("score.changed"))
        .all(&app.db)
        .await
        .unwrap();
    let mut seen = HashSet::new();
    for e in &changed {
        let account = e.payload["accountId"].as_str().unwrap().to_owned();
        assert!(seen.insert(account), "two score.changed for one account");
    }
    assert!(!changed.is_empty());

    // Not running any more: a chunk does nothing.
    assert_eq!(
        domain::scoring::recompute_chunk(&app.db, id).await.unwrap(),
        Chunk::NotRunning
    );
}

#[tokio::test]
async fn the_nightly_recompute_pages_through_every_scorable_account() {
    let app = spawn_app().await;
    let n = 1_100;
    let (_, org) = organization(&app, "nightly@recompute.test", n).await;
    let before = computed_at(&app.db, org).await;
    let scored = domain::scoring::rescore_organization(&app.db, org)
        .await
        .unwrap();
    assert_eq!(scored, n);
    let after = computed_at(&app.db, org).await;
    assert_eq!(after.len(), n);
    assert!(
        after
            .iter()
            .all(|(a, t)| before.get(a).is_none_or(|b| t > b))
    );
}

#[tokio::test]
async fn a_recompute_whose_job_failed_for_good_is_marked_failed() {
    let app = spawn_app().await;
    let (s, _) = organization(&app, "failed@recompute.test", 10).await;
    let r = app.graphql_as(s.token(), START, json!({})).await;
    let started = ok(&r)["recomputeScores"].clone();
    let id = started["id"].as_str().unwrap().to_owned();
    let job_id = Uuid::parse_str(started["jobId"].as_str().unwrap()).unwrap();
    // Its job used up its attempts elsewhere (e.g. the worker was lost on the last one).
    domain::scoring::fail_recompute(
        &app.db,
        Uuid::parse_str(&id).unwrap(),
        "the recompute failed and its attempts are used up; start it again",
    )
    .await
    .unwrap();
    let rc = read(&app, &s, &id).await;
    assert_eq!(rc["status"], "FAILED");
    assert!(rc["lastError"].as_str().unwrap().contains("start it again"));
    // A failed recompute does not block the next one.
    let r = app.graphql_as(s.token(), START, json!({})).await;
    let next = ok(&r)["recomputeScores"].clone();
    assert_ne!(next["id"], id.as_str());
    assert_eq!(next["status"], "RUNNING");
    // A running recompute whose job is gone is given up when asked again.
    entity::jobs::Entity::delete_many()
        .filter(entity::jobs::Column::Id.ne(job_id))
        .filter(entity::jobs::Column::Name.eq("recompute-scores"))
        .exec(&app.db)
        .await
        .unwrap();
    let r = app.graphql_as(s.token(), START, json!({})).await;
    let third = ok(&r)["recomputeScores"].clone();
    assert_ne!(third["id"], next["id"]);
    let rc = read(&app, &s, next["id"].as_str().unwrap()).await;
    assert_eq!(rc["status"], "FAILED");
}

/// The latest signal (`lastSignalAt`, and the days since it among the factors' inputs) is the
/// latest ever, also for an account without a signal in the 90-day window (read apart) and for
/// one whose older signals lie outside it (read from the window's own signals), through the
/// debounced rescore and the nightly recompute alike.
#[tokio::test]
async fn the_latest_signal_counts_whether_or_not_it_is_in_the_window() {
    use chrono::{SecondsFormat, SubsecRound};
    let app = spawn_app().await;
    let s = app.register("latest@recompute.test", "Latest").await;
    let org = Uuid::parse_str(&s.organization_id).unwrap();
    let ago = |d: i64| (Utc::now() - chrono::Duration::days(d)).trunc_subsecs(0);
    let (quiet_last, busy_last) = (ago(100), ago(2));
    let signal = |t: DateTime<Utc>, email: &str| {
        json!({"type": "api_call", "timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, true),
               "actor": {"email": email}})
    };
    let inputs = vec![
        signal(ago(120), "a@quiet-latest.io"),
        signal(quiet_last, "b@quiet-latest.io"),
        signal(ago(150), "a@busy-latest.io"),
        signal(ago(5), "a@busy-latest.io"),
        signal(busy_last, "b@busy-latest.io"),
    ];
    let r = app
        .graphql_as(
            s.token(),
            "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } } }",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], 5);

    const SCORES: &str = "{ accounts(first: 10) { edges { node { domain score { signalCount lastSignalAt computedAt factors { name inputs } } } } } }";
    let scores = || async {
        let r = app.graphql_as(s.token(), SCORES, json!({})).await;
        let mut by_domain = HashMap::new();
        for e in ok(&r)["accounts"]["edges"].as_array().unwrap() {
            let node = &e["node"];
            if !node["score"].is_null() {
                by_domain.insert(
                    node["domain"].as_str().unwrap().to_owned(),
                    node["score"].clone(),
                );
            }
        }
        by_domain
    };
    let check = |by_domain: &HashMap<String, Value>| {
        for (domain, last, in_window) in [
            ("quiet-latest.io", quiet_last, 0),
            ("busy-latest.io", busy_last, 2),
        ] {
            let score = &by_domain[domain];
            let at: DateTime<Utc> = score["lastSignalAt"].as_str().unwrap().parse().unwrap();
            assert_eq!(at, last, "{domain}: {score}");
            assert_eq!(score["signalCount"], in_window, "{domain}: {score}");
            let activity = score["factors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "recent_activity")
                .unwrap();
            let days = activity["inputs"]["daysSinceLastSignal"].as_f64().unwrap();
            let want = (Utc::now() - last).num_seconds() as f64 / 86_400.0;
            assert!(
                (days - want).abs() < 0.02,
                "{domain}: {days} days, not {want}"
            );
        }
    };
    // The debounced rescore that the ingest asked for.
    let first = eventually(
        Duration::from_secs(20),
        "both accounts to be scored",
        || async {
            let by_domain = scores().await;
            (by_domain.len() == 2).then_some(by_domain)
        },
    )
    .await;
    check(&first);
    // The nightly recompute: both are scorable (one has a score, the other recent signals).
    let scored = domain::scoring::rescore_organization(&app.db, org)
        .await
        .unwrap();
    assert_eq!(scored, 2);
    let again = scores().await;
    check(&again);
    for (domain, score) in &again {
        assert_ne!(score["computedAt"], first[domain]["computedAt"], "{domain}");
    }
}
