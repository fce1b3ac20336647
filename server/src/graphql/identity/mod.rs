//! Identity and access over GraphQL: sign-in flows, the viewer, organizations and members,
//! invitations, API keys and the audit log. Resolvers read the actor, call one `domain::`
//! function and wrap the result.

pub mod api_keys;
pub mod audit;
pub mod organizations;
pub mod session;
pub mod types;

use async_graphql::Context;
use domain::Meta;

use crate::auth::ClientIp;
use crate::state::AppState;

pub(crate) fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}

pub(crate) fn meta(ctx: &Context<'_>) -> Meta {
    ctx.data_opt::<Meta>().cloned().unwrap_or_default()
}

pub(crate) fn client_ip(ctx: &Context<'_>) -> ClientIp {
    ctx.data_opt::<ClientIp>()
        .cloned()
        .unwrap_or_else(|| ClientIp("unknown".into()))
}
