//! What enrichment did to one account or contact (`id` is the account's or contact's id): the
//! fields it filled, when and from which source, the last attempt's outcome and when the object
//! may be tried again.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrichments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `ACCOUNT` or `CONTACT`.
    pub object_type: String,
    /// The source of the last enrichment that filled something (`clearbit`).
    pub source: Option<String>,
    /// When enrichment last filled something.
    pub enriched_at: Option<DateTimeUtc>,
    /// Every field enrichment has filled (API names, `customFields.<key>` for custom fields).
    pub fields: Json,
    /// The last attempt: `ENRICHED`, `UNCHANGED`, `NO_DATA` or `PENDING`.
    pub outcome: String,
    pub attempted_at: DateTimeUtc,
    pub next_attempt_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
