//! One delivery attempt: what to send, and the bookkeeping of its outcome (retries with
//! backoff, `410 Gone`, endpoint health); the per-endpoint claim that keeps deliveries to one
//! endpoint in order.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    MAX_ATTEMPTS, MAX_RESPONSE_BODY, Settings, delivery_status, signature_header, signing_secrets,
    status,
};
use crate::secrets::Cipher;
use crate::{Error, Result, events};
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
                organization_id: Set(delivery.organization_id),
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
    let payload = delivery.body.get("data").cloned().unwrap_or(Value::Null);
    let object = super::object_for(db, &endpoint, &delivery.event_type, &payload).await?;
    let body = match object {
        None => serde_json::to_string(&delivery.body),
        Some(object) => {
            let mut body = delivery.body.clone();
            if let Some(fields) = body.as_object_mut() {
                fields.insert(super::OBJECT_KEY.into(), object);
            }
            serde_json::to_string(&body)
        }
    }
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
#[tracing::instrument(name = "webhooks.record_attempt", skip_all, fields(deliveryId = %out.delivery.id))]
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
        organization_id: Set(out.delivery.organization_id),
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
        // The operator's "re-enqueue failed webhook jobs" (`devsignal jobs retry-failed
        // webhook-delivery`) sends these again.
        let job = crate::queue::defs::DELIVER_WEBHOOK
            .job(json!({"deliveryId": out.delivery.id, "endpointId": endpoint.id}))
            .organization(endpoint.organization_id);
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

pub(super) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else {
        format!("{s} seconds")
    }
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
