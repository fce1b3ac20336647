//! The optional Redis connection pool (bb8 with the connection manager below). Redis carries only
//! what may be lost (rate counters, cache, pub/sub fan-out); durable state lives in the database.
//! The pool is built without connecting, so a Redis that is down at start-up does not stop the
//! server: health then reports `"degraded"` and callers fall back to in-process implementations.
//!
//! Reconnecting: a pooled connection that failed with a connection error (refused, reset, closed
//! by a Redis restart, timed out) or whose call was abandoned (a caller's timeout dropped it
//! mid-flight, so its reply may still arrive) is marked broken, and the pool drops it instead of
//! handing it out again; the next checkout connects afresh. (`bb8-redis`'s manager never reports
//! a connection broken, so after a Redis restart its pool kept handing out dead connections and
//! no process recovered until it was restarted.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

pub type RedisPool = bb8::Pool<Manager>;

/// How long a caller waits for a pooled connection before treating Redis as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn pool(url: &str) -> Result<RedisPool, RedisError> {
    let manager = Manager {
        client: redis::Client::open(url)?,
    };
    Ok(bb8::Pool::builder()
        .max_size(16)
        .min_idle(None)
        .connection_timeout(CONNECT_TIMEOUT)
        .test_on_check_out(false)
        .build_unchecked(manager))
}

/// `PING` through the pool, bounded by `timeout`.
pub async fn ping(pool: &RedisPool, timeout: Duration) -> bool {
    let attempt = async {
        let mut conn = pool.get().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut *conn)
            .await
            .ok()
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(pong)) if pong == "PONG")
}

/// Makes [`Connection`]s for the pool.
#[derive(Debug, Clone)]
pub struct Manager {
    client: redis::Client,
}

impl bb8::ManageConnection for Manager {
    type Connection = Connection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Connection, RedisError> {
        Ok(Connection {
            inner: self.client.get_multiplexed_async_connection().await?,
            broken: Arc::default(),
        })
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<String>(conn).await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.broken.load(Ordering::SeqCst)
    }
}

/// A pooled Redis connection that remembers whether it broke.
pub struct Connection {
    inner: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

/// Marks the connection broken when dropped before [`Watch::finished`] (the call was abandoned)
/// or when the call failed with a connection error.
struct Watch {
    broken: Arc<AtomicBool>,
    armed: bool,
}

impl Watch {
    fn new(broken: &Arc<AtomicBool>) -> Self {
        Self {
            broken: broken.clone(),
            armed: true,
        }
    }

    fn finished<T>(mut self, result: &RedisResult<T>) {
        self.armed = result.as_ref().err().is_some_and(|e| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.is_unrecoverable_error()
        });
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.armed {
            self.broken.store(true, Ordering::SeqCst);
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let watch = Watch::new(&self.broken);
        Box::pin(async move {
            let result = self.inner.req_packed_command(cmd).await;
            watch.finished(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let watch = Watch::new(&self.broken);
        Box::pin(async move {
            let result = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            watch.finished(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
