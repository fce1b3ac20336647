//! Which of our objects a source's record id became on import (a HubSpot "Record ID", a
//! Salesforce opportunity id), so the same file imported again updates it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// DEALS.
    #[sea_orm(primary_key, auto_increment = false)]
    pub entity: String,
    /// `<source>:<record id>`, e.g. `hubspot:123`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub object_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
