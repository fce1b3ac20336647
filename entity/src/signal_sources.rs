//! Where signals come from: the built-in API and Segment sources, and configured connectors.
//! `config` is the public part of the configuration; secrets live sealed in `secret_ciphertext`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signal_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: String,
    pub name: String,
    pub status: String,
    pub config: Json,
    pub secret_ciphertext: Option<String>,
    /// `api` or `segment` for the built-in sources, else NULL.
    pub system_key: Option<String>,
    pub last_sync_at: Option<DateTimeUtc>,
    pub error_message: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
