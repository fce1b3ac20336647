//! One entry of the event log. `seq` numbers rows as they are inserted; `position`, given once
//! the row's transaction has committed (`domain::events::sequence`), is the order consumers read
//! in and resume from (NULL until then).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub organization_id: Uuid,
    pub event_type: String,
    pub payload: Json,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub occurred_at: DateTimeUtc,
    pub position: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
