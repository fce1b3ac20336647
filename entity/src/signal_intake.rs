//! Signals accepted for later ingest: one row per accepted request, pending until the worker
//! ingests it, then kept (without its items) with the per-item results its receipt shows.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signal_intake")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The built-in source the items came through (`api`, `segment`).
    pub source: String,
    /// Who sent it: `key:<id>`, `user:<id>:<session>` or `integration:<id>`.
    pub principal: String,
    pub role: String,
    /// The API key's scopes when it was accepted (`[]` for others).
    pub scopes: Json,
    /// The validated items (`domain::signals::Input`); `[]` once processed.
    pub items: Json,
    pub item_count: i32,
    /// `pending` or `processed`.
    pub state: String,
    /// Per item: the stored signal, or why not (once processed).
    pub results: Option<Json>,
    pub received_at: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
