//! Contact merges. When two contacts turn out to be one person, the
//! duplicate's signals, activities, deals and identities move to the primary, its tags are added,
//! the primary's empty fields are filled from it, the primary inherits its account if it had
//! none, and the duplicate is deleted. Every merge is recorded in `contact_merges` with its
//! reason, confidence and evidence, and with **exactly** what it changed, so [`unmerge`] can
//! re-create the duplicate under its own id and reverse only what the merge did: later edits of
//! the primary win, and rows that arrived after the merge stay with the primary.
//!
//! Three ways in, one piece of merge code ([`merge_in`], inside the caller's transaction):
//! - [`merge`]: a person merges up to [`MAX_DUPLICATES`] contacts into one (all or nothing);
//! - ingest ([`crate::signals`]): a signal whose hints name its contact and exactly one other
//!   contact with confidence ≥ [`confidence::AUTO_MERGE`] merges the two in the batch's own
//!   transaction ([`auto_merge`]);
//! - [`suggestions`] only proposes pairs, with their evidence, for a human to decide.
//!
//! An undone merge is a human's "these are different people": ingest never auto-merges that pair
//! again (durably, unlike the original's in-memory 24-hour cooldown), while [`suggestions`] still
//! shows the pair, marked `previously_unmerged`.//!
//! Files: `evidence` (what two contacts share, and [`suggestions`]), `record` (the undo record a
//! merge keeps), `apply` ([`merge_in`]: moving rows, filling fields), `manual` ([`merge`],
//! [`unmerge`], [`list`]), `auto` (ingest's [`auto_merge`]).

mod apply;
mod auto;
mod evidence;
mod manual;
mod record;

use chrono::{DateTime, Utc};
use entity::{contact_merges, contacts};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::signals::identifiers::kind;
use crate::{Actor, Error, Result};

pub(crate) use auto::{AutoMerged, Candidate, auto_merge};
pub use evidence::{combine, kind_confidence, suggestions};
pub use manual::{list, merge, unmerge};

/// The most duplicates one [`merge`] takes.
pub const MAX_DUPLICATES: usize = 50;
/// The most suggestions (and merge records) one call returns.
pub const MAX_PAGE: u64 = crate::paging::MAX_PAGE;
/// Contacts sharing one value beyond this many are not paired with each other: a value that
/// many people share (a team inbox, a common name) says little about any two of them, and
/// pairing them all would be quadratic.
pub const MAX_GROUP: usize = 50;
/// How many tags a contact may carry (as [`crate::crm::tags`] enforces).
pub(super) const MAX_TAGS: usize = 50;

/// Why a merge happened.
pub mod reason {
    /// A person asked for it (`mergeContacts`).
    pub const MANUAL: &str = "MANUAL";
    /// Ingest found one signal naming both contacts.
    pub const AUTO: &str = "AUTO";
}

/// Where a piece of evidence was seen on a contact.
pub mod source {
    /// One of the contact's identities (`contact_identities`).
    pub const IDENTITY: &str = "IDENTITY";
    /// A field of the contact row (email, GitHub, Twitter, LinkedIn, name).
    pub const FIELD: &str = "FIELD";
    /// A signal attributed to the contact carried the value as a hint (auto-merge).
    pub const SIGNAL: &str = "SIGNAL";
}

/// The evidence kind for two contacts with the same full name.
pub const NAME: &str = "NAME";

/// Audit actions.
pub mod action {
    pub const MERGED: &str = "contact.merged";
    pub const UNMERGED: &str = "contact.unmerged";
}

/// The identity kinds compared across contacts.
pub(super) const COMPARED: &[&str] = &[
    kind::EMAIL,
    kind::GITHUB,
    kind::NPM,
    kind::TWITTER,
    kind::LINKEDIN,
];

/// One contact on which a piece of evidence was seen, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    pub contact_id: Uuid,
    /// One of [`source`].
    pub source: String,
}

/// Why two contacts look like one person: a value both carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// An identity kind ([`kind`]: EMAIL, GITHUB, NPM, TWITTER, LINKEDIN) or [`NAME`].
    pub kind: String,
    /// The normalised value (a lower-cased full name for NAME).
    pub value: String,
    /// How much this one piece says on its own.
    pub confidence: f64,
    /// Where it was seen, on each side.
    pub seen_on: Vec<Sighting>,
}

/// One recorded merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub id: Uuid,
    pub primary_id: Uuid,
    pub merged_id: Uuid,
    /// One of [`reason`].
    pub reason: String,
    pub confidence: Option<f64>,
    pub evidence: Vec<Evidence>,
    /// The user who merged (absent for API keys).
    pub merged_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl From<contact_merges::Model> for Merge {
    fn from(m: contact_merges::Model) -> Self {
        Merge {
            id: m.id,
            primary_id: m.primary_id,
            merged_id: m.merged_id,
            reason: m.reason,
            confidence: m.confidence,
            evidence: serde_json::from_value(m.evidence).unwrap_or_default(),
            merged_by: m.merged_by,
            created_at: m.created_at,
            undone_at: m.undone_at,
        }
    }
}

/// The outcome of [`merge`]: the primary as it is now, and one record per duplicate.
#[derive(Debug, Clone)]
pub struct Merged {
    pub contact: contacts::Model,
    pub merges: Vec<Merge>,
}

/// Two contacts that look like one person.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The older contact first.
    pub contacts: [contacts::Model; 2],
    /// `1 − Π(1 − cᵢ)` over the evidence, at most 1.
    pub confidence: f64,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
    /// A merge of these two was undone before (a person said they differ).
    pub previously_unmerged: bool,
}

pub(super) fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

/// Contact writes: MEMBER+ and, for API keys, the `contacts:write` scope (as in
/// [`crate::crm::contacts`]).
pub(super) fn write_rights(actor: &Actor) -> Result<()> {
    actor.require_write()?;
    actor.require_scope("contacts:write")
}

pub(super) fn read_rights(actor: &Actor) -> Result<()> {
    actor.require_scope("contacts:read")
}

pub(super) fn check_first(first: u64) -> Result<()> {
    crate::paging::check_first(first)
}
