//! A durable job: one unit of background work in a named queue.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub queue: String,
    pub name: String,
    pub payload: Json,
    pub organization_id: Option<Uuid>,
    /// waiting, active, completed or failed ("delayed" is waiting with `run_at` ahead).
    pub state: String,
    /// Lower runs first.
    pub priority: i32,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// The wait before the first retry; each next one waits twice as long (plus jitter).
    pub backoff_base_ms: i64,
    pub run_at: DateTimeUtc,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
