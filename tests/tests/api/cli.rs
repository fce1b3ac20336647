//! The `devsignal` binary as an operator runs it.

use std::path::Path;
use std::time::Duration;

use devsignal_tests::{TestDatabase, devsignal_bin, eventually};
use serde_json::Value;

pub(crate) use devsignal_tests::processes::{Proc, free_port};

pub(crate) async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    // A directory of its own, so nothing a command writes lands in the source tree.
    let cwd = tempfile::tempdir().unwrap();
    run_in(cwd.path(), args, env).await
}

/// Runs `devsignal` in `cwd` with nothing but `PATH` and `env` set: (status, stdout, stderr).
///
/// The wait is asynchronous: a server the test started in-process shares the test's runtime, and
/// blocking that runtime while one of its tasks holds SQLite's write lock (the intake drainer,
/// the job poller) would leave the command waiting out the busy timeout.
pub(crate) async fn run_in(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(devsignal_bin());
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run devsignal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_fresh_start_with_nothing_set_serves_and_keeps_its_secrets() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut proc = Proc::start(cwd.path(), &[], &[("PORT", &port)]);
    let line = proc.wait_for_line("listening on").await;
    assert!(line.contains(&port), "{line}");

    let data = cwd.path().join("data");
    assert!(data.join("devsignal.db").exists());
    assert!(
        data.join("devsignal.db-wal").exists(),
        "SQLite is not in WAL mode"
    );
    let secrets = std::fs::read_to_string(data.join("secrets.json")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secrets.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["redis"], "disabled");

    let status = proc.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        proc.output()
            .iter()
            .any(|l| l.contains("shut down cleanly"))
    );
    // Not a terminal: no ANSI colour codes in the lines.
    assert!(
        !proc.output().iter().any(|l| l.contains('\x1b')),
        "{:?}",
        proc.output()
    );

    // A restart reuses the same secrets (sessions stay valid) and the same database.
    let mut again = Proc::start(cwd.path(), &["serve"], &[("PORT", &port)]);
    again.wait_for_line("listening on").await;
    assert_eq!(
        std::fs::read_to_string(data.join("secrets.json")).unwrap(),
        secrets
    );
    assert!(again.terminate().success());
}

#[tokio::test]
async fn json_logs_carry_the_request_id_on_the_request_line() {
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut proc = Proc::start(
        cwd.path(),
        &["serve"],
        &[("PORT", &port), ("LOG_FORMAT", "json")],
    );
    proc.wait_for_line("listening on").await;
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .header("x-request-id", "trace-abc")
        .send()
        .await
        .unwrap();
    let line = proc.wait_for_line("GET /health 200").await;
    let v: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["level"], "info");
    assert_eq!(v["requestId"], "trace-abc");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("GET /health 200 ")
    );
    assert!(v["message"].as_str().unwrap().ends_with("ms"));
    assert!(v["timestamp"].is_string());

    // Once the request is authenticated, its line says who made it.
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": "logs@cli.test", "password": "correct horse battery", "name": "Logs", "organizationName": "Logs"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reg["accessToken"].as_str().expect("an access token");
    http.post(format!("http://127.0.0.1:{port}/api/v1/graphql"))
        .bearer_auth(token)
        .json(&serde_json::json!({"query": "{ viewer { role } }"}))
        .send()
        .await
        .unwrap();
    let line = proc.wait_for_line("POST /api/v1/graphql 200").await;
    let v: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["organizationId"], reg["organization"]["id"], "{line}");
    assert_eq!(v["userId"], reg["user"]["id"], "{line}");
    for line in proc.output() {
        assert!(
            serde_json::from_str::<Value>(&line).is_ok(),
            "not JSON: {line}"
        );
    }
    assert!(proc.terminate().success());
}

#[tokio::test]
async fn migrate_up_status_down_on_the_test_database() {
    let db = TestDatabase::new().await;
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("DATA_DIR", db.dir.path().to_str().unwrap()),
    ];

    let (code, out, err) = run(&["migrate", "status"], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pending"), "{out}");
    assert!(out.contains("0 applied"), "{out}");

    let (code, out, err) = run(&["migrate", "up"], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("applied 0 "), "{out}");
    // twice is harmless
    let (code, out, _) = run(&["migrate", "up"], &env).await;
    assert_eq!(code, 0);
    assert!(out.contains("applied 0 migration"), "{out}");

    let (_, out, _) = run(&["migrate", "status"], &env).await;
    assert!(out.contains(", 0 pending"), "{out}");

    let (code, out, err) = run(&["migrate", "down", "1"], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rolled back 1 migration"), "{out}");
    let (_, out, _) = run(&["migrate", "status"], &env).await;
    assert!(out.contains(", 1 pending"), "{out}");
    // Operator commands write no development secrets.
    assert!(!db.dir.path().join("secrets.json").exists());
}

#[tokio::test]
async fn production_refuses_to_start_and_names_each_problem() {
    let secret = "s".repeat(64);
    let (code, out, err) = run(
        &["serve"],
        &[
            ("NODE_ENV", "production"),
            ("DATABASE_URL", "postgres://user:pw@"),
            ("JWT_SECRET", "too-short-secret-value"),
            ("JWT_REFRESH_SECRET", &secret),
            ("CORS_ORIGIN", "https://app.example.com"),
        ],
    )
    .await;
    assert_eq!(code, 78, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    for var in [
        "DATABASE_URL",
        "JWT_SECRET",
        "FRONTEND_URL",
        "API_URL",
        "RESEND_API_KEY",
        "ENCRYPTION_KEY",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("configuration error: {var}: "))),
            "no line names {var}:\n{err}"
        );
    }
    assert!(
        !err.contains("too-short-secret-value"),
        "a secret leaked:\n{err}"
    );
    assert!(!err.contains(&secret), "a secret leaked:\n{err}");

    let (code, _, err) = run(
        &["serve"],
        &[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", &secret),
            ("JWT_REFRESH_SECRET", &secret),
        ],
    )
    .await;
    assert_eq!(code, 78);
    assert!(
        err.contains("JWT_REFRESH_SECRET: must differ from JWT_SECRET"),
        "{err}"
    );
}

/// Production starts without the keys of features it does not run (AI briefs, billing) and
/// without Redis (warning that limits and live events are then per process); it hides the
/// schema (no introspection, no GraphiQL, no "Did you mean" hints) and serves `/metrics` only
/// with its token.
#[tokio::test]
async fn a_valid_production_configuration_starts() {
    let db = TestDatabase::new().await;
    let port = free_port().to_string();
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let metrics_token = "m".repeat(40);
    let base = [
        ("NODE_ENV", "production"),
        ("PORT", port.as_str()),
        ("DATABASE_URL", db.url.as_str()),
        ("JWT_SECRET", a.as_str()),
        ("JWT_REFRESH_SECRET", b.as_str()),
        ("CORS_ORIGIN", "https://app.example.com"),
        ("FRONTEND_URL", "https://app.example.com"),
        ("API_URL", "https://api.example.com"),
        ("RESEND_API_KEY", "re_x"),
        (
            "ENCRYPTION_KEY",
            "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        ),
    ];
    let cwd = tempfile::tempdir().unwrap();
    let mut env = base.to_vec();
    env.push(("METRICS_TOKEN", metrics_token.as_str()));
    let mut proc = Proc::start(cwd.path(), &["serve"], &env);
    let line = proc.wait_for_line("listening on").await;
    let v: Value = serde_json::from_str(&line).expect("production logs are JSON");
    assert_eq!(v["level"], "info");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let resp = reqwest::get(url("/health")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("strict-transport-security"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["redis"], "disabled");
    assert!(
        proc.output()
            .iter()
            .any(|l| l.contains("REDIS_URL is not set") && l.contains("\"level\":\"warn\"")),
        "no warning about running without Redis"
    );

    let client = reqwest::Client::new();
    let gql = |query: &str| {
        client
            .post(url("/api/v1/graphql"))
            .json(&serde_json::json!({ "query": query }))
            .send()
    };
    let r: Value = gql("{ __schema { queryType { name } } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Introspection is off: the schema is not described.
    assert!(
        r["data"].is_null() || r["data"]["__schema"].is_null(),
        "{r}"
    );
    assert!(!r.to_string().contains("Query"), "{r}");
    let r: Value = gql("{ serverTim }").await.unwrap().json().await.unwrap();
    let message = r["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("serverTim"), "{r}");
    assert!(
        !message.contains("Did you mean"),
        "a hint leaks the schema: {r}"
    );
    assert_eq!(reqwest::get(url("/graphiql")).await.unwrap().status(), 404);

    let resp = reqwest::get(url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(url("/metrics"))
        .bearer_auth(&metrics_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("devsignal_http_requests")
    );
    for line in proc.output() {
        for secret in [a.as_str(), b.as_str(), "re_x", metrics_token.as_str()] {
            assert!(!line.contains(secret), "secret in log: {line}");
        }
    }
    assert!(proc.terminate().success());

    // Without METRICS_TOKEN, production serves no /metrics at all.
    let mut proc = Proc::start(cwd.path(), &["serve"], &base);
    proc.wait_for_line("listening on").await;
    assert_eq!(reqwest::get(url("/metrics")).await.unwrap().status(), 404);
    assert!(proc.terminate().success());
}

#[tokio::test]
async fn schema_command_prints_the_committed_contract() {
    let (code, out, _) = run(&["schema"], &[]).await;
    assert_eq!(code, 0);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql"))
            .unwrap_or_default();
    assert_eq!(out, committed);
}

#[tokio::test]
async fn errors_reach_sentry_when_a_dsn_is_set() {
    let sentry = devsignal_tests::Recorder::start().await;
    let dsn = sentry.address.replace("http://", "http://publickey@") + "/42";
    // A database path that cannot be created makes the command fail with an error-level log.
    // The fake Sentry answers on this test's runtime while the command runs.
    let (code, _, err) = run(
        &["migrate", "status"],
        &[
            ("SENTRY_DSN", &dsn),
            ("DATABASE_URL", "sqlite:///proc/devsignal-nope/x.db"),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    let received = eventually(Duration::from_secs(10), "a Sentry envelope", || async {
        let got = sentry.received();
        (!got.is_empty()).then_some(got)
    })
    .await;
    let (method, path, body) = &received[0];
    assert_eq!(method, "POST");
    assert_eq!(path, "/api/42/envelope/");
    let body = String::from_utf8_lossy(body);
    assert!(body.contains("devsignal failed"), "{body}");
}

#[tokio::test]
async fn a_sentry_that_never_answers_does_not_hold_the_process() {
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dsn = format!("http://publickey@{}/42", silent.local_addr().unwrap());
    devsignal_bin(); // build first: only the command's own run is bounded below
    let started = std::time::Instant::now();
    let (code, _, err) = run(
        &["migrate", "status"],
        &[
            ("SENTRY_DSN", &dsn),
            ("DATABASE_URL", "sqlite:///proc/devsignal-nope/x.db"),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    // Bounded by the transport's timeout, not forever (a generous bound, not a timing test).
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(silent);
}

/// Operator commands run from a directory that holds no database (the default `./data`, or an
/// empty file) refuse, once, with the path and the variables that point elsewhere, and create
/// nothing.
#[tokio::test]
async fn operator_commands_never_create_a_database() {
    let cwd = tempfile::tempdir().unwrap();
    let expected = cwd.path().join("data").join("devsignal.db");
    for args in [
        &["jobs", "status"][..],
        &["api-keys", "revoke", "dsk_nothere0"],
        &[
            "api-keys", "create", "--org", "Acme", "--name", "ci", "--scopes", "admin",
        ],
    ] {
        let (code, out, err) = run_in(cwd.path(), args, &[]).await;
        assert_ne!(code, 0, "{args:?}");
        assert!(!cwd.path().join("data").exists(), "{args:?} created ./data");
        assert!(
            err.contains(&format!("no DevSignal database at {}", expected.display())),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("DATA_DIR") && err.contains("DATABASE_URL"),
            "{err}"
        );
        let all = format!("{out}{err}");
        assert_eq!(
            all.matches("no DevSignal database").count(),
            1,
            "once: {all}"
        );
        assert!(!all.contains('\x1b'), "no colours: {all:?}");
    }

    // An empty file where the database should be (what the old behaviour left behind): named
    // as such, once, never as a raw SQL error.
    std::fs::create_dir(cwd.path().join("data")).unwrap();
    std::fs::write(&expected, b"").unwrap();
    let (code, out, err) = run_in(cwd.path(), &["jobs", "status"], &[]).await;
    assert_ne!(code, 0);
    let all = format!("{out}{err}");
    assert_eq!(all.matches("holds no DevSignal tables").count(), 1, "{all}");
    assert!(
        all.contains("DATA_DIR") && all.contains("migrate up"),
        "{all}"
    );
    assert!(!all.contains("no such table"), "{all}");
    assert_eq!(std::fs::metadata(&expected).unwrap().len(), 0);
}
