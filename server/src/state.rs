//! What every request handler shares: configuration, the database pool, the optional Redis
//! pool, metrics, the GraphQL schema, the process-wide shutdown signal, and identity services.

use std::sync::Arc;
use std::time::Instant;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::redis::RedisPool;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    /// The read replica (`DATABASE_READ_URL`) list and search queries read, when configured.
    pub read_db: Option<DatabaseConnection>,
    pub redis: Option<RedisPool>,
    pub metrics: Arc<Metrics>,
    pub started_at: Instant,
    /// Cancelled when the process begins shutting down; long-lived streams end on it.
    pub shutdown: CancellationToken,
    /// Credentials to actors, sessions, JWT keys, rate limiter, mailer and API-key usage.
    pub identity: Arc<crate::auth::Identity>,
    /// The webhook HTTP sender with its settings and the secrets cipher.
    pub webhooks: jobs::webhook_delivery::Sender,
    /// Live events for subscriptions, read from the event log.
    pub live: crate::live::Live,
    /// Announces commits: wakes the live tailer and the job worker here and elsewhere.
    pub commits: crate::commits::Commits,
    /// Connector settings, HTTP client and cipher (integrations, inbound webhooks).
    pub connectors: connectors::Runtime,
    /// Rung when a request is accepted for later ingest: wakes this process's intake drainer.
    pub intake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// Stripe's API with the server's key, when billing is configured.
    pub fn stripe(&self) -> Option<connectors::stripe::Stripe> {
        use secrecy::ExposeSecret;
        self.config
            .stripe_secret_key
            .as_ref()
            .map(|k| connectors::stripe::Stripe {
                client: self.connectors.client().clone(),
                api_url: self.config.stripe_api_url.clone(),
                secret_key: k.expose_secret().to_owned(),
            })
    }

    /// What the job worker sends email and Slack posts with: the identity mailer, the webhook
    /// sender (its guarded client and cipher), and the addresses links point at.
    pub fn notifier(&self) -> jobs::notify::Notifier {
        jobs::notify::Notifier {
            mailer: self.identity.mailer.clone(),
            sender: self.webhooks.clone(),
            frontend_url: self.config.frontend_url.clone(),
            api_url: self.config.api_url.clone(),
        }
    }
}
