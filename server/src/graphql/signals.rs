//! The signal pipeline over GraphQL: ingest, signals, sources, scores, scoring
//! configuration and usage. Resolvers read the actor, call one `domain::` function and wrap it.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{account_scores, signal_sources, signals};
use uuid::Uuid;

use super::common::{ListConnection, connection, opt_input_id, page_request};
use super::common::{client_ip, meta, state};
use super::crm::loaders::{AccountId, ContactId, CrmLoader};
use super::crm::types::{Account, Contact, load};
use crate::auth::ratelimit::Limiter;
use crate::graphql::{GqlResultExt, actor, gql_error};
use crate::ingest::{ingest, ingest_one_signal};

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
    fn as_str(self) -> &'static str {
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
        let rows = domain::scoring::by_accounts(&self.db, self.actor()?, ids)
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
        let rows = domain::signals::sources::by_ids(&self.db, self.actor()?, ids)
            .await
            .map_err(gql_error)?;
        Ok(rows.into_iter().map(|m| (SourceId(m.id), m)).collect())
    }
}

impl super::crm::types::LoadKey for ScoreOf {
    type Model = account_scores::Model;
}
impl super::crm::types::LoadKey for SourceId {
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
            .map(Account))
    }
    async fn anonymous_id(&self) -> Option<&str> {
        self.0.anonymous_id.as_deref()
    }
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(self.0.metadata.clone())
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
    /// `user_count`, `usage_velocity`, `feature_breadth`, `engagement_recency`,
    /// `signal_freshness`, `seniority_signals` or `firmographic_fit`.
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
    let req = page_request(first, after, None, None)?;
    let page = domain::signals::list(&state(ctx)?.db, actor, &filter, &req)
        .await
        .gql()?;
    Ok(connection(page, Signal))
}

/// Who did it, as the sender knows them: DevSignal finds or creates the contact.
#[derive(InputObject, Default)]
pub struct ActorHintsInput {
    pub email: Option<String>,
    pub github: Option<String>,
    pub npm: Option<String>,
    pub twitter: Option<String>,
    pub linkedin: Option<String>,
    pub name: Option<String>,
}

/// Which company it was, as the sender knows it: DevSignal finds or creates the account.
#[derive(InputObject, Default)]
pub struct AccountHintsInput {
    pub domain: Option<String>,
    pub name: Option<String>,
    pub github_org: Option<String>,
}

/// One signal to ingest.
#[derive(InputObject)]
pub struct SignalInput {
    /// The source (default: the built-in API source).
    pub source_id: Option<ID>,
    /// What happened, e.g. `repo_star` (1 to 100 characters).
    pub r#type: String,
    /// A known contact.
    pub actor_id: Option<ID>,
    /// A known account.
    pub account_id: Option<ID>,
    /// `github:<login>`, `npm:<user>`, an email, or any fingerprint.
    pub anonymous_id: Option<String>,
    /// A JSON object (at most 64 KB).
    pub metadata: Option<Json<serde_json::Value>>,
    /// A repeated key (per organization) returns the original signal.
    pub idempotency_key: Option<String>,
    /// When it happened (default: now; at most 24 hours ahead).
    pub timestamp: Option<DateTime<Utc>>,
    pub actor: Option<ActorHintsInput>,
    pub account: Option<AccountHintsInput>,
}

impl From<SignalInput> for domain::signals::Input {
    fn from(i: SignalInput) -> Self {
        domain::signals::Input {
            source_id: i.source_id.map(|v| v.0),
            signal_type: i.r#type,
            actor_id: i.actor_id.map(|v| v.0),
            account_id: i.account_id.map(|v| v.0),
            anonymous_id: i.anonymous_id,
            metadata: i.metadata.map(|j| j.0),
            idempotency_key: i.idempotency_key,
            timestamp: i.timestamp.map(|t| t.to_rfc3339()),
            actor: i.actor.map(|a| domain::signals::ActorHints {
                email: a.email,
                github: a.github,
                npm: a.npm,
                twitter: a.twitter,
                linkedin: a.linkedin,
                name: a.name,
                user_id: None,
            }),
            account: i.account.map(|a| domain::signals::AccountHints {
                domain: a.domain,
                name: a.name,
                github_org: a.github_org,
            }),
            contact_traits: None,
            account_traits: None,
            profile_only: false,
        }
    }
}

/// The outcome of `ingestSignal`.
#[derive(SimpleObject)]
pub struct IngestSignalPayload {
    pub signal: Signal,
    /// `true` when an earlier signal (same idempotency key, or same content within 24 hours)
    /// was returned instead of storing a new one.
    pub deduplicated: bool,
}

/// A field that failed validation.
#[derive(SimpleObject)]
pub struct IngestFieldError {
    pub field: String,
    pub message: String,
}

/// Why one item of a batch failed.
#[derive(SimpleObject)]
pub struct IngestError {
    /// `BAD_USER_INPUT`, …
    pub code: String,
    pub message: String,
    pub fields: Vec<IngestFieldError>,
}

/// One item of `ingestSignals`.
#[derive(SimpleObject)]
pub struct IngestItemResult {
    /// The item's position in the input list.
    pub index: i32,
    pub success: bool,
    pub signal: Option<Signal>,
    pub deduplicated: bool,
    pub error: Option<IngestError>,
}

/// Counts of a batch.
#[derive(SimpleObject)]
pub struct IngestSummary {
    pub total: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub deduplicated: i32,
}

/// The outcome of `ingestSignals`.
#[derive(SimpleObject)]
pub struct IngestSignalsPayload {
    pub results: Vec<IngestItemResult>,
    pub summary: IngestSummary,
}

pub(crate) fn ingest_error(e: &domain::Error) -> IngestError {
    let fields = match e {
        domain::Error::Validation(errs) => errs
            .iter()
            .map(|f| IngestFieldError {
                field: f.field.clone(),
                message: f.message.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    IngestError {
        code: e.code().to_owned(),
        message: e.public_message(),
        fields,
    }
}

/// Which signals to list.
#[derive(InputObject, Default)]
pub struct SignalFilter {
    /// Only these types.
    pub r#type: Option<Vec<String>>,
    /// Only from this source.
    pub source: Option<ID>,
    pub account: Option<ID>,
    pub contact: Option<ID>,
    /// Event time at or after.
    pub from: Option<DateTime<Utc>>,
    /// Event time before.
    pub to: Option<DateTime<Utc>>,
}

impl SignalFilter {
    fn into_domain(self) -> async_graphql::Result<domain::signals::Filter> {
        Ok(domain::signals::Filter {
            types: self.r#type.unwrap_or_default(),
            source_id: opt_input_id(self.source, "filter.source")?,
            account_id: opt_input_id(self.account, "filter.account")?,
            contact_id: opt_input_id(self.contact, "filter.contact")?,
            from: self.from,
            to: self.to,
        })
    }
}

/// Tier thresholds.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "TierThresholdsInput")]
pub struct TierThresholds {
    pub hot: i32,
    pub warm: i32,
    pub cold: i32,
}

/// A factor's weight: its maximum points.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "FactorWeightInput")]
pub struct FactorWeight {
    pub factor: String,
    pub weight: f64,
}

/// A signal type's half-life, in days.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "HalfLifeInput")]
pub struct HalfLife {
    pub signal_type: String,
    pub days: f64,
}

/// An organization's scoring configuration.
#[derive(SimpleObject)]
pub struct ScoringConfig {
    /// 0 while the defaults were never changed.
    pub version: i32,
    pub thresholds: TierThresholds,
    pub weights: Vec<FactorWeight>,
    pub half_lives: Vec<HalfLife>,
    /// For types not listed.
    pub default_half_life: f64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<domain::scoring::ConfigVersion> for ScoringConfig {
    fn from(v: domain::scoring::ConfigVersion) -> Self {
        let c = v.config;
        ScoringConfig {
            version: v.version,
            thresholds: TierThresholds {
                hot: c.thresholds.hot,
                warm: c.thresholds.warm,
                cold: c.thresholds.cold,
            },
            weights: domain::scoring::FACTORS
                .iter()
                .map(|(n, _, _)| FactorWeight {
                    factor: (*n).to_owned(),
                    weight: c.weight(n),
                })
                .collect(),
            half_lives: c
                .half_lives
                .iter()
                .map(|(t, d)| HalfLife {
                    signal_type: t.clone(),
                    days: *d,
                })
                .collect(),
            default_half_life: c.default_half_life,
            updated_at: v.created_at,
        }
    }
}

/// Changes to the scoring configuration; what is left out keeps its current value, and
/// half-lives given are added to (or replace entries of) the current table.
#[derive(InputObject, Default)]
pub struct ScoringConfigInput {
    pub thresholds: Option<TierThresholds>,
    pub weights: Option<Vec<FactorWeight>>,
    pub half_lives: Option<Vec<HalfLife>>,
    pub default_half_life: Option<f64>,
}

impl ScoringConfigInput {
    fn apply(self, mut c: domain::scoring::Config) -> domain::scoring::Config {
        if let Some(t) = self.thresholds {
            c.thresholds = domain::scoring::Thresholds {
                hot: t.hot,
                warm: t.warm,
                cold: t.cold,
            };
        }
        for w in self.weights.unwrap_or_default() {
            c.weights.insert(w.factor, w.weight);
        }
        for h in self.half_lives.unwrap_or_default() {
            c.half_lives.insert(h.signal_type, h.days);
        }
        if let Some(d) = self.default_half_life {
            c.default_half_life = d;
        }
        c
    }
}

/// An account whose tier a proposed configuration would change.
#[derive(SimpleObject)]
pub struct TierChangePreview {
    pub account: Account,
    pub current_score: Option<i32>,
    pub current_tier: Option<Tier>,
    pub new_score: i32,
    pub new_tier: Tier,
}

/// The organization's usage this calendar month (UTC). Counting only; limits come with billing.
#[derive(SimpleObject)]
pub struct Usage {
    pub period_start: DateTime<Utc>,
    /// Signals ingested since `periodStart`.
    pub signals_this_month: u64,
    pub contacts: u64,
}

#[derive(Default)]
pub struct SignalQuery;

#[Object]
impl SignalQuery {
    /// The organization's signals, newest event first.
    async fn signals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        filter: Option<SignalFilter>,
    ) -> async_graphql::Result<ListConnection<Signal>> {
        let filter = filter.unwrap_or_default().into_domain()?;
        signal_page(ctx, filter, first, after).await
    }

    /// One signal by id.
    async fn signal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Signal> {
        let id = crate::graphql::common::parse_id(&id, "Signal").gql()?;
        let s = domain::signals::get(&state(ctx)?.db, actor(ctx)?, id)
            .await
            .gql()?;
        Ok(Signal(s))
    }

    /// The organization's signal sources, oldest first (the built-in API and Segment sources
    /// appear once used).
    async fn signal_sources(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SignalSource>> {
        let rows = domain::signals::sources::list(&state(ctx)?.db, actor(ctx)?)
            .await
            .gql()?;
        Ok(rows.into_iter().map(SignalSource).collect())
    }

    /// The highest-scoring accounts (at most `first`, 1 to 100), optionally of one tier.
    async fn top_accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        tier: Option<Tier>,
    ) -> async_graphql::Result<Vec<Account>> {
        let rows = domain::scoring::top_accounts(
            &state(ctx)?.db,
            actor(ctx)?,
            u64::try_from(first).unwrap_or(0),
            tier.map(Tier::as_str),
        )
        .await
        .gql()?;
        Ok(rows.into_iter().map(|(c, _)| Account(c)).collect())
    }

    /// The organization's scoring configuration.
    async fn scoring_config(&self, ctx: &Context<'_>) -> async_graphql::Result<ScoringConfig> {
        let v = domain::scoring::config(&state(ctx)?.db, actor(ctx)?)
            .await
            .gql()?;
        Ok(v.into())
    }

    /// The accounts whose tier would change under the proposed configuration (ADMIN). Nothing
    /// is saved.
    async fn preview_scoring_config(
        &self,
        ctx: &Context<'_>,
        input: ScoringConfigInput,
    ) -> async_graphql::Result<Vec<TierChangePreview>> {
        let st = state(ctx)?;
        let actor = actor(ctx)?;
        let current = domain::scoring::config(&st.db, actor).await.gql()?;
        let rows = domain::scoring::preview(&st.db, actor, input.apply(current.config))
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|r| TierChangePreview {
                account: Account(r.account),
                current_score: r.current_score,
                current_tier: r.current_tier.as_deref().and_then(Tier::parse),
                new_score: r.new_score,
                new_tier: Tier::parse(r.new_tier).unwrap_or(Tier::Inactive),
            })
            .collect())
    }

    /// Signals ingested this month and contacts held.
    async fn usage(&self, ctx: &Context<'_>) -> async_graphql::Result<Usage> {
        let u = domain::signals::usage(&state(ctx)?.db, actor(ctx)?)
            .await
            .gql()?;
        Ok(Usage {
            period_start: u.period_start,
            signals_this_month: u.signals,
            contacts: u.contacts,
        })
    }
}

/// A new signal source.
#[derive(InputObject)]
pub struct CreateSignalSourceInput {
    pub kind: String,
    pub name: String,
    pub status: Option<SignalSourceStatus>,
    /// Public settings, a JSON object.
    pub config: Option<Json<serde_json::Value>>,
    /// Secret settings, a JSON object of strings; stored encrypted and never shown again.
    pub secrets: Option<Json<serde_json::Value>>,
}

/// Changes to a signal source; what is left out stays.
#[derive(InputObject)]
pub struct UpdateSignalSourceInput {
    pub name: Option<String>,
    pub status: Option<SignalSourceStatus>,
    pub config: Option<Json<serde_json::Value>>,
    /// Keys set to strings are stored, keys set to null removed, others kept.
    pub secrets: Option<Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct SignalMutation;

#[Object]
impl SignalMutation {
    /// Ingests one signal (MEMBER+, key scope `signals:write`).
    async fn ingest_signal(
        &self,
        ctx: &Context<'_>,
        input: SignalInput,
    ) -> async_graphql::Result<IngestSignalPayload> {
        let st = state(ctx)?;
        st.identity
            .count_against(Limiter::Signal, &client_ip(ctx))
            .await
            .gql()?;
        let r = ingest_one_signal(
            st,
            actor(ctx)?,
            input.into(),
            domain::signals::system_source::API,
        )
        .await
        .gql()?;
        Ok(IngestSignalPayload {
            signal: Signal(r.signal.ok_or_else(|| {
                gql_error(domain::Error::Internal("an ingest stored no signal".into()))
            })?),
            deduplicated: r.deduplicated,
        })
    }

    /// Ingests up to 1,000 signals. Each item succeeds or fails on its own (fields named
    /// `inputs.<index>.<field>`).
    async fn ingest_signals(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<SignalInput>,
    ) -> async_graphql::Result<IngestSignalsPayload> {
        let st = state(ctx)?;
        st.identity
            .count_against(Limiter::Signal, &client_ip(ctx))
            .await
            .gql()?;
        let inputs = inputs.into_iter().map(Into::into).collect();
        let results = ingest(
            st,
            actor(ctx)?,
            inputs,
            "inputs",
            domain::signals::system_source::API,
        )
        .await
        .gql()?;
        Ok(batch_payload(results))
    }

    /// Adds a signal source (ADMIN).
    async fn create_signal_source(
        &self,
        ctx: &Context<'_>,
        input: CreateSignalSourceInput,
    ) -> async_graphql::Result<SignalSource> {
        let st = state(ctx)?;
        let m = domain::signals::sources::create(
            &st.db,
            actor(ctx)?,
            &meta(ctx),
            st.webhooks.cipher(),
            domain::signals::sources::Input {
                kind: Some(input.kind),
                name: Some(input.name),
                status: input.status.map(|s| s.as_str().to_owned()),
                config: input.config.map(|j| j.0),
                secrets: input.secrets.map(|j| j.0),
            },
        )
        .await
        .gql()?;
        Ok(SignalSource(m))
    }

    /// Changes a signal source (ADMIN).
    async fn update_signal_source(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateSignalSourceInput,
    ) -> async_graphql::Result<SignalSource> {
        let st = state(ctx)?;
        let id = crate::graphql::common::parse_id(&id, "SignalSource").gql()?;
        let m = domain::signals::sources::update(
            &st.db,
            actor(ctx)?,
            &meta(ctx),
            st.webhooks.cipher(),
            id,
            domain::signals::sources::Input {
                kind: None,
                name: input.name,
                status: input.status.map(|s| s.as_str().to_owned()),
                config: input.config.map(|j| j.0),
                secrets: input.secrets.map(|j| j.0),
            },
        )
        .await
        .gql()?;
        Ok(SignalSource(m))
    }

    /// Saves a new version of the scoring configuration (ADMIN). Scores move to it as accounts
    /// are rescored; `recomputeScores` applies it at once.
    async fn update_scoring_config(
        &self,
        ctx: &Context<'_>,
        input: ScoringConfigInput,
    ) -> async_graphql::Result<ScoringConfig> {
        let st = state(ctx)?;
        let actor = actor(ctx)?;
        let current = domain::scoring::config(&st.db, actor).await.gql()?;
        let v =
            domain::scoring::update_config(&st.db, actor, &meta(ctx), input.apply(current.config))
                .await
                .gql()?;
        Ok(v.into())
    }

    /// Recomputes every scored or recently active account now (ADMIN); returns how many.
    async fn recompute_scores(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let st = state(ctx)?;
        let n = domain::scoring::recompute_all(&st.db, actor(ctx)?)
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

pub(crate) fn batch_payload(
    results: Vec<domain::Result<domain::signals::Ingested>>,
) -> IngestSignalsPayload {
    let mut summary = IngestSummary {
        total: 0,
        succeeded: 0,
        failed: 0,
        deduplicated: 0,
    };
    let results = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            summary.total += 1;
            match r {
                Ok(ok) => {
                    summary.succeeded += 1;
                    summary.deduplicated += i32::from(ok.deduplicated);
                    IngestItemResult {
                        index: i as i32,
                        success: true,
                        deduplicated: ok.deduplicated,
                        signal: ok.signal.map(Signal),
                        error: None,
                    }
                }
                Err(e) => {
                    summary.failed += 1;
                    IngestItemResult {
                        index: i as i32,
                        success: false,
                        deduplicated: false,
                        signal: None,
                        error: Some(ingest_error(&e)),
                    }
                }
            }
        })
        .collect();
    IngestSignalsPayload { results, summary }
}
