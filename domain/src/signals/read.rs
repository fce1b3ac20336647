//! Reading signals: lists, single rows, loaders, plan usage, and the `signal.created` payload.

use chrono::{DateTime, Utc};
use entity::{contacts, signals};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, Result, events};
/// The `signal.created` payload: the signal, plus the account's tier when it was ingested.
pub fn event_payload(s: &signals::Model, account_tier: Option<&str>) -> Value {
    json!({
        "id": s.id,
        "type": s.signal_type,
        "sourceId": s.source_id,
        "contactId": s.contact_id,
        "accountId": s.account_id,
        "anonymousId": s.anonymous_id,
        "metadata": s.metadata,
        "idempotencyKey": s.idempotency_key,
        "timestamp": s.timestamp,
        "createdAt": s.created_at,
        "accountTier": account_tier,
    })
}

/// The signal a `signal.created` event describes (what live subscriptions hand out without
/// reading the row again). `None` when the payload is not one.
pub fn from_event(event: &events::Event) -> Option<signals::Model> {
    let p = &event.payload;
    let uuid = |k: &str| p.get(k)?.as_str().and_then(|s| Uuid::parse_str(s).ok());
    let text = |k: &str| p.get(k)?.as_str().map(str::to_owned);
    let time = |k: &str| {
        DateTime::parse_from_rfc3339(p.get(k)?.as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    Some(signals::Model {
        id: uuid("id")?,
        organization_id: event.organization_id,
        source_id: uuid("sourceId")?,
        signal_type: text("type")?,
        contact_id: uuid("contactId"),
        account_id: uuid("accountId"),
        anonymous_id: text("anonymousId"),
        metadata: p.get("metadata").cloned().unwrap_or_else(|| json!({})),
        idempotency_key: text("idempotencyKey"),
        dedupe_key: String::new(),
        timestamp: time("timestamp")?,
        created_at: time("createdAt")?,
    })
}

/// Which signals to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<String>,
    pub source_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn read_rights(actor: &Actor) -> Result<()> {
    actor.require_scope("signals:read")
}

/// A page of the organization's signals, newest event first.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<signals::Model>> {
    read_rights(actor)?;
    let mut cond = Condition::all().add(signals::Column::OrganizationId.eq(actor.organization_id));
    if !filter.types.is_empty() {
        cond = cond.add(signals::Column::SignalType.is_in(filter.types.clone()));
    }
    if let Some(id) = filter.source_id {
        cond = cond.add(signals::Column::SourceId.eq(id));
    }
    if let Some(id) = filter.account_id {
        cond = cond.add(signals::Column::AccountId.eq(id));
    }
    if let Some(id) = filter.contact_id {
        cond = cond.add(signals::Column::ContactId.eq(id));
    }
    if let Some(t) = filter.from {
        cond = cond.add(signals::Column::Timestamp.gte(t));
    }
    if let Some(t) = filter.to {
        cond = cond.add(signals::Column::Timestamp.lt(t));
    }
    let mut req = page.clone();
    req.order = Some(paging::Order {
        field: "TIMESTAMP".into(),
        desc: true,
    });
    paging::fetch_page::<signals::Entity>(
        db,
        cond,
        signals::Column::Id,
        |f| (f == "TIMESTAMP").then(|| paging::Sort::time(signals::Column::Timestamp)),
        &req,
    )
    .await
}

/// One signal of the actor's organization.
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<signals::Model> {
    read_rights(actor)?;
    signals::Entity::find_by_id(id)
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Signal" })
}

/// Signals by id, in the actor's organization (for loaders).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: Vec<Uuid>,
) -> Result<Vec<signals::Model>> {
    read_rights(actor)?;
    Ok(signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .filter(signals::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// The organization's usage this calendar month (UTC): signals ingested and contacts held.
#[derive(Debug, Clone)]
pub struct Usage {
    pub period_start: DateTime<Utc>,
    pub signals: u64,
    pub contacts: u64,
}

/// Plan usage (issue 6 behaviour 11): signals ingested since the first day of this UTC month,
/// and contacts. Counting only; enforcement comes with billing.
pub async fn usage(db: &impl ConnectionTrait, actor: &Actor) -> Result<Usage> {
    use chrono::Datelike;
    use sea_orm::PaginatorTrait;
    let now = Utc::now();
    let period_start = chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(now);
    let signals = signals::Entity::find()
        .filter(signals::Column::OrganizationId.eq(actor.organization_id))
        .filter(signals::Column::CreatedAt.gte(period_start))
        .count(db)
        .await?;
    let contacts = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(actor.organization_id))
        .count(db)
        .await?;
    Ok(Usage {
        period_start,
        signals,
        contacts,
    })
}
