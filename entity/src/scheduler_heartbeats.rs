//! One running cron scheduler (in `serve` or `worker`): it writes `beat_at` every few seconds and
//! `stopped_at` when it shuts down cleanly.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduler_heartbeats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance_id: String,
    pub host: String,
    pub pid: i32,
    pub started_at: DateTimeUtc,
    pub beat_at: DateTimeUtc,
    pub stopped_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
