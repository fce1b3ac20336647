//! Live events for GraphQL subscriptions.
//!
//! The event log is the bus. Each `serve` process runs one **tailer** that reads every
//! organization's new events from the database in `seq` order and fans them out in memory to its
//! subscribers (a `tokio::sync::broadcast`); each subscription keeps the last `seq` it handed out,
//! so it can replay from any cursor, and a subscriber that falls behind the channel re-reads what
//! it missed from the log instead of losing it. Nothing is acknowledged twice or skipped: appends
//! commit in `seq` order (`domain::events`), and a tailer reading on from the last `seq` it saw
//! sees them all.
//!
//! What makes it *live* is waking the tailer as soon as events are committed:
//! - in this process, a request or job that appended events wakes it when it ends;
//! - with Redis, the same moment publishes a wake-up on `<REDIS_KEY_PREFIX>events`, which every
//!   other process (other `serve` replicas, `devsignal worker`s) listens to, so an event
//!   committed anywhere reaches subscribers on every replica at once;
//! - whatever else happens (a write from the CLI, a lost Redis message, Redis down), the tailer
//!   also reads the log every `EVENTS_POLL_INTERVAL_MS`.
//!
//! Redis carries only the wake-up, never the events, so losing Redis (or a message) loses
//! nothing: it only delays delivery to the next poll.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::events::{self, Event, EventQuery};
use domain::queue::Doorbell;
use futures::{Stream, StreamExt};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, OnceCell, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::redis::RedisPool;

/// Events held for subscribers that have not read them yet; one that falls further behind
/// re-reads from the log.
const CHANNEL_CAPACITY: usize = 4096;
/// Events read from the log per statement.
const READ_BATCH: u64 = 500;

/// The live-event machinery of one process (cheap to clone).
#[derive(Clone)]
pub struct Live(Arc<Inner>);

struct Inner {
    db: DatabaseConnection,
    redis_url: Option<SecretString>,
    channel: String,
    poll: Duration,
    shutdown: CancellationToken,
    /// Wakes this process's tailer.
    wake: Notify,
    /// Wakes the Redis publisher (coalescing bursts into one PUBLISH).
    publish: Notify,
    /// Events held for subscribers that have not read them yet.
    capacity: usize,
    hub: OnceCell<Arc<Hub>>,
    /// Also rung by other processes' commits: this process's job worker, when it runs one.
    jobs: OnceLock<Arc<Doorbell>>,
    /// This process's id in its wake-ups, so it skips its own when they come back.
    origin: String,
    /// The earliest `run_at` (Unix ms) of the jobs committed here since the last PUBLISH;
    /// `i64::MAX` when none.
    jobs_due_ms: AtomicI64,
    /// Whether the Redis listener runs.
    listening: AtomicBool,
}

struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last `seq` the tailer has fanned out.
    position: AtomicI64,
}

/// What a subscription starts from: the channel, and the `seq` up to which the tailer had
/// already fanned events out when it subscribed.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    position: i64,
}

impl Live {
    /// Builds the machinery; with Redis, starts the task that publishes wake-ups. The tailer
    /// starts with the first subscription, so processes that serve none (workers) never read.
    pub fn new(
        db: DatabaseConnection,
        redis: Option<(RedisPool, SecretString)>,
        key_prefix: &str,
        poll: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self::build(db, redis, key_prefix, poll, shutdown, CHANNEL_CAPACITY)
    }

    fn build(
        db: DatabaseConnection,
        redis: Option<(RedisPool, SecretString)>,
        key_prefix: &str,
        poll: Duration,
        shutdown: CancellationToken,
        capacity: usize,
    ) -> Self {
        let (pool, redis_url) = match redis {
            Some((pool, url)) => (Some(pool), Some(url)),
            None => (None, None),
        };
        let live = Live(Arc::new(Inner {
            db,
            redis_url,
            channel: format!("{key_prefix}events"),
            poll: poll.max(Duration::from_millis(10)),
            shutdown,
            wake: Notify::new(),
            publish: Notify::new(),
            capacity,
            hub: OnceCell::new(),
            jobs: OnceLock::new(),
            origin: Uuid::new_v4().simple().to_string(),
            jobs_due_ms: AtomicI64::new(i64::MAX),
            listening: AtomicBool::new(false),
        }));
        if let Some(pool) = pool {
            tokio::spawn(publisher(live.0.clone(), pool));
        }
        live
    }

    /// How many subscriptions this process is serving right now.
    pub fn subscribers(&self) -> usize {
        self.0.hub.get().map_or(0, |h| h.tx.receiver_count())
    }

    /// This process has committed events, and jobs due at `jobs_due` at the earliest: wake the
    /// tailers here and, through Redis, the tailers and workers everywhere.
    pub fn committed(&self, jobs_due: Option<DateTime<Utc>>) {
        self.0.wake.notify_one();
        if let Some(at) = jobs_due {
            self.0
                .jobs_due_ms
                .fetch_min(at.timestamp_millis(), Ordering::SeqCst);
        }
        self.0.publish.notify_one();
    }

    /// Rings `jobs` (this process's job worker) whenever another process announces a job due
    /// before the worker's planned look, so a job enqueued by a `serve --no-worker` replica
    /// starts at once rather than at the next poll. Without Redis there is nobody else to hear
    /// from.
    pub fn wake_on_remote_commits(&self, jobs: Arc<Doorbell>) {
        let _ = self.0.jobs.set(jobs);
        self.listen();
    }

    /// Starts the Redis listener once (with Redis).
    fn listen(&self) {
        if self.0.redis_url.is_some() && !self.0.listening.swap(true, Ordering::SeqCst) {
            tokio::spawn(listener(self.0.clone()));
        }
    }

    /// Subscribes to the fan-out, starting the tailer (and the Redis listener) on first use.
    pub async fn subscribe(&self) -> Result<Subscription, domain::Error> {
        let hub = self
            .0
            .hub
            .get_or_try_init(|| async {
                let position = events::latest_seq_all(&self.0.db).await?;
                let (tx, _) = broadcast::channel(self.0.capacity);
                let hub = Arc::new(Hub {
                    tx,
                    position: AtomicI64::new(position),
                });
                tokio::spawn(tailer(self.0.clone(), hub.clone()));
                self.listen();
                tracing::debug!(position, "live-event tailer started");
                Ok::<_, domain::Error>(hub)
            })
            .await?;
        let rx = hub.tx.subscribe();
        Ok(Subscription {
            rx,
            position: hub.position.load(Ordering::SeqCst),
        })
    }

    /// `organization_id`'s events of `types` (all when empty): first those after `after` from
    /// the log (none when `after` is `None`), then each new one as it is committed, in `seq`
    /// order, until shutdown. A subscriber that falls behind re-reads from the log, so it misses
    /// nothing.
    pub fn events(
        &self,
        sub: Subscription,
        organization_id: Uuid,
        types: Vec<String>,
        after: Option<i64>,
    ) -> impl Stream<Item = Event> + Send + 'static + use<> {
        let inner = self.0.clone();
        let Subscription { mut rx, position } = sub;
        let mut last = after.unwrap_or(position);
        let mut catch_up = after.is_some();
        async_stream::stream! {
            loop {
                if catch_up {
                    catch_up = false;
                    loop {
                        let query = EventQuery { after: Some(last), types: types.clone(), limit: READ_BATCH };
                        let read = async {
                            events::sequence(&inner.db).await?;
                            events::read(&inner.db, organization_id, &query).await
                        };
                        let batch = tokio::select! {
                            r = read => r,
                            () = inner.shutdown.cancelled() => return,
                        };
                        match batch {
                            Ok(batch) => {
                                let full = batch.len() as u64 == READ_BATCH;
                                for e in batch {
                                    last = e.seq;
                                    yield e;
                                }
                                if !full {
                                    break;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading the event log for a subscription failed; retrying");
                                tokio::select! {
                                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                                    () = inner.shutdown.cancelled() => return,
                                }
                            }
                        }
                    }
                }
                let received = tokio::select! {
                    r = rx.recv() => r,
                    () = inner.shutdown.cancelled() => return,
                };
                match received {
                    Ok(e) => {
                        if e.organization_id == organization_id
                            && e.seq > last
                            && (types.is_empty() || types.contains(&e.event_type))
                        {
                            last = e.seq;
                            yield Event::clone(&e);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "a subscriber fell behind; re-reading the log");
                        catch_up = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}

/// Reads new events from the log whenever woken (or every poll interval) and fans them out.
async fn tailer(inner: Arc<Inner>, hub: Arc<Hub>) {
    let mut position = hub.position.load(Ordering::SeqCst);
    loop {
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(inner.poll) => {}
            () = inner.shutdown.cancelled() => return,
        }
        if let Err(e) = events::sequence(&inner.db).await {
            tracing::warn!(error = %e, "positioning new events failed; trying again at the next poll");
            continue;
        }
        loop {
            match events::tail(&inner.db, position, READ_BATCH).await {
                Ok((mut batch, through)) => {
                    // Once here rather than once per subscriber that selects it; without it
                    // (a failed read), subscribers load it themselves.
                    let payloads = batch
                        .iter_mut()
                        .map(|e| (e.event_type.as_str(), &mut e.payload));
                    if let Err(e) = domain::signals::complete_payloads(&inner.db, payloads).await {
                        tracing::warn!(error = %e, "reading new signals' metadata failed");
                    }
                    let full = batch.len() as u64 == READ_BATCH;
                    for e in batch {
                        position = e.seq;
                        hub.position.store(position, Ordering::SeqCst);
                        // No receivers is fine: nobody is listening right now.
                        let _ = hub.tx.send(Arc::new(e));
                    }
                    // Past positions whose events were deleted, too.
                    position = position.max(through);
                    hub.position.store(position, Ordering::SeqCst);
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading new events failed; trying again at the next poll");
                    break;
                }
            }
        }
    }
}

impl Inner {
    /// A process announced a commit (`message`, see [`wake_message`]): wake the tailer and, if
    /// this process runs a worker, ring its doorbell. Our own announcements come back too; they
    /// woke everything here when they were made.
    fn remote_commit(&self, message: &str) {
        let (commit, origin) = parse_wake_message(message);
        if origin == Some(self.origin.as_str()) {
            return;
        }
        self.wake.notify_one();
        let Some(jobs) = self.jobs.get() else { return };
        match commit {
            RemoteCommit::NoJobs => {}
            RemoteCommit::JobsDue(at) => jobs.ring_for(at),
            RemoteCommit::Unknown => jobs.ring(),
        }
    }
}

/// Publishes one wake-up per burst of local commits on the Redis channel.
async fn publisher(inner: Arc<Inner>, pool: RedisPool) {
    loop {
        tokio::select! {
            () = inner.publish.notified() => {}
            () = inner.shutdown.cancelled() => return,
        }
        let message = wake_message(
            inner.jobs_due_ms.swap(i64::MAX, Ordering::SeqCst),
            &inner.origin,
        );
        let publish = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("PUBLISH")
                .arg(&inner.channel)
                .arg(&message)
                .query_async::<i64>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(crate::redis::CONNECT_TIMEOUT, publish).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "publishing a live-event wake-up failed"),
            Err(_) => tracing::debug!("publishing a live-event wake-up timed out"),
        }
    }
}

/// The wake-up published on the channel: `e` when the commits added no job, `j<ms>` with the
/// earliest `run_at` (Unix ms) of the jobs they added, then `/` and the publishing process's
/// origin id. Anything else (older processes sent `1`) wakes every worker.
fn wake_message(jobs_due_ms: i64, origin: &str) -> String {
    if jobs_due_ms == i64::MAX {
        format!("e/{origin}")
    } else {
        format!("j{jobs_due_ms}/{origin}")
    }
}

#[derive(Debug, PartialEq)]
enum RemoteCommit {
    NoJobs,
    JobsDue(DateTime<Utc>),
    Unknown,
}

fn parse_wake_message(message: &str) -> (RemoteCommit, Option<&str>) {
    let (body, origin) = match message.split_once('/') {
        Some((body, origin)) => (body, Some(origin)),
        None => (message, None),
    };
    if body == "e" {
        return (RemoteCommit::NoJobs, origin);
    }
    let commit = body
        .strip_prefix('j')
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(RemoteCommit::Unknown, RemoteCommit::JobsDue);
    (commit, origin)
}

/// Publishes one wake-up from a process that runs no [`Live`] (the command line), so every
/// serving process looks at once, and every worker if `jobs_due` is before its planned look.
/// Best effort: a failure only means they look at their next poll.
pub async fn announce_commit(
    redis_url: &SecretString,
    key_prefix: &str,
    jobs_due: Option<DateTime<Utc>>,
) {
    let message = wake_message(jobs_due.map_or(i64::MAX, |at| at.timestamp_millis()), "cli");
    let publish = async {
        let client = redis::Client::open(redis_url.expose_secret())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PUBLISH")
            .arg(format!("{key_prefix}events"))
            .arg(&message)
            .query_async::<i64>(&mut conn)
            .await
    };
    match tokio::time::timeout(crate::redis::CONNECT_TIMEOUT, publish).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "announcing the commit on Redis failed"),
        Err(_) => tracing::debug!("announcing the commit on Redis timed out"),
    }
}

/// Listens for wake-ups from other processes, reconnecting with backoff while Redis is away
/// (the poll interval keeps subscriptions going meanwhile).
async fn listener(inner: Arc<Inner>) {
    let Some(url) = inner.redis_url.clone() else {
        return;
    };
    let mut backoff = Duration::from_millis(500);
    while !inner.shutdown.is_cancelled() {
        let connected = async {
            let client = redis::Client::open(url.expose_secret())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&inner.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(crate::redis::CONNECT_TIMEOUT, connected).await {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(500);
                // Catch up on whatever was committed while we were not listening.
                inner.wake.notify_one();
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        m = messages.next() => match m {
                            Some(m) => {
                                inner.remote_commit(&m.get_payload::<String>().unwrap_or_default());
                            }
                            None => break,
                        },
                        () = inner.shutdown.cancelled() => return,
                    }
                }
                tracing::warn!("the Redis live-event channel closed; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot listen for live events on Redis"),
            Err(_) => tracing::warn!("connecting to Redis for live events timed out"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, Set};
    use serde_json::json;

    #[test]
    fn wake_messages_say_whether_and_when_jobs_are_due_and_who_sent_them() {
        assert_eq!(
            parse_wake_message(&wake_message(i64::MAX, "p1")),
            (RemoteCommit::NoJobs, Some("p1"))
        );
        let at = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(
            parse_wake_message(&wake_message(at.timestamp_millis(), "p2")),
            (RemoteCommit::JobsDue(at), Some("p2"))
        );
        // What an older process sent, or garbage: every worker looks.
        assert_eq!(parse_wake_message("1"), (RemoteCommit::Unknown, None));
        assert_eq!(
            parse_wake_message("jx/p3"),
            (RemoteCommit::Unknown, Some("p3"))
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_rereads_the_log_and_misses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/live.db?mode=rwc", dir.path().display());
        let db = domain::db::connect(&url, &Default::default())
            .await
            .unwrap();
        domain::db::migrate_up(&db).await.unwrap();
        let org = Uuid::now_v7();
        entity::organizations::ActiveModel {
            id: Set(org),
            name: Set("o".into()),
            is_demo: Set(false),
            created_at: Set(chrono::Utc::now()),
            updated_at: Set(chrono::Utc::now()),
        }
        .insert(&db)
        .await
        .unwrap();
        let shutdown = CancellationToken::new();
        // Room for 4 events only, and no poll to speak of: wake-ups drive the tailer.
        let live = Live::build(
            db.clone(),
            None,
            "",
            Duration::from_secs(600),
            shutdown.clone(),
            4,
        );
        let sub = live.subscribe().await.unwrap();
        let mut stream = Box::pin(live.events(sub, org, Vec::new(), None));
        let mut sent = Vec::new();
        for i in 0..50 {
            let txn = domain::db::begin(&db).await.unwrap();
            let e = domain::events::append(&txn, org, None, "company.created", json!({"i": i}))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            sent.push(e);
            live.committed(None);
            // Let the tailer fan out while nobody reads: the channel overflows.
            tokio::task::yield_now().await;
        }
        // Once the tailer has fanned all 50 out, the 4-slot channel has dropped most of them
        // for this subscriber, which must recover them from the log.
        let last = domain::events::latest_seq_all(&db).await.unwrap();
        for _ in 0..1000 {
            if live.0.hub.get().unwrap().position.load(Ordering::SeqCst) == last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            live.0.hub.get().unwrap().position.load(Ordering::SeqCst),
            last
        );
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let e = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .unwrap()
                .unwrap();
            got.push(e.id);
        }
        assert_eq!(got, sent);
        shutdown.cancel();
    }
}
