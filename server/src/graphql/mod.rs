//! The GraphQL API: one schema, assembled here from per-domain parts. Each domain module holds its
//! `XQuery` / `XMutation` / `XSubscription`, its types and loaders; this file alone lists them in
//! the merged roots. Resolvers read the actor, call one `domain::` function and wrap the result.
//!
//! Every error leaves with `extensions.code`: domain errors through [`gql_error`], parse and
//! validation failures (including the depth and complexity limits) through [`pipeline`], the
//! steps around the schema (it has no async-graphql extensions: they slow every field). What
//! one request may ask for is bounded before it runs
//! ([`limits`]: document size, expanded fields, aliases, fragments, mutation fields, relation
//! cycles; complexity multiplied by each list's page size) and while it runs (the transport's
//! deadline and response size, [`socket`]'s operations per WebSocket connection, and the
//! pooled connections one request holds at once: [`common::db`] and the loaders take one of the
//! request's slots per statement, see [`crm::loaders`]).

mod after_commit;
pub mod anomalies;
pub mod backtest;
pub mod billing;
pub mod briefs;
pub mod common;
pub mod crm;
pub mod demo;
mod documents;
pub mod enrichment;
mod errors;
pub mod identity;
pub mod insight;
pub mod integrations;
pub mod jobs;
pub mod limits;
pub mod live;
pub mod merges;
pub mod notify;
mod nul;
mod pipeline;
pub mod privacy;
pub mod signals;
mod socket;
mod system;
pub mod transfers;
pub mod transport;
mod variables;
pub mod webhooks;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use common::{actor, require_role};
pub use errors::{GqlResultExt, gql_error};

use crate::state::AppState;

/// The deepest selection nesting a query may have. GraphiQL's introspection query needs 13.
pub const MAX_DEPTH: usize = 16;
/// The most fields one query may select, each list or connection's fields counted once per row
/// it may return (its `first` or `last`, else [`DEFAULT_PAGE_SIZE`]): two nested lists of 100
/// rows already pass it.
pub const MAX_COMPLEXITY: usize = 5_000;
/// The page size of a list whose `first` is not given.
pub const DEFAULT_PAGE_SIZE: usize = 20;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    system::SystemQuery,
    identity::session::SessionQuery,
    identity::organizations::OrganizationQuery,
    identity::api_keys::ApiKeyQuery,
    identity::audit::AuditQuery,
    crm::CrmQuery,
    crm::deals::DealQuery,
    crm::activities::ActivityQuery,
    crm::search::SearchQuery,
    webhooks::WebhookQuery,
    jobs::JobQuery,
    signals::SignalQuery,
    insight::InsightQuery,
    insight::AlertQuery,
    notify::NotifyQuery,
    notify::DigestQuery,
    anomalies::AnomalyQuery,
    backtest::BacktestQuery,
    merges::MergeQuery,
    integrations::IntegrationQuery,
    briefs::BriefQuery,
    billing::BillingQuery,
    demo::DemoQuery,
    privacy::PrivacyQuery,
    transfers::ImportQuery,
    transfers::ExportQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    identity::session::SessionMutation,
    identity::organizations::OrganizationMutation,
    identity::api_keys::ApiKeyMutation,
    crm::CrmMutation,
    crm::deals::DealMutation,
    crm::activities::ActivityMutation,
    webhooks::WebhookMutation,
    jobs::JobMutation,
    signals::SignalMutation,
    merges::MergeMutation,
    integrations::IntegrationMutation,
    enrichment::EnrichmentMutation,
    insight::AlertMutation,
    notify::NotifyMutation,
    briefs::BriefMutation,
    billing::BillingMutation,
    anomalies::AnomalyMutation,
    demo::DemoMutation,
    privacy::PrivacyMutation,
    transfers::ImportMutation,
    transfers::ExportMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    system::SystemSubscription,
    live::LiveSubscription,
    notify::NotifySubscription,
    transfers::ImportSubscription,
);

pub use pipeline::AppSchema;

/// The schema with its limits, and the steps every operation passes through around it
/// ([`pipeline`]); `state` is absent only when printing the SDL.
pub fn schema(state: Option<AppState>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(limits::MAX_RECURSION);
    if let Some(state) = state {
        if !state.config.graphql_introspection {
            // Production by default: the schema is not offered to strangers, nor guessed at
            // through "Did you mean …?" hints (the committed `schema.graphql` is the contract).
            builder = builder.disable_introspection().disable_suggestions();
        }
        builder = builder.data(state);
    }
    AppSchema::new(builder.finish())
}

/// The SDL of the served schema: what `schema.graphql` must equal.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// The GraphQL transports' routes: queries and mutations over HTTP (queries by GET too),
/// subscriptions over WebSocket. (The GraphiQL page is a static page of the dashboard's, at
/// `/graphiql`; a browser opening the endpoint is sent there.) The HTTP layer wraps them in the
/// same middleware as every other route.
pub fn routes(schema: AppSchema) -> Router<AppState> {
    Router::new()
        .route(
            transport::GRAPHQL_PATH,
            post(transport::execute).get(transport::execute_get),
        )
        .route(transport::GRAPHQL_WS_PATH, get(transport::websocket))
        .layer(Extension(schema))
        .layer(Extension(socket::Connections::default()))
}
