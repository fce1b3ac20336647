//! The scoring backtest (#18): won and lost accounts scored as of their close from the signals
//! before it, under the current configuration (CLASSIC, whose points are easy to add up by
//! hand) and a proposed one — HOT precision and recall and the AUC computed by hand; signals
//! after a close never count; an account's latest close decides its outcome; a bad proposal is
//! refused naming the field; only an admin may run it; another organization's deals never
//! count.
//!
//! Every signal of a scored account lands one hour before its close, from a different person
//! per signal, so under CLASSIC's defaults an account with p people and t types scores
//! 4p (max 20) + velocity 20 + 3t (max 15) + recency 15 + freshness 10 + size 5 (no size).

use chrono::{DateTime, Duration, Timelike, Utc};
use devsignal_tests::{Session, TestApp, assert_code, spawn_app};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const INGEST: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } } }";
const BACKTEST: &str = "query($config: ScoringConfigInput) { scoringBacktest(config: $config) {
    currentVersion closedAccounts accounts notice
    current { won lost hotWon hotLost hotPrecision hotRecall auc }
    proposed { won lost hotWon hotLost hotPrecision hotRecall auc }
    rows { account { domain } outcome closedAt currentScore currentTier proposedScore proposedTier } } }";

async fn account(app: &TestApp, s: &Session, domain: &str) -> Uuid {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": domain, "domain": domain}}),
        )
        .await;
    Uuid::parse_str(ok(&r)["createAccount"]["id"].as_str().unwrap()).unwrap()
}

/// One signal per `(person, type)` at `domain`, all at `at`.
async fn signals(
    app: &TestApp,
    s: &Session,
    domain: &str,
    plan: &[(usize, usize)],
    at: DateTime<Utc>,
) {
    let inputs: Vec<Value> = plan
        .iter()
        .map(|(p, t)| {
            json!({"type": format!("bt_type_{t}"), "actor": {"email": format!("p{p}@{domain}")},
                   "timestamp": at.to_rfc3339(), "metadata": {"n": Uuid::new_v4().to_string()}})
        })
        .collect();
    let r = app
        .graphql_as(s.token(), INGEST, json!({"inputs": inputs}))
        .await;
    assert_eq!(
        ok(&r)["ingestSignals"]["summary"]["succeeded"],
        plan.len(),
        "{r}"
    );
}

fn five() -> Vec<(usize, usize)> {
    (0..5).map(|i| (i, i)).collect()
}

fn close_to(x: &Value, expected: f64) {
    assert!(
        (x.as_f64().unwrap() - expected).abs() < 1e-9,
        "{x} is not {expected}"
    );
}

/// A deal of `account` in `stage`, closed at `closed_at` (written directly: the API closes a
/// deal now).
async fn deal(
    app: &TestApp,
    s: &Session,
    account: Option<Uuid>,
    stage: &str,
    closed_at: DateTime<Utc>,
) {
    let r = app
        .graphql_as(
            s.token(),
            "mutation($input: DealInput!) { createDeal(input: $input) { id } }",
            json!({"input": {"title": "Deal", "stage": stage, "accountId": account.map(|a| a.to_string())}}),
        )
        .await;
    let id = Uuid::parse_str(ok(&r)["createDeal"]["id"].as_str().unwrap()).unwrap();
    if stage.starts_with("CLOSED") {
        let mut d: entity::deals::ActiveModel = entity::deals::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .into();
        d.closed_at = Set(Some(closed_at));
        d.update(&app.db).await.unwrap();
    }
}

fn row<'a>(r: &'a Value, domain: &str) -> &'a Value {
    r["scoringBacktest"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["account"]["domain"] == domain)
        .unwrap_or_else(|| panic!("no row for {domain}: {r}"))
}

#[tokio::test]
async fn backtest_separates_won_from_lost_as_of_each_close() {
    let app = spawn_app().await;
    let (s, other) = app.two_tenants().await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation { updateScoringConfig(input: {model: CLASSIC}) { version } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["updateScoringConfig"]["version"], 1);
    let now = Utc::now().with_nanosecond(0).unwrap();
    let close = |days: i64| now - Duration::days(days);
    let hour = Duration::hours(1);

    // Won, HOT: 5 people of 5 types → 20 + 20 + 15 + 15 + 10 + 5 = 85.
    let a = account(&app, &s, "a.bt.test").await;
    signals(&app, &s, "a.bt.test", &five(), close(10) - hour).await;
    deal(&app, &s, Some(a), "CLOSED_WON", close(10)).await;
    // Won, HOT: 4 people of 5 types → 16 + 20 + 15 + 15 + 10 + 5 = 81.
    let b = account(&app, &s, "b.bt.test").await;
    signals(
        &app,
        &s,
        "b.bt.test",
        &[(0, 0), (1, 1), (2, 2), (3, 3), (3, 4)],
        close(11) - hour,
    )
    .await;
    deal(&app, &s, Some(b), "CLOSED_WON", close(11)).await;
    // Won, INACTIVE: its signals came at and after the close, so only its size counts: 5.
    let c = account(&app, &s, "c.bt.test").await;
    signals(&app, &s, "c.bt.test", &five(), close(12)).await;
    signals(&app, &s, "c.bt.test", &five(), close(12) + hour).await;
    deal(&app, &s, Some(c), "CLOSED_WON", close(12)).await;
    // Lost, INACTIVE: won once, lost since (the latest close decides); no signals: 5.
    let d = account(&app, &s, "d.bt.test").await;
    deal(&app, &s, Some(d), "CLOSED_WON", close(30)).await;
    deal(&app, &s, Some(d), "CLOSED_LOST", close(13)).await;
    // Lost, WARM: one person, one type → 4 + 20 + 3 + 15 + 10 + 5 = 57.
    let e = account(&app, &s, "e.bt.test").await;
    signals(&app, &s, "e.bt.test", &[(0, 0)], close(14) - hour).await;
    deal(&app, &s, Some(e), "CLOSED_LOST", close(14)).await;
    // Neither an open deal nor a closed deal without an account counts.
    let f = account(&app, &s, "f.bt.test").await;
    signals(&app, &s, "f.bt.test", &five(), close(5)).await;
    deal(&app, &s, Some(f), "NEGOTIATION", close(5)).await;
    deal(&app, &s, None, "CLOSED_LOST", close(5)).await;
    // Another organization's closed deals never count.
    let x = account(&app, &other, "x.bt.test").await;
    signals(&app, &other, "x.bt.test", &five(), close(9) - hour).await;
    deal(&app, &other, Some(x), "CLOSED_LOST", close(9)).await;

    // Proposed: half the people weight, HOT from 55. Scores: A 75, B 73, C 5, D 5, E 55.
    let proposed = json!({"weights": [{"factor": "user_count", "weight": 10}],
                          "thresholds": {"hot": 55, "warm": 30, "cold": 10}});
    let r = app
        .graphql_as(s.token(), BACKTEST, json!({"config": proposed}))
        .await;
    let b = &ok(&r)["scoringBacktest"];
    assert_eq!(b["currentVersion"], 1);
    assert_eq!(b["closedAccounts"], 5, "{r}");
    assert_eq!(b["accounts"], 5);
    assert!(b["notice"].is_null());
    let domains: Vec<&str> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["account"]["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        [
            "a.bt.test",
            "b.bt.test",
            "c.bt.test",
            "d.bt.test",
            "e.bt.test"
        ]
    );
    for (domain, outcome, days, cur, cur_tier, prop, prop_tier) in [
        ("a.bt.test", "WON", 10, 85, "HOT", 75, "HOT"),
        ("b.bt.test", "WON", 11, 81, "HOT", 73, "HOT"),
        ("c.bt.test", "WON", 12, 5, "INACTIVE", 5, "INACTIVE"),
        ("d.bt.test", "LOST", 13, 5, "INACTIVE", 5, "INACTIVE"),
        ("e.bt.test", "LOST", 14, 57, "WARM", 55, "HOT"),
    ] {
        let x = row(ok(&r), domain);
        assert_eq!(x["outcome"], outcome, "{domain}");
        let at = DateTime::parse_from_rfc3339(x["closedAt"].as_str().unwrap()).unwrap();
        assert_eq!(at, close(days), "{domain}");
        assert_eq!(x["currentScore"], cur, "{domain}");
        assert_eq!(x["currentTier"], cur_tier, "{domain}");
        assert_eq!(x["proposedScore"], prop, "{domain}");
        assert_eq!(x["proposedTier"], prop_tier, "{domain}");
    }
    // Current: HOT = {A, B}, both won: precision 1, recall 2/3. AUC over the 3 × 2 pairs: A and
    // B beat D and E (4), C ties D (½) and loses to E: 4.5 / 6.
    let m = &b["current"];
    assert_eq!((m["won"].as_i64(), m["lost"].as_i64()), (Some(3), Some(2)));
    assert_eq!(
        (m["hotWon"].as_i64(), m["hotLost"].as_i64()),
        (Some(2), Some(0))
    );
    close_to(&m["hotPrecision"], 1.0);
    close_to(&m["hotRecall"], 2.0 / 3.0);
    close_to(&m["auc"], 0.75);
    // Proposed: E becomes HOT too: precision 2/3, recall 2/3, the order (and AUC) unchanged.
    let m = &b["proposed"];
    assert_eq!(
        (m["hotWon"].as_i64(), m["hotLost"].as_i64()),
        (Some(2), Some(1))
    );
    close_to(&m["hotPrecision"], 2.0 / 3.0);
    close_to(&m["hotRecall"], 2.0 / 3.0);
    close_to(&m["auc"], 0.75);

    // Without a proposal, the proposal is the current configuration.
    let r = app.graphql_as(s.token(), BACKTEST, json!({})).await;
    assert_eq!(
        ok(&r)["scoringBacktest"]["proposed"],
        ok(&r)["scoringBacktest"]["current"]
    );

    // The other organization sees its own account only, lost while HOT: precision 0, no AUC.
    let r = app.graphql_as(other.token(), BACKTEST, json!({})).await;
    let b = &ok(&r)["scoringBacktest"];
    assert_eq!(b["closedAccounts"], 1, "{r}");
    assert_eq!(b["rows"][0]["account"]["domain"], "x.bt.test");
    assert_eq!(b["current"]["lost"], 1);
    assert!(b["current"]["auc"].is_null());
    assert!(b["current"]["hotRecall"].is_null());
}

#[tokio::test]
async fn backtest_is_for_admins_and_refuses_a_bad_proposal() {
    let app = spawn_app().await;
    let s = app
        .register("owner@bt-rights.test", "Backtest Rights")
        .await;
    let member = app.add_member(&s, "member@bt-rights.test", "MEMBER").await;
    assert_code(
        &app.graphql_as(member.token(), BACKTEST, json!({})).await,
        "FORBIDDEN",
    );
    let reader = app.api_key(&s, &["accounts:read"]).await;
    assert_code(
        &app.graphql_with_key(&reader, BACKTEST, json!({})).await,
        "FORBIDDEN",
    );
    let admin = app.api_key(&s, &["admin"]).await;
    let r = app.graphql_with_key(&admin, BACKTEST, json!({})).await;
    let b = &ok(&r)["scoringBacktest"];
    assert_eq!(b["closedAccounts"], 0);
    assert!(b["current"]["hotPrecision"].is_null() && b["current"]["auc"].is_null());

    for (config, field) in [
        (
            json!({"weights": [{"factor": "nope", "weight": 5}]}),
            "config.weights.nope",
        ),
        (
            json!({"thresholds": {"hot": 10, "warm": 50, "cold": 5}}),
            "config.thresholds",
        ),
        (json!({"defaultHalfLife": 0}), "config.defaultHalfLife"),
    ] {
        let r = app
            .graphql_as(s.token(), BACKTEST, json!({"config": config}))
            .await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(
            r["errors"][0]["extensions"]["fields"][0]["field"], field,
            "{r}"
        );
    }
}

/// More accounts than one statement's bounds hold (100): every account is scored as of its own
/// close, each with one signal an hour before it (57, WARM) and one after (never counted).
#[tokio::test]
async fn backtest_scores_many_accounts_each_as_of_its_own_close() {
    let app = spawn_app().await;
    let s = app.register("owner@bt-many.test", "Backtest Many").await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation { updateScoringConfig(input: {model: CLASSIC}) { version } }",
            json!({}),
        )
        .await;
    ok(&r);
    let now = Utc::now().with_nanosecond(0).unwrap();
    let n = 230usize;
    let mut ids = Vec::new();
    for batch in (0..n).collect::<Vec<_>>().chunks(50) {
        let input: Vec<Value> = batch
            .iter()
            .map(|i| json!({"name": format!("m{i}"), "domain": format!("m{i}.bt.test")}))
            .collect();
        let r = app
            .graphql_as(
                s.token(),
                "mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }",
                json!({"input": input}),
            )
            .await;
        for a in ok(&r)["createAccounts"].as_array().unwrap() {
            ids.push(Uuid::parse_str(a["id"].as_str().unwrap()).unwrap());
        }
    }
    assert_eq!(ids.len(), n);
    let org = entity::companies::Entity::find_by_id(ids[0])
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .organization_id;
    let mut inputs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Closes spread over 60 days, one per 6 hours.
        let closed_at = now - Duration::hours(6 * i as i64 + 1);
        // Counted, the one after the close would add a person and a type: 64.
        for (who, ty, at) in [
            ("p", "bt_type", closed_at - Duration::hours(1)),
            ("q", "bt_other", closed_at + Duration::minutes(30)),
        ] {
            inputs.push(json!({"type": ty, "actor": {"email": format!("{who}@m{i}.bt.test")},
                               "timestamp": at.to_rfc3339(), "metadata": {"n": Uuid::new_v4().to_string()}}));
        }
        entity::deals::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(org),
            title: Set(format!("Deal {i}")),
            amount: Set(None),
            currency: Set("USD".into()),
            stage: Set(if i % 2 == 0 {
                "CLOSED_WON"
            } else {
                "CLOSED_LOST"
            }
            .into()),
            probability: Set(None),
            account_id: Set(Some(*id)),
            contact_id: Set(None),
            owner_id: Set(None),
            expected_close_date: Set(None),
            closed_at: Set(Some(closed_at)),
            description: Set(None),
            custom_fields: Set(json!({})),
            tags: Set(json!([])),
            created_at: Set(closed_at),
            updated_at: Set(closed_at),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    for chunk in inputs.chunks(1000) {
        let r = app
            .graphql_as(s.token(), INGEST, json!({"inputs": chunk}))
            .await;
        assert_eq!(
            ok(&r)["ingestSignals"]["summary"]["succeeded"],
            chunk.len(),
            "{r}"
        );
    }
    let r = app.graphql_as(s.token(), BACKTEST, json!({})).await;
    let b = &ok(&r)["scoringBacktest"];
    assert_eq!(b["closedAccounts"], n, "{r}");
    assert_eq!(b["accounts"], n);
    assert_eq!(b["rows"].as_array().unwrap().len(), n);
    for x in b["rows"].as_array().unwrap() {
        assert_eq!(x["currentScore"], 57, "{x}");
    }
    let m = &b["current"];
    assert_eq!(
        (m["won"].as_i64(), m["lost"].as_i64(), m["hotWon"].as_i64()),
        (Some(115), Some(115), Some(0))
    );
    assert!(m["hotPrecision"].is_null());
    close_to(&m["hotRecall"], 0.0);
    close_to(&m["auc"], 0.5);
}
