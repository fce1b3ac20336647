//! Alerts: an organization's rules (ADMIN), evaluated from the event log by one consumer
//! ([`evaluate`]), and the in-app notifications they leave for members.
//!
//! Files: `rules` (the rule's shape, its checks and its CRUD), `evaluate` (the consumer: which
//! events fire which rules, cooldowns, notifications and `alert.triggered`), `check` (the
//! time-based triggers, checked by the `alert-check` job), `notifications`
//! (a member's notifications, read and marked read).

mod check;
mod evaluate;
mod notifications;
mod rules;

pub use check::*;
pub use evaluate::*;
pub use notifications::*;
pub use rules::*;
