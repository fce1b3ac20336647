//! Live subscriptions over `/api/v1/graphql/ws`: `signalCreated`,
//! `accountScoreChanged`, `tierChanged` and `events(types, after)` with replay, authenticated in
//! `connection_init`, each subscriber seeing only its own organization; and across processes: an
//! event committed by another `devsignal` process reaches this one's subscribers (through Redis
//! when it is configured, else through the log poll).

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use devsignal_tests::{Session, TestApp, WsClient, eventually, redis_url, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

const SIGNALS: &str = "subscription($f: SignalSubscriptionFilter) { signalCreated(filter: $f) { id type metadata contact { email } account { domain } } }";
const INGEST_MANY: &str = "mutation($inputs: [SignalInput!]!) { ingestSignals(inputs: $inputs) { summary { succeeded } results { signal { id } } } }";

/// A graphql-transport-ws connection signed in as `token`.
async fn connect(app: &TestApp, token: &str) -> WsClient {
    let mut ws = app.ws("graphql-transport-ws").await;
    let ack = ws
        .init(json!({"Authorization": format!("Bearer {token}")}))
        .await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

/// Waits until the server holds `n` live subscriptions (a subscription is set up asynchronously
/// after its `subscribe` message; an event committed before that is not "new" to it).
async fn subscribed(app: &TestApp, n: usize) {
    eventually(
        Duration::from_secs(10),
        "the subscriptions to start",
        || async { (app.state.live.subscribers() >= n).then_some(()) },
    )
    .await;
}

/// The next `next` message: (subscription id, data). The wait is generous: on a loaded two-core
/// CI machine a second process's worker may take a while to get the CPU.
async fn next(ws: &mut WsClient) -> (String, Value) {
    let msg = ws
        .next(Duration::from_secs(60))
        .await
        .expect("a WebSocket message");
    assert_eq!(msg["type"], "next", "{msg}");
    (
        msg["id"].as_str().unwrap().to_owned(),
        msg["payload"]["data"].clone(),
    )
}

async fn ingest(app: &TestApp, s: &Session, inputs: Value) -> Vec<String> {
    let r = app
        .graphql_as(s.token(), INGEST_MANY, json!({"inputs": inputs}))
        .await;
    ok(&r)["ingestSignals"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["signal"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn new_signals_arrive_live_filtered_and_only_in_their_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let mut wa = connect(&app, &a.access_token).await;
    wa.subscribe("stars", SIGNALS, json!({"f": {"type": ["repo_star"]}}))
        .await;
    wa.subscribe("all", SIGNALS, json!({})).await;
    let mut wb = connect(&app, &b.access_token).await;
    wb.subscribe("all", SIGNALS, json!({})).await;
    subscribed(&app, 3).await;

    let ids = ingest(
        &app,
        &a,
        json!([
            {"type": "page_view", "actor": {"email": "jane@acme.io"}, "metadata": {"path": "/docs"}},
            {"type": "repo_star", "actor": {"email": "jane@acme.io"}, "metadata": {"repo": "cli"}},
        ]),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let (id, data) = next(&mut wa).await;
        got.push((id, data["signalCreated"].clone()));
    }
    let all: Vec<&Value> = got
        .iter()
        .filter(|(id, _)| id == "all")
        .map(|(_, s)| s)
        .collect();
    assert_eq!(all.len(), 2, "{got:?}");
    assert_eq!(all[0]["id"], ids[0].as_str(), "in commit order");
    assert_eq!(all[0]["type"], "page_view");
    assert_eq!(all[0]["contact"]["email"], "jane@acme.io");
    assert_eq!(all[0]["account"]["domain"], "acme.io");
    assert_eq!(all[1]["metadata"], json!({"repo": "cli"}));
    let stars: Vec<&Value> = got
        .iter()
        .filter(|(id, _)| id == "stars")
        .map(|(_, s)| s)
        .collect();
    assert_eq!(stars.len(), 1);
    assert_eq!(stars[0]["id"], ids[1].as_str());

    // B's subscriber saw nothing of A: its first message is B's own signal.
    let theirs = ingest(&app, &b, json!([{"type": "b_only"}])).await;
    let (_, data) = next(&mut wb).await;
    assert_eq!(data["signalCreated"]["id"], theirs[0].as_str());
    assert_eq!(data["signalCreated"]["type"], "b_only");

    // An account filter, and the legacy graphql-ws protocol.
    let mut legacy = app.ws("graphql-ws").await;
    let ack = legacy
        .init(json!({"Authorization": format!("Bearer {}", a.access_token)}))
        .await;
    assert_eq!(ack["type"], "connection_ack");
    let r = app
        .graphql_as(
            a.token(),
            "{ accounts(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["accounts"]["edges"][0]["node"]["id"].clone();
    legacy
        .subscribe("acct", SIGNALS, json!({"f": {"account": account}}))
        .await;
    subscribed(&app, 4).await;
    ingest(
        &app,
        &a,
        json!([{"type": "signup", "actor": {"email": "x@elsewhere.io"}}, {"type": "api_call", "actor": {"email": "jane@acme.io"}}]),
    )
    .await;
    let data = legacy.next_data().await;
    assert_eq!(data["data"]["signalCreated"]["type"], "api_call");
}

/// An organization whose signals were the newest in the log is deleted (its events go with it:
/// the demo clean-up, an erasure of the last owner). The tailer has already read past them, so
/// their positions must not be handed out again: A's next signal still reaches A's subscriber.
#[tokio::test]
async fn signals_after_a_deleted_organizations_newest_events_still_arrive() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let mut wa = connect(&app, &a.access_token).await;
    wa.subscribe("all", SIGNALS, json!({})).await;
    let mut wb = connect(&app, &b.access_token).await;
    wb.subscribe("all", SIGNALS, json!({})).await;
    subscribed(&app, 2).await;
    // B's subscriber has B's signals: the tailer has read past them.
    // More of them than A's one signal will make events, so reused positions would all fall
    // at or below the tailer's.
    let inputs: Vec<Value> = (0..20).map(|i| json!({"type": format!("b{i}")})).collect();
    let theirs = ingest(&app, &b, json!(inputs)).await;
    for id in &theirs {
        assert_eq!(next(&mut wb).await.1["signalCreated"]["id"], id.as_str());
    }
    drop(wb);
    use sea_orm::EntityTrait;
    entity::organizations::Entity::delete_by_id(b.organization_id.parse::<uuid::Uuid>().unwrap())
        .exec(&app.db)
        .await
        .unwrap();
    let mine = ingest(&app, &a, json!([{"type": "after_the_deletion"}])).await;
    let (_, data) = next(&mut wa).await;
    assert_eq!(data["signalCreated"]["id"], mine[0].as_str());
}

#[tokio::test]
async fn score_and_tier_changes_arrive_live() {
    let app = spawn_app().await;
    let s = app.register("live-score@live.test", "Live").await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Acme\", domain: \"acme.io\", size: SMALL}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&app, &s.access_token).await;
    ws.subscribe(
        "score",
        "subscription($a: ID) { accountScoreChanged(accountId: $a) { accountId account { name } oldScore newScore oldTier newTier delta trend computedAt } }",
        json!({"a": account}),
    )
    .await;
    ws.subscribe(
        "tier",
        "subscription { tierChanged(tier: HOT) { accountId oldTier newTier newScore } }",
        json!({}),
    )
    .await;
    subscribed(&app, 2).await;

    let now = Utc::now();
    let day = |d: i64| (now - chrono::Duration::days(d)).to_rfc3339();
    let mut inputs = Vec::new();
    for (n, ty, d) in [
        (3, "api_call", 1),
        (2, "page_view", 3),
        (2, "repo_star", 10),
        (3, "signup", 20),
    ] {
        for i in 0..n {
            let who = ["a@acme.io", "b@acme.io", "c@acme.io"][i % 3];
            inputs.push(json!({"type": ty, "timestamp": day(d), "actor": {"email": who}, "metadata": {"i": i}}));
        }
    }
    ingest(&app, &s, json!(inputs)).await;
    let (id, data) = next(&mut ws).await;
    assert_eq!(id, "score");
    let c = &data["accountScoreChanged"];
    assert_eq!(c["accountId"], account.as_str());
    assert_eq!(c["account"]["name"], "Acme");
    assert!(c["oldScore"].is_null());
    assert!(c["oldTier"].is_null());
    // The reference's worked example under CALIBRATED (docs/scoring.md: 74 with its senior
    // contact), without a senior contact here: 19.422 + 6.321 + 12.642 + 7.364 + 12.852 + 10 = 68.6.
    assert_eq!(c["newScore"], 69);
    assert_eq!(c["newTier"], "WARM");
    assert_eq!(c["trend"], "STABLE");

    // A lower HOT threshold moves the account to HOT: a tier change, not a score change.
    let r = app
        .graphql_as(s.token(), "mutation { updateScoringConfig(input: {thresholds: {hot: 60, warm: 40, cold: 20}}) { version } }", json!({}))
        .await;
    ok(&r);
    let r = app
        .graphql_as(s.token(), "mutation { recomputeScores { id } }", json!({}))
        .await;
    ok(&r);
    let (id, data) = next(&mut ws).await;
    assert_eq!(
        id, "tier",
        "the score did not change, so only the tier subscription hears"
    );
    let t = &data["tierChanged"];
    assert_eq!(t["accountId"], account.as_str());
    assert_eq!(t["oldTier"], "WARM");
    assert_eq!(t["newTier"], "HOT");
    assert_eq!(t["newScore"], 69);
}

/// An account whose first score is HOT alerts: `tierChanged` hears it with no old tier.
#[tokio::test]
async fn an_account_born_hot_is_a_tier_change_from_none() {
    let app = spawn_app().await;
    let s = app.register("born-hot@live.test", "Born hot").await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Rocket\", domain: \"rocket.io\", size: SMALL}) { id } }",
            json!({}),
        )
        .await;
    let account = ok(&r)["createAccount"]["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&app, &s.access_token).await;
    ws.subscribe(
        "tier",
        "subscription { tierChanged(tier: HOT) { accountId oldTier newTier oldScore newScore } }",
        json!({}),
    )
    .await;
    subscribed(&app, 1).await;
    // Eight people over six days with five types, in one call: one rescore, already HOT
    // (CALIBRATED: 24.542 + 9.918 + 15.537 + 8.111 + 15 + 0 + 10 = 83).
    let now = Utc::now();
    let types = ["api_call", "repo_star", "docs_read", "pr_opened", "signup"];
    let mut inputs = Vec::new();
    for p in 0..8 {
        for d in 0..6 {
            inputs.push(json!({
                "type": types[(p + d) % 5],
                "timestamp": (now - chrono::Duration::days(d as i64)).to_rfc3339(),
                "actor": {"email": format!("p{p}@rocket.io")},
                "metadata": {"p": p, "d": d},
            }));
        }
    }
    ingest(&app, &s, json!(inputs)).await;
    let (id, data) = next(&mut ws).await;
    assert_eq!(id, "tier");
    let t = &data["tierChanged"];
    assert_eq!(t["accountId"], account.as_str());
    assert!(t["oldTier"].is_null(), "{t}");
    assert!(t["oldScore"].is_null(), "{t}");
    assert_eq!(t["newTier"], "HOT");
    assert_eq!(t["newScore"], 83);
}

#[tokio::test]
async fn the_event_log_replays_from_a_cursor_then_goes_on_live() {
    let app = spawn_app().await;
    let s = app.register("replay@live.test", "Replay").await;
    let ids = ingest(
        &app,
        &s,
        json!(
            (0..3)
                .map(|i| json!({"type": "api_call", "metadata": {"n": i}}))
                .collect::<Vec<_>>()
        ),
    )
    .await;
    let r = app
        .graphql_as(
            s.token(),
            "{ events(first: 100, types: [\"signal.created\"]) { seq payload } }",
            json!({}),
        )
        .await;
    let seqs: Vec<i64> = ok(&r)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3);
    const EVENTS: &str = "subscription($after: Int) { events(types: [\"signal.created\"], after: $after) { seq type payload } }";

    let mut ws = connect(&app, &s.access_token).await;
    ws.subscribe("log", EVENTS, json!({"after": seqs[0]})).await;
    for want in &ids[1..] {
        let (_, data) = next(&mut ws).await;
        assert_eq!(data["events"]["type"], "signal.created");
        assert_eq!(data["events"]["payload"]["id"], want.as_str());
    }
    // Then live.
    let live = ingest(&app, &s, json!([{"type": "signup"}])).await;
    let (_, data) = next(&mut ws).await;
    assert_eq!(data["events"]["payload"]["id"], live[0].as_str());
    let last = data["events"]["seq"].as_i64().unwrap();
    drop(ws);

    // Missed while disconnected: 700 signals (more than one read of the log). Reconnecting with
    // the last seq seen delivers every one, in order, then the next live one.
    let inputs: Vec<Value> = (0..700)
        .map(|i| json!({"type": "docs_visit", "metadata": {"page": i}}))
        .collect();
    let missed = ingest(&app, &s, json!(inputs)).await;
    let mut ws = connect(&app, &s.access_token).await;
    ws.subscribe("log", EVENTS, json!({"after": last})).await;
    let mut prev = last;
    for want in &missed {
        let (_, data) = next(&mut ws).await;
        let seq = data["events"]["seq"].as_i64().unwrap();
        assert!(seq > prev, "in order");
        prev = seq;
        assert_eq!(data["events"]["payload"]["id"], want.as_str());
    }
    let more = ingest(
        &app,
        &s,
        json!([{"type": "signup", "metadata": {"again": true}}]),
    )
    .await;
    let (_, data) = next(&mut ws).await;
    assert_eq!(data["events"]["payload"]["id"], more[0].as_str());
    // The first connection's subscription has ended with it.
    eventually(
        Duration::from_secs(10),
        "the closed subscription to end",
        || async { (app.state.live.subscribers() == 1).then_some(()) },
    )
    .await;

    // Without `after`: only what comes next, and a bad type is named.
    let mut fresh = connect(&app, &s.access_token).await;
    fresh
        .subscribe("new", "subscription { events { type payload } }", json!({}))
        .await;
    subscribed(&app, 2).await;
    let r = app
        .graphql_as(
            s.token(),
            "mutation { createAccount(input: {name: \"Later\"}) { id } }",
            json!({}),
        )
        .await;
    ok(&r);
    let (_, data) = next(&mut fresh).await;
    assert_eq!(data["events"]["type"], "company.created");
    fresh
        .subscribe(
            "bad",
            "subscription { events(types: [\"nope\"]) { seq } }",
            json!({}),
        )
        .await;
    let msg = fresh.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(refusal(&msg), "BAD_USER_INPUT");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["fields"][0]["field"],
        "types"
    );
}

/// The error code of a subscription the server refuses: a validation failure comes as an
/// `error` message, a resolver's refusal as a `next` carrying the error (then `complete`).
fn refusal(msg: &Value) -> String {
    let errors = match msg["type"].as_str() {
        Some("error") => &msg["payload"],
        Some("next") => &msg["payload"]["errors"],
        _ => panic!("not a refusal: {msg}"),
    };
    assert!(msg["payload"]["data"].is_null(), "{msg}");
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {msg}"))
        .to_owned()
}

async fn refused(ws: &mut WsClient, query: &str) -> String {
    ws.subscribe("x", query, json!({})).await;
    let msg = ws.next(Duration::from_secs(10)).await.unwrap();
    if msg["type"] == "next" {
        let end = ws.next(Duration::from_secs(10)).await.unwrap();
        assert_eq!(end["type"], "complete", "{end}");
    }
    refusal(&msg)
}

#[tokio::test]
async fn subscriptions_need_credentials_and_rights() {
    let app = spawn_app().await;
    let owner = app.register("rights@live.test", "Rights").await;
    let mut anon = app.ws("graphql-transport-ws").await;
    assert_eq!(anon.init(json!({})).await["type"], "connection_ack");
    assert_eq!(
        refused(&mut anon, "subscription { signalCreated { id } }").await,
        "UNAUTHENTICATED"
    );

    let member = app.add_member(&owner, "m@live.test", "MEMBER").await;
    let mut ws = connect(&app, &member.access_token).await;
    assert_eq!(
        refused(&mut ws, "subscription { events { seq } }").await,
        "FORBIDDEN"
    );
    ws.subscribe("s", "subscription { tierChanged { newTier } }", json!({}))
        .await;

    // The shapes clients send credentials in: Apollo-style `headers`, a bare token.
    for payload in [
        json!({"headers": {"authorization": format!("Bearer {}", member.access_token)}}),
        json!({"token": member.access_token}),
        json!({"authToken": format!("Bearer {}", member.access_token)}),
    ] {
        let mut c = app.ws("graphql-transport-ws").await;
        assert_eq!(c.init(payload.clone()).await["type"], "connection_ack");
        assert_eq!(
            refused(&mut c, "subscription { events { seq } }").await,
            "FORBIDDEN",
            "signed in as the member with {payload}"
        );
    }
    // Bad credentials refuse the connection.
    let mut bad = app.ws("graphql-transport-ws").await;
    bad.send(json!({"type": "connection_init", "payload": {"token": "not-a-token"}}))
        .await;
    let answer = bad.next(Duration::from_secs(10)).await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|a| a["type"] != "connection_ack"),
        "{answer:?}"
    );

    // An API key follows what its scopes allow.
    let key = app.api_key(&owner, &["signals:read"]).await;
    let mut kws = app.ws("graphql-transport-ws").await;
    assert_eq!(
        kws.init(json!({"X-API-Key": key})).await["type"],
        "connection_ack"
    );
    assert_eq!(
        refused(
            &mut kws,
            "subscription { accountScoreChanged { newScore } }"
        )
        .await,
        "FORBIDDEN"
    );
    kws.subscribe("s", "subscription { signalCreated { type } }", json!({}))
        .await;
    subscribed(&app, 2).await;
    ingest(&app, &owner, json!([{"type": "seen_by_key"}])).await;
    let (_, data) = next(&mut kws).await;
    assert_eq!(data["signalCreated"]["type"], "seen_by_key");
}

/// Two processes on one database: a `devsignal serve` (with its worker) started as a separate
/// process takes the ingest and computes the score; this test's server runs as a `serve
/// --no-worker` replica whose subscriber receives both the new signal and the score change.
/// With Redis the replica's log poll is set to ten minutes, so only Redis's wake-up can bring
/// the events in time; without Redis (SQLite) the poll does.
#[tokio::test]
async fn events_committed_by_another_process_reach_this_ones_subscribers() {
    let db = devsignal_tests::TestDatabase::new().await;
    let poll = if redis_url().is_some() {
        "600000"
    } else {
        "100"
    };
    let vars = devsignal_tests::test_vars(&db, &[("EVENTS_POLL_INTERVAL_MS", poll)]);
    let mut config = server::config::Config::from_vars(&vars).unwrap();
    config.run_worker = false;
    let cwd = tempfile::tempdir().unwrap();
    let port = crate::cli::free_port();
    let mut env: Vec<(String, String)> = vars.clone().into_iter().collect();
    env.retain(|(k, _)| k != "PORT");
    env.push(("PORT".into(), port.to_string()));
    let app = devsignal_tests::spawn_config(db, config).await;
    let s = app.register("two@live.test", "Two").await;

    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let other = crate::cli::Proc::start(cwd.path(), &["serve"], &env_refs);
    let other_url = format!("http://127.0.0.1:{port}");
    eventually(
        Duration::from_secs(60),
        "the other process to serve",
        || async {
            let r = app
                .client
                .get(format!("{other_url}/health"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

    let mut ws = connect(&app, &s.access_token).await;
    ws.subscribe(
        "sig",
        "subscription { signalCreated { id type account { domain } } }",
        json!({}),
    )
    .await;
    ws.subscribe(
        "score",
        "subscription { accountScoreChanged { accountId newScore newTier } }",
        json!({}),
    )
    .await;
    subscribed(&app, 2).await;

    let r = app
        .client
        .post(format!("{other_url}/api/v1/signals"))
        .bearer_auth(&s.access_token)
        .json(&json!({"type": "signup", "actor": {"email": "dev@far.io"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", other.output());
    let sent: Value = r.json().await.unwrap();
    let mut seen = HashSet::new();
    for _ in 0..2 {
        let (id, data) = next(&mut ws).await;
        match id.as_str() {
            "sig" => {
                assert_eq!(data["signalCreated"]["id"], sent["id"]);
                assert_eq!(data["signalCreated"]["account"]["domain"], "far.io");
            }
            "score" => {
                assert_eq!(data["accountScoreChanged"]["accountId"], sent["accountId"]);
                assert!(data["accountScoreChanged"]["newScore"].as_i64().unwrap() > 0);
            }
            other => panic!("unexpected subscription {other}"),
        }
        seen.insert(id);
    }
    assert_eq!(seen.len(), 2);
}

/// A subscription ends when its subscriber loses the right to it: a removed member, a revoked
/// API key (checked every `SUBSCRIPTION_RECHECK_SECONDS`).
#[tokio::test]
async fn subscriptions_end_when_access_ends() {
    let app = devsignal_tests::spawn_app_with(&[("SUBSCRIPTION_RECHECK_SECONDS", "1")]).await;
    let owner = app.register("ends@live.test", "Ends").await;
    let member = app.add_member(&owner, "leaving@live.test", "MEMBER").await;
    let key = app.api_key(&owner, &["signals:read"]).await;
    let r = app
        .graphql_as(owner.token(), "{ apiKeys { id } }", json!({}))
        .await;
    let key_id = ok(&r)["apiKeys"][0]["id"].clone();

    let mut ws = connect(&app, &member.access_token).await;
    ws.subscribe("s", "subscription { signalCreated { type } }", json!({}))
        .await;
    let mut kws = app.ws("graphql-transport-ws").await;
    assert_eq!(
        kws.init(json!({"X-API-Key": key})).await["type"],
        "connection_ack"
    );
    kws.subscribe("k", "subscription { signalCreated { type } }", json!({}))
        .await;
    subscribed(&app, 2).await;
    ingest(&app, &owner, json!([{"type": "before"}])).await;
    assert_eq!(next(&mut ws).await.1["signalCreated"]["type"], "before");
    assert_eq!(next(&mut kws).await.1["signalCreated"]["type"], "before");

    let r = app
        .graphql_as(
            owner.token(),
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({"u": member.user_id}),
        )
        .await;
    ok(&r);
    let r = app
        .graphql_as(
            owner.token(),
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({"id": key_id}),
        )
        .await;
    ok(&r);
    for c in [&mut ws, &mut kws] {
        let end = c.next(Duration::from_secs(15)).await;
        assert!(
            end.as_ref().is_none_or(|m| m["type"] == "complete"),
            "the subscription ends: {end:?}"
        );
    }
    eventually(
        Duration::from_secs(10),
        "the subscriptions to be gone",
        || async { (app.state.live.subscribers() == 0).then_some(()) },
    )
    .await;
}

/// A mutation sent over the WebSocket announces its commit like one sent over HTTP: the
/// subscriber hears of it at once, although the log poll is ten minutes away and no worker runs
/// (nothing else would wake the tailer).
#[tokio::test]
async fn a_mutation_sent_over_the_websocket_reaches_subscribers_without_the_poll() {
    let db = devsignal_tests::TestDatabase::new().await;
    let vars = devsignal_tests::test_vars(&db, &[("EVENTS_POLL_INTERVAL_MS", "600000")]);
    let mut config = server::config::Config::from_vars(&vars).unwrap();
    config.run_worker = false;
    let app = devsignal_tests::spawn_config(db, config).await;
    let s = app.register("ws-mutation@live.test", "WsMutation").await;

    let mut listener = connect(&app, &s.access_token).await;
    listener
        .subscribe(
            "log",
            "subscription { events(types: [\"company.created\"]) { type payload } }",
            json!({}),
        )
        .await;
    subscribed(&app, 1).await;

    let mut writer = connect(&app, &s.access_token).await;
    writer
        .subscribe(
            "create",
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id } }",
            json!({"input": {"name": "Over The Socket", "domain": "socket.test"}}),
        )
        .await;
    let (_, created) = next(&mut writer).await;
    let id = created["createAccount"]["id"].as_str().unwrap().to_owned();

    let (_, data) = next(&mut listener).await;
    assert_eq!(data["events"]["type"], "company.created");
    assert_eq!(data["events"]["payload"]["id"], id.as_str(), "{data}");
}
