//! One merge of a duplicate contact into a primary: why (`reason`, `confidence`, `evidence`) and
//! everything needed to undo it exactly (`undo`). `undone_at` is set by an unmerge.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_merges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub primary_id: Uuid,
    pub merged_id: Uuid,
    /// `MANUAL` or `AUTO`.
    pub reason: String,
    pub confidence: Option<f64>,
    pub evidence: Json,
    pub undo: Json,
    pub merged_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub undone_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
