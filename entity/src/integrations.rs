//! An organization's connected outside source (GitHub, npm, PyPI, …): public `config`, sealed
//! credentials and webhook secret, status and schedule, and the lease of the one run in progress.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// GITHUB, NPM, PYPI, …
    pub kind: String,
    /// CONNECTED, SYNCING, BACKOFF, ERROR or DISCONNECTED.
    pub status: String,
    pub config: Json,
    pub credentials_ciphertext: Option<String>,
    pub webhook_secret_ciphertext: String,
    /// The signal source its signals carry.
    pub source_id: Uuid,
    pub last_sync_at: Option<DateTimeUtc>,
    pub last_success_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// The source refused the credentials: no scheduled run until they change.
    pub credentials_rejected: bool,
    pub next_sync_at: Option<DateTimeUtc>,
    /// Consecutive runs that failed on transient errors (widens the backoff).
    pub failure_streak: i32,
    pub running_run_id: Option<Uuid>,
    pub run_lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
