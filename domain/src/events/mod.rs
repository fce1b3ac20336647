//! The event log: the spine of the system. Every state change outsiders may care about appends an
//! event in the **same transaction** as the change, so a rolled-back change leaves no event and a
//! committed one always has its event. Subscriptions, webhooks, workflows and alerts read this
//! log and nothing else, resuming from the position (`seq` in the API) they last saw.
//!
//! Ordering: a consumer that has read up to position *p* must never later find an event below
//! *p*. Numbers handed out while a transaction runs cannot promise that on PostgreSQL (two
//! transactions may commit in the opposite order of their numbers), and holding one lock from the
//! append to the commit serialised every writer. So an event gets its **position after its
//! transaction has committed**: [`sequence`] numbers the committed rows that have none yet, one
//! sequencer at a time behind a short advisory lock, so positions are handed out in the order
//! they become visible. Appenders take no lock at all; readers call [`sequence`] first (it costs
//! one indexed probe when nothing waits), which also keeps read-your-writes: an event committed
//! before a read began has its position by the time that read runs. On SQLite writers are serial,
//! so [`append`] positions its rows inside the writing transaction: the insert numbers them from
//! the one-row head, and one more statement moves the head past them.

use chrono::{DateTime, Utc};
use entity::{event_head, events};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;
use uuid::Uuid;

use crate::db::Backend;
use crate::{Actor, Error, Result, Role};

mod payloads;
mod types;

pub use payloads::{AnomalyDetected, Payload, ScoreChanged, SignalCreated};
pub use types::{EventType, TYPES};

/// A key no other DevSignal lock uses: one [`sequence`] at a time on PostgreSQL.
const SEQUENCER_LOCK_KEY: i64 = 0x6465_7673_6967_6e02;

/// At most this many events are positioned per sequencing statement.
const SEQUENCE_BATCH: u64 = 10_000;

/// The id of `event_head`'s one row.
const HEAD: i32 = 1;

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

impl Event {
    /// The event a stored row is, once it has a position (none before: consumers never see it).
    fn positioned(m: events::Model) -> Option<Event> {
        Some(Event {
            seq: m.position?,
            id: m.id,
            organization_id: m.organization_id,
            event_type: m.event_type,
            payload: m.payload,
            actor_user_id: m.actor_user_id,
            actor_api_key_id: m.actor_api_key_id,
            occurred_at: m.occurred_at,
        })
    }
}

/// Appends one event to `organization_id`'s log inside `txn` and returns its id; it gets its
/// position once `txn` has committed (see the module docs). `actor` (when a person or key caused
/// the change) is recorded for attribution. An unknown type is refused.
pub async fn append(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    actor: Option<&Actor>,
    event_type: &str,
    payload: Value,
) -> Result<Uuid> {
    let ids = append_many(txn, organization_id, actor, vec![(event_type, payload)]).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| Error::Internal("an appended event has no id".into()))
}

/// Appends several events of one organization inside `txn`, in order, with one multi-row insert
/// per 500 events (for batch writes such as signal ingest); returns their ids in that order.
pub async fn append_many(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    actor: Option<&Actor>,
    items: Vec<(&str, Value)>,
) -> Result<Vec<Uuid>> {
    let mut carried = crate::db::Carried::new(txn);
    let ids = append_carried(txn, organization_id, actor, items, &mut carried).await?;
    carried.send(txn).await?;
    Ok(ids)
}

/// [`append_many`] with the inserts in `carried`: on PostgreSQL they go with the caller's other
/// writes when it sends them (in the same transaction, so the events are in the log from that
/// commit on, like the rest).
pub async fn append_carried(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    actor: Option<&Actor>,
    items: Vec<(&str, Value)>,
    carried: &mut crate::db::Carried,
) -> Result<Vec<Uuid>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    if let Some((bad, _)) = items.iter().find(|(t, _)| EventType::parse(t).is_none()) {
        return Err(Error::Internal(format!("unknown event type {bad}")));
    }
    let (actor_user_id, actor_api_key_id) = actor_columns(actor);
    let now = Utc::now();
    let backend = Backend::of(txn);
    let mut ids = Vec::with_capacity(items.len());
    // Built with sea-query rather than from active models so each payload goes as text
    // (`db::json_param`); `seq` and `position` take their defaults.
    let per_insert = crate::db::rows_per_insert::<events::Entity>();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let mut insert = sea_orm::sea_query::Query::insert();
        insert.into_table(events::Entity).columns([
            events::Column::Id,
            events::Column::OrganizationId,
            events::Column::EventType,
            events::Column::Payload,
            events::Column::ActorUserId,
            events::Column::ActorApiKeyId,
            events::Column::OccurredAt,
        ]);
        let mut rows = 0;
        for (t, payload) in items.by_ref().take(per_insert) {
            let id = Uuid::now_v7();
            ids.push(id);
            rows += 1;
            insert.values_panic([
                id.into(),
                organization_id.into(),
                t.into(),
                crate::db::json_param(backend, &payload),
                actor_user_id.into(),
                actor_api_key_id.into(),
                now.into(),
            ]);
        }
        carried
            .push::<events::Entity>(txn, insert, rows, None)
            .await?;
    }
    if backend != Backend::Postgres {
        // Serial writers: this transaction's rows (written as they were carried) are the next
        // to become visible.
        position_pending(txn).await?;
    }
    Ok(ids)
}

/// Gives the committed events that have no position yet the next positions, in insertion
/// order, and returns how many it positioned. Readers call it before reading (it is one indexed
/// probe when nothing waits); on PostgreSQL one sequencer runs at a time, each in a short
/// transaction of its own, so positions are handed out in the order events become visible and a
/// reader resuming after the last position it saw misses nothing. A no-op on SQLite, where
/// [`append`] positions events as it writes them.
pub async fn sequence(db: &DatabaseConnection) -> Result<u64> {
    if Backend::of(db) != Backend::Postgres {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        // In `seq` order, so PostgreSQL walks the pending index (an ordered index scan) rather
        // than gathering it into a bitmap: positioning an event leaves its entry in the
        // partial index, dead, until a vacuum; an index scan marks the dead entries it passes
        // so the next probe skips them, while a bitmap scan (the plan chosen without the
        // order) visits every one of them in the heap on every probe. Measured after 10,000
        // single-signal requests, before autovacuum came: 641 heap pages and 1.5 ms per probe
        // unordered, 43 buffers and 0.3 ms ordered once the first ordered walk had marked them.
        let waiting = events::Entity::find()
            .select_only()
            .column(events::Column::Seq)
            .filter(events::Column::Position.is_null())
            .order_by_asc(events::Column::Seq)
            .limit(1)
            .into_tuple::<i64>()
            .one(db)
            .await?;
        if waiting.is_none() {
            return Ok(total);
        }
        let txn = crate::db::begin(db).await?;
        crate::db::advisory_xact_lock(&txn, &[SEQUENCER_LOCK_KEY]).await?;
        let n = position_pending(&txn).await?;
        txn.commit().await?;
        total += n;
        if n < SEQUENCE_BATCH {
            return Ok(total);
        }
    }
}

/// Positions up to [`SEQUENCE_BATCH`] of the events without a position that `db` sees, after
/// the log's head (the highest position handed out so far, `event_head`), in insertion order,
/// and moves the head past them. Callers make sure no one else does this at the same time (the
/// sequencer lock, or SQLite's single writer). The head only grows: positions of deleted events
/// are never handed out again, so a consumer already past them misses nothing. The join names
/// `occurred_at` too, so on PostgreSQL each row is looked up in its own month's partition.
async fn position_pending(db: &impl ConnectionTrait) -> Result<u64> {
    use sea_orm::sea_query::{Expr, OnConflict, Query};
    let backend = db.get_database_backend();
    let sql = format!(
        "WITH base AS (SELECT COALESCE((SELECT top FROM event_head WHERE id = {HEAD}), 0) AS top), \
         todo AS (SELECT seq, occurred_at, ROW_NUMBER() OVER (ORDER BY seq) AS n FROM events \
                  WHERE position IS NULL ORDER BY seq LIMIT {SEQUENCE_BATCH}) \
         UPDATE events SET position = base.top + todo.n FROM base, todo \
         WHERE events.seq = todo.seq AND events.occurred_at = todo.occurred_at"
    );
    let done = db
        .execute_raw(Statement::from_string(backend, sql))
        .await?
        .rows_affected();
    if done > 0 {
        // The first positions a log hands out create the row (a new database has none).
        let moved = i64::try_from(done).unwrap_or(i64::MAX);
        let head = Query::insert()
            .into_table(event_head::Entity)
            .columns([event_head::Column::Id, event_head::Column::Top])
            .values_panic([HEAD.into(), moved.into()])
            .on_conflict(
                OnConflict::column(event_head::Column::Id)
                    .value(
                        event_head::Column::Top,
                        Expr::cust("event_head.top + excluded.top"),
                    )
                    .to_owned(),
            )
            .to_owned();
        db.execute(&head).await?;
    }
    Ok(done)
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

/// The organization's events in position order, for consumers (subscriptions, webhooks, jobs)
/// that already know which organization they serve. Call [`sequence`] first to include what
/// has just been committed.
pub async fn read(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    query: &EventQuery,
) -> Result<Vec<Event>> {
    let mut select = events::Entity::find()
        .filter(events::Column::OrganizationId.eq(organization_id))
        .filter(events::Column::Position.gt(query.after.unwrap_or(0)))
        .order_by_asc(events::Column::Position)
        .limit(query.limit.clamp(1, MAX_PAGE));
    if !query.types.is_empty() {
        select = select.filter(events::Column::EventType.is_in(query.types.clone()));
    }
    Ok(select
        .all(db)
        .await?
        .into_iter()
        .filter_map(Event::positioned)
        .collect())
}

/// The log as an ADMIN of the actor's organization sees it.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    query: &EventQuery,
) -> Result<Vec<Event>> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    validate_types("types", &query.types)?;
    sequence(db).await?;
    read(db, actor.organization_id, query).await
}

/// Every organization's events after position `after`, in position order, at most `limit`
/// (capped at [`MAX_PAGE`]), and the position they read through: what a process's live-event
/// tailer reads to fan events out to its subscribers, resuming from that position. Positions
/// are given in commit order (see the module docs), so reading on never skips one. Through is
/// the last event's position when the page is full; otherwise the head as it was before the
/// read, since every event up to it was positioned and visible by then, so positions left
/// without an event (deleted since) are passed over and an idle follower reads only the head.
/// Call [`sequence`] first.
pub async fn tail(db: &impl ConnectionTrait, after: i64, limit: u64) -> Result<(Vec<Event>, i64)> {
    let head = top_position(db).await?;
    if head <= after {
        return Ok((Vec::new(), after));
    }
    let limit = limit.clamp(1, MAX_PAGE);
    let batch: Vec<Event> = events::Entity::find()
        .filter(events::Column::Position.gt(after))
        .order_by_asc(events::Column::Position)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .filter_map(Event::positioned)
        .collect();
    let last = batch.last().map_or(after, |e| e.seq);
    let through = if batch.len() as u64 == limit {
        last
    } else {
        last.max(head)
    };
    Ok((batch, through))
}

/// The highest position of the whole log (0 when empty), once every committed event has one:
/// a consumer whose cursor has reached it has seen everything committed before the call.
pub async fn latest_seq_all(db: &DatabaseConnection) -> Result<i64> {
    sequence(db).await?;
    top_position(db).await
}

/// The highest position given so far (the log's head), without sequencing (inside a
/// transaction that runs after [`sequence`]).
pub async fn top_position(db: &impl ConnectionTrait) -> Result<i64> {
    let top: Option<i64> = event_head::Entity::find_by_id(HEAD)
        .select_only()
        .column(event_head::Column::Top)
        .into_tuple()
        .one(db)
        .await?;
    // No row: the log has never positioned an event.
    Ok(top.unwrap_or(0))
}

/// Where a consumer's cursor starts when it is first created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorStart {
    /// Before the first event: the consumer reads the whole log.
    Beginning,
    /// At the last positioned event: the consumer reads what follows (run [`sequence`] first).
    End,
}

/// Creates the consumer cursor `name` in `webhook_cursor` at `start` unless it exists.
pub async fn create_cursor(
    txn: &DatabaseTransaction,
    name: &str,
    start: CursorStart,
) -> Result<()> {
    let at = match start {
        CursorStart::Beginning => 0,
        CursorStart::End => top_position(txn).await?,
    };
    entity::webhook_cursor::Entity::insert(entity::webhook_cursor::ActiveModel {
        name: Set(name.to_owned()),
        last_seq: Set(at),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(entity::webhook_cursor::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Takes the write lock of the consumer cursor `name` (PostgreSQL row lock; SQLite write lock)
/// for `txn`, creating it at `start` the first time, and returns the position it has read up
/// to. Concurrent consumers of one cursor serialise here, so each event is consumed once.
pub async fn lock_cursor(txn: &DatabaseTransaction, name: &str, start: CursorStart) -> Result<i64> {
    use entity::webhook_cursor;
    use sea_orm::sea_query::Expr;
    let touch = || {
        webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(webhook_cursor::Column::Name.eq(name))
    };
    if touch().exec(txn).await?.rows_affected == 0 {
        create_cursor(txn, name, start).await?;
        touch().exec(txn).await?;
    }
    Ok(webhook_cursor::Entity::find_by_id(name.to_owned())
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("cursor {name} missing")))?
        .last_seq)
}

/// Moves the consumer cursor `name` to `to`, in `txn` (which holds its lock, [`lock_cursor`]).
pub async fn move_cursor(txn: &DatabaseTransaction, name: &str, to: i64) -> Result<()> {
    use entity::webhook_cursor;
    use sea_orm::sea_query::Expr;
    webhook_cursor::Entity::update_many()
        .col_expr(webhook_cursor::Column::LastSeq, Expr::value(to))
        .filter(webhook_cursor::Column::Name.eq(name))
        .exec(txn)
        .await?;
    Ok(())
}

/// For a consumer that read no event after its cursor `after` in `txn` (holding the cursor's
/// lock): moves the cursor to `head`, the head read before that read, when it lies further.
/// Every position up to `head` was handed out to an event committed (and visible) before the
/// read, so none found means those events were deleted (their organization went); passing
/// over them keeps the consumer's idle polls to one row ([`pending_after`]).
pub async fn pass_deleted(
    txn: &DatabaseTransaction,
    name: &str,
    after: i64,
    head: i64,
) -> Result<()> {
    if head > after {
        move_cursor(txn, name, head).await?;
    }
    Ok(())
}

/// Whether the consumer whose cursor row in `webhook_cursor` is `cursor` has events to read:
/// `None` when it has no cursor yet, else whether a positioned event lies past it. A lock-free
/// read, so an idle consumer polling the log takes no write lock (call [`sequence`] first); an
/// event committed just after it is found on the next poll.
pub async fn pending_after(db: &impl ConnectionTrait, cursor: &str) -> Result<Option<bool>> {
    let Some(last) = entity::webhook_cursor::Entity::find_by_id(cursor.to_owned())
        .one(db)
        .await?
        .map(|c| c.last_seq)
    else {
        return Ok(None);
    };
    // Every position up to the head has been handed out, and positions are handed out only
    // to committed events, so the head past the cursor means an event past it (unless that
    // event has since been deleted; the read after this finds nothing then).
    Ok(Some(top_position(db).await? > last))
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

/// The highest position of the organization's log (0 when empty), once every committed event
/// has one.
pub async fn latest_seq(db: &DatabaseConnection, organization_id: Uuid) -> Result<i64> {
    sequence(db).await?;
    let max: Option<Option<i64>> = events::Entity::find()
        .select_only()
        .column_as(events::Column::Position.max(), "max_seq")
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
    use sea_orm::{ActiveModelTrait, TransactionTrait};
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
        assert_eq!(
            sequence(&conn).await.unwrap(),
            0,
            "SQLite positions at append"
        );
        let all = read(&conn, org, &q).await.unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [a, b]);
        assert!(all[1].seq > all[0].seq);
        assert_eq!(latest_seq(&conn, org).await.unwrap(), all[1].seq);
        let after = read(
            &conn,
            org,
            &EventQuery {
                after: Some(all[0].seq),
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
