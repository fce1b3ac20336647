//! Outbound webhooks: endpoints, the dispatcher that turns the event log into
//! deliveries, Standard Webhooks signing, and the bookkeeping of each attempt (retries with
//! exponential backoff, `410 Gone`, endpoint health). The HTTP call itself lives in the `jobs`
//! crate; everything it decides is recorded here.
//!
//! A delivery's id is its `webhook-id` (stable across retries and redeliveries of that delivery);
//! a replay makes new deliveries. The dispatcher reads the log from a cursor kept in the database
//! and creates the deliveries in the same transaction that moves the cursor, so every event is
//! turned into deliveries exactly once however many workers run.
//!
//! Files: `endpoints` (filters, CRUD, rotation), `signing`, `targets` (URL safety), `dispatch`
//! (event log → deliveries, replay, test events), `delivery` (one attempt and its bookkeeping),
//! `deliveries` (reading and redelivering), `objects` (the changed object a delivery carries when
//! its endpoint asks for it).

use std::time::Duration;

mod deliveries;
mod delivery;
mod dispatch;
mod endpoints;
mod objects;
mod signing;
mod targets;

pub use deliveries::*;
pub use delivery::*;
pub use dispatch::*;
pub use endpoints::*;
pub use objects::*;
pub use signing::*;
pub use targets::*;

/// Endpoint health.
pub mod status {
    pub const HEALTHY: &str = "HEALTHY";
    pub const FAILING: &str = "FAILING";
    pub const DISABLED: &str = "DISABLED";
}

/// Delivery states.
pub mod delivery_status {
    pub const PENDING: &str = "PENDING";
    pub const SUCCEEDED: &str = "SUCCEEDED";
    pub const FAILED: &str = "FAILED";
    pub const ALL: &[&str] = &[PENDING, SUCCEEDED, FAILED];
}

pub mod action {
    pub const CREATED: &str = "webhook_endpoint.created";
    pub const UPDATED: &str = "webhook_endpoint.updated";
    pub const DELETED: &str = "webhook_endpoint.deleted";
    pub const SECRET_ROTATED: &str = "webhook_endpoint.secret_rotated";
    pub const REPLAYED: &str = "webhook_endpoint.replayed";
}

/// The queue and job that hold failed deliveries for the operator's `retry-failed`.
pub const DELIVERY_QUEUE: &str = crate::queue::defs::DELIVER_WEBHOOK.queue;
pub const DELIVERY_JOB: &str = crate::queue::defs::DELIVER_WEBHOOK.name;

/// Attempts per delivery, the first included.
pub const MAX_ATTEMPTS: i32 = 5;
/// The type of the message `sendTestWebhook` sends.
pub const TEST_EVENT: &str = "webhook.test";
/// What an endpoint may subscribe to besides the log's own types.
pub const ALL_EVENTS: &str = "*";
/// Response bodies are kept up to this many bytes.
pub const MAX_RESPONSE_BODY: usize = 1024;
/// Endpoints per organization.
pub const MAX_ENDPOINTS: usize = 50;
/// Events one replay may re-send.
pub const MAX_REPLAY: u64 = 10_000;
/// Tiers a filter may name.
pub const TIERS: &[&str] = &["HOT", "WARM", "COLD", "INACTIVE"];

/// How deliveries behave; from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Allow targets in loopback, private, link-local and metadata ranges.
    pub allow_private: bool,
    /// Only `https` targets (production).
    pub require_https: bool,
    /// The wait before the first retry; each next one waits twice as long.
    pub retry_base: Duration,
    /// How long an endpoint may fail without a single success before it is disabled.
    pub disable_after: Duration,
    /// How long the previous secret still signs after a rotation.
    pub rotation_overlap: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_private: false,
            require_https: false,
            retry_base: Duration::from_secs(30),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            rotation_overlap: Duration::from_secs(24 * 3600),
        }
    }
}
