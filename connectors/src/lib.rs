//! Connectors: how outside sources feed the signal pipeline. An organization *connects* a source
//! (an integration: public `config`, sealed credentials, a webhook secret); a *run* reads what is
//! new from the source's API and hands every item to the one ingest function
//! (`domain::signals::ingest_many`) with stable idempotency keys, so re-reading anything (a full
//! re-sync, a redelivered webhook, a webhook and a later sync of the same star) never makes a
//! second signal.
//!
//! The framework every connector shares:
//! - [`store`]: integrations, their status transitions, runs and per-resource cursors;
//! - [`http`]: the HTTP client: conditional requests (ETag / Last-Modified), `Link` paging, the
//!   source's rate-limit budget (stop and continue at the reset), retries with exponential backoff
//!   for 5xx, timeouts and connection errors, and rejected credentials as a permanent stop;
//! - [`run`]: one run at a time per integration (a lease on the integration row), the run's
//!   record, and what the outcome does to the integration (`CONNECTED`, `BACKOFF` with
//!   `nextSyncAt` and a continuation job, `ERROR` until the credentials or config change);
//! - [`webhook`]: signed inbound webhooks (HMAC-SHA256 over the raw body, constant-time).
//!
//! One module per source implements [`Connector`]: [`github`], [`packages`] (npm and PyPI),
//! [`posthog`], [`linkedin`] (webhook and import only: LinkedIn has no API to read),
//! [`intercom`], [`zendesk`], [`discord`], [`twitter`] (Twitter/X), [`stackoverflow`],
//! [`reddit`]; and [`clearbit`], which is not a signal source but enriches accounts and
//! contacts.

pub mod anthropic;
pub mod clearbit;
pub mod crm;
pub mod discord;
pub mod github;
pub mod http;
pub mod intercom;
pub mod linkedin;
pub mod packages;
pub mod posthog;
pub mod reddit;
pub mod run;
pub mod stackoverflow;
pub mod store;
pub mod stripe;
pub mod twitter;
pub mod webhook;
pub mod zendesk;

use std::sync::Arc;
use std::time::Duration;

use domain::FieldError;
use domain::secrets::Cipher;
use serde_json::Value;

/// The job that runs one integration's sync.
pub const SYNC_JOB: &str = domain::queue::defs::SYNC_INTEGRATION.name;

/// Every kind an organization may name, and whether it is built. Connecting one that is not
/// built answers `BAD_USER_INPUT`.
pub const KINDS: &[(&str, bool)] = &[
    ("GITHUB", true),
    ("NPM", true),
    ("PYPI", true),
    ("STACKOVERFLOW", true),
    ("REDDIT", true),
    ("DISCORD", true),
    ("TWITTER", true),
    ("LINKEDIN", true),
    ("POSTHOG", true),
    ("INTERCOM", true),
    ("ZENDESK", true),
    ("HUBSPOT", true),
    ("SALESFORCE", true),
    ("CLEARBIT", true),
];

/// Whether `kind` is one of [`KINDS`] that is built.
pub fn is_built(kind: &str) -> bool {
    KINDS.iter().any(|(k, built)| *k == kind && *built)
}

/// Integration statuses.
pub mod status {
    pub const CONNECTED: &str = "CONNECTED";
    pub const SYNCING: &str = "SYNCING";
    pub const BACKOFF: &str = "BACKOFF";
    pub const ERROR: &str = "ERROR";
    pub const DISCONNECTED: &str = "DISCONNECTED";
}

/// Run statuses.
pub mod run_status {
    pub const RUNNING: &str = "RUNNING";
    pub const SUCCEEDED: &str = "SUCCEEDED";
    pub const PARTIAL: &str = "PARTIAL";
    pub const FAILED: &str = "FAILED";
}

/// Where the outside APIs are (every base URL is configurable: enterprise installs, tests).
#[derive(Debug, Clone)]
pub struct Settings {
    pub github_api_url: String,
    pub npm_downloads_api_url: String,
    pub npm_registry_url: String,
    pub pypistats_api_url: String,
    pub pypi_url: String,
    pub stackexchange_api_url: String,
    pub reddit_api_url: String,
    pub reddit_auth_url: String,
    pub discord_api_url: String,
    pub twitter_api_url: String,
    pub intercom_api_url: String,
    /// HubSpot's API (`https://api.hubapi.com`); its token endpoint is `/oauth/v1/token` there.
    pub hubspot_api_url: String,
    /// HubSpot's consent page (`https://app.hubspot.com/oauth/authorize`).
    pub hubspot_auth_url: String,
    /// Salesforce's login host (`https://login.salesforce.com`): consent and token endpoints.
    /// The API is at the instance URL the token answer names.
    pub salesforce_login_url: String,
    /// The OAuth apps (`HUBSPOT_CLIENT_ID`/`_SECRET`, `SALESFORCE_CLIENT_ID`/`_SECRET`): needed
    /// to connect with OAuth and to refresh tokens.
    pub hubspot_app: Option<OAuthApp>,
    pub salesforce_app: Option<OAuthApp>,
    /// Clearbit's Company API (`/v2/companies/find`).
    pub clearbit_company_url: String,
    /// Clearbit's Person API (`/v2/people/find`).
    pub clearbit_person_url: String,
    /// `CLEARBIT_API_KEY`: enrichment for every organization (an organization's CLEARBIT
    /// integration's key takes precedence).
    pub clearbit_api_key: Option<secrecy::SecretString>,
    /// Anthropic's Messages API (`https://api.anthropic.com`; requests go to `/v1/messages`).
    pub anthropic_api_url: String,
    /// `ANTHROPIC_API_KEY`: AI briefs for every organization without a key of its own.
    pub anthropic_api_key: Option<secrecy::SecretString>,
    /// `ANTHROPIC_MODEL`.
    pub anthropic_model: String,
    /// `AI_BRIEFS_PER_MONTH`: briefs an organization may have a model write per calendar month.
    pub ai_briefs_per_month: u64,
    /// One request's bound.
    pub timeout: Duration,
    /// The wait before the first retry of a 5xx, timeout or connection error (then doubling).
    pub retry_base: Duration,
    /// Attempts per request (the first one included).
    pub max_attempts: u32,
    /// A rate limit that lifts within this long is waited out inside the run (Discord's
    /// per-route buckets, a `Retry-After: 2`); a longer one stops the run until it lifts.
    pub max_inline_wait: Duration,
    /// How long a run's lease on its integration lasts without renewal (renewed as it stores
    /// cursors); a run not renewed this long was stopped and another run may take over.
    pub run_lease: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            github_api_url: "https://api.github.com".into(),
            npm_downloads_api_url: "https://api.npmjs.org".into(),
            npm_registry_url: "https://registry.npmjs.org".into(),
            pypistats_api_url: "https://pypistats.org/api".into(),
            pypi_url: "https://pypi.org".into(),
            stackexchange_api_url: "https://api.stackexchange.com/2.3".into(),
            reddit_api_url: "https://oauth.reddit.com".into(),
            reddit_auth_url: "https://www.reddit.com/api/v1/access_token".into(),
            discord_api_url: "https://discord.com/api/v10".into(),
            twitter_api_url: "https://api.twitter.com/2".into(),
            intercom_api_url: "https://api.intercom.io".into(),
            hubspot_api_url: "https://api.hubapi.com".into(),
            hubspot_auth_url: "https://app.hubspot.com/oauth/authorize".into(),
            salesforce_login_url: "https://login.salesforce.com".into(),
            hubspot_app: None,
            salesforce_app: None,
            clearbit_company_url: "https://company.clearbit.com".into(),
            clearbit_person_url: "https://person.clearbit.com".into(),
            clearbit_api_key: None,
            anthropic_api_url: anthropic::DEFAULT_API_URL.into(),
            anthropic_api_key: None,
            anthropic_model: anthropic::DEFAULT_MODEL.into(),
            ai_briefs_per_month: anthropic::DEFAULT_BRIEFS_PER_MONTH,
            timeout: Duration::from_secs(30),
            retry_base: Duration::from_millis(500),
            max_attempts: 4,
            max_inline_wait: Duration::from_secs(10),
            run_lease: Duration::from_secs(300),
        }
    }
}

/// An OAuth client registered with a CRM.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// What runs need: settings, the HTTP client and the cipher for stored secrets. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    cipher: Cipher,
    client: reqwest::Client,
}

impl Runtime {
    /// A runtime with an HTTP client that sends `User-Agent: DevSignal/<version>`, accepts gzip
    /// and gives up on a request after `settings.timeout`.
    pub fn new(settings: Settings, cipher: Cipher) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("DevSignal/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .build()?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                settings,
                cipher,
                client,
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }
}

/// One source. Implementations validate their configuration and read the source in a run.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The kind, as in [`KINDS`].
    fn kind(&self) -> &'static str;
    /// Checks `config` and `credentials` (fields named `config.<x>` and `credentials.<x>`) and
    /// returns the configuration to store (normalised).
    fn validate(
        &self,
        config: &Value,
        credentials: Option<&Value>,
    ) -> Result<Value, Vec<FieldError>>;
    /// Reads what is new (everything when the run is full) and ingests it.
    async fn sync(&self, cx: &run::SyncContext) -> Result<(), run::Stop>;
    /// Whether runs are scheduled (a source with no API to read, such as LinkedIn, only
    /// receives webhooks and imports).
    fn syncs(&self) -> bool {
        true
    }
    /// Whether the kind takes inbound webhooks (at `/api/v1/webhooks/{kind}/{integrationId}`).
    fn webhooks(&self) -> bool {
        false
    }
    /// Verifies an inbound webhook delivery and says what it stands for. `None`: this kind
    /// takes no webhooks (answered 404).
    fn webhook(
        &self,
        _delivery: &webhook::Inbound<'_>,
    ) -> Option<Result<webhook::Delivery, webhook::Refusal>> {
        None
    }
}

/// The connector of `kind`, when built.
pub fn connector(kind: &str) -> Option<&'static dyn Connector> {
    match kind {
        "GITHUB" => Some(&github::GitHub),
        "NPM" => Some(&packages::Npm),
        "PYPI" => Some(&packages::Pypi),
        "POSTHOG" => Some(&posthog::PostHog),
        "LINKEDIN" => Some(&linkedin::LinkedIn),
        "INTERCOM" => Some(&intercom::Intercom),
        "ZENDESK" => Some(&zendesk::Zendesk),
        "DISCORD" => Some(&discord::Discord),
        "TWITTER" => Some(&twitter::Twitter),
        "STACKOVERFLOW" => Some(&stackoverflow::StackOverflow),
        "REDDIT" => Some(&reddit::Reddit),
        "HUBSPOT" => Some(&crm::HUBSPOT),
        "CLEARBIT" => Some(&clearbit::Clearbit),
        "SALESFORCE" => Some(&crm::SALESFORCE),
        _ => None,
    }
}
