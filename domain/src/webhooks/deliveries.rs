//! Reading and managing deliveries: lists, attempts, redelivery.

use std::collections::HashMap;

use chrono::Utc;
use entity::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{delivery_status, find_endpoint, require_manage};
use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, Result};
pub(super) async fn find_delivery(
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
    paging::fetch_page::<webhook_deliveries::Entity>(
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
