//! sea-orm entities: the shape of each table, data only. No business rules live here, and no
//! entity derives GraphQL types (`server` wraps them, so a column never leaks by accident).

pub mod events;
pub mod organizations;
