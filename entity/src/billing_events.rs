//! Every Stripe webhook event processed, by its id: a replayed event is answered without being
//! processed again.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_type: String,
    /// The event's own time (Stripe's `created`).
    pub created: DateTimeUtc,
    pub organization_id: Option<Uuid>,
    /// What processing it did (`applied`, `ignored: …`).
    pub outcome: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
