//! One sync run of an integration, with what it cost and what it produced.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub integration_id: Uuid,
    /// RUNNING, SUCCEEDED, PARTIAL or FAILED.
    pub status: String,
    pub full: bool,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub signals_created: i32,
    pub requests: i32,
    pub error: Option<String>,
    /// Records a CRM sync sent to the CRM.
    pub pushed: i32,
    /// Records a CRM sync read from the CRM and applied.
    pub pulled: i32,
    /// Per-record errors: `[{object, id?, externalId?, message}]` (a CRM refusing one record).
    pub errors: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
