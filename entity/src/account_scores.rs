//! An account's current PQA score with its explanation (`factors`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_scores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    pub organization_id: Uuid,
    pub score: i32,
    pub tier: String,
    pub trend: String,
    pub factors: Json,
    pub signal_count: i32,
    pub user_count: i32,
    pub last_signal_at: Option<DateTimeUtc>,
    pub config_version: i32,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
