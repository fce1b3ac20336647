//! Score history: the nightly `capture-score-snapshot` stores one snapshot per scored account
//! per UTC day (idempotent per day) and prunes those older than `SCORE_HISTORY_DAYS`;
//! `Account.scoreHistory` and `scoreTrends` read them back; an account's trend compares with
//! its score a week ago; bad `days` are refused; another organization sees none of it.
//! Past days are prepared by writing snapshots directly, as the job would have on those days.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app, spawn_app_with};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const INGEST_MANY: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } } }";
const ACCOUNTS: &str =
    "{ accounts(first: 50) { edges { node { id domain score { score tier trend } } } } }";
const HISTORY: &str = "query($id: ID!, $days: Int) { account(id: $id) { scoreHistory(days: $days) { date score tier signalCount userCount } } }";
const TRENDS: &str = "query($days: Int) { scoreTrends(days: $days) { date hot warm cold inactive accounts averageScore } }";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(ago: i64) -> NaiveDate {
    today() - chrono::Duration::days(ago)
}

/// Ingests `people` signals at `domain` (one person each) and waits until its score is stored.
async fn scored_account(app: &TestApp, s: &Session, domain: &str, people: usize) -> (Uuid, Value) {
    let inputs: Vec<Value> = (0..people)
        .map(|i| {
            json!({"type": if i % 2 == 0 { "api_call" } else { "repo_star" },
                   "actor": {"email": format!("p{i}@{domain}")}, "metadata": {"i": i}})
        })
        .collect();
    let r = app
        .graphql_as(s.token(), INGEST_MANY, json!({"inputs": inputs}))
        .await;
    assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], people);
    eventually(
        Duration::from_secs(20),
        "the account to be scored",
        || async {
            let r = app.graphql_as(s.token(), ACCOUNTS, json!({})).await;
            ok(&r)["accounts"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["node"]["domain"] == domain && !e["node"]["score"].is_null())
                .map(|e| {
                    let id = Uuid::parse_str(e["node"]["id"].as_str().unwrap()).unwrap();
                    (id, e["node"]["score"].clone())
                })
        },
    )
    .await
}

/// Triggers the organization's nightly job and waits until it completed.
async fn run_nightly(app: &TestApp, s: &Session) {
    let r = app
        .graphql_as(
            s.token(),
            "mutation { triggerJob(name: \"capture-score-snapshot\") { id } }",
            json!({}),
        )
        .await;
    let id = ok(&r)["triggerJob"]["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(20),
        "the nightly job to complete",
        || async {
            let r = app
                .graphql_as(
                    s.token(),
                    "{ jobs(first: 100) { edges { node { id state lastError } } } }",
                    json!({}),
                )
                .await;
            let jobs = ok(&r)["jobs"]["edges"].as_array().unwrap().clone();
            let job = jobs.iter().find(|j| j["node"]["id"] == id.as_str())?;
            assert_ne!(job["node"]["state"], "failed", "{job}");
            (job["node"]["state"] == "completed").then_some(())
        },
    )
    .await;
}

async fn snapshot_count(app: &TestApp, org: Uuid) -> u64 {
    entity::score_snapshots::Entity::find()
        .filter(entity::score_snapshots::Column::OrganizationId.eq(org))
        .count(&app.db)
        .await
        .unwrap()
}

async fn put_snapshot(
    app: &TestApp,
    org: Uuid,
    account: Uuid,
    day: NaiveDate,
    score: i32,
    tier: &str,
) {
    entity::score_snapshots::ActiveModel {
        organization_id: Set(org),
        account_id: Set(account),
        day: Set(day),
        score: Set(score),
        tier: Set(tier.into()),
        signal_count: Set(score / 10),
        user_count: Set(1),
        captured_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await
    .unwrap();
}

async fn history(app: &TestApp, s: &Session, account: Uuid, days: Option<i32>) -> Vec<Value> {
    let r = match days {
        Some(days) => {
            app.graphql_as(s.token(), HISTORY, json!({"id": account, "days": days}))
                .await
        }
        // The default.
        None => {
            app.graphql_as(
                s.token(),
                "query($id: ID!) { account(id: $id) { scoreHistory { date score tier signalCount userCount } } }",
                json!({"id": account}),
            )
            .await
        }
    };
    ok(&r)["account"]["scoreHistory"]
        .as_array()
        .unwrap()
        .clone()
}

async fn trends(app: &TestApp, s: &Session, days: i32) -> Vec<Value> {
    let r = app
        .graphql_as(s.token(), TRENDS, json!({"days": days}))
        .await;
    ok(&r)["scoreTrends"].as_array().unwrap().clone()
}

fn org_of(s: &Session) -> Uuid {
    Uuid::parse_str(&s.organization_id).unwrap()
}

#[tokio::test]
async fn the_nightly_job_captures_one_snapshot_per_account_per_day() {
    let app = spawn_app().await;
    let s = app.register("owner@history.test", "History").await;
    let (a, _) = scored_account(&app, &s, "alpha.io", 3).await;
    let (b, _) = scored_account(&app, &s, "beta.io", 1).await;
    assert!(history(&app, &s, a, None).await.is_empty());

    run_nightly(&app, &s).await;
    run_nightly(&app, &s).await;
    assert_eq!(
        snapshot_count(&app, org_of(&s)).await,
        2,
        "a second capture the same day replaces the first"
    );

    // What was captured is the score the nightly recompute stored.
    let r = app.graphql_as(s.token(), ACCOUNTS, json!({})).await;
    let current = |id: Uuid| {
        ok(&r)["accounts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == id.to_string().as_str())
            .unwrap()["node"]["score"]
            .clone()
    };
    for id in [a, b] {
        let h = history(&app, &s, id, Some(7)).await;
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["date"], today().to_string());
        assert_eq!(h[0]["score"], current(id)["score"]);
        assert_eq!(h[0]["tier"], current(id)["tier"]);
    }
    let h = history(&app, &s, a, None).await;
    assert_eq!(h[0]["userCount"], 3);
    assert_eq!(h[0]["signalCount"], 3);

    let t = trends(&app, &s, 7).await;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["date"], today().to_string());
    assert_eq!(t[0]["accounts"], 2);
    let (sa, sb) = (
        current(a)["score"].as_i64().unwrap(),
        current(b)["score"].as_i64().unwrap(),
    );
    assert_eq!(
        t[0]["averageScore"].as_f64().unwrap(),
        ((sa + sb) as f64 / 2.0 * 10.0).round() / 10.0
    );
    let per_tier: i64 = ["hot", "warm", "cold", "inactive"]
        .iter()
        .map(|k| t[0][*k].as_i64().unwrap())
        .sum();
    assert_eq!(per_tier, 2);
    for id in [a, b] {
        let tier = current(id)["tier"].as_str().unwrap().to_lowercase();
        assert!(t[0][tier.as_str()].as_i64().unwrap() >= 1, "{t:?}");
    }
}

#[tokio::test]
async fn history_and_trends_read_the_days_asked_for_oldest_first() {
    let app = spawn_app().await;
    let s = app.register("days@history.test", "Days").await;
    let (a, _) = scored_account(&app, &s, "gamma.io", 1).await;
    let (b, _) = scored_account(&app, &s, "delta.io", 1).await;
    let org = org_of(&s);
    // Ten past days for a (scores 10, 20, … 100 from 10 days ago to yesterday), two for b.
    for ago in 1..=10 {
        let score = (11 - ago) as i32 * 10;
        let tier = match score {
            80.. => "HOT",
            50.. => "WARM",
            20.. => "COLD",
            _ => "INACTIVE",
        };
        put_snapshot(&app, org, a, day(ago), score, tier).await;
    }
    put_snapshot(&app, org, b, day(2), 30, "COLD").await;
    put_snapshot(&app, org, b, day(1), 60, "WARM").await;

    // days = 5: today and the four days before (yesterday back to 4 days ago).
    let h = history(&app, &s, a, Some(5)).await;
    let dates: Vec<&str> = h.iter().map(|p| p["date"].as_str().unwrap()).collect();
    let want: Vec<String> = (1..=4).rev().map(|ago| day(ago).to_string()).collect();
    assert_eq!(dates, want.iter().map(String::as_str).collect::<Vec<_>>());
    let scores: Vec<i64> = h.iter().map(|p| p["score"].as_i64().unwrap()).collect();
    assert_eq!(scores, vec![70, 80, 90, 100]);
    // The default is 90 days: all ten.
    assert_eq!(history(&app, &s, a, None).await.len(), 10);

    // Both accounts' histories in one page (one loader batch).
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 10) { edges { node { domain scoreHistory(days: 3) { score } } } } }",
            json!({}),
        )
        .await;
    let mut by_domain: Vec<(String, Vec<i64>)> = ok(&r)["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["domain"].as_str().unwrap().to_owned(),
                e["node"]["scoreHistory"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["score"].as_i64().unwrap())
                    .collect(),
            )
        })
        .collect();
    by_domain.sort();
    assert_eq!(
        by_domain,
        vec![
            ("delta.io".to_owned(), vec![30, 60]),
            ("gamma.io".to_owned(), vec![90, 100]),
        ]
    );

    let t = trends(&app, &s, 3).await;
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[0]["date"], day(2).to_string());
    assert_eq!(
        (&t[0]["hot"], &t[0]["cold"], &t[0]["accounts"]),
        (&json!(1), &json!(1), &json!(2))
    );
    assert_eq!(t[0]["averageScore"], 60.0);
    assert_eq!(t[1]["date"], day(1).to_string());
    assert_eq!(
        (&t[1]["hot"], &t[1]["warm"], &t[1]["accounts"]),
        (&json!(1), &json!(1), &json!(2))
    );
    assert_eq!(t[1]["averageScore"], 80.0);
    assert_eq!(trends(&app, &s, 30).await.len(), 10);
}

#[tokio::test]
async fn snapshots_older_than_the_retention_are_pruned() {
    let app = spawn_app_with(&[("SCORE_HISTORY_DAYS", "30")]).await;
    let s = app.register("prune@history.test", "Prune").await;
    let (a, _) = scored_account(&app, &s, "epsilon.io", 1).await;
    let org = org_of(&s);
    put_snapshot(&app, org, a, day(31), 10, "INACTIVE").await;
    put_snapshot(&app, org, a, day(30), 20, "COLD").await;
    put_snapshot(&app, org, a, day(29), 30, "COLD").await;
    run_nightly(&app, &s).await;
    let mut days: Vec<NaiveDate> = entity::score_snapshots::Entity::find()
        .filter(entity::score_snapshots::Column::AccountId.eq(a))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.day)
        .collect();
    days.sort();
    assert_eq!(days, vec![day(30), day(29), today()]);
}

#[test]
fn a_bad_retention_is_refused_at_start() {
    let vars = devsignal_tests::test_vars(
        &devsignal_tests::TestDatabase::sqlite(),
        &[("SCORE_HISTORY_DAYS", "0")],
    );
    let problems = server::config::Config::from_vars(&vars).unwrap_err();
    assert!(
        problems.0.iter().any(|p| p.var == "SCORE_HISTORY_DAYS"),
        "{:?}",
        problems.0.iter().map(|p| &p.var).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_trend_compares_with_the_score_a_week_ago() {
    let app = spawn_app().await;
    let s = app.register("trend@history.test", "Trend").await;
    let (a, first) = scored_account(&app, &s, "zeta.io", 2).await;
    let (b, _) = scored_account(&app, &s, "eta.io", 2).await;
    let (c, _) = scored_account(&app, &s, "theta.io", 2).await;
    let score = first["score"].as_i64().unwrap() as i32;
    let org = org_of(&s);
    // A week ago a was 20 lower and b 20 higher; c was the same 3 days ago, and 30 lower 8
    // days ago, which is before the week and does not count.
    put_snapshot(&app, org, a, day(7), score - 20, "COLD").await;
    put_snapshot(&app, org, a, day(3), score, "COLD").await;
    put_snapshot(&app, org, b, day(7), score + 20, "HOT").await;
    put_snapshot(&app, org, c, day(8), score - 30, "COLD").await;
    put_snapshot(&app, org, c, day(3), score, "COLD").await;
    // The nightly recompute scores them again (unchanged since their previous score).
    run_nightly(&app, &s).await;
    let r = app.graphql_as(s.token(), ACCOUNTS, json!({})).await;
    let trend = |id: Uuid| {
        ok(&r)["accounts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == id.to_string().as_str())
            .unwrap()["node"]["score"]["trend"]
            .clone()
    };
    assert_eq!(trend(a), "RISING");
    assert_eq!(trend(b), "FALLING");
    assert_eq!(trend(c), "STABLE");
}

#[tokio::test]
async fn days_out_of_range_are_refused() {
    let app = spawn_app().await;
    let s = app.register("range@history.test", "Range").await;
    let (a, _) = scored_account(&app, &s, "iota.io", 1).await;
    for days in [0, -1, 3661] {
        let r = app
            .graphql_as(s.token(), HISTORY, json!({"id": a, "days": days}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(
            r["errors"][0]["extensions"]["fields"][0]["field"], "days",
            "{r}"
        );
        let r = app
            .graphql_as(s.token(), TRENDS, json!({"days": days}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn another_organization_sees_no_history_or_trends() {
    let app = spawn_app().await;
    let (s, other) = app.two_tenants().await;
    let (a, _) = scored_account(&app, &s, "kappa.io", 2).await;
    put_snapshot(&app, org_of(&s), a, day(1), 40, "COLD").await;
    run_nightly(&app, &s).await;
    assert_eq!(history(&app, &s, a, None).await.len(), 2);
    assert_eq!(trends(&app, &s, 7).await.len(), 2);

    assert!(trends(&app, &other, 7).await.is_empty());
    let r = app
        .graphql_as(other.token(), HISTORY, json!({"id": a, "days": 7}))
        .await;
    assert_code(&r, "NOT_FOUND");
    // The other organization's own nightly job captures nothing of the first's.
    run_nightly(&app, &other).await;
    assert_eq!(snapshot_count(&app, org_of(&other)).await, 0);
    assert_eq!(snapshot_count(&app, org_of(&s)).await, 2);
}
