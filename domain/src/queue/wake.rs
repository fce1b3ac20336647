//! Waking a worker only when there is something for it to do soon.
//!
//! A worker sleeps until its next planned look (the next waiting job's `run_at`, at most a
//! poll interval). Whoever commits work says which jobs it made due: [`noting_due_jobs`] runs a
//! unit of work (a request, a GraphQL operation, a job) and returns the earliest `run_at` of the
//! jobs it enqueued or put back to waiting — `None` when it added none, e.g. a rescore that was
//! already waiting (its dedupe key made the insert a no-op). The worker's [`Doorbell`] rings only
//! when that time is before the look it has planned, so a busy ingest that keeps re-requesting
//! the same debounced rescores wakes it a few times a second instead of once per request.
//!
//! Nothing depends on a ring: the worker also polls, so a unit of work that was not tracked (a
//! spawned task, another tool writing to the database) costs latency, never a job.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

tokio::task_local! {
    static DUE: Cell<Option<DateTime<Utc>>>;
}

/// Runs `work` and returns its output with the earliest `run_at` of the jobs it enqueued (or made
/// waiting again) on this task. Nested calls each see only their own jobs.
pub async fn noting_due_jobs<F: Future>(work: F) -> (F::Output, Option<DateTime<Utc>>) {
    DUE.scope(Cell::new(None), async move {
        let out = work.await;
        (out, DUE.with(Cell::get))
    })
    .await
}

/// Records that a job becomes due at `at`, for the enclosing [`noting_due_jobs`] (if any).
pub(super) fn note_due(at: DateTime<Utc>) {
    let _ = DUE.try_with(|due| due.set(Some(due.get().map_or(at, |d| d.min(at)))));
}

/// How a worker is woken: it says when it plans to look next, and a ring for a job due later
/// than that is dropped (the look will find the job anyway).
#[derive(Debug)]
pub struct Doorbell {
    notify: Notify,
    /// The planned look in Unix milliseconds; `i64::MAX` while looking (a job committed during
    /// a look may have been missed by it, so any ring counts).
    planned_ms: AtomicI64,
}

impl Default for Doorbell {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            planned_ms: AtomicI64::new(i64::MAX),
        }
    }
}

impl Doorbell {
    /// A job becomes due at `at`: wake the worker if that is before its planned look.
    pub fn ring_for(&self, at: DateTime<Utc>) {
        if at.timestamp_millis() < self.planned_ms.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }

    /// Something may have been enqueued, nobody knows for when: wake the worker.
    pub fn ring(&self) {
        self.notify.notify_one();
    }

    /// The worker is about to look at the queue.
    pub fn looking(&self) {
        self.planned_ms.store(i64::MAX, Ordering::SeqCst);
    }

    /// The worker has looked and will look again at `at` unless rung.
    pub fn plan(&self, at: DateTime<Utc>) {
        self.planned_ms
            .store(at.timestamp_millis(), Ordering::SeqCst);
    }

    /// Waits for a ring (one that came while nobody waited counts once).
    pub async fn rung(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rang(bell: &Doorbell) -> bool {
        let fut = bell.rung();
        tokio::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fut.as_mut().poll(&mut cx).is_ready()
    }

    #[tokio::test]
    async fn a_unit_of_work_reports_its_earliest_due_job_and_nested_units_their_own() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(5);
        let ((inner, ()), outer) = noting_due_jobs(async {
            note_due(later);
            let inner = noting_due_jobs(async { note_due(later) }).await;
            note_due(now);
            (inner.1, ())
        })
        .await;
        assert_eq!(outer, Some(now));
        assert_eq!(inner, Some(later));
        let ((), none) = noting_due_jobs(async {}).await;
        assert_eq!(none, None);
        // Outside any unit of work, noting is harmless.
        note_due(now);
    }

    #[test]
    fn the_doorbell_rings_only_for_jobs_due_before_the_planned_look() {
        let bell = Doorbell::default();
        let now = Utc::now();
        bell.plan(now + chrono::Duration::seconds(2));
        bell.ring_for(now + chrono::Duration::seconds(3));
        assert!(
            !rang(&bell),
            "a job due after the planned look must not wake the worker"
        );
        bell.ring_for(now + chrono::Duration::seconds(1));
        assert!(rang(&bell));
        // While looking, any job may have been missed: every ring counts.
        bell.looking();
        bell.ring_for(now + chrono::Duration::hours(1));
        assert!(rang(&bell));
        bell.plan(now);
        bell.ring();
        assert!(rang(&bell), "a ring without a time always wakes");
        assert!(!rang(&bell), "one ring wakes once");
    }
}
