//! Exports of an organization's data (ADMIN: an export holds all of it). `exportData` records an
//! export (QUEUED) and queues the `export-data` job, which reads each entity in keyset pages of
//! [`PAGE`] rows (never a whole table in memory) and streams them to one file under
//! `DATA_DIR/exports/`: CSV of one entity as a `.csv`, CSV of several as a `.tar.gz` holding one
//! `<entity>.csv` each, JSON as gzip'd JSON lines (`{"entity": "CONTACTS", "row": {…}}` per
//! line). Status, rows written and size live in the export's row; a job that dies before it
//! finished is retried from scratch (the file is rewritten). The download link is signed and
//! expires with the export (`EXPORT_LINK_TTL_SECONDS`, 24 hours by default); the daily cleanup
//! ([`delete_expired`], run by the 04:00 `demo-cleanup-scheduler` job) deletes expired files and
//! marks their exports EXPIRED.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use entity::exports;
use flate2::Compression;
use flate2::write::GzEncoder;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::links::{self, LinkError};
use crate::audit::{self, Entry, Meta};
use crate::crm;
use crate::queue::{self, defs::EXPORT_DATA};
use crate::secrets::Cipher;
use crate::{Actor, Error, Result, Role};

/// Rows read per keyset page.
pub const PAGE: u64 = 1000;

/// An export's status.
pub mod status {
    pub const QUEUED: &str = "QUEUED";
    pub const RUNNING: &str = "RUNNING";
    pub const SUCCEEDED: &str = "SUCCEEDED";
    pub const FAILED: &str = "FAILED";
    /// Its link expired and its file was deleted.
    pub const EXPIRED: &str = "EXPIRED";
}

/// What an export may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Contacts,
    Accounts,
    Deals,
    Signals,
    Activities,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Contacts,
        Kind::Accounts,
        Kind::Deals,
        Kind::Signals,
        Kind::Activities,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Contacts => "CONTACTS",
            Kind::Accounts => "ACCOUNTS",
            Kind::Deals => "DEALS",
            Kind::Signals => "SIGNALS",
            Kind::Activities => "ACTIVITIES",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The CSV columns, in order (the keys of each row's JSON).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Contacts => &[
                "id",
                "accountId",
                "firstName",
                "lastName",
                "email",
                "title",
                "phone",
                "github",
                "twitter",
                "linkedIn",
                "city",
                "country",
                "notes",
                "tags",
                "customFields",
                "createdAt",
                "updatedAt",
            ],
            Kind::Accounts => &[
                "id",
                "name",
                "domain",
                "industry",
                "size",
                "website",
                "githubOrg",
                "city",
                "country",
                "description",
                "score",
                "tags",
                "customFields",
                "createdAt",
                "updatedAt",
            ],
            Kind::Deals => &[
                "id",
                "title",
                "amount",
                "currency",
                "stage",
                "probability",
                "accountId",
                "contactId",
                "ownerId",
                "expectedCloseDate",
                "closedAt",
                "description",
                "tags",
                "customFields",
                "createdAt",
                "updatedAt",
            ],
            Kind::Signals => &[
                "id",
                "type",
                "sourceId",
                "contactId",
                "accountId",
                "anonymousId",
                "metadata",
                "idempotencyKey",
                "timestamp",
                "createdAt",
            ],
            Kind::Activities => &[
                "id",
                "type",
                "title",
                "description",
                "status",
                "priority",
                "dueDate",
                "completedAt",
                "authorId",
                "accountId",
                "contactId",
                "dealId",
                "customFields",
                "createdAt",
                "updatedAt",
            ],
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            Kind::Contacts => "contacts",
            Kind::Accounts => "accounts",
            Kind::Deals => "deals",
            Kind::Signals => "signals",
            Kind::Activities => "activities",
        }
    }
}

/// The file formats.
pub mod format {
    pub const CSV: &str = "CSV";
    pub const JSON: &str = "JSON";
}

fn admin(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// The folder export files live in.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exports")
}

/// Records an export of `kinds` (in order, each once) as `fmt` and queues its job (ADMIN). Its
/// link will expire `ttl` after now.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &Meta,
    kinds: Vec<Kind>,
    fmt: &str,
    ttl: Duration,
) -> Result<exports::Model> {
    admin(actor)?;
    let mut list: Vec<Kind> = Vec::new();
    for k in kinds {
        if !list.contains(&k) {
            list.push(k);
        }
    }
    if list.is_empty() {
        return Err(Error::invalid("entities", "name at least one entity"));
    }
    if fmt != format::CSV && fmt != format::JSON {
        return Err(Error::invalid("format", "must be CSV or JSON"));
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    let names: Vec<&str> = list.iter().map(|k| k.as_str()).collect();
    let txn = crate::db::begin(db).await?;
    let job = EXPORT_DATA
        .job(json!({"organizationId": actor.organization_id, "exportId": id}))
        .organization(actor.organization_id);
    let job_id = queue::enqueue(&txn, job)
        .await?
        .ok_or_else(|| Error::Internal("a job without a dedupe key was refused".into()))?;
    let m = exports::ActiveModel {
        id: Set(id),
        organization_id: Set(actor.organization_id),
        entities: Set(json!(names)),
        format: Set(fmt.into()),
        status: Set(status::QUEUED.into()),
        rows: Set(0),
        size_bytes: Set(None),
        file_name: Set(None),
        job_id: Set(Some(job_id)),
        requested_by: Set(actor.user_id()),
        error: Set(None),
        expires_at: Set(Some(now + ttl)),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        meta,
        Entry::by(actor, "export.created")
            .target("export", id)
            .metadata(json!({"entities": names, "format": fmt})),
    )
    .await?;
    txn.commit().await?;
    Ok(m)
}

async fn find(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    id: Uuid,
) -> Result<exports::Model> {
    exports::Entity::find_by_id(id)
        .filter(exports::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound { entity: "Export" })
}

/// Export `id` of the actor's organization (ADMIN).
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<exports::Model> {
    admin(actor)?;
    find(db, actor.organization_id, id).await
}

/// The organization's exports, newest first, at most `limit` (ADMIN): their status, and the
/// download links of those whose file is still kept.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    limit: u64,
) -> Result<Vec<exports::Model>> {
    admin(actor)?;
    Ok(exports::Entity::find()
        .filter(exports::Column::OrganizationId.eq(actor.organization_id))
        .order_by_desc(exports::Column::CreatedAt)
        .order_by_desc(exports::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The kinds an export holds.
pub fn kinds_of(m: &exports::Model) -> Vec<Kind> {
    serde_json::from_value::<Vec<String>>(m.entities.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Kind::parse(s))
        .collect()
}

/// The download link's token of a finished export whose file is kept (none otherwise).
pub fn download_token(cipher: &Cipher, m: &exports::Model) -> Option<String> {
    if m.status != status::SUCCEEDED || m.file_name.is_none() {
        return None;
    }
    let expires = m.expires_at?;
    Some(links::sign(
        cipher,
        links::DOWNLOAD,
        m.id,
        m.organization_id,
        expires,
    ))
}

/// A file ready to be sent.
#[derive(Debug, Clone)]
pub struct Download {
    pub path: PathBuf,
    /// What the client saves it as.
    pub file_name: String,
    pub content_type: &'static str,
}

/// Why a download was refused.
#[derive(Debug)]
pub enum Refused {
    Link(LinkError),
    /// No such export (of the link's organization), not finished, or its file is gone.
    Gone,
    Failed(Error),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused::Failed(e)
    }
}

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/gzip"
    }
}

/// The file a download link names, if the link is ours, for this export, not expired (by its
/// own expiry and by the export's, which an operator may shorten), and the file is kept.
pub async fn open_download(
    db: &DatabaseConnection,
    cipher: &Cipher,
    data_dir: &Path,
    id: Uuid,
    token: &str,
    now: DateTime<Utc>,
) -> std::result::Result<Download, Refused> {
    let org = links::verify(cipher, links::DOWNLOAD, id, token, now).map_err(Refused::Link)?;
    let m = match find(db, org, id).await {
        Ok(m) => m,
        Err(Error::NotFound { .. }) => return Err(Refused::Gone),
        Err(e) => return Err(e.into()),
    };
    if m.expires_at.is_some_and(|e| e <= now) {
        return Err(Refused::Link(LinkError::Expired));
    }
    let Some(file) = m
        .file_name
        .clone()
        .filter(|_| m.status == status::SUCCEEDED)
    else {
        return Err(Refused::Gone);
    };
    let path = dir(data_dir).join(&file);
    if !path.exists() {
        return Err(Refused::Gone);
    }
    let ext = file.split_once('.').map_or("", |(_, e)| e);
    Ok(Download {
        content_type: content_type(&file),
        file_name: format!(
            "devsignal-export-{}.{ext}",
            m.created_at.format("%Y%m%d-%H%M%S")
        ),
        path,
    })
}

/// Deletes the files of exports expired by `now` and marks them EXPIRED; returns how many.
pub async fn delete_expired(
    db: &DatabaseConnection,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut n = 0;
    loop {
        let expired = exports::Entity::find()
            .filter(exports::Column::ExpiresAt.lte(now))
            .filter(exports::Column::Status.is_in([
                status::SUCCEEDED,
                status::QUEUED,
                status::RUNNING,
                status::FAILED,
            ]))
            .order_by_asc(exports::Column::ExpiresAt)
            .limit(500)
            .all(db)
            .await?;
        if expired.is_empty() {
            return Ok(n);
        }
        for m in expired {
            if let Some(f) = &m.file_name {
                match std::fs::remove_file(dir(data_dir).join(f)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Internal(format!(
                            "deleting an expired export file failed: {e}"
                        )));
                    }
                }
            }
            // A job still waiting or running for it will find it EXPIRED and stop.
            exports::Entity::update_many()
                .col_expr(exports::Column::Status, Expr::value(status::EXPIRED))
                .col_expr(
                    exports::Column::FileName,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(exports::Column::UpdatedAt, Expr::value(now))
                .filter(exports::Column::Id.eq(m.id))
                .exec(db)
                .await?;
            n += 1;
        }
    }
}

/// Marks export `id` failed with a public `reason` (its job gave up).
pub async fn fail(db: &DatabaseConnection, id: Uuid, reason: &str) -> Result<()> {
    let now = Utc::now();
    exports::Entity::update_many()
        .col_expr(exports::Column::Status, Expr::value(status::FAILED))
        .col_expr(exports::Column::Error, Expr::value(reason))
        .col_expr(exports::Column::FinishedAt, Expr::value(now))
        .col_expr(exports::Column::UpdatedAt, Expr::value(now))
        .filter(exports::Column::Id.eq(id))
        .filter(exports::Column::Status.is_in([status::QUEUED, status::RUNNING]))
        .exec(db)
        .await?;
    Ok(())
}

/// One keyset page of `kind` of `org` after `after`: rows as JSON, and the last id.
async fn page(
    db: &DatabaseConnection,
    org: Uuid,
    kind: Kind,
    after: Option<Uuid>,
) -> Result<(Vec<Value>, Option<Uuid>)> {
    macro_rules! page_of {
        ($m:ident, $row:expr) => {{
            use entity::$m::{Column, Entity};
            let mut q = Entity::find().filter(Column::OrganizationId.eq(org));
            if let Some(a) = after {
                q = q.filter(Column::Id.gt(a));
            }
            let rows = q.order_by_asc(Column::Id).limit(PAGE).all(db).await?;
            let last = rows.last().map(|r| r.id);
            (rows.iter().map($row).collect::<Vec<Value>>(), last)
        }};
    }
    Ok(match kind {
        Kind::Contacts => page_of!(contacts, crm::contacts::snapshot),
        Kind::Accounts => page_of!(companies, |m: &entity::companies::Model| {
            let mut v = crm::accounts::snapshot(m);
            v["score"] = json!(m.score);
            v
        }),
        Kind::Deals => page_of!(deals, crm::deals::snapshot),
        Kind::Signals => page_of!(signals, |m: &entity::signals::Model| json!({
            "id": m.id, "type": m.signal_type, "sourceId": m.source_id,
            "contactId": m.contact_id, "accountId": m.account_id,
            "anonymousId": m.anonymous_id, "metadata": m.metadata,
            "idempotencyKey": m.idempotency_key, "timestamp": m.timestamp,
            "createdAt": m.created_at,
        })),
        Kind::Activities => page_of!(activities, crm::activities::snapshot),
    })
}

/// A JSON value as one CSV cell: text as is, null empty, a list of texts joined by `, `,
/// other lists and objects as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(_) | Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("writing an export file failed: {e}"))
}

/// Writes every row of `kind` as CSV to `path`; returns the rows written.
async fn write_csv(db: &DatabaseConnection, org: Uuid, kind: Kind, path: &Path) -> Result<i64> {
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(path).map_err(io)?));
    w.write_record(kind.columns()).map_err(io)?;
    let mut after = None;
    let mut n = 0;
    loop {
        let (rows, last) = page(db, org, kind, after).await?;
        for r in &rows {
            w.write_record(kind.columns().iter().map(|c| cell(&r[*c])))
                .map_err(io)?;
        }
        n += rows.len() as i64;
        match last {
            Some(l) if rows.len() as u64 == PAGE => after = Some(l),
            _ => break,
        }
    }
    w.flush().map_err(io)?;
    Ok(n)
}

fn octal(buf: &mut [u8], v: u64) {
    let width = buf.len() - 1;
    let s = format!("{v:0width$o}");
    buf[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
    buf[width] = 0;
}

/// A ustar header for a regular file `name` of `size` bytes.
fn tar_header(name: &str, size: u64, mtime: i64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.as_bytes();
    h[..n.len().min(99)].copy_from_slice(&n[..n.len().min(99)]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], u64::try_from(mtime).unwrap_or(0));
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

/// Writes the export's file; returns (its name under [`dir`], rows written).
async fn write_file(
    db: &DatabaseConnection,
    data_dir: &Path,
    m: &exports::Model,
) -> Result<(String, i64)> {
    let folder = dir(data_dir);
    std::fs::create_dir_all(&folder).map_err(io)?;
    let kinds = kinds_of(m);
    let org = m.organization_id;
    if m.format == format::JSON {
        let name = format!("{}.jsonl.gz", m.id);
        let part = folder.join(format!("{name}.part"));
        let mut gz = GzEncoder::new(
            BufWriter::new(File::create(&part).map_err(io)?),
            Compression::default(),
        );
        let mut n = 0;
        for kind in kinds {
            let mut after = None;
            loop {
                let (rows, last) = page(db, org, kind, after).await?;
                for r in &rows {
                    let line = json!({"entity": kind.as_str(), "row": r});
                    serde_json::to_writer(&mut gz, &line).map_err(io)?;
                    gz.write_all(b"\n").map_err(io)?;
                }
                n += rows.len() as i64;
                match last {
                    Some(l) if rows.len() as u64 == PAGE => after = Some(l),
                    _ => break,
                }
            }
        }
        gz.finish().map_err(io)?.flush().map_err(io)?;
        std::fs::rename(&part, folder.join(&name)).map_err(io)?;
        return Ok((name, n));
    }
    if let [kind] = kinds.as_slice() {
        let name = format!("{}.csv", m.id);
        let part = folder.join(format!("{name}.part"));
        let n = write_csv(db, org, *kind, &part).await?;
        std::fs::rename(&part, folder.join(&name)).map_err(io)?;
        return Ok((name, n));
    }
    // Several entities as CSV: one file each, then a gzip'd tar of them.
    let name = format!("{}.tar.gz", m.id);
    let part = folder.join(format!("{name}.part"));
    let mut gz = GzEncoder::new(
        BufWriter::new(File::create(&part).map_err(io)?),
        Compression::default(),
    );
    let mut n = 0;
    let mtime = Utc::now().timestamp();
    for kind in kinds {
        let member = folder.join(format!("{}.{}.csv.part", m.id, kind.file_stem()));
        n += write_csv(db, org, kind, &member).await?;
        let size = std::fs::metadata(&member).map_err(io)?.len();
        gz.write_all(&tar_header(
            &format!("{}.csv", kind.file_stem()),
            size,
            mtime,
        ))
        .map_err(io)?;
        let mut f = File::open(&member).map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = f.read(&mut buf).map_err(io)?;
            if read == 0 {
                break;
            }
            gz.write_all(&buf[..read]).map_err(io)?;
        }
        let pad = (512 - (size % 512)) % 512;
        gz.write_all(&vec![0u8; pad as usize]).map_err(io)?;
        std::fs::remove_file(&member).map_err(io)?;
    }
    gz.write_all(&[0u8; 1024]).map_err(io)?;
    gz.finish().map_err(io)?.flush().map_err(io)?;
    std::fs::rename(&part, folder.join(&name)).map_err(io)?;
    Ok((name, n))
}

/// The `export-data` job for export `id`: writes its file (from scratch, also after a crash)
/// and records the outcome. An export no longer waiting or running is left alone.
#[tracing::instrument(name = "exports.run", skip_all, fields(exportId = %id))]
pub async fn run(db: &DatabaseConnection, data_dir: &Path, id: Uuid) -> Result<i64> {
    let Some(m) = exports::Entity::find_by_id(id).one(db).await? else {
        return Ok(0);
    };
    if m.status != status::QUEUED && m.status != status::RUNNING {
        return Ok(0);
    }
    let mut am: exports::ActiveModel = m.clone().into();
    am.status = Set(status::RUNNING.into());
    am.updated_at = Set(Utc::now());
    am.update(db).await?;
    let (file, rows) = write_file(db, data_dir, &m).await?;
    let size = std::fs::metadata(dir(data_dir).join(&file))
        .map_err(io)?
        .len();
    let now = Utc::now();
    let done = exports::Entity::update_many()
        .col_expr(exports::Column::Status, Expr::value(status::SUCCEEDED))
        .col_expr(exports::Column::Rows, Expr::value(rows))
        .col_expr(
            exports::Column::SizeBytes,
            Expr::value(i64::try_from(size).unwrap_or(i64::MAX)),
        )
        .col_expr(exports::Column::FileName, Expr::value(file.clone()))
        .col_expr(exports::Column::FinishedAt, Expr::value(now))
        .col_expr(exports::Column::UpdatedAt, Expr::value(now))
        .filter(exports::Column::Id.eq(id))
        .filter(exports::Column::Status.eq(status::RUNNING))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        // Expired (or failed) meanwhile: the file is not kept.
        let _ = std::fs::remove_file(dir(data_dir).join(&file));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_are_ustar_with_a_valid_checksum() {
        let h = tar_header("contacts.csv", 1234, 0);
        assert_eq!(&h[..12], b"contacts.csv");
        assert_eq!(&h[124..135], b"00000002322");
        assert_eq!(&h[257..262], b"ustar");
        let mut copy = h;
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|b| u64::from(*b)).sum();
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(stored, 8).unwrap(), sum);
    }

    #[test]
    fn cells_are_text() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!({"k": 1})), "{\"k\":1}");
        assert_eq!(cell(&json!(2.5)), "2.5");
    }
}
