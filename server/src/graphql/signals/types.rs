//! Signals, sources and scores as GraphQL types, with the loaders their fields use.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{account_scores, signal_sources, signals};
use uuid::Uuid;

use crate::graphql::common::read_db;
use crate::graphql::common::state;
use crate::graphql::common::{ListConnection, connection, page_request};
use crate::graphql::crm::loaders::{AccountId, ContactId, CrmLoader};
use crate::graphql::crm::types::{Account, Contact, load};
use crate::graphql::{GqlResultExt, actor, gql_error};

/// A PQA tier.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Tier {
    Hot,
    Warm,
    Cold,
    Inactive,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "HOT",
            Tier::Warm => "WARM",
            Tier::Cold => "COLD",
            Tier::Inactive => "INACTIVE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HOT" => Tier::Hot,
            "WARM" => Tier::Warm,
            "COLD" => Tier::Cold,
            "INACTIVE" => Tier::Inactive,
            _ => return None,
        })
    }
}

/// Where a score is heading compared with its previous value (±5 points).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Trend {
    Rising,
    Stable,
    Falling,
}

/// A source's state: a PAUSED source refuses new signals.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SignalSourceStatus {
    Active,
    Paused,
    Error,
}

impl SignalSourceStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SignalSourceStatus::Active => "ACTIVE",
            SignalSourceStatus::Paused => "PAUSED",
            SignalSourceStatus::Error => "ERROR",
        }
    }
}

/// A source's score row by account, as a DataLoader key.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ScoreOf(pub Uuid);

impl Loader<ScoreOf> for CrmLoader {
    type Value = account_scores::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ScoreOf]) -> Result<HashMap<ScoreOf, Self::Value>, Self::Error> {
        let ids = keys.iter().map(|k| k.0).collect();
        let rows = domain::scoring::by_accounts(&*self.db().await?, self.actor()?, ids)
            .await
            .map_err(gql_error)?;
        Ok(rows
            .into_iter()
            .map(|m| (ScoreOf(m.account_id), m))
            .collect())
    }
}

/// A signal source id, as a DataLoader key.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct SourceId(pub Uuid);

impl Loader<SourceId> for CrmLoader {
    type Value = signal_sources::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[SourceId]) -> Result<HashMap<SourceId, Self::Value>, Self::Error> {
        let ids = keys.iter().map(|k| k.0).collect();
        let rows = domain::signals::sources::by_ids(&*self.db().await?, self.actor()?, ids)
            .await
            .map_err(gql_error)?;
        Ok(rows.into_iter().map(|m| (SourceId(m.id), m)).collect())
    }
}

/// A signal id, as a DataLoader key (the metadata of signals handed out from the event log).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct SignalId(pub Uuid);

impl Loader<SignalId> for CrmLoader {
    type Value = signals::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[SignalId]) -> Result<HashMap<SignalId, Self::Value>, Self::Error> {
        let ids = keys.iter().map(|k| k.0).collect();
        let rows = domain::signals::by_ids(&*self.db().await?, self.actor()?, ids)
            .await
            .map_err(gql_error)?;
        Ok(rows.into_iter().map(|m| (SignalId(m.id), m)).collect())
    }
}

impl crate::graphql::crm::types::LoadKey for SignalId {
    type Model = signals::Model;
}

impl crate::graphql::crm::types::LoadKey for ScoreOf {
    type Model = account_scores::Model;
}
impl crate::graphql::crm::types::LoadKey for SourceId {
    type Model = signal_sources::Model;
}

/// One developer signal.
pub struct Signal(pub signals::Model);

#[Object]
impl Signal {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What happened, e.g. `repo_star`, `signup`, `Feature Activated`.
    async fn r#type(&self) -> &str {
        &self.0.signal_type
    }
    async fn source(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SignalSource>> {
        Ok(load(ctx, Some(SourceId(self.0.source_id)))
            .await?
            .map(SignalSource))
    }
    /// The person, when resolved.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(load(ctx, self.0.contact_id.map(ContactId))
            .await?
            .map(Contact))
    }
    /// The account, when resolved.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(load(ctx, self.0.account_id.map(AccountId))
            .await?
            .map(Account::new))
    }
    async fn anonymous_id(&self) -> Option<&str> {
        self.0.anonymous_id.as_deref()
    }
    async fn metadata(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<serde_json::Value>> {
        if !self.0.metadata.is_null() {
            return Ok(Json(self.0.metadata.clone()));
        }
        // A signal from the event log, which does not carry metadata: read it from the signal
        // (batched across the signals of one response). An erased signal has none.
        Ok(Json(
            load(ctx, Some(SignalId(self.0.id)))
                .await?
                .map_or_else(|| serde_json::json!({}), |s| s.metadata),
        ))
    }
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// When it happened (event time).
    async fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
    /// When DevSignal received it.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Where signals come from.
pub struct SignalSource(pub signal_sources::Model);

#[Object]
impl SignalSource {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// GITHUB, NPM, PYPI, SEGMENT, PRODUCT_API, CUSTOM_WEBHOOK, …
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn status(&self) -> SignalSourceStatus {
        match self.0.status.as_str() {
            "PAUSED" => SignalSourceStatus::Paused,
            "ERROR" => SignalSourceStatus::Error,
            _ => SignalSourceStatus::Active,
        }
    }
    /// The public settings.
    async fn config(&self) -> Json<serde_json::Value> {
        Json(self.0.config.clone())
    }
    /// The names of the stored secrets (their values are write-only).
    async fn secret_names(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(domain::signals::sources::secret_names(
            state(ctx)?.webhooks.cipher(),
            &self.0,
        ))
    }
    /// `true` for the built-in API and Segment sources.
    async fn built_in(&self) -> bool {
        self.0.system_key.is_some()
    }
    async fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_sync_at
    }
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One factor of a score, with what it was computed from.
#[derive(SimpleObject)]
pub struct ScoreFactor {
    /// The model's factor: under CALIBRATED `people`, `signal_volume`, `active_days`,
    /// `feature_breadth`, `recent_activity`, `seniority_signals`, `firmographic_fit`; under
    /// CLASSIC `user_count`, `usage_velocity`, `feature_breadth`, `engagement_recency`,
    /// `signal_freshness`, `seniority_signals`, `firmographic_fit`.
    name: String,
    points: f64,
    max_points: f64,
    description: String,
    /// The inputs, e.g. `{"distinctPeople": 3}`.
    inputs: Json<serde_json::Value>,
}

/// An account's PQA score (0-100) with its explanation.
pub struct AccountScore(pub account_scores::Model);

#[Object]
impl AccountScore {
    async fn score(&self) -> i32 {
        self.0.score
    }
    async fn tier(&self) -> Tier {
        Tier::parse(&self.0.tier).unwrap_or(Tier::Inactive)
    }
    async fn trend(&self) -> Trend {
        match self.0.trend.as_str() {
            "RISING" => Trend::Rising,
            "FALLING" => Trend::Falling,
            _ => Trend::Stable,
        }
    }
    async fn computed_at(&self) -> DateTime<Utc> {
        self.0.computed_at
    }
    /// Signals of the last 90 days.
    async fn signal_count(&self) -> i32 {
        self.0.signal_count
    }
    /// Distinct people active in the last 90 days.
    async fn user_count(&self) -> i32 {
        self.0.user_count
    }
    async fn last_signal_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_signal_at
    }
    /// The scoring configuration version it was computed with (0 = defaults).
    async fn config_version(&self) -> i32 {
        self.0.config_version
    }
    async fn factors(&self) -> Vec<ScoreFactor> {
        let factors: Vec<domain::scoring::Factor> =
            serde_json::from_value(self.0.factors.clone()).unwrap_or_default();
        factors
            .into_iter()
            .map(|f| ScoreFactor {
                name: f.name,
                points: f.points,
                max_points: f.max_points,
                description: f.description,
                inputs: Json(f.inputs),
            })
            .collect()
    }
}

pub(crate) async fn account_score(
    ctx: &Context<'_>,
    account_id: Uuid,
) -> async_graphql::Result<Option<AccountScore>> {
    Ok(load(ctx, Some(ScoreOf(account_id)))
        .await?
        .map(AccountScore))
}

/// A page of signals through the domain list.
pub(crate) async fn signal_page(
    ctx: &Context<'_>,
    filter: domain::signals::Filter,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ListConnection<Signal>> {
    let actor = actor(ctx)?;
    let req = page_request(ctx, first, after, None, None)?;
    let page = domain::signals::list(&*read_db(ctx).await?, actor, &filter, &req)
        .await
        .gql()?;
    Ok(connection(page, Signal))
}
