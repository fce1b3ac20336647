//! Reading signals: lists, single rows, loaders, plan usage; the `signal.created` payload
//! ([`crate::events::SignalCreated`]) as a signal row.

use chrono::{DateTime, Utc};
use entity::signals;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::events::{Payload, SignalCreated};
use crate::paging::{self, Page, PageRequest};
use crate::{Actor, Error, Result, events};
/// The `signal.created` payload: the signal, plus the account's tier when it was ingested.
pub fn event_payload(s: &signals::Model, account_tier: Option<&str>) -> Value {
    SignalCreated {
        id: s.id,
        signal_type: s.signal_type.clone(),
        source_id: s.source_id,
        contact_id: s.contact_id,
        account_id: s.account_id,
        anonymous_id: s.anonymous_id.clone(),
        metadata: s.metadata.clone(),
        idempotency_key: s.idempotency_key.clone(),
        timestamp: s.timestamp,
        created_at: s.created_at,
        account_tier: account_tier.map(str::to_owned),
    }
    .to_value()
}

/// The signal a `signal.created` event describes (what live subscriptions hand out without
/// reading the row again). `None` when the payload is not one.
pub fn from_event(event: &events::Event) -> Option<signals::Model> {
    let p = SignalCreated::decode(event)?;
    Some(signals::Model {
        id: p.id,
        organization_id: event.organization_id,
        source_id: p.source_id,
        signal_type: p.signal_type,
        contact_id: p.contact_id,
        account_id: p.account_id,
        anonymous_id: p.anonymous_id,
        metadata: p.metadata,
        idempotency_key: p.idempotency_key,
        dedupe_key: String::new(),
        timestamp: p.timestamp,
        created_at: p.created_at,
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
        // Any spelling finds the type's signals, also rows stored before an alias existed.
        let mut types: Vec<String> = filter
            .types
            .iter()
            .flat_map(|t| super::types::spellings(t))
            .collect();
        types.sort();
        types.dedup();
        cond = cond.add(signals::Column::SignalType.is_in(types));
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
