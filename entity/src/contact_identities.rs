//! An identifier (email, GitHub login, npm user, …) known to belong to a contact, with the
//! confidence and provenance of that link. Unique per (organization, kind, normalised value).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub contact_id: Uuid,
    pub kind: String,
    pub value: String,
    pub confidence: f64,
    pub verified: bool,
    pub provenance: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
