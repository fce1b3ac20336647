//! The one test harness. [`spawn_app`] starts the real server on port 0 against a
//! fresh database — a temporary SQLite file by default, or a new PostgreSQL database (dropped
//! afterwards) when `TEST_DATABASE_URL` points at a server — and returns a [`TestApp`] with
//! helpers for GraphQL, WebSocket and REST calls. With `REDIS_URL` set the app uses that Redis,
//! under a key prefix of its own. Logs are silent unless `TEST_LOG` is set.
//!
//! Process-level tests (CLI commands, signals) use [`devsignal_bin`] and [`TestDatabase`].

// This crate is test support: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bench;
pub mod connectors;
pub mod fakes;
pub mod processes;
pub mod ws;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use server::config::Config;
use server::state::AppState;
use tokio_util::sync::CancellationToken;

pub use ws::WsClient;

/// The Redis server tests use when `REDIS_URL` is set.
pub fn redis_url() -> Option<String> {
    std::env::var("REDIS_URL").ok().filter(|v| !v.is_empty())
}

/// The PostgreSQL server tests use when `TEST_DATABASE_URL` is set.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|v| v.starts_with("postgres"))
}

fn init_once() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let config = Config::from_vars(&HashMap::new()).expect("default config");
            std::mem::forget(server::telemetry::init(&config));
        }
    });
}

/// A database of its own for one test.
pub struct TestDatabase {
    pub url: String,
    /// The directory the SQLite file lives in; also usable as `DATA_DIR`.
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A new, empty database (no migrations applied).
    pub async fn new() -> Self {
        match postgres_admin_url() {
            None => Self::sqlite(),
            Some(admin) => {
                init_once();
                let dir = tempfile::tempdir().expect("temp dir");
                let db = Self::postgres_in(admin, "ds_test", dir).await;
                db.commit_without_waiting_for_disk().await;
                db
            }
        }
    }

    /// A new, empty SQLite database in a temporary directory, whatever `TEST_DATABASE_URL`
    /// says (for benches that measure SQLite).
    pub fn sqlite() -> Self {
        init_once();
        let dir = tempfile::tempdir().expect("temp dir");
        TestDatabase {
            url: format!("sqlite://{}/devsignal.db?mode=rwc", dir.path().display()),
            dir,
            postgres: None,
        }
    }

    /// A new, empty PostgreSQL database `<prefix>_<uuid>` on the server of `admin_url` (a URL
    /// whose role may create databases), dropped when this value is dropped. For benches, which
    /// name their server explicitly rather than through `TEST_DATABASE_URL`.
    pub async fn postgres(admin_url: &str, prefix: &str) -> Self {
        init_once();
        let dir = tempfile::tempdir().expect("temp dir");
        Self::postgres_in(admin_url.to_owned(), prefix, dir).await
    }

    async fn postgres_in(admin: String, prefix: &str, dir: tempfile::TempDir) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin_run(&admin, format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&admin).expect("the PostgreSQL admin URL is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            dir,
            postgres: Some((admin, name)),
        }
    }

    /// Commits on this database return before their WAL reaches the disk
    /// (`synchronous_commit = off` for every session that connects to it from now on). A test
    /// database lives for one test and the server it lives on keeps running, so a commit it
    /// acknowledges is never lost; what goes is an fsync per commit, which the suite's hundreds of
    /// migrated databases and two side-by-side passes otherwise queue behind on a slow disk.
    /// Benches keep the default: they measure what production pays.
    async fn commit_without_waiting_for_disk(&self) {
        let Some((admin, name)) = &self.postgres else {
            return;
        };
        admin_run(
            admin,
            format!("ALTER DATABASE {name} SET synchronous_commit = off"),
        )
        .await;
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

/// Runs `sql` on the PostgreSQL server of `admin` (a URL whose role may create databases).
async fn admin_run(admin: &str, sql: String) {
    let conn = Database::connect(admin)
        .await
        .expect("connect to the PostgreSQL admin URL");
    conn.execute_raw(Statement::from_string(
        conn.get_database_backend(),
        sql.clone(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(conn) = Database::connect(&admin).await {
                    let _ = conn
                        .execute_raw(Statement::from_string(
                            conn.get_database_backend(),
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        ))
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// The variables every test app starts from; `extra` overrides or adds.
pub fn test_vars(db: &TestDatabase, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("NODE_ENV", "test".to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("DATABASE_URL", db.url.clone()),
        ("DATA_DIR", db.dir.path().display().to_string()),
        ("JWT_SECRET", server::config::random_hex(64)),
        ("JWT_REFRESH_SECRET", server::config::random_hex(64)),
        (
            "REDIS_KEY_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("WEBHOOK_ALLOW_PRIVATE", "true".to_owned()),
        ("ENCRYPTION_KEY", server::config::random_hex(32)),
        ("WEBHOOK_POLL_INTERVAL_MS", "50".to_owned()),
        ("JOB_POLL_INTERVAL_MS", "50".to_owned()),
        // Rate limits lifting within a second are sat out inside a run; longer ones stop it
        // (tests of BACKOFF use resets a few seconds away).
        ("CONNECTOR_MAX_INLINE_WAIT_SECONDS", "1".to_owned()),
        // Every test comes from 127.0.0.1: lift the limits unless a test is about them (pass
        // `("RATE_LIMIT_AUTH", "")` etc. to get the default limits back).
        ("RATE_LIMIT_AUTH", "100000".to_owned()),
        ("RATE_LIMIT_API", "100000".to_owned()),
        ("RATE_LIMIT_WEBHOOK", "100000".to_owned()),
        ("RATE_LIMIT_DEMO", "100000".to_owned()),
        ("RATE_LIMIT_SIGNAL", "100000".to_owned()),
        // The real cron table fires on wall-clock boundaries (a sync scheduler every 15
        // minutes): a test straddling one would see runs it did not ask for. Tests of the
        // scheduler pass `("SCHEDULER_ENABLED", "true")`.
        ("SCHEDULER_ENABLED", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = redis_url() {
        vars.insert("REDIS_URL".into(), url);
    }
    for (k, v) in extra {
        if v.is_empty() {
            vars.remove(*k);
        } else {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    vars
}

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: DatabaseConnection,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub test_db: TestDatabase,
}

/// Starts the server with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the server with extra variables (an empty value removes a variable).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let test_db = TestDatabase::new().await;
    let vars = test_vars(&test_db, extra);
    spawn_on(test_db, vars).await
}

/// Starts the server without its worker, as `serve --no-worker` (no jobs, scheduler, webhook
/// delivery or intake drainer): what runs in the background runs only when the test starts it.
pub async fn spawn_app_without_worker() -> TestApp {
    let test_db = TestDatabase::new().await;
    let mut config = Config::from_vars(&test_vars(&test_db, &[])).expect("test configuration");
    config.run_worker = false;
    spawn_config(test_db, config).await
}

/// Starts the server on a given database with exactly these variables.
pub async fn spawn_on(test_db: TestDatabase, vars: HashMap<String, String>) -> TestApp {
    init_once();
    let config = Config::from_vars(&vars).expect("test configuration is valid");
    spawn_config(test_db, config).await
}

/// Starts the server on a given database with this configuration (e.g. `run_worker = false`
/// for a `serve --no-worker` replica).
pub async fn spawn_config(test_db: TestDatabase, config: Config) -> TestApp {
    init_once();
    let state = server::build_state(config, CancellationToken::new())
        .await
        .expect("server state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let server = tokio::spawn(server::serve(state.clone(), listener));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client,
        db: state.db.clone(),
        state,
        server: Some(server),
        test_db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// A GraphQL request without credentials; returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(None, query, variables).await
    }

    /// A GraphQL request with `Authorization: Bearer <token>` when a token is given.
    pub async fn graphql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_body(token, json!({"query": query, "variables": variables}))
            .await
    }

    /// [`Self::graphql_as`] running the operation `operation` of a document that holds several.
    pub async fn graphql_as_named(
        &self,
        token: Option<&str>,
        query: &str,
        operation: &str,
        variables: Value,
    ) -> Value {
        let body = json!({"query": query, "operationName": operation, "variables": variables});
        self.graphql_body(token, body).await
    }

    async fn graphql_body(&self, token: Option<&str>, body: Value) -> Value {
        let mut req = self.client.post(self.url("/api/v1/graphql")).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("GraphQL POST");
        resp.json().await.expect("GraphQL response is JSON")
    }

    /// Opens a GraphQL WebSocket speaking `protocol` (`graphql-transport-ws` or `graphql-ws`).
    pub async fn ws(&self, protocol: &str) -> WsClient {
        WsClient::connect(
            &format!("ws://127.0.0.1:{}/api/v1/graphql/ws", self.port),
            protocol,
        )
        .await
    }

    /// Shuts the server down and closes its database pool, keeping the database (to copy it,
    /// or to start another server on it); the database goes when this value is dropped.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.state.shutdown.cancel();
        if let Some(handle) = self.server.take() {
            handle.await??;
        }
        self.db.clone().close().await?;
        Ok(())
    }

    /// Begins shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.state.shutdown.cancel();
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

/// A signed-in user, as `TestApp::register` returns it.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub organization_id: String,
    pub email: String,
    pub password: String,
}

impl Session {
    pub fn token(&self) -> Option<&str> {
        Some(&self.access_token)
    }
}

/// The password `TestApp::register` gives every user.
pub const TEST_PASSWORD: &str = "correct horse battery";

fn session_of(body: &Value, email: &str, password: &str) -> Session {
    Session {
        access_token: body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned(),
        refresh_token: body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned(),
        user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
        organization_id: body["organization"]["id"]
            .as_str()
            .expect("organization.id")
            .to_owned(),
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

impl TestApp {
    /// Registers a new user (OWNER of a new organization named `org`) through the REST API.
    pub async fn register(&self, email: &str, org: &str) -> Session {
        let resp = self
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": email, "password": TEST_PASSWORD, "name": "Test User", "organizationName": org}),
            )
            .await;
        assert_eq!(resp.status(), 201, "register {email}");
        let body: Value = resp.json().await.expect("register body");
        session_of(&body, email, TEST_PASSWORD)
    }

    /// Signs in through the REST API (a new session).
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let resp = self
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), 200, "login {email}");
        let body: Value = resp.json().await.expect("login body");
        session_of(&body, email, password)
    }

    /// Two users, each the OWNER of an organization of their own: for isolation tests.
    pub async fn two_tenants(&self) -> (Session, Session) {
        let a = self
            .register(
                &format!("a-{}@example.com", uuid::Uuid::new_v4().simple()),
                "Org A",
            )
            .await;
        let b = self
            .register(
                &format!("b-{}@example.com", uuid::Uuid::new_v4().simple()),
                "Org B",
            )
            .await;
        (a, b)
    }

    /// Invites `email` into `admin`'s organization with `role`, registers that user and accepts
    /// the invitation; returns the new member's session in that organization.
    pub async fn add_member(&self, admin: &Session, email: &str, role: &str) -> Session {
        let resp = self
            .graphql_as(
                admin.token(),
                &format!("mutation {{ inviteMember(email: \"{email}\", role: {role}) {{ id }} }}"),
                json!({}),
            )
            .await;
        assert!(resp.get("errors").is_none(), "inviteMember: {resp}");
        let token = self.mailed_token(email).await;
        let own = self.register(email, "own").await;
        let resp = self
            .graphql_as(
                own.token(),
                "mutation($t: String!) { acceptInvitation(token: $t) { accessToken refreshToken user { id } organization { id } role } }",
                json!({"t": token}),
            )
            .await;
        assert!(resp.get("errors").is_none(), "acceptInvitation: {resp}");
        let p = &resp["data"]["acceptInvitation"];
        assert_eq!(p["organization"]["id"], admin.organization_id.as_str());
        assert_eq!(p["role"], role);
        Session {
            access_token: p["accessToken"].as_str().unwrap().to_owned(),
            refresh_token: p["refreshToken"].as_str().unwrap().to_owned(),
            user_id: p["user"]["id"].as_str().unwrap().to_owned(),
            organization_id: p["organization"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            password: own.password,
        }
    }

    /// Creates an API key with `scopes` in the session's organization; returns the full key.
    pub async fn api_key(&self, session: &Session, scopes: &[&str]) -> String {
        let resp = self
            .graphql_as(
                session.token(),
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id } } }",
                json!({"input": {"name": "test key", "scopes": scopes}}),
            )
            .await;
        assert!(resp.get("errors").is_none(), "createApiKey: {resp}");
        resp["data"]["createApiKey"]["key"]
            .as_str()
            .expect("key")
            .to_owned()
    }

    /// A GraphQL request with `X-API-Key: <key>`.
    pub async fn graphql_with_key(&self, key: &str, query: &str, variables: Value) -> Value {
        let resp = self
            .client
            .post(self.url("/api/v1/graphql"))
            .header("x-api-key", key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("GraphQL POST");
        resp.json().await.expect("GraphQL response is JSON")
    }

    /// The emails written so far (without SMTP, they are `.eml` files under `DATA_DIR/mail`).
    pub fn sent_mail(&self) -> Vec<String> {
        let dir = self.test_db.dir.path().join("mail");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// The `Token: …` line of the newest email sent to `to`, waiting for it to arrive.
    pub async fn mailed_token(&self, to: &str) -> String {
        eventually(
            Duration::from_secs(10),
            &format!("an email to {to}"),
            || async {
                self.sent_mail()
                    .iter()
                    .rev()
                    .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(to)))
                    .find_map(|m| {
                        m.lines()
                            .find_map(|l| l.trim().strip_prefix("Token: ").map(str::to_owned))
                    })
            },
        )
        .await
    }
}

/// Asserts that a GraphQL response failed with `code` (e.g. `NOT_FOUND` for a foreign id).
pub fn assert_code(resp: &Value, code: &str) {
    assert_eq!(error_code(resp), Some(code), "expected {code}: {resp}");
}

/// The first error's `extensions.code` of a GraphQL response.
pub fn error_code(resp: &Value) -> Option<&str> {
    resp["errors"][0]["extensions"]["code"].as_str()
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `devsignal` binary, built (once per test process) by the same cargo that runs the tests.
pub fn devsignal_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    init_once();
    BIN.get_or_init(|| {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let target_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
            .expect("test executable lives in target/<profile>/deps");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        // Cargo sets these for the test process (and `OUT_DIR` at build time); inherited, they
        // make build scripts that watch them (ring watches `CARGO_MANIFEST_DIR`) look changed,
        // so this build and the next `cargo test` would each rebuild half the tree.
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if key.starts_with("CARGO_PKG_")
                || matches!(
                    key,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                )
            {
                cargo.env_remove(key);
            }
        }
        cargo.arg("build");
        // The profile of the running executable: a release bench measures a release server.
        if target_dir.file_name().is_some_and(|d| d == "release") {
            cargo.arg("--release");
        }
        let status = cargo
            .args(["--quiet", "-p", "devsignal-server", "--bin", "devsignal"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir.parent().expect("target dir"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the devsignal binary failed");
        let bin = target_dir.join("devsignal");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// A local HTTP server that records every request it receives (method, path, body) and answers
/// 200 with `{}`: a stand-in for outside services that only need to receive something.
pub struct Recorder {
    pub address: String,
    pub requests: std::sync::Arc<Mutex<Vec<Recorded>>>,
}

/// One request a [`Recorder`] received: method, path, body.
pub type Recorded = (String, String, Vec<u8>);

impl Recorder {
    pub async fn start() -> Recorder {
        use axum::body::Bytes;
        use axum::http::{Method, Uri};
        let requests: std::sync::Arc<Mutex<Vec<Recorded>>> = Default::default();
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((
                    method.to_string(),
                    uri.path().to_owned(),
                    body.to_vec(),
                ));
                axum::Json(json!({}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder { address, requests }
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// A TCP proxy in front of a server (PostgreSQL, Redis) that a test can cut and restore, as when
/// the server goes away: [`FaultProxy::cut`] closes every proxied connection and, until
/// [`FaultProxy::restore`], accepts new ones only to close them at once. [`FaultProxy::stall`]
/// is a partition instead: connections stay open but nothing crosses them, so a client waits
/// for answers that never come.
pub struct FaultProxy {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<Mutex<CancellationToken>>,
    stall: Arc<Mutex<CancellationToken>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies `127.0.0.1:<port>` to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let port = listener.local_addr().expect("local addr").port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(CancellationToken::new()));
        let stall = Arc::new(Mutex::new(CancellationToken::new()));
        let task = tokio::spawn({
            let (cut, stalled) = (cut.clone(), stalled.clone());
            let (connections, stall) = (connections.clone(), stall.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let token = connections
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    let stall = stall.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let held = stalled.load(std::sync::atomic::Ordering::SeqCst);
                    let target = target.clone();
                    tokio::spawn(async move {
                        if held {
                            // Accepted, never answered, until the proxy is restored or cut.
                            token.cancelled().await;
                            drop(inbound);
                            return;
                        }
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            () = token.cancelled() => {}
                            () = stall.cancelled() => token.cancelled().await,
                        }
                    });
                }
            }
        });
        FaultProxy {
            port,
            cut,
            stalled,
            connections,
            stall,
            task,
        }
    }

    fn close_connections(&self) {
        let mut token = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        token.cancel();
        *token = CancellationToken::new();
    }

    /// The server is gone: open connections close, new ones are closed at once.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.close_connections();
    }

    /// The network is partitioned: open connections stop carrying anything, new ones are
    /// accepted and never answered.
    pub fn stall(&self) {
        self.stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut stall = self.stall.lock().unwrap_or_else(|e| e.into_inner());
        stall.cancel();
        *stall = CancellationToken::new();
    }

    /// The server is back (connections held by a stall are closed, as a client would find them
    /// after a partition).
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
        if self
            .stalled
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.close_connections();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancel();
    }
}
