//! The intake drainer: ingests requests accepted for later ingest
//! (`domain::signals::intake`) batch after batch while any are pending, then sleeps until a
//! request is accepted in this process (its bell) or the poll interval passes (requests accepted
//! by other processes). Drainers in several processes share the work (`SKIP LOCKED`).

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::worker::Observer;

/// How long a drainer woken by its bell waits before draining, so that requests sent right
/// after the one that rang are ingested in the same batch (at most this much added latency).
pub const COALESCE: Duration = Duration::from_millis(50);

/// Runs until `shutdown`; a batch being ingested when it comes is finished first.
pub async fn run(
    db: DatabaseConnection,
    bell: Arc<Notify>,
    poll_interval: Duration,
    observer: Arc<dyn Observer>,
    shutdown: CancellationToken,
) {
    tracing::info!("Signal intake drainer started");
    while !shutdown.is_cancelled() {
        let (drained, jobs_due) =
            domain::queue::noting_due_jobs(domain::signals::intake::drain_once(&db)).await;
        match drained {
            Ok(Some(d)) => {
                observer.committed(jobs_due);
                observer.signals_drained(&d);
                tracing::debug!(
                    requests = d.requests,
                    items = d.items,
                    "signal intake drained"
                );
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "draining the signal intake failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            // Requests arriving one by one are ingested a few dozen at a time, not one per
            // transaction: the first ring opens a short window for the ones right behind it.
            () = bell.notified() => {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(COALESCE) => {}
                }
            }
            () = tokio::time::sleep(poll_interval) => {}
        }
    }
    tracing::info!("Signal intake drainer stopped");
}
