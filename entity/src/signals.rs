//! One developer signal: something a person or account did, at `timestamp` (event time).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub source_id: Uuid,
    #[sea_orm(column_name = "type")]
    pub signal_type: String,
    pub contact_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub anonymous_id: Option<String>,
    pub metadata: Json,
    pub idempotency_key: Option<String>,
    pub dedupe_key: String,
    pub timestamp: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
