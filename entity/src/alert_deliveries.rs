//! One email or Slack post of an alert or a digest: what was sent, to whom, its attempts and
//! outcome (`PENDING`, `SENT`, `FAILED`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `ALERT` or `DIGEST`.
    pub kind: String,
    /// `EMAIL` or `SLACK`.
    pub channel: String,
    pub rule_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// The member an email goes to.
    pub user_id: Option<Uuid>,
    /// The email address, or the Slack webhook's host.
    pub target: String,
    /// A Slack post's webhook URL, sealed.
    pub sealed_url: Option<String>,
    /// What is sent: `{subject, text, html}` or `{text, blocks}`.
    pub content: Json,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
