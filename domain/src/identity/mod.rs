//! Identity and access: who may act, and for which organization. Users and their passwords,
//! sessions (refresh-token families), API keys with scopes, organizations with their members,
//! roles and invitations, and single-use tokens (password reset, OAuth).

pub mod api_keys;
pub mod one_time;
pub mod organizations;
pub mod sessions;
pub mod users;
