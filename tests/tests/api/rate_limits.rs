//! Rate limits per client IP with the real default limits.

use devsignal_tests::{redis_url, spawn_app_with};
use serde_json::{Value, json};

/// The default limits (the harness raises them for other tests).
const DEFAULT_LIMITS: [(&str, &str); 2] = [("RATE_LIMIT_AUTH", ""), ("RATE_LIMIT_API", "")];

async fn bad_login(app: &devsignal_tests::TestApp, xff: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever you like"}));
    if let Some(ip) = xff {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_is_429_with_headers_and_a_json_error() {
    let app = spawn_app_with(&DEFAULT_LIMITS).await;
    for i in 1..=5 {
        let resp = bad_login(&app, None).await;
        assert_eq!(resp.status(), 401, "attempt {i}");
        assert_eq!(resp.headers()["ratelimit-limit"], "5");
        assert_eq!(
            resp.headers()["ratelimit-remaining"].to_str().unwrap(),
            (5 - i).to_string()
        );
    }
    let resp = bad_login(&app, None).await;
    assert_eq!(resp.status(), 429);
    let h = resp.headers();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-limit"], "5");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert!(h.contains_key("ratelimit-reset"));
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");

    // register and forgot-password share the auth limiter...
    let resp = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "new@example.com", "password": "long enough", "name": "N", "organizationName": "O"}),
        )
        .await;
    assert_eq!(resp.status(), 429);
    let resp = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "new@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), 429);
    // ...and so do the GraphQL twins.
    let resp = app
        .graphql(
            "mutation { login(email: \"nobody@example.com\", password: \"whatever you like\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(
        resp["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{resp}"
    );
    // Other limiters count on their own: a plain GraphQL query still works.
    let resp = app.graphql("{ serverInfo { version } }", json!({})).await;
    assert!(resp.get("errors").is_none(), "{resp}");
}

#[tokio::test]
async fn graphql_counts_against_the_api_limiter() {
    let app = spawn_app_with(&DEFAULT_LIMITS).await;
    for i in 0..100 {
        let resp = app.graphql("{ serverInfo { version } }", json!({})).await;
        assert!(resp.get("errors").is_none(), "request {i}: {resp}");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/graphql"))
        .json(&json!({"query": "{ serverInfo { version } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // Health is not under /api/v1 and is never limited.
    assert_eq!(app.get("/health").await.status(), 200);
}

/// Receipts of signals accepted for later ingest are reads: polling them spends the API budget,
/// not the sender's signal budget.
#[tokio::test]
async fn receipts_count_against_the_api_limiter_not_the_signal_one() {
    let app = spawn_app_with(&[("RATE_LIMIT_SIGNAL", "2"), ("RATE_LIMIT_API", "8")]).await;
    let s = app.register("owner@receipts.io", "Receipts").await;
    let key = app.api_key(&s, &["signals:write"]).await;
    let r = crate::intake::accepted(
        &app,
        &key,
        "/api/v1/signals",
        json!({"type": "signup", "actor": {"email": "a@receipts.io"}}),
    )
    .await;
    let receipt = app.url(r["receipt"].as_str().unwrap());
    let get = || app.client.get(&receipt).bearer_auth(&key).send();
    // Registering and making the key spent some of the API budget: poll until it is gone.
    let mut answered = 0;
    let refused = loop {
        let r = get().await.unwrap();
        if r.status() != 200 {
            break r;
        }
        answered += 1;
        assert!(answered <= 8, "the API limit never applied to receipts");
    };
    assert!(answered >= 2, "{answered}");
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api limiter"),
        "{body}"
    );
    // ...while the signal budget still has room for the second signal, and not a third.
    let send = || {
        app.client
            .post(app.url("/api/v1/signals"))
            .bearer_auth(&key)
            .json(&json!({"type": "signup", "actor": {"email": "b@receipts.io"}}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 201);
    assert_eq!(send().await.unwrap().status(), 429);
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_with_trust_proxy_and_read_from_the_right() {
    let app = spawn_app_with(&DEFAULT_LIMITS).await;
    for i in 0..5 {
        bad_login(&app, Some(&format!("203.0.113.{i}"))).await;
    }
    assert_eq!(bad_login(&app, Some("203.0.113.99")).await.status(), 429);

    // One proxy: it appends the address it saw; what the client wrote to the left is ignored,
    // so forging a new address per request buys no fresh budget.
    let app = spawn_app_with(&[
        ("RATE_LIMIT_AUTH", ""),
        ("RATE_LIMIT_API", ""),
        ("TRUST_PROXY", "true"),
    ])
    .await;
    for i in 0..5 {
        let forged = format!("198.51.100.{i}, 203.0.113.7");
        assert_eq!(bad_login(&app, Some(&forged)).await.status(), 401);
    }
    assert_eq!(
        bad_login(&app, Some("198.51.100.200, 203.0.113.7"))
            .await
            .status(),
        429
    );
    assert_eq!(bad_login(&app, Some("203.0.113.7")).await.status(), 429);
    // Another client behind the same proxy has its own counter.
    assert_eq!(bad_login(&app, Some("198.51.100.2")).await.status(), 401);

    // Two proxies (a CDN, then a load balancer): the client is the second entry from the right.
    let app = spawn_app_with(&[
        ("RATE_LIMIT_AUTH", ""),
        ("RATE_LIMIT_API", ""),
        ("TRUST_PROXY", "2"),
    ])
    .await;
    for i in 0..5 {
        let chain = format!("192.0.2.{i}, 203.0.113.8, 10.0.0.{i}");
        assert_eq!(bad_login(&app, Some(&chain)).await.status(), 401);
    }
    assert_eq!(
        bad_login(&app, Some("203.0.113.8, 10.0.0.9"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn without_redis_or_when_redis_is_down_counting_falls_back_to_the_process() {
    // Nothing listens on port 1: every Redis call fails.
    let app = spawn_app_with(&[
        ("RATE_LIMIT_AUTH", ""),
        ("RATE_LIMIT_API", ""),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ])
    .await;
    for _ in 0..5 {
        assert_eq!(bad_login(&app, None).await.status(), 401);
    }
    assert_eq!(bad_login(&app, None).await.status(), 429);
}

#[tokio::test]
async fn with_redis_the_counters_live_under_rl_limiter_ip() {
    let Some(url) = redis_url() else {
        return; // covered by the PostgreSQL + Redis pass
    };
    let app = spawn_app_with(&DEFAULT_LIMITS).await;
    for _ in 0..3 {
        bad_login(&app, None).await;
    }
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = &app.state.config.redis_key_prefix;
    let auth: u64 = redis::cmd("GET")
        .arg(format!("{prefix}rl:auth:127.0.0.1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(auth, 3);
    let api: u64 = redis::cmd("GET")
        .arg(format!("{prefix}rl:api:127.0.0.1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(api, 3);
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}rl:auth:127.0.0.1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");
}

async fn redis_health(app: &devsignal_tests::TestApp) -> String {
    let body: Value = app.get("/health").await.json().await.unwrap();
    body["redis"].as_str().unwrap_or_default().to_owned()
}

/// Redis killed and started again: the limiter goes on counting in the process from where Redis
/// was (no fresh budget), and once Redis is back every process reconnects by itself — health
/// says `ok` again and the counters live in Redis again.
#[tokio::test]
async fn after_a_redis_restart_the_budget_holds_and_the_server_reconnects() {
    let mut redis = devsignal_tests::processes::OwnRedis::start(crate::cli::free_port());
    let url = redis.url();
    let app = spawn_app_with(&[
        ("RATE_LIMIT_AUTH", ""),
        ("RATE_LIMIT_API", ""),
        ("REDIS_URL", &url),
    ])
    .await;
    assert_eq!(redis_health(&app).await, "ok");
    for _ in 0..3 {
        assert_eq!(bad_login(&app, None).await.status(), 401);
    }

    redis.kill();
    // Counting falls back to the process, which goes on from 3.
    for _ in 0..2 {
        assert_eq!(bad_login(&app, None).await.status(), 401);
    }
    assert_eq!(bad_login(&app, None).await.status(), 429);
    assert_eq!(redis_health(&app).await, "error");

    redis.restart();
    devsignal_tests::eventually(
        std::time::Duration::from_secs(20),
        "health to see Redis again",
        || async { (redis_health(&app).await == "ok").then_some(()) },
    )
    .await;
    // The limiter uses Redis again (after its back-off): the API counter appears there.
    let client = redis::Client::open(url.as_str()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}rl:api:127.0.0.1", app.state.config.redis_key_prefix);
    devsignal_tests::eventually(
        std::time::Duration::from_secs(20),
        "the rate limiter to count in Redis again",
        || async {
            app.get("/api/v1/auth/me").await;
            let n: Option<u64> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn.clone())
                .await
                .unwrap();
            n.filter(|n| *n > 0)
        },
    )
    .await;
}
