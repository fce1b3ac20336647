//! Signal ingest: every path — GraphQL, REST, Segment, connectors — calls
//! [`ingest_many`], which for a whole batch, in **one transaction**:
//!
//! 1. validates each item (field errors named `<prefix>.<index>.<field>`; a bad item fails alone);
//! 2. deduplicates: a signal with a sender's id (`idempotencyKey`; Segment's `messageId` and
//!    connectors' object keys arrive as one) is a repeat only of the signal with the same key
//!    (per organization), whatever its content or time; a signal without one is a repeat only
//!    of an earlier signal without one with the same content (source kind, actor, type,
//!    metadata hash) **and the same sender-given timestamp** — a retried delivery. Signals
//!    without a key or a timestamp are never deduplicated: they may be real repeats;
//! 3. resolves identity: finds the contact by email, GitHub, npm, Twitter/X or LinkedIn identity,
//!    creates it when unknown, finds or creates the account from an explicit domain, the email's
//!    company domain (never free mail) or the GitHub organization, and records identities;
//! 4. writes the signals, their `signal.created` events and one debounced "rescore this account"
//!    job per touched account;
//! 5. auto-merges: when a signal's hints name its contact and exactly one other
//!    contact (by email, GitHub, npm, Twitter/X or LinkedIn identity, or contact email) with
//!    confidence ≥ 0.8, the two are merged in the same transaction, after the batch's rows are
//!    written so they move too ([`crate::signals::merges`]). Detection reads only what the batch already
//!    loaded; pairs whose merge a person undid are never merged again.
//!
//! Statements are per batch, not per signal (bulk lookups, multi-row inserts, one event
//! append taken last), which keeps a batch of 1,000 to a few dozen statements. On PostgreSQL,
//! find-or-create is made race-free by claiming, in one statement, the identities, domains,
//! GitHub organizations and idempotency keys the batch did not find (what it may create): rows
//! of `ingest_claims`, inserted in sorted order so batches never deadlock each other. A batch
//! claiming what another one holds waits for it to end and then reads that part again; known
//! people take no claim, so concurrent batches about them never wait for each other. Row locks,
//! unlike advisory locks, take no slot of the shared lock table however large the batch.
//! SQLite's `BEGIN IMMEDIATE` serialises writers anyway. The unique indexes remain the last word: a batch that
//! loses a race with another writer (e.g. a CRM `createContact` with the same email) is retried.
//!
//! Files: `validate` (step 1 and the dedupe key), `batch` (what the batch names, read once, and
//! the locks), `resolve` (step 3 and auto-merge detection), `write` (steps 2, 4 and 5).

mod batch;
mod resolve;
mod validate;
mod write;

use chrono::Utc;
use entity::{signal_sources, signals};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Actor, Error, Result};

pub use batch::claim_totals;
use batch::{Writer, claim_unknown};
use validate::{Prepared, prepare};
pub use validate::{canonical, check_inputs, dedupe_key};

/// The most signals one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// The largest metadata object accepted, serialised.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Built-in sources, created on first use.
pub mod system_source {
    pub const API: &str = "api";
    pub const SEGMENT: &str = "segment";
}

/// Who did it, as the sender knows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActorHints {
    pub email: Option<String>,
    pub github: Option<String>,
    pub npm: Option<String>,
    pub twitter: Option<String>,
    pub linkedin: Option<String>,
    pub name: Option<String>,
    /// The sender's own user id (Segment `userId`), remembered as a `SEGMENT` identity.
    pub user_id: Option<String>,
    /// The person's ids at a connected source: (kind, id) with a kind of
    /// [`identifiers::kind::SOURCE_IDS`] (a Stack Exchange user id, a Discord user id, …).
    /// Connectors set them; an accepted request never holds them (not stored).
    #[serde(skip)]
    pub source_ids: Vec<(&'static str, String)>,
}

/// Which company it was, as the sender knows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountHints {
    pub domain: Option<String>,
    pub name: Option<String>,
    pub github_org: Option<String>,
}

/// Contact fields to set from the sender's traits (Segment `identify`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactTraits {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Account fields to set from the sender's traits (Segment `group`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountTraits {
    pub name: Option<String>,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub website: Option<String>,
}

/// One signal as sent. Ids and the timestamp are text so every path reports malformed values
/// the same way (as field errors).
///
/// Serialisable so an accepted request can wait in [`crate::signals::intake`]; the stored form
/// is this crate's own, read back only by it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Input {
    pub source_id: Option<String>,
    pub signal_type: String,
    pub actor_id: Option<String>,
    pub account_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
    /// ISO-8601; the event time (default: now).
    pub timestamp: Option<String>,
    pub actor: Option<ActorHints>,
    pub account: Option<AccountHints>,
    pub contact_traits: Option<ContactTraits>,
    pub account_traits: Option<AccountTraits>,
    /// A profile update (Segment `identify`, `group`, `alias`): the contact and account are
    /// found or created and their traits applied, but no signal is stored (it is not something
    /// the person did, and would count as activity in the score).
    pub profile_only: bool,
}

/// The outcome of one ingested item.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The stored signal (the earlier one when deduplicated); `None` for a profile update.
    pub signal: Option<signals::Model>,
    /// `true` when an earlier signal was returned instead of storing a new one.
    pub deduplicated: bool,
    /// The contact and account it resolved to.
    pub contact_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// Why the item was dropped without storing anything (it names a person who was erased:
    /// [`crate::privacy::ERASED`]); `None` for an item that was ingested.
    pub dropped: Option<&'static str>,
}

impl Ingested {
    fn stored(signal: signals::Model, deduplicated: bool) -> Self {
        Ingested {
            contact_id: signal.contact_id,
            account_id: signal.account_id,
            signal: Some(signal),
            deduplicated,
            dropped: None,
        }
    }

    fn dropped(reason: &'static str) -> Self {
        Ingested {
            signal: None,
            deduplicated: false,
            contact_id: None,
            account_id: None,
            dropped: Some(reason),
        }
    }
}

pub(crate) fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("signals:write")
}

/// Ingests one signal (MEMBER+, key scope `signals:write`) from the default API source unless
/// `sourceId` names another.
pub async fn ingest(db: &DatabaseConnection, actor: &Actor, input: Input) -> Result<Ingested> {
    ingest_many(db, actor, vec![input], "", system_source::API)
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("no signal ingested".into()))?
}

/// Ingests up to [`MAX_BATCH`] signals. Each item gets its own result: a bad item fails with
/// its field errors (named `<prefix>.<index>.<field>`) and the others still land, all in one
/// transaction. Items without `sourceId` come from the built-in source `default_source`
/// ([`system_source`]).
#[tracing::instrument(name = "signals.ingest", skip_all, fields(organizationId = %actor.organization_id, items = inputs.len(), source = default_source))]
pub async fn ingest_many(
    db: &DatabaseConnection,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Vec<Result<Ingested>>> {
    write_rights(actor)?;
    if inputs.is_empty() || inputs.len() > MAX_BATCH {
        return Err(Error::invalid(
            if prefix.is_empty() { "input" } else { prefix },
            format!("must hold 1 to {MAX_BATCH} signals"),
        ));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ingest_once(db, actor, inputs.clone(), prefix, default_source).await {
            Err(Error::Database(e)) if attempt < 3 && retryable(&e) => {
                tracing::debug!(error = %e, attempt, "ingest lost a race; retrying");
                continue;
            }
            other => return other,
        }
    }
}

pub(crate) fn retryable(e: &sea_orm::DbErr) -> bool {
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return true;
    }
    // A contact a concurrent merge deleted while this batch attributed a signal to it: the retry
    // reads the identities as the merge left them.
    if matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
    ) {
        return true;
    }
    let s = e.to_string();
    s.contains(crate::billing::usage::COUNTER_MOVED)
        || s.contains("deadlock")
        || s.contains("could not serialize")
        || s.contains("database is locked")
}

async fn ingest_once(
    db: &DatabaseConnection,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Vec<Result<Ingested>>> {
    let txn = crate::db::begin(db).await?;
    let out = ingest_in(&txn, actor, inputs, prefix, default_source).await?;
    txn.commit().await?;
    Ok(out.finish())
}

/// What an ingest wrote before its commit.
pub(crate) struct Written {
    results: Vec<Result<Ingested>>,
    /// Contacts merged away during the ingest, to their primary.
    merged_into: std::collections::HashMap<Uuid, Uuid>,
}

impl Written {
    /// The results, with the signals of a contact merged away given to its primary.
    pub(crate) fn finish(mut self) -> Vec<Result<Ingested>> {
        for r in self.results.iter_mut().flatten() {
            if let Some(p) = r.contact_id.and_then(|c| self.merged_into.get(&c)) {
                r.contact_id = Some(*p);
                if let Some(s) = r.signal.as_mut() {
                    s.contact_id = Some(*p);
                }
            }
        }
        self.results
    }
}

/// Steps 1 to 5 inside the caller's transaction (which commits them, or retries the whole on
/// a lost race: [`retryable`]).
pub(crate) async fn ingest_in(
    txn: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    inputs: Vec<Input>,
    prefix: &str,
    default_source: &str,
) -> Result<Written> {
    let org = actor.organization_id;
    let now = Utc::now();
    let (default, policy) = source_and_policy(txn, org, default_source).await?;
    let prepared = prepare(txn, org, inputs, prefix, default, now).await?;
    let limits = crate::billing::limits_under(txn, org, policy, now).await?;
    // Items naming an erased person are dropped before anything is read or written for them:
    // one statement for the whole batch.
    let erased = erased_items(txn, org, &prepared).await?;
    let prepared: Vec<Result<Prepared>> = prepared
        .into_iter()
        .zip(&erased)
        .map(|(p, e)| match p {
            Ok(_) if *e => Err(Error::Internal("dropped".into())),
            other => other,
        })
        .collect();
    let mut w = Writer::load(txn, org, &prepared, now).await?;
    let claimed = claim_unknown(txn, org, &prepared, &w).await?;
    // Another batch may have created some of them before we held the claims.
    if claimed.reload_people {
        w = Writer::load(txn, org, &prepared, now).await?;
    } else if !claimed.reload_keys.is_empty() {
        w.reload_idempotency(txn, org, &claimed.reload_keys).await?;
    }
    // On SQLite nothing is claimed, so whether the batch creates people is not known here:
    // the contact room is read whenever limits apply.
    let may_create =
        claimed.may_create || txn.get_database_backend() != sea_orm::DbBackend::Postgres;
    w.limit(txn, limits, may_create).await?;
    let mut results = Vec::with_capacity(prepared.len());
    for (item, erased) in prepared.into_iter().zip(erased) {
        results.push(match item {
            _ if erased => Ok(Ingested::dropped(crate::privacy::ERASED)),
            Err(e) => Err(e),
            // Past the month's signal limit a new signal is refused; a repeat of one stored
            // before is still answered.
            Ok(p) if w.signal_room == Some(0) && w.stores(&p) => Err(w.signal_refusal()),
            Ok(p) => Ok(w.ingest(txn, p).await?),
        });
    }
    let merged_into = w.flush(txn, actor).await?;
    Ok(Written {
        results,
        merged_into,
    })
}

/// Which items name an erased person by any identifier (email, GitHub, npm, Twitter/X,
/// LinkedIn, a source's id): one tombstone lookup for the batch.
async fn erased_items(
    txn: &sea_orm::DatabaseTransaction,
    org: Uuid,
    items: &[Result<Prepared>],
) -> Result<Vec<bool>> {
    use crate::privacy::tombstones;
    let hashes: Vec<Vec<String>> = items
        .iter()
        .map(|p| match p {
            Ok(p) => p
                .hints
                .identities()
                .into_iter()
                .map(|(k, v, _)| tombstones::hash(org, k, &v))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    let all: Vec<String> = hashes.iter().flatten().cloned().collect();
    if all.is_empty() {
        return Ok(vec![false; items.len()]);
    }
    let found = tombstones::erased(txn, org, all).await?;
    Ok(hashes
        .iter()
        .map(|h| h.iter().any(|x| found.contains(x)))
        .collect())
}

/// The built-in source `key` of the organization, created on first use.
pub async fn system_source(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    key: &str,
) -> Result<signal_sources::Model> {
    Ok(source_and_policy(db, organization_id, key).await?.0)
}

/// The built-in source `key` (created on first use) and the installation's billing policy, read
/// in one statement: the two things every ingest reads first.
async fn source_and_policy(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    key: &str,
) -> Result<(signal_sources::Model, crate::billing::Policy)> {
    use sea_orm::{FromQueryResult, QuerySelect, QueryTrait};
    let find = || async {
        let mut q = signal_sources::Entity::find()
            .filter(signal_sources::Column::OrganizationId.eq(organization_id))
            .filter(signal_sources::Column::SystemKey.eq(key))
            .limit(1);
        for (expr, alias) in crate::billing::policy_columns() {
            q = q.expr_as(expr, alias);
        }
        match db.query_one(&q.into_query()).await? {
            Some(row) => Ok::<_, Error>(Some((
                signal_sources::Model::from_query_result(&row, "")?,
                crate::billing::Policy::from_row(&row)?,
            ))),
            None => Ok(None),
        }
    };
    if let Some(found) = find().await? {
        return Ok(found);
    }
    let (kind, name) = match key {
        system_source::SEGMENT => ("SEGMENT", "Segment"),
        _ => ("PRODUCT_API", "API"),
    };
    let now = Utc::now();
    signal_sources::Entity::insert(signal_sources::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization_id),
        kind: Set(kind.into()),
        name: Set(name.into()),
        status: Set("ACTIVE".into()),
        config: Set(json!({})),
        secret_ciphertext: Set(None),
        system_key: Set(Some(key.into())),
        last_sync_at: Set(None),
        error_message: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            signal_sources::Column::OrganizationId,
            signal_sources::Column::SystemKey,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    find()
        .await?
        .ok_or_else(|| Error::Internal(format!("source {key} missing after insert")))
}
