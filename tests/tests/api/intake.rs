//! Accepted-for-later ingest (`Prefer: respond-async` on the REST ingest routes): the answer is
//! `202` once the checked items are stored, the worker ingests them through the one ingest path
//! (same signals, people, events and scores), and the receipt shows each item's outcome.
//! Nothing accepted is lost without a worker or stored twice by concurrent drainers.

use std::time::Duration;

use devsignal_tests::{Session, TestApp, eventually, spawn_app};
use serde_json::{Value, json};

use crate::crm_accounts::ok;

async fn post(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
    prefer: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).bearer_auth(key).json(&body);
    if let Some(p) = prefer {
        req = req.header("Prefer", p);
    }
    req.send().await.unwrap()
}

pub(crate) async fn accepted(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let r = post(app, key, path, body, Some("respond-async")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["preference-applied"].to_str().unwrap(),
        "respond-async"
    );
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(
        location,
        format!(
            "/api/v1/signals/receipts/{}",
            body["receiptId"].as_str().unwrap()
        )
    );
    assert_eq!(body["receipt"], location);
    body
}

async fn receipt(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/signals/receipts/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// The receipt once the worker has processed it.
async fn processed(app: &TestApp, key: &str, id: &str) -> Value {
    eventually(Duration::from_secs(20), "the receipt processed", || async {
        let r: Value = receipt(app, key, id).await.json().await.unwrap();
        (r["status"] == "processed").then_some(r)
    })
    .await
}

async fn signal_count(app: &TestApp, s: &Session) -> i64 {
    let r = app
        .graphql_as(s.token(), "{ signals(first: 1) { totalCount } }", json!({}))
        .await;
    ok(&r)["signals"]["totalCount"].as_i64().unwrap()
}

async fn backlog(app: &TestApp) -> u64 {
    domain::signals::intake::backlog(&app.db).await.unwrap().0
}

#[tokio::test]
async fn accepted_signals_are_ingested_scored_and_receipted() {
    let app = spawn_app().await;
    let s = app.register("owner@later.test", "Later").await;
    let key = app.api_key(&s, &["signals:write"]).await;

    // Other preferences beside it, in any case, still ask for it.
    let r = post(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "Ana@Later-Co.io", "name": "Ana Lima"},
               "idempotencyKey": "later-1"}),
        Some("wait=5, Respond-Async"),
    )
    .await;
    assert_eq!(r.status(), 202);
    let one: Value = r.json().await.unwrap();
    assert_eq!(one["accepted"], 1);
    let batch = accepted(
        &app,
        &key,
        "/api/v1/signals/batch",
        json!({"signals": [
            {"type": "api_call", "actor": {"email": "ana@later-co.io"}, "metadata": {"n": 1}},
            {"type": "docs_visit", "anonymousId": "github:octo", "account": {"domain": "later-co.io"}},
            {"type": "signup", "actor": {"email": "ana@later-co.io"}, "idempotencyKey": "later-1"},
        ]}),
    )
    .await;
    assert_eq!(batch["accepted"], 3);

    let first = processed(&app, &key, one["receiptId"].as_str().unwrap()).await;
    assert_eq!(first["items"], 1);
    assert!(first["processedAt"].is_string(), "{first}");
    let r0 = &first["results"][0];
    assert_eq!(r0["success"], true, "{first}");
    assert_eq!(r0["deduplicated"], false);
    assert!(
        r0["signalId"].is_string() && r0["contactId"].is_string() && r0["accountId"].is_string()
    );

    let b = processed(&app, &key, batch["receiptId"].as_str().unwrap()).await;
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{b}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["success"], true, "{b}");
    }
    // Same person, same company, resolved as a synchronous ingest resolves them.
    assert_eq!(results[0]["contactId"], r0["contactId"]);
    assert_eq!(results[1]["accountId"], r0["accountId"]);
    // The repeated idempotency key answers the first signal.
    assert_eq!(results[2]["deduplicated"], true);
    assert_eq!(results[2]["signalId"], r0["signalId"]);
    assert_eq!(signal_count(&app, &s).await, 3);

    // The same events and scoring as any ingest.
    let account = r0["accountId"].as_str().unwrap().to_owned();
    let scored = eventually(Duration::from_secs(20), "the account scored", || async {
        let r = app
            .graphql_as(
                s.token(),
                "query($id: ID!) { account(id: $id) { domain score { score } signals(first: 10) { totalCount } } }",
                json!({"id": account}),
            )
            .await;
        let a = ok(&r)["account"].clone();
        (!a["score"].is_null()).then_some(a)
    })
    .await;
    assert_eq!(scored["domain"], "later-co.io");
    assert_eq!(scored["signals"]["totalCount"], 3);
    let events = app
        .graphql_as(
            s.token(),
            "{ events(first: 20, types: [\"signal.created\"]) { type actorApiKeyId } }",
            json!({}),
        )
        .await;
    let events = ok(&events)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "{events:?}");
    // Written in the name of the key that sent them.
    assert!(
        events.iter().all(|e| e["actorApiKeyId"].is_string()),
        "{events:?}"
    );

    // A processed receipt keeps no items; a pending one does nothing else.
    assert_eq!(backlog(&app).await, 0);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("devsignal_signals_ingested_total{outcome=\"accepted\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("devsignal_signals_ingested_total{outcome=\"deduplicated\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("devsignal_signal_intake_pending 0"),
        "{metrics}"
    );

    // Without the preference, the same route still answers synchronously.
    let r = post(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "page_view"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn a_bad_item_refuses_the_whole_request_and_nothing_waits() {
    let app = spawn_app().await;
    let s = app.register("owner@strict.test", "Strict").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let read_only = app.api_key(&s, &["signals:read"]).await;
    let later = Some("respond-async");

    let r = post(
        &app,
        &key,
        "/api/v1/signals/batch",
        json!({"signals": [
            {"type": "signup", "actor": {"email": "ok@strict.io"}},
            {"type": 5},
            {"type": "docs_visit", "actor": {"email": "nope"}, "timestamp": "yesterday"},
            {"type": "x", "actorId": "not-a-uuid", "actor": {"mail": "typo@strict.io"}},
        ]}),
        later,
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "BAD_USER_INPUT", "{e}");
    let fields: Vec<&str> = e["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for want in [
        "signals.1",
        "signals.2.actor.email",
        "signals.2.timestamp",
        "signals.3.actor.mail",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    let r = post(&app, &key, "/api/v1/signals", json!({"type": ""}), later).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["fields"][0]["field"], "type", "{e}");
    let r = post(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "x", "accountId": "12"}),
        later,
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &app,
        &key,
        "/api/v1/signals/batch",
        json!({"signals": []}),
        later,
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &app,
        &read_only,
        "/api/v1/signals",
        json!({"type": "x"}),
        later,
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/api/v1/signals"))
        .header("Prefer", "respond-async")
        .json(&json!({"type": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(backlog(&app).await, 0, "nothing refused waits");
    assert_eq!(
        domain::signals::intake::drain_once(&app.db).await.unwrap(),
        None
    );
    assert_eq!(signal_count(&app, &s).await, 0);

    // A receipt id that is not one.
    let r = receipt(&app, &key, "nope").await;
    assert_eq!(r.status(), 400);
    let r = receipt(&app, &key, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn what_only_the_ingest_can_check_shows_in_the_receipt() {
    let app = spawn_app().await;
    let s = app.register("owner@late-check.test", "LateCheck").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let reader = app.api_key(&s, &["signals:read"]).await;
    let batch = accepted(
        &app,
        &key,
        "/api/v1/signals/batch",
        json!({"signals": [
            {"type": "signup", "actor": {"email": "bo@late-check.io"}},
            {"type": "signup", "sourceId": uuid::Uuid::now_v7().to_string()},
            {"type": "signup", "actorId": uuid::Uuid::now_v7().to_string()},
        ]}),
    )
    .await;
    let single = accepted(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "signup", "accountId": uuid::Uuid::now_v7().to_string()}),
    )
    .await;
    // A key with signals:read may follow the receipt too.
    let b = processed(&app, &reader, batch["receiptId"].as_str().unwrap()).await;
    assert_eq!(b["results"][0]["success"], true, "{b}");
    assert_eq!(b["results"][1]["success"], false);
    assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        b["results"][1]["error"]["fields"][0],
        json!({"field": "signals.1.sourceId", "message": "no such signal source"})
    );
    assert_eq!(
        b["results"][2]["error"]["fields"][0]["field"],
        "signals.2.actorId"
    );
    let one = processed(&app, &key, single["receiptId"].as_str().unwrap()).await;
    assert_eq!(
        one["results"][0]["error"]["fields"][0],
        json!({"field": "accountId", "message": "no such account"}),
        "a single signal's fields are named as it named them: {one}"
    );
    assert_eq!(signal_count(&app, &s).await, 1);
}

#[tokio::test]
async fn accepted_signals_wait_for_a_worker_and_are_stored_exactly_once() {
    let app = devsignal_tests::spawn_app_without_worker().await;
    let s = app.register("owner@no-worker.test", "NoWorker").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    // No idempotency keys and no timestamps: nothing would deduplicate a second store.
    let mut receipts = Vec::new();
    for i in 0..12 {
        let r = accepted(
            &app,
            &key,
            "/api/v1/signals",
            json!({"type": "api_call", "actor": {"email": format!("p{i}@no-worker.io")}}),
        )
        .await;
        receipts.push(r["receiptId"].as_str().unwrap().to_owned());
    }
    let batch = accepted(
        &app,
        &key,
        "/api/v1/signals/batch",
        json!({"signals": (0..8).map(|i| json!({"type": "docs_visit", "metadata": {"i": i}})).collect::<Vec<_>>()}),
    )
    .await;
    receipts.push(batch["receiptId"].as_str().unwrap().to_owned());
    assert_eq!(backlog(&app).await, 13);
    for id in &receipts {
        let r: Value = receipt(&app, &key, id).await.json().await.unwrap();
        assert_eq!(r["status"], "pending");
        assert!(r["results"].is_null());
    }
    assert_eq!(
        signal_count(&app, &s).await,
        0,
        "accepted, not yet ingested"
    );

    // Drainers racing each other (as several worker processes do) store each signal once.
    let drains: Vec<_> = (0..4)
        .map(|_| {
            let db = app.db.clone();
            tokio::spawn(async move {
                let mut items = 0;
                while let Some(d) = domain::signals::intake::drain_once(&db).await.unwrap() {
                    items += d.items;
                }
                items
            })
        })
        .collect();
    let mut items = 0;
    for d in drains {
        items += d.await.unwrap();
    }
    assert_eq!(items, 20);
    assert_eq!(signal_count(&app, &s).await, 20);
    assert_eq!(backlog(&app).await, 0);

    // A request that cannot be read back (a sender no longer understood) fails alone, with
    // the reason in its receipt, and never blocks the requests behind it.
    use sea_orm::{ActiveModelTrait, Set};
    let org: uuid::Uuid = s.organization_id.parse().unwrap();
    let broken = uuid::Uuid::now_v7();
    entity::signal_intake::ActiveModel {
        organization_id: Set(org),
        id: Set(broken),
        source: Set("api".into()),
        principal: Set("robot:7".into()),
        role: Set("MEMBER".into()),
        scopes: Set(json!([])),
        items: Set(json!({"prefix": "", "signals": [{"signalType": "x"}]})),
        item_count: Set(1),
        state: Set("pending".into()),
        results: Set(None),
        received_at: Set(chrono::Utc::now()),
        processed_at: Set(None),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let behind = accepted(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "behind@no-worker.io"}}),
    )
    .await;
    let d = domain::signals::intake::drain_once(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.requests, d.rejected, d.created), (1, 1, 0));
    let r: Value = receipt(&app, &key, &broken.to_string())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "processed");
    assert_eq!(r["results"][0]["success"], false, "{r}");
    assert_eq!(r["results"][0]["error"]["code"], "INTERNAL", "{r}");
    let d = domain::signals::intake::drain_once(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.requests, d.created), (1, 1));
    let r: Value = receipt(&app, &key, behind["receiptId"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][0]["success"], true, "{r}");
    assert_eq!(signal_count(&app, &s).await, 21);

    // Accepted while no worker runs, ingested once one starts.
    let later = accepted(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "late@no-worker.io"}}),
    )
    .await;
    let worker = server::start_worker(&app.state).await.unwrap();
    let r = processed(&app, &key, later["receiptId"].as_str().unwrap()).await;
    assert_eq!(r["results"][0]["success"], true, "{r}");
    assert_eq!(signal_count(&app, &s).await, 22);
    app.state.shutdown.cancel();
    worker.await.unwrap();
}

#[tokio::test]
async fn receipts_and_drained_signals_stay_in_their_organization() {
    let app = spawn_app().await;
    let (a, b) = app.two_tenants().await;
    let key_a = app.api_key(&a, &["signals:write"]).await;
    let key_b = app.api_key(&b, &["signals:write"]).await;
    let ra = accepted(
        &app,
        &key_a,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "x@tenant-a.io"}}),
    )
    .await;
    let rb = accepted(
        &app,
        &key_b,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "x@tenant-a.io"}}),
    )
    .await;
    let pa = processed(&app, &key_a, ra["receiptId"].as_str().unwrap()).await;
    let pb = processed(&app, &key_b, rb["receiptId"].as_str().unwrap()).await;
    // Each tenant's receipt is invisible to the other.
    assert_eq!(
        receipt(&app, &key_b, ra["receiptId"].as_str().unwrap())
            .await
            .status(),
        404
    );
    assert_eq!(
        receipt(&app, &key_a, rb["receiptId"].as_str().unwrap())
            .await
            .status(),
        404
    );
    // The same address became a person and a company in each organization, not one shared.
    assert_ne!(pa["results"][0]["contactId"], pb["results"][0]["contactId"]);
    assert_ne!(pa["results"][0]["accountId"], pb["results"][0]["accountId"]);
    assert_eq!(signal_count(&app, &a).await, 1);
    assert_eq!(signal_count(&app, &b).await, 1);
}

#[tokio::test]
async fn segment_calls_may_be_accepted_for_later_too() {
    let app = spawn_app().await;
    let s = app.register("owner@seg-later.test", "SegLater").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let send = |path: &'static str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .basic_auth(&key, Some(""))
            .header("Prefer", "respond-async")
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = send(
        "/v1/identify",
        json!({"userId": "u-7", "traits": {"email": "kim@seg-later.dev", "firstName": "Kim", "title": "CTO"},
               "messageId": "m-1"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let identify: Value = r.json().await.unwrap();
    let r = send(
        "/v1/batch",
        json!({"batch": [
            {"type": "track", "userId": "u-7", "event": "Deployed", "messageId": "m-2"},
            {"type": "track", "userId": "u-7", "event": "Deployed", "messageId": "m-2"},
        ]}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let batch: Value = r.json().await.unwrap();
    assert_eq!(batch["accepted"], 2);
    let i = processed(&app, &key, identify["receiptId"].as_str().unwrap()).await;
    assert_eq!(i["results"][0]["success"], true, "{i}");
    assert!(
        i["results"][0]["signalId"].is_null(),
        "identify stores no signal: {i}"
    );
    let b = processed(&app, &key, batch["receiptId"].as_str().unwrap()).await;
    // The person identify named, found again by the sender's user id.
    assert_eq!(b["results"][0]["contactId"], i["results"][0]["contactId"]);
    assert_eq!(b["results"][1]["deduplicated"], true, "{b}");
    let c = app
        .graphql_as(
            s.token(),
            "query($id: ID!) { contact(id: $id) { email firstName title } }",
            json!({"id": i["results"][0]["contactId"]}),
        )
        .await;
    assert_eq!(
        ok(&c)["contact"],
        json!({"email": "kim@seg-later.dev", "firstName": "Kim", "title": "CTO"})
    );
    assert_eq!(signal_count(&app, &s).await, 1);

    // A bad message refuses the batch whole, named by its place in it.
    let r = send(
        "/v1/batch",
        json!({"batch": [{"type": "track", "userId": "u-7", "event": "Ok"}, {"type": "track", "userId": "u-7"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["fields"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("batch.1"),
        "{e}"
    );
}
