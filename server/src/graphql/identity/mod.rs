//! Identity and access over GraphQL: sign-in flows, the viewer, organizations and members,
//! invitations, API keys and the audit log. Resolvers read the actor, call one `domain::`
//! function and wrap the result.

pub mod api_keys;
pub mod audit;
pub mod organizations;
pub mod session;
pub mod types;
