//! The running configuration's plan enforcement, mirrored into the database at start (one row,
//! id 1) so every process enforces the same limits.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// `PLAN_ENFORCEMENT`: whether plan limits apply.
    pub enforce: bool,
    /// `BILLING_GRACE_DAYS`: how long a past-due subscription keeps its plan.
    pub grace_days: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
