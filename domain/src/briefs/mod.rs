//! AI account briefs: what a model (or, without a key, a deterministic rule set) says about an
//! account, where every statement names the facts and signals it rests on and is kept only when
//! those ids check out against the account's real data.
//!
//! - [`context`]: the account's inputs (company facts, ≤ 50 people, the last 30 days' ≤ 200
//!   signals, score, trend and factors, ≤ 20 deals), each with a stable id (a signal's own UUID,
//!   `fact:…` for the rest); their hash; the prompt built from them.
//! - [`citations`]: reading the model's JSON answer and keeping only statements and actions whose
//!   every citation is an id of the context (and whose shape is right); the rest are dropped.
//! - [`fallback`]: the brief built without a model from the same context, citing its ids too.
//! - [`store`]: the latest brief per account (the cache, keyed by the input hash), the monthly
//!   use per organization (briefs and tokens) and its budget, the organization's own API key
//!   (sealed).
//!
//! The Messages API call itself is `connectors::anthropic` (HTTP lives there), which drives
//! these functions: load the context, return the stored brief when its hash still matches,
//! else take a slot of the month's budget, ask the model, check, store.

pub mod citations;
pub mod context;
pub mod fallback;
pub mod store;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use citations::check_answer;
pub use context::{BriefContext, load_context};
pub use store::{
    KeyInfo, NewBrief, Usage, clear_key, key_info, latest, latest_one, month_of, organization_key,
    record_tokens, release, reserve, save, set_key, usage,
};

/// Changes whenever the prompt or the answer's shape changes, so stored briefs go stale.
pub const PROMPT_VERSION: &str = "brief-v1";
/// The budget's name in `PLAN_LIMIT` errors.
pub const LIMIT_NAME: &str = "aiBriefsPerMonth";
/// The plan named while organizations have no plan of their own (the limit is the server's
/// `AI_BRIEFS_PER_MONTH`).
pub const DEFAULT_PLAN: &str = "default";

/// Who wrote a brief.
pub mod source {
    pub const MODEL: &str = "MODEL";
    pub const FALLBACK: &str = "FALLBACK";
}

/// Why a FALLBACK brief was stored.
pub mod fallback_reason {
    /// No API key: neither the organization's nor the server's.
    pub const NO_KEY: &str = "NO_KEY";
    /// The model's answer was not the JSON asked for.
    pub const UNREADABLE: &str = "UNREADABLE";
    /// No statement of the model's answer had citations that checked out.
    pub const NOTHING_CHECKED: &str = "NOTHING_CHECKED";
}

/// The sections a statement may belong to, in the order a brief shows them.
pub const SECTIONS: &[&str] = &["summary", "company", "usage", "people", "approach"];
/// Priorities of a next-best action.
pub const PRIORITIES: &[&str] = &["high", "medium", "low"];

/// One checked statement of a brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub section: String,
    pub text: String,
    /// Ids of the context: signal UUIDs and `fact:…` ids, every one checked.
    pub cites: Vec<String>,
}

/// One checked next-best action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub action: String,
    pub reasoning: String,
    /// high, medium or low.
    pub priority: String,
    /// A person of the account the action is about (one of the context's).
    pub contact_id: Option<Uuid>,
    pub cites: Vec<String>,
}

/// A brief's content before it is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub statements: Vec<Statement>,
    pub actions: Vec<Action>,
    /// Statements and actions of the answer that were dropped.
    pub dropped: i32,
}

/// May the actor read briefs? A brief summarises the account, its people and its signals, so an
/// API key needs `accounts:read`, `contacts:read` and `signals:read`.
pub fn require_read(actor: &crate::Actor) -> crate::Result<()> {
    for scope in ["accounts:read", "contacts:read", "signals:read"] {
        actor.require_scope(scope)?;
    }
    Ok(())
}

/// May the actor generate a brief? A member (not a viewer), or an API key that may also write
/// accounts (generation spends the organization's budget).
pub fn require_generate(actor: &crate::Actor) -> crate::Result<()> {
    actor.require_write()?;
    require_read(actor)?;
    actor.require_scope("accounts:write")
}
