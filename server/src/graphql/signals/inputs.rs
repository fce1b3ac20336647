//! Ingest over GraphQL: the signal input with its identity hints, filters, and the payloads
//! (per-item results with field errors, and a summary).

use async_graphql::{ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::common::opt_input_id;

use super::*;

/// Who did it, as the sender knows them: DevSignal finds or creates the contact.
#[derive(InputObject, Default)]
pub struct ActorHintsInput {
    pub email: Option<String>,
    pub github: Option<String>,
    pub npm: Option<String>,
    pub twitter: Option<String>,
    pub linkedin: Option<String>,
    pub name: Option<String>,
}

/// Which company it was, as the sender knows it: DevSignal finds or creates the account.
#[derive(InputObject, Default)]
pub struct AccountHintsInput {
    pub domain: Option<String>,
    pub name: Option<String>,
    pub github_org: Option<String>,
}

/// One signal to ingest.
#[derive(InputObject)]
pub struct SignalInput {
    /// The source (default: the built-in API source).
    pub source_id: Option<ID>,
    /// What happened, e.g. `repo_star` (1 to 100 characters).
    pub r#type: String,
    /// A known contact.
    pub actor_id: Option<ID>,
    /// A known account.
    pub account_id: Option<ID>,
    /// `github:<login>`, `npm:<user>`, an email, or any fingerprint.
    pub anonymous_id: Option<String>,
    /// A JSON object (at most 64 KB).
    pub metadata: Option<Json<serde_json::Value>>,
    /// The sender's id of the event: a repeated key (per organization) returns the original
    /// signal, and is then the only rule (distinct keys are distinct events, whatever their
    /// content).
    pub idempotency_key: Option<String>,
    /// When it happened (default: now; at most 24 hours ahead). Without an idempotency key, a
    /// signal with the same content and the same timestamp as an earlier one is a retry of it.
    pub timestamp: Option<DateTime<Utc>>,
    pub actor: Option<ActorHintsInput>,
    pub account: Option<AccountHintsInput>,
}

impl From<SignalInput> for domain::signals::Input {
    fn from(i: SignalInput) -> Self {
        domain::signals::Input {
            source_id: i.source_id.map(|v| v.0),
            signal_type: i.r#type,
            actor_id: i.actor_id.map(|v| v.0),
            account_id: i.account_id.map(|v| v.0),
            anonymous_id: i.anonymous_id,
            metadata: i.metadata.map(|j| j.0),
            idempotency_key: i.idempotency_key,
            timestamp: i.timestamp.map(|t| t.to_rfc3339()),
            actor: i.actor.map(|a| domain::signals::ActorHints {
                email: a.email,
                github: a.github,
                npm: a.npm,
                twitter: a.twitter,
                linkedin: a.linkedin,
                name: a.name,
                user_id: None,
                source_ids: Vec::new(),
            }),
            account: i.account.map(|a| domain::signals::AccountHints {
                domain: a.domain,
                name: a.name,
                github_org: a.github_org,
            }),
            contact_traits: None,
            account_traits: None,
            profile_only: false,
        }
    }
}

/// The outcome of `ingestSignal`.
#[derive(SimpleObject)]
pub struct IngestSignalPayload {
    pub signal: Signal,
    /// `true` when an earlier signal was returned instead of storing a new one: the one with
    /// the same idempotency key or, for a signal sent without a key, the one without a key with
    /// the same content and the same `timestamp` (a retried delivery).
    pub deduplicated: bool,
}

/// A field that failed validation.
#[derive(SimpleObject)]
pub struct IngestFieldError {
    pub field: String,
    pub message: String,
}

/// Why one item of a batch failed.
#[derive(SimpleObject)]
pub struct IngestError {
    /// `BAD_USER_INPUT`, …
    pub code: String,
    pub message: String,
    pub fields: Vec<IngestFieldError>,
}

/// One item of `ingestSignals`.
#[derive(SimpleObject)]
pub struct IngestItemResult {
    /// The item's position in the input list.
    pub index: i32,
    pub success: bool,
    pub signal: Option<Signal>,
    pub deduplicated: bool,
    /// Why nothing was stored though the item was accepted (it names a person who asked to be
    /// erased); null when it was ingested.
    pub dropped: Option<String>,
    pub error: Option<IngestError>,
}

/// Counts of a batch.
#[derive(SimpleObject)]
pub struct IngestSummary {
    pub total: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub deduplicated: i32,
}

/// The outcome of `ingestSignals`.
#[derive(SimpleObject)]
pub struct IngestSignalsPayload {
    pub results: Vec<IngestItemResult>,
    pub summary: IngestSummary,
}

pub(crate) fn ingest_error(e: &domain::Error) -> IngestError {
    let fields = match e {
        domain::Error::Validation(errs) => errs
            .iter()
            .map(|f| IngestFieldError {
                field: f.field.clone(),
                message: f.message.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    IngestError {
        code: e.code().to_owned(),
        message: e.public_message(),
        fields,
    }
}

/// Which signals to list.
#[derive(InputObject, Default)]
pub struct SignalFilter {
    /// Only these types.
    pub r#type: Option<Vec<String>>,
    /// Only from this source.
    pub source: Option<ID>,
    pub account: Option<ID>,
    pub contact: Option<ID>,
    /// Event time at or after.
    pub from: Option<DateTime<Utc>>,
    /// Event time before.
    pub to: Option<DateTime<Utc>>,
}

impl SignalFilter {
    pub(super) fn into_domain(self) -> async_graphql::Result<domain::signals::Filter> {
        Ok(domain::signals::Filter {
            types: self.r#type.unwrap_or_default(),
            source_id: opt_input_id(self.source, "filter.source")?,
            account_id: opt_input_id(self.account, "filter.account")?,
            contact_id: opt_input_id(self.contact, "filter.contact")?,
            from: self.from,
            to: self.to,
        })
    }
}

pub(crate) fn batch_payload(
    results: Vec<domain::Result<domain::signals::Ingested>>,
) -> IngestSignalsPayload {
    let mut summary = IngestSummary {
        total: 0,
        succeeded: 0,
        failed: 0,
        deduplicated: 0,
    };
    let results = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            summary.total += 1;
            match r {
                Ok(ok) => {
                    summary.succeeded += 1;
                    summary.deduplicated += i32::from(ok.deduplicated);
                    IngestItemResult {
                        index: i as i32,
                        success: true,
                        deduplicated: ok.deduplicated,
                        dropped: ok.dropped.map(str::to_owned),
                        signal: ok.signal.map(Signal),
                        error: None,
                    }
                }
                Err(e) => {
                    summary.failed += 1;
                    IngestItemResult {
                        index: i as i32,
                        success: false,
                        deduplicated: false,
                        dropped: None,
                        signal: None,
                        error: Some(ingest_error(&e)),
                    }
                }
            }
        })
        .collect();
    IngestSignalsPayload { results, summary }
}
