//! A cron entry's run-time state set by an operator: disabled entries enqueue nothing at their
//! ticks. No row means enabled.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_schedule_states")]
pub struct Model {
    /// The cron entry's name (`jobs::registry::SCHEDULES`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub disabled: bool,
    pub disabled_at: Option<DateTimeUtc>,
    /// Who disabled it (the operator's user and host, as the command line saw them).
    pub disabled_by: Option<String>,
    pub reason: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
