//! Helpers for connector tests: connect an integration, run a sync and wait for its end, count
//! what was stored.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{Session, TestApp, eventually};

pub const CONNECT: &str = "mutation($input: ConnectIntegrationInput!) { connectIntegration(input: $input) { webhookSecret integration { id kind status config webhookUrl lastError nextSyncAt } } }";
pub const SYNC: &str =
    "mutation($id: ID!, $full: Boolean) { syncIntegration(id: $id, full: $full) { id status } }";
pub const INTEGRATION: &str = "query($id: ID!) { integration(id: $id) { id kind status config lastError lastSyncAt lastSuccessAt nextSyncAt webhookUrl runs(first: 50) { edges { node { id status full signalsCreated requests error startedAt finishedAt pushed pulled errors { object id externalId message } } } } } }";
pub const UPDATE: &str = "mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id status lastError config } }";

pub fn ok(resp: &Value) -> &Value {
    assert!(resp.get("errors").is_none(), "{resp}");
    &resp["data"]
}

/// Connects an integration; returns (id, webhook secret).
pub async fn connect(
    app: &TestApp,
    s: &Session,
    kind: &str,
    config: Value,
    credentials: Option<Value>,
) -> (String, String) {
    let resp = app
        .graphql_as(
            s.token(),
            CONNECT,
            json!({"input": {"kind": kind, "config": config, "credentials": credentials}}),
        )
        .await;
    let c = &ok(&resp)["connectIntegration"];
    (
        c["integration"]["id"].as_str().unwrap().to_owned(),
        c["webhookSecret"].as_str().unwrap().to_owned(),
    )
}

pub async fn integration(app: &TestApp, s: &Session, id: &str) -> Value {
    let resp = app
        .graphql_as(s.token(), INTEGRATION, json!({"id": id}))
        .await;
    ok(&resp)["integration"].clone()
}

/// The run `run_id` of the integration, once it is no longer RUNNING.
pub async fn wait_run(app: &TestApp, s: &Session, id: &str, run_id: &str) -> Value {
    wait_run_within(app, s, id, run_id, Duration::from_secs(60)).await
}

/// [`wait_run`] with a deadline of its own (benches).
pub async fn wait_run_within(
    app: &TestApp,
    s: &Session,
    id: &str,
    run_id: &str,
    timeout: Duration,
) -> Value {
    eventually(timeout, "the run to finish", || async {
        let i = integration(app, s, id).await;
        i["runs"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .find(|n| n["id"] == run_id && n["status"] != "RUNNING")
    })
    .await
}

/// Starts a run and waits for its end; returns the run.
pub async fn sync(app: &TestApp, s: &Session, id: &str, full: bool) -> Value {
    sync_within(app, s, id, full, Duration::from_secs(60)).await
}

/// [`sync`] with a deadline of its own (benches).
pub async fn sync_within(
    app: &TestApp,
    s: &Session,
    id: &str,
    full: bool,
    timeout: Duration,
) -> Value {
    let resp = app
        .graphql_as(s.token(), SYNC, json!({"id": id, "full": full}))
        .await;
    let run_id = ok(&resp)["syncIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_run_within(app, s, id, &run_id, timeout).await
}

/// Signals stored in the whole database (optionally of one type).
pub async fn signals(app: &TestApp, signal_type: Option<&str>) -> u64 {
    let mut q = entity::signals::Entity::find();
    if let Some(t) = signal_type {
        q = q.filter(entity::signals::Column::SignalType.eq(t));
    }
    q.count(&app.db).await.unwrap()
}

/// Events of a type stored in the whole database.
pub async fn events(app: &TestApp, event_type: &str) -> Vec<Value> {
    entity::events::Entity::find()
        .filter(entity::events::Column::EventType.eq(event_type))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

/// Posts a webhook delivery of `body` to `/api/v1/webhooks/{kind}/{id}` with `headers`.
pub async fn post_webhook(
    app: &TestApp,
    kind: &str,
    id: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/webhooks/{kind}/{id}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

/// Posts `body` signed in GitHub's scheme (`X-Hub-Signature-256`) under `secret` (PostHog,
/// LinkedIn); `None` sends no signature.
pub async fn post_signed(
    app: &TestApp,
    kind: &str,
    id: &str,
    secret: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers: Vec<(&str, String)> = secret
        .map(|s| vec![("x-hub-signature-256", connectors::webhook::sign(s, &bytes))])
        .unwrap_or_default();
    post_webhook(app, kind, id, &bytes, &headers).await
}

/// Signals of the organization of `s`, as its GraphQL `signals` list shows them (up to 100).
pub async fn visible_signals(app: &TestApp, s: &Session) -> Vec<Value> {
    let resp = app
        .graphql_as(
            s.token(),
            "{ signals(first: 100) { edges { node { id type } } } }",
            json!({}),
        )
        .await;
    ok(&resp)["signals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Ingests a signal by `email` (its account is the email's domain) and waits until the account
/// is scored; returns the account's id.
pub async fn scored_signal(app: &TestApp, s: &Session, email: &str, kind: &str) -> String {
    const INGEST: &str = "mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id account { id } } } }";
    let r = app
        .graphql_as(
            s.token(),
            INGEST,
            json!({"input": {"type": kind, "actor": {"email": email}}}),
        )
        .await;
    let account = ok(&r)["ingestSignal"]["signal"]["account"]["id"]
        .as_str()
        .expect("the signal has an account")
        .to_owned();
    let id: uuid::Uuid = account.parse().unwrap();
    eventually(
        Duration::from_secs(30),
        "the account to be scored",
        || async {
            entity::account_scores::Entity::find()
                .filter(entity::account_scores::Column::AccountId.eq(id))
                .one(&app.db)
                .await
                .unwrap()
        },
    )
    .await;
    account
}

/// Waits until every requested rescore is done (scores move after a CRM pull links contacts).
pub async fn scores_settled(app: &TestApp) {
    eventually(Duration::from_secs(30), "scores to settle", || async {
        let requests = entity::rescore_requests::Entity::find()
            .count(&app.db)
            .await
            .unwrap();
        let jobs = entity::jobs::Entity::find()
            .filter(entity::jobs::Column::Name.eq("compute-score"))
            .filter(entity::jobs::Column::State.is_in(["waiting", "active"]))
            .count(&app.db)
            .await
            .unwrap();
        (requests == 0 && jobs == 0).then_some(())
    })
    .await;
}

/// The account with exactly `domain` (`null` when there is none), with the fields a CRM sync
/// writes.
pub async fn account_by_domain(app: &TestApp, s: &Session, domain: &str) -> Value {
    let r = app
        .graphql_as(
            s.token(),
            "query($q: String) { accounts(first: 10, filter: {query: $q}) { nodes { id name domain industry city country description customFields } } }",
            json!({"q": domain}),
        )
        .await;
    ok(&r)["accounts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["domain"] == domain)
        .cloned()
        .unwrap_or(Value::Null)
}
