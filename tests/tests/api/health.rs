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
