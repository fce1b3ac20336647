//! Alerts: an organization's rules (ADMIN), evaluated from the event log by one consumer
//! ([`evaluate`]), and the in-app notifications they leave for members.
//!
//! Files: `rules` (the rule's shape, its checks and its CRUD), `evaluate` (the consumer: which
//! events fire which rules, cooldowns, notifications and `alert.triggered`), `notifications`
//! (a member's notifications, read and marked read).

mod evaluate;
mod notifications;
mod rules;

pub use evaluate::*;
pub use notifications::*;
pub use rules::*;
