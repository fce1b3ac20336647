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
/// The `signal.created` payload: the signal without its metadata (see [`SignalCreated`]), plus
/// the account's tier when it was ingested.
pub fn event_payload(s: &signals::Model, account_tier: Option<&str>) -> Value {
    SignalCreated {
        id: s.id,
        signal_type: s.signal_type.clone(),
        source_id: s.source_id,
        contact_id: s.contact_id,
        account_id: s.account_id,
        anonymous_id: s.anonymous_id.clone(),
        metadata: None,
        idempotency_key: s.idempotency_key.clone(),
        timestamp: s.timestamp,
        created_at: s.created_at,
        account_tier: account_tier.map(str::to_owned),
    }
    .to_value()
}

/// The signal a `signal.created` event describes (what live subscriptions hand out without
/// reading the row again), its metadata `Null` unless the event carries it (older events): the
/// reader fetches it from the signal when asked. `None` when the payload is not one.
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
        // Null: not carried by the event (see `SignalCreated`); read from the signal on demand.
        metadata: p.metadata.unwrap_or(Value::Null),
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
    paging::fetch_page_of::<signals::Entity, _>(
        db,
        cond,
        signals::Column::Id,
        |f| (f == "TIMESTAMP").then(|| paging::Sort::time(signals::Column::Timestamp)),
        &req,
        &paging::ByPosition,
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

/// The metadata of the signals `ids` (any organization: callers hold ids taken from events),
/// in one statement per 1,000 ids. Signals gone since (erased) are absent.
pub async fn metadata_of(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<std::collections::HashMap<Uuid, Value>> {
    use sea_orm::QuerySelect;
    let ids: Vec<Uuid> = ids
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows = signals::Entity::find()
            .select_only()
            .column(signals::Column::Id)
            .column(signals::Column::Metadata)
            .filter(signals::Column::Id.is_in(chunk.to_vec()))
            .into_tuple::<(Uuid, Value)>()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Gives the `signal.created` payloads among `payloads` that do not carry their signal's
/// metadata (see [`SignalCreated`]) that metadata, `{}` for a signal erased since, in one
/// statement: what a webhook delivery carries, and what a process's live fan-out reads once for
/// all its subscribers. Other payloads are left alone.
pub async fn complete_payloads<'a>(
    db: &impl ConnectionTrait,
    payloads: impl IntoIterator<Item = (&'a str, &'a mut Value)>,
) -> Result<()> {
    let lacking = |p: &Value| -> Option<Uuid> {
        if p.get("metadata").is_some() {
            return None;
        }
        p.get("id")?.as_str()?.parse().ok()
    };
    let mut todo: Vec<(Uuid, &mut Value)> = payloads
        .into_iter()
        .filter(|(t, _)| *t == crate::events::EventType::SignalCreated.as_str())
        .filter_map(|(_, p)| Some((lacking(p)?, p)))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let found = metadata_of(db, todo.iter().map(|(id, _)| *id).collect::<Vec<_>>()).await?;
    for (id, p) in &mut todo {
        if let Value::Object(m) = p {
            let metadata = found.get(id).cloned();
            m.insert(
                "metadata".into(),
                metadata.unwrap_or_else(|| serde_json::json!({})),
            );
        }
    }
    Ok(())
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
