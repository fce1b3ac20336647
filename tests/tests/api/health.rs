use std::time::Duration;

use devsignal_tests::{redis_url, spawn_app, spawn_app_with};
use serde_json::Value;

#[tokio::test]
async fn health_has_the_documented_shape() {
    let app = spawn_app().await;
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "{body}");
    for key in ["status", "timestamp", "uptime", "database", "redis"] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert!(body["uptime"].is_u64());
    let ts = body["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    assert!(ts.ends_with('Z'));
    let expected_redis = if redis_url().is_some() {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(body["redis"], expected_redis);
}

#[tokio::test]
async fn redis_configured_but_unreachable_is_degraded_not_down() {
    let app = spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis"], "error");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn redis_absent_is_disabled() {
    let app = spawn_app_with(&[("REDIS_URL", "")]).await;
    let body: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(body["redis"], "disabled");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn database_unreachable_answers_503() {
    let app = spawn_app().await;
    // Closing the pool makes every query fail, as a lost database would.
    app.db.close_by_ref().await.unwrap();
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["database"], "error");
    assert_eq!(body["status"], "error");
    assert_eq!(app.get("/health/ready").await.status(), 503);
}

#[tokio::test]
async fn ready_only_when_migrations_are_current() {
    let app = spawn_app().await;
    let resp = app.get("/health/ready").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["pendingMigrations"], 0);

    domain::db::migrate_down(&app.db, 1).await.unwrap();
    let resp = app.get("/health/ready").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["pendingMigrations"], 1);

    domain::db::migrate_up(&app.db).await.unwrap();
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn uptime_counts_seconds() {
    let app = spawn_app().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body: Value = app.get("/health").await.json().await.unwrap();
    assert!(body["uptime"].as_u64().unwrap() >= 1, "{body}");
}

/// While the database is away, requests say so retryably: `503`, code `UNAVAILABLE` and
/// `Retry-After`, never `500 INTERNAL` (REST, GraphQL, and authentication itself).
#[tokio::test]
async fn requests_answer_503_unavailable_with_retry_after_while_the_database_is_away() {
    let app = spawn_app().await;
    let s = app.register("away@health.test", "Away").await;
    app.db.close_by_ref().await.unwrap();

    let resp = app
        .post_json(
            "/api/v1/auth/login",
            &serde_json::json!({"email": "away@health.test", "password": "whatever you like"}),
        )
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");

    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .bearer_auth(s.token().unwrap())
        .json(&serde_json::json!({"query": "{ accounts(first: 1) { totalCount } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 5, "{body}");
    assert!(
        !body.to_string().contains("pool"),
        "no internals in the message: {body}"
    );
}

/// PostgreSQL goes away and comes back: meanwhile requests answer `503 UNAVAILABLE`; afterwards
/// the same process serves again without a restart.
#[tokio::test]
async fn after_the_database_comes_back_the_server_serves_again_without_a_restart() {
    let test_db = devsignal_tests::TestDatabase::new().await;
    if !test_db.is_postgres() {
        return; // a SQLite file cannot become unreachable; covered by the PostgreSQL pass
    }
    let mut url = url::Url::parse(&test_db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = devsignal_tests::FaultProxy::start(target).await;
    url.set_port(Some(proxy.port)).unwrap();
    let vars = devsignal_tests::test_vars(&test_db, &[("DATABASE_URL", url.as_str())]);
    let app = devsignal_tests::spawn_on(test_db, vars).await;
    let s = app.register("back@health.test", "Back").await;
    let query = |app: &devsignal_tests::TestApp| {
        app.client
            .post(app.url("/api/v1/graphql"))
            .bearer_auth(s.token().unwrap())
            .json(&serde_json::json!({"query": "{ accounts(first: 1) { totalCount } }"}))
            .send()
    };
    assert_eq!(query(&app).await.unwrap().status(), 200);

    proxy.cut();
    let resp = query(&app).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert_eq!(app.get("/health").await.status(), 503);

    proxy.restore();
    devsignal_tests::eventually(
        Duration::from_secs(30),
        "the server to serve again",
        || async {
            let resp = query(&app).await.ok()?;
            let body: Value = resp.json().await.ok()?;
            (body["data"]["accounts"]["totalCount"] == 0).then_some(())
        },
    )
    .await;
    assert_eq!(app.get("/health").await.status(), 200);
}

/// A REST request answers within `REQUEST_TIMEOUT_MS` even while the database does not answer
/// (a network partition: connections open, nothing comes back): `503` `TIMEOUT` with
/// `Retry-After`, never a request left hanging until its client gives up.
#[tokio::test]
async fn a_rest_request_answers_within_its_deadline_while_the_database_does_not_answer() {
    let test_db = devsignal_tests::TestDatabase::new().await;
    if !test_db.is_postgres() {
        return; // a SQLite file cannot become unreachable; covered by the PostgreSQL pass
    }
    let mut url = url::Url::parse(&test_db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = devsignal_tests::FaultProxy::start(target).await;
    url.set_port(Some(proxy.port)).unwrap();
    let vars = devsignal_tests::test_vars(
        &test_db,
        &[
            ("DATABASE_URL", url.as_str()),
            ("REQUEST_TIMEOUT_MS", "3000"),
        ],
    );
    let app = devsignal_tests::spawn_on(test_db, vars).await;
    let s = app.register("deadline@health.test", "Deadline").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let ingest = |app: &devsignal_tests::TestApp| {
        app.client
            .post(app.url("/api/v1/signals"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"type": "signup", "actor": {"email": "a@deadline.io"}}))
            .send()
    };
    assert_eq!(ingest(&app).await.unwrap().status(), 201);

    proxy.stall();
    let resp = ingest(&app).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TIMEOUT", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("REQUEST_TIMEOUT_MS"),
        "{body}"
    );
    proxy.restore();
    devsignal_tests::eventually(Duration::from_secs(30), "ingest to work again", || async {
        ingest(&app).await.ok()?.status().is_success().then_some(())
    })
    .await;
}
