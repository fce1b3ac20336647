//! What Stripe's webhook events do to an organization's billing row. The HTTP side (signature,
//! retrieving a subscription, the API calls of checkout and the portal) lives in the server and
//! `connectors::stripe`; this is the state machine.
//!
//! - Each event id is recorded in `billing_events` in the transaction that applies it: a replay
//!   (Stripe retries, or an attacker with an old signed body inside the tolerance) changes
//!   nothing.
//! - The organization is the subscription's or session's `metadata.organizationId` (set by our
//!   checkout), else the one whose Stripe customer it is.
//! - The plan comes from the subscription's price, mapped through the configured
//!   `STRIPE_PRICE_*` (a price we do not know is the free plan).
//! - Out of order: a subscription state is applied only if its event is not older than the state
//!   applied last (`state_at`), and a canceled subscription is not revived by an event of the
//!   same second or older.

use chrono::{DateTime, TimeZone, Utc};
use entity::{billing_accounts, billing_events};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use serde_json::Value;
use uuid::Uuid;

use super::{FREE, Plan, plan, status};
use crate::Result;

/// The Stripe prices of the paid plans (`STRIPE_PRICE_PRO`, `_GROWTH`, `_SCALE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices {
    pub pro: Option<String>,
    pub growth: Option<String>,
    pub scale: Option<String>,
}

impl Prices {
    /// The price a checkout for `plan_id` uses.
    pub fn price_of(&self, plan_id: &str) -> Option<&str> {
        match plan_id {
            "pro" => self.pro.as_deref(),
            "growth" => self.growth.as_deref(),
            "scale" => self.scale.as_deref(),
            _ => None,
        }
    }

    /// The plan a price pays for.
    pub fn plan_of(&self, price: &str) -> Option<&'static Plan> {
        ["pro", "growth", "scale"]
            .into_iter()
            .find(|p| self.price_of(p) == Some(price))
            .and_then(plan)
    }
}

/// The fields of a Stripe subscription object that billing reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub customer: Option<String>,
    pub status: String,
    pub price: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub organization_id: Option<Uuid>,
}

fn unix(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(|t| Utc.timestamp_opt(t, 0).single())
}

fn org_in(metadata: &Value) -> Option<Uuid> {
    metadata
        .get("organizationId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// An id field that Stripe sends either as the id or as the expanded object.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl Subscription {
    /// Reads a subscription object (`object: "subscription"`).
    pub fn from_json(v: &Value) -> Option<Subscription> {
        let item = v.pointer("/items/data/0");
        Some(Subscription {
            id: v.get("id")?.as_str()?.to_owned(),
            customer: v.get("customer").and_then(id_of),
            status: v.get("status")?.as_str()?.to_owned(),
            price: item.and_then(|i| i.pointer("/price/id")).and_then(id_of),
            // Newer API versions keep the period on the item.
            current_period_end: v.get("current_period_end").and_then(unix).or_else(|| {
                item.and_then(|i| i.get("current_period_end"))
                    .and_then(unix)
            }),
            cancel_at_period_end: v
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            organization_id: v.get("metadata").and_then(org_in),
        })
    }
}

/// Our status for Stripe's.
pub fn status_of(stripe: &str) -> &'static str {
    match stripe {
        "active" => status::ACTIVE,
        "trialing" => status::TRIALING,
        "past_due" => status::PAST_DUE,
        "unpaid" | "paused" => status::UNPAID,
        "incomplete" => status::INCOMPLETE,
        _ => status::CANCELED,
    }
}

/// What processing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(Uuid),
    /// Processed before (same event id): nothing done.
    Duplicate,
    /// Understood but changes nothing (why).
    Ignored(String),
}

/// The event types billing acts on.
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// The subscription id a `checkout.session.completed` event needs retrieved (its session names
/// it; the session does not carry the price or status).
pub fn subscription_to_fetch(event: &Value) -> Option<String> {
    if event.get("type")?.as_str()? != "checkout.session.completed" {
        return None;
    }
    event.pointer("/data/object/subscription").and_then(id_of)
}

/// Processes one verified event, in one transaction with its id's record. `fetched` is the
/// subscription a checkout session names, retrieved from Stripe by the caller.
pub async fn process(
    db: &DatabaseConnection,
    event: &Value,
    fetched: Option<&Value>,
    prices: &Prices,
) -> Result<Outcome> {
    let bad = |what: &str| crate::Error::invalid(what, "is missing from the Stripe event");
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("id"))?;
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("type"))?;
    let at = event
        .get("created")
        .and_then(unix)
        .ok_or_else(|| bad("created"))?;
    let object = event
        .pointer("/data/object")
        .ok_or_else(|| bad("data.object"))?;
    let txn = crate::db::begin(db).await?;
    let fresh = billing_events::Entity::insert(billing_events::ActiveModel {
        id: Set(id.to_owned()),
        event_type: Set(kind.chars().take(100).collect()),
        created: Set(at),
        organization_id: Set(None),
        outcome: Set("processing".into()),
        received_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(billing_events::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if fresh == 0 {
        txn.commit().await?;
        return Ok(Outcome::Duplicate);
    }
    let outcome = match kind {
        "checkout.session.completed" => {
            let org = object.get("metadata").and_then(org_in).or_else(|| {
                object
                    .get("client_reference_id")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
            });
            match fetched.and_then(Subscription::from_json) {
                Some(sub) => apply_subscription(&txn, org, &sub, at, prices).await?,
                None => Outcome::Ignored("the session names no subscription".into()),
            }
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => match Subscription::from_json(object) {
            Some(mut sub) => {
                if kind.ends_with("deleted") {
                    sub.status = "canceled".into();
                }
                let org = sub.organization_id;
                apply_subscription(&txn, org, &sub, at, prices).await?
            }
            None => Outcome::Ignored("not a subscription object".into()),
        },
        "invoice.paid" | "invoice.payment_failed" => {
            let subscription = object.get("subscription").and_then(id_of).or_else(|| {
                object
                    .pointer("/parent/subscription_details/subscription")
                    .and_then(id_of)
            });
            let customer = object.get("customer").and_then(id_of);
            apply_invoice(
                &txn,
                customer.as_deref(),
                subscription.as_deref(),
                kind == "invoice.paid",
                at,
            )
            .await?
        }
        other => Outcome::Ignored(format!("{other} is not an event billing acts on")),
    };
    let (org, text) = match &outcome {
        Outcome::Applied(o) => (Some(*o), "applied".to_owned()),
        Outcome::Ignored(why) => (None, format!("ignored: {why}")),
        Outcome::Duplicate => (None, "duplicate".to_owned()),
    };
    billing_events::ActiveModel {
        id: Set(id.to_owned()),
        organization_id: Set(org),
        outcome: Set(text.chars().take(200).collect()),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    Ok(outcome)
}

async fn account_for(
    db: &impl ConnectionTrait,
    org: Option<Uuid>,
    customer: Option<&str>,
) -> Result<Option<(Uuid, Option<billing_accounts::Model>)>> {
    if let Some(o) = org {
        let exists = entity::organizations::Entity::find_by_id(o).one(db).await?;
        if exists.is_none() {
            return Ok(None);
        }
        return Ok(Some((
            o,
            billing_accounts::Entity::find_by_id(o).one(db).await?,
        )));
    }
    let Some(c) = customer else {
        return Ok(None);
    };
    Ok(billing_accounts::Entity::find()
        .filter(billing_accounts::Column::StripeCustomerId.eq(c))
        .one(db)
        .await?
        .map(|a| (a.organization_id, Some(a))))
}

async fn apply_subscription(
    txn: &sea_orm::DatabaseTransaction,
    org: Option<Uuid>,
    sub: &Subscription,
    at: DateTime<Utc>,
    prices: &Prices,
) -> Result<Outcome> {
    let Some((org, row)) = account_for(txn, org, sub.customer.as_deref()).await? else {
        return Ok(Outcome::Ignored(
            "no organization has this subscription's customer".into(),
        ));
    };
    if let Some(r) = &row
        && let Some(last) = r.state_at
    {
        if at < last {
            return Ok(Outcome::Ignored(
                "older than the subscription state already applied".into(),
            ));
        }
        let same = r.stripe_subscription_id.as_deref() == Some(sub.id.as_str());
        if same && r.status == status::CANCELED && at <= last {
            return Ok(Outcome::Ignored(
                "the subscription was canceled; an event of the same time does not revive it"
                    .into(),
            ));
        }
    }
    let plan = match sub.price.as_deref() {
        Some(p) => prices.plan_of(p).unwrap_or_else(|| {
            tracing::warn!(
                price = p,
                "a Stripe price no STRIPE_PRICE_* names: the free plan"
            );
            FREE
        }),
        None => FREE,
    };
    let new_status = status_of(&sub.status);
    let past_due_since = if new_status == status::PAST_DUE {
        row.as_ref()
            .and_then(|r| r.past_due_since.filter(|_| r.status == status::PAST_DUE))
            .or(Some(at))
    } else {
        None
    };
    upsert(txn, org, row, |m| {
        m.plan = Set(plan.id.to_owned());
        m.status = Set(new_status.to_owned());
        if let Some(c) = &sub.customer {
            m.stripe_customer_id = Set(Some(c.clone()));
        }
        m.stripe_subscription_id = Set(Some(sub.id.clone()));
        m.stripe_price_id = Set(sub.price.clone());
        m.current_period_end = Set(sub.current_period_end);
        m.cancel_at_period_end = Set(sub.cancel_at_period_end);
        m.past_due_since = Set(past_due_since);
        m.state_at = Set(Some(at));
    })
    .await?;
    Ok(Outcome::Applied(org))
}

async fn apply_invoice(
    txn: &sea_orm::DatabaseTransaction,
    customer: Option<&str>,
    subscription: Option<&str>,
    paid: bool,
    at: DateTime<Utc>,
) -> Result<Outcome> {
    let Some((org, Some(row))) = account_for(txn, None, customer).await? else {
        return Ok(Outcome::Ignored(
            "no organization has this invoice's customer".into(),
        ));
    };
    if subscription.is_none() || row.stripe_subscription_id.as_deref() != subscription {
        return Ok(Outcome::Ignored(
            "the invoice is not for the organization's subscription".into(),
        ));
    }
    if row.state_at.is_some_and(|last| at < last) {
        return Ok(Outcome::Ignored(
            "older than the subscription state already applied".into(),
        ));
    }
    if row.status == status::CANCELED {
        return Ok(Outcome::Ignored("the subscription is canceled".into()));
    }
    let (new_status, since) = if paid {
        (status::ACTIVE, None)
    } else {
        (
            status::PAST_DUE,
            row.past_due_since
                .filter(|_| row.status == status::PAST_DUE)
                .or(Some(at)),
        )
    };
    upsert(txn, org, Some(row), |m| {
        m.status = Set(new_status.to_owned());
        m.past_due_since = Set(since);
        m.state_at = Set(Some(at));
    })
    .await?;
    Ok(Outcome::Applied(org))
}

async fn upsert(
    txn: &sea_orm::DatabaseTransaction,
    org: Uuid,
    row: Option<billing_accounts::Model>,
    change: impl FnOnce(&mut billing_accounts::ActiveModel),
) -> Result<()> {
    let now = Utc::now();
    match row {
        Some(r) => {
            let mut m: billing_accounts::ActiveModel = r.into();
            change(&mut m);
            m.updated_at = Set(now);
            m.update(txn).await?;
        }
        None => {
            let mut m = blank(org, now);
            change(&mut m);
            m.insert(txn).await?;
        }
    }
    Ok(())
}

fn blank(org: Uuid, now: DateTime<Utc>) -> billing_accounts::ActiveModel {
    billing_accounts::ActiveModel {
        organization_id: Set(org),
        plan: Set(FREE.id.to_owned()),
        status: Set(status::ACTIVE.to_owned()),
        stripe_customer_id: Set(None),
        stripe_subscription_id: Set(None),
        stripe_price_id: Set(None),
        current_period_end: Set(None),
        cancel_at_period_end: Set(false),
        past_due_since: Set(None),
        state_at: Set(None),
        limit_overrides: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// The organization's Stripe customer, if it has one.
pub async fn customer_of(db: &impl ConnectionTrait, org: Uuid) -> Result<Option<String>> {
    Ok(billing_accounts::Entity::find_by_id(org)
        .one(db)
        .await?
        .and_then(|a| a.stripe_customer_id))
}

/// Records the customer created for `org`, unless one was recorded meanwhile; answers the
/// organization's customer (the first one recorded).
pub async fn keep_customer(db: &DatabaseConnection, org: Uuid, customer: &str) -> Result<String> {
    let txn = crate::db::begin(db).await?;
    crate::db::advisory_xact_lock(&txn, &[crate::db::lock_key(org, "billing:customer")]).await?;
    let row = billing_accounts::Entity::find_by_id(org).one(&txn).await?;
    let kept = match row {
        Some(r) if r.stripe_customer_id.is_some() => {
            r.stripe_customer_id.clone().unwrap_or_default()
        }
        Some(r) => {
            let mut m: billing_accounts::ActiveModel = r.into();
            m.stripe_customer_id = Set(Some(customer.to_owned()));
            m.updated_at = Set(Utc::now());
            m.update(&txn).await?;
            customer.to_owned()
        }
        None => {
            let mut m = blank(org, Utc::now());
            m.stripe_customer_id = Set(Some(customer.to_owned()));
            m.insert(&txn).await?;
            customer.to_owned()
        }
    };
    txn.commit().await?;
    Ok(kept)
}
