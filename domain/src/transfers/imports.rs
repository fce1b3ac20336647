//! CSV imports of contacts, accounts and deals. An import is created for an entity
//! (`createImport`), its file is uploaded to a signed, expiring link (the upload is REST: the
//! GraphQL transport is JSON-only) and inspected once (separator, headers, row count, a
//! mapping guessed from the headers, HubSpot and Salesforce exports recognised). The mapping
//! may be edited; a dry run ([`preview`]) validates every row exactly as the run will and
//! writes nothing; [`start`] queues the `import-csv` job, which writes the rows in batches of
//! [`BATCH`], each batch in one transaction with its progress and per-row errors, so a restarted
//! job resumes after the last committed batch ([`run`]).
//!
//! Re-importing a file updates what the first import created: contacts are found by email,
//! accounts by domain (else by name), deals by the source's record id (else by title and
//! account). Rows that fail validation are reported with their row number, line and field and
//! left out before their batch is written; the rest of the batch is written whole or not at
//! all.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use entity::{import_errors, imports};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::csvfile::{self, Rows};
use super::links::{self, LinkError};
use super::mapping::{self, ColumnMapping, Entity, Source};
use super::rows::Reader;
use super::write::{self, Ctx};
use crate::actor::Principal;
use crate::audit::{self, Entry, Meta};
use crate::crm::{accounts, contacts, deals};
use crate::queue::{self, defs::IMPORT_CSV};
use crate::secrets::Cipher;
use crate::{Actor, Error, Result, Role, events};

/// An import's status.
pub mod status {
    /// Created; its file is not uploaded yet.
    pub const AWAITING_UPLOAD: &str = "AWAITING_UPLOAD";
    /// The file is uploaded and inspected; the mapping may be edited, a dry run made.
    pub const READY: &str = "READY";
    pub const QUEUED: &str = "QUEUED";
    pub const RUNNING: &str = "RUNNING";
    pub const SUCCEEDED: &str = "SUCCEEDED";
    pub const FAILED: &str = "FAILED";
}

/// Rows per batch (and per transaction).
pub const BATCH: usize = 500;
/// Per-row errors stored per import: those of the first failed rows up to this many (the
/// `failed` count stays exact).
pub const MAX_STORED_ERRORS: i64 = 10_000;
/// Errors a dry run returns (its counts cover every row).
pub const MAX_PREVIEW_ERRORS: usize = 1_000;
/// How long an upload link works.
pub fn upload_link_ttl() -> Duration {
    Duration::hours(1)
}

/// One row that was (or would be) left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The data row, 1-based.
    pub row: i64,
    /// The file line the row starts on.
    pub line: Option<i64>,
    pub field: String,
    pub message: String,
}

impl From<import_errors::Model> for RowError {
    fn from(e: import_errors::Model) -> Self {
        RowError {
            row: e.row,
            line: e.line,
            field: e.field,
            message: e.message,
        }
    }
}

/// What a dry run found: every row validated, nothing written.
#[derive(Debug, Clone, Default)]
pub struct ImportPreview {
    pub total: i64,
    pub would_create: i64,
    pub would_update: i64,
    pub unchanged: i64,
    pub invalid: i64,
    /// The first [`MAX_PREVIEW_ERRORS`] errors.
    pub errors: Vec<RowError>,
}

/// Where an import's file is kept.
pub fn path(data_dir: &Path, id: Uuid) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.csv"))
}

/// Where an upload is written before it is inspected.
pub fn upload_path(data_dir: &Path, id: Uuid) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.upload"))
}

fn entity_of(m: &imports::Model) -> Result<Entity> {
    Entity::parse(&m.entity).ok_or_else(|| Error::Internal("an import of an unknown entity".into()))
}

/// What importing `entity` needs: the CRM's write rights for it, and for accounts too when
/// contact or deal rows name their account (a missing one is created).
fn rights(actor: &Actor, entity: Entity, mapping: &[ColumnMapping]) -> Result<()> {
    match entity {
        Entity::Contacts => contacts::write_rights(actor)?,
        Entity::Accounts => accounts::write_rights(actor)?,
        Entity::Deals => deals::write_rights(actor)?,
    }
    let links_accounts = mapping.iter().any(|m| {
        matches!(
            m.field.as_deref(),
            Some("accountName") | Some("accountDomain")
        )
    });
    if entity != Entity::Accounts && links_accounts {
        accounts::write_rights(actor)?;
    }
    Ok(())
}

/// Creates an import of `entity` awaiting its file (the CRM's write rights for it).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    entity: Entity,
) -> Result<imports::Model> {
    rights(actor, entity, &[])?;
    let now = Utc::now();
    let (user, key) = principal(actor);
    let txn = crate::db::begin(db).await?;
    let m = imports::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        entity: Set(entity.as_str().into()),
        status: Set(status::AWAITING_UPLOAD.into()),
        source: Set(Source::Generic.as_str().into()),
        size_bytes: Set(None),
        delimiter: Set(None),
        headers: Set(json!([])),
        mapping: Set(json!([])),
        total: Set(0),
        processed: Set(0),
        created: Set(0),
        updated: Set(0),
        unchanged: Set(0),
        failed: Set(0),
        job_id: Set(None),
        requested_by: Set(user),
        requested_by_key: Set(key),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "import.created")
            .target("import", m.id)
            .metadata(json!({"entity": m.entity})),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

fn principal(actor: &Actor) -> (Option<Uuid>, Option<Uuid>) {
    match &actor.principal {
        Principal::User { user_id, .. } => (Some(*user_id), None),
        Principal::ApiKey { key_id, .. } => (None, Some(*key_id)),
        Principal::Integration { .. } => (None, None),
    }
}

/// The upload link's token for import `m` and when it expires.
pub fn upload_token(
    cipher: &Cipher,
    m: &imports::Model,
    now: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let expires = now + upload_link_ttl();
    (
        links::sign(cipher, links::UPLOAD, m.id, m.organization_id, expires),
        expires,
    )
}

/// The organization an upload token for import `id` names, if valid now.
pub fn check_upload(
    cipher: &Cipher,
    id: Uuid,
    token: &str,
    now: DateTime<Utc>,
) -> std::result::Result<Uuid, LinkError> {
    links::verify(cipher, links::UPLOAD, id, token, now)
}

async fn find(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<imports::Model> {
    imports::Entity::find_by_id(id)
        .filter(imports::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Import" })
}

/// Whether an upload may still be received for `id` of `organization_id` (before it starts).
pub async fn may_upload(db: &impl ConnectionTrait, organization_id: Uuid, id: Uuid) -> Result<()> {
    let m = find(db, organization_id, id).await?;
    if m.status != status::AWAITING_UPLOAD && m.status != status::READY {
        return Err(Error::Conflict {
            field: "status".into(),
            message: "this import has started; create a new import for another file".into(),
        });
    }
    Ok(())
}

/// Takes the file written at [`upload_path`] (`size` bytes) as import `id`'s: inspects it
/// (separator, headers, rows; every problem a `file` error), guesses the mapping and the
/// source, and makes the import READY. A refused file is deleted.
pub async fn accept_upload(
    db: &DatabaseConnection,
    data_dir: &Path,
    organization_id: Uuid,
    id: Uuid,
    size: u64,
) -> Result<imports::Model> {
    let upload = upload_path(data_dir, id);
    let inspected = csvfile::inspect(&upload);
    let (layout, total) = match inspected {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&upload);
            return Err(e);
        }
    };
    let txn = crate::db::begin(db).await?;
    let m = find(&txn, organization_id, id).await?;
    if m.status != status::AWAITING_UPLOAD && m.status != status::READY {
        let _ = std::fs::remove_file(&upload);
        return Err(Error::Conflict {
            field: "status".into(),
            message: "this import has started; create a new import for another file".into(),
        });
    }
    let entity = entity_of(&m)?;
    std::fs::rename(&upload, path(data_dir, id))
        .map_err(|e| Error::Internal(format!("storing an import file failed: {e}")))?;
    let source = mapping::detect_source(&layout.headers);
    let guessed = mapping::guess(entity, &layout.headers);
    let mut am: imports::ActiveModel = m.into();
    am.status = Set(status::READY.into());
    am.source = Set(source.as_str().into());
    am.size_bytes = Set(Some(i64::try_from(size).unwrap_or(i64::MAX)));
    am.delimiter = Set(Some(csvfile::delimiter_name(layout.delimiter)));
    am.headers = Set(json!(layout.headers));
    am.mapping = Set(mapping::to_value(&guessed));
    am.total = Set(total);
    am.updated_at = Set(Utc::now());
    let m = am.update(&txn).await?;
    txn.commit().await?;
    Ok(m)
}

/// Import `id` of the actor's organization (who may import its entity).
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<imports::Model> {
    let m = find(db, actor.organization_id, id).await?;
    rights(actor, entity_of(&m)?, &[])?;
    Ok(m)
}

/// The import's stored row errors, by row, at most `limit`.
pub async fn errors(
    db: &impl ConnectionTrait,
    m: &imports::Model,
    limit: u64,
) -> Result<Vec<RowError>> {
    Ok(import_errors::Entity::find()
        .filter(import_errors::Column::ImportId.eq(m.id))
        .filter(import_errors::Column::OrganizationId.eq(m.organization_id))
        .order_by_asc(import_errors::Column::Row)
        .order_by_asc(import_errors::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(RowError::from)
        .collect())
}

/// The import's mapping as stored.
pub fn mapping_of(m: &imports::Model) -> Vec<ColumnMapping> {
    mapping::from_value(&m.mapping)
}

/// The file's column names.
pub fn headers_of(m: &imports::Model) -> Vec<String> {
    serde_json::from_value(m.headers.clone()).unwrap_or_default()
}

/// Replaces the mapping of a READY import (columns not named are ignored).
pub async fn update_mapping(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    given: Vec<ColumnMapping>,
) -> Result<imports::Model> {
    let m = get(db, actor, id).await?;
    if m.status != status::READY {
        return Err(Error::Conflict {
            field: "status".into(),
            message: if m.status == status::AWAITING_UPLOAD {
                "upload the file first".into()
            } else {
                "this import has started; its mapping is fixed".into()
            },
        });
    }
    let checked = mapping::check(entity_of(&m)?, &headers_of(&m), given)?;
    rights(actor, entity_of(&m)?, &checked)?;
    let txn = crate::db::begin(db).await?;
    let moved = imports::Entity::update_many()
        .col_expr(
            imports::Column::Mapping,
            Expr::value(mapping::to_value(&checked)),
        )
        .col_expr(imports::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(imports::Column::Id.eq(id))
        .filter(imports::Column::Status.eq(status::READY))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(Error::Conflict {
            field: "status".into(),
            message: "this import has started; its mapping is fixed".into(),
        });
    }
    let m = find(&txn, actor.organization_id, id).await?;
    txn.commit().await?;
    Ok(m)
}

fn reader_of(m: &imports::Model) -> Result<Reader> {
    Ok(Reader::new(
        entity_of(m)?,
        Source::parse(&m.source),
        &mapping_of(m),
    ))
}

fn open(data_dir: &Path, m: &imports::Model) -> Result<Rows> {
    let d = csvfile::delimiter_byte(m.delimiter.as_deref().unwrap_or(","));
    let (_, rows) = Rows::open(&path(data_dir, m.id), d)?;
    Ok(rows)
}

fn next_batch(rows: &mut Rows) -> Result<Vec<csvfile::Row>> {
    let mut out = Vec::with_capacity(BATCH);
    while out.len() < BATCH {
        match rows.next()? {
            Some(r) => out.push(r),
            None => break,
        }
    }
    Ok(out)
}

/// A dry run of import `id`: every row read and validated exactly as [`run`] will (the CRM's
/// checks, the accounts it would link or create, the rows it would update), nothing written.
pub async fn preview(
    db: &DatabaseConnection,
    actor: &Actor,
    data_dir: &Path,
    id: Uuid,
) -> Result<ImportPreview> {
    let m = get(db, actor, id).await?;
    if m.status == status::AWAITING_UPLOAD {
        return Err(Error::Conflict {
            field: "status".into(),
            message: "upload the file first".into(),
        });
    }
    rights(actor, entity_of(&m)?, &mapping_of(&m))?;
    let reader = reader_of(&m)?;
    let mut rows = open(data_dir, &m)?;
    let cx = Ctx {
        organization_id: m.organization_id,
        actor: Some(actor),
        owner: actor.user_id(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = ImportPreview::default();
    loop {
        let batch = next_batch(&mut rows)?;
        if batch.is_empty() {
            break;
        }
        out.total += batch.len() as i64;
        let items = batch
            .into_iter()
            .map(|r| {
                let item = reader.read(&r);
                (r, item)
            })
            .collect();
        let plan = write::plan(db, &cx, items, Some(&mut seen)).await?;
        let o = plan.outcome;
        out.would_create += o.created;
        out.would_update += o.updated;
        out.unchanged += o.unchanged;
        out.invalid += o.failed;
        let room = MAX_PREVIEW_ERRORS.saturating_sub(out.errors.len());
        out.errors.extend(o.errors.into_iter().take(room));
    }
    Ok(out)
}

/// Queues a READY import's run (`import-csv`); an audit entry records it.
pub async fn start(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    id: Uuid,
) -> Result<imports::Model> {
    let m = get(db, actor, id).await?;
    rights(actor, entity_of(&m)?, &mapping_of(&m))?;
    if m.status != status::READY {
        return Err(Error::Conflict {
            field: "status".into(),
            message: if m.status == status::AWAITING_UPLOAD {
                "upload the file first".into()
            } else {
                "this import has started already".into()
            },
        });
    }
    let txn = crate::db::begin(db).await?;
    let moved = imports::Entity::update_many()
        .col_expr(imports::Column::Status, Expr::value(status::QUEUED))
        .col_expr(imports::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(imports::Column::Id.eq(id))
        .filter(imports::Column::Status.eq(status::READY))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        return Err(Error::Conflict {
            field: "status".into(),
            message: "this import has started already".into(),
        });
    }
    let job = IMPORT_CSV
        .job(json!({"organizationId": m.organization_id, "importId": id}))
        .organization(m.organization_id);
    let job_id = queue::enqueue(&txn, job)
        .await?
        .ok_or_else(|| Error::Internal("a job without a dedupe key was refused".into()))?;
    imports::Entity::update_many()
        .col_expr(imports::Column::JobId, Expr::value(job_id))
        .filter(imports::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "import.started")
            .target("import", id)
            .metadata(json!({
                "entity": m.entity, "source": m.source, "rows": m.total,
                "sizeBytes": m.size_bytes,
            })),
    )
    .await?;
    let m = find(&txn, actor.organization_id, id).await?;
    txn.commit().await?;
    Ok(m)
}

/// The actor an import's writes are recorded under (its requester).
fn job_actor(m: &imports::Model) -> Option<Actor> {
    let principal = match (m.requested_by, m.requested_by_key) {
        (Some(user_id), _) => Principal::User {
            user_id,
            session_id: Uuid::nil(),
        },
        (None, Some(key_id)) => Principal::ApiKey {
            key_id,
            scopes: Vec::new(),
        },
        _ => return None,
    };
    Some(Actor {
        organization_id: m.organization_id,
        role: Role::Member,
        principal,
    })
}

async fn announce(
    txn: &sea_orm::DatabaseTransaction,
    m: &imports::Model,
    actor: Option<&Actor>,
) -> Result<()> {
    events::append(
        txn,
        m.organization_id,
        actor,
        "import.progress",
        json!({
            "importId": m.id, "status": m.status, "processed": m.processed, "total": m.total,
        }),
    )
    .await?;
    Ok(())
}

async fn finish(db: &DatabaseConnection, id: Uuid, to: &str, error: Option<&str>) -> Result<()> {
    let txn = crate::db::begin(db).await?;
    let Some(m) = imports::Entity::find_by_id(id).one(&txn).await? else {
        return Ok(());
    };
    if m.status != status::RUNNING && m.status != status::QUEUED {
        return Ok(());
    }
    let now = Utc::now();
    let mut am: imports::ActiveModel = m.clone().into();
    am.status = Set(to.into());
    am.finished_at = Set(Some(now));
    am.updated_at = Set(now);
    am.last_error = Set(error.map(str::to_owned));
    let m = am.update(&txn).await?;
    announce(&txn, &m, job_actor(&m).as_ref()).await?;
    txn.commit().await?;
    Ok(())
}

/// Marks import `id` failed with a public `reason` (its job gave up); a running one only.
pub async fn fail(db: &DatabaseConnection, id: Uuid, reason: &str) -> Result<()> {
    finish(db, id, status::FAILED, Some(reason)).await
}

/// The `import-csv` job `job_id` for import `id`: every batch after the last committed one,
/// each in its own transaction with the import's counters (moved only from the values read
/// under it, so two runners never commit one batch twice), its row errors and an
/// `import.progress` event. Returns the rows this run processed.
#[tracing::instrument(name = "imports.run", skip_all, fields(importId = %id))]
pub async fn run(db: &DatabaseConnection, data_dir: &Path, id: Uuid, job_id: Uuid) -> Result<i64> {
    let Some(m) = imports::Entity::find_by_id(id).one(db).await? else {
        return Ok(0);
    };
    if (m.status != status::QUEUED && m.status != status::RUNNING) || m.job_id != Some(job_id) {
        return Ok(0);
    }
    if !path(data_dir, id).exists() {
        fail(db, id, "the import's file is gone from DATA_DIR/imports").await?;
        return Ok(0);
    }
    if m.status == status::QUEUED {
        let now = Utc::now();
        imports::Entity::update_many()
            .col_expr(imports::Column::Status, Expr::value(status::RUNNING))
            .col_expr(imports::Column::StartedAt, Expr::value(now))
            .col_expr(imports::Column::UpdatedAt, Expr::value(now))
            .filter(imports::Column::Id.eq(id))
            .filter(imports::Column::Status.eq(status::QUEUED))
            .exec(db)
            .await?;
    }
    let actor = job_actor(&m);
    let cx = Ctx {
        organization_id: m.organization_id,
        actor: actor.as_ref(),
        owner: m.requested_by,
    };
    let reader = reader_of(&m)?;
    let mut rows = open(data_dir, &m)?;
    rows.skip(m.processed)?;
    let mut processed = m.processed;
    let mut done = 0;
    loop {
        let batch = next_batch(&mut rows)?;
        if batch.is_empty() {
            finish(db, id, status::SUCCEEDED, None).await?;
            return Ok(done);
        }
        let n = batch.len() as i64;
        let items = batch
            .into_iter()
            .map(|r| {
                let item = reader.read(&r);
                (r, item)
            })
            .collect();
        let txn = crate::db::begin(db).await?;
        let cur = find(&txn, m.organization_id, id).await?;
        if cur.status != status::RUNNING || cur.job_id != Some(job_id) {
            return Ok(done);
        }
        if cur.processed != processed {
            return Err(Error::Conflict {
                field: "importId".into(),
                message: "another runner moved this import's progress".into(),
            });
        }
        let plan = write::plan(&txn, &cx, items, None).await?;
        let outcome = match write::apply(&txn, &cx, plan).await {
            Ok(o) => o,
            // A plan limit or an erased person: retrying cannot help; the import stops here
            // with what was committed so far, and says why.
            Err(e @ (Error::Quota { .. } | Error::Conflict { .. } | Error::Validation(_))) => {
                drop(txn);
                fail(db, id, &format!("stopped at row {}: {e}", processed + 1)).await?;
                return Ok(done);
            }
            Err(e) => return Err(e),
        };
        if cur.failed < MAX_STORED_ERRORS && !outcome.errors.is_empty() {
            let rows: Vec<import_errors::ActiveModel> = outcome
                .errors
                .iter()
                .map(|e| import_errors::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    import_id: Set(id),
                    organization_id: Set(m.organization_id),
                    row: Set(e.row),
                    line: Set(e.line),
                    field: Set(e.field.chars().take(200).collect()),
                    message: Set(e.message.clone()),
                })
                .collect();
            for chunk in rows.chunks(crate::db::rows_per_insert::<import_errors::Entity>()) {
                import_errors::Entity::insert_many(chunk.to_vec())
                    .exec_without_returning(&txn)
                    .await?;
            }
        }
        let now = Utc::now();
        let moved = imports::Entity::update_many()
            .col_expr(
                imports::Column::Processed,
                Expr::col(imports::Column::Processed).add(n),
            )
            .col_expr(
                imports::Column::Created,
                Expr::col(imports::Column::Created).add(outcome.created),
            )
            .col_expr(
                imports::Column::Updated,
                Expr::col(imports::Column::Updated).add(outcome.updated),
            )
            .col_expr(
                imports::Column::Unchanged,
                Expr::col(imports::Column::Unchanged).add(outcome.unchanged),
            )
            .col_expr(
                imports::Column::Failed,
                Expr::col(imports::Column::Failed).add(outcome.failed),
            )
            .col_expr(imports::Column::UpdatedAt, Expr::value(now))
            .filter(imports::Column::Id.eq(id))
            .filter(imports::Column::Processed.eq(processed))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(Error::Conflict {
                field: "importId".into(),
                message: "another runner moved this import's progress".into(),
            });
        }
        let after = find(&txn, m.organization_id, id).await?;
        announce(&txn, &after, cx.actor).await?;
        txn.commit().await?;
        processed += n;
        done += n;
    }
}
