//! One export of an organization's data: the file under `DATA_DIR/exports/`, its status, rows
//! written and expiry (the signed download link's and the file's).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `["CONTACTS", "DEALS", …]`, in the order written.
    pub entities: Json,
    /// CSV or JSON.
    pub format: String,
    /// QUEUED, RUNNING, SUCCEEDED, FAILED or EXPIRED.
    pub status: String,
    pub rows: i64,
    pub size_bytes: Option<i64>,
    /// The file's name under `DATA_DIR/exports/` (null until written, and once deleted).
    pub file_name: Option<String>,
    pub job_id: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    pub error: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
