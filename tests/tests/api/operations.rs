//! What operators watch and tune: the figures of `/metrics` (pools, process, Redis,
//! integrations) on the server and on a worker, the rate-limit allowlist and overrides (runbook
//! 5.6), the rate-limit log line, and Sentry performance traces.

use std::time::Duration;

use devsignal_tests::connectors::connect;
use devsignal_tests::processes::{Proc, free_port};
use devsignal_tests::{
    Recorder, TestApp, TestDatabase, eventually, redis_url, spawn_app_with, spawn_on, test_vars,
};
use serde_json::{Value, json};

/// The value of the series starting with `series` (name and labels) in an exposition.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_show_the_pools_the_process_redis_and_integrations() {
    let app = spawn_app_with(&[("GITHUB_API_URL", "http://127.0.0.1:9")]).await;
    let s = app.register("ops@vendor.io", "Vendor").await;
    connect(&app, &s, "GITHUB", json!({"repos": ["acme/widget"]}), None).await;
    connect(&app, &s, "NPM", json!({"packages": ["widget"]}), None).await;
    let text = app.get("/metrics").await.text().await.unwrap();

    assert_eq!(
        value(
            &text,
            r#"devsignal_db_pool_max_connections{pool="serving"}"#
        ),
        Some(10.0),
        "{text}"
    );
    let in_use = value(
        &text,
        r#"devsignal_db_pool_connections{pool="serving",state="in_use"}"#,
    );
    let idle = value(
        &text,
        r#"devsignal_db_pool_connections{pool="serving",state="idle"}"#,
    );
    assert!(in_use.is_some() && idle.is_some(), "{text}");
    assert!(in_use.unwrap() + idle.unwrap() <= 10.0);
    // The worker role runs in this process with its own pool.
    assert!(
        value(&text, r#"devsignal_db_pool_max_connections{pool="worker"}"#).is_some(),
        "{text}"
    );

    let rss = value(&text, "devsignal_process_resident_memory_bytes ").unwrap();
    assert!(rss > 1e6, "{rss}");
    assert!(value(&text, "devsignal_process_cpu_seconds_total ").unwrap() > 0.0);
    assert!(value(&text, "devsignal_process_open_fds ").unwrap() >= 3.0);
    assert!(value(&text, "devsignal_process_threads ").unwrap() >= 2.0);
    let started = value(&text, "devsignal_process_start_time_seconds ").unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(started <= now && started > now - 86_400.0, "{started}");
    // The allocator's own account: live bytes fit in the pages that hold them, which are
    // resident; the test process (server and client) has allocated at least a megabyte.
    let heap = |kind: &str| {
        value(
            &text,
            &format!("devsignal_allocator_bytes{{kind=\"{kind}\"}}"),
        )
        .unwrap_or_else(|| panic!("allocator {kind} in {text}"))
    };
    assert!(heap("allocated") > 1e6, "{text}");
    assert!(heap("allocated") <= heap("active"), "{text}");
    assert!(heap("active") <= heap("resident"), "{text}");
    assert!(heap("metadata") > 0.0, "{text}");
    assert!(heap("retained") >= 0.0, "{text}");

    if redis_url().is_some() {
        assert_eq!(value(&text, "devsignal_redis_up "), Some(1.0), "{text}");
        let ping = value(&text, "devsignal_redis_ping_seconds ").unwrap();
        assert!((0.0..1.0).contains(&ping), "{ping}");
    } else {
        assert!(!text.contains("devsignal_redis_up "), "{text}");
    }

    let per_kind = |kind: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("devsignal_integrations{{kind=\"{kind}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(per_kind("GITHUB"), 1.0, "{text}");
    assert_eq!(per_kind("NPM"), 1.0, "{text}");

    // CPU time only grows.
    let cpu = |t: &str| value(t, "devsignal_process_cpu_seconds_total ").unwrap();
    let again = app.get("/metrics").await.text().await.unwrap();
    assert!(cpu(&again) >= cpu(&text));
}

/// Open connections of a pool in an exposition (in use and idle).
fn pool_open(text: &str, pool: &str) -> f64 {
    ["in_use", "idle"]
        .iter()
        .filter_map(|state| {
            value(
                text,
                &format!(r#"devsignal_db_pool_connections{{pool="{pool}",state="{state}"}}"#),
            )
        })
        .sum()
}

#[tokio::test]
async fn a_pool_closes_the_connections_a_burst_opened_once_they_idle() {
    let app = spawn_app_with(&[("DATABASE_IDLE_TIMEOUT", "3s")]).await;
    let s = app.register("pool@vendor.io", "Vendor").await;
    let burst = || async {
        let requests = (0..32).map(|_| {
            app.graphql_as(
                Some(&s.access_token),
                "{ accounts(first: 5) { edges { node { id } } } }",
                json!({}),
            )
        });
        for body in futures::future::join_all(requests).await {
            assert!(body["errors"].is_null(), "{body}");
        }
        pool_open(&app.get("/metrics").await.text().await.unwrap(), "serving")
    };
    let mut peak = 0.0;
    for _ in 0..5 {
        peak = burst().await;
        if peak >= 6.0 {
            break;
        }
    }
    assert!(
        peak >= 6.0,
        "32 requests at once opened only {peak} connections"
    );
    // Nothing asks for a serving connection meanwhile: the reaper (every 3 s) closes what sat
    // idle past 3 s. The scrape that looks needs a few again. (The pool hands out its
    // longest-idle connection first, so a pool in steady light use keeps its size: here the
    // worker's, polling every 50 ms.)
    // A busy machine may reap late: look again (rarely, so as not to keep them busy).
    let mut open = peak;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(7)).await;
        let text = app.get("/metrics").await.text().await.unwrap();
        open = pool_open(&text, "serving");
        if open <= 3.0 {
            break;
        }
    }
    assert!(open <= 3.0, "{open} of {peak} connections still open");
}

#[tokio::test]
async fn a_worker_serves_metrics_on_its_health_port() {
    let db = TestDatabase::new().await;
    let port = free_port();
    let dir = db.dir.path().display().to_string();
    let port_text = port.to_string();
    let mut worker = Proc::start(
        db.dir.path(),
        &["worker"],
        &[
            ("DATABASE_URL", &db.url),
            ("DATA_DIR", &dir),
            ("WORKER_HEALTH_PORT", &port_text),
        ],
    );
    worker.wait_for_line("DevSignal worker running").await;
    // The worker's pool is opened as its loops start, just after the health port.
    let text = eventually(
        Duration::from_secs(20),
        "the worker pool's figures",
        || async {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            value(&text, r#"devsignal_db_pool_max_connections{pool="worker"}"#).map(|_| text)
        },
    )
    .await;
    assert!(text.contains(r#"devsignal_queue_jobs{queue="#), "{text}");
    assert!(value(&text, "devsignal_process_resident_memory_bytes ").unwrap() > 1e6);
    assert!(worker.terminate().success());
}

async fn api_call(app: &TestApp, key: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/graphql"))
        .json(&json!({"query": "{ serverInfo { version } }"}));
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    req.send().await.unwrap()
}

/// Sends requests until one is refused; returns how many passed and the last answer.
async fn passes(app: &TestApp, key: Option<&str>, most: usize) -> (usize, reqwest::Response) {
    let mut passed = 0;
    loop {
        let resp = api_call(app, key).await;
        if resp.status() == 429 || passed == most {
            return (passed, resp);
        }
        assert_eq!(resp.status(), 200);
        passed += 1;
    }
}

#[tokio::test]
async fn the_operator_can_allowlist_an_address_and_raise_a_key_or_a_range() {
    // A key's prefix is known once the key exists: make it, then start again with overrides.
    let mut app = spawn_app_with(&[]).await;
    let s = app.register("ops@vendor.io", "Vendor").await;
    let key = app.api_key(&s, &["accounts:read"]).await;
    let prefix = key[..12].to_owned();
    let test_db = std::mem::replace(&mut app.test_db, TestDatabase::sqlite());
    app.shutdown().await.unwrap();
    let mut vars = test_vars(
        &test_db,
        &[
            ("RATE_LIMIT_API", "2"),
            ("RATE_LIMIT_OVERRIDES", &format!("{prefix}=api:4")),
        ],
    );
    // Each test app has its own Redis prefix; the counters of this one start empty.
    vars.insert(
        "REDIS_KEY_PREFIX".into(),
        format!("test:{}:", uuid::Uuid::new_v4().simple()),
    );
    let mut app = spawn_on(test_db, vars).await;
    // The key counts as itself with its own limit...
    let (n, refused) = passes(&app, Some(&key), 10).await;
    assert_eq!(n, 4);
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["ratelimit-limit"], "4");
    // ...and the address keeps its own budget.
    let (n, refused) = passes(&app, None, 10).await;
    assert_eq!(n, 2);
    assert_eq!(refused.headers()["ratelimit-limit"], "2");

    // A range's override.
    let test_db = std::mem::replace(&mut app.test_db, TestDatabase::sqlite());
    app.shutdown().await.unwrap();
    let vars = test_vars(
        &test_db,
        &[
            ("RATE_LIMIT_API", "2"),
            (
                "RATE_LIMIT_OVERRIDES",
                "10.0.0.0/8=api:50;127.0.0.0/8=api:3",
            ),
        ],
    );
    let mut app = spawn_on(test_db, vars).await;
    let (n, refused) = passes(&app, None, 10).await;
    assert_eq!(n, 3);
    assert_eq!(refused.headers()["ratelimit-limit"], "3");

    // The allowlist: never limited, no limit shown.
    let test_db = std::mem::replace(&mut app.test_db, TestDatabase::sqlite());
    app.shutdown().await.unwrap();
    let vars = test_vars(
        &test_db,
        &[
            ("RATE_LIMIT_API", "1"),
            ("RATE_LIMIT_ALLOWLIST", "192.0.2.1, 127.0.0.1/32, ::1"),
        ],
    );
    let app = spawn_on(test_db, vars).await;
    let (n, last) = passes(&app, None, 8).await;
    assert_eq!(n, 8);
    assert!(!last.headers().contains_key("ratelimit-limit"));
}

#[test]
fn bad_allowlists_and_overrides_stop_the_start_naming_the_variable() {
    let db = TestDatabase::sqlite();
    for (var, value, says) in [
        (
            "RATE_LIMIT_ALLOWLIST",
            "10.0.0.0/33",
            "not an IP address or CIDR range",
        ),
        (
            "RATE_LIMIT_OVERRIDES",
            "10.0.0.1",
            "is not `subject=limiter:n`",
        ),
        ("RATE_LIMIT_OVERRIDES", "10.0.0.1=api", "is not `limiter:n`"),
        (
            "RATE_LIMIT_OVERRIDES",
            "10.0.0.1=graphql:5",
            "is not a limiter",
        ),
        (
            "RATE_LIMIT_OVERRIDES",
            "10.0.0.1=api:lots",
            "requests per minute",
        ),
        (
            "RATE_LIMIT_OVERRIDES",
            "dsk_short=api:5",
            "not an API key prefix",
        ),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5", "from 0 to 1"),
    ] {
        let vars = test_vars(&db, &[(var, value)]);
        let err = server::config::Config::from_vars(&vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(var) && err.contains(says),
            "{var}={value}: {err}"
        );
    }
}

#[tokio::test]
async fn rate_limit_lines_name_the_client_and_route_and_traces_reach_sentry() {
    let sentry = Recorder::start().await;
    let dsn = sentry.address.replace("http://", "http://publickey@") + "/42";
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut proc = Proc::start(
        cwd.path(),
        &["serve"],
        &[
            ("PORT", &port),
            ("LOG_FORMAT", "json"),
            ("RATE_LIMIT_AUTH", "1"),
            ("SENTRY_DSN", &dsn),
            ("SENTRY_TRACES_SAMPLE_RATE", "1"),
            ("SENTRY_RELEASE", "devsignal@ops-test"),
        ],
    );
    proc.wait_for_line("listening on").await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        client
            .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "whatever you like"}))
            .send()
            .await
            .unwrap();
    }
    let line = proc.wait_for_line("rate limit exceeded").await;
    let line: Value = serde_json::from_str(&line).unwrap();
    let fields = if line["fields"].is_object() {
        &line["fields"]
    } else {
        &line
    };
    assert_eq!(fields["ip"], "127.0.0.1", "{line}");
    assert_eq!(fields["route"], "/api/v1/auth/login", "{line}");
    assert_eq!(fields["limiter"], "auth", "{line}");

    // Each request is a transaction, tagged with the release.
    let body = eventually(Duration::from_secs(20), "a Sentry transaction", || async {
        sentry
            .received()
            .into_iter()
            .map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned())
            .find(|b| b.contains(r#""type":"transaction""#))
    })
    .await;
    assert!(body.contains("devsignal@ops-test"), "{body}");
    assert!(proc.terminate().success());
}
