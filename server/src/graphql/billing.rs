//! Plans, usage and billing over GraphQL: `plans` (the catalog), `usage` (every counter against
//! the limit that applies), `subscription` (the plan paid for and its state), and, for the
//! OWNER, `createCheckoutSession(plan)` and `createBillingPortalSession` through Stripe. The
//! server maps a plan to its Stripe price (`STRIPE_PRICE_*`); a client never names a price, and
//! the pages Stripe returns to are the dashboard's, not the client's choice.
//!
//! Rights: `plans`, `usage` and `subscription` need `organization:read`; checkout and the portal
//! need the OWNER signed in (not an API key). Without Stripe keys those two answer
//! `NOT_CONFIGURED`; a demo organization cannot subscribe.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::billing::{self, Metric, PLANS, usage};
use domain::{Error, Role};

use crate::graphql::common::{db, state};
use crate::graphql::{GqlResultExt, actor};

/// A plan one can subscribe to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PlanId {
    Free,
    Pro,
    Growth,
    Scale,
}

impl PlanId {
    fn id(self) -> &'static str {
        match self {
            PlanId::Free => "free",
            PlanId::Pro => "pro",
            PlanId::Growth => "growth",
            PlanId::Scale => "scale",
        }
    }

    fn of(id: &str) -> PlanId {
        match id {
            "pro" => PlanId::Pro,
            "growth" => PlanId::Growth,
            "scale" => PlanId::Scale,
            _ => PlanId::Free,
        }
    }
}

/// What a plan limits.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UsageMetric {
    Contacts,
    SignalsPerMonth,
    Members,
    AiBriefsPerMonth,
    Integrations,
}

impl From<Metric> for UsageMetric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::Contacts => UsageMetric::Contacts,
            Metric::SignalsPerMonth => UsageMetric::SignalsPerMonth,
            Metric::Members => UsageMetric::Members,
            Metric::AiBriefsPerMonth => UsageMetric::AiBriefsPerMonth,
            Metric::Integrations => UsageMetric::Integrations,
        }
    }
}

/// A plan and its limits (null: unlimited).
#[derive(SimpleObject)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    /// The list price in US dollars per month.
    pub monthly_usd: i32,
    pub contacts: Option<i64>,
    pub signals_per_month: Option<i64>,
    pub members: Option<i64>,
    pub ai_briefs_per_month: Option<i64>,
    pub integrations: Option<i64>,
    /// Whether a checkout can be started for it on this server (a Stripe price is configured).
    pub purchasable: bool,
}

fn opt(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One limit's use.
#[derive(SimpleObject)]
pub struct UsageCounter {
    pub metric: UsageMetric,
    pub current: i64,
    /// Null: unlimited (or limits not enforced on this server).
    pub limit: Option<i64>,
    /// Percent of the limit used, 0–100 (null without a limit).
    pub percentage: Option<i64>,
}

/// The organization's use against the limits that apply.
#[derive(SimpleObject)]
pub struct Usage {
    /// The plan whose limits apply now (free once a past-due grace period ran out).
    pub plan: PlanId,
    /// Whether this server enforces plan limits (`PLAN_ENFORCEMENT`).
    pub enforced: bool,
    /// The calendar month (UTC, `YYYY-MM`) monthly counters count.
    pub month: String,
    /// Its first instant.
    pub period_start: DateTime<Utc>,
    pub contacts: UsageCounter,
    pub signals_per_month: UsageCounter,
    pub members: UsageCounter,
    pub ai_briefs_per_month: UsageCounter,
    pub integrations: UsageCounter,
}

/// A subscription's state.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Canceled,
    Unpaid,
    Incomplete,
}

impl SubscriptionStatus {
    fn of(s: &str) -> Self {
        match s {
            billing::status::TRIALING => SubscriptionStatus::Trialing,
            billing::status::PAST_DUE => SubscriptionStatus::PastDue,
            billing::status::CANCELED => SubscriptionStatus::Canceled,
            billing::status::UNPAID => SubscriptionStatus::Unpaid,
            billing::status::INCOMPLETE => SubscriptionStatus::Incomplete,
            _ => SubscriptionStatus::Active,
        }
    }
}

/// The organization's plan and subscription.
#[derive(SimpleObject)]
pub struct Subscription {
    /// The plan subscribed to (FREE without a subscription).
    pub plan: PlanId,
    /// The plan whose limits apply now.
    pub effective_plan: PlanId,
    pub status: SubscriptionStatus,
    /// When the current period ends (renews, or ends when `cancelAtPeriodEnd`).
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// While past due: when the plan's limits fall to the free plan's.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Whether the organization has a Stripe customer (the portal can be opened).
    pub has_customer: bool,
    /// Whether this server takes payments (Stripe keys configured).
    pub billing_configured: bool,
}

/// Where to send the browser.
#[derive(SimpleObject)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

#[derive(SimpleObject)]
pub struct BillingPortalSession {
    pub url: String,
}

fn counter(c: &usage::Counter) -> UsageCounter {
    UsageCounter {
        metric: c.metric.into(),
        current: int(c.current),
        limit: opt(c.limit),
        percentage: opt(c.percentage()),
    }
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// Every plan with its limits, cheapest first.
    async fn plans(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Plan>> {
        actor(ctx)?.require_scope("organization:read").gql()?;
        let prices = &state(ctx)?.config.stripe_prices;
        let configured = state(ctx)?.stripe().is_some();
        Ok(PLANS
            .iter()
            .map(|p| Plan {
                id: PlanId::of(p.id),
                name: p.name.to_owned(),
                monthly_usd: i32::try_from(p.monthly_usd).unwrap_or(i32::MAX),
                contacts: opt(p.contacts),
                signals_per_month: opt(p.signals_per_month),
                members: opt(p.members),
                ai_briefs_per_month: opt(p.ai_briefs_per_month),
                integrations: opt(p.integrations),
                purchasable: configured && prices.price_of(p.id).is_some(),
            })
            .collect())
    }

    /// The organization's use against the limits that apply now.
    async fn usage(&self, ctx: &Context<'_>) -> async_graphql::Result<Usage> {
        let actor = actor(ctx)?;
        actor.require_scope("organization:read").gql()?;
        let org = actor.organization_id;
        let db = db(ctx).await?;
        let standing = billing::standing(&*db, org, Utc::now()).await.gql()?;
        let all = usage::report(&*db, org, &standing).await.gql()?;
        let pick = |m: Metric| {
            all.iter()
                .find(|c| c.metric == m)
                .map(counter)
                .unwrap_or(UsageCounter {
                    metric: m.into(),
                    current: 0,
                    limit: None,
                    percentage: None,
                })
        };
        Ok(Usage {
            plan: PlanId::of(standing.effective.id),
            enforced: standing.enforced,
            month: usage::month_of(Utc::now()),
            period_start: usage::month_start(Utc::now()),
            contacts: pick(Metric::Contacts),
            signals_per_month: pick(Metric::SignalsPerMonth),
            members: pick(Metric::Members),
            ai_briefs_per_month: pick(Metric::AiBriefsPerMonth),
            integrations: pick(Metric::Integrations),
        })
    }

    /// The organization's plan and subscription.
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Subscription> {
        let actor = actor(ctx)?;
        actor.require_scope("organization:read").gql()?;
        let standing = billing::standing(&*db(ctx).await?, actor.organization_id, Utc::now())
            .await
            .gql()?;
        let a = standing.account.as_ref();
        Ok(Subscription {
            plan: PlanId::of(standing.plan.id),
            effective_plan: PlanId::of(standing.effective.id),
            status: SubscriptionStatus::of(&standing.status),
            current_period_end: a.and_then(|a| a.current_period_end),
            cancel_at_period_end: a.is_some_and(|a| a.cancel_at_period_end),
            grace_ends_at: standing.grace_ends_at,
            has_customer: a.is_some_and(|a| a.stripe_customer_id.is_some()),
            billing_configured: state(ctx)?.stripe().is_some(),
        })
    }
}

/// The OWNER, signed in, of a non-demo organization on a server with Stripe configured.
async fn owner_with_stripe<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<(&'a domain::Actor, connectors::stripe::Stripe)> {
    let actor = actor(ctx)?;
    actor.require_user().gql()?;
    actor.require_role(Role::Owner).gql()?;
    let stripe = state(ctx)?.stripe().ok_or_else(|| {
        crate::graphql::gql_error(Error::NotConfigured(
            "billing is not configured on this server (STRIPE_SECRET_KEY and \
             STRIPE_WEBHOOK_SECRET are unset); plans cannot be bought here"
                .into(),
        ))
    })?;
    let org = domain::identity::organizations::current(&*db(ctx).await?, actor)
        .await
        .gql()?;
    if org.is_demo {
        return Err(crate::graphql::gql_error(Error::Forbidden(
            "a demo organization cannot subscribe; sign up to buy a plan".into(),
        )));
    }
    Ok((actor, stripe))
}

/// The organization's Stripe customer, created once.
async fn customer(
    ctx: &Context<'_>,
    actor: &domain::Actor,
    stripe: &connectors::stripe::Stripe,
) -> async_graphql::Result<String> {
    let st = state(ctx)?;
    let org = actor.organization_id;
    if let Some(c) = billing::stripe::customer_of(&*db(ctx).await?, org)
        .await
        .gql()?
    {
        return Ok(c);
    }
    let (name, email) = {
        let db = db(ctx).await?;
        let o = domain::identity::organizations::current(&*db, actor)
            .await
            .gql()?;
        let email = match actor.user_id() {
            Some(u) => entity::users::Entity::find_by_id(u)
                .one(&*db)
                .await
                .map_err(Error::from)
                .gql()?
                .map(|u| u.email),
            None => None,
        };
        (o.name, email)
    };
    let created = stripe
        .create_customer(org, &name, email.as_deref())
        .await
        .gql()?;
    billing::stripe::keep_customer(&st.db, org, &created)
        .await
        .gql()
}

use sea_orm::EntityTrait;

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Starts a Stripe Checkout for `plan` (OWNER). Answers where to send the browser; the
    /// plan changes when Stripe's webhook says it was paid.
    async fn create_checkout_session(
        &self,
        ctx: &Context<'_>,
        plan: PlanId,
    ) -> async_graphql::Result<CheckoutSession> {
        let (actor, stripe) = owner_with_stripe(ctx).await?;
        let st = state(ctx)?;
        let price = st
            .config
            .stripe_prices
            .price_of(plan.id())
            .ok_or_else(|| {
                crate::graphql::gql_error(Error::invalid(
                    "plan",
                    if plan == PlanId::Free {
                        "the free plan needs no checkout; cancel the subscription in the billing portal".to_owned()
                    } else {
                        format!(
                            "no Stripe price is configured for {} (STRIPE_PRICE_{})",
                            plan.id(),
                            plan.id().to_ascii_uppercase()
                        )
                    },
                ))
            })?
            .to_owned();
        let customer = customer(ctx, actor, &stripe).await?;
        let base = st.config.frontend_url.trim_end_matches('/');
        let (id, url) = stripe
            .create_checkout_session(
                actor.organization_id,
                &customer,
                &price,
                &format!("{base}/settings/billing?checkout=success"),
                &format!("{base}/settings/billing?checkout=cancelled"),
            )
            .await
            .gql()?;
        Ok(CheckoutSession { id, url })
    }

    /// Opens Stripe's billing portal for the organization's customer (OWNER): change plan,
    /// payment method, invoices, cancel.
    async fn create_billing_portal_session(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BillingPortalSession> {
        let (actor, stripe) = owner_with_stripe(ctx).await?;
        let st = state(ctx)?;
        let customer = customer(ctx, actor, &stripe).await?;
        let url = stripe
            .create_portal_session(
                &customer,
                &format!(
                    "{}/settings/billing",
                    st.config.frontend_url.trim_end_matches('/')
                ),
            )
            .await
            .gql()?;
        Ok(BillingPortalSession { url })
    }
}
