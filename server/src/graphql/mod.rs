//! The GraphQL API: one schema, assembled here from per-domain parts. Each domain module holds its
//! `XQuery` / `XMutation` / `XSubscription`, its types and loaders; this file alone lists them in
//! the merged roots. Resolvers read the actor, call one `domain::` function and wrap the result.
//!
//! Every error leaves with `extensions.code` (DESIGN 7): domain errors through [`gql_error`],
//! parse and validation failures (including the depth and complexity limits) through the
//! [`ErrorCodes`] extension.

pub mod crm;
mod errors;
pub mod identity;
pub mod integrations;
pub mod jobs;
pub mod live;
pub mod merges;
pub mod signals;
mod system;
pub mod webhooks;

use async_graphql::{MergedObject, MergedSubscription, Schema};

pub use errors::{ErrorCodes, GqlResultExt, actor, gql_error, require_role};

use crate::state::AppState;

/// The deepest selection nesting a query may have. GraphiQL's introspection query needs 13.
pub const MAX_DEPTH: usize = 16;
/// The most fields (each counted once, lists and connections weighted by their page size) that
/// one query may select.
pub const MAX_COMPLEXITY: usize = 5_000;

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
    merges::MergeQuery,
    integrations::IntegrationQuery,
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
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(system::SystemSubscription, live::LiveSubscription);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema with its limits and extensions; `state` is absent only when printing the SDL.
pub fn schema(state: Option<AppState>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .extension(ErrorCodes);
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The SDL of the served schema: what `schema.graphql` must equal.
pub fn sdl() -> String {
    schema(None).sdl()
}
