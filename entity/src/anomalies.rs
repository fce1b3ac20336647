//! One detected signal anomaly: an account's signal count on a UTC day far outside its 30-day
//! baseline (a SPIKE or a DROP), with the statistics that judged it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "anomalies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub account_id: Uuid,
    /// SPIKE or DROP.
    pub kind: String,
    /// MODERATE or HIGH.
    pub severity: String,
    /// The UTC day judged.
    pub day: Date,
    /// The signals of that day when it was judged.
    pub today_count: i64,
    pub mean: f64,
    pub stddev: f64,
    pub z_score: f64,
    pub expected_min: i64,
    pub expected_max: i64,
    pub detected_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
