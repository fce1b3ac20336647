//! Where an integration stands in one resource (a repository's stargazers, a user's profile, a
//! package's downloads): a paging position or cached payload, with the validators of the last
//! response for conditional requests.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_cursors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    pub organization_id: Uuid,
    pub state: Json,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
