//! Alert and digest deliveries by email and Slack: each is a row of `alert_deliveries`, written in
//! the transaction that decided it together with its own `deliver-notification` job, so it is
//! never lost and a failing one retries alone without holding up the others. The job renders and
//! sends it and records the outcome here.

use chrono::Utc;
use entity::alert_deliveries as rows;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queue::defs::DELIVER_NOTIFICATION;
use crate::{Actor, Error, Result, Role};

/// What a delivery is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Digest,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "ALERT",
            Kind::Digest => "DIGEST",
        }
    }
}

/// How it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// To a member's address.
    Email { user: Uuid, address: String },
    /// To a Slack incoming webhook (sealed URL, shown host).
    Slack { sealed_url: String, host: String },
}

/// One delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub org: Uuid,
    pub kind: Kind,
    pub channel: Channel,
    pub rule_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// What the sender renders: an alert's title, rule, account and details, or a digest.
    pub content: Value,
}

/// Stores deliveries and enqueues a job for each, in the caller's transaction.
pub async fn queue_deliveries(db: &impl ConnectionTrait, new: Vec<NewDelivery>) -> Result<usize> {
    let now = Utc::now();
    let n = new.len();
    for d in new {
        let id = Uuid::now_v7();
        let (channel, user, target, sealed) = match d.channel {
            Channel::Email { user, address } => ("EMAIL", Some(user), address, None),
            Channel::Slack { sealed_url, host } => ("SLACK", None, host, Some(sealed_url)),
        };
        rows::ActiveModel {
            id: Set(id),
            organization_id: Set(d.org),
            kind: Set(d.kind.as_str().into()),
            channel: Set(channel.into()),
            rule_id: Set(d.rule_id),
            account_id: Set(d.account_id),
            user_id: Set(user),
            target: Set(target.chars().take(320).collect()),
            sealed_url: Set(sealed),
            content: Set(d.content),
            status: Set("PENDING".into()),
            attempts: Set(0),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            sent_at: Set(None),
        }
        .insert(db)
        .await?;
        crate::queue::enqueue(
            db,
            DELIVER_NOTIFICATION
                .job(json!({"deliveryId": id, "organizationId": d.org}))
                .organization(d.org),
        )
        .await?;
    }
    Ok(n)
}

/// A delivery still to send: pending, or failed and retried by an operator (`None` when it was
/// sent already, or is gone).
pub async fn pending_delivery(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<rows::Model>> {
    Ok(rows::Entity::find_by_id(id)
        .filter(rows::Column::Status.ne("SENT"))
        .one(db)
        .await?)
}

/// Records an attempt: sent, or failed with `error` (`last` when no attempt is left: the
/// delivery is then `FAILED`).
pub async fn record_delivery_attempt(
    db: &impl ConnectionTrait,
    id: Uuid,
    error: Option<&str>,
    last: bool,
) -> Result<()> {
    let now = Utc::now();
    let status = match (error, last) {
        (None, _) => "SENT",
        (Some(_), true) => "FAILED",
        (Some(_), false) => "PENDING",
    };
    let mut q = rows::Entity::update_many()
        .col_expr(rows::Column::Status, Expr::value(status))
        .col_expr(
            rows::Column::Attempts,
            Expr::col(rows::Column::Attempts).add(1),
        )
        .col_expr(
            rows::Column::LastError,
            Expr::value(error.map(|e| e.chars().take(1000).collect::<String>())),
        )
        .col_expr(rows::Column::UpdatedAt, Expr::value(now));
    if error.is_none() {
        q = q.col_expr(rows::Column::SentAt, Expr::value(Some(now)));
    }
    q.filter(rows::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// The organization's latest deliveries, newest first, optionally of one rule (ADMIN).
pub async fn list_deliveries(
    db: &impl ConnectionTrait,
    actor: &Actor,
    rule: Option<Uuid>,
    first: u64,
) -> Result<Vec<rows::Model>> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")?;
    if !(1..=100).contains(&first) {
        return Err(Error::invalid("first", "must be between 1 and 100"));
    }
    let mut q = rows::Entity::find().filter(rows::Column::OrganizationId.eq(actor.organization_id));
    if let Some(r) = rule {
        q = q.filter(rows::Column::RuleId.eq(r));
    }
    Ok(q.order_by_desc(rows::Column::Id)
        .limit(first)
        .all(db)
        .await?)
}
