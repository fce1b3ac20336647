//! Alert rules: what fires (a trigger and its parameters), for which accounts (filters), whom
//! it tells, and how long it stays quiet for an account after firing.

use chrono::Utc;
use entity::{alert_rules, memberships};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::channels::{Channels, Outbound, SlackChange, seal_slack};
use crate::{Actor, Error, FieldError, Result, Role};

/// The most rules an organization may hold.
pub const MAX_RULES: u64 = 100;
/// The default cooldown: a day.
pub const DEFAULT_COOLDOWN_MINUTES: i32 = 24 * 60;
/// The longest cooldown: 30 days.
pub const MAX_COOLDOWN_MINUTES: i32 = 30 * 24 * 60;
/// The default window of SCORE_RISE and SCORE_DROP, in days.
pub const DEFAULT_WITHIN_DAYS: i32 = 7;

/// What makes a rule fire. Each is evaluated from the event that says it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    /// The score crosses `threshold` upward (from below it, or from no score): once per crossing.
    ScoreThreshold,
    /// The score rose at least `percent` % over the last `withinDays` days (against the score
    /// history; the previous score before there is any).
    ScoreRise,
    /// The score fell at least `percent` % over the last `withinDays` days.
    ScoreDrop,
    /// The tier changed (to one of `toTiers`, when given), including an account's first tier.
    TierChanged,
    /// A signal of one of `signalTypes` (any type when empty) arrived for the account.
    NewSignal,
    /// No signal for `withinDays` days (default 14): fires once when the silence reaches that
    /// length (checked by the `alert-check` job).
    AccountInactive,
    /// The signals of the last `withinDays` days (default 7) fell at least `percent` % below
    /// the `withinDays` days before, which held at least [`MIN_PREVIOUS_SIGNALS`] (checked by
    /// the `alert-check` job).
    EngagementDrop,
    /// A signal anomaly was detected for the account (`anomaly.detected`): of one of
    /// `anomalyKinds` (SPIKE, DROP; both when empty), at least `minSeverity` (MODERATE, HIGH;
    /// any when absent).
    Anomaly,
}

/// ENGAGEMENT_DROP compares only with a previous window of at least this many signals.
pub const MIN_PREVIOUS_SIGNALS: i64 = 3;
/// ACCOUNT_INACTIVE's default silence, in days.
pub const DEFAULT_INACTIVE_DAYS: i32 = 14;

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::ScoreThreshold => "SCORE_THRESHOLD",
            Trigger::ScoreRise => "SCORE_RISE",
            Trigger::ScoreDrop => "SCORE_DROP",
            Trigger::TierChanged => "TIER_CHANGED",
            Trigger::NewSignal => "NEW_SIGNAL",
            Trigger::AccountInactive => "ACCOUNT_INACTIVE",
            Trigger::EngagementDrop => "ENGAGEMENT_DROP",
            Trigger::Anomaly => "ANOMALY",
        }
    }

    /// Checked on a schedule (the `alert-check` job) rather than from events.
    pub fn is_timed(self) -> bool {
        matches!(self, Trigger::AccountInactive | Trigger::EngagementDrop)
    }

    /// The window in days a rule of this trigger uses when it names none.
    pub fn default_days(self) -> Option<i32> {
        match self {
            Trigger::ScoreRise | Trigger::ScoreDrop | Trigger::EngagementDrop => {
                Some(DEFAULT_WITHIN_DAYS)
            }
            Trigger::AccountInactive => Some(DEFAULT_INACTIVE_DAYS),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(json!(s)).ok()
    }
}

/// A trigger's parameters (those it does not use are absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signal_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_tiers: Vec<String>,
    /// ANOMALY: the kinds that fire it (SPIKE, DROP; both when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomaly_kinds: Vec<String>,
    /// ANOMALY: the least severity that fires it (MODERATE, HIGH; any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
}

/// Which accounts a rule watches: all of them when every list is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// The account's current tier is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// The account carries at least one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Uuid>,
}

/// A rule as written by an admin.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub name: String,
    pub trigger: Trigger,
    pub params: Params,
    pub filter: Filter,
    /// Members told (in the app, and by email when the rule emails); empty: every member.
    pub recipients: Vec<Uuid>,
    pub cooldown_minutes: i32,
    pub enabled: bool,
    pub channels: Channels,
    /// The rule's Slack incoming webhook.
    pub slack: SlackChange,
}

/// A stored rule, read back.
#[derive(Debug, Clone)]
pub struct Rule {
    pub row: alert_rules::Model,
    pub trigger: Trigger,
    pub params: Params,
    pub filter: Filter,
    pub recipients: Vec<Uuid>,
    pub channels: Channels,
}

impl Rule {
    /// Whether the rule posts to Slack.
    pub fn has_slack(&self) -> bool {
        self.row.slack_url.is_some()
    }

    pub fn from_row(row: alert_rules::Model) -> Option<Rule> {
        Some(Rule {
            channels: Channels::of(row.channels.as_ref()),
            trigger: Trigger::parse(&row.trigger)?,
            params: serde_json::from_value(row.params.clone()).ok()?,
            filter: serde_json::from_value(row.filter.clone()).ok()?,
            recipients: serde_json::from_value(row.recipients.clone()).ok()?,
            row,
        })
    }
}

const TIERS: &[&str] = &["HOT", "WARM", "COLD", "INACTIVE"];

/// Checks a rule: each problem names its field under `input.`.
fn check(input: &RuleInput) -> Result<()> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldError::new(format!("input.{field}"), message));
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        bad("name", "must be 1 to 100 characters");
    }
    let p = &input.params;
    match input.trigger {
        Trigger::ScoreThreshold => match p.threshold {
            Some(t) if (1..=100).contains(&t) => {}
            _ => bad(
                "threshold",
                "SCORE_THRESHOLD needs a threshold from 1 to 100",
            ),
        },
        Trigger::ScoreRise | Trigger::ScoreDrop | Trigger::EngagementDrop => match p.percent {
            Some(x) if x > 0.0 && x <= 1000.0 => {}
            _ => bad(
                "percent",
                "SCORE_RISE, SCORE_DROP and ENGAGEMENT_DROP need a percent above 0, at most 1000",
            ),
        },
        Trigger::TierChanged | Trigger::NewSignal | Trigger::AccountInactive | Trigger::Anomaly => {
        }
    }
    if p.within_days.is_some() && input.trigger.default_days().is_none() {
        bad(
            "withinDays",
            "only SCORE_RISE, SCORE_DROP, ACCOUNT_INACTIVE and ENGAGEMENT_DROP use withinDays",
        );
    }
    if p.within_days.is_some_and(|d| !(1..=90).contains(&d)) {
        bad("withinDays", "must be between 1 and 90");
    }
    if input.trigger == Trigger::EngagementDrop && p.percent.is_some_and(|x| x > 100.0) {
        bad("percent", "a drop is at most 100 %");
    }
    if p.signal_types.len() > 50
        || p.signal_types
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > 100)
    {
        bad("signalTypes", "at most 50 types of 1 to 100 characters");
    }
    if !p.signal_types.is_empty() && input.trigger != Trigger::NewSignal {
        bad("signalTypes", "only NEW_SIGNAL uses signal types");
    }
    if !p.to_tiers.is_empty() && input.trigger != Trigger::TierChanged {
        bad("toTiers", "only TIER_CHANGED uses toTiers");
    }
    if (!p.anomaly_kinds.is_empty() || p.min_severity.is_some())
        && input.trigger != Trigger::Anomaly
    {
        bad(
            if p.anomaly_kinds.is_empty() {
                "minSeverity"
            } else {
                "anomalyKinds"
            },
            "only ANOMALY uses anomalyKinds and minSeverity",
        );
    }
    if p.anomaly_kinds
        .iter()
        .any(|k| crate::anomalies::Kind::parse(k).is_none())
    {
        bad("anomalyKinds", "kinds are SPIKE or DROP");
    }
    if p.min_severity
        .as_deref()
        .is_some_and(|s| crate::anomalies::Severity::parse(s).is_none())
    {
        bad("minSeverity", "severities are MODERATE or HIGH");
    }
    if p.to_tiers.iter().any(|t| !TIERS.contains(&t.as_str())) {
        bad("toTiers", "tiers are HOT, WARM, COLD or INACTIVE");
    }
    if input
        .filter
        .tiers
        .iter()
        .any(|t| !TIERS.contains(&t.as_str()))
    {
        bad("filter.tiers", "tiers are HOT, WARM, COLD or INACTIVE");
    }
    if input.filter.tags.len() > 50 || input.filter.tags.iter().any(|t| t.chars().count() > 100) {
        bad("filter.tags", "at most 50 tags of at most 100 characters");
    }
    if !(0..=MAX_COOLDOWN_MINUTES).contains(&input.cooldown_minutes) {
        bad("cooldownMinutes", "must be between 0 and 43200 (30 days)");
    }
    if input.recipients.len() > 100 {
        bad("recipientIds", "at most 100 members");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

fn admin(actor: &Actor) -> Result<()> {
    actor.require_role(Role::Admin)?;
    actor.require_scope("admin")
}

/// Refuses recipients who are not members of the organization, and an account not in it.
async fn check_references(
    db: &impl ConnectionTrait,
    actor: &Actor,
    input: &RuleInput,
) -> Result<()> {
    if !input.recipients.is_empty() {
        let mut wanted = input.recipients.clone();
        wanted.sort();
        wanted.dedup();
        let found = memberships::Entity::find()
            .filter(memberships::Column::OrganizationId.eq(actor.organization_id))
            .filter(memberships::Column::UserId.is_in(wanted.clone()))
            .count(db)
            .await?;
        if found != wanted.len() as u64 {
            return Err(Error::invalid(
                "input.recipientIds",
                "every recipient must be a member of the organization",
            ));
        }
    }
    if let Some(account) = input.filter.account_id {
        let exists = entity::companies::Entity::find()
            .filter(entity::companies::Column::OrganizationId.eq(actor.organization_id))
            .filter(entity::companies::Column::Id.eq(account))
            .count(db)
            .await?;
        if exists == 0 {
            return Err(Error::invalid("input.filter.accountId", "no such account"));
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The organization's rules, oldest first (ADMIN).
pub async fn list_rules(db: &impl ConnectionTrait, actor: &Actor) -> Result<Vec<Rule>> {
    admin(actor)?;
    Ok(alert_rules::Entity::find()
        .filter(alert_rules::Column::OrganizationId.eq(actor.organization_id))
        .order_by_asc(alert_rules::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter_map(Rule::from_row)
        .collect())
}

async fn find_rule(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<alert_rules::Model> {
    alert_rules::Entity::find_by_id(id)
        .filter(alert_rules::Column::OrganizationId.eq(actor.organization_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound {
            entity: "alert rule",
        })
}

/// Creates a rule (ADMIN). It watches what happens from now on.
pub async fn create_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &crate::Meta,
    out: &Outbound<'_>,
    mut input: RuleInput,
) -> Result<Rule> {
    admin(actor)?;
    input.name = input.name.trim().to_owned();
    check(&input)?;
    let slack = seal_slack(out, &input.slack).await?.flatten();
    // Positions for what has committed, so the cursor below starts after it.
    crate::events::sequence(db).await?;
    let txn = crate::db::begin(db).await?;
    check_references(&txn, actor, &input).await?;
    let held = alert_rules::Entity::find()
        .filter(alert_rules::Column::OrganizationId.eq(actor.organization_id))
        .count(&txn)
        .await?;
    if held >= MAX_RULES {
        return Err(Error::invalid(
            "input",
            format!("an organization holds at most {MAX_RULES} alert rules"),
        ));
    }
    let now = Utc::now();
    let row = alert_rules::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(actor.organization_id),
        name: Set(input.name.clone()),
        trigger: Set(input.trigger.as_str().into()),
        params: Set(to_json(&input.params)?),
        filter: Set(to_json(&input.filter)?),
        recipients: Set(to_json(&input.recipients)?),
        cooldown_minutes: Set(input.cooldown_minutes),
        enabled: Set(input.enabled),
        checked_until: Set(None),
        channels: Set(Some(to_json(&input.channels)?)),
        slack_url: Set(slack),
        created_by: Set(actor.user_id()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    crate::audit::record(
        &txn,
        meta,
        crate::audit::Entry::by(actor, "alert_rule.created")
            .target("alert_rule", row.id)
            .metadata(json!({"name": row.name, "trigger": row.trigger})),
    )
    .await?;
    // The rule sees every event committed from now on, whenever the evaluator next runs.
    super::evaluate::ensure_cursor(&txn).await?;
    txn.commit().await?;
    Rule::from_row(row).ok_or_else(|| Error::Internal("stored rule unreadable".into()))
}

/// Replaces a rule's settings (ADMIN). Its cooldowns stay.
pub async fn update_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &crate::Meta,
    out: &Outbound<'_>,
    id: Uuid,
    mut input: RuleInput,
) -> Result<Rule> {
    admin(actor)?;
    input.name = input.name.trim().to_owned();
    check(&input)?;
    let slack = seal_slack(out, &input.slack).await?;
    let txn = crate::db::begin(db).await?;
    let row = find_rule(&txn, actor, id).await?;
    check_references(&txn, actor, &input).await?;
    let mut active = row.into_active_model();
    active.name = Set(input.name.clone());
    active.trigger = Set(input.trigger.as_str().into());
    active.params = Set(to_json(&input.params)?);
    active.filter = Set(to_json(&input.filter)?);
    active.recipients = Set(to_json(&input.recipients)?);
    active.cooldown_minutes = Set(input.cooldown_minutes);
    active.enabled = Set(input.enabled);
    active.channels = Set(Some(to_json(&input.channels)?));
    if let Some(slack) = slack {
        active.slack_url = Set(slack);
    }
    active.updated_at = Set(Utc::now());
    let row = active.update(&txn).await?;
    crate::audit::record(
        &txn,
        meta,
        crate::audit::Entry::by(actor, "alert_rule.updated")
            .target("alert_rule", row.id)
            .metadata(json!({"name": row.name, "trigger": row.trigger, "enabled": row.enabled})),
    )
    .await?;
    txn.commit().await?;
    Rule::from_row(row).ok_or_else(|| Error::Internal("stored rule unreadable".into()))
}

/// Deletes a rule and its cooldowns (ADMIN); its notifications stay.
pub async fn delete_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    meta: &crate::Meta,
    id: Uuid,
) -> Result<()> {
    admin(actor)?;
    let txn = crate::db::begin(db).await?;
    let row = find_rule(&txn, actor, id).await?;
    entity::alert_cooldowns::Entity::delete_many()
        .filter(entity::alert_cooldowns::Column::OrganizationId.eq(actor.organization_id))
        .filter(entity::alert_cooldowns::Column::RuleId.eq(id))
        .exec(&txn)
        .await?;
    alert_rules::Entity::delete_by_id(id).exec(&txn).await?;
    crate::audit::record(
        &txn,
        meta,
        crate::audit::Entry::by(actor, "alert_rule.deleted")
            .target("alert_rule", id)
            .metadata(json!({"name": row.name})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
