//! Plans, their limits, and the organization's standing under them.
//!
//! The plans are data ([`PLANS`]): each names its limit on contacts, signals per calendar month,
//! members, AI briefs per month and integrations (`None`: unlimited). An organization's plan and
//! subscription state live in `billing_accounts` (no row: free, active); Stripe keeps them
//! current (`stripe`). Whether limits apply at all is the installation's choice
//! (`PLAN_ENFORCEMENT`; self-hosted installs are unlimited by default), mirrored into
//! `billing_settings` at start so every process agrees ([`configure`]).
//!
//! The effective plan ([`Standing`]) is the subscribed plan while the subscription is active or
//! trialing, and for `BILLING_GRACE_DAYS` after it became past due; then, and once it is
//! canceled or unpaid, the free plan's limits apply. Demo organizations never subscribe, so they
//! have the free plan's limits.
//!
//! Limits are checked where they can be crossed (`usage`): contacts created by hand, by import
//! and by ingest; signals stored by every ingest path; members invited or joining;
//! integrations connected; AI briefs. Crossing one answers `PLAN_LIMIT` naming the limit, its
//! value, the use and the plan. At 80 % and 100 % of a limit the organization's owners and admins
//! get a notification and the log an `organization.usage_warning` event, once per period.

pub mod signature;
pub mod stripe;
pub mod usage;

use chrono::{DateTime, Duration, Utc};
use entity::{billing_accounts, billing_settings};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use crate::Result;

/// One plan and its limits (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    /// The list price in US dollars per month (what the dashboard shows; Stripe's price is
    /// what is charged).
    pub monthly_usd: u32,
    pub contacts: Option<u64>,
    pub signals_per_month: Option<u64>,
    pub members: Option<u64>,
    pub ai_briefs_per_month: Option<u64>,
    pub integrations: Option<u64>,
}

/// Every plan, cheapest first.
pub const PLANS: &[Plan] = &[
    Plan {
        id: "free",
        name: "Free",
        monthly_usd: 0,
        contacts: Some(1_000),
        signals_per_month: Some(5_000),
        members: Some(1),
        ai_briefs_per_month: Some(0),
        integrations: Some(3),
    },
    Plan {
        id: "pro",
        name: "Pro",
        monthly_usd: 79,
        contacts: Some(25_000),
        signals_per_month: Some(100_000),
        members: Some(10),
        ai_briefs_per_month: Some(50),
        integrations: None,
    },
    Plan {
        id: "growth",
        name: "Growth",
        monthly_usd: 199,
        contacts: Some(100_000),
        signals_per_month: Some(500_000),
        members: Some(25),
        ai_briefs_per_month: Some(500),
        integrations: None,
    },
    Plan {
        id: "scale",
        name: "Scale",
        monthly_usd: 299,
        contacts: None,
        signals_per_month: None,
        members: None,
        ai_briefs_per_month: None,
        integrations: None,
    },
];

/// The plan an organization without a subscription has.
pub const FREE: &Plan = &PLANS[0];

/// The plan called `id`, if there is one.
pub fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

/// What a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Contacts,
    SignalsPerMonth,
    Members,
    AiBriefsPerMonth,
    Integrations,
}

impl Metric {
    pub const ALL: &[Metric] = &[
        Metric::Contacts,
        Metric::SignalsPerMonth,
        Metric::Members,
        Metric::AiBriefsPerMonth,
        Metric::Integrations,
    ];

    /// The limit's name in errors, events and the API.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Contacts => "contacts",
            Metric::SignalsPerMonth => "signalsPerMonth",
            Metric::Members => "members",
            Metric::AiBriefsPerMonth => "aiBriefsPerMonth",
            Metric::Integrations => "integrations",
        }
    }

    /// Whether it counts use in a calendar month (else what exists now).
    pub const fn monthly(self) -> bool {
        matches!(self, Metric::SignalsPerMonth | Metric::AiBriefsPerMonth)
    }
}

impl Plan {
    pub fn limit(&self, m: Metric) -> Option<u64> {
        match m {
            Metric::Contacts => self.contacts,
            Metric::SignalsPerMonth => self.signals_per_month,
            Metric::Members => self.members,
            Metric::AiBriefsPerMonth => self.ai_briefs_per_month,
            Metric::Integrations => self.integrations,
        }
    }
}

/// Subscription states, as stored.
pub mod status {
    pub const ACTIVE: &str = "ACTIVE";
    pub const TRIALING: &str = "TRIALING";
    pub const PAST_DUE: &str = "PAST_DUE";
    pub const CANCELED: &str = "CANCELED";
    pub const UNPAID: &str = "UNPAID";
    pub const INCOMPLETE: &str = "INCOMPLETE";
}

/// The installation's billing policy (`billing_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `PLAN_ENFORCEMENT`.
    pub enforce: bool,
    /// `BILLING_GRACE_DAYS`.
    pub grace_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enforce: false,
            grace_days: 7,
        }
    }
}

/// Records the running configuration's policy (called at start by every process that serves or
/// works).
pub async fn configure(db: &impl ConnectionTrait, policy: Policy) -> Result<()> {
    use billing_settings::Column as C;
    billing_settings::Entity::insert(billing_settings::ActiveModel {
        id: Set(1),
        enforce: Set(policy.enforce),
        grace_days: Set(i32::try_from(policy.grace_days).unwrap_or(i32::MAX)),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(C::Id)
            .update_columns([C::Enforce, C::GraceDays, C::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The policy in force (the default, unenforced, before any process recorded one).
pub async fn policy(db: &impl ConnectionTrait) -> Result<Policy> {
    Ok(billing_settings::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or_else(Policy::default, |s| Policy {
            enforce: s.enforce,
            grace_days: u32::try_from(s.grace_days).unwrap_or(0),
        }))
}

/// The columns that read the policy in force along with another query's row (one statement
/// instead of two, for a path that needs both): add them with `expr_as`, then read them back
/// with [`Policy::from_row`].
pub fn policy_columns() -> [(sea_orm::sea_query::Expr, &'static str); 2] {
    use sea_orm::sea_query::Expr;
    [
        (
            Expr::cust("(SELECT enforce FROM billing_settings WHERE id = 1)"),
            "billing_policy_enforce",
        ),
        (
            Expr::cust("(SELECT grace_days FROM billing_settings WHERE id = 1)"),
            "billing_policy_grace_days",
        ),
    ]
}

impl Policy {
    /// The policy read by [`policy_columns`] (the default when none is recorded).
    pub fn from_row(row: &sea_orm::QueryResult) -> Result<Policy> {
        let enforce: Option<bool> = row.try_get("", "billing_policy_enforce")?;
        let grace: Option<i32> = row.try_get("", "billing_policy_grace_days")?;
        Ok(match (enforce, grace) {
            (Some(enforce), Some(grace)) => Policy {
                enforce,
                grace_days: u32::try_from(grace).unwrap_or(0),
            },
            _ => Policy::default(),
        })
    }
}

/// An organization's standing: the plan it pays for, its subscription's state, and the plan
/// whose limits apply now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The plan subscribed to (`free` without a subscription).
    pub plan: &'static Plan,
    pub status: String,
    /// The plan whose limits apply (the free plan once a past-due grace ran out, or canceled).
    pub effective: &'static Plan,
    /// Whether limits apply on this installation.
    pub enforced: bool,
    /// When a past-due subscription's grace ends.
    pub grace_ends_at: Option<DateTime<Utc>>,
    pub account: Option<billing_accounts::Model>,
}

impl Standing {
    /// The limit on `m` that applies now (`None`: unlimited): an operator's override for this
    /// organization while its plan is in force, else the effective plan's.
    pub fn limit(&self, m: Metric) -> Option<u64> {
        if !self.enforced {
            return None;
        }
        if self.effective == self.plan
            && let Some(o) = self.overrides().and_then(|o| o.get(m.name()).cloned())
        {
            return o.as_u64();
        }
        self.effective.limit(m)
    }

    /// The operator's overrides, if any.
    pub fn overrides(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.account
            .as_ref()
            .and_then(|a| a.limit_overrides.as_ref())
            .and_then(|v| v.as_object())
    }

    /// The `PLAN_LIMIT` error for `m` at `used`.
    pub fn refuse(&self, m: Metric, used: u64) -> crate::Error {
        crate::Error::Quota {
            limit: m.name(),
            allowed: self.limit(m).unwrap_or(u64::MAX),
            used,
            plan: self.effective.id.to_owned(),
        }
    }
}

/// The standing of `organization_id` at `now`.
pub async fn standing(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Standing> {
    let policy = policy(db).await?;
    let account = billing_accounts::Entity::find_by_id(organization_id)
        .one(db)
        .await?;
    Ok(judge(policy, account, now))
}

/// The standing of `organization_id` when this installation enforces plans, else `None` (one
/// read): what the paths that can cross a limit ask.
pub async fn limits(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Standing>> {
    let policy = policy(db).await?;
    limits_under(db, organization_id, policy, now).await
}

/// [`limits`] under a policy already read (with [`policy_columns`]).
pub async fn limits_under(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    policy: Policy,
    now: DateTime<Utc>,
) -> Result<Option<Standing>> {
    if !policy.enforce {
        return Ok(None);
    }
    let account = billing_accounts::Entity::find_by_id(organization_id)
        .one(db)
        .await?;
    Ok(Some(judge(policy, account, now)))
}

/// The standing a policy and a billing row give at `now`.
pub fn judge(
    policy: Policy,
    account: Option<billing_accounts::Model>,
    now: DateTime<Utc>,
) -> Standing {
    let (plan, status) = account.as_ref().map_or((FREE, status::ACTIVE), |a| {
        (plan(&a.plan).unwrap_or(FREE), a.status.as_str())
    });
    let mut grace_ends_at = None;
    let effective = match status {
        status::ACTIVE | status::TRIALING => plan,
        status::PAST_DUE => {
            let since = account
                .as_ref()
                .and_then(|a| a.past_due_since)
                .unwrap_or(now);
            let ends = since + Duration::days(i64::from(policy.grace_days));
            grace_ends_at = Some(ends);
            if now < ends { plan } else { FREE }
        }
        _ => FREE,
    };
    Standing {
        plan,
        status: status.to_owned(),
        effective,
        enforced: policy.enforce,
        grace_ends_at,
        account,
    }
}

/// An operator's limit for one organization (`devsignal billing set --limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    Limit(u64),
    Unlimited,
    /// Back to the plan's limit.
    PlanDefault,
}

/// An operator's change to one organization, outside Stripe: its plan (an installation that
/// bills by contract) and limits for it alone (runbook: raise a legitimate customer's limit).
/// Answers the standing that results.
pub async fn set_by_operator(
    db: &sea_orm::DatabaseConnection,
    org: Uuid,
    plan_id: Option<&str>,
    limits: &[(Metric, Override)],
) -> Result<Standing> {
    use sea_orm::ActiveModelTrait;
    if let Some(p) = plan_id
        && plan(p).is_none()
    {
        let ids: Vec<&str> = PLANS.iter().map(|p| p.id).collect();
        return Err(crate::Error::invalid(
            "plan",
            format!("{p:?} is not a plan ({})", ids.join(", ")),
        ));
    }
    let txn = crate::db::begin(db).await?;
    if entity::organizations::Entity::find_by_id(org)
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(crate::Error::NotFound {
            entity: "Organization",
        });
    }
    let now = Utc::now();
    let row = billing_accounts::Entity::find_by_id(org).one(&txn).await?;
    let mut overrides = row
        .as_ref()
        .and_then(|r| r.limit_overrides.clone())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    for (m, o) in limits {
        match o {
            Override::Limit(n) => {
                overrides.insert(m.name().into(), serde_json::json!(n));
            }
            Override::Unlimited => {
                overrides.insert(m.name().into(), serde_json::Value::Null);
            }
            Override::PlanDefault => {
                overrides.remove(m.name());
            }
        }
    }
    let overrides = (!overrides.is_empty()).then_some(serde_json::Value::Object(overrides));
    match row {
        Some(r) => {
            let mut m: billing_accounts::ActiveModel = r.into();
            if let Some(p) = plan_id {
                m.plan = Set(p.to_owned());
            }
            m.limit_overrides = Set(overrides);
            m.updated_at = Set(now);
            m.update(&txn).await?;
        }
        None => {
            billing_accounts::ActiveModel {
                organization_id: Set(org),
                plan: Set(plan_id.unwrap_or(FREE.id).to_owned()),
                status: Set(status::ACTIVE.to_owned()),
                stripe_customer_id: Set(None),
                stripe_subscription_id: Set(None),
                stripe_price_id: Set(None),
                current_period_end: Set(None),
                cancel_at_period_end: Set(false),
                past_due_since: Set(None),
                state_at: Set(None),
                limit_overrides: Set(overrides),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
        }
    }
    let s = standing(&txn, org, now).await?;
    txn.commit().await?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(status: &str, past_due_since: Option<DateTime<Utc>>) -> billing_accounts::Model {
        let now = Utc::now();
        billing_accounts::Model {
            organization_id: Uuid::nil(),
            plan: "growth".into(),
            status: status.into(),
            stripe_customer_id: None,
            stripe_subscription_id: None,
            stripe_price_id: None,
            current_period_end: None,
            cancel_at_period_end: false,
            past_due_since,
            state_at: None,
            limit_overrides: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn past_due_keeps_the_plan_for_the_grace_period_then_falls_to_free() {
        let now = Utc::now();
        let policy = Policy {
            enforce: true,
            grace_days: 7,
        };
        let s = judge(
            policy,
            Some(account(status::PAST_DUE, Some(now - Duration::days(6)))),
            now,
        );
        assert_eq!(s.effective.id, "growth");
        assert_eq!(s.limit(Metric::Contacts), Some(100_000));
        let s = judge(
            policy,
            Some(account(status::PAST_DUE, Some(now - Duration::days(8)))),
            now,
        );
        assert_eq!(s.effective.id, "free");
        assert_eq!(s.plan.id, "growth");
        let s = judge(policy, Some(account(status::CANCELED, None)), now);
        assert_eq!(s.effective.id, "free");
        let s = judge(policy, None, now);
        assert_eq!((s.plan.id, s.effective.id), ("free", "free"));
    }

    #[test]
    fn an_operators_override_replaces_the_plans_limit_while_the_plan_is_in_force() {
        let now = Utc::now();
        let policy = Policy {
            enforce: true,
            grace_days: 7,
        };
        let mut a = account(status::ACTIVE, None);
        a.limit_overrides = Some(serde_json::json!({"contacts": 5, "members": null}));
        let s = judge(policy, Some(a.clone()), now);
        assert_eq!(s.limit(Metric::Contacts), Some(5));
        assert_eq!(s.limit(Metric::Members), None);
        assert_eq!(s.limit(Metric::SignalsPerMonth), Some(500_000));
        a.status = status::CANCELED.into();
        let s = judge(policy, Some(a), now);
        assert_eq!(s.limit(Metric::Contacts), Some(1_000));
    }

    #[test]
    fn nothing_is_limited_when_the_installation_does_not_enforce_plans() {
        let s = judge(Policy::default(), None, Utc::now());
        for m in Metric::ALL {
            assert_eq!(s.limit(*m), None);
        }
    }
}
