//! A whole-organization recompute of the PQA scores: its progress and keyset cursor (written
//! with each chunk's scores), so it can be watched and resumed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "score_recomputes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The organization's id while the recompute runs, NULL once finished (unique: one running
    /// recompute per organization).
    pub running_organization_id: Option<Uuid>,
    /// running, completed or failed.
    pub status: String,
    pub total: i64,
    pub processed: i64,
    /// The last account whose score is committed (accounts are taken in id order).
    pub cursor: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    /// The queue job carrying the recompute now.
    pub job_id: Option<Uuid>,
    pub last_error: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
