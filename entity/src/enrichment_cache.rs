//! One answer of an enrichment source for one organization: a company by domain or a person by
//! email, found (with the facts read) or "no data", kept until `expires_at`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrichment_cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `company` or `person`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// The normalised domain or email.
    #[sea_orm(primary_key, auto_increment = false)]
    pub lookup: String,
    pub source: String,
    pub found: bool,
    pub data: Option<Json>,
    pub fetched_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
