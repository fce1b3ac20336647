//! An organization's outbound webhook endpoint. The signing secret is stored encrypted; during a
//! rotation the previous one is kept until `previous_secret_expires_at`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Json,
    pub filter: Option<Json>,
    pub enabled: bool,
    /// HEALTHY, FAILING or DISABLED.
    pub status: String,
    pub disabled_reason: Option<String>,
    pub secret_ciphertext: String,
    pub previous_secret_ciphertext: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Start of the current run of failed attempts (none since the last success).
    pub failing_since: Option<DateTimeUtc>,
    /// The worker sending this endpoint's deliveries, until `lease_until`.
    pub leased_by: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// Deliveries carry the changed object's current fields under `object`, read when sent.
    pub include_object: bool,
    /// The scopes the object is read with: the API key's that turned `include_object` on (a
    /// JSON list), or null when a person did (every scope).
    pub object_scopes: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
