//! An organization's plan and the state of its Stripe subscription. No row: the free plan,
//! active, no customer yet.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `free`, `pro`, `growth` or `scale`.
    pub plan: String,
    /// `ACTIVE`, `TRIALING`, `PAST_DUE`, `CANCELED`, `UNPAID` or `INCOMPLETE`.
    pub status: String,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub stripe_price_id: Option<String>,
    pub current_period_end: Option<DateTimeUtc>,
    pub cancel_at_period_end: bool,
    /// When the subscription became past due (the grace period counts from here).
    pub past_due_since: Option<DateTimeUtc>,
    /// The Stripe event time of the subscription state applied last: an older event changes
    /// nothing.
    pub state_at: Option<DateTimeUtc>,
    /// Limits an operator set for this organization alone (`devsignal billing set --limit`):
    /// `{"contacts": 50000, "members": null}` (null: unlimited); a limit not named is the plan's.
    pub limit_overrides: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
