//! An account's latest AI brief: checked statements and next-best actions, who wrote them (a
//! model or the deterministic fallback) and the hash of the inputs they were built from.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "account_briefs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Unique with `organization_id`: one (the latest) brief per account.
    pub account_id: Uuid,
    /// SHA-256 (hex) of the inputs: the account's facts and signals as put in the prompt, the
    /// prompt's version and the model (or `fallback`).
    pub input_hash: String,
    /// MODEL or FALLBACK.
    pub source: String,
    /// Why a FALLBACK brief was stored: NO_KEY, UNREADABLE (the model's answer was not the JSON
    /// asked for) or NOTHING_CHECKED (no statement's citations checked out).
    pub fallback_reason: Option<String>,
    /// The model that wrote it (MODEL, or a FALLBACK after a model's unusable answer).
    pub model: Option<String>,
    /// `[{section, text, cites: [id]}]`, every cite checked.
    pub statements: Json,
    /// `[{action, reasoning, priority, contactId, cites}]`, every cite checked.
    pub actions: Json,
    /// Statements and actions of the model's answer dropped because a citation did not check out.
    pub dropped: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub generated_by: Option<Uuid>,
    pub generated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
