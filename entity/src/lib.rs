//! sea-orm entities: the shape of each table, data only. No business rules live here, and no
//! entity derives GraphQL types (`server` wraps them, so a column never leaks by accident).

pub mod activities;
pub mod api_keys;
pub mod audit_logs;
pub mod auth_tokens;
pub mod companies;
pub mod contacts;
pub mod deals;
pub mod events;
pub mod invitations;
pub mod memberships;
pub mod organizations;
pub mod sessions;
pub mod users;
