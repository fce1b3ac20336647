//! CSV imports and data exports over GraphQL. The bytes themselves travel over REST
//! (`http::transfers`): `createImport` returns the import with a signed upload URL,
//! `ExportJob.downloadUrl` is a signed download URL. Everything else is here: the import's
//! mapping (guessed, editable), its dry run, its start and progress (`importJob`,
//! `importProgress`), and exports (`exportData`, `exportJob`).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::events::EventType;
use domain::transfers::mapping::ColumnMapping;
use domain::transfers::{Entity, exports, imports};
use entity::{exports as export_rows, imports as import_rows};
use futures::{Stream, StreamExt};

use super::common::{db, meta, parse_id, state};
use crate::graphql::{GqlResultExt, actor, gql_error};

/// What an import creates or updates.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportEntity {
    Contacts,
    Accounts,
    Deals,
}

impl From<ImportEntity> for Entity {
    fn from(e: ImportEntity) -> Self {
        match e {
            ImportEntity::Contacts => Entity::Contacts,
            ImportEntity::Accounts => Entity::Accounts,
            ImportEntity::Deals => Entity::Deals,
        }
    }
}

/// Where an import stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportStatus {
    /// Created; upload the file to `uploadUrl`.
    AwaitingUpload,
    /// The file is uploaded and read: edit the mapping, make a dry run, start it.
    Ready,
    Queued,
    Running,
    Succeeded,
    /// Stopped for good (`lastError` says why); committed batches are kept.
    Failed,
}

/// Where a file comes from, as its headers tell: HubSpot and Salesforce exports are recognised
/// (their columns map and their deal stages map to ours).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ImportSource {
    Generic,
    Hubspot,
    Salesforce,
}

/// One column of the file and the field it fills (null: ignored).
#[derive(SimpleObject)]
pub struct ImportColumnMapping {
    pub column: String,
    pub field: Option<String>,
}

/// One column's target, as a client sets it.
#[derive(InputObject)]
pub struct ImportColumnMappingInput {
    /// A column of the file, as its header names it.
    pub column: String,
    /// A field of the import's entity (see `ImportJob.fields`); null ignores the column.
    pub field: Option<String>,
}

/// A row that was (or would be) left out, and why.
#[derive(SimpleObject)]
pub struct ImportRowError {
    /// The data row, 1-based (the header line is not a row).
    pub row: i64,
    /// The file line the row starts on.
    pub line: Option<i64>,
    pub field: String,
    pub message: String,
}

impl From<domain::transfers::RowError> for ImportRowError {
    fn from(e: domain::transfers::RowError) -> Self {
        ImportRowError {
            row: e.row,
            line: e.line,
            field: e.field,
            message: e.message,
        }
    }
}

/// A CSV import: its file, mapping and progress.
pub struct ImportJob(pub import_rows::Model);

#[Object]
impl ImportJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn entity(&self) -> async_graphql::Result<ImportEntity> {
        Ok(match Entity::parse(&self.0.entity) {
            Some(Entity::Contacts) => ImportEntity::Contacts,
            Some(Entity::Accounts) => ImportEntity::Accounts,
            Some(Entity::Deals) => ImportEntity::Deals,
            None => return Err(gql_error(domain::Error::Internal("unknown entity".into()))),
        })
    }
    async fn status(&self) -> async_graphql::Result<ImportStatus> {
        use imports::status as s;
        Ok(match self.0.status.as_str() {
            s::AWAITING_UPLOAD => ImportStatus::AwaitingUpload,
            s::READY => ImportStatus::Ready,
            s::QUEUED => ImportStatus::Queued,
            s::RUNNING => ImportStatus::Running,
            s::SUCCEEDED => ImportStatus::Succeeded,
            s::FAILED => ImportStatus::Failed,
            _ => return Err(gql_error(domain::Error::Internal("unknown status".into()))),
        })
    }
    async fn source(&self) -> ImportSource {
        match domain::transfers::Source::parse(&self.0.source) {
            domain::transfers::Source::HubSpot => ImportSource::Hubspot,
            domain::transfers::Source::Salesforce => ImportSource::Salesforce,
            domain::transfers::Source::Generic => ImportSource::Generic,
        }
    }
    /// The uploaded file's size.
    async fn size_bytes(&self) -> Option<i64> {
        self.0.size_bytes
    }
    /// The separator read from the header line: `,`, `;` or a tab.
    async fn delimiter(&self) -> Option<&str> {
        self.0.delimiter.as_deref()
    }
    /// The file's columns, as its header line names them.
    async fn headers(&self) -> Vec<String> {
        imports::headers_of(&self.0)
    }
    /// Each column and the field it fills: guessed from the headers, changed by
    /// `updateImportMapping`.
    async fn mapping(&self) -> Vec<ImportColumnMapping> {
        imports::mapping_of(&self.0)
            .into_iter()
            .map(|m| ImportColumnMapping {
                column: m.column,
                field: m.field,
            })
            .collect()
    }
    /// The fields a column may fill for this entity.
    async fn fields(&self) -> Vec<&'static str> {
        Entity::parse(&self.0.entity)
            .map(|e| e.fields().iter().map(|(f, _)| *f).collect())
            .unwrap_or_default()
    }
    /// Data rows in the file.
    async fn total(&self) -> i64 {
        self.0.total
    }
    /// Data rows whose batch is committed.
    async fn processed(&self) -> i64 {
        self.0.processed
    }
    async fn created(&self) -> i64 {
        self.0.created
    }
    async fn updated(&self) -> i64 {
        self.0.updated
    }
    /// Rows that matched an existing object and changed nothing.
    async fn unchanged(&self) -> i64 {
        self.0.unchanged
    }
    /// Rows left out (see `errors`).
    async fn failed(&self) -> i64 {
        self.0.failed
    }
    /// Why rows were left out, by row (those of the first 10,000 failed rows are kept).
    async fn errors(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
    ) -> async_graphql::Result<Vec<ImportRowError>> {
        let limit = u64::try_from(first.clamp(1, 1000)).unwrap_or(100);
        Ok(imports::errors(&*db(ctx).await?, &self.0, limit)
            .await
            .gql()?
            .into_iter()
            .map(ImportRowError::from)
            .collect())
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// A new import and where to send its file.
pub struct ImportUpload {
    import: import_rows::Model,
    url: String,
    expires_at: DateTime<Utc>,
}

#[Object]
impl ImportUpload {
    async fn import(&self) -> ImportJob {
        ImportJob(self.import.clone())
    }
    /// `PUT` (or `POST`) the raw CSV file here (UTF-8, `,` `;` or tab separated, a header
    /// line first); no other credentials are needed.
    async fn upload_url(&self) -> &str {
        &self.url
    }
    async fn upload_expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// A dry run: every row validated as the import would, nothing written.
#[derive(SimpleObject)]
pub struct ImportPreview {
    pub total: i64,
    pub would_create: i64,
    pub would_update: i64,
    pub unchanged: i64,
    pub invalid: i64,
    /// The first 1,000 errors.
    pub errors: Vec<ImportRowError>,
}

fn import_id(id: &ID) -> async_graphql::Result<uuid::Uuid> {
    parse_id(id, "Import").gql()
}

#[derive(Default)]
pub struct ImportQuery;

#[Object]
impl ImportQuery {
    /// An import of the organization, with its progress (who may write its entity).
    async fn import_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ImportJob> {
        let id = import_id(&id)?;
        let m = imports::get(&*db(ctx).await?, actor(ctx)?, id)
            .await
            .gql()?;
        Ok(ImportJob(m))
    }

    /// Reads and validates every row of a READY import exactly as the import will, writing
    /// nothing: what it would create and update, and each invalid row's errors.
    async fn preview_import(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ImportPreview> {
        let id = import_id(&id)?;
        let st = state(ctx)?;
        let p = imports::preview(&st.db, actor(ctx)?, &st.config.data_dir, id)
            .await
            .gql()?;
        Ok(ImportPreview {
            total: p.total,
            would_create: p.would_create,
            would_update: p.would_update,
            unchanged: p.unchanged,
            invalid: p.invalid,
            errors: p.errors.into_iter().map(ImportRowError::from).collect(),
        })
    }
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Creates an import of contacts, accounts or deals (MEMBER, or a key with the entity's
    /// `:write` scope) and returns where to upload its CSV file (a signed URL, valid an hour).
    async fn create_import(
        &self,
        ctx: &Context<'_>,
        entity: ImportEntity,
    ) -> async_graphql::Result<ImportUpload> {
        let st = state(ctx)?;
        let m = imports::create(&st.db, actor(ctx)?, &meta(ctx), entity.into())
            .await
            .gql()?;
        let (token, expires_at) = imports::upload_token(st.webhooks.cipher(), &m, Utc::now());
        let url = crate::transfer_links::upload_url(&st.config.api_url, m.id, &token);
        Ok(ImportUpload {
            import: m,
            url,
            expires_at,
        })
    }

    /// Replaces which column fills which field (columns not named are ignored). An unknown
    /// column or field is `BAD_USER_INPUT` naming `mapping.<i>.column` / `mapping.<i>.field`.
    async fn update_import_mapping(
        &self,
        ctx: &Context<'_>,
        id: ID,
        mapping: Vec<ImportColumnMappingInput>,
    ) -> async_graphql::Result<ImportJob> {
        let id = import_id(&id)?;
        let given = mapping
            .into_iter()
            .map(|m| ColumnMapping {
                column: m.column,
                field: m.field,
            })
            .collect();
        let m = imports::update_mapping(&*db(ctx).await?, actor(ctx)?, id, given)
            .await
            .gql()?;
        Ok(ImportJob(m))
    }

    /// Starts a READY import in the background (batches of 500 rows); follow it with
    /// `importJob` or `importProgress`.
    async fn start_import(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ImportJob> {
        let id = import_id(&id)?;
        let m = imports::start(&*db(ctx).await?, actor(ctx)?, &meta(ctx), id)
            .await
            .gql()?;
        Ok(ImportJob(m))
    }
}

#[derive(Default)]
pub struct ImportSubscription;

#[Subscription]
impl ImportSubscription {
    /// The import now, then again after each committed batch, until it succeeds or fails.
    async fn import_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ImportJob> + use<>> {
        let id = import_id(&id)?;
        let actor = actor(ctx)?.clone();
        let db = state(ctx)?.db.clone();
        let first = imports::get(&db, &actor, id).await.gql()?;
        // Follow first, then read: a batch committed in between is still heard.
        let events =
            crate::graphql::live::follow(ctx, vec![EventType::ImportProgress.to_string()], None)
                .await?;
        let first = imports::get(&db, &actor, id).await.unwrap_or(first);
        let id_text = id.to_string();
        let finished = |m: &import_rows::Model| {
            m.status == imports::status::SUCCEEDED || m.status == imports::status::FAILED
        };
        Ok(async_stream::stream! {
            let mut last = first.clone();
            let done = finished(&first);
            yield ImportJob(first);
            if done {
                return;
            }
            let mut events = std::pin::pin!(events);
            while let Some(e) = events.next().await {
                if e.payload.get("importId").and_then(|v| v.as_str()) != Some(id_text.as_str()) {
                    continue;
                }
                match imports::get(&db, &actor, id).await {
                    Ok(m) => {
                        if m != last {
                            last = m.clone();
                            let done = finished(&m);
                            yield ImportJob(m);
                            if done {
                                return;
                            }
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading an import's progress failed");
                    }
                }
            }
        })
    }
}

/// What an export may hold.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ExportEntity {
    Contacts,
    Accounts,
    Deals,
    Signals,
    Activities,
}

impl From<ExportEntity> for exports::Kind {
    fn from(e: ExportEntity) -> Self {
        match e {
            ExportEntity::Contacts => exports::Kind::Contacts,
            ExportEntity::Accounts => exports::Kind::Accounts,
            ExportEntity::Deals => exports::Kind::Deals,
            ExportEntity::Signals => exports::Kind::Signals,
            ExportEntity::Activities => exports::Kind::Activities,
        }
    }
}

impl From<exports::Kind> for ExportEntity {
    fn from(k: exports::Kind) -> Self {
        match k {
            exports::Kind::Contacts => ExportEntity::Contacts,
            exports::Kind::Accounts => ExportEntity::Accounts,
            exports::Kind::Deals => ExportEntity::Deals,
            exports::Kind::Signals => ExportEntity::Signals,
            exports::Kind::Activities => ExportEntity::Activities,
        }
    }
}

/// An export's file format.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ExportFormat {
    /// One entity: a `.csv`; several: a `.tar.gz` with one `<entity>.csv` each.
    Csv,
    /// Gzip'd JSON lines: `{"entity": "CONTACTS", "row": {…}}` per line.
    Json,
}

/// Where an export stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ExportStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Its link expired and its file was deleted.
    Expired,
}

/// An export of the organization's data.
pub struct ExportJob(pub export_rows::Model);

#[Object]
impl ExportJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> async_graphql::Result<ExportStatus> {
        use exports::status as s;
        Ok(match self.0.status.as_str() {
            s::QUEUED => ExportStatus::Queued,
            s::RUNNING => ExportStatus::Running,
            s::SUCCEEDED => ExportStatus::Succeeded,
            s::FAILED => ExportStatus::Failed,
            s::EXPIRED => ExportStatus::Expired,
            _ => return Err(gql_error(domain::Error::Internal("unknown status".into()))),
        })
    }
    async fn entities(&self) -> Vec<ExportEntity> {
        exports::kinds_of(&self.0)
            .into_iter()
            .map(ExportEntity::from)
            .collect()
    }
    async fn format(&self) -> ExportFormat {
        if self.0.format == exports::format::JSON {
            ExportFormat::Json
        } else {
            ExportFormat::Csv
        }
    }
    /// Rows written.
    async fn rows(&self) -> i64 {
        self.0.rows
    }
    async fn size_bytes(&self) -> Option<i64> {
        self.0.size_bytes
    }
    /// A signed link to the file, once it is written and while it is kept (no other
    /// credentials needed; it stops working at `expiresAt`).
    async fn download_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let st = state(ctx)?;
        Ok(
            exports::download_token(st.webhooks.cipher(), &self.0).map(|token| {
                crate::transfer_links::download_url(&st.config.api_url, self.0.id, &token)
            }),
        )
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

#[derive(Default)]
pub struct ExportQuery;

#[Object]
impl ExportQuery {
    /// An export of the organization (ADMIN).
    async fn export_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ExportJob> {
        let id = parse_id(&id, "Export").gql()?;
        let m = exports::get(&*db(ctx).await?, actor(ctx)?, id)
            .await
            .gql()?;
        Ok(ExportJob(m))
    }

    /// The organization's newest exports first (ADMIN), `first` of them (1 to 100).
    async fn exports(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<ExportJob>> {
        let limit = u64::try_from(first.clamp(1, 100)).unwrap_or(20);
        Ok(exports::list(&*db(ctx).await?, actor(ctx)?, limit)
            .await
            .gql()?
            .into_iter()
            .map(ExportJob)
            .collect())
    }
}

#[derive(Default)]
pub struct ExportMutation;

#[Object]
impl ExportMutation {
    /// Exports the organization's data (ADMIN) in the background; `exportJob(id)` says when its
    /// file is ready and gives its signed download link.
    async fn export_data(
        &self,
        ctx: &Context<'_>,
        entities: Vec<ExportEntity>,
        format: ExportFormat,
    ) -> async_graphql::Result<ExportJob> {
        let st = state(ctx)?;
        let ttl = chrono::Duration::from_std(st.config.export_link_ttl)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let fmt = match format {
            ExportFormat::Csv => exports::format::CSV,
            ExportFormat::Json => exports::format::JSON,
        };
        let m = exports::create(
            &*db(ctx).await?,
            actor(ctx)?,
            &meta(ctx),
            entities.into_iter().map(Into::into).collect(),
            fmt,
            ttl,
        )
        .await
        .gql()?;
        Ok(ExportJob(m))
    }
}
