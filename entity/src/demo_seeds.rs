//! Demo data seeded into an organization by `seedDemoData`: the ids of everything it created,
//! so `removeDemoData` deletes exactly those rows.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "demo_seeds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    pub seeded_by: Option<Uuid>,
    /// `{"accounts": [ids], "contacts": [...], "signals": [...], "deals": [...],
    /// "activities": [...], "alertRules": [...]}`.
    pub objects: Json,
    pub seeded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
