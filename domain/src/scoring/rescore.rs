//! Rescoring: the debounced request from ingest and merges, the job that serves it, and the
//! model applied to a chunk of accounts (the whole-organization recomputes are in `recompute`).

use chrono::{DateTime, Utc};
use entity::{account_scores, companies, rescore_requests};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::{DEBOUNCE, compute, current_config, load_chunk, stored_scores, trend};
use crate::Result;
use crate::events::{EventType, Payload, ScoreChanged};
use crate::queue::{self};

/// Accounts rescored per transaction.
pub(super) const CHUNK: usize = 500;
/// Chunks one job rescores before it hands the rest to a new job (so one busy organization does
/// not hold a worker slot for ever).
pub(super) const CHUNKS_PER_JOB: usize = 20;
/// The columns a rescore writes besides the key `(account_id, organization_id)`: inserted and,
/// on conflict, updated.
const SCORE_UPDATE_COLUMNS: [account_scores::Column; 9] = [
    account_scores::Column::Score,
    account_scores::Column::Tier,
    account_scores::Column::Trend,
    account_scores::Column::Factors,
    account_scores::Column::SignalCount,
    account_scores::Column::UserCount,
    account_scores::Column::LastSignalAt,
    account_scores::Column::ConfigVersion,
    account_scores::Column::ComputedAt,
];

/// Asks for `account_ids` to be rescored soon, in the caller's transaction: appends a request
/// per account and enqueues the organization's debounced `compute-score` job. While that job
/// waits, further requests join it (the queue's dedupe key), so a burst of signals is scored a
/// few times, not once per signal. On PostgreSQL the requests and the job are one statement for
/// up to [`crate::db::rows_per_insert`] accounts.
pub async fn request_rescore(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
) -> Result<()> {
    let mut carried = crate::db::Carried::new(db);
    request_rescore_carried(db, organization_id, account_ids, &mut carried).await?;
    carried.send(db).await?;
    Ok(())
}

/// [`request_rescore`] with its inserts in `carried`, sent with the caller's other writes.
pub async fn request_rescore_carried(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_ids: &[Uuid],
    carried: &mut crate::db::Carried,
) -> Result<()> {
    if account_ids.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    for chunk in account_ids.chunks(crate::db::rows_per_insert::<rescore_requests::Entity>()) {
        let insert = rescore_requests::Entity::insert_many(chunk.iter().map(|a| {
            rescore_requests::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(organization_id),
                account_id: Set(*a),
                requested_at: Set(now),
            }
        }))
        .into_query();
        carried
            .push::<rescore_requests::Entity>(db, insert, chunk.len(), None)
            .await?;
    }
    let job = queue::Added::of(rescore_job(organization_id, now + DEBOUNCE));
    let insert = job.statement.clone();
    carried
        .push::<entity::jobs::Entity>(
            db,
            insert,
            1,
            Some(Box::new(move |inserted| {
                job.noted(inserted);
            })),
        )
        .await?;
    Ok(())
}

/// The organization's debounced `compute-score` job, due at `run_at`.
fn rescore_job(organization_id: Uuid, run_at: DateTime<Utc>) -> queue::NewJob {
    queue::defs::COMPUTE_SCORE
        .job(json!({ "organizationId": organization_id }))
        .organization(organization_id)
        .dedupe(format!("score:{organization_id}"))
        .run_at(run_at)
}

pub(super) async fn enqueue_job(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    run_at: DateTime<Utc>,
) -> Result<()> {
    queue::enqueue(db, rescore_job(organization_id, run_at)).await?;
    Ok(())
}

/// Rescores every account of the organization whose rescore was requested (the
/// `compute-score` job), up to [`CHUNK`] requests per transaction: the scores and the deletion
/// of exactly the requests read commit together, so a crash leaves them to the next attempt and
/// a request made meanwhile stays for the next job. Returns how many accounts were scored.
#[tracing::instrument(name = "scoring.rescore_requested", skip_all, fields(organizationId = %organization_id))]
pub async fn rescore_requested(db: &DatabaseConnection, organization_id: Uuid) -> Result<usize> {
    let mut scored = 0;
    for _ in 0..CHUNKS_PER_JOB {
        let txn = crate::db::begin(db).await?;
        // One rescore of an organization at a time (a second job waits for the first chunk and
        // then reads only what is left).
        crate::db::advisory_xact_lock(&txn, &[crate::db::lock_key(organization_id, "rescore")])
            .await?;
        let requests: Vec<(Uuid, Uuid)> = rescore_requests::Entity::find()
            .select_only()
            .column(rescore_requests::Column::Id)
            .column(rescore_requests::Column::AccountId)
            .filter(rescore_requests::Column::OrganizationId.eq(organization_id))
            .order_by_asc(rescore_requests::Column::Id)
            .limit(CHUNK as u64)
            .into_tuple()
            .all(&txn)
            .await?;
        if requests.is_empty() {
            txn.commit().await?;
            return Ok(scored);
        }
        let mut accounts: Vec<Uuid> = requests.iter().map(|(_, a)| *a).collect();
        accounts.sort();
        accounts.dedup();
        scored += rescore_in(&txn, organization_id, &accounts).await?;
        rescore_requests::Entity::delete_many()
            .filter(rescore_requests::Column::Id.is_in(requests.into_iter().map(|(id, _)| id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    // More is waiting: a fresh job takes it (behind other organizations' jobs).
    enqueue_job(db, organization_id, Utc::now()).await?;
    Ok(scored)
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// Recomputes and stores the scores of `account_ids` ([`CHUNK`] per transaction), appending
/// `score.changed` when a score changes (or is first computed) and `tier.changed` when the tier
/// does or is first given (old tier null: an account born HOT alerts). Accounts that no longer
/// exist are skipped. Returns how many accounts were scored.
#[tracing::instrument(name = "scoring.rescore", skip_all, fields(organizationId = %organization_id, accounts = account_ids.len()))]
pub async fn rescore(
    db: &DatabaseConnection,
    organization_id: Uuid,
    account_ids: &[Uuid],
) -> Result<usize> {
    let mut scored = 0;
    for chunk in account_ids.chunks(CHUNK) {
        let txn = crate::db::begin(db).await?;
        scored += rescore_in(&txn, organization_id, chunk).await?;
        txn.commit().await?;
    }
    Ok(scored)
}

/// [`rescore`] of one chunk inside `txn`, in a fixed number of statements: the configuration,
/// the inputs in three reads (a fourth only for accounts without a signal in the window), the
/// stored scores and the trends' baselines in one read each, the scores in one upsert, the
/// accounts' copies of the scores that changed in one update, the events in one append.
pub(super) async fn rescore_in(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    chunk: &[Uuid],
) -> Result<usize> {
    let now = Utc::now();
    let backend = crate::db::Backend::of(txn);
    let (version, config) = current_config(txn, organization_id).await?;
    let inputs = load_chunk(txn, organization_id, chunk, now).await?;
    let old = stored_scores(txn, organization_id, chunk).await?;
    let baselines = super::trend_baselines(txn, organization_id, chunk, now).await?;
    let mut events = Vec::new();
    let mut stored = Vec::with_capacity(inputs.len());
    let mut copies: Vec<Uuid> = Vec::new();
    for id in chunk {
        let Some((account, input)) = inputs.get(id) else {
            continue;
        };
        let c = compute(&config, input, now);
        let prev = old.get(id);
        let prev_score = prev.map(|(score, _)| *score);
        // Against the score of a week ago when history has it, else the previous score.
        let trend = trend(baselines.get(id).copied().or(prev_score), c.score);
        if account.score != Some(c.score) {
            copies.push(*id);
        }
        let score_changed = prev_score != Some(c.score);
        let tier_changed = prev.is_none_or(|(_, tier)| tier != c.tier);
        if score_changed || tier_changed {
            let payload = ScoreChanged {
                account_id: *id,
                account_name: account.name.clone(),
                old_score: prev_score,
                new_score: c.score,
                old_tier: prev.map(|(_, tier)| tier.clone()),
                new_tier: c.tier.to_owned(),
                delta: c.score - prev_score.unwrap_or(0),
                trend: trend.to_owned(),
                computed_at: now,
            }
            .to_value();
            if score_changed && tier_changed {
                events.push((EventType::ScoreChanged.as_str(), payload.clone()));
                events.push((EventType::TierChanged.as_str(), payload));
            } else if score_changed {
                events.push((EventType::ScoreChanged.as_str(), payload));
            } else {
                events.push((EventType::TierChanged.as_str(), payload));
            }
        }
        stored.push([
            (*id).into(),
            organization_id.into(),
            c.score.into(),
            c.tier.into(),
            trend.into(),
            crate::db::json_param(backend, &c.factors),
            c.signal_count.into(),
            c.user_count.into(),
            c.last_signal_at.into(),
            version.into(),
            now.into(),
        ]);
    }
    let scored = stored.len();
    if scored == 0 {
        return Ok(0);
    }
    // Built with sea-query rather than from active models so the factors go as text
    // (`db::json_param`).
    let mut upsert = Query::insert();
    upsert.into_table(account_scores::Entity).columns(
        [
            account_scores::Column::AccountId,
            account_scores::Column::OrganizationId,
        ]
        .into_iter()
        .chain(SCORE_UPDATE_COLUMNS),
    );
    for row in stored {
        upsert.values_panic(row);
    }
    upsert.on_conflict(
        OnConflict::columns([
            account_scores::Column::AccountId,
            account_scores::Column::OrganizationId,
        ])
        .update_columns(SCORE_UPDATE_COLUMNS)
        .to_owned(),
    );
    txn.execute(&upsert).await?;
    if !copies.is_empty() {
        // One statement whose text depends only on how many changed: the scores just stored are
        // copied onto their accounts (UPDATE … FROM, on both backends).
        let update = Query::update()
            .table(companies::Entity)
            .value(
                companies::Column::Score,
                Expr::col((account_scores::Entity, account_scores::Column::Score)),
            )
            .from(account_scores::Entity)
            .and_where(
                Expr::col((account_scores::Entity, account_scores::Column::AccountId))
                    .equals((companies::Entity, companies::Column::Id)),
            )
            .and_where(
                Expr::col((companies::Entity, companies::Column::OrganizationId))
                    .eq(organization_id),
            )
            .and_where(Expr::col((companies::Entity, companies::Column::Id)).is_in(copies))
            .to_owned();
        txn.execute(&update).await?;
    }
    crate::events::append_many(txn, organization_id, None, events).await?;
    Ok(scored)
}
