//! A person erased under GDPR art. 17, remembered only as hashes: SHA-256 of (organization,
//! kind, normalised value) for each identifier they had (email, GitHub login, …), so nothing
//! re-creates them, while the value itself is not kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erasure_tombstones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// Lower-case hex SHA-256.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: String,
    /// The identifier's kind (EMAIL, GITHUB, …): what was hashed, not the value.
    pub kind: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
