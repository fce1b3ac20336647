//! Outbound webhooks (DESIGN 10): endpoints, the dispatcher that turns the event log into
//! deliveries, Standard Webhooks signing, and the bookkeeping of each attempt (retries with
//! exponential backoff, `410 Gone`, endpoint health). The HTTP call itself lives in the `jobs`
//! crate; everything it decides is recorded here.
//!
//! A delivery's id is its `webhook-id` (stable across retries and redeliveries of that delivery);
//! a replay makes new deliveries. The dispatcher reads the log from a cursor kept in the database
//! and creates the deliveries in the same transaction that moves the cursor, so every event is
//! turned into deliveries exactly once however many workers run.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::{
    events as event_rows, webhook_attempts, webhook_cursor, webhook_deliveries, webhook_endpoints,
};
use hmac::{KeyInit, Mac};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Entry, Meta};
use crate::crm::{self, Page, PageRequest};
use crate::secrets::Cipher;
use crate::{Actor, Error, FieldError, Principal, Result, Role, events};

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
pub const DELIVERY_QUEUE: &str = "webhook-delivery";
pub const DELIVERY_JOB: &str = "deliver-webhook";

/// Attempts per delivery, the first included (runbook 5.5).
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

/// Which events of its types an endpoint wants; every non-empty list must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Only events about accounts in these tiers (`tier` / `newTier` of the payload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// Only signals of these types (`type` of the payload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signal_types: Vec<String>,
    /// Only events about these accounts (`accountId`, or `id` of `company.*` events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_ids: Vec<Uuid>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.tiers.is_empty() && self.signal_types.is_empty() && self.account_ids.is_empty()
    }

    /// True when `payload` of an event of `event_type` passes. A criterion whose field the
    /// payload lacks does not match.
    pub fn matches(&self, event_type: &str, payload: &Value) -> bool {
        let field = |names: &[&str]| -> Option<String> {
            for n in names {
                for v in [payload.get(*n), payload.get("data").and_then(|d| d.get(*n))] {
                    if let Some(Value::String(s)) = v {
                        return Some(s.clone());
                    }
                }
            }
            None
        };
        if !self.tiers.is_empty() {
            match field(&["tier", "newTier"]) {
                Some(t) if self.tiers.iter().any(|x| x.eq_ignore_ascii_case(&t)) => {}
                _ => return false,
            }
        }
        if !self.signal_types.is_empty() {
            match field(&["type", "signalType"]) {
                Some(t) if self.signal_types.contains(&t) => {}
                _ => return false,
            }
        }
        if !self.account_ids.is_empty() {
            let names: &[&str] = if event_type.starts_with("company.") {
                &["id", "accountId"]
            } else {
                &["accountId", "companyId"]
            };
            match field(names).and_then(|s| Uuid::parse_str(&s).ok()) {
                Some(id) if self.account_ids.contains(&id) => {}
                _ => return false,
            }
        }
        true
    }
}

/// A new endpoint.
#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub filter: Option<Filter>,
}

/// A change: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub filter: Option<Option<Filter>>,
}

/// Endpoints are managed by ADMINs, or by API keys with `webhooks:manage`.
fn require_manage(actor: &Actor) -> Result<()> {
    match actor.principal {
        Principal::User { .. } => actor.require_role(Role::Admin),
        Principal::ApiKey { .. } => actor.require_scope("webhooks:manage"),
    }
}

/// A fresh signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks).
pub fn generate_secret() -> String {
    use rand::Rng;
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The HMAC key of a `whsec_` secret.
fn secret_key(secret: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Error::Internal("a webhook secret is not base64".into()))
}

/// One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret_key(secret)?)
        .map_err(|_| Error::Internal("bad HMAC key".into()))?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per live secret, space-separated.
pub fn signature_header(
    secrets: &[String],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String> {
    let sigs: Result<Vec<String>> = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// True for addresses a webhook may not reach unless private targets are allowed: loopback,
/// private, link-local (cloud metadata lives there), carrier-grade NAT, unspecified, broadcast,
/// multicast, documentation, IPv6 unique-local and link-local, and IPv4 mapped into IPv6.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x0064 && seg[1] == 0xff9b)
        }
    }
}

/// Host names that always point inside (cloud metadata services, localhost).
fn is_forbidden_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h.ends_with(".internal")
}

/// Checks a target URL's shape (scheme, host, no credentials) and, unless private targets are
/// allowed, that its host is not an internal name or address and does not resolve to one.
pub async fn check_url(settings: &Settings, field: &str, raw: &str) -> Result<url::Url> {
    let raw = raw.trim();
    let bad = |m: &str| Error::invalid(field, m);
    if raw.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("is not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if !settings.require_https => {}
        "http" => return Err(bad("must use https in production")),
        _ => return Err(bad("must be an http or https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err(bad("must have a host")),
    };
    if settings.allow_private {
        return Ok(url);
    }
    let refused = || {
        bad(
            "must not point at a loopback, private, link-local or metadata address (set WEBHOOK_ALLOW_PRIVATE=true to allow)",
        )
    };
    match host {
        url::Host::Ipv4(ip) if is_forbidden_ip(IpAddr::V4(ip)) => return Err(refused()),
        url::Host::Ipv6(ip) if is_forbidden_ip(IpAddr::V6(ip)) => return Err(refused()),
        url::Host::Domain(d) => {
            if is_forbidden_host(d) {
                return Err(refused());
            }
            let port = url.port_or_known_default().unwrap_or(443);
            // An unresolvable host is accepted: DNS may not be set up yet, and every delivery
            // checks the addresses again before it connects.
            if let Ok(addrs) = tokio::net::lookup_host((d, port)).await {
                for a in addrs {
                    if is_forbidden_ip(a.ip()) {
                        return Err(refused());
                    }
                }
            }
        }
        _ => {}
    }
    Ok(url)
}

fn check_event_types(errors: &mut Vec<FieldError>, field: &str, types: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if types.is_empty() {
        errors.push(FieldError::new(field, "must name at least one event type"));
    }
    for t in types {
        let t = t.trim();
        if t != ALL_EVENTS && !events::TYPES.contains(&t) {
            errors.push(FieldError::new(
                field,
                format!(
                    "unknown event type {t:?}; known types: *, {}",
                    events::TYPES.join(", ")
                ),
            ));
        } else if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    out
}

fn check_filter(
    errors: &mut Vec<FieldError>,
    field: &str,
    filter: Option<Filter>,
) -> Option<Value> {
    let mut f = filter?;
    f.tiers = f.tiers.iter().map(|t| t.trim().to_uppercase()).collect();
    if let Some(bad) = f.tiers.iter().find(|t| !TIERS.contains(&t.as_str())) {
        errors.push(FieldError::new(
            format!("{field}.tiers"),
            format!("unknown tier {bad:?}; one of {}", TIERS.join(", ")),
        ));
    }
    f.signal_types = f.signal_types.iter().map(|t| t.trim().to_owned()).collect();
    if f.signal_types.iter().any(|t| t.is_empty() || t.len() > 64) {
        errors.push(FieldError::new(
            format!("{field}.signalTypes"),
            "each type must be 1 to 64 characters",
        ));
    }
    if f.tiers.len() + f.signal_types.len() + f.account_ids.len() > 200 {
        errors.push(FieldError::new(field, "at most 200 values in all"));
    }
    if f.is_empty() {
        return None;
    }
    serde_json::to_value(f).ok()
}

/// The endpoint's filter, if it has one.
pub fn filter_of(m: &webhook_endpoints::Model) -> Option<Filter> {
    m.filter
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The endpoint's event types.
pub fn event_types_of(m: &webhook_endpoints::Model) -> Vec<String> {
    serde_json::from_value(m.event_types.clone()).unwrap_or_default()
}

/// True when `m` wants an event of this type and payload.
pub fn wants(m: &webhook_endpoints::Model, event_type: &str, payload: &Value) -> bool {
    let types = event_types_of(m);
    (types.iter().any(|t| t == ALL_EVENTS || t == event_type) || event_type == TEST_EVENT)
        && filter_of(m).is_none_or(|f| f.matches(event_type, payload))
}

fn snapshot(m: &webhook_endpoints::Model) -> Value {
    json!({
        "id": m.id, "url": m.url, "description": m.description, "eventTypes": m.event_types,
        "filter": m.filter, "enabled": m.enabled, "status": m.status,
    })
}

async fn find_endpoint(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_endpoints::Model> {
    webhook_endpoints::Entity::find_by_id(id)
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "WebhookEndpoint",
        })
}

/// Creates an endpoint; returns it with its secret, which is shown only now and on rotation.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    settings: &Settings,
    input: CreateInput,
) -> Result<(webhook_endpoints::Model, String)> {
    require_manage(actor)?;
    let mut errors = Vec::new();
    let url = match check_url(settings, "url", &input.url).await {
        Ok(u) => Some(u),
        Err(Error::Validation(mut f)) => {
            errors.append(&mut f);
            None
        }
        Err(e) => return Err(e),
    };
    let types = check_event_types(&mut errors, "eventTypes", &input.event_types);
    let description = crm::text(&mut errors, "description", input.description, 500);
    let filter = check_filter(&mut errors, "filter", input.filter);
    let url = match url {
        Some(u) if errors.is_empty() => u,
        _ => return Err(Error::Validation(errors)),
    };
    let count = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .count(db)
        .await?;
    if count >= MAX_ENDPOINTS as u64 {
        return Err(Error::PlanLimit(format!(
            "an organization may have at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let secret = generate_secret();
    let now = Utc::now();
    let txn = crate::db::begin(db).await?;
    let model = webhook_endpoints::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        url: Set(url.to_string()),
        description: Set(description),
        event_types: Set(json!(types)),
        filter: Set(filter),
        enabled: Set(true),
        status: Set(status::HEALTHY.into()),
        disabled_reason: Set(None),
        secret_ciphertext: Set(cipher.seal(&secret)?),
        previous_secret_ciphertext: Set(None),
        previous_secret_expires_at: Set(None),
        failing_since: Set(None),
        leased_by: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::CREATED)
            .target("WebhookEndpoint", model.id)
            .metadata(snapshot(&model)),
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

/// The organization's endpoints, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> Result<Vec<webhook_endpoints::Model>> {
    require_manage(actor)?;
    Ok(webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(db)
        .await?)
}

/// One endpoint of the organization.
pub async fn get(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_endpoints::Model> {
    require_manage(actor)?;
    find_endpoint(db, actor, id).await
}

/// Changes an endpoint. Enabling a disabled endpoint makes it HEALTHY again.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    settings: &Settings,
    id: Uuid,
    input: UpdateInput,
) -> Result<webhook_endpoints::Model> {
    require_manage(actor)?;
    let mut errors = Vec::new();
    let url = match &input.url {
        None => None,
        Some(raw) => match check_url(settings, "url", raw).await {
            Ok(u) => Some(u.to_string()),
            Err(Error::Validation(mut f)) => {
                errors.append(&mut f);
                None
            }
            Err(e) => return Err(e),
        },
    };
    let types = input
        .event_types
        .as_ref()
        .map(|t| check_event_types(&mut errors, "eventTypes", t));
    let description = input
        .description
        .map(|d| crm::text(&mut errors, "description", d, 500));
    let filter = input.filter.map(|f| check_filter(&mut errors, "filter", f));
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    let mut m = old.clone().into_active_model();
    if let Some(u) = url {
        m.url = Set(u);
    }
    if let Some(t) = types {
        m.event_types = Set(json!(t));
    }
    if let Some(d) = description {
        m.description = Set(d);
    }
    if let Some(f) = filter {
        m.filter = Set(f);
    }
    match input.enabled {
        Some(true) if !old.enabled => {
            m.enabled = Set(true);
            m.status = Set(status::HEALTHY.into());
            m.disabled_reason = Set(None);
            m.failing_since = Set(None);
        }
        Some(false) if old.enabled => {
            m.enabled = Set(false);
            m.status = Set(status::DISABLED.into());
            m.disabled_reason = Set(Some("disabled by a user".into()));
        }
        _ => {}
    }
    m.updated_at = Set(Utc::now());
    let new = m.update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::UPDATED)
            .target("WebhookEndpoint", id)
            .metadata(json!({"changes": crm::diff(&snapshot(&old), &snapshot(&new))})),
    )
    .await?;
    txn.commit().await?;
    Ok(new)
}

/// Deletes an endpoint with its deliveries; returns its id.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, meta: &Meta, id: Uuid) -> Result<Uuid> {
    require_manage(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    webhook_endpoints::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::DELETED)
            .target("WebhookEndpoint", id)
            .metadata(snapshot(&old)),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// Gives the endpoint a new secret; the old one keeps signing (as a second signature) for
/// `settings.rotation_overlap`. Returns the endpoint and the new secret.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    cipher: &Cipher,
    settings: &Settings,
    id: Uuid,
) -> Result<(webhook_endpoints::Model, String)> {
    require_manage(actor)?;
    let txn = crate::db::begin(db).await?;
    let old = find_endpoint(&txn, actor, id).await?;
    let secret = generate_secret();
    let now = Utc::now();
    let overlap = chrono::Duration::from_std(settings.rotation_overlap)
        .map_err(|_| Error::Internal("rotation overlap out of range".into()))?;
    let mut m = old.clone().into_active_model();
    m.previous_secret_ciphertext = Set(Some(old.secret_ciphertext.clone()));
    m.previous_secret_expires_at = Set(Some(now + overlap));
    m.secret_ciphertext = Set(cipher.seal(&secret)?);
    m.updated_at = Set(now);
    let new = m.update(&txn).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::SECRET_ROTATED).target("WebhookEndpoint", id),
    )
    .await?;
    txn.commit().await?;
    Ok((new, secret))
}

/// The secrets that sign now: the current one, and the previous one during a rotation.
pub fn signing_secrets(
    cipher: &Cipher,
    m: &webhook_endpoints::Model,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut out = vec![cipher.open(&m.secret_ciphertext)?];
    if let (Some(prev), Some(until)) = (&m.previous_secret_ciphertext, m.previous_secret_expires_at)
        && until > now
    {
        out.push(cipher.open(prev)?);
    }
    Ok(out)
}

/// The JSON body of a delivery: `{"type", "timestamp", "data"}`.
pub fn body(event_type: &str, at: DateTime<Utc>, data: Value) -> Value {
    json!({
        "type": event_type,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

fn new_delivery(
    endpoint: &webhook_endpoints::Model,
    event_seq: Option<i64>,
    event_type: &str,
    event_at: DateTime<Utc>,
    data: Value,
    now: DateTime<Utc>,
) -> webhook_deliveries::Model {
    webhook_deliveries::Model {
        id: Uuid::now_v7(),
        organization_id: endpoint.organization_id,
        endpoint_id: endpoint.id,
        event_seq,
        event_type: event_type.to_owned(),
        event_at,
        body: body(event_type, event_at, data),
        status: delivery_status::PENDING.into(),
        attempt_count: 0,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
    }
}

async fn insert_deliveries(
    txn: &DatabaseTransaction,
    rows: &[webhook_deliveries::Model],
) -> Result<()> {
    for chunk in rows.chunks(200) {
        webhook_deliveries::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

const CURSOR: &str = "events";

/// Turns up to `limit` new events of the log into deliveries for every enabled endpoint that
/// wants them (subscribed type, filter, and created before the event), and moves the cursor, in
/// `txn`. Returns how many events were read and the new deliveries in event order. Concurrent
/// dispatchers serialise on the cursor row, so each event is dispatched once.
pub async fn dispatch(
    txn: &DatabaseTransaction,
    limit: u64,
) -> Result<(usize, Vec<webhook_deliveries::Model>)> {
    let now = Utc::now();
    // Take the cursor row's write lock first (PostgreSQL row lock; SQLite write lock).
    let touched = webhook_cursor::Entity::update_many()
        .col_expr(webhook_cursor::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_cursor::Column::Name.eq(CURSOR))
        .exec(txn)
        .await?;
    if touched.rows_affected == 0 {
        webhook_cursor::Entity::insert(webhook_cursor::ActiveModel {
            name: Set(CURSOR.into()),
            last_seq: Set(0),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(webhook_cursor::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::UpdatedAt, Expr::value(now))
            .filter(webhook_cursor::Column::Name.eq(CURSOR))
            .exec(txn)
            .await?;
    }
    // The time once the lock is held, so deliveries are stamped in event order.
    let now = Utc::now();
    let cursor = webhook_cursor::Entity::find_by_id(CURSOR.to_owned())
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal("webhook cursor missing".into()))?;
    let batch = event_rows::Entity::find()
        .filter(event_rows::Column::Seq.gt(cursor.last_seq))
        .order_by_asc(event_rows::Column::Seq)
        .limit(limit.max(1))
        .all(txn)
        .await?;
    let Some(last) = batch.last().map(|e| e.seq) else {
        return Ok((0, Vec::new()));
    };
    let orgs: HashSet<Uuid> = batch.iter().map(|e| e.organization_id).collect();
    let endpoints = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.is_in(orgs))
        .filter(webhook_endpoints::Column::Enabled.eq(true))
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(txn)
        .await?;
    let mut by_org: HashMap<Uuid, Vec<&webhook_endpoints::Model>> = HashMap::new();
    for e in &endpoints {
        by_org.entry(e.organization_id).or_default().push(e);
    }
    let mut rows = Vec::new();
    for ev in &batch {
        for ep in by_org.get(&ev.organization_id).into_iter().flatten() {
            if ep.created_at <= ev.occurred_at && wants(ep, &ev.event_type, &ev.payload) {
                rows.push(new_delivery(
                    ep,
                    Some(ev.seq),
                    &ev.event_type,
                    ev.occurred_at,
                    ev.payload.clone(),
                    now,
                ));
            }
        }
    }
    insert_deliveries(txn, &rows).await?;
    webhook_cursor::Entity::update_many()
        .col_expr(webhook_cursor::Column::LastSeq, Expr::value(last))
        .filter(webhook_cursor::Column::Name.eq(CURSOR))
        .exec(txn)
        .await?;
    Ok((batch.len(), rows))
}

/// Everything needed to send one delivery.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery: webhook_deliveries::Model,
    pub endpoint: webhook_endpoints::Model,
    /// The exact bytes sent (and signed).
    pub body: String,
    pub secrets: Vec<String>,
}

impl Outgoing {
    /// The Standard Webhooks headers for an attempt at `timestamp` (Unix seconds).
    pub fn headers(&self, timestamp: i64) -> Result<Vec<(&'static str, String)>> {
        let id = self.delivery.id.to_string();
        let signature = signature_header(&self.secrets, &id, timestamp, &self.body)?;
        Ok(vec![
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ])
    }
}

/// Why a delivery is not sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// It is no longer pending (sent, failed, or gone).
    NotPending,
    /// Its endpoint is disabled or gone; the delivery has been marked FAILED.
    EndpointDisabled,
}

/// Loads a pending delivery with its endpoint and live secrets. A delivery whose endpoint has
/// been disabled is marked FAILED (with an attempt saying why) instead.
pub async fn prepare(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    delivery_id: Uuid,
) -> Result<std::result::Result<Outgoing, Skip>> {
    let Some(delivery) = webhook_deliveries::Entity::find_by_id(delivery_id)
        .one(db)
        .await?
    else {
        return Ok(Err(Skip::NotPending));
    };
    if delivery.status != delivery_status::PENDING {
        return Ok(Err(Skip::NotPending));
    }
    let endpoint = webhook_endpoints::Entity::find_by_id(delivery.endpoint_id)
        .one(db)
        .await?;
    let endpoint = match endpoint {
        Some(e) if e.enabled => e,
        _ => {
            let now = Utc::now();
            webhook_attempts::ActiveModel {
                id: Set(Uuid::now_v7()),
                delivery_id: Set(delivery.id),
                at: Set(now),
                status_code: Set(None),
                latency_ms: Set(0),
                response_body: Set(None),
                error: Set(Some("the endpoint is disabled".into())),
            }
            .insert(db)
            .await?;
            let mut m = delivery.into_active_model();
            m.status = Set(delivery_status::FAILED.into());
            m.updated_at = Set(now);
            m.update(db).await?;
            return Ok(Err(Skip::EndpointDisabled));
        }
    };
    let secrets = signing_secrets(cipher, &endpoint, Utc::now())?;
    let body = serde_json::to_string(&delivery.body)
        .map_err(|e| Error::Internal(format!("serialising a webhook body: {e}")))?;
    Ok(Ok(Outgoing {
        delivery,
        endpoint,
        body,
        secrets,
    }))
}

/// What one HTTP attempt got.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl AttemptResult {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What happens to the delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// No attempts left.
    Failed,
    /// The endpoint has been disabled (410 Gone, or failing for too long).
    EndpointDisabled,
}

/// Cuts `body` to [`MAX_RESPONSE_BODY`] bytes on a character boundary.
pub fn cut_body(body: &str) -> String {
    if body.len() <= MAX_RESPONSE_BODY {
        return body.to_owned();
    }
    let mut end = MAX_RESPONSE_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// The wait before retry number `n` (1 = the first retry): `base · 2^(n-1)`.
pub fn backoff(base: Duration, n: i32) -> Duration {
    base.saturating_mul(1u32 << (n.clamp(1, 20) - 1))
}

/// Records an attempt of `out` and decides what follows: success, a retry after the backoff, a
/// final failure, or disabling the endpoint (`410 Gone`, or no success for
/// `settings.disable_after`), which appends a `webhook.endpoint_disabled` event saying why.
pub async fn record_attempt(
    db: &DatabaseConnection,
    settings: &Settings,
    out: &Outgoing,
    result: AttemptResult,
) -> Result<Outcome> {
    let txn = crate::db::begin(db).await?;
    let now = result.at;
    webhook_attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(out.delivery.id),
        at: Set(now),
        status_code: Set(result.status_code.map(i32::from)),
        latency_ms: Set(i64::try_from(result.latency.as_millis()).unwrap_or(i64::MAX)),
        response_body: Set(result.response_body.as_deref().map(cut_body)),
        error: Set(result.error.clone()),
    }
    .insert(&txn)
    .await?;
    let attempts = out.delivery.attempt_count + 1;
    let Some(endpoint) = webhook_endpoints::Entity::find_by_id(out.endpoint.id)
        .one(&txn)
        .await?
    else {
        return Err(Error::NotFound {
            entity: "WebhookEndpoint",
        });
    };
    let mut d = out.delivery.clone().into_active_model();
    d.attempt_count = Set(attempts);
    d.updated_at = Set(now);
    let mut e = endpoint.clone().into_active_model();
    let mut disabled_because: Option<String> = None;
    let outcome = if result.succeeded() {
        d.status = Set(delivery_status::SUCCEEDED.into());
        if endpoint.status == status::FAILING || endpoint.failing_since.is_some() {
            e.status = Set(status::HEALTHY.into());
            e.failing_since = Set(None);
        }
        Outcome::Succeeded
    } else {
        let since = endpoint.failing_since.unwrap_or(now);
        e.failing_since = Set(Some(since));
        if endpoint.status == status::HEALTHY {
            e.status = Set(status::FAILING.into());
        }
        let failing_for = (now - since).to_std().unwrap_or_default();
        if result.status_code == Some(410) {
            disabled_because = Some("the endpoint answered 410 Gone".into());
        } else if failing_for >= settings.disable_after {
            disabled_because = Some(format!(
                "every attempt failed for {}",
                humanize(settings.disable_after)
            ));
        }
        if disabled_because.is_some() {
            d.status = Set(delivery_status::FAILED.into());
            Outcome::EndpointDisabled
        } else if attempts >= MAX_ATTEMPTS {
            d.status = Set(delivery_status::FAILED.into());
            Outcome::Failed
        } else {
            let wait = chrono::Duration::from_std(backoff(settings.retry_base, attempts))
                .unwrap_or(chrono::Duration::MAX);
            let at = now + wait;
            d.next_attempt_at = Set(at);
            Outcome::Retry(at)
        }
    };
    if let Some(reason) = &disabled_because {
        e.enabled = Set(false);
        e.status = Set(status::DISABLED.into());
        e.disabled_reason = Set(Some(reason.clone()));
    }
    if e.is_changed() {
        e.updated_at = Set(now);
        e.update(&txn).await?;
    }
    d.update(&txn).await?;
    if outcome == Outcome::Failed {
        // The runbook's "re-enqueue failed webhook jobs" (`devsignal jobs retry-failed
        // webhook-delivery`) sends these again.
        let mut job = crate::queue::NewJob::new(
            DELIVERY_QUEUE,
            DELIVERY_JOB,
            json!({"deliveryId": out.delivery.id, "endpointId": endpoint.id}),
        )
        .organization(endpoint.organization_id);
        job.max_attempts = MAX_ATTEMPTS;
        let why = match (&result.status_code, &result.error) {
            (_, Some(e)) => e.clone(),
            (Some(code), None) => format!("the endpoint answered {code}"),
            (None, None) => "failed".to_owned(),
        };
        crate::queue::record_failed(&txn, job, attempts, &why).await?;
    }
    if let Some(reason) = disabled_because {
        events::append(
            &txn,
            endpoint.organization_id,
            None,
            "webhook.endpoint_disabled",
            json!({"endpointId": endpoint.id, "url": endpoint.url, "reason": reason}),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(outcome)
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else {
        format!("{s} seconds")
    }
}

async fn find_delivery(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_deliveries::Model> {
    webhook_deliveries::Entity::find_by_id(id)
        .filter(webhook_deliveries::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            entity: "WebhookDelivery",
        })
}

/// One delivery of the organization.
pub async fn get_delivery(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_deliveries::Model> {
    require_manage(actor)?;
    find_delivery(db, actor, id).await
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<Uuid>,
    pub status: Option<String>,
}

/// A page of the organization's deliveries, newest first.
pub async fn list_deliveries(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> Result<Page<webhook_deliveries::Model>> {
    require_manage(actor)?;
    let mut cond =
        Condition::all().add(webhook_deliveries::Column::OrganizationId.eq(actor.organization_id));
    if let Some(ep) = filter.endpoint_id {
        find_endpoint(db, actor, ep).await?;
        cond = cond.add(webhook_deliveries::Column::EndpointId.eq(ep));
    }
    if let Some(s) = &filter.status {
        if !delivery_status::ALL.contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                format!("must be one of {}", delivery_status::ALL.join(", ")),
            ));
        }
        cond = cond.add(webhook_deliveries::Column::Status.eq(s.as_str()));
    }
    crm::fetch_page::<webhook_deliveries::Entity>(
        db,
        cond,
        webhook_deliveries::Column::Id,
        |_| None,
        page,
    )
    .await
}

/// The attempts of these deliveries, oldest first, by delivery (one statement).
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    delivery_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<webhook_attempts::Model>>> {
    let mut out: HashMap<Uuid, Vec<webhook_attempts::Model>> = HashMap::new();
    if delivery_ids.is_empty() {
        return Ok(out);
    }
    let rows = webhook_attempts::Entity::find()
        .filter(webhook_attempts::Column::DeliveryId.is_in(delivery_ids.to_vec()))
        .order_by_asc(webhook_attempts::Column::At)
        .order_by_asc(webhook_attempts::Column::Id)
        .all(db)
        .await?;
    for r in rows {
        out.entry(r.delivery_id).or_default().push(r);
    }
    Ok(out)
}

/// Sends a delivery again (same `webhook-id`): it becomes PENDING with a fresh set of attempts.
/// The caller schedules the send.
pub async fn redeliver(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<webhook_deliveries::Model> {
    require_manage(actor)?;
    let d = find_delivery(db, actor, id).await?;
    let ep = find_endpoint(db, actor, d.endpoint_id).await?;
    if !ep.enabled {
        return Err(Error::invalid(
            "deliveryId",
            "its endpoint is disabled; enable it first",
        ));
    }
    let now = Utc::now();
    let mut m = d.into_active_model();
    m.status = Set(delivery_status::PENDING.into());
    m.attempt_count = Set(0);
    m.next_attempt_at = Set(now);
    m.updated_at = Set(now);
    Ok(m.update(db).await?)
}

/// Puts a delivery back to PENDING with a fresh set of attempts (the `deliver-webhook` job that
/// `retry-failed webhook-delivery` runs). False when it or its endpoint no longer exists, or the
/// endpoint is disabled.
pub async fn requeue(db: &impl ConnectionTrait, delivery_id: Uuid) -> Result<bool> {
    let Some(d) = webhook_deliveries::Entity::find_by_id(delivery_id)
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let enabled = webhook_endpoints::Entity::find_by_id(d.endpoint_id)
        .one(db)
        .await?
        .is_some_and(|e| e.enabled);
    if !enabled {
        return Ok(false);
    }
    let now = Utc::now();
    let mut m = d.into_active_model();
    m.status = Set(delivery_status::PENDING.into());
    m.attempt_count = Set(0);
    m.next_attempt_at = Set(now);
    m.updated_at = Set(now);
    m.update(db).await?;
    Ok(true)
}

/// Re-sends the endpoint's events of `[from, to]` from the log as new deliveries (those it wants
/// by type and filter), in event order. Returns them; the caller schedules the sends.
pub async fn replay(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    endpoint_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<webhook_deliveries::Model>> {
    require_manage(actor)?;
    if to < from {
        return Err(Error::invalid("to", "must not be before from"));
    }
    let ep = find_endpoint(db, actor, endpoint_id).await?;
    if !ep.enabled {
        return Err(Error::invalid(
            "endpointId",
            "the endpoint is disabled; enable it first",
        ));
    }
    let evs = event_rows::Entity::find()
        .filter(event_rows::Column::OrganizationId.eq(actor.organization_id))
        .filter(event_rows::Column::OccurredAt.gte(from))
        .filter(event_rows::Column::OccurredAt.lte(to))
        .order_by_asc(event_rows::Column::Seq)
        .limit(MAX_REPLAY + 1)
        .all(db)
        .await?;
    if evs.len() as u64 > MAX_REPLAY {
        return Err(Error::invalid(
            "from",
            format!("the range holds more than {MAX_REPLAY} events; replay a shorter one"),
        ));
    }
    let now = Utc::now();
    let rows: Vec<_> = evs
        .iter()
        .filter(|ev| wants(&ep, &ev.event_type, &ev.payload))
        .map(|ev| {
            new_delivery(
                &ep,
                Some(ev.seq),
                &ev.event_type,
                ev.occurred_at,
                ev.payload.clone(),
                now,
            )
        })
        .collect();
    let txn = crate::db::begin(db).await?;
    insert_deliveries(&txn, &rows).await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, action::REPLAYED)
            .target("WebhookEndpoint", endpoint_id)
            .metadata(json!({"from": from, "to": to, "deliveries": rows.len()})),
    )
    .await?;
    txn.commit().await?;
    Ok(rows)
}

/// Makes a `webhook.test` delivery for the endpoint; the caller schedules the send.
pub async fn send_test(
    db: &DatabaseConnection,
    actor: &Actor,
    endpoint_id: Uuid,
) -> Result<webhook_deliveries::Model> {
    require_manage(actor)?;
    let ep = find_endpoint(db, actor, endpoint_id).await?;
    if !ep.enabled {
        return Err(Error::invalid(
            "endpointId",
            "the endpoint is disabled; enable it first",
        ));
    }
    let now = Utc::now();
    let row = new_delivery(
        &ep,
        None,
        TEST_EVENT,
        now,
        json!({"endpointId": ep.id, "message": "This is a test webhook from DevSignal."}),
        now,
    );
    let txn = crate::db::begin(db).await?;
    insert_deliveries(&txn, std::slice::from_ref(&row)).await?;
    txn.commit().await?;
    Ok(row)
}

/// Endpoints (enabled or not) with a pending delivery due by `now`, at most `limit`.
pub async fn endpoints_with_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>> {
    Ok(webhook_deliveries::Entity::find()
        .select_only()
        .column(webhook_deliveries::Column::EndpointId)
        .distinct()
        .filter(webhook_deliveries::Column::Status.eq(delivery_status::PENDING))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

/// Takes (or renews) the lease on an endpoint's deliveries for `owner` until `until`. False when
/// another worker holds an unexpired lease.
pub async fn claim_endpoint(
    db: &impl ConnectionTrait,
    endpoint_id: Uuid,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let res = webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::LeasedBy, Expr::value(owner))
        .col_expr(webhook_endpoints::Column::LeaseUntil, Expr::value(until))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .filter(
            Condition::any()
                .add(webhook_endpoints::Column::LeaseUntil.is_null())
                .add(webhook_endpoints::Column::LeaseUntil.lt(now))
                .add(webhook_endpoints::Column::LeasedBy.eq(owner)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Gives up `owner`'s lease on an endpoint, so any worker may take it at once.
pub async fn release_endpoint(
    db: &impl ConnectionTrait,
    endpoint_id: Uuid,
    owner: &str,
) -> Result<()> {
    webhook_endpoints::Entity::update_many()
        .col_expr(
            webhook_endpoints::Column::LeasedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            webhook_endpoints::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .filter(webhook_endpoints::Column::LeasedBy.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// The endpoint's next delivery to attempt: pending, due by `now`, in event order (the log's
/// sequence number), so first attempts reach the endpoint in the order the events happened.
pub async fn next_due(
    db: &impl ConnectionTrait,
    endpoint_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<webhook_deliveries::Model>> {
    Ok(webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint_id))
        .filter(webhook_deliveries::Column::Status.eq(delivery_status::PENDING))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
        .order_by_asc(webhook_deliveries::Column::EventSeq)
        .order_by_asc(webhook_deliveries::Column::Id)
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let both = signature_header(&[secret.into(), secret.into()], "msg_x", 1, "{}").unwrap();
        assert_eq!(both.split(' ').count(), 2);
        assert!(generate_secret().starts_with("whsec_"));
        assert!(secret_key(&generate_secret()).unwrap().len() >= 24);
    }

    #[test]
    fn internal_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_forbidden_ip(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_forbidden_ip(good.parse().unwrap()), "{good}");
        }
        assert!(is_forbidden_host("localhost"));
        assert!(is_forbidden_host("metadata.google.internal"));
        assert!(!is_forbidden_host("example.com"));
    }

    #[tokio::test]
    async fn production_targets_must_use_https() {
        // allow_private skips the DNS lookup, so no test reaches the network.
        let prod = Settings {
            require_https: true,
            allow_private: true,
            ..Default::default()
        };
        let err = check_url(&prod, "url", "http://hooks.example.com/x")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid url: must use https in production");
        assert!(
            check_url(&prod, "url", "https://hooks.example.com/x")
                .await
                .is_ok()
        );
        let dev = Settings {
            allow_private: true,
            ..Default::default()
        };
        assert!(
            check_url(&dev, "url", "http://hooks.example.com/x")
                .await
                .is_ok()
        );
    }

    #[test]
    fn filters_match_on_payload_fields() {
        let f = Filter {
            tiers: vec!["HOT".into()],
            ..Default::default()
        };
        assert!(f.matches("tier.changed", &json!({"newTier": "HOT"})));
        assert!(!f.matches("tier.changed", &json!({"newTier": "WARM"})));
        assert!(!f.matches("signal.created", &json!({})));
        let id = Uuid::now_v7();
        let f = Filter {
            account_ids: vec![id],
            ..Default::default()
        };
        assert!(f.matches("company.updated", &json!({"id": id})));
        assert!(f.matches("signal.created", &json!({"accountId": id})));
        assert!(!f.matches("signal.created", &json!({"accountId": Uuid::now_v7()})));
    }

    #[test]
    fn backoff_doubles_and_bodies_are_cut() {
        let base = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=4).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(waits, vec![30, 60, 120, 240]);
        let long = "é".repeat(1000);
        let cut = cut_body(&long);
        assert!(cut.len() <= MAX_RESPONSE_BODY);
        assert!(long.starts_with(&cut));
    }
}
