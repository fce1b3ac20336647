//! A row of an import that was not written, and why (the field and the message), committed with
//! the batch it belongs to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_errors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub import_id: Uuid,
    pub organization_id: Uuid,
    /// The data row, 1-based (the header line is not a row).
    pub row: i64,
    /// The file's line the row starts on.
    pub line: Option<i64>,
    pub field: String,
    pub message: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
