//! An organization's own Anthropic API key (bring your own key), sealed under `ENCRYPTION_KEY`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique: one key per organization.
    pub organization_id: Uuid,
    pub api_key_ciphertext: String,
    /// The key's first characters (`sk-ant-api`), to recognise it; never the key.
    pub api_key_prefix: String,
    pub updated_by: Option<Uuid>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
