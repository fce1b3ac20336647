//! One event (or test message) to send to one endpoint; its `id` is the `webhook-id` header,
//! stable across retries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub endpoint_id: Uuid,
    /// The event log entry this delivery carries (none for test messages).
    pub event_seq: Option<i64>,
    pub event_type: String,
    pub event_at: DateTimeUtc,
    /// The JSON body sent, `{"type", "timestamp", "data"}`.
    pub body: Json,
    /// PENDING, SUCCEEDED or FAILED.
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
