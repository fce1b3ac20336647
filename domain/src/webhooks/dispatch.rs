//! The dispatcher: the event log turned into deliveries, once; replays and test events.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{events as event_rows, webhook_deliveries, webhook_endpoints};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    MAX_REPLAY, TEST_EVENT, action, delivery_status, find_endpoint, require_manage, wants,
};
use crate::audit::{self, Entry, Meta};
use crate::events::CursorStart;
use crate::{Actor, Error, Result};
/// The JSON body of a delivery: `{"type", "timestamp", "data"}`.
pub fn body(event_type: &str, at: DateTime<Utc>, data: Value) -> Value {
    json!({
        "type": event_type,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

pub(super) fn new_delivery(
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

pub(super) async fn insert_deliveries(
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

/// Puts each `signal.created` delivery's signal metadata into its body: the log's event does
/// not carry it ([`crate::events::SignalCreated`]), a delivery does.
async fn with_signal_metadata(
    db: &impl ConnectionTrait,
    rows: &mut [webhook_deliveries::Model],
) -> Result<()> {
    let payloads = rows.iter_mut().filter_map(|r| {
        let data = r.body.get_mut("data")?;
        Some((r.event_type.as_str(), data))
    });
    crate::signals::complete_payloads(db, payloads).await
}

/// The dispatch cursor's row in `webhook_cursor` (locked by each dispatch, and by an erasure
/// so no delivery copies an event it has not redacted yet).
pub const CURSOR: &str = "events";

/// Turns up to `limit` new events of the log into deliveries for every enabled endpoint that
/// wants them (subscribed type, filter, and created before the event), and moves the cursor, in
/// `txn`. Returns how many events were read and the new deliveries in event order. Concurrent
/// dispatchers serialise on the cursor row, so each event is dispatched once.
#[tracing::instrument(name = "webhooks.dispatch", skip_all, fields(limit = limit, events = tracing::field::Empty, deliveries = tracing::field::Empty))]
pub async fn dispatch(
    txn: &DatabaseTransaction,
    limit: u64,
) -> Result<(usize, Vec<webhook_deliveries::Model>)> {
    let last_seq = crate::events::lock_cursor(txn, CURSOR, CursorStart::Beginning).await?;
    let head = crate::events::top_position(txn).await?;
    // The time once the lock is held, so deliveries are stamped in event order.
    let now = Utc::now();
    // The batch's positions and organizations first: the payloads are read only for the
    // events of organizations that have an enabled endpoint (most have none).
    let heads: Vec<(Option<i64>, Uuid)> = event_rows::Entity::find()
        .select_only()
        .column(event_rows::Column::Position)
        .column(event_rows::Column::OrganizationId)
        .filter(event_rows::Column::Position.gt(last_seq))
        .order_by_asc(event_rows::Column::Position)
        .limit(limit.max(1))
        .into_tuple()
        .all(txn)
        .await?;
    let Some(last) = heads.last().and_then(|(p, _)| *p) else {
        crate::events::pass_deleted(txn, CURSOR, last_seq, head).await?;
        return Ok((0, Vec::new()));
    };
    let orgs: HashSet<Uuid> = heads.iter().map(|(_, o)| *o).collect();
    let endpoints = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.is_in(orgs))
        .filter(webhook_endpoints::Column::Enabled.eq(true))
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(txn)
        .await?;
    let listening: HashSet<Uuid> = endpoints.iter().map(|e| e.organization_id).collect();
    let batch = if listening.is_empty() {
        Vec::new()
    } else {
        event_rows::Entity::find()
            .filter(event_rows::Column::Position.gt(last_seq))
            .filter(event_rows::Column::Position.lte(last))
            .filter(event_rows::Column::OrganizationId.is_in(listening))
            .order_by_asc(event_rows::Column::Position)
            .all(txn)
            .await?
    };
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
                    ev.position,
                    &ev.event_type,
                    ev.occurred_at,
                    ev.payload.clone(),
                    now,
                ));
            }
        }
    }
    with_signal_metadata(txn, &mut rows).await?;
    insert_deliveries(txn, &rows).await?;
    crate::events::move_cursor(txn, CURSOR, last).await?;
    let span = tracing::Span::current();
    span.record("events", heads.len());
    span.record("deliveries", rows.len());
    Ok((heads.len(), rows))
}

/// Re-sends the endpoint's events of `[from, to]` from the log as new deliveries (those it wants
/// by type and filter), in event order. Returns them; the caller schedules the sends.
#[tracing::instrument(name = "webhooks.replay", skip_all, fields(organizationId = %actor.organization_id, endpointId = %endpoint_id))]
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
    crate::events::sequence(db).await?;
    let evs = event_rows::Entity::find()
        .filter(event_rows::Column::OrganizationId.eq(actor.organization_id))
        .filter(event_rows::Column::Position.is_not_null())
        .filter(event_rows::Column::OccurredAt.gte(from))
        .filter(event_rows::Column::OccurredAt.lte(to))
        .order_by_asc(event_rows::Column::Position)
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
    let mut rows: Vec<_> = evs
        .iter()
        .filter(|ev| wants(&ep, &ev.event_type, &ev.payload))
        .map(|ev| {
            new_delivery(
                &ep,
                ev.position,
                &ev.event_type,
                ev.occurred_at,
                ev.payload.clone(),
                now,
            )
        })
        .collect();
    with_signal_metadata(db, &mut rows).await?;
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
