//! The demo: `POST /api/v1/demo/seed` (a demo organization for anyone, signed in like sign-up,
//! rate limited), its data scored by our own model (a recompute changes nothing, 45 days of
//! history), the 24-hour cleanup; `seedDemoData` / `removeDemoData` / `demoData` in one's own
//! organization, leaving its own rows alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use devsignal_tests::{TestApp, assert_code, eventually, spawn_app, spawn_app_with};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crm_accounts::ok;

const ACCOUNTS: &str = "{ accounts(first: 50) { totalCount nodes { id name domain githubOrg tags score { score tier signalCount userCount } scoreHistory(days: 60) { date score tier } } } }";

async fn seed(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app.post_json("/api/v1/demo/seed", &body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Each account's (signal count, tier, score) by name.
fn by_name(accounts: &Value) -> BTreeMap<String, (i64, String, i64)> {
    accounts["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                (
                    a["score"]["signalCount"].as_i64().unwrap(),
                    a["score"]["tier"].as_str().unwrap().to_owned(),
                    a["score"]["score"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn public_demo_is_signed_in_and_scored_by_our_model() {
    let app = spawn_app().await;
    let (status, body) = seed(&app, json!({"seed": 7})).await;
    assert_eq!(status, 201, "{body}");
    let token = body["accessToken"].as_str().unwrap().to_owned();
    assert!(body["refreshToken"].is_string());
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["role"], "OWNER");
    let org = body["demo"]["organizationId"].as_str().unwrap().to_owned();
    assert_eq!(body["organization"]["id"], org.as_str());
    let counts = &body["demo"]["counts"];
    assert_eq!(counts["accounts"], 8, "{counts}");
    assert_eq!(counts["contacts"], 20, "{counts}");
    assert_eq!(counts["signals"], 600, "{counts}");
    assert_eq!(counts["deals"], 5);
    assert_eq!(counts["activities"], 8);
    assert_eq!(counts["alertRules"], 1);
    assert!(
        body["user"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@demo.devsignal.invalid")
    );
    let row = entity::organizations::Entity::find_by_id(Uuid::parse_str(&org).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.is_demo);

    // The token works and sees the demo's data.
    let r = app.graphql_as(Some(&token), ACCOUNTS, json!({})).await;
    let accounts = ok(&r)["accounts"].clone();
    assert_eq!(accounts["totalCount"], 8);
    for a in accounts["nodes"].as_array().unwrap() {
        assert!(a["domain"].is_string() && a["githubOrg"].is_string(), "{a}");
        assert!(a["tags"].as_array().unwrap().contains(&json!("demo")));
    }
    let tiers: BTreeSet<String> = by_name(&accounts).values().map(|v| v.1.clone()).collect();
    assert!(
        tiers.contains("HOT") && tiers.contains("WARM") && tiers.contains("COLD"),
        "tiers differ by account: {:?}",
        by_name(&accounts)
    );
    // Up to 45 days of history, computed by the model day by day (from each account's first
    // signal); the busiest account's score moved over time.
    let history_len = accounts["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["scoreHistory"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert!((30..=45).contains(&history_len), "{accounts}");
    let arcline = accounts["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Arcline Tools")
        .unwrap();
    let scores: BTreeSet<i64> = arcline["scoreHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["score"].as_i64().unwrap())
        .collect();
    assert!(scores.len() > 5, "a history that moves: {arcline}");
    let last = arcline["scoreHistory"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["score"], arcline["score"]["score"],
        "today's is the score"
    );

    let r = app
        .graphql_as(
            Some(&token),
            "{ signals(first: 1) { totalCount } contacts(first: 1) { totalCount } deals(first: 1) { totalCount } alertRules { name channels { inApp email } } demoData { present demoOrganization signals } }",
            json!({}),
        )
        .await;
    let d = ok(&r);
    assert_eq!(d["signals"]["totalCount"], 600);
    assert_eq!(d["contacts"]["totalCount"], 20);
    assert_eq!(d["deals"]["totalCount"], 5);
    assert_eq!(d["alertRules"][0]["channels"]["email"], false, "{d}");
    assert_eq!(d["demoData"]["present"], true);
    assert_eq!(d["demoData"]["demoOrganization"], true);

    // Our model, not pre-baked numbers: recomputing leaves every score as it is.
    let before = by_name(&accounts);
    let r = app
        .graphql_as(
            Some(&token),
            "mutation { recomputeScores { id } }",
            json!({}),
        )
        .await;
    let id = ok(&r)["recomputeScores"]["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(30), "the recompute to finish", || {
        let app = &app;
        let token = token.clone();
        let id = id.clone();
        async move {
            let r = app
                .graphql_as(
                    Some(&token),
                    "query($id: ID!) { scoreRecompute(id: $id) { status } }",
                    json!({"id": id}),
                )
                .await;
            (ok(&r)["scoreRecompute"]["status"] == "COMPLETED").then_some(())
        }
    })
    .await;
    let r = app.graphql_as(Some(&token), ACCOUNTS, json!({})).await;
    assert_eq!(by_name(&ok(&r)["accounts"]), before);

    // The same seed gives the same data.
    let (_, again) = seed(&app, json!({"seed": 7})).await;
    let token2 = again["accessToken"].as_str().unwrap();
    assert_ne!(again["demo"]["organizationId"], org.as_str());
    let r = app.graphql_as(Some(token2), ACCOUNTS, json!({})).await;
    let counts_of = |m: &BTreeMap<String, (i64, String, i64)>| {
        m.iter()
            .map(|(k, v)| (k.clone(), (v.0, v.1.clone())))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(counts_of(&by_name(&ok(&r)["accounts"])), counts_of(&before));

    // A demo's alerts stay in the app: even a rule asking for email sends none to the made-up
    // address.
    let r = app
        .graphql_as(
            Some(&token),
            "mutation { createAlertRule(input: {name: \"Any signal\", trigger: NEW_SIGNAL, cooldownMinutes: 0, channels: {inApp: true, email: true}}) { id } }",
            json!({}),
        )
        .await;
    ok(&r);
    let arcline_id = arcline["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            Some(&token),
            "mutation($a: ID) { ingestSignal(input: {type: \"docs_read\", accountId: $a}) { signal { id } } }",
            json!({"a": arcline_id}),
        )
        .await;
    ok(&r);
    let org_id = Uuid::parse_str(&org).unwrap();
    eventually(Duration::from_secs(20), "the in-app alert", || async {
        let n = entity::notifications::Entity::find()
            .filter(entity::notifications::Column::OrganizationId.eq(org_id))
            .all(&app.db)
            .await
            .unwrap();
        (!n.is_empty()).then_some(())
    })
    .await;
    let deliveries = entity::alert_deliveries::Entity::find()
        .filter(entity::alert_deliveries::Column::OrganizationId.eq(org_id))
        .all(&app.db)
        .await
        .unwrap();
    assert!(deliveries.is_empty(), "{deliveries:?}");
}

#[tokio::test]
async fn the_demo_answers_bad_input_and_is_rate_limited() {
    let app = spawn_app_with(&[("RATE_LIMIT_DEMO", "10")]).await;
    let (status, body) = seed(&app, json!({"seed": "seven"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(body["error"]["fields"][0]["field"], "seed");
    let (status, body) = seed(&app, json!({"seeds": 1})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "seeds");
    for _ in 0..8 {
        let (status, _) = seed(&app, json!({"seed": -1})).await;
        assert_eq!(status, 400);
    }
    let r = app
        .post_json("/api/v1/demo/seed", &json!({"seed": 1}))
        .await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn the_cleanup_deletes_a_public_demo_after_a_day() {
    let app = spawn_app().await;
    let (_, body) = seed(&app, json!({"seed": 1})).await;
    let org = Uuid::parse_str(body["demo"]["organizationId"].as_str().unwrap()).unwrap();
    let user = Uuid::parse_str(body["user"]["id"].as_str().unwrap()).unwrap();
    entity::organizations::Entity::update_many()
        .col_expr(
            entity::organizations::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::hours(25)),
        )
        .filter(entity::organizations::Column::Id.eq(org))
        .exec(&app.db)
        .await
        .unwrap();
    let job = jobs::trigger::trigger(&app.db, "demo-cleanup-scheduler", None)
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "the cleanup job", || async {
        let j = entity::jobs::Entity::find_by_id(job)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        (j.state == "completed").then_some(())
    })
    .await;
    assert!(
        entity::organizations::Entity::find_by_id(org)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        entity::users::Entity::find_by_id(user)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    let left = entity::signals::Entity::find()
        .filter(entity::signals::Column::OrganizationId.eq(org))
        .all(&app.db)
        .await
        .unwrap();
    assert!(left.is_empty());
}

const STATUS: &str = "{ demoData { present seededAt demoOrganization accounts contacts signals deals activities alertRules } }";
const SEED: &str = "mutation($seed: Int) { seedDemoData(seed: $seed) { present seededAt accounts contacts signals deals activities alertRules } }";
const REMOVE: &str = "mutation { removeDemoData { present accounts } }";

#[tokio::test]
async fn demo_data_in_ones_own_organization_round_trips() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    // The organization's own data.
    let r = app
        .graphql_as(
            a.token(),
            "mutation { createAccount(input: {name: \"Own Co\", domain: \"own-co.example\"}) { id } }",
            json!({}),
        )
        .await;
    let own_account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            "mutation($a: ID) { createContact(input: {email: \"own@own-co.example\", accountId: $a}) { id } }",
            json!({"a": own_account}),
        )
        .await;
    let own_contact = ok(&r)["createContact"]["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            "mutation($c: ID) { ingestSignal(input: {type: \"signup\", actorId: $c}) { signal { id } } }",
            json!({"c": own_contact}),
        )
        .await;
    let own_signal = ok(&r)["ingestSignal"]["signal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app.graphql_as(a.token(), STATUS, json!({})).await;
    assert_eq!(ok(&r)["demoData"]["present"], false);

    let r = app.graphql_as(a.token(), SEED, json!({"seed": 11})).await;
    let d = &ok(&r)["seedDemoData"];
    assert_eq!(d["present"], true);
    assert_eq!(d["accounts"], 8);
    assert_eq!(d["signals"], 600);
    let r = app.graphql_as(a.token(), STATUS, json!({})).await;
    let s = &ok(&r)["demoData"];
    assert_eq!(s["present"], true);
    assert_eq!(s["demoOrganization"], false);
    assert_eq!(s["contacts"], 20);
    assert!(s["seededAt"].is_string());
    let r = app.graphql_as(a.token(), ACCOUNTS, json!({})).await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 9);

    // Once only.
    let r = app.graphql_as(a.token(), SEED, json!({})).await;
    assert_code(&r, "CONFLICT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("removeDemoData"),
        "{r}"
    );
    // The other organization sees none of it, and its own demo status.
    let r = app.graphql_as(b.token(), STATUS, json!({})).await;
    assert_eq!(ok(&r)["demoData"]["present"], false);
    let r = app.graphql_as(b.token(), ACCOUNTS, json!({})).await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 0);
    let r = app.graphql_as(b.token(), REMOVE, json!({})).await;
    assert_code(&r, "NOT_FOUND");
    // A member may not.
    let m = app.add_member(&a, "member@demo-own.test", "MEMBER").await;
    for q in [STATUS, SEED, REMOVE] {
        let r = app.graphql_as(m.token(), q, json!({})).await;
        assert_code(&r, "FORBIDDEN");
    }

    let r = app.graphql_as(a.token(), REMOVE, json!({})).await;
    assert_eq!(ok(&r)["removeDemoData"]["present"], false);
    let r = app
        .graphql_as(
            a.token(),
            "{ accounts(first: 50) { totalCount nodes { id } } contacts(first: 50) { totalCount nodes { id } } signals(first: 50) { totalCount nodes { id } } deals(first: 5) { totalCount } activities(first: 5) { totalCount } alertRules { id } }",
            json!({}),
        )
        .await;
    let d = ok(&r);
    assert_eq!(d["accounts"]["nodes"], json!([{"id": own_account}]));
    assert_eq!(d["contacts"]["nodes"], json!([{"id": own_contact}]));
    assert_eq!(d["signals"]["nodes"], json!([{"id": own_signal}]));
    assert_eq!(d["deals"]["totalCount"], 0);
    assert_eq!(d["activities"]["totalCount"], 0);
    assert_eq!(d["alertRules"], json!([]));
    // And it may be seeded again.
    let r = app.graphql_as(a.token(), SEED, json!({"seed": 12})).await;
    assert_eq!(ok(&r)["seedDemoData"]["present"], true);
}
