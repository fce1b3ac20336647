//! The signal pipeline over GraphQL: ingest, signals, sources, scores, scoring
//! configuration and usage. Resolvers read the actor, call one `domain::` function and wrap it.

mod inputs;
mod scoring;
mod types;

pub use inputs::*;
pub use scoring::*;
pub use types::*;

use async_graphql::{Context, ID, InputObject, Json, Object};

use crate::auth::ratelimit::Limiter;
use crate::graphql::common::ListConnection;
use crate::graphql::common::{client_ip, meta, state};
use crate::graphql::common::{db, read_db};
use crate::graphql::crm::types::Account;
use crate::graphql::{GqlResultExt, actor, gql_error};
use crate::ingest::{ingest, ingest_one_signal};

#[derive(Default)]
pub struct SignalQuery;

#[Object]
impl SignalQuery {
    /// The organization's signals, newest event first.
    #[graphql(
        complexity = "crate::graphql::common::list_complexity(first, None, crate::graphql::DEFAULT_PAGE_SIZE, child_complexity)"
    )]
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
        let s = domain::signals::get(&*db(ctx).await?, actor(ctx)?, id)
            .await
            .gql()?;
        Ok(Signal(s))
    }

    /// The organization's signal sources, oldest first (the built-in API and Segment sources
    /// appear once used).
    async fn signal_sources(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SignalSource>> {
        let rows = domain::signals::sources::list(&*db(ctx).await?, actor(ctx)?)
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
            &*read_db(ctx).await?,
            actor(ctx)?,
            u64::try_from(first).unwrap_or(0),
            tier.map(Tier::as_str),
        )
        .await
        .gql()?;
        Ok(rows
            .into_iter()
            .map(|(c, score)| Account::scored((c, Some(score))))
            .collect())
    }

    /// A recompute started by `recomputeScores`, with its progress (ADMIN).
    async fn score_recompute(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ScoreRecompute> {
        let id = crate::graphql::common::parse_id(&id, "ScoreRecompute").gql()?;
        let r = domain::scoring::recompute(&*db(ctx).await?, actor(ctx)?, id)
            .await
            .gql()?;
        Ok(ScoreRecompute(r))
    }

    /// The organization's scoring configuration.
    async fn scoring_config(&self, ctx: &Context<'_>) -> async_graphql::Result<ScoringConfig> {
        let v = domain::scoring::config(&*db(ctx).await?, actor(ctx)?)
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
        let actor = actor(ctx)?;
        let current = domain::scoring::config(&*db(ctx).await?, actor)
            .await
            .gql()?;
        let rows = domain::scoring::preview(&*db(ctx).await?, actor, input.apply(current.config))
            .await
            .gql()?;
        Ok(rows
            .into_iter()
            .map(|r| TierChangePreview {
                account: Account::new(r.account),
                current_score: r.current_score,
                current_tier: r.current_tier.as_deref().and_then(Tier::parse),
                new_score: r.new_score,
                new_tier: Tier::parse(r.new_tier).unwrap_or(Tier::Inactive),
            })
            .collect())
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

    /// Recomputes every scored or recently active account under the current configuration
    /// (ADMIN), in the background; returns the recompute, whose progress `scoreRecompute(id)`
    /// reads. While one is running, returns that one.
    async fn recompute_scores(&self, ctx: &Context<'_>) -> async_graphql::Result<ScoreRecompute> {
        let st = state(ctx)?;
        let r = domain::scoring::recompute_all(&st.db, actor(ctx)?)
            .await
            .gql()?;
        Ok(ScoreRecompute(r))
    }
}
