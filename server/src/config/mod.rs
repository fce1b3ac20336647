//! One typed configuration, built once from the environment (the variable names
//! operators already use, no prefix; README lists them) and passed down explicitly. Secrets are `SecretString`s, so `Debug` never prints them.
//!
//! [`Config::from_vars`] is pure: it reads a map, so tests build their own `Config`.
//! [`Config::resolve_dev_secrets`] is the one step with I/O: outside production it fills missing
//! secrets from `DATA_DIR/secrets.json`, generating them on first start, so a restart keeps
//! sessions valid.

mod dev_secrets;
pub mod rate_limits;
mod reader;

use dev_secrets::DevSecrets;
pub use dev_secrets::random_hex;
use dev_secrets::url_encode;
pub use reader::parse_duration;
use reader::{Reader, database_url_problem};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Where the process runs. `NODE_ENV` (or `APP_ENV`) selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// One problem with the configuration, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub var: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.problem)
    }
}

/// Every problem found, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Always set after loading: `DATABASE_URL`, or a SQLite file under `DATA_DIR`.
    pub database_url: SecretString,
    /// `DATABASE_READ_URL`: a read replica (same backend) that list and search queries read;
    /// writes and anything read after a write stay on `database_url`. `None` = no replica.
    pub database_read_url: Option<SecretString>,
    pub database_max_connections: u32,
    /// `DATABASE_WORKER_CONNECTIONS`: the worker role's own pool (jobs, cron, webhook delivery),
    /// apart from the requests' `DATABASE_MAX_CONNECTIONS`.
    pub database_worker_connections: u32,
    /// `DATABASE_IDLE_TIMEOUT`: how long a pooled connection may sit unused before it is
    /// closed (every pool of the process).
    pub database_idle_timeout: Duration,
    /// `DATABASE_STATEMENT_CACHE`: prepared statements each pooled connection keeps (`None`:
    /// the backend's default, `domain::db::statement_cache_default`).
    pub database_statement_cache: Option<usize>,
    /// `DATABASE_REQUEST_CONNECTIONS`: the most serving-pool connections one request (a GraphQL
    /// batch together, or one WebSocket connection) holds at once, so one heavy request cannot
    /// take the whole pool; capped at `DATABASE_MAX_CONNECTIONS` - 1.
    pub database_request_connections: u32,
    /// `REDIS_URL`, or built from `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`; `None` = no Redis.
    pub redis_url: Option<SecretString>,
    /// Prepended to every Redis key this process writes (lets tests share one Redis).
    pub redis_key_prefix: String,
    pub jwt_secret: Option<SecretString>,
    pub jwt_refresh_secret: Option<SecretString>,
    pub jwt_secret_previous: Option<SecretString>,
    pub jwt_expires_in: Duration,
    pub jwt_refresh_expires_in: Duration,
    pub cors_origins: Vec<String>,
    pub frontend_url: String,
    pub api_url: String,
    /// Where the outside APIs of connectors are: `GITHUB_API_URL`, `NPM_DOWNLOADS_API_URL`,
    /// `NPM_REGISTRY_URL`, `PYPISTATS_API_URL`, `PYPI_URL` (the public services by default).
    pub connectors: connectors::Settings,
    pub stripe_secret_key: Option<SecretString>,
    pub stripe_webhook_secret: Option<SecretString>,
    /// `STRIPE_API_URL` (`https://api.stripe.com`).
    pub stripe_api_url: String,
    /// `STRIPE_PRICE_PRO`, `STRIPE_PRICE_GROWTH`, `STRIPE_PRICE_SCALE`: the price each plan's
    /// checkout uses (the client never names one).
    pub stripe_prices: domain::billing::stripe::Prices,
    /// `PLAN_ENFORCEMENT`: whether plan limits apply (default: on when Stripe is configured,
    /// off for self-hosted installs).
    pub plan_enforcement: bool,
    /// `BILLING_GRACE_DAYS` (7): how long a past-due subscription keeps its plan's limits.
    pub billing_grace_days: u32,
    pub resend_api_key: Option<SecretString>,
    pub smtp_url: Option<SecretString>,
    pub email_from: String,
    pub sentry_dsn: Option<SecretString>,
    /// `SENTRY_TRACES_SAMPLE_RATE` (0 to 1, default 0): the share of requests, jobs and other
    /// root spans sent to Sentry as performance traces.
    pub sentry_traces_sample_rate: f32,
    /// `SENTRY_RELEASE`: the release events and traces are tagged with (default
    /// `devsignal@<version>`), e.g. an image tag or commit.
    pub sentry_release: Option<String>,
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<SecretString>,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<SecretString>,
    /// `TRUST_PROXY`: how many reverse proxies in front of the server append to
    /// `X-Forwarded-For` (`true` = 1, `false`/unset = 0: the peer address is the client).
    pub trusted_proxies: usize,
    pub webhook_allow_private: bool,
    /// `WEBHOOK_RETRY_BASE_SECONDS`: the wait before a webhook's first retry (then doubling).
    pub webhook_retry_base: Duration,
    /// `WEBHOOK_TIMEOUT_SECONDS`: one delivery attempt's bound.
    pub webhook_timeout: Duration,
    /// `WEBHOOK_DISABLE_AFTER_SECONDS`: how long an endpoint may fail continuously before it is
    /// disabled.
    pub webhook_disable_after: Duration,
    /// `WEBHOOK_POLL_INTERVAL_MS`: how often the delivery loop looks for new events and retries.
    pub webhook_poll_interval: Duration,
    /// `EVENTS_POLL_INTERVAL_MS`: how often a serving process reads the event log for live
    /// subscriptions when nothing woke it (commits in this process, and with Redis in any
    /// process, wake it at once).
    pub events_poll_interval: Duration,
    /// `SUBSCRIPTION_RECHECK_SECONDS`: how often a live subscription checks that its session or
    /// API key is still valid and its role still allows it (a logout, a revoked key or a
    /// removed member ends it).
    pub subscription_recheck: Duration,
    /// `ENCRYPTION_KEY` (64 hex characters): encrypts stored secrets such as webhook signing
    /// secrets. Required in production; generated into `DATA_DIR/secrets.json` otherwise.
    pub encryption_key: Option<SecretString>,
    /// `ENCRYPTION_KEY_PREVIOUS`: the key being rotated away from. Values sealed under it still
    /// open; `devsignal secrets rotate` re-seals them under `ENCRYPTION_KEY`.
    pub encryption_key_previous: Option<SecretString>,
    /// Whether `serve` also runs the job worker, the scheduler and webhook delivery (`serve
    /// --no-worker` turns it off).
    pub run_worker: bool,
    /// `JOB_LEASE_SECONDS`: how long a claimed job stays claimed without renewal.
    pub job_lease: Duration,
    /// `JOB_POLL_INTERVAL_MS`: how often an idle worker looks for due jobs.
    pub job_poll_interval: Duration,
    /// `JOB_SHUTDOWN_GRACE_SECONDS`: how long running jobs may finish after SIGTERM.
    pub job_shutdown_grace: Duration,
    /// `SCHEDULER_ENABLED` (default true): run the cron scheduler in this worker.
    pub scheduler_enabled: bool,
    /// `CRON_OVERRIDES`: entries of the cron table run on another expression
    /// (`name=cron;name=cron`), e.g. the alert check every 2 minutes.
    pub cron_overrides: jobs::scheduler::Overrides,
    /// A scheduler whose heartbeat is older than this counts as not running
    /// (`SCHEDULER_STALE_SECONDS`, default 60); each scheduler beats four times as often.
    pub scheduler_stale_after: Duration,
    /// `SCORE_HISTORY_DAYS` (default 400): days of daily score snapshots kept; the nightly
    /// snapshot job prunes older ones.
    pub score_history_days: u32,
    /// `SIGNAL_RETENTION_MONTHS` and `EVENT_RETENTION_MONTHS` (default: keep everything): months
    /// of signals and events kept besides the current one; the daily `partition-maintenance`
    /// drops older months (`domain::partitions`). Signals keep at least 4 (scores read 90 days).
    pub retention: domain::partitions::Retention,
    /// `IMPORT_MAX_BYTES` (default 50 MB): the largest CSV file an import's upload accepts
    /// (larger answers 413 `PAYLOAD_TOO_LARGE`).
    pub import_max_bytes: u64,
    /// `EXPORT_LINK_TTL_SECONDS` (default 24 hours): how long an export's signed download link
    /// works; the daily cleanup deletes the file after it.
    pub export_link_ttl: Duration,
    /// `GRAPHQL_INTROSPECTION`: schema introspection and "Did you mean …?" hints in validation
    /// errors (default: on, off in production).
    pub graphql_introspection: bool,
    /// `GRAPHIQL`: serve the GraphiQL page at `/graphiql` (default: as `GRAPHQL_INTROSPECTION`).
    pub graphiql: bool,
    /// `METRICS_TOKEN`: when set, `/metrics` answers only `Authorization: Bearer <token>`; in
    /// production `/metrics` is served only with a token set.
    pub metrics_token: Option<SecretString>,
    /// `PLATFORM_ADMINS`: emails of the operators who may pause, resume and trigger queues through
    /// GraphQL (every organization's ADMIN sees and retries only its own organization's jobs).
    pub platform_admins: Vec<String>,
    pub log_format: LogFormat,
    pub worker_health_port: u16,
    /// `WORKER_CONCURRENCY`: jobs run at once per queue by one worker process.
    pub worker_concurrency: usize,
    /// Every `*_BASE_URL` variable (e.g. `GITHUB_API_BASE_URL`), so tests can point connectors at
    /// local fakes. Keyed by the variable name without `_BASE_URL`.
    pub base_urls: BTreeMap<String, String>,
    /// Requests per minute per client IP for each limiter; `RATE_LIMIT_<LIMITER>`.
    pub rate_limits: RateLimits,
    /// `RATE_LIMIT_ALLOWLIST` and `RATE_LIMIT_OVERRIDES`: the operator's exceptions.
    pub rate_limit_policy: rate_limits::Policy,
    /// Bounds on one GraphQL request and on WebSocket connections; `GRAPHQL_*`, `WS_*`.
    pub graphql_limits: GraphqlLimits,
    /// `REQUEST_TIMEOUT_MS` (default 10 s): how long any other HTTP request may run before it is
    /// answered `503 TIMEOUT`.
    pub request_timeout: Duration,
}

/// Bounds on GraphQL requests that operators may tune (the limits on the document itself are
/// constants in `graphql::limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlLimits {
    /// `GRAPHQL_TIMEOUT_MS`: how long one GraphQL request over HTTP, or one query or mutation
    /// over WebSocket, may run before it is stopped and answered with `TIMEOUT` (default 30 s).
    pub timeout: Duration,
    /// `GRAPHQL_MAX_RESPONSE_BYTES`: the largest GraphQL response sent; a larger one is replaced
    /// by a `LIMIT_EXCEEDED` error (default 8 MiB).
    pub max_response_bytes: usize,
    /// `GRAPHQL_MAX_BATCH`: the most operations in one batch request (default 10).
    pub max_batch: usize,
    /// `WS_MAX_SUBSCRIPTIONS`: the most operations running at once on one WebSocket connection
    /// (default 100).
    pub ws_max_subscriptions: usize,
    /// `WS_MAX_CONNECTIONS`: the most WebSocket connections open at once from one client address
    /// (default 50).
    pub ws_max_connections: usize,
}

impl Default for GraphqlLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_response_bytes: 8 * 1024 * 1024,
            max_batch: 10,
            ws_max_subscriptions: 100,
            ws_max_connections: 50,
        }
    }
}

/// Requests per minute per client IP, per limiter. Defaults: auth 5, api 100, webhook 200,
/// demo 10, signal 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub auth: u32,
    pub api: u32,
    pub webhook: u32,
    pub demo: u32,
    pub signal: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            auth: 5,
            api: 100,
            webhook: 200,
            demo: 10,
            signal: 500,
        }
    }
}

/// `GRAPHQL_*` and `WS_*`: each a positive number.
fn rate_limit_policy(r: &mut Reader<'_>) -> rate_limits::Policy {
    use rate_limits::Policy;
    let mut policy = Policy::default();
    if let Some(text) = r.get("RATE_LIMIT_ALLOWLIST") {
        match Policy::parse_allowlist(&text) {
            Ok(list) => policy.allowlist = list,
            Err(e) => r.problem("RATE_LIMIT_ALLOWLIST", e),
        }
    }
    if let Some(text) = r.get("RATE_LIMIT_OVERRIDES") {
        match Policy::parse_overrides(&text) {
            Ok(list) => policy.overrides = list,
            Err(e) => r.problem("RATE_LIMIT_OVERRIDES", e),
        }
    }
    policy
}

fn graphql_limits(r: &mut Reader<'_>) -> GraphqlLimits {
    let d = GraphqlLimits::default();
    let positive = |r: &mut Reader<'_>, var: &'static str, default: usize| -> usize {
        let v: usize = r.parse(var, default, "a positive number");
        if v == 0 {
            r.problem(var, "must be at least 1");
        }
        v
    };
    let timeout_ms = positive(
        r,
        "GRAPHQL_TIMEOUT_MS",
        usize::try_from(d.timeout.as_millis()).unwrap_or(usize::MAX),
    );
    GraphqlLimits {
        timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX)),
        max_response_bytes: positive(r, "GRAPHQL_MAX_RESPONSE_BYTES", d.max_response_bytes),
        max_batch: positive(r, "GRAPHQL_MAX_BATCH", d.max_batch),
        ws_max_subscriptions: positive(r, "WS_MAX_SUBSCRIPTIONS", d.ws_max_subscriptions),
        ws_max_connections: positive(r, "WS_MAX_CONNECTIONS", d.ws_max_connections),
    }
}

/// Minimum length of a JWT secret in production.
pub const MIN_JWT_SECRET_BYTES: usize = 64;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Builds the configuration from a map of variables. Outside production only malformed
    /// values are errors; in production every variable production requires (README) must be present
    /// and valid.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::read(vars).0
    }

    /// The names of every variable the configuration reads (development and production, Redis
    /// by host or by URL), apart from the `<NAME>_BASE_URL` family: what `.env.example` must list.
    pub fn variables() -> std::collections::BTreeSet<String> {
        let mut all = std::collections::BTreeSet::new();
        for env in [
            &[][..],
            &[("NODE_ENV", "production")][..],
            &[("REDIS_HOST", "redis")][..],
        ] {
            let vars = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            all.extend(Self::read(&vars).1);
        }
        all
    }

    fn read(
        vars: &HashMap<String, String>,
    ) -> (
        Result<Self, ConfigError>,
        std::collections::BTreeSet<String>,
    ) {
        let mut r = Reader {
            vars,
            problems: Vec::new(),
            asked: Default::default(),
        };
        let env_raw = r.get("NODE_ENV").or_else(|| r.get("APP_ENV"));
        let environment = match env_raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("test") => Environment::Test,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                r.problem(
                    "NODE_ENV",
                    format!("must be development, test or production (got {other:?})"),
                );
                Environment::Development
            }
        };
        let prod = environment == Environment::Production;

        let data_dir = PathBuf::from(r.get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = match r.get("DATABASE_URL") {
            Some(url) => {
                if let Some(p) = database_url_problem(&url) {
                    r.problem("DATABASE_URL", p);
                }
                url
            }
            None => {
                if prod {
                    r.problem("DATABASE_URL", "is required in production");
                }
                format!("sqlite://{}/devsignal.db?mode=rwc", data_dir.display())
            }
        };

        let database_read_url = r.get("DATABASE_READ_URL").map(|url| {
            if let Some(p) = database_url_problem(&url) {
                r.problem("DATABASE_READ_URL", p);
            } else if domain::db::Backend::from_url(&url)
                != domain::db::Backend::from_url(&database_url)
            {
                r.problem(
                    "DATABASE_READ_URL",
                    "must name the same kind of database as DATABASE_URL (a replica of it)",
                );
            }
            SecretString::from(url)
        });

        let redis_url = match (r.get("REDIS_URL"), r.get("REDIS_HOST")) {
            (Some(url), _) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    r.problem("REDIS_URL", "must start with redis:// or rediss://");
                }
                Some(SecretString::from(url))
            }
            (None, Some(host)) => {
                if host.contains("://") {
                    r.problem("REDIS_HOST", "must be a hostname only, without a protocol");
                }
                let port: u16 = r.parse("REDIS_PORT", 6379, "a port number");
                let auth = r
                    .get("REDIS_PASSWORD")
                    .map(|p| format!(":{}@", url_encode(&p)))
                    .unwrap_or_default();
                Some(SecretString::from(format!("redis://{auth}{host}:{port}")))
            }
            // Optional everywhere: without it rate limits count per process and live events reach
            // only this process's subscribers (a warning at start-up says so in production).
            (None, None) => None,
        };

        let jwt_secret = r.secret("JWT_SECRET");
        let jwt_refresh_secret = r.secret("JWT_REFRESH_SECRET");
        let jwt_secret_previous = r.secret("JWT_SECRET_PREVIOUS");
        if prod {
            for (var, value) in [
                ("JWT_SECRET", &jwt_secret),
                ("JWT_REFRESH_SECRET", &jwt_refresh_secret),
            ] {
                match value {
                    None => r.problem(var, "is required in production"),
                    Some(s) if s.expose_secret().len() < MIN_JWT_SECRET_BYTES => r.problem(
                        var,
                        format!(
                            "must be at least {MIN_JWT_SECRET_BYTES} bytes (got {})",
                            s.expose_secret().len()
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        if let (Some(a), Some(b)) = (&jwt_secret, &jwt_refresh_secret)
            && a.expose_secret() == b.expose_secret()
        {
            r.problem("JWT_REFRESH_SECRET", "must differ from JWT_SECRET");
        }

        let encryption_key = r.secret("ENCRYPTION_KEY");
        match &encryption_key {
            None if prod => r.problem(
                "ENCRYPTION_KEY",
                "is required in production (64 hex characters, e.g. `openssl rand -hex 32`)",
            ),
            Some(k) if domain::secrets::Cipher::from_hex(k.expose_secret()).is_none() => {
                r.problem("ENCRYPTION_KEY", "must be 64 hex characters (32 bytes)")
            }
            _ => {}
        }
        let encryption_key_previous = r.secret("ENCRYPTION_KEY_PREVIOUS");
        if let Some(previous) = &encryption_key_previous {
            if domain::secrets::Cipher::from_hex(previous.expose_secret()).is_none() {
                r.problem(
                    "ENCRYPTION_KEY_PREVIOUS",
                    "must be 64 hex characters (32 bytes)",
                );
            } else if encryption_key.as_ref().is_some_and(|k| {
                k.expose_secret()
                    .trim()
                    .eq_ignore_ascii_case(previous.expose_secret().trim())
            }) {
                r.problem(
                    "ENCRYPTION_KEY_PREVIOUS",
                    "must differ from ENCRYPTION_KEY (it is the key being rotated away from)",
                );
            }
        }
        let millis = |r: &mut Reader<'_>, var: &'static str, default: u64| -> Duration {
            Duration::from_millis(r.parse(var, default, "a number of milliseconds"))
        };
        let webhook_poll_interval = millis(&mut r, "WEBHOOK_POLL_INTERVAL_MS", 1000);
        let sentry_traces_sample_rate: f32 =
            r.parse("SENTRY_TRACES_SAMPLE_RATE", 0.0, "a number from 0 to 1");
        if !(0.0..=1.0).contains(&sentry_traces_sample_rate) {
            r.problem(
                "SENTRY_TRACES_SAMPLE_RATE",
                format!("must be a number from 0 to 1 (got {sentry_traces_sample_rate})"),
            );
        }
        let job_poll_interval = millis(&mut r, "JOB_POLL_INTERVAL_MS", 1000);
        let events_poll_interval = millis(&mut r, "EVENTS_POLL_INTERVAL_MS", 1000);
        let scheduler_enabled = match r.get("SCHEDULER_ENABLED") {
            None => true,
            Some(_) => r.flag("SCHEDULER_ENABLED"),
        };
        let cron_overrides = match r.get("CRON_OVERRIDES") {
            None => Default::default(),
            Some(text) => jobs::scheduler::parse_overrides(&text).unwrap_or_else(|e| {
                r.problem("CRON_OVERRIDES", e);
                Default::default()
            }),
        };
        let graphql_introspection = match r.get("GRAPHQL_INTROSPECTION") {
            None => !prod,
            Some(_) => r.flag("GRAPHQL_INTROSPECTION"),
        };
        let graphiql = match r.get("GRAPHIQL") {
            None => graphql_introspection,
            Some(_) => r.flag("GRAPHIQL"),
        };
        let metrics_token = r.secret("METRICS_TOKEN");

        let port = r.parse("PORT", 3000u16, "a port number");
        // Loopback unless told otherwise: a development server is not offered to the network
        // by accident (the Docker image sets HOST=0.0.0.0).
        let host = r.get("HOST").unwrap_or_else(|| "127.0.0.1".into());
        let cors_origins: Vec<String> = r
            .get("CORS_ORIGIN")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for origin in &cors_origins {
            if origin != "*" && url::Url::parse(origin).is_err() {
                r.problem(
                    "CORS_ORIGIN",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                );
            }
        }
        if prod && cors_origins.is_empty() {
            r.problem("CORS_ORIGIN", "is required in production");
        }
        let url_var = |r: &mut Reader, var: &'static str, default: String| -> String {
            match r.get(var) {
                Some(v) => {
                    if url::Url::parse(&v).is_err() {
                        r.problem(var, format!("must be an absolute URL (got {v:?})"));
                    }
                    v.trim_end_matches('/').to_owned()
                }
                None => {
                    if prod {
                        r.problem(var, "is required in production");
                    }
                    default
                }
            }
        };
        let frontend_url = url_var(&mut r, "FRONTEND_URL", format!("http://localhost:{port}"));
        let api_url = url_var(&mut r, "API_URL", format!("http://localhost:{port}"));
        let connectors = {
            let mut c = connectors::Settings::default();
            for (var, slot) in [
                ("GITHUB_API_URL", &mut c.github_api_url),
                ("NPM_DOWNLOADS_API_URL", &mut c.npm_downloads_api_url),
                ("NPM_REGISTRY_URL", &mut c.npm_registry_url),
                ("PYPISTATS_API_URL", &mut c.pypistats_api_url),
                ("PYPI_URL", &mut c.pypi_url),
                ("STACKEXCHANGE_API_URL", &mut c.stackexchange_api_url),
                ("REDDIT_API_URL", &mut c.reddit_api_url),
                ("REDDIT_AUTH_URL", &mut c.reddit_auth_url),
                ("DISCORD_API_URL", &mut c.discord_api_url),
                ("TWITTER_API_URL", &mut c.twitter_api_url),
                ("INTERCOM_API_URL", &mut c.intercom_api_url),
                ("HUBSPOT_API_URL", &mut c.hubspot_api_url),
                ("HUBSPOT_AUTH_URL", &mut c.hubspot_auth_url),
                ("SALESFORCE_LOGIN_URL", &mut c.salesforce_login_url),
                ("CLEARBIT_COMPANY_URL", &mut c.clearbit_company_url),
                ("CLEARBIT_PERSON_URL", &mut c.clearbit_person_url),
                ("ANTHROPIC_API_URL", &mut c.anthropic_api_url),
            ] {
                if let Some(v) = r.get(var) {
                    match url::Url::parse(&v) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") => {
                            *slot = v.trim_end_matches('/').to_owned();
                        }
                        _ => r.problem(var, format!("must be an http(s) URL (got {v:?})")),
                    }
                }
            }
            // A CRM's OAuth app: both halves or neither.
            for (id_var, secret_var, slot) in [
                (
                    "HUBSPOT_CLIENT_ID",
                    "HUBSPOT_CLIENT_SECRET",
                    &mut c.hubspot_app,
                ),
                (
                    "SALESFORCE_CLIENT_ID",
                    "SALESFORCE_CLIENT_SECRET",
                    &mut c.salesforce_app,
                ),
            ] {
                match (r.get(id_var), r.secret(secret_var)) {
                    (Some(client_id), Some(secret)) => {
                        *slot = Some(connectors::OAuthApp {
                            client_id,
                            client_secret: secret.expose_secret().to_owned(),
                        });
                    }
                    (None, None) => {}
                    (Some(_), None) => r.problem(secret_var, format!("is required with {id_var}")),
                    (None, Some(_)) => r.problem(id_var, format!("is required with {secret_var}")),
                }
            }
            c.clearbit_api_key = r.secret("CLEARBIT_API_KEY");
            c.anthropic_api_key = r.secret("ANTHROPIC_API_KEY");
            if let Some(model) = r.get("ANTHROPIC_MODEL") {
                c.anthropic_model = model;
            }
            c.ai_briefs_per_month = r.parse(
                "AI_BRIEFS_PER_MONTH",
                c.ai_briefs_per_month,
                "a whole number of briefs",
            );
            c.run_lease = r.duration("CONNECTOR_RUN_LEASE_SECONDS", c.run_lease);
            c.max_inline_wait = r.duration("CONNECTOR_MAX_INLINE_WAIT_SECONDS", c.max_inline_wait);
            c
        };

        let stripe_secret_key = r.secret("STRIPE_SECRET_KEY");
        let stripe_webhook_secret = r.secret("STRIPE_WEBHOOK_SECRET");
        let resend_api_key = r.secret("RESEND_API_KEY");
        let smtp_url = r.secret("SMTP_URL");
        // Billing is optional even in production (self-hosted installs take no payments; billing
        // answers NOT_CONFIGURED); AI briefs work without ANTHROPIC_API_KEY (the deterministic
        // brief).
        if stripe_secret_key.is_some() != stripe_webhook_secret.is_some() {
            r.problem(
                if stripe_secret_key.is_some() {
                    "STRIPE_WEBHOOK_SECRET"
                } else {
                    "STRIPE_SECRET_KEY"
                },
                "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET go together: set both or neither",
            );
        }
        let stripe_api_url = match r.get("STRIPE_API_URL") {
            None => connectors::stripe::DEFAULT_API_URL.to_owned(),
            Some(v) => match url::Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {
                    v.trim_end_matches('/').to_owned()
                }
                _ => {
                    r.problem(
                        "STRIPE_API_URL",
                        format!("must be an http(s) URL (got {v:?})"),
                    );
                    connectors::stripe::DEFAULT_API_URL.to_owned()
                }
            },
        };
        let stripe_prices = domain::billing::stripe::Prices {
            pro: r.get("STRIPE_PRICE_PRO"),
            growth: r.get("STRIPE_PRICE_GROWTH"),
            scale: r.get("STRIPE_PRICE_SCALE"),
        };
        let plan_enforcement = if r.get("PLAN_ENFORCEMENT").is_some() {
            r.flag("PLAN_ENFORCEMENT")
        } else {
            stripe_secret_key.is_some()
        };
        let billing_grace_days = r.parse("BILLING_GRACE_DAYS", 7u32, "a whole number of days");
        if prod && resend_api_key.is_none() && smtp_url.is_none() {
            r.problem(
                "RESEND_API_KEY",
                "is required in production (or set SMTP_URL)",
            );
        }
        if let Some(s) = &smtp_url {
            let s = s.expose_secret();
            if !(s.starts_with("smtp://") || s.starts_with("smtps://")) {
                r.problem("SMTP_URL", "must start with smtp:// or smtps://");
            }
        }

        let log_format = match r
            .get("LOG_FORMAT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("json") => LogFormat::Json,
            Some("pretty") | Some("text") => LogFormat::Pretty,
            None if prod => LogFormat::Json,
            None => LogFormat::Pretty,
            Some(other) => {
                r.problem(
                    "LOG_FORMAT",
                    format!("must be json or pretty (got {other:?})"),
                );
                LogFormat::Pretty
            }
        };

        let base_urls = vars
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_suffix("_BASE_URL")?;
                let v = v.trim();
                (!v.is_empty()).then(|| (name.to_owned(), v.trim_end_matches('/').to_owned()))
            })
            .collect();

        let config = Config {
            environment,
            host,
            port,
            data_dir,
            database_url: SecretString::from(database_url),
            database_read_url,
            database_max_connections: r.parse(
                "DATABASE_MAX_CONNECTIONS",
                10u32,
                "a positive number",
            ),
            database_worker_connections: r.parse(
                "DATABASE_WORKER_CONNECTIONS",
                10u32,
                "a positive number",
            ),
            database_idle_timeout: r.duration("DATABASE_IDLE_TIMEOUT", domain::db::IDLE_TIMEOUT),
            database_statement_cache: r.get("DATABASE_STATEMENT_CACHE").map(|_| {
                r.parse(
                    "DATABASE_STATEMENT_CACHE",
                    0usize,
                    "a number of statements (0 keeps none)",
                )
            }),
            database_request_connections: r.parse(
                "DATABASE_REQUEST_CONNECTIONS",
                4u32,
                "a positive number",
            ),
            redis_url,
            redis_key_prefix: r.get("REDIS_KEY_PREFIX").unwrap_or_default(),
            jwt_secret,
            jwt_refresh_secret,
            jwt_secret_previous,
            jwt_expires_in: r.duration("JWT_EXPIRES_IN", Duration::from_secs(15 * 60)),
            jwt_refresh_expires_in: r
                .duration("JWT_REFRESH_EXPIRES_IN", Duration::from_secs(7 * 86400)),
            cors_origins,
            frontend_url,
            api_url,
            connectors,
            stripe_secret_key,
            stripe_webhook_secret,
            stripe_api_url,
            stripe_prices,
            plan_enforcement,
            billing_grace_days,
            resend_api_key,
            smtp_url,
            email_from: r
                .get("EMAIL_FROM")
                .unwrap_or_else(|| "DevSignal <noreply@devsignal.local>".into()),
            sentry_dsn: r.secret("SENTRY_DSN"),
            sentry_traces_sample_rate,
            sentry_release: r.get("SENTRY_RELEASE"),
            github_client_id: r.get("GITHUB_CLIENT_ID"),
            github_client_secret: r.secret("GITHUB_CLIENT_SECRET"),
            google_client_id: r.get("GOOGLE_CLIENT_ID"),
            google_client_secret: r.secret("GOOGLE_CLIENT_SECRET"),
            trusted_proxies: r.proxy_hops("TRUST_PROXY"),
            webhook_allow_private: r.flag("WEBHOOK_ALLOW_PRIVATE"),
            webhook_retry_base: r.duration("WEBHOOK_RETRY_BASE_SECONDS", Duration::from_secs(30)),
            webhook_timeout: r.duration("WEBHOOK_TIMEOUT_SECONDS", Duration::from_secs(10)),
            webhook_disable_after: r.duration(
                "WEBHOOK_DISABLE_AFTER_SECONDS",
                Duration::from_secs(5 * 86400),
            ),
            webhook_poll_interval,
            events_poll_interval,
            subscription_recheck: r
                .duration("SUBSCRIPTION_RECHECK_SECONDS", Duration::from_secs(60)),
            encryption_key,
            encryption_key_previous,
            run_worker: true,
            job_lease: r.duration("JOB_LEASE_SECONDS", Duration::from_secs(30)),
            job_poll_interval,
            job_shutdown_grace: r.duration("JOB_SHUTDOWN_GRACE_SECONDS", Duration::from_secs(25)),
            scheduler_enabled,
            cron_overrides,
            scheduler_stale_after: r.duration("SCHEDULER_STALE_SECONDS", Duration::from_secs(60)),
            score_history_days: r
                .parse(
                    "SCORE_HISTORY_DAYS",
                    std::num::NonZeroU32::new(domain::scoring::DEFAULT_HISTORY_DAYS)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                    "a positive number of days",
                )
                .get(),
            retention: domain::partitions::Retention {
                signal_months: r.months(
                    "SIGNAL_RETENTION_MONTHS",
                    domain::partitions::MIN_SIGNAL_RETENTION_MONTHS,
                ),
                event_months: r.months("EVENT_RETENTION_MONTHS", 1),
            },
            import_max_bytes: r
                .parse(
                    "IMPORT_MAX_BYTES",
                    std::num::NonZeroU64::new(50 * 1024 * 1024)
                        .unwrap_or(std::num::NonZeroU64::MIN),
                    "a positive number of bytes",
                )
                .get(),
            export_link_ttl: r.duration("EXPORT_LINK_TTL_SECONDS", Duration::from_secs(24 * 3600)),
            graphql_introspection,
            graphiql,
            metrics_token,
            platform_admins: r
                .get("PLATFORM_ADMINS")
                .map(|v| {
                    v.split(',')
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_format,
            worker_health_port: r.parse("WORKER_HEALTH_PORT", 3001u16, "a port number"),
            worker_concurrency: r.parse("WORKER_CONCURRENCY", 4usize, "a positive number"),
            base_urls,
            rate_limits: RateLimits {
                auth: r.parse("RATE_LIMIT_AUTH", RateLimits::default().auth, "a number"),
                api: r.parse("RATE_LIMIT_API", RateLimits::default().api, "a number"),
                webhook: r.parse(
                    "RATE_LIMIT_WEBHOOK",
                    RateLimits::default().webhook,
                    "a number",
                ),
                demo: r.parse("RATE_LIMIT_DEMO", RateLimits::default().demo, "a number"),
                signal: r.parse(
                    "RATE_LIMIT_SIGNAL",
                    RateLimits::default().signal,
                    "a number",
                ),
            },
            rate_limit_policy: rate_limit_policy(&mut r),
            graphql_limits: graphql_limits(&mut r),
            request_timeout: {
                let ms: u64 = r.parse("REQUEST_TIMEOUT_MS", 10_000, "a number of milliseconds");
                if ms == 0 {
                    r.problem("REQUEST_TIMEOUT_MS", "must be at least 1");
                }
                Duration::from_millis(ms)
            },
        };
        if config.worker_concurrency == 0 {
            r.problem("WORKER_CONCURRENCY", "must be at least 1");
        }
        if config.database_max_connections < 2 {
            r.problem("DATABASE_MAX_CONNECTIONS", "must be at least 2");
        }
        if config.database_request_connections == 0 {
            r.problem("DATABASE_REQUEST_CONNECTIONS", "must be at least 1");
        }
        if config.database_worker_connections < 2 {
            r.problem("DATABASE_WORKER_CONNECTIONS", "must be at least 2");
        }
        let asked = r.asked.take();
        if r.problems.is_empty() {
            (Ok(config), asked)
        } else {
            (Err(ConfigError(r.problems)), asked)
        }
    }

    /// How often a running scheduler writes its heartbeat: four times per
    /// [`Config::scheduler_stale_after`] (every 15 s by default), at least every 250 ms.
    pub fn scheduler_heartbeat_every(&self) -> Duration {
        (self.scheduler_stale_after / 4).max(Duration::from_millis(250))
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// The base URL override for an outside service, e.g. `base_url("GITHUB_API", "https://api.github.com")`.
    pub fn base_url(&self, name: &str, default: &str) -> String {
        self.base_urls
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    /// Outside production, fills the JWT secrets and the encryption key that are not set from
    /// `DATA_DIR/secrets.json`, creating that file (mode 0600) with fresh random secrets on first
    /// start (and adding a value an older file lacks).
    pub fn resolve_dev_secrets(&mut self) -> std::io::Result<()> {
        if self.jwt_secret.is_some()
            && self.jwt_refresh_secret.is_some()
            && self.encryption_key.is_some()
        {
            return Ok(());
        }
        if self.is_production() {
            return Ok(()); // from_vars has already refused this configuration
        }
        let stored = DevSecrets::load_or_create(&self.data_dir)?;
        if self.jwt_secret.is_none() {
            self.jwt_secret = Some(SecretString::from(stored.jwt_secret));
        }
        if self.jwt_refresh_secret.is_none() {
            self.jwt_refresh_secret = Some(SecretString::from(stored.jwt_refresh_secret));
        }
        if self.encryption_key.is_none() {
            self.encryption_key = Some(SecretString::from(stored.encryption_key));
        }
        Ok(())
    }

    /// The cipher for secrets at rest; `None` until an `ENCRYPTION_KEY` is known.
    /// With `ENCRYPTION_KEY_PREVIOUS` set, it also opens values sealed under that key.
    /// The billing policy every process records at start (`domain::billing::configure`).
    pub fn billing_policy(&self) -> domain::billing::Policy {
        domain::billing::Policy {
            enforce: self.plan_enforcement,
            grace_days: self.billing_grace_days,
        }
    }

    pub fn cipher(&self) -> Option<domain::secrets::Cipher> {
        let cipher = self
            .encryption_key
            .as_ref()
            .and_then(|k| domain::secrets::Cipher::from_hex(k.expose_secret()))?;
        match &self.encryption_key_previous {
            Some(previous) => cipher.with_previous_hex(previous.expose_secret()),
            None => Some(cipher),
        }
    }

    /// Webhook delivery settings (https only in production).
    pub fn webhook_settings(&self) -> domain::webhooks::Settings {
        domain::webhooks::Settings {
            allow_private: self.webhook_allow_private,
            require_https: self.is_production(),
            retry_base: self.webhook_retry_base,
            disable_after: self.webhook_disable_after,
            ..Default::default()
        }
    }

    /// The pooled connections one request may hold at once: `DATABASE_REQUEST_CONNECTIONS`, but
    /// always leaving one connection of the pool to other requests.
    pub fn database_request_connections(&self) -> usize {
        let cap = self.database_max_connections.saturating_sub(1).max(1);
        self.database_request_connections.clamp(1, cap) as usize
    }

    /// A short description of the database for logs, without credentials.
    pub fn database_description(&self) -> String {
        describe_database(self.database_url.expose_secret())
    }

    /// The read replica's description for logs, without credentials, when one is configured.
    pub fn database_read_description(&self) -> Option<String> {
        self.database_read_url
            .as_ref()
            .map(|u| describe_database(u.expose_secret()))
    }
}

/// A database URL as logs show it: backend and place, without credentials.
fn describe_database(url: &str) -> String {
    match domain::db::Backend::from_url(url) {
        Some(domain::db::Backend::Sqlite) => match domain::db::sqlite_file(url) {
            Some(file) => format!("sqlite ({})", file.display()),
            None => "sqlite (in memory)".into(),
        },
        _ => match url::Url::parse(url) {
            Ok(u) => format!(
                "postgres ({}:{}{})",
                u.host_str().unwrap_or("?"),
                u.port().unwrap_or(5432),
                u.path()
            ),
            Err(_) => "postgres".into(),
        },
    }
}

/// The outgoing mailer this configuration describes (`SMTP_URL`, else `.eml` files under
/// `DATA_DIR/mail`), from `EMAIL_FROM`.
pub fn mailer(config: &Config) -> anyhow::Result<jobs::notify::Mailer> {
    use secrecy::ExposeSecret;
    jobs::notify::Mailer::new(
        &config.email_from,
        config.smtp_url.as_ref().map(|s| s.expose_secret()),
        config.data_dir.join("mail"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_gives_a_working_development_config() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.port, 3000);
        assert_eq!(c.host, "127.0.0.1", "not offered to the network by default");
        assert_eq!(
            c.database_url.expose_secret(),
            "sqlite://./data/devsignal.db?mode=rwc"
        );
        assert!(c.redis_url.is_none());
        assert_eq!(c.jwt_expires_in, Duration::from_secs(900));
        assert_eq!(c.jwt_refresh_expires_in, Duration::from_secs(7 * 86400));
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn production_names_every_missing_or_invalid_variable() {
        let err = Config::from_vars(&vars(&[
            ("NODE_ENV", "production"),
            ("DATABASE_URL", "postgres://"),
            ("JWT_SECRET", "short"),
            ("JWT_REFRESH_SECRET", "short"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|p| p.var).collect();
        for var in [
            "DATABASE_URL",
            "JWT_SECRET",
            "JWT_REFRESH_SECRET",
            "CORS_ORIGIN",
            "FRONTEND_URL",
            "API_URL",
            "RESEND_API_KEY",
            "ENCRYPTION_KEY",
        ] {
            assert!(names.contains(&var), "{var} missing from {err}");
        }
        // Features this build does not run are not demanded; Redis is optional.
        for var in [
            "REDIS_HOST",
            "ANTHROPIC_API_KEY",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
        ] {
            assert!(!names.contains(&var), "{var} demanded: {err}");
        }
        // equal secrets are named too
        assert!(
            err.to_string()
                .contains("JWT_REFRESH_SECRET: must differ from JWT_SECRET")
        );
    }

    #[test]
    fn redis_url_is_built_from_host_port_password() {
        let c = Config::from_vars(&vars(&[
            ("REDIS_HOST", "cache"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss"),
        ]))
        .unwrap();
        assert_eq!(
            c.redis_url.unwrap().expose_secret(),
            "redis://:p%40ss@cache:6380"
        );
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let c = Config::from_vars(&vars(&[
            ("JWT_SECRET", "super-secret-value-1"),
            ("JWT_REFRESH_SECRET", "super-secret-value-2"),
            ("DATABASE_URL", "postgres://u:db-password@h/db"),
            ("STRIPE_SECRET_KEY", "sk_live_zzz"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_zzz"),
        ]))
        .unwrap();
        let debug = format!("{c:?}");
        for secret in [
            "super-secret-value",
            "db-password",
            "sk_live_zzz",
            "whsec_zzz",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert_eq!(c.database_description(), "postgres (h:5432/db)");
    }

    #[test]
    fn malformed_values_are_named_outside_production_too() {
        let err = Config::from_vars(&vars(&[
            ("PORT", "eighty"),
            ("JWT_EXPIRES_IN", "soon"),
            ("DATABASE_URL", "mysql://x"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(names, vec!["DATABASE_URL", "PORT", "JWT_EXPIRES_IN"]);
    }

    #[test]
    fn pooled_connections_idle_out_and_keep_statements_as_configured() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.database_idle_timeout, Duration::from_secs(60));
        assert_eq!(c.database_statement_cache, None);
        let c = Config::from_vars(&vars(&[
            ("DATABASE_IDLE_TIMEOUT", "5m"),
            ("DATABASE_STATEMENT_CACHE", "0"),
        ]))
        .unwrap();
        assert_eq!(c.database_idle_timeout, Duration::from_secs(300));
        assert_eq!(c.database_statement_cache, Some(0));
        let err = Config::from_vars(&vars(&[("DATABASE_STATEMENT_CACHE", "many")])).unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(names, vec!["DATABASE_STATEMENT_CACHE"]);
        let err = Config::from_vars(&vars(&[("DATABASE_IDLE_TIMEOUT", "0")])).unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(names, vec!["DATABASE_IDLE_TIMEOUT"]);
    }

    #[test]
    fn a_read_replica_must_be_a_database_of_the_primary_kind() {
        let problems = |read: &str| {
            Config::from_vars(&vars(&[
                ("DATABASE_URL", "postgres://u:p@primary/db"),
                ("DATABASE_READ_URL", read),
            ]))
            .err()
            .map(|e| {
                e.0.iter()
                    .map(|p| (p.var, p.problem.clone()))
                    .collect::<Vec<_>>()
            })
        };
        let c = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://u:p@primary/db"),
            (
                "DATABASE_READ_URL",
                "postgres://u:secret-pw@standby:6432/db",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.database_read_description().as_deref(),
            Some("postgres (standby:6432/db)")
        );
        assert!(!format!("{c:?}").contains("secret-pw"));
        let wrong_kind = problems("sqlite://replica.db").unwrap();
        assert_eq!(wrong_kind[0].0, "DATABASE_READ_URL");
        assert!(wrong_kind[0].1.contains("same kind"), "{wrong_kind:?}");
        assert_eq!(
            problems("postgres://standby").unwrap()[0].1,
            "names no database"
        );
        assert!(
            Config::from_vars(&HashMap::new())
                .unwrap()
                .database_read_url
                .is_none()
        );
    }

    #[test]
    fn rate_limits_have_defaults_and_can_be_set() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(
            c.rate_limits,
            RateLimits {
                auth: 5,
                api: 100,
                webhook: 200,
                demo: 10,
                signal: 500
            }
        );
        let c = Config::from_vars(&vars(&[("RATE_LIMIT_AUTH", "50")])).unwrap();
        assert_eq!(c.rate_limits.auth, 50);
        let err = Config::from_vars(&vars(&[("RATE_LIMIT_API", "lots")])).unwrap_err();
        assert_eq!(err.0[0].var, "RATE_LIMIT_API");
    }

    #[test]
    fn cron_overrides_are_read_and_mistakes_named() {
        let c = Config::from_vars(&vars(&[(
            "CRON_OVERRIDES",
            "alert-check-scheduler=*/2 * * * *",
        )]))
        .unwrap();
        assert_eq!(
            c.cron_overrides
                .get("alert-check-scheduler")
                .map(String::as_str),
            Some("*/2 * * * *")
        );
        assert!(
            Config::from_vars(&HashMap::new())
                .unwrap()
                .cron_overrides
                .is_empty()
        );
        let err =
            Config::from_vars(&vars(&[("CRON_OVERRIDES", "alert-check=*/2 * * * *")])).unwrap_err();
        assert_eq!(err.0[0].var, "CRON_OVERRIDES");
        assert!(
            err.0[0].problem.contains("alert-check"),
            "{}",
            err.0[0].problem
        );
    }

    #[test]
    fn graphql_limits_have_defaults_and_refuse_zero() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.graphql_limits, GraphqlLimits::default());
        let c = Config::from_vars(&vars(&[
            ("GRAPHQL_TIMEOUT_MS", "250"),
            ("WS_MAX_SUBSCRIPTIONS", "3"),
        ]))
        .unwrap();
        assert_eq!(c.graphql_limits.timeout, Duration::from_millis(250));
        assert_eq!(c.graphql_limits.ws_max_subscriptions, 3);
        let err = Config::from_vars(&vars(&[
            ("GRAPHQL_MAX_BATCH", "0"),
            ("WS_MAX_CONNECTIONS", "x"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|p| p.var).collect();
        assert_eq!(names, vec!["GRAPHQL_MAX_BATCH", "WS_MAX_CONNECTIONS"]);
    }

    #[test]
    fn durations_accept_the_original_formats() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604800)));
        assert_eq!(parse_duration("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn dev_secrets_are_generated_once_and_kept() {
        let dir = tempfile_dir();
        let mut a = Config::from_vars(&vars(&[("DATA_DIR", dir.to_str().unwrap())])).unwrap();
        a.resolve_dev_secrets().unwrap();
        let mut b = Config::from_vars(&vars(&[("DATA_DIR", dir.to_str().unwrap())])).unwrap();
        b.resolve_dev_secrets().unwrap();
        let (sa, sb) = (a.jwt_secret.unwrap(), b.jwt_secret.unwrap());
        assert_eq!(sa.expose_secret(), sb.expose_secret());
        assert!(sa.expose_secret().len() >= MIN_JWT_SECRET_BYTES);
        assert_ne!(
            sa.expose_secret(),
            a.jwt_refresh_secret.unwrap().expose_secret()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ds-config-{}", random_hex(8)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
