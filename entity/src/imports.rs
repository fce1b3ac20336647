//! One CSV import: the uploaded file (under `DATA_DIR/imports/`), its column mapping, and its
//! progress, written with each committed batch so a restart resumes after it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "imports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// CONTACTS, ACCOUNTS or DEALS.
    pub entity: String,
    /// AWAITING_UPLOAD, READY, QUEUED, RUNNING, SUCCEEDED or FAILED.
    pub status: String,
    /// GENERIC, HUBSPOT or SALESFORCE (recognised from the headers).
    pub source: String,
    pub size_bytes: Option<i64>,
    /// The separator detected from the header line (`,`, `;` or a tab).
    pub delimiter: Option<String>,
    /// The header line's column names, in order.
    pub headers: Json,
    /// `[{column, field}]`: each column's target field (null: ignored).
    pub mapping: Json,
    /// Data rows in the file.
    pub total: i64,
    /// Data rows whose batch is committed (the resume point).
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    /// Rows that matched an existing object and changed nothing.
    pub unchanged: i64,
    pub failed: i64,
    pub job_id: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    pub requested_by_key: Option<Uuid>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
