//! Accepted-for-later ingest: a sender that does not need the resolved contact and account in
//! the answer (`Prefer: respond-async` on the REST ingest routes) gets its signals checked and
//! stored durably in one statement, and the worker ingests them in batches.
//!
//! - [`accept`] checks every item as the ingest will, without reading anything (ids need only be
//!   well-formed: [`crate::signals::check_inputs`]); a bad item refuses the whole request with
//!   its field errors, so nothing is half-accepted. The accepted request is one row of
//!   `signal_intake`, committed before the answer: acknowledged means stored.
//! - [`drain_once`] takes the oldest pending requests of one sender (organization, principal,
//!   source) up to [`MAX_BATCH`] items, ingests them through the one ingest path
//!   ([`crate::signals::ingest_many`]'s steps, same events, same scoring), and replaces the rows
//!   by their processed form (results, no items), **in the ingest's transaction**: a crash before
//!   the commit leaves them pending, after it they are done, so each accepted signal is stored
//!   exactly once. On PostgreSQL concurrent drainers skip each other's rows (`SKIP LOCKED`).
//! - [`receipt`] shows a request's state and, once processed, each item's outcome, to its
//!   organization only.
//!
//! What is checked only at ingest, and so shows in the receipt instead of the answer: that named
//! sources, contacts and accounts exist (and the source is not paused), the month's signal limit,
//! erased people. The key's rights are those it had when the request was accepted.

use chrono::{DateTime, Utc};
use entity::signal_intake;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ingest::{Ingested, Input, MAX_BATCH, check_inputs, ingest_in, retryable, write_rights};
use crate::actor::{Principal, Role};
use crate::{Actor, Error, FieldError, Result};

/// Request states.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const PROCESSED: &str = "processed";
}

/// Processed requests are kept this long for their receipts.
pub const KEEP_PROCESSED_DAYS: i64 = 7;

/// An accepted request.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The receipt's id.
    pub id: Uuid,
    pub items: usize,
    pub received_at: DateTime<Utc>,
}

/// Checks `inputs` (1 to [`MAX_BATCH`]; MEMBER+, key scope `signals:write`) and stores them for
/// the worker to ingest from the built-in source `source` (unless an item names another).
/// `prefix` names fields as the synchronous ingest does (`""` for one signal, `"signals"` for a
/// batch).
pub async fn accept(
    db: &impl ConnectionTrait,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    source: &str,
) -> Result<Accepted> {
    write_rights(actor)?;
    if inputs.is_empty() || inputs.len() > MAX_BATCH {
        return Err(Error::invalid(
            if prefix.is_empty() { "input" } else { prefix },
            format!("must hold 1 to {MAX_BATCH} signals"),
        ));
    }
    let errors = check_inputs(&inputs, prefix);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    if inputs
        .iter()
        .any(|i| i.actor.as_ref().is_some_and(|a| !a.source_ids.is_empty()))
    {
        return Err(Error::Internal(
            "a connector's source ids cannot wait for later ingest".into(),
        ));
    }
    let (principal, scopes) = principal_of(actor);
    let id = Uuid::now_v7();
    let now = Utc::now();
    let count = inputs.len();
    signal_intake::Entity::insert(signal_intake::ActiveModel {
        organization_id: Set(actor.organization_id),
        id: Set(id),
        source: Set(source.to_owned()),
        principal: Set(principal),
        role: Set(actor.role.as_str().to_owned()),
        scopes: Set(json!(scopes)),
        items: Set(json!({"prefix": prefix, "signals": inputs})),
        item_count: Set(i32::try_from(count).unwrap_or(i32::MAX)),
        state: Set(state::PENDING.to_owned()),
        results: Set(None),
        received_at: Set(now),
        processed_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(Accepted {
        id,
        items: count,
        received_at: now,
    })
}

/// How a request's sender is stored, and the key's scopes.
fn principal_of(actor: &Actor) -> (String, Vec<String>) {
    match &actor.principal {
        Principal::ApiKey { key_id, scopes } => (format!("key:{key_id}"), scopes.clone()),
        Principal::User {
            user_id,
            session_id,
        } => (format!("user:{user_id}:{session_id}"), Vec::new()),
        Principal::Integration { integration_id } => {
            (format!("integration:{integration_id}"), Vec::new())
        }
    }
}

/// The actor a request was accepted from.
fn actor_of(row: &signal_intake::Model) -> Result<Actor> {
    let bad = || Error::Internal(format!("signal intake {} has a bad sender", row.id));
    let id = |s: &str| Uuid::parse_str(s).map_err(|_| bad());
    let parts: Vec<&str> = row.principal.split(':').collect();
    let principal = match parts.as_slice() {
        ["key", key] => Principal::ApiKey {
            key_id: id(key)?,
            scopes: serde_json::from_value(row.scopes.clone()).map_err(|_| bad())?,
        },
        ["user", user, session] => Principal::User {
            user_id: id(user)?,
            session_id: id(session)?,
        },
        ["integration", i] => Principal::Integration {
            integration_id: id(i)?,
        },
        _ => return Err(bad()),
    };
    Ok(Actor {
        organization_id: row.organization_id,
        role: Role::parse(&row.role).ok_or_else(bad)?,
        principal,
    })
}

/// What one [`drain_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub requests: usize,
    pub items: usize,
    /// Items stored as new signals (or profile updates applied).
    pub created: usize,
    /// Items that repeated a stored signal.
    pub deduplicated: usize,
    /// Items refused at ingest (their receipt says why) or dropped (an erased person).
    pub rejected: usize,
}

/// Ingests the oldest pending requests of one sender, up to [`MAX_BATCH`] items (at least one
/// request), and marks them processed in the same transaction. `None` when nothing is pending
/// (or every pending request is held by another drainer).
#[tracing::instrument(name = "signals.drain", skip_all)]
pub async fn drain_once(db: &DatabaseConnection) -> Result<Option<Drained>> {
    // A look before the write transaction: an idle drainer, polling, must not take SQLite's one
    // write lock (a CLI command beside the server would queue behind it), nor open a
    // transaction on PostgreSQL, just to find nothing.
    let any = signal_intake::Entity::find()
        .select_only()
        .column(signal_intake::Column::Id)
        .filter(signal_intake::Column::State.eq(state::PENDING))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if any.is_none() {
        return Ok(None);
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match drain_attempt(db).await {
            Err(Error::Database(e)) if attempt < 3 && retryable(&e) => {
                tracing::debug!(error = %e, attempt, "draining lost a race; retrying");
            }
            other => return other,
        }
    }
}

async fn drain_attempt(db: &DatabaseConnection) -> Result<Option<Drained>> {
    let txn = crate::db::begin(db).await?;
    let skip_locked = txn.get_database_backend() == DbBackend::Postgres;
    let lock = |q: sea_orm::Select<signal_intake::Entity>| {
        if skip_locked {
            q.lock_with_behavior(
                sea_orm::sea_query::LockType::Update,
                sea_orm::sea_query::LockBehavior::SkipLocked,
            )
        } else {
            q
        }
    };
    let pending = || {
        signal_intake::Entity::find()
            .filter(signal_intake::Column::State.eq(state::PENDING))
            .order_by_asc(signal_intake::Column::Id)
    };
    let Some(head) = lock(pending().limit(1)).one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let mut rows = vec![head.clone()];
    let mut items = usize::try_from(head.item_count).unwrap_or(MAX_BATCH);
    if items < MAX_BATCH {
        let more = lock(
            pending()
                .filter(signal_intake::Column::OrganizationId.eq(head.organization_id))
                .filter(signal_intake::Column::Principal.eq(head.principal.as_str()))
                .filter(signal_intake::Column::Source.eq(head.source.as_str()))
                .filter(signal_intake::Column::Id.gt(head.id))
                .limit(u64::try_from(MAX_BATCH - items).unwrap_or(1)),
        )
        .all(&txn)
        .await?;
        for row in more {
            let n = usize::try_from(row.item_count).unwrap_or(MAX_BATCH);
            if items + n > MAX_BATCH {
                break;
            }
            items += n;
            rows.push(row);
        }
    }
    // Each request's items, and where they start in the combined batch. A request that cannot
    // be read back (it never should) fails alone, with the reason as each item's outcome.
    let mut inputs: Vec<Input> = Vec::with_capacity(items);
    let mut spans = Vec::with_capacity(rows.len());
    let mut broken: Vec<Option<Value>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let (prefix, signals) = match stored_items(row) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "a signal intake request is unreadable");
                spans.push((inputs.len(), row_items(row), String::new()));
                broken.push(Some(e.body()));
                continue;
            }
        };
        spans.push((inputs.len(), signals.len(), prefix));
        broken.push(None);
        inputs.extend(signals);
    }
    // A failure of the whole batch before anything is written (the sender cannot be read back,
    // or has no rights) is every item's outcome.
    let actor = actor_of(&head).and_then(|a| write_rights(&a).map(|()| a));
    let actor = match actor {
        Ok(a) if !inputs.is_empty() => a,
        Ok(_) => return finish(txn, &rows, &spans, Vec::new(), &broken).await,
        Err(e) => {
            let all = vec![Some(e.body()); rows.len()];
            return finish(txn, &rows, &spans, Vec::new(), &all).await;
        }
    };
    match ingest_in(&txn, &actor, inputs, BATCH, &head.source).await {
        Ok(written) => finish(txn, &rows, &spans, written.finish(), &broken).await,
        // The database's own failures are retried (here or at the next drain).
        Err(e @ Error::Database(_)) => Err(e),
        // Anything else will fail again: undo what the batch wrote and record the failure as
        // each item's outcome, so one bad request never holds up the ones behind it.
        Err(e) => {
            txn.rollback().await?;
            tracing::warn!(error = %e, requests = rows.len(), "a signal intake batch failed");
            let txn = crate::db::begin(db).await?;
            let all = vec![Some(e.body()); rows.len()];
            finish(txn, &rows, &spans, Vec::new(), &all).await
        }
    }
}

/// A request's field-name prefix and items, as [`accept`] stored them.
fn stored_items(row: &signal_intake::Model) -> Result<(String, Vec<Input>)> {
    let prefix = row
        .items
        .get("prefix")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let signals: Vec<Input> = row
        .items
        .get("signals")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::Internal(format!("signal intake {} is unreadable: {e}", row.id)))?
        .unwrap_or_default();
    if signals.len() != row_items(row) {
        return Err(Error::Internal(format!(
            "signal intake {} holds {} items, not {}",
            row.id,
            signals.len(),
            row.item_count
        )));
    }
    Ok((prefix, signals))
}

fn row_items(row: &signal_intake::Model) -> usize {
    usize::try_from(row.item_count).unwrap_or_default()
}

/// The prefix of the combined batch; each request's field names are given back their own.
const BATCH: &str = "signals";

/// Replaces `rows` by their processed form (items dropped, results kept) and commits.
async fn finish(
    txn: sea_orm::DatabaseTransaction,
    rows: &[signal_intake::Model],
    spans: &[(usize, usize, String)],
    results: Vec<Result<Ingested>>,
    failed: &[Option<Value>],
) -> Result<Option<Drained>> {
    let mut results: Vec<Option<Result<Ingested>>> = results.into_iter().map(Some).collect();
    let now = Utc::now();
    let mut processed = Vec::with_capacity(rows.len());
    let (mut created, mut deduplicated, mut rejected) = (0, 0, 0);
    for ((row, (start, len, prefix)), whole) in rows.iter().zip(spans).zip(failed) {
        let mut out = Vec::with_capacity(*len);
        for k in 0..*len {
            let r = results
                .get_mut(start + k)
                .and_then(Option::take)
                .unwrap_or_else(|| Err(Error::Internal("missing result".into())));
            out.push(match (whole, r) {
                (Some(body), _) => {
                    rejected += 1;
                    json!({"index": k, "success": false, "error": body})
                }
                (None, Ok(i)) => {
                    match (i.dropped, i.deduplicated) {
                        (Some(_), _) => rejected += 1,
                        (None, true) => deduplicated += 1,
                        (None, false) => created += 1,
                    }
                    json!({
                    "index": k,
                    "success": true,
                    "deduplicated": i.deduplicated,
                    "dropped": i.dropped,
                    "signalId": i.signal.as_ref().map(|s| s.id),
                    "contactId": i.contact_id,
                    "accountId": i.account_id,
                    })
                }
                (None, Err(e)) => {
                    rejected += 1;
                    let e = renumber(e, &format!("{BATCH}.{}.", start + k), prefix, k);
                    json!({"index": k, "success": false, "error": e.body()})
                }
            });
        }
        processed.push(signal_intake::ActiveModel {
            organization_id: Set(row.organization_id),
            id: Set(row.id),
            source: Set(row.source.clone()),
            principal: Set(row.principal.clone()),
            role: Set(row.role.clone()),
            scopes: Set(row.scopes.clone()),
            items: Set(json!({})),
            item_count: Set(row.item_count),
            state: Set(state::PROCESSED.to_owned()),
            results: Set(Some(Value::Array(out))),
            received_at: Set(row.received_at),
            processed_at: Set(Some(now)),
        });
    }
    let org = rows.first().map(|r| r.organization_id).unwrap_or_default();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let deleted = signal_intake::Entity::delete_many()
        .filter(signal_intake::Column::OrganizationId.eq(org))
        .filter(signal_intake::Column::Id.is_in(ids))
        .filter(signal_intake::Column::State.eq(state::PENDING))
        .exec(&txn)
        .await?
        .rows_affected;
    if deleted != rows.len() as u64 {
        // Another drainer took some of them after all (it cannot, with the rows locked or the
        // database serialised; if it ever did, this batch must not be stored twice).
        return Err(Error::Internal(
            "signal intake rows were taken by another drainer".into(),
        ));
    }
    let items = spans.iter().map(|s| s.1).sum();
    signal_intake::Entity::insert_many(processed)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(Drained {
        requests: rows.len(),
        items,
        created,
        deduplicated,
        rejected,
    }))
}

/// Field names of the combined batch (`signals.<start + k>.…`) as the request named them.
fn renumber(e: Error, combined: &str, prefix: &str, k: usize) -> Error {
    let own = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}.{k}.")
    };
    match e {
        Error::Validation(fields) => Error::Validation(
            fields
                .into_iter()
                .map(|f| match f.field.strip_prefix(combined) {
                    Some(rest) => FieldError::new(format!("{own}{rest}"), f.message),
                    None => f,
                })
                .collect(),
        ),
        other => other,
    }
}

/// A request's receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: Uuid,
    /// [`state::PENDING`] or [`state::PROCESSED`].
    pub state: String,
    pub items: usize,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// Per item once processed: `{index, success, deduplicated, dropped, signalId, contactId,
    /// accountId}` or `{index, success: false, error: {code, message, fields}}`.
    pub results: Option<Value>,
}

/// The receipt of request `id` of the actor's organization (key scope `signals:write` or
/// `signals:read`).
pub async fn receipt(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<Receipt> {
    if !actor.may("signals:write") {
        actor.require_scope("signals:read")?;
    }
    let row = signal_intake::Entity::find()
        .filter(signal_intake::Column::OrganizationId.eq(actor.organization_id))
        .filter(signal_intake::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Receipt" })?;
    Ok(Receipt {
        id: row.id,
        state: row.state,
        items: usize::try_from(row.item_count).unwrap_or_default(),
        received_at: row.received_at,
        processed_at: row.processed_at,
        results: row.results,
    })
}

/// Requests waiting to be ingested, and the oldest one's arrival (operators' backlog).
pub async fn backlog(db: &impl ConnectionTrait) -> Result<(u64, Option<DateTime<Utc>>)> {
    use sea_orm::PaginatorTrait;
    let count = signal_intake::Entity::find()
        .filter(signal_intake::Column::State.eq(state::PENDING))
        .count(db)
        .await?;
    let oldest = signal_intake::Entity::find()
        .select_only()
        .column(signal_intake::Column::ReceivedAt)
        .filter(signal_intake::Column::State.eq(state::PENDING))
        .order_by_asc(signal_intake::Column::Id)
        .limit(1)
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await?;
    Ok((count, oldest))
}

/// Deletes processed requests older than [`KEEP_PROCESSED_DAYS`]; returns how many.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    Ok(signal_intake::Entity::delete_many()
        .filter(signal_intake::Column::State.eq(state::PROCESSED))
        .filter(
            signal_intake::Column::ProcessedAt
                .lt(now - chrono::Duration::days(KEEP_PROCESSED_DAYS)),
        )
        .exec(db)
        .await?
        .rows_affected)
}
