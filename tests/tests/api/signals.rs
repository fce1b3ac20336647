//! Signal pipeline: ingest over GraphQL, REST and the Segment-compatible API;
//! idempotency and content dedup; identity resolution (contacts and accounts found or created,
//! never duplicated under concurrency); one transaction per ingest; PQA scoring reproducing the
//! reference's worked example through the real job; debounced rescoring; score/tier events;
//! scoring configuration (versions, preview, recompute); signal sources; queries, timeline,
//! usage; and tenant isolation.

use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use devsignal_tests::{Session, TestApp, assert_code, eventually, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

const INGEST: &str = "mutation($input: SignalInput!) { ingestSignal(input: $input) { deduplicated signal { id type timestamp metadata contact { id email firstName github } account { id name domain } source { kind builtIn } } } }";
const INGEST_MANY: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { total succeeded failed deduplicated } results { index success deduplicated signal { id account { domain } } error { code fields { field message } } } } }";
const SCORE: &str = "query($id: ID!) { account(id: $id) { id name score { score tier trend signalCount userCount computedAt configVersion factors { name points maxPoints description inputs } } } }";
const EVENTS: &str =
    "query($types: [String!]) { events(first: 1000, types: $types) { seq type payload } }";

async fn ingest(app: &TestApp, s: &Session, input: Value) -> Value {
    app.graphql_as(s.token(), INGEST, json!({"input": input}))
        .await
}

fn days_ago(d: i64) -> String {
    (Utc::now() - chrono::Duration::days(d)).to_rfc3339()
}

async fn events_of(app: &TestApp, s: &Session, types: &[&str]) -> Vec<Value> {
    let r = app
        .graphql_as(s.token(), EVENTS, json!({"types": types}))
        .await;
    ok(&r)["events"].as_array().unwrap().clone()
}

async fn score_of(app: &TestApp, s: &Session, account: &str) -> Value {
    let r = app
        .graphql_as(s.token(), SCORE, json!({"id": account}))
        .await;
    ok(&r)["account"]["score"].clone()
}

async fn wait_for_score(app: &TestApp, s: &Session, account: &str, want: i64) -> Value {
    eventually(
        Duration::from_secs(20),
        "the account to be scored",
        || async {
            let sc = score_of(app, s, account).await;
            (sc["score"].as_i64() == Some(want)).then_some(sc)
        },
    )
    .await
}

/// Starts a recompute of every score (`recomputeScores`) and waits until it completed; returns
/// it as `scoreRecompute` reads it then.
pub(crate) async fn recompute(app: &TestApp, s: &Session) -> Value {
    let r = app
        .graphql_as(
            s.token(),
            "mutation { recomputeScores { id status } }",
            json!({}),
        )
        .await;
    let id = ok(&r)["recomputeScores"]["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(20),
        "the recompute to complete",
        || async {
            let r = app
                .graphql_as(
                    s.token(),
                    "query($id: ID!) { scoreRecompute(id: $id) { id status processed total startedAt finishedAt } }",
                    json!({"id": id}),
                )
                .await;
            let rc = ok(&r)["scoreRecompute"].clone();
            (rc["status"] == "COMPLETED").then_some(rc)
        },
    )
    .await
}

#[tokio::test]
async fn ingest_resolves_identity_and_dedupes() {
    let app = spawn_app().await;
    let s = app.register("owner@signals.test", "Signals").await;

    let r = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"email": " Jane@Acme.IO ", "github": "@JaneDev", "name": "Jane Doe"},
               "metadata": {"repo": "devsignal"}, "idempotencyKey": "k-1"}),
    )
    .await;
    let out = &ok(&r)["ingestSignal"];
    assert_eq!(out["deduplicated"], false);
    let sig = &out["signal"];
    assert_eq!(sig["contact"]["email"], "jane@acme.io");
    assert_eq!(sig["contact"]["firstName"], "Jane");
    assert_eq!(sig["contact"]["github"], "janedev");
    assert_eq!(sig["account"]["domain"], "acme.io");
    assert_eq!(sig["account"]["name"], "Acme");
    assert_eq!(sig["source"]["kind"], "PRODUCT_API");
    assert_eq!(sig["source"]["builtIn"], true);

    // Same idempotency key: the original, never an error.
    let again = ingest(&app, &s, json!({"type": "other", "idempotencyKey": "k-1"})).await;
    assert_eq!(ok(&again)["ingestSignal"]["deduplicated"], true);
    assert_eq!(ok(&again)["ingestSignal"]["signal"]["id"], sig["id"]);

    // Same content without a key or a timestamp: a real repeat, stored (content dedup needs
    // the sender's timestamp; see ingest_rules.rs).
    let repeat = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"email": "jane@acme.io"}, "metadata": {"repo": "devsignal"}}),
    )
    .await;
    assert_eq!(ok(&repeat)["ingestSignal"]["deduplicated"], false);
    // Different metadata: a new signal, same contact (found by email), same account.
    let other = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"github": "JANEDEV"}, "metadata": {"repo": "cli"}}),
    )
    .await;
    let o = &ok(&other)["ingestSignal"];
    assert_eq!(o["deduplicated"], false);
    assert_eq!(o["signal"]["contact"]["id"], sig["contact"]["id"]);
    assert_eq!(o["signal"]["account"]["id"], sig["account"]["id"]);
    // A back-filled event sent twice with its timestamp: the retry is the original.
    let backfill = json!({"type": "repo_star", "actor": {"email": "jane@acme.io"}, "metadata": {"repo": "devsignal"}, "timestamp": days_ago(3)});
    let old = ingest(&app, &s, backfill.clone()).await;
    assert_eq!(ok(&old)["ingestSignal"]["deduplicated"], false);
    let retry = ingest(&app, &s, backfill).await;
    assert_eq!(ok(&retry)["ingestSignal"]["deduplicated"], true);
    assert_eq!(
        ok(&retry)["ingestSignal"]["signal"]["id"],
        ok(&old)["ingestSignal"]["signal"]["id"]
    );

    // Free mail never creates an account; a GitHub noreply address resolves to the login.
    let free = ingest(
        &app,
        &s,
        json!({"type": "signup", "actor": {"email": "bob@gmail.com"}}),
    )
    .await;
    assert!(ok(&free)["ingestSignal"]["signal"]["account"].is_null());
    let noreply = ingest(
        &app,
        &s,
        json!({"type": "pr_merged", "actor": {"email": "12345+JaneDev@users.noreply.github.com"}}),
    )
    .await;
    assert_eq!(
        ok(&noreply)["ingestSignal"]["signal"]["contact"]["id"],
        sig["contact"]["id"]
    );
    // anonymousId conventions.
    let anon = ingest(
        &app,
        &s,
        json!({"type": "npm_download", "anonymousId": "npm:left-pad-fan"}),
    )
    .await;
    // A contact is created for the npm user, but a user name is not a first name.
    let anon_contact = &ok(&anon)["ingestSignal"]["signal"]["contact"];
    assert!(anon_contact["id"].is_string(), "{anon}");
    assert!(anon_contact["firstName"].is_null(), "{anon}");

    // Exactly one account and the events of it all.
    let accounts = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 50) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&accounts)["accounts"]["totalCount"], 1);
    let created = events_of(&app, &s, &["signal.created"]).await;
    assert_eq!(created.len(), 7);
    assert_eq!(created[0]["payload"]["type"], "repo_star");
    assert_eq!(created[0]["payload"]["accountId"], sig["account"]["id"]);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let s = app.register("v@signals.test", "Valid").await;
    for (input, field) in [
        (json!({"type": ""}), "type"),
        (
            json!({"type": "x", "actor": {"email": "not-an-email"}}),
            "actor.email",
        ),
        (
            json!({"type": "x", "account": {"domain": "nodot"}}),
            "account.domain",
        ),
        (
            json!({"type": "x", "accountId": "00000000-0000-0000-0000-000000000001"}),
            "accountId",
        ),
        (json!({"type": "x", "sourceId": "nope"}), "sourceId"),
        (json!({"type": "x", "metadata": [1, 2]}), "metadata"),
        (
            json!({"type": "x", "timestamp": (Utc::now() + chrono::Duration::days(3)).to_rfc3339()}),
            "timestamp",
        ),
    ] {
        let r = ingest(&app, &s, input.clone()).await;
        assert_code(&r, "BAD_USER_INPUT");
        assert_eq!(crate::crm_accounts::field(&r), field, "{input} → {r}");
    }
    let r = app
        .graphql_as(s.token(), "{ signals(first: 10) { totalCount } accounts(first: 10) { totalCount } contacts(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 0);
    assert_eq!(ok(&r)["accounts"]["totalCount"], 0);
    assert_eq!(ok(&r)["contacts"]["totalCount"], 0);

    // A batch: the bad item fails alone, named by its position.
    let r = app
        .graphql_as(
            s.token(),
            INGEST_MANY,
            json!({"inputs": [
                {"type": "signup", "actor": {"email": "a@one.io"}},
                {"type": "signup", "actor": {"email": "broken"}},
                {"type": "signup", "actor": {"email": "a@one.io"}},
            ]}),
        )
        .await;
    let b = &ok(&r)["ingestSignals"];
    assert_eq!(
        b["summary"],
        json!({"total": 3, "succeeded": 2, "failed": 1, "deduplicated": 0})
    );
    assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "inputs.1.actor.email"
    );
    assert_eq!(
        b["results"][2]["deduplicated"], false,
        "no key, no timestamp: a real repeat"
    );
    assert_eq!(b["results"][0]["signal"]["account"]["domain"], "one.io");
}

#[tokio::test]
async fn rest_ingest_with_api_keys() {
    let app = spawn_app().await;
    let s = app.register("rest@signals.test", "Rest").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let read_only = app.api_key(&s, &["accounts:read"]).await;
    let post = |path: &'static str, key: String, body: Value| {
        let c = app.client.clone();
        let url = app.url(path);
        async move {
            c.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = json!({"type": "api_call", "anonymousId": "github:Octo", "metadata": {"endpoint": "/v1/x"},
                      "idempotencyKey": "rest-1", "timestamp": days_ago(1)});
    let r = post("/api/v1/signals", key.clone(), body.clone()).await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["deduplicated"], false);
    assert_eq!(first["type"], "api_call");
    assert_eq!(first["source"]["type"], "PRODUCT_API");
    assert!(
        first["actor"]["firstName"].is_null(),
        "a GitHub login is not a first name: {first}"
    );
    assert!(first["actor"]["id"].is_string());
    let r = post("/api/v1/signals", key.clone(), body).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["deduplicated"], true);
    assert_eq!(again["id"], first["id"]);
    // The answer shows the source, the person and the account the signal was attributed to.
    let r = post(
        "/api/v1/signals",
        key.clone(),
        json!({"type": "signup", "actor": {"email": "Rita@Rest-One.io", "name": "Rita Ray"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let named: Value = r.json().await.unwrap();
    assert_eq!(named["source"]["name"], "API", "{named}");
    assert_eq!(named["source"]["id"], named["sourceId"]);
    assert_eq!(named["actor"]["id"], named["actorId"]);
    assert_eq!(named["actor"]["email"], "rita@rest-one.io");
    assert_eq!(named["actor"]["firstName"], "Rita");
    assert_eq!(named["actor"]["lastName"], "Ray");
    assert_eq!(named["account"]["id"], named["accountId"]);
    assert_eq!(named["account"]["domain"], "rest-one.io");
    let r = post("/api/v1/signals", key.clone(), json!({"type": "page_view"})).await;
    assert_eq!(r.status(), 201);
    let anonymous: Value = r.json().await.unwrap();
    assert_eq!(anonymous["source"]["type"], "PRODUCT_API");
    assert!(
        anonymous["actor"].is_null() && anonymous["account"].is_null(),
        "{anonymous}"
    );

    let r = post("/api/v1/signals", read_only, json!({"type": "x"})).await;
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/api/v1/signals"))
        .json(&json!({"type": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(
        "/api/v1/signals",
        key.clone(),
        json!({"type": "x", "actor": {"email": "nope"}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(e["error"]["fields"][0]["field"], "actor.email");

    let r = post(
        "/api/v1/signals/batch",
        key.clone(),
        json!({"signals": [
            {"type": "signup", "actor": {"email": "x@batch.io"}},
            {"type": 5},
            {"type": "docs_visit", "actor": {"email": "y@batch.io"}, "timestamp": "yesterday"},
            {"type": "docs_visit", "actor": {"email": "y@batch.io"}},
        ]}),
    )
    .await;
    assert_eq!(r.status(), 207, "some items failed");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["summary"]["total"], 4);
    assert_eq!(b["summary"]["succeeded"], 2);
    assert_eq!(b["summary"]["failed"], 2);
    assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        b["results"][2]["error"]["fields"][0]["field"],
        "signals.2.timestamp"
    );
    assert_eq!(b["results"][3]["signal"]["account"]["domain"], "batch.io");
    let r = post("/api/v1/signals/batch", key, json!({"signals": []})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn segment_calls_identify_group_track() {
    let app = spawn_app().await;
    let s = app.register("seg@signals.test", "Segment").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let send = |path: &'static str, body: Value| {
        let c = app.client.clone();
        let url = app.url(path);
        let auth = basic.clone();
        async move {
            c.post(url)
                .header("authorization", auth)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = send(
        "/v1/identify",
        json!({"userId": "u-42", "traits": {"email": "sam@widgets.dev", "firstName": "Sam", "lastName": "Lee", "title": "CTO"},
               "messageId": "m-1", "timestamp": Utc::now().to_rfc3339()}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body = r.json::<Value>().await.unwrap();
    assert_eq!(body["success"], true);
    assert!(
        body["signalId"].is_null(),
        "identify stores no signal: {body}"
    );
    let r = send(
        "/v1/group",
        json!({"userId": "u-42", "groupId": "g-1", "traits": {"name": "Widgets Inc", "domain": "widgets.dev", "employees": 30, "industry": "Software"}, "messageId": "m-2"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // track with only the product's user id: the contact found through the SEGMENT identity.
    let r = send(
        "/v1/track",
        json!({"userId": "u-42", "event": "Feature Activated", "properties": {"feature": "sso"}, "messageId": "m-3"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Repeated messageId: accepted, deduplicated.
    let r = send(
        "/v1/track",
        json!({"userId": "u-42", "event": "Feature Activated", "messageId": "m-3"}),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["deduplicated"], true);
    let r = send(
        "/v1/batch",
        json!({"batch": [
            {"type": "page", "userId": "u-42", "name": "Pricing", "properties": {"path": "/pricing"}, "messageId": "m-4"},
            {"type": "track", "userId": "u-42", "messageId": "m-5"},
        ]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["success"], false, "{b}");
    assert_eq!(
        b["results"][1]["error"]["fields"][0]["field"],
        "batch.1.event"
    );

    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 10) { edges { node { email firstName lastName title account { name domain size industry } signals(first: 10) { edges { node { type source { kind } } } } } } } }",
            json!({}),
        )
        .await;
    let contacts = ok(&r)["contacts"]["edges"].as_array().unwrap().clone();
    assert_eq!(contacts.len(), 1, "{r}");
    let c = &contacts[0]["node"];
    assert_eq!(c["email"], "sam@widgets.dev");
    assert_eq!(c["lastName"], "Lee");
    assert_eq!(c["title"], "CTO");
    assert_eq!(c["account"]["name"], "Widgets Inc");
    assert_eq!(c["account"]["size"], "SMALL");
    assert_eq!(c["account"]["industry"], "Software");
    let types: Vec<&str> = c["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    // identify and group update the profile; only what the person did is a signal.
    assert_eq!(types, ["page_view", "Feature Activated"], "{types:?}");
    assert!(
        c["signals"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["source"]["kind"] == "SEGMENT")
    );

    // A wrong write key is refused.
    let r = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth("dsk_wrong", Some(""))
        .json(&json!({"userId": "x", "event": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The reference's worked example under the CLASSIC preset, through ingest and the real rescore
/// job: 3×api_call 1 d ago, 2×page_view 3 d, 2×repo_star 10 d, 3×signup 20 d; 3 people; one
/// senior contact; a SMALL company → 12+11+12+15+8+5+10 = 73, WARM.
#[tokio::test]
async fn the_worked_example_scores_73_warm() {
    let app = spawn_app().await;
    let s = app.register("score@signals.test", "Score").await;
    // A new organization starts CALIBRATED; this test is about the classic formulas.
    let r = app
        .graphql_as(
            s.token(),
            "mutation { updateScoringConfig(input: {model: CLASSIC}) { version model weights { factor weight } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["updateScoringConfig"]["version"], 1, "{r}");
    assert_eq!(ok(&r)["updateScoringConfig"]["model"], "CLASSIC");
    assert_eq!(
        ok(&r)["updateScoringConfig"]["weights"][0],
        json!({"factor": "user_count", "weight": 20.0})
    );
    let acct = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Acme\", domain: \"acme.io\", size: SMALL}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&acct)["createAccount"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (email, title) in [
        ("vp@acme.io", "VP Engineering"),
        ("c@acme.io", "Contractor"),
    ] {
        let r = app
            .graphql_as(
                s.token(),
                "mutation($input: ContactFields!) { createContact(input: $input) { id } }",
                json!({"input": {"email": email, "title": title, "accountId": account}}),
            )
            .await;
        ok(&r);
    }
    let mut inputs = Vec::new();
    let people = ["a@acme.io", "b@acme.io", "vp@acme.io"];
    for (n, ty, d) in [
        (3, "api_call", 1),
        (2, "page_view", 3),
        (2, "repo_star", 10),
        (3, "signup", 20),
    ] {
        for i in 0..n {
            inputs.push(
                json!({"type": ty, "timestamp": days_ago(d), "actor": {"email": people[i % 3]},
                               "metadata": {"i": i}}),
            );
        }
    }
    let r = app
        .graphql_as(s.token(), INGEST_MANY, json!({"inputs": inputs}))
        .await;
    assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], 10, "{r}");
    let sc = wait_for_score(&app, &s, &account, 73).await;
    assert_eq!(sc["tier"], "WARM");
    assert_eq!(sc["trend"], "STABLE");
    assert_eq!(sc["signalCount"], 10);
    assert_eq!(sc["userCount"], 3);
    let points: Vec<(String, f64)> = sc["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["points"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            ("user_count", 12.0),
            ("usage_velocity", 11.0),
            ("feature_breadth", 12.0),
            ("engagement_recency", 15.0),
            ("signal_freshness", 8.0),
            ("seniority_signals", 5.0),
            ("firmographic_fit", 10.0),
        ]
        .map(|(n, p)| (n.to_owned(), p))
    );
    // The first score is a change (from nothing), and so is its tier (from none).
    let changed = events_of(&app, &s, &["score.changed"]).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["payload"]["newScore"], 73);
    assert!(changed[0]["payload"]["oldScore"].is_null());
    let tiers = events_of(&app, &s, &["tier.changed"]).await;
    assert_eq!(tiers.len(), 1);
    assert!(tiers[0]["payload"]["oldTier"].is_null());
    assert_eq!(tiers[0]["payload"]["newTier"], "WARM");

    // topAccounts and orderBy SCORE.
    let r = app
        .graphql_as(s.token(), "{ topAccounts(first: 5, tier: WARM) { id score { score } } accounts(first: 5, orderBy: {field: SCORE}) { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(ok(&r)["topAccounts"][0]["id"], account.as_str());
    assert_eq!(
        ok(&r)["accounts"]["edges"][0]["node"]["id"],
        account.as_str()
    );

    // A new tier threshold: preview shows the change before anything is saved, recompute
    // applies it, and the transition is one tier.changed event.
    let cfg = json!({"input": {"thresholds": {"hot": 70, "warm": 50, "cold": 20}}});
    let r = app
        .graphql_as(s.token(), "query($input: ScoringConfigInput!) { previewScoringConfig(input: $input) { account { id } currentTier newTier newScore } }", cfg.clone())
        .await;
    let p = &ok(&r)["previewScoringConfig"];
    assert_eq!(p.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(p[0]["currentTier"], "WARM");
    assert_eq!(p[0]["newTier"], "HOT");
    assert_eq!(score_of(&app, &s, &account).await["tier"], "WARM");
    let r = app
        .graphql_as(s.token(), "mutation($input: ScoringConfigInput!) { updateScoringConfig(input: $input) { version thresholds { hot } } }", cfg)
        .await;
    assert_eq!(ok(&r)["updateScoringConfig"]["version"], 2);
    let done = recompute(&app, &s).await;
    assert_eq!(
        (done["processed"].as_i64(), done["total"].as_i64()),
        (Some(1), Some(1))
    );
    let sc = score_of(&app, &s, &account).await;
    assert_eq!(sc["tier"], "HOT");
    assert_eq!(sc["configVersion"], 2);
    let tiers = events_of(&app, &s, &["tier.changed"]).await;
    assert_eq!(tiers.len(), 2);
    assert_eq!(tiers[1]["payload"]["oldTier"], "WARM");
    assert_eq!(tiers[1]["payload"]["newTier"], "HOT");
    // Same score again: no new score.changed.
    recompute(&app, &s).await;
    assert_eq!(events_of(&app, &s, &["score.changed"]).await.len(), 1);

    // Config validation and rights.
    let r = app
        .graphql_as(s.token(), "mutation { updateScoringConfig(input: {thresholds: {hot: 40, warm: 50, cold: 20}}) { version } }", json!({}))
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    let member = app.add_member(&s, "m@signals.test", "MEMBER").await;
    let r = app
        .graphql_as(
            member.token(),
            "mutation { recomputeScores { id } }",
            json!({}),
        )
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = app
        .graphql_as(
            member.token(),
            "{ scoringConfig { version model thresholds { hot warm cold } weights { factor weight } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["scoringConfig"]["version"], 2);
    assert_eq!(ok(&r)["scoringConfig"]["model"], "CLASSIC");
    assert_eq!(
        ok(&r)["scoringConfig"]["weights"][0],
        json!({"factor": "user_count", "weight": 20.0})
    );
}

const CONFIG: &str =
    "{ scoringConfig { version model thresholds { hot warm cold } weights { factor weight } } }";
const UPDATE_CONFIG: &str = "mutation($input: ScoringConfigInput!) { updateScoringConfig(input: $input) { version model weights { factor weight } } }";
const PREVIEW: &str = "query($input: ScoringConfigInput!) { previewScoringConfig(input: $input) { account { id } currentScore currentTier newScore newTier } }";

/// A new organization scores with CALIBRATED: one signal from one person at a company of
/// unknown size is COLD (CLASSIC called it WARM). The preset is selectable: the preview shows
/// what CLASSIC would make of the account, saving it and recomputing applies it, and switching
/// back restores CALIBRATED's default weights. Another organization's configuration is its own.
#[tokio::test]
async fn a_new_organization_scores_calibrated_and_presets_switch() {
    let app = spawn_app().await;
    let s = app.register("preset@signals.test", "Preset").await;
    let other = app.register("preset@other.test", "Other").await;
    let r = app.graphql_as(s.token(), CONFIG, json!({})).await;
    let c = &ok(&r)["scoringConfig"];
    assert_eq!(c["version"], 0);
    assert_eq!(c["model"], "CALIBRATED");
    let factors: Vec<&str> = c["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["factor"].as_str().unwrap())
        .collect();
    assert_eq!(
        factors,
        [
            "people",
            "signal_volume",
            "active_days",
            "feature_breadth",
            "recent_activity",
            "seniority_signals",
            "firmographic_fit"
        ]
    );

    // One signal, one person, unknown size: COLD, and its first tier is a tier change.
    let r = ingest(
        &app,
        &s,
        json!({"type": "repo_star", "actor": {"email": "solo@solo.dev"}}),
    )
    .await;
    let account = ok(&r)["ingestSignal"]["signal"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sc = wait_for_score(&app, &s, &account, 26).await;
    assert_eq!(sc["tier"], "COLD");
    assert_eq!(sc["configVersion"], 0);
    assert_eq!(sc["factors"][0]["name"], "people");
    assert_eq!(sc["factors"][0]["points"], 9.837);
    assert_eq!(sc["factors"][0]["maxPoints"], 25.0);
    assert_eq!(sc["factors"][0]["inputs"], json!({"distinctPeople": 1}));
    assert_eq!(sc["factors"][2]["inputs"], json!({"activeDays": 1}));
    let tiers = events_of(&app, &s, &["tier.changed"]).await;
    assert_eq!(tiers.len(), 1);
    assert!(tiers[0]["payload"]["oldTier"].is_null());
    assert_eq!(tiers[0]["payload"]["newTier"], "COLD");

    // The preview of CLASSIC: the same account would be WARM. Nothing is saved.
    let classic = json!({"input": {"model": "CLASSIC"}});
    let r = app.graphql_as(s.token(), PREVIEW, classic.clone()).await;
    let p = ok(&r)["previewScoringConfig"].as_array().unwrap().clone();
    assert_eq!(p.len(), 1, "{r}");
    assert_eq!(p[0]["account"]["id"], account.as_str());
    assert_eq!(p[0]["currentScore"], 26);
    assert_eq!(p[0]["currentTier"], "COLD");
    assert_eq!(p[0]["newScore"], 57);
    assert_eq!(p[0]["newTier"], "WARM");
    let r = app.graphql_as(s.token(), CONFIG, json!({})).await;
    assert_eq!(ok(&r)["scoringConfig"]["version"], 0);

    // Weights must name the chosen model's factors.
    let r = app
        .graphql_as(
            s.token(),
            UPDATE_CONFIG,
            json!({"input": {"model": "CLASSIC", "weights": [{"factor": "people", "weight": 20}]}}),
        )
        .await;
    assert_code(&r, "BAD_USER_INPUT");
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"], "input.weights.people",
        "{r}"
    );
    // A MEMBER may read the configuration but not change the model.
    let member = app.add_member(&s, "m@preset.test", "MEMBER").await;
    let r = app
        .graphql_as(member.token(), UPDATE_CONFIG, classic.clone())
        .await;
    assert_code(&r, "FORBIDDEN");

    // Saving CLASSIC and recomputing applies it.
    let r = app.graphql_as(s.token(), UPDATE_CONFIG, classic).await;
    let u = &ok(&r)["updateScoringConfig"];
    assert_eq!(u["version"], 1);
    assert_eq!(u["model"], "CLASSIC");
    assert_eq!(
        u["weights"][1],
        json!({"factor": "usage_velocity", "weight": 20.0})
    );
    let done = recompute(&app, &s).await;
    assert_eq!(done["processed"], 1);
    let sc = score_of(&app, &s, &account).await;
    assert_eq!(
        (sc["score"].as_i64(), sc["tier"].as_str()),
        (Some(57), Some("WARM"))
    );
    assert_eq!(sc["configVersion"], 1);
    assert_eq!(sc["factors"][0]["name"], "user_count");
    let tiers = events_of(&app, &s, &["tier.changed"]).await;
    assert_eq!(tiers.len(), 2);
    assert_eq!(tiers[1]["payload"]["oldTier"], "COLD");
    assert_eq!(tiers[1]["payload"]["newTier"], "WARM");

    // Back to CALIBRATED with one weight changed: the other weights are CALIBRATED's defaults.
    let r = app
        .graphql_as(
            s.token(),
            UPDATE_CONFIG,
            json!({"input": {"model": "CALIBRATED", "weights": [{"factor": "people", "weight": 50}]}}),
        )
        .await;
    let u = &ok(&r)["updateScoringConfig"];
    assert_eq!(u["version"], 2);
    assert_eq!(u["model"], "CALIBRATED");
    assert_eq!(u["weights"][0], json!({"factor": "people", "weight": 50.0}));
    assert_eq!(
        u["weights"][2],
        json!({"factor": "active_days", "weight": 20.0})
    );
    recompute(&app, &s).await;
    // 19.673 (people at 50) + 0.952 + 4.424 + 2.835 + 3.318 + 0 + 5 = 36.2.
    let sc = score_of(&app, &s, &account).await;
    assert_eq!(
        (sc["score"].as_i64(), sc["tier"].as_str()),
        (Some(36), Some("COLD"))
    );

    // The other organization still has its own defaults, and its preview sees none of this
    // organization's accounts.
    let r = app.graphql_as(other.token(), CONFIG, json!({})).await;
    assert_eq!(ok(&r)["scoringConfig"]["version"], 0);
    assert_eq!(ok(&r)["scoringConfig"]["model"], "CALIBRATED");
    assert_eq!(ok(&r)["scoringConfig"]["weights"][0]["weight"], 25.0);
    let r = app
        .graphql_as(
            other.token(),
            PREVIEW,
            json!({"input": {"model": "CLASSIC"}}),
        )
        .await;
    assert_eq!(ok(&r)["previewScoringConfig"], json!([]));
}

/// The upgrade moves no score: migration 000020 pins every organization that exists when it
/// runs and has no saved configuration to CLASSIC (version 1); one with saved versions keeps
/// them, and they read as CLASSIC; an organization created afterwards is CALIBRATED.
#[tokio::test]
async fn the_preset_migration_pins_existing_organizations_to_classic() {
    use domain::scoring::{Config, Preset, current_config};
    use migration::MigratorTrait;
    use sea_orm::{ActiveModelTrait, Set};
    use uuid::Uuid;

    let t = devsignal_tests::TestDatabase::new().await;
    let db = domain::db::connect(&t.url, &Default::default())
        .await
        .unwrap();
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261203_000020_scoring_presets")
        .unwrap();
    domain::db::migrate_up_to(&db, before).await.unwrap();
    let org = |name: &str| entity::organizations::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        is_demo: Set(false),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    };
    let untouched = org("Untouched").insert(&db).await.unwrap();
    let tuned = org("Tuned").insert(&db).await.unwrap();
    // A version saved before the presets: no model.
    let mut old = serde_json::to_value(Config::new(Preset::Classic)).unwrap();
    old.as_object_mut().unwrap().remove("model");
    old["thresholds"] = json!({"hot": 70, "warm": 50, "cold": 20});
    entity::scoring_configs::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(tuned.id),
        version: Set(1),
        config: Set(old),
        created_by: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(&db)
    .await
    .unwrap();

    domain::db::migrate_up(&db).await.unwrap();
    let later = org("Later").insert(&db).await.unwrap();

    let (version, config) = current_config(&db, untouched.id).await.unwrap();
    assert_eq!((version, config), (1, Config::new(Preset::Classic)));
    let (version, config) = current_config(&db, tuned.id).await.unwrap();
    assert_eq!(
        version, 1,
        "an organization with a saved version gets no pin"
    );
    assert_eq!(config.model, Preset::Classic);
    assert_eq!(config.thresholds.hot, 70);
    let (version, config) = current_config(&db, later.id).await.unwrap();
    assert_eq!((version, config), (0, Config::new(Preset::Calibrated)));
}

#[tokio::test]
async fn a_burst_of_signals_rescored_a_few_times_not_per_signal() {
    let app = spawn_app().await;
    let s = app.register("burst@signals.test", "Burst").await;
    for round in 0..5 {
        let inputs: Vec<Value> = (0..100)
            .map(|i| json!({"type": "api_call", "actor": {"email": format!("u{}@burst.io", i % 7)}, "metadata": {"n": round * 100 + i}}))
            .collect();
        let r = app
            .graphql_as(s.token(), INGEST_MANY, json!({"inputs": inputs}))
            .await;
        assert_eq!(ok(&r)["ingestSignals"]["summary"]["succeeded"], 100);
    }
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 5) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["accounts"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        Duration::from_secs(20),
        "the score to count all 500",
        || async {
            let sc = score_of(&app, &s, &account).await;
            (sc["signalCount"].as_i64() == Some(500)).then_some(())
        },
    )
    .await;
    let r = app
        .graphql_as(
            s.token(),
            "{ jobs(queue: \"score-computation\", first: 100) { edges { node { name state } } } }",
            json!({}),
        )
        .await;
    let n = ok(&r)["jobs"]["edges"].as_array().map_or(0, Vec::len);
    assert!(
        (1..=5).contains(&n),
        "500 signals in 5 batches took {n} rescore jobs: {r}"
    );
}

/// The worker is woken only for jobs due before its next planned look: the first signal of a
/// burst enqueues the account's debounced rescore and rings; the following ones find that job
/// waiting (its dedupe key makes the insert a no-op) and ring nothing. With a 30 s poll, the
/// scores still arrive at once, so the rings that matter are not lost.
#[tokio::test]
async fn a_burst_rings_the_worker_once_per_rescore_not_per_request() {
    fn rings(metrics: &str) -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("devsignal_worker_looks_total{cause=\"ring\"} "))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
    let app = devsignal_tests::spawn_app_with(&[("JOB_POLL_INTERVAL_MS", "30000")]).await;
    let s = app.register("doorbell@signals.test", "Doorbell").await;
    let before = rings(&app.get("/metrics").await.text().await.unwrap());
    let started = std::time::Instant::now();
    let mut account = String::new();
    for i in 0..30 {
        let r = ingest(
            &app,
            &s,
            json!({"type": "api_call", "actor": {"email": "dev@doorbell.io"}, "metadata": {"i": i}}),
        )
        .await;
        account = ok(&r)["ingestSignal"]["signal"]["account"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let elapsed = started.elapsed();
    // Well before the 30 s poll: each rescore was rung for.
    eventually(
        Duration::from_secs(15),
        "the score to count all 30 signals",
        || async {
            let sc = score_of(&app, &s, &account).await;
            (sc["signalCount"].as_i64() == Some(30)).then_some(())
        },
    )
    .await;
    let rung = rings(&app.get("/metrics").await.text().await.unwrap()) - before;
    // One rescore per debounce window at most, each rung for once (plus the first).
    let windows = elapsed.as_secs_f64() / domain::scoring::DEBOUNCE.as_secs_f64();
    assert!(
        rung >= 1 && (rung as f64) <= windows + 2.0,
        "30 requests in {elapsed:?} rang the worker {rung} times"
    );
}

#[tokio::test]
async fn a_full_batch_of_new_people_lands_whole_and_one_more_is_refused() {
    let app = spawn_app().await;
    let s = app.register("full@signals.test", "Full").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    // 1,000 new people with four identifiers each: more identity rows than one INSERT carries.
    let signals: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"type": "docs_visit", "idempotencyKey": format!("full-{i}"),
                   "metadata": {"page": format!("/docs/{i}")},
                   "actor": {"email": format!("p{i}@co{}.io", i % 50), "github": format!("gh-{i}"),
                             "npm": format!("npm-{i}"), "twitter": format!("tw_{i}")}})
        })
        .collect();
    let post = |body: Value| {
        app.client
            .post(app.url("/api/v1/signals/batch"))
            .bearer_auth(key.clone())
            .json(&body)
            .send()
    };
    let r = post(json!({ "signals": signals })).await.unwrap();
    assert_eq!(r.status(), 201);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["summary"]["succeeded"], 1000, "{}", b["summary"]);
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 1) { totalCount } contacts(first: 1) { totalCount } signals(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 50);
    assert_eq!(ok(&r)["contacts"]["totalCount"], 1000);
    assert_eq!(ok(&r)["signals"]["totalCount"], 1000);
    // Every identifier was stored: the last person is found again by each of them.
    for actor in [
        json!({"github": "GH-999"}),
        json!({"npm": "npm-999"}),
        json!({"twitter": "@tw_999"}),
    ] {
        let r = ingest(
            &app,
            &s,
            json!({"type": "docs_visit", "actor": actor, "metadata": {"again": true}}),
        )
        .await;
        assert_eq!(
            ok(&r)["ingestSignal"]["signal"]["contact"]["email"],
            "p999@co49.io",
            "{r}"
        );
    }
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "x", "metadata": {"i": i}}))
        .collect();
    let r = post(json!({ "signals": too_many })).await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "BAD_USER_INPUT", "{e}");
}

#[tokio::test]
async fn concurrent_ingest_never_duplicates_accounts_or_contacts() {
    let app = spawn_app().await;
    let s = app.register("race@signals.test", "Race").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = app.client.clone();
        let url = app.url("/api/v1/graphql");
        let token = s.access_token.clone();
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .bearer_auth(token)
                .json(&json!({"query": INGEST, "variables": {"input": {
                    "type": "signup", "actor": {"email": "same@race.io"}, "metadata": {"i": i}}}}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        ok(&r);
    }
    let r = app
        .graphql_as(s.token(), "{ accounts(first: 10) { totalCount } contacts(first: 10) { totalCount } signals(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["accounts"]["totalCount"], 1);
    assert_eq!(ok(&r)["contacts"]["totalCount"], 1);
    assert_eq!(ok(&r)["signals"]["totalCount"], 8);
    // What they waited for each other shows in the claim metrics (PostgreSQL; SQLite's writes
    // are serial and take no claims). The figures are the process's: other tests add to them.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let batches = value("devsignal_ingest_claims_total");
    let seconds = value("devsignal_ingest_claim_seconds_total");
    if app.test_db.is_postgres() {
        // The first request claimed the new person and address; the others found them or
        // waited for them.
        assert!(batches >= 1.0, "{metrics}");
        assert!(seconds > 0.0, "{metrics}");
    } else {
        assert_eq!((batches, seconds), (0.0, 0.0), "{metrics}");
    }
}

#[tokio::test]
async fn queries_sources_timeline_usage_and_isolation() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    // Sources: secrets are write-only.
    let r = app
        .graphql_as(
            a.token(),
            "mutation { createSignalSource(input: {kind: \"GITHUB\", name: \"Repos\", config: {repos: [\"x/y\"]}, secrets: {token: \"ghp_secret\"}}) { id kind status secretNames config } }",
            json!({}),
        )
        .await;
    let src = ok(&r)["createSignalSource"].clone();
    assert_eq!(src["secretNames"], json!(["token"]));
    assert!(!r.to_string().contains("ghp_secret"));
    let src_id = src["id"].as_str().unwrap().to_owned();
    let r = app
        .graphql_as(
            a.token(),
            "mutation { createSignalSource(input: {kind: \"FAX\", name: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::crm_accounts::field(&r), "kind");

    for (d, ty) in [(5, "repo_star"), (1, "repo_fork"), (3, "issue_opened")] {
        let r = ingest(
            &app,
            &a,
            json!({"type": ty, "sourceId": src_id, "timestamp": days_ago(d), "actor": {"github": "dev1"}, "account": {"domain": "tl.io"}}),
        )
        .await;
        ok(&r);
    }
    let r = app
        .graphql_as(a.token(), "{ signals(first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { node { type source { name } } } } }", json!({}))
        .await;
    let page = &ok(&r)["signals"];
    assert_eq!(page["totalCount"], 3);
    let types: Vec<&str> = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["repo_fork", "issue_opened"], "newest event first");
    let r = app
        .graphql_as(a.token(), "query($after: String) { signals(first: 2, after: $after) { edges { node { type } } } }", json!({"after": page["pageInfo"]["endCursor"]}))
        .await;
    assert_eq!(ok(&r)["signals"]["edges"][0]["node"]["type"], "repo_star");
    let r = app
        .graphql_as(
            a.token(),
            "{ signals(first: 10, filter: {type: [\"repo_star\"]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 1);

    // Timeline: signals and activities together, newest first.
    let r = app
        .graphql_as(
            a.token(),
            "{ accounts(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["accounts"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql_as(a.token(), "mutation($a: ID!) { createActivity(input: {type: NOTE, title: \"Called them\", accountId: $a}) { id } }", json!({"a": account}))
        .await;
    ok(&r);
    let r = app
        .graphql_as(a.token(), "query($id: ID!) { account(id: $id) { timeline(first: 3) { totalCount edges { node { __typename ... on Signal { type } ... on Activity { title } } } } signals(first: 5) { totalCount } } }", json!({"id": account}))
        .await;
    let t = &ok(&r)["account"]["timeline"];
    assert_eq!(t["totalCount"], 4);
    assert_eq!(t["edges"][0]["node"]["__typename"], "Activity");
    assert_eq!(t["edges"][1]["node"]["type"], "repo_fork");
    assert_eq!(ok(&r)["account"]["signals"]["totalCount"], 3);

    let r = app
        .graphql_as(
            a.token(),
            "{ usage { signalsPerMonth { current } contacts { current } periodStart } }",
            json!({}),
        )
        .await;
    assert_eq!(ok(&r)["usage"]["signalsPerMonth"]["current"], 3);
    assert_eq!(ok(&r)["usage"]["contacts"]["current"], 1);

    // Tenant B sees none of it and cannot use A's source, account or contact.
    let r = app
        .graphql_as(b.token(), "{ signals(first: 10) { totalCount } signalSources { id } usage { signalsPerMonth { current } contacts { current } } }", json!({}))
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 0);
    assert_eq!(ok(&r)["signalSources"], json!([]));
    assert_eq!(ok(&r)["usage"]["signalsPerMonth"]["current"], 0);
    for (input, field) in [
        (json!({"type": "x", "sourceId": src_id}), "sourceId"),
        (json!({"type": "x", "accountId": account}), "accountId"),
    ] {
        let r = ingest(&app, &b, input).await;
        assert_eq!(crate::crm_accounts::field(&r), field);
    }
    // B's own signal for the same domain creates B's own account.
    let r = ingest(
        &app,
        &b,
        json!({"type": "x", "account": {"domain": "tl.io"}, "actor": {"github": "dev1"}}),
    )
    .await;
    let theirs = ok(&r)["ingestSignal"]["signal"]["account"]["id"].clone();
    assert_ne!(theirs.as_str(), Some(account.as_str()));
    let r = app
        .graphql_as(
            b.token(),
            "query($id: ID!) { signal(id: $id) { id } }",
            json!({"id": page["edges"][0]["node"]["id"]}),
        )
        .await;
    assert!(r.get("errors").is_some());

    // A paused source refuses new signals.
    let r = app
        .graphql_as(a.token(), "mutation($id: ID!) { updateSignalSource(id: $id, input: {status: PAUSED, secrets: {token: null}}) { status secretNames } }", json!({"id": src_id}))
        .await;
    assert_eq!(
        ok(&r)["updateSignalSource"],
        json!({"status": "PAUSED", "secretNames": []})
    );
    let r = ingest(&app, &a, json!({"type": "x", "sourceId": src_id})).await;
    assert_eq!(crate::crm_accounts::field(&r), "sourceId");
}

#[tokio::test]
async fn ingest_mutations_count_against_the_signal_limiter_and_the_metrics() {
    let app = devsignal_tests::spawn_app_with(&[("RATE_LIMIT_SIGNAL", "3")]).await;
    let s = app.register("limits@signals.test", "Limits").await;
    for i in 0..3 {
        let r = ingest(&app, &s, json!({"type": "api_call", "metadata": {"i": i}})).await;
        ok(&r);
    }
    let r = ingest(&app, &s, json!({"type": "api_call", "metadata": {"i": 9}})).await;
    assert_code(&r, "RATE_LIMITED");
    // Other GraphQL work is not counted against it.
    let r = app
        .graphql_as(s.token(), "{ signals(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(ok(&r)["signals"]["totalCount"], 3);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("devsignal_signals_ingested_total{outcome=\"created\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("devsignal_live_subscriptions 0"),
        "{metrics}"
    );
}

/// Scores decay with time even without new signals: the nightly job (`capture-score-snapshot`,
/// fanned out at 02:00 before the snapshot) recomputes every scored account. Time is simulated by
/// moving the stored signals' event times thirty days back.
#[tokio::test]
async fn the_nightly_recompute_lets_scores_decay() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let s = app.register("decay@signals.test", "Decay").await;
    // One moment for all four, so they are one active day whenever the test runs.
    let at = days_ago(0);
    let inputs: Vec<Value> = (0..4)
        .map(|i| json!({"type": "api_call", "timestamp": at, "actor": {"email": format!("p{i}@decay.io")}, "metadata": {"i": i}}))
        .collect();
    let r = app
        .graphql_as(s.token(), INGEST_MANY, json!({"inputs": inputs}))
        .await;
    let account = ok(&r)["ingestSignals"]["results"][0]["signal"]["account"]["domain"].clone();
    assert_eq!(account, "decay.io");
    let r = app
        .graphql_as(
            s.token(),
            "{ accounts(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let id = ok(&r)["accounts"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // CALIBRATED (a new organization's model): 4 people 21.617, 4 signals 3.297, 1 active day
    // 4.424, 1 type 2.835, decayed activity 4.0 → 9.482, no senior, unknown size 5: 46.655.
    let fresh = wait_for_score(&app, &s, &id, 47).await;
    assert_eq!(fresh["tier"], "COLD");

    let backend = app.db.get_database_backend();
    let shift = if app.test_db.is_postgres() {
        "UPDATE signals SET timestamp = timestamp - INTERVAL '30 days'"
    } else {
        "UPDATE signals SET timestamp = strftime('%Y-%m-%dT%H:%M:%f+00:00', timestamp, '-30 days')"
    };
    app.db
        .execute_raw(Statement::from_string(backend, shift))
        .await
        .unwrap();
    let r = app
        .graphql_as(
            s.token(),
            "mutation { triggerJob(name: \"capture-score-snapshot\") { id } }",
            json!({}),
        )
        .await;
    ok(&r);
    // Thirty days on (api_call's half-life is 14): each signal weighs .227, the decayed
    // activity .906 earns 3.045 instead of 9.482; the counts stay: 40.
    let later = wait_for_score(&app, &s, &id, 40).await;
    assert_eq!(later["tier"], "COLD");
    assert_eq!(later["trend"], "FALLING");
    let changed = events_of(&app, &s, &["score.changed"]).await;
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[1]["payload"]["oldScore"], 47);
    assert_eq!(changed[1]["payload"]["newScore"], 40);
}

/// Exactly what Segment's own Node library (`@segment/analytics-node` 2.x) sends: one
/// `POST /v1/batch` with the write key in the body (no `Authorization` header), `sentAt`,
/// `context.library` and `_metadata`; and what RudderStack's Node SDK sends: the same batch
/// gzip-compressed, `Content-Type: application/x-www-form-urlencoded`, HTTP Basic with the write
/// key. (Captured from the libraries against a local listener.)
#[tokio::test]
async fn segment_and_rudderstack_client_libraries_are_understood() {
    use std::io::Write;
    let app = spawn_app().await;
    let s = app.register("libs@signals.test", "Libraries").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let now = Utc::now().to_rfc3339();
    let message = |ty: &str, extra: Value| {
        let mut m = json!({
            "timestamp": now, "integrations": {}, "type": ty, "userId": "u-1",
            "context": {"library": {"name": "@segment/analytics-node", "version": "2.3.0"}},
            "messageId": format!("node-next-{}", uuid::Uuid::new_v4()),
            "_metadata": {"nodeVersion": "v20.20.2", "jsRuntime": "node"},
        });
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let batch = json!({
        "batch": [
            message("identify", json!({"traits": {"email": "sam@widgets.dev", "firstName": "Sam", "title": "CTO"}})),
            message("group", json!({"groupId": "g-1", "traits": {"name": "Widgets", "domain": "widgets.dev", "employees": 30}})),
            message("track", json!({"event": "Feature Activated", "properties": {"feature": "sso"}})),
            message("page", json!({"name": "Pricing", "properties": {"path": "/pricing"}})),
        ],
        "writeKey": key,
        "sentAt": now,
    });
    let r = app
        .client
        .post(app.url("/v1/batch"))
        .header("content-type", "application/json")
        .header("user-agent", "analytics-node-next/latest")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], true, "{body}");

    let rudder = json!({"batch": [
        {"type": "identify", "userId": "r-1", "traits": {"email": "rita@gadgets.io", "name": "Rita Rudd"},
         "messageId": uuid::Uuid::new_v4().to_string(), "context": {"library": {"name": "analytics-node", "version": "3.0.13"}}},
        {"type": "track", "userId": "r-1", "event": "Workspace Created", "properties": {"plan": "pro"},
         "messageId": uuid::Uuid::new_v4().to_string()},
    ], "sentAt": now});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(rudder.to_string().as_bytes()).unwrap();
    let r = app
        .client
        .post(app.url("/v1/batch"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-encoding", "gzip")
        .basic_auth(&key, Some(""))
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["success"], true);

    let r = app
        .graphql_as(
            s.token(),
            "{ contacts(first: 10, orderBy: {field: EMAIL, direction: ASC}) { edges { node { email firstName lastName title account { name domain size } signals(first: 10) { edges { node { type metadata } } } } } } }",
            json!({}),
        )
        .await;
    let c = ok(&r)["contacts"]["edges"].as_array().unwrap().clone();
    assert_eq!(c.len(), 2, "{r}");
    let (rita, sam) = (&c[0]["node"], &c[1]["node"]);
    assert_eq!(rita["email"], "rita@gadgets.io");
    assert_eq!(rita["lastName"], "Rudd");
    assert_eq!(rita["account"]["domain"], "gadgets.io");
    assert_eq!(
        rita["signals"]["edges"][0]["node"]["type"],
        "Workspace Created"
    );
    assert_eq!(sam["title"], "CTO");
    assert_eq!(sam["account"]["name"], "Widgets");
    assert_eq!(sam["account"]["size"], "SMALL");
    let types: Vec<&str> = sam["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types.contains(&"Feature Activated") && types.contains(&"page_view"));
}
