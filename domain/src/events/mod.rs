//! The event log: the spine of the system. Every state change outsiders may care about appends an
//! event in the **same transaction** as the change, so a rolled-back change leaves no event and a
//! committed one always has its event. Subscriptions, webhooks, workflows and alerts read this
//! log and nothing else, resuming from the sequence number (`seq`) they last saw.
//!
//! Ordering: `seq` comes from the database (an auto-increment key). On PostgreSQL two
//! transactions could commit in the opposite order of their `seq`s, and a consumer that had read
//! up to the later one would then skip the earlier one for good. [`append`] prevents that by
//! taking a transaction-scoped advisory lock first, so appenders commit one after another in `seq`
//! order. SQLite serialises writers anyway. Append the event as the last write of a transaction to
//! keep the lock short.

use chrono::{DateTime, Utc};
use entity::events;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::{Actor, Error, Result, Role};

mod payloads;
mod types;

pub use payloads::{AnomalyDetected, Payload, ScoreChanged, SignalCreated};
pub use types::{EventType, TYPES};

/// A key no other DevSignal lock uses: orders event appends on PostgreSQL.
const EVENTS_LOCK_KEY: i64 = 0x6465_7673_6967_6e02;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub id: Uuid,
    pub organization_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
}

impl From<events::Model> for Event {
    fn from(m: events::Model) -> Self {
        Event {
            seq: m.seq,
            id: m.id,
            organization_id: m.organization_id,
            event_type: m.event_type,
            payload: m.payload,
            actor_user_id: m.actor_user_id,
            actor_api_key_id: m.actor_api_key_id,
            occurred_at: m.occurred_at,
        }
    }
}

/// Appends one event to `organization_id`'s log inside `txn`. `actor` (when a person or key
/// caused the change) is recorded for attribution. Panics nowhere; an unknown type is refused.
pub async fn append(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    actor: Option<&Actor>,
    event_type: &str,
    payload: Value,
) -> Result<Event> {
    if EventType::parse(event_type).is_none() {
        return Err(Error::Internal(format!("unknown event type {event_type}")));
    }
    crate::db::advisory_xact_lock(txn, &[EVENTS_LOCK_KEY]).await?;
    let (actor_user_id, actor_api_key_id) = actor_columns(actor);
    let model = events::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        event_type: Set(event_type.to_owned()),
        payload: Set(payload),
        actor_user_id: Set(actor_user_id),
        actor_api_key_id: Set(actor_api_key_id),
        occurred_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(model.into())
}

/// Appends several events of one organization inside `txn`, in order, with one lock and one
/// multi-row insert per 500 events (for batch writes such as signal ingest).
pub async fn append_many(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    actor: Option<&Actor>,
    items: Vec<(&str, Value)>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    if let Some((bad, _)) = items.iter().find(|(t, _)| EventType::parse(t).is_none()) {
        return Err(Error::Internal(format!("unknown event type {bad}")));
    }
    crate::db::advisory_xact_lock(txn, &[EVENTS_LOCK_KEY]).await?;
    let (actor_user_id, actor_api_key_id) = actor_columns(actor);
    let now = Utc::now();
    let rows: Vec<events::ActiveModel> = items
        .into_iter()
        .map(|(t, payload)| events::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(organization_id),
            event_type: Set(t.to_owned()),
            payload: Set(payload),
            actor_user_id: Set(actor_user_id),
            actor_api_key_id: Set(actor_api_key_id),
            occurred_at: Set(now),
            ..Default::default()
        })
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<events::ActiveModel> = rows
            .by_ref()
            .take(crate::db::rows_per_insert::<events::Entity>())
            .collect();
        events::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events after this sequence number.
    pub after: Option<i64>,
    /// Only these types (all when empty).
    pub types: Vec<String>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: u64,
}

/// The largest page [`read`] returns.
pub const MAX_PAGE: u64 = 1000;

/// Validates type names against [`TYPES`], naming the offending field.
pub fn validate_types(field: &str, types: &[String]) -> Result<()> {
    match types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        Some(bad) => Err(Error::invalid(
            field,
            format!(
                "unknown event type {bad:?}; known types: {}",
                TYPES.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The organization's events in sequence order, for consumers (subscriptions, webhooks, jobs)
/// that already know which organization they serve.
pub async fn read(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    query: &EventQuery,
) -> Result<Vec<Event>> {
    let mut select = events::Entity::find()
        .filter(events::Column::OrganizationId.eq(organization_id))
        .order_by_asc(events::Column::Seq)
        .limit(query.limit.clamp(1, MAX_PAGE));
    if let Some(after) = query.after {
        select = select.filter(events::Column::Seq.gt(after));
    }
    if !query.types.is_empty() {
        select = select.filter(events::Column::EventType.is_in(query.types.clone()));
    }
    Ok(select.all(db).await?.into_iter().map(Event::from).collect())
}

/// The log as an ADMIN of the actor's organization sees it.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    query: &EventQuery,
) -> Result<Vec<Event>> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    validate_types("types", &query.types)?;
    read(db, actor.organization_id, query).await
}

/// Every organization's events after `after`, in sequence order, at most `limit` (capped at
/// [`MAX_PAGE`]): what a process's live-event tailer reads to fan events out to its
/// subscribers. Appends commit in `seq` order (see the module docs), so reading on from the last
/// `seq` seen never skips one.
pub async fn tail(db: &impl ConnectionTrait, after: i64, limit: u64) -> Result<Vec<Event>> {
    Ok(events::Entity::find()
        .filter(events::Column::Seq.gt(after))
        .order_by_asc(events::Column::Seq)
        .limit(limit.clamp(1, MAX_PAGE))
        .all(db)
        .await?
        .into_iter()
        .map(Event::from)
        .collect())
}

/// The newest sequence number of the whole log (0 when empty).
pub async fn latest_seq_all(db: &impl ConnectionTrait) -> Result<i64> {
    let max: Option<Option<i64>> = events::Entity::find()
        .select_only()
        .column_as(events::Column::Seq.max(), "max_seq")
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

/// May `actor` follow events of `event_type` live? New signals need `signals:read`, score and
/// tier changes `accounts:read` (any member); the log as a whole, like the `events` query, is
/// for ADMINs.
pub fn may_follow(actor: &Actor, event_type: &str) -> Result<()> {
    match event_type {
        "signal.created" => actor.require_scope("signals:read"),
        "score.changed" | "tier.changed" | "alert.triggered" => {
            actor.require_scope("accounts:read")
        }
        // Only the members it concerns get its notifications; its figures are no secret
        // within the organization.
        "organization.usage_warning" => actor.require_scope("organization:read"),
        // An import's progress: who may import may follow it (the subscription checks the
        // import's own rights).
        "import.progress" => actor.require_write(),
        _ => {
            actor.require_role(Role::Admin)?;
            actor.require_scope("admin")
        }
    }
}

/// The API-key scope that reads what an event of `event_type` carries (`admin` for `*` and
/// types it does not know): a webhook endpoint made by a key delivers only what the key could
/// read.
pub fn read_scope(event_type: &str) -> &'static str {
    let (noun, _) = event_type.split_once('.').unwrap_or((event_type, ""));
    match noun {
        "company" | "score" | "tier" | "anomaly" | "alert" => "accounts:read",
        "contact" => "contacts:read",
        "deal" => "deals:read",
        "activity" => "activities:read",
        "signal" | "package" => "signals:read",
        "webhook" => "webhooks:manage",
        _ => "admin",
    }
}

/// The newest sequence number of the organization's log (0 when empty).
pub async fn latest_seq(db: &impl ConnectionTrait, organization_id: Uuid) -> Result<i64> {
    let max: Option<Option<i64>> = events::Entity::find()
        .select_only()
        .column_as(events::Column::Seq.max(), "max_seq")
        .filter(events::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

/// The user or API key an event names as its actor; the system (jobs, integrations) names none.
fn actor_columns(actor: Option<&Actor>) -> (Option<Uuid>, Option<Uuid>) {
    match actor.map(|a| &a.principal) {
        Some(crate::Principal::User { user_id, .. }) => (Some(*user_id), None),
        Some(crate::Principal::ApiKey { key_id, .. }) => (None, Some(*key_id)),
        Some(crate::Principal::Integration { .. }) | None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use sea_orm::TransactionTrait;
    use serde_json::json;

    async fn setup() -> (tempfile::TempDir, sea_orm::DatabaseConnection, Uuid, Uuid) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ev.db", dir.path().display());
        let conn = db::connect(&url, &Default::default()).await.unwrap();
        db::migrate_up(&conn).await.unwrap();
        let mut orgs = Vec::new();
        for name in ["a", "b"] {
            let id = Uuid::now_v7();
            entity::organizations::ActiveModel {
                id: Set(id),
                name: Set(name.into()),
                is_demo: Set(false),
                created_at: Set(Utc::now()),
                updated_at: Set(Utc::now()),
            }
            .insert(&conn)
            .await
            .unwrap();
            orgs.push(id);
        }
        (dir, conn, orgs[0], orgs[1])
    }

    #[tokio::test]
    async fn events_commit_and_roll_back_with_their_transaction() {
        let (_dir, conn, org, _) = setup().await;
        let txn = conn.begin().await.unwrap();
        append(&txn, org, None, "company.created", json!({"n": 1}))
            .await
            .unwrap();
        txn.rollback().await.unwrap();
        let q = EventQuery {
            limit: 10,
            ..Default::default()
        };
        assert!(read(&conn, org, &q).await.unwrap().is_empty());

        let txn = conn.begin().await.unwrap();
        let a = append(&txn, org, None, "company.created", json!({"n": 2}))
            .await
            .unwrap();
        let b = append(&txn, org, None, "company.updated", json!({"n": 3}))
            .await
            .unwrap();
        txn.commit().await.unwrap();
        assert!(b.seq > a.seq);
        let all = read(&conn, org, &q).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(latest_seq(&conn, org).await.unwrap(), b.seq);
        let after = read(
            &conn,
            org,
            &EventQuery {
                after: Some(a.seq),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].payload, json!({"n": 3}));
    }

    #[tokio::test]
    async fn each_organization_reads_only_its_own_log() {
        let (_dir, conn, org_a, org_b) = setup().await;
        let txn = conn.begin().await.unwrap();
        append(&txn, org_a, None, "contact.created", json!({}))
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let q = EventQuery {
            limit: 10,
            ..Default::default()
        };
        assert_eq!(read(&conn, org_a, &q).await.unwrap().len(), 1);
        assert!(read(&conn, org_b, &q).await.unwrap().is_empty());
        assert_eq!(latest_seq(&conn, org_b).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn unknown_types_are_refused() {
        let (_dir, conn, org, _) = setup().await;
        let txn = conn.begin().await.unwrap();
        assert!(
            append(&txn, org, None, "nope.done", json!({}))
                .await
                .is_err()
        );
        let err = validate_types("types", &["contact.created".into(), "x".into()]).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
    }
}
