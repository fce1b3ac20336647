//! A cron tick already handled: (schedule name, tick time) is the primary key. `job_id` is the job
//! it enqueued; without one, `skipped` says why (`disabled`: the entry was disabled at the tick;
//! `duplicate`: an identical job was still waiting).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_cron_ticks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tick_at: DateTimeUtc,
    pub job_id: Option<Uuid>,
    pub skipped: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
