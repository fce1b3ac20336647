//! Insight over GraphQL: score history (an account's daily scores and the organization's
//! accounts per tier per day) and alert rules (their channels and notifications: `notify.rs`).

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::score_snapshots;
use uuid::Uuid;

use crate::graphql::anomalies::{AnomalyKind, AnomalySeverity};
use crate::graphql::common::state;
use crate::graphql::common::{db, input_id, meta, parse_id};
use crate::graphql::crm::loaders::{CrmLoader, CrmLoaders};
use crate::graphql::notify::{AlertChannels, AlertChannelsInput, outbound};
use crate::graphql::signals::Tier;
use crate::graphql::{GqlResultExt, actor, gql_error};

/// An account's score on one day (captured nightly).
#[derive(SimpleObject)]
pub struct ScorePoint {
    /// The UTC day.
    pub date: NaiveDate,
    pub score: i32,
    pub tier: Tier,
    /// Signals of the 90-day window that day.
    pub signal_count: i32,
    /// Distinct active people that day.
    pub user_count: i32,
}

impl From<score_snapshots::Model> for ScorePoint {
    fn from(m: score_snapshots::Model) -> Self {
        ScorePoint {
            date: m.day,
            score: m.score,
            tier: Tier::parse(&m.tier).unwrap_or(Tier::Inactive),
            signal_count: m.signal_count,
            user_count: m.user_count,
        }
    }
}

/// The organization's scored accounts on one captured day, per tier.
#[derive(SimpleObject)]
pub struct ScoreTrendDay {
    /// The UTC day.
    pub date: NaiveDate,
    pub hot: u64,
    pub warm: u64,
    pub cold: u64,
    pub inactive: u64,
    /// All scored accounts that day.
    pub accounts: u64,
    /// Their average score, to one decimal.
    pub average_score: f64,
}

/// An account's history of the last `days` days, as a DataLoader key: the histories of a page's
/// accounts load in one statement.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct HistoryOf {
    pub account: Uuid,
    pub days: u32,
}

impl Loader<HistoryOf> for CrmLoader {
    type Value = Vec<score_snapshots::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[HistoryOf],
    ) -> Result<HashMap<HistoryOf, Self::Value>, Self::Error> {
        let mut by_days: HashMap<u32, Vec<Uuid>> = HashMap::new();
        for k in keys {
            by_days.entry(k.days).or_default().push(k.account);
        }
        let now = Utc::now();
        let mut out = HashMap::new();
        for (days, accounts) in by_days {
            let rows = domain::scoring::histories(
                &*self.db().await?,
                self.actor()?,
                accounts.clone(),
                days,
                now,
            )
            .await
            .map_err(gql_error)?;
            let mut rows = rows;
            for account in accounts {
                let history = rows.remove(&account).unwrap_or_default();
                out.insert(HistoryOf { account, days }, history);
            }
        }
        Ok(out)
    }
}

/// An account's score history (the `Account.scoreHistory` field).
pub(crate) async fn score_history(
    ctx: &Context<'_>,
    account: Uuid,
    days: i32,
) -> async_graphql::Result<Vec<ScorePoint>> {
    let days = domain::scoring::check_days(days).gql()?;
    let rows = ctx
        .data::<CrmLoaders>()?
        .load_one(HistoryOf { account, days })
        .await?
        .unwrap_or_default();
    Ok(rows.into_iter().map(ScorePoint::from).collect())
}

#[derive(Default)]
pub struct InsightQuery;

#[Object]
impl InsightQuery {
    /// The organization's scored accounts per tier for each captured day of the last `days`
    /// days (1 to 3660, default 30), oldest first; a day without a capture is absent.
    async fn score_trends(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Vec<ScoreTrendDay>> {
        let days = domain::scoring::check_days(days).gql()?;
        let rows = domain::scoring::trends(&*db(ctx).await?, actor(ctx)?, days, Utc::now())
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|d| ScoreTrendDay {
                date: d.day,
                hot: d.hot,
                warm: d.warm,
                cold: d.cold,
                inactive: d.inactive,
                accounts: d.accounts,
                average_score: d.average_score,
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Alert rules and notifications
// ---------------------------------------------------------------------------------------------

/// What makes an alert rule fire.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertTrigger {
    /// The score crosses `threshold` upward (from below it, or from no score).
    ScoreThreshold,
    /// The score rose at least `percent` % within `withinDays` days (against score history).
    ScoreRise,
    /// The score fell at least `percent` % within `withinDays` days.
    ScoreDrop,
    /// The tier changed (to one of `toTiers`, when given), including an account's first tier.
    TierChanged,
    /// A signal of one of `signalTypes` (any when empty) arrived.
    NewSignal,
    /// No signal for `withinDays` days (default 14); fires once per silence (checked every 5
    /// minutes).
    AccountInactive,
    /// The signals of the last `withinDays` days (default 7) fell at least `percent` % below
    /// the `withinDays` days before, which held at least 3 (checked every 5 minutes).
    EngagementDrop,
    /// A signal anomaly was detected (of `anomalyKinds`, both when empty; at least
    /// `minSeverity`, any when absent).
    Anomaly,
}

impl From<AlertTrigger> for domain::alerts::Trigger {
    fn from(t: AlertTrigger) -> Self {
        use domain::alerts::Trigger as T;
        match t {
            AlertTrigger::ScoreThreshold => T::ScoreThreshold,
            AlertTrigger::ScoreRise => T::ScoreRise,
            AlertTrigger::ScoreDrop => T::ScoreDrop,
            AlertTrigger::TierChanged => T::TierChanged,
            AlertTrigger::NewSignal => T::NewSignal,
            AlertTrigger::AccountInactive => T::AccountInactive,
            AlertTrigger::EngagementDrop => T::EngagementDrop,
            AlertTrigger::Anomaly => T::Anomaly,
        }
    }
}

impl From<domain::alerts::Trigger> for AlertTrigger {
    fn from(t: domain::alerts::Trigger) -> Self {
        use domain::alerts::Trigger as T;
        match t {
            T::ScoreThreshold => AlertTrigger::ScoreThreshold,
            T::ScoreRise => AlertTrigger::ScoreRise,
            T::ScoreDrop => AlertTrigger::ScoreDrop,
            T::TierChanged => AlertTrigger::TierChanged,
            T::NewSignal => AlertTrigger::NewSignal,
            T::AccountInactive => AlertTrigger::AccountInactive,
            T::EngagementDrop => AlertTrigger::EngagementDrop,
            T::Anomaly => AlertTrigger::Anomaly,
        }
    }
}

/// Which accounts a rule watches; all when nothing is given.
#[derive(InputObject, Default)]
pub struct AlertFilterInput {
    /// The account's current tier is one of these.
    pub tiers: Option<Vec<Tier>>,
    /// The account carries one of these tags.
    pub tags: Option<Vec<String>>,
    /// Only this account.
    pub account_id: Option<ID>,
}

/// An alert rule as written.
#[derive(InputObject)]
pub struct AlertRuleInput {
    pub name: String,
    pub trigger: AlertTrigger,
    /// SCORE_THRESHOLD: 1 to 100.
    pub threshold: Option<i32>,
    /// SCORE_RISE / SCORE_DROP / ENGAGEMENT_DROP: the change in percent (above 0, at most
    /// 1000; a drop of engagement at most 100).
    pub percent: Option<f64>,
    /// SCORE_RISE / SCORE_DROP / ENGAGEMENT_DROP: the window in days (1 to 90, default 7);
    /// ACCOUNT_INACTIVE: the days without a signal (default 14).
    pub within_days: Option<i32>,
    /// NEW_SIGNAL: the types that fire it (any when empty).
    pub signal_types: Option<Vec<String>>,
    /// TIER_CHANGED: the tiers that fire it (any when empty).
    pub to_tiers: Option<Vec<Tier>>,
    pub filter: Option<AlertFilterInput>,
    /// Members told in the app; every member when empty.
    pub recipient_ids: Option<Vec<ID>>,
    /// How long the rule stays quiet for an account after firing (0 to 43200, default 1440).
    #[graphql(default = 1440)]
    pub cooldown_minutes: i32,
    #[graphql(default = true)]
    pub enabled: bool,
    /// Where alerts go besides each recipient's in-app notifications (in-app only when absent).
    pub channels: Option<AlertChannelsInput>,
    /// ANOMALY: the kinds that fire it (both when empty).
    pub anomaly_kinds: Option<Vec<AnomalyKind>>,
    /// ANOMALY: the least severity that fires it (any when absent).
    pub min_severity: Option<AnomalySeverity>,
}

impl AlertRuleInput {
    fn into_domain(self) -> async_graphql::Result<domain::alerts::RuleInput> {
        let tiers = |v: Option<Vec<Tier>>| -> Vec<String> {
            v.unwrap_or_default()
                .into_iter()
                .map(|t| t.as_str().to_owned())
                .collect()
        };
        let channels = self.channels.unwrap_or_default().into_domain();
        let filter = self.filter.unwrap_or_default();
        let account_id = filter
            .account_id
            .as_ref()
            .map(|id| input_id(id, "input.filter.accountId"))
            .transpose()?;
        let recipients = self
            .recipient_ids
            .unwrap_or_default()
            .iter()
            .map(|id| input_id(id, "input.recipientIds"))
            .collect::<async_graphql::Result<Vec<Uuid>>>()?;
        Ok(domain::alerts::RuleInput {
            name: self.name,
            trigger: self.trigger.into(),
            params: domain::alerts::Params {
                threshold: self.threshold,
                percent: self.percent,
                within_days: self.within_days,
                signal_types: self.signal_types.unwrap_or_default(),
                to_tiers: tiers(self.to_tiers),
                anomaly_kinds: self
                    .anomaly_kinds
                    .unwrap_or_default()
                    .into_iter()
                    .map(|k| domain::anomalies::Kind::from(k).as_str().to_owned())
                    .collect(),
                min_severity: self
                    .min_severity
                    .map(|s| domain::anomalies::Severity::from(s).as_str().to_owned()),
            },
            filter: domain::alerts::Filter {
                tiers: tiers(filter.tiers),
                tags: filter.tags.unwrap_or_default(),
                account_id,
            },
            recipients,
            cooldown_minutes: self.cooldown_minutes,
            enabled: self.enabled,
            channels: channels.channels,
            slack: channels.slack,
        })
    }
}

/// Which accounts a rule watches.
#[derive(SimpleObject)]
pub struct AlertFilter {
    pub tiers: Vec<Tier>,
    pub tags: Vec<String>,
    pub account_id: Option<ID>,
}

/// An alert rule (ADMIN).
pub struct AlertRule(domain::alerts::Rule);

#[Object]
impl AlertRule {
    async fn id(&self) -> ID {
        ID(self.0.row.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.row.name
    }
    async fn trigger(&self) -> AlertTrigger {
        self.0.trigger.into()
    }
    async fn threshold(&self) -> Option<i32> {
        self.0.params.threshold
    }
    async fn percent(&self) -> Option<f64> {
        self.0.params.percent
    }
    /// The window in days of SCORE_RISE, SCORE_DROP, ENGAGEMENT_DROP (7 when not set) and
    /// ACCOUNT_INACTIVE (14); null for the other triggers.
    async fn within_days(&self) -> Option<i32> {
        self.0.params.within_days.or(self.0.trigger.default_days())
    }
    async fn signal_types(&self) -> &[String] {
        &self.0.params.signal_types
    }
    async fn to_tiers(&self) -> Vec<Tier> {
        self.0
            .params
            .to_tiers
            .iter()
            .filter_map(|t| Tier::parse(t))
            .collect()
    }
    /// ANOMALY: the kinds that fire it (both when empty).
    async fn anomaly_kinds(&self) -> Vec<AnomalyKind> {
        self.0
            .params
            .anomaly_kinds
            .iter()
            .filter_map(|k| domain::anomalies::Kind::parse(k))
            .map(AnomalyKind::from)
            .collect()
    }
    /// ANOMALY: the least severity that fires it (null: any).
    async fn min_severity(&self) -> Option<AnomalySeverity> {
        self.0
            .params
            .min_severity
            .as_deref()
            .and_then(domain::anomalies::Severity::parse)
            .map(AnomalySeverity::from)
    }
    async fn filter(&self) -> AlertFilter {
        let f = &self.0.filter;
        AlertFilter {
            tiers: f.tiers.iter().filter_map(|t| Tier::parse(t)).collect(),
            tags: f.tags.clone(),
            account_id: f.account_id.map(|a| ID(a.to_string())),
        }
    }
    /// Members told in the app; empty: every member.
    async fn recipient_ids(&self) -> Vec<ID> {
        self.0
            .recipients
            .iter()
            .map(|r| ID(r.to_string()))
            .collect()
    }
    async fn cooldown_minutes(&self) -> i32 {
        self.0.row.cooldown_minutes
    }
    async fn channels(&self) -> AlertChannels {
        AlertChannels::of(&self.0)
    }
    async fn enabled(&self) -> bool {
        self.0.row.enabled
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// The organization's alert rules, oldest first (ADMIN).
    async fn alert_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AlertRule>> {
        let rows = domain::alerts::list_rules(&*db(ctx).await?, actor(ctx)?)
            .await
            .gql()?;
        Ok(rows.into_iter().map(AlertRule).collect())
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Creates an alert rule (ADMIN); it watches what happens from now on.
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        input: AlertRuleInput,
    ) -> async_graphql::Result<AlertRule> {
        let input = input.into_domain()?;
        let st = state(ctx)?;
        let out = outbound(st);
        let rule =
            domain::alerts::create_rule(&*db(ctx).await?, actor(ctx)?, &meta(ctx), &out, input)
                .await
                .gql()?;
        Ok(AlertRule(rule))
    }

    /// Replaces an alert rule's settings (ADMIN).
    async fn update_alert_rule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AlertRuleInput,
    ) -> async_graphql::Result<AlertRule> {
        let id = parse_id(&id, "alert rule").gql()?;
        let input = input.into_domain()?;
        let st = state(ctx)?;
        let out = outbound(st);
        let (db, actor) = (db(ctx).await?, actor(ctx)?);
        let rule = domain::alerts::update_rule(&db, actor, &meta(ctx), &out, id, input)
            .await
            .gql()?;
        Ok(AlertRule(rule))
    }

    /// Deletes an alert rule (ADMIN); the notifications it left stay.
    async fn delete_alert_rule(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = parse_id(&id, "alert rule").gql()?;
        domain::alerts::delete_rule(&*db(ctx).await?, actor(ctx)?, &meta(ctx), id)
            .await
            .gql()?;
        Ok(true)
    }
}
