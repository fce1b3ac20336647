//! Which outside record (HubSpot, Salesforce) one of our accounts, contacts or deals is: the
//! mapping that makes a second push an update, with what was last pushed (`pushed_hash`) and the
//! values last seen in sync (`synced`, the base of the conflict policy and the loop guard).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_ids")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `HUBSPOT` or `SALESFORCE`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub system: String,
    /// `account`, `contact` or `deal`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub local_id: Uuid,
    pub external_id: String,
    /// A hash of the values last pushed (nothing is sent while they are unchanged).
    pub pushed_hash: Option<String>,
    pub pushed_at: Option<DateTimeUtc>,
    /// The shared and CRM-owned field values as of the last sync, both sides agreeing.
    pub synced: Json,
    /// The CRM's modification time of the record when last pulled.
    pub remote_modified_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
