//! PQA scoring (DESIGN 6, issue 6): the original's 7-factor model with per-organization,
//! versioned configuration, and the debounced "rescore this account" job.

use std::time::Duration;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::Result;
use crate::queue::{self, NewJob};

/// The queue and job that recompute one account's score.
pub const QUEUE: &str = "score-computation";
pub const JOB: &str = "compute-score";
/// How long a rescore waits after the first signal that asked for it, so a burst of signals
/// for one account is scored a few times rather than once per signal.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// Asks for `account_id` to be rescored soon, in the caller's transaction. While one rescore
/// of the account waits, further requests join it (the queue's dedupe key).
pub async fn enqueue_rescore(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    account_id: Uuid,
) -> Result<()> {
    let mut job = NewJob::new(QUEUE, JOB, json!({ "accountId": account_id }))
        .organization(organization_id)
        .dedupe(format!("score:{account_id}"))
        .run_at(Utc::now() + DEBOUNCE);
    job.max_attempts = 3;
    job.backoff_base = Duration::from_secs(2);
    queue::enqueue(db, job).await?;
    Ok(())
}
