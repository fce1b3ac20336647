//! An organization's alert rule: a trigger with its parameters, filters, recipients and cooldown.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub trigger: String,
    pub params: Json,
    pub filter: Json,
    /// User ids told; empty: every member.
    pub recipients: Json,
    pub cooldown_minutes: i32,
    pub enabled: bool,
    /// Time-based triggers: the moment up to which the rule was checked.
    pub checked_until: Option<DateTimeUtc>,
    /// `{inApp, email}`; absent: in-app only.
    pub channels: Option<Json>,
    /// The Slack incoming webhook posts go to, sealed.
    pub slack_url: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
