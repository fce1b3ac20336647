//! Alerts: an organization's rules (ADMIN), evaluated from the event log by one consumer
//! ([`evaluate`]), and what they leave: in-app notifications for members, emails and Slack posts
//! (recorded deliveries, each sent by its own job).
//!
//! Files: `rules` (the rule's shape, its checks and its CRUD), `channels` (in-app, email, the
//! rule's Slack webhook), `evaluate` (the consumer: which events fire which rules, cooldowns,
//! notifications, deliveries and `alert.triggered`), `check` (the time-based triggers, checked by
//! the `alert-check` job), `notifications` (a member's notifications, read and marked read),
//! `preferences` (a member's choices and the signed unsubscribe links), `deliveries` (emails and
//! Slack posts with their outcome).

mod channels;
mod check;
mod deliveries;
mod evaluate;
mod notifications;
mod preferences;
mod rules;

pub use channels::*;
pub use check::*;
pub use deliveries::*;
pub use evaluate::*;
pub use notifications::*;
pub use preferences::*;
pub use rules::*;
