//! Sends webhook deliveries over HTTP. One attempt: load the pending delivery, sign it
//! (Standard Webhooks), POST it with a timeout and no redirects, read at most a bounded part of
//! the response, and hand the result to `domain::webhooks::record_attempt`, which decides on
//! success, retry, failure or disabling the endpoint.
//!
//! Targets in internal ranges are refused at connect time, not only when the endpoint was saved:
//! the client resolves names through [`GuardedResolver`], so a name that starts resolving to a
//! private address (DNS rebinding) is refused on the next attempt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::secrets::Cipher;
use domain::webhooks::{self, AttemptResult, Outcome, Settings, Skip};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

/// How much of a response body is read before the connection is dropped.
const READ_LIMIT: usize = 64 * 1024;

/// Resolves names like the system resolver, but refuses any name with an address in a forbidden
/// range (`domain::webhooks::is_forbidden_ip`).
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.iter().any(|a| webhooks::is_forbidden_ip(a.ip())) {
                return Err(format!(
                    "{host} resolves to a loopback, private, link-local or metadata address"
                )
                .into());
            }
            if addrs.is_empty() {
                return Err(format!("{host} does not resolve").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The webhook HTTP client with its settings.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    settings: Settings,
    cipher: Cipher,
}

impl Sender {
    /// A client with `timeout` per attempt, no redirects, no proxies, and (unless private
    /// targets are allowed) the guarded resolver.
    pub fn new(settings: Settings, cipher: Cipher, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("DevSignal-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Sender {
            client: builder.build()?,
            settings,
            cipher,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The HTTP client (guarded resolver, no redirects), for other posts to outside targets.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Makes one attempt at delivery `id`. `None` when there was nothing to send (no longer
    /// pending, or its endpoint is disabled).
    pub async fn attempt(
        &self,
        db: &DatabaseConnection,
        id: Uuid,
    ) -> domain::Result<Option<Outcome>> {
        let out = match webhooks::prepare(db, &self.cipher, id).await? {
            Ok(out) => out,
            Err(Skip::NotPending) => return Ok(None),
            Err(Skip::EndpointDisabled) => {
                tracing::info!(deliveryId = %id, "Webhook delivery skipped: endpoint disabled");
                return Ok(None);
            }
        };
        let result = self.post(&out).await;
        let outcome = webhooks::record_attempt(db, &self.settings, &out, result.clone()).await?;
        tracing::info!(
            deliveryId = %id,
            endpointId = %out.endpoint.id,
            eventType = %out.delivery.event_type,
            attempt = out.delivery.attempt_count + 1,
            statusCode = result.status_code,
            latencyMs = result.latency.as_millis() as u64,
            outcome = ?outcome,
            "Webhook attempt"
        );
        Ok(Some(outcome))
    }

    async fn post(&self, out: &webhooks::Outgoing) -> AttemptResult {
        let at = Utc::now();
        let started = Instant::now();
        let fail = |error: String| AttemptResult {
            at,
            status_code: None,
            latency: started.elapsed(),
            response_body: None,
            error: Some(error),
        };
        let url = match url::Url::parse(&out.endpoint.url) {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}")),
        };
        if !self.settings.allow_private {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(webhooks::is_forbidden_ip) {
                return fail(
                    "refused: the target is a loopback, private, link-local or metadata address"
                        .into(),
                );
            }
        }
        let headers = match out.headers(at.timestamp()) {
            Ok(h) => h,
            Err(e) => return fail(format!("signing failed: {e}")),
        };
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(out.body.clone());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(describe(&e)),
        };
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut error = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() >= READ_LIMIT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The status already arrived; a body cut short does not change it, unless
                    // the whole attempt timed out.
                    if e.is_timeout() {
                        error = Some(describe(&e));
                    }
                    break;
                }
            }
        }
        let text =
            String::from_utf8_lossy(&body[..body.len().min(webhooks::MAX_RESPONSE_BODY * 4)]);
        AttemptResult {
            at,
            status_code: Some(status),
            latency: started.elapsed(),
            response_body: (!text.is_empty()).then(|| webhooks::cut_body(&text)),
            error,
        }
    }
}

/// A short, useful description of a failed request, with its causes.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        causes.push(s.to_string());
        src = s.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

/// How the delivery loop runs.
#[derive(Debug, Clone)]
pub struct PumpOptions {
    /// A name for this worker, unique among running workers (lease owner).
    pub owner: String,
    /// How often the log and the due deliveries are checked.
    pub poll_interval: Duration,
    /// Endpoints sent to at the same time by this worker.
    pub concurrency: usize,
    /// How long an endpoint lease lasts without renewal (longer than one attempt's timeout).
    pub lease: Duration,
}

/// Events dispatched per transaction.
const DISPATCH_BATCH: u64 = 500;

/// Turns new events into deliveries until the log is drained; returns how many deliveries were
/// made.
pub async fn dispatch_all(db: &DatabaseConnection) -> domain::Result<usize> {
    domain::events::sequence(db).await?;
    // An idle poll reads and leaves: no write lock, no cursor write, nothing to fsync.
    if domain::events::pending_after(db, webhooks::CURSOR).await? == Some(false) {
        return Ok(0);
    }
    let mut made = 0;
    loop {
        let txn = domain::db::begin(db).await?;
        let (read, rows) = webhooks::dispatch(&txn, DISPATCH_BATCH).await?;
        txn.commit().await?;
        made += rows.len();
        if (read as u64) < DISPATCH_BATCH {
            return Ok(made);
        }
    }
}

/// Sends every due delivery of one endpoint, in order, while holding its lease.
async fn drain_endpoint(
    db: &DatabaseConnection,
    sender: &Sender,
    opts: &PumpOptions,
    endpoint: Uuid,
    shutdown: &tokio_util::sync::CancellationToken,
) -> domain::Result<()> {
    let lease = chrono::Duration::from_std(opts.lease).unwrap_or(chrono::Duration::seconds(60));
    let now = Utc::now();
    if !webhooks::claim_endpoint(db, endpoint, &opts.owner, now, now + lease).await? {
        return Ok(());
    }
    let result = async {
        while !shutdown.is_cancelled() {
            let now = Utc::now();
            let Some(d) = webhooks::next_due(db, endpoint, now).await? else {
                break;
            };
            // Renew before each attempt: an attempt is bounded by the client timeout < lease.
            if !webhooks::claim_endpoint(db, endpoint, &opts.owner, now, now + lease).await? {
                break;
            }
            sender.attempt(db, d.id).await?;
        }
        Ok(())
    }
    .await;
    webhooks::release_endpoint(db, endpoint, &opts.owner).await?;
    result
}

/// One round: evaluate alert rules on new events, dispatch new events, then drain every endpoint with due deliveries (at most
/// `opts.concurrency` at a time). Tests call this directly.
pub async fn tick(
    db: &DatabaseConnection,
    sender: &Sender,
    opts: &PumpOptions,
    shutdown: &tokio_util::sync::CancellationToken,
) -> domain::Result<()> {
    // Alerts read the log first, so the `alert.triggered` events they append are dispatched in
    // the same round. A failing evaluation is retried next round and never holds up deliveries.
    if let Err(e) = domain::alerts::evaluate_all(db).await {
        tracing::error!(error = %e, "Alert evaluation failed");
    }
    dispatch_all(db).await?;
    let due = webhooks::endpoints_with_due(db, Utc::now(), 1000).await?;
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for endpoint in due {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (db, sender, opts, shutdown) =
            (db.clone(), sender.clone(), opts.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _permit = permit;
            if let Err(e) = drain_endpoint(&db, &sender, &opts, endpoint, &shutdown).await {
                tracing::error!(endpointId = %endpoint, error = %e, "Webhook delivery failed");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The delivery loop: a [`tick`] every `poll_interval` until `shutdown`; a running attempt is
/// finished (bounded by the client timeout) and the leases released before it returns.
pub async fn run(
    db: DatabaseConnection,
    sender: Sender,
    opts: PumpOptions,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tracing::info!(owner = %opts.owner, "Webhook delivery started");
    while !shutdown.is_cancelled() {
        if let Err(e) = tick(&db, &sender, &opts, &shutdown).await {
            tracing::error!(error = %e, "Webhook delivery round failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(opts.poll_interval) => {}
        }
    }
    tracing::info!("Webhook delivery stopped");
}
